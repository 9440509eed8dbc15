#include "cuda/allocator.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_LIMIT ((size_t)1 << 20) /* below: 512-byte granules */
#define SMALL_GRAIN ((size_t)512)
#define LARGE_GRAIN ((size_t)2 << 20)

struct hr_block {
    uint64_t ptr;
    size_t size;
    bool in_use;
};

size_t hr_alloc_round(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t grain = bytes < SMALL_LIMIT ? SMALL_GRAIN : LARGE_GRAIN;
    return (bytes + grain - 1) / grain * grain;
}

void hr_alloc_init(hr_caching_allocator *a, hr_raw_memory raw) { *a = (hr_caching_allocator){.raw = raw}; }

void hr_alloc_destroy(hr_caching_allocator *a) {
    for (size_t i = 0; i < a->n_blocks; i++) a->raw.free(a->raw.arg, a->blocks[i].ptr);
    free(a->blocks);
    *a = (hr_caching_allocator){.raw = a->raw};
}

static void human(uint64_t bytes, char *buf, size_t n) {
    if (bytes >= ((uint64_t)1 << 30)) snprintf(buf, n, "%.1f GiB", (double)bytes / (double)(1u << 30));
    else if (bytes >= ((uint64_t)1 << 20)) snprintf(buf, n, "%.1f MiB", (double)bytes / (double)(1u << 20));
    else snprintf(buf, n, "%llu B", (unsigned long long)bytes);
}

/* The smallest free block that fits `size` without wasting more than half of it (2 MiB for big
 * requests), or -1. */
static long best_fit(const hr_caching_allocator *a, size_t size) {
    size_t slack = size < SMALL_LIMIT ? size : (size / 2 > LARGE_GRAIN ? size / 2 : LARGE_GRAIN);
    long best = -1;
    for (size_t i = 0; i < a->n_blocks; i++) {
        const hr_block *b = &a->blocks[i];
        if (b->in_use || b->size < size || b->size - size > slack) continue;
        if (best < 0 || b->size < a->blocks[best].size) best = (long)i;
    }
    return best;
}

static void note_use(hr_caching_allocator *a) {
    if (a->stats.in_use > a->stats.peak_in_use) a->stats.peak_in_use = a->stats.in_use;
    if (a->stats.reserved > a->stats.peak_reserved) a->stats.peak_reserved = a->stats.reserved;
}

int hr_alloc(hr_caching_allocator *a, size_t bytes, uint64_t *ptr, char *err, size_t err_size) {
    size_t size = a->exact ? (bytes ? bytes : 1) : hr_alloc_round(bytes);
    long i = a->exact ? -1 : best_fit(a, size);
    if (i >= 0) {
        a->blocks[i].in_use = true;
        a->stats.in_use += a->blocks[i].size;
        a->stats.hits++;
        note_use(a);
        *ptr = a->blocks[i].ptr;
        return 0;
    }
    if (a->n_blocks == a->cap_blocks) {
        size_t cap = a->cap_blocks ? 2 * a->cap_blocks : 64;
        hr_block *grown = realloc(a->blocks, cap * sizeof *grown);
        if (!grown) return snprintf(err, err_size, "out of host memory for the allocator's block list"), -1;
        a->blocks = grown;
        a->cap_blocks = cap;
    }
    uint64_t p = 0;
    int rc = a->raw.alloc(a->raw.arg, size, &p);
    a->stats.raw_allocs++;
    if (rc != 0 && hr_alloc_empty_cache(a) > 0) { /* give the cached blocks back and try once more */
        rc = a->raw.alloc(a->raw.arg, size, &p);
        a->stats.raw_allocs++;
    }
    if (rc != 0) {
        char req[32], used[32], cached[32], peak[32];
        human(size, req, sizeof req);
        human(a->stats.in_use, used, sizeof used);
        human(a->stats.reserved - a->stats.in_use, cached, sizeof cached);
        human(a->stats.peak_in_use, peak, sizeof peak);
        snprintf(err, err_size, "out of GPU memory: %s requested; %s in use, %s cached, peak %s", req, used, cached,
                 peak);
        return -1;
    }
    a->blocks[a->n_blocks++] = (hr_block){.ptr = p, .size = size, .in_use = true};
    a->stats.in_use += size;
    a->stats.reserved += size;
    note_use(a);
    *ptr = p;
    return 0;
}

int hr_alloc_free(hr_caching_allocator *a, uint64_t ptr, char *err, size_t err_size) {
    for (size_t i = 0; i < a->n_blocks; i++) {
        hr_block *b = &a->blocks[i];
        if (b->ptr != ptr) continue;
        if (!b->in_use) return snprintf(err, err_size, "device pointer 0x%llx freed twice", (unsigned long long)ptr), -1;
        b->in_use = false;
        a->stats.in_use -= b->size;
        if (a->exact) { /* straight back to the device */
            a->raw.free(a->raw.arg, b->ptr);
            a->stats.raw_frees++;
            a->stats.reserved -= b->size;
            *b = a->blocks[--a->n_blocks];
        }
        return 0;
    }
    return snprintf(err, err_size, "device pointer 0x%llx was not allocated here", (unsigned long long)ptr), -1;
}

uint64_t hr_alloc_empty_cache(hr_caching_allocator *a) {
    uint64_t released = 0;
    size_t kept = 0;
    for (size_t i = 0; i < a->n_blocks; i++) {
        hr_block b = a->blocks[i];
        if (b.in_use) {
            a->blocks[kept++] = b;
            continue;
        }
        a->raw.free(a->raw.arg, b.ptr);
        a->stats.raw_frees++;
        a->stats.reserved -= b.size;
        released += b.size;
    }
    a->n_blocks = kept;
    return released;
}
