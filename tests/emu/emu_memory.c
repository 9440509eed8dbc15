#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "emu_memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void hr_emu_memory_init(hr_emu_memory *m, size_t capacity, bool guard_before) {
    *m = (hr_emu_memory){.capacity = capacity, .guard_before = guard_before, .page = (size_t)sysconf(_SC_PAGESIZE)};
}

static void unmap(hr_emu_alloc *a) {
    if (a->map) munmap(a->map, a->map_size);
    a->map = NULL;
}

void hr_emu_memory_free_all(hr_emu_memory *m) {
    for (int i = 0; i < m->n; i++) unmap(&m->live[i]);
    for (int i = 0; i < m->q_n; i++) unmap(&m->quarantine[i]);
    free(m->live);
    *m = (hr_emu_memory){.capacity = m->capacity, .guard_before = m->guard_before, .page = m->page};
}

/* The index of the last live allocation starting at or below p, or -1. */
static int below(const hr_emu_memory *m, const void *p) {
    int lo = 0, hi = m->n - 1, at = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if ((const void *)m->live[mid].data <= p) at = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    return at;
}

int hr_emu_alloc_new(hr_emu_memory *m, size_t bytes, void **ptr) {
    if (bytes == 0 || bytes > m->capacity - m->bytes) return -1;
    size_t data_pages = (bytes + m->page - 1) / m->page * m->page;
    size_t map_size = data_pages + 2 * m->page;
    unsigned char *map = mmap(NULL, map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) return -1;
    if (mprotect(map + m->page, data_pages, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, map_size);
        return -1;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 256;
        hr_emu_alloc *grown = realloc(m->live, (size_t)cap * sizeof *grown);
        if (!grown) {
            munmap(map, map_size);
            return -1;
        }
        m->live = grown;
        m->cap = cap;
    }
    /* against the guard after it, to the byte: the buffer is then aligned to the largest power of two
     * dividing its size (16 at most), which is its elements' alignment */
    unsigned char *data = m->guard_before ? map + m->page : map + m->page + data_pages - bytes;
    memset(map + m->page, 0xFF, data_pages); /* garbage that reads as NaN */
    int at = below(m, data) + 1;
    memmove(&m->live[at + 1], &m->live[at], (size_t)(m->n - at) * sizeof *m->live);
    m->live[at] = (hr_emu_alloc){.data = data, .size = bytes, .map = map, .map_size = map_size, .serial = ++m->serial};
    m->n++;
    m->bytes += bytes;
    *ptr = data;
    return 0;
}

int hr_emu_alloc_release(hr_emu_memory *m, void *ptr) {
    int at = below(m, ptr);
    if (at < 0 || m->live[at].data != ptr) return -1;
    hr_emu_alloc a = m->live[at];
    memmove(&m->live[at], &m->live[at + 1], (size_t)(m->n - at - 1) * sizeof *m->live);
    m->n--;
    m->bytes -= a.size;
    mprotect(a.map, a.map_size, PROT_NONE); /* a use after free faults */
    if (m->q_n == (int)(sizeof m->quarantine / sizeof m->quarantine[0])) unmap(&m->quarantine[m->q_next]);
    else m->q_n++;
    m->quarantine[m->q_next] = a;
    m->q_next = (m->q_next + 1) % (int)(sizeof m->quarantine / sizeof m->quarantine[0]);
    return 0;
}

hr_emu_alloc *hr_emu_alloc_find(hr_emu_memory *m, const void *p, size_t bytes) {
    int at = below(m, p);
    if (at < 0) return NULL;
    hr_emu_alloc *a = &m->live[at];
    size_t off = (size_t)((const unsigned char *)p - a->data);
    if (off > a->size || bytes > a->size - off) return NULL;
    return a;
}

void hr_emu_memory_describe(const hr_emu_memory *m, const void *addr, char *buf, size_t size) {
    const unsigned char *p = addr;
    for (int i = 0; i < m->n; i++) {
        const hr_emu_alloc *a = &m->live[i];
        if (p >= a->data + a->size && p < a->map + a->map_size) {
            snprintf(buf, size, "%zu bytes past the end of device buffer #%llu (%zu bytes at %p)",
                     (size_t)(p - (a->data + a->size)), (unsigned long long)a->serial, a->size, (void *)a->data);
            return;
        }
        if (p >= a->map && p < a->data) {
            /* an overrun of more than a page from the mapping just below lands here too: name both */
            const hr_emu_alloc *below_map = NULL;
            for (int j = 0; j < m->n; j++)
                if (m->live[j].map + m->live[j].map_size == a->map) below_map = &m->live[j];
            int n = below_map ? snprintf(buf, size, "%zu bytes past the end of device buffer #%llu (%zu bytes at %p) "
                                                    "or ", (size_t)(p - (below_map->data + below_map->size)),
                                         (unsigned long long)below_map->serial, below_map->size,
                                         (void *)below_map->data)
                              : 0;
            if (n < 0 || (size_t)n >= size) return; /* no room for the rest */
            snprintf(buf + n, size - (size_t)n, "%zu bytes before the start of device buffer #%llu (%zu bytes at %p)",
                     (size_t)(a->data - p), (unsigned long long)a->serial, a->size, (void *)a->data);
            return;
        }
    }
    for (int i = 0; i < m->q_n; i++) {
        const hr_emu_alloc *a = &m->quarantine[i];
        if (p >= a->map && p < a->map + a->map_size) {
            snprintf(buf, size, "inside device buffer #%llu (%zu bytes at %p), already freed", (unsigned long long)a->serial,
                     a->size, (void *)a->data);
            return;
        }
    }
    snprintf(buf, size, "not device memory");
}
