/* The emulated device's memory: host pages, one mapping per allocation, with an inaccessible guard
 * page on each side. The buffer ends where the guard after it begins, to the byte (so it is aligned
 * to the largest power of two dividing its size, which is its elements'), and a read or write past
 * its end faults at once; HYBRIDRT_EMU_GUARD=before puts its start against the
 * guard before it instead (for underruns). New memory is filled with 0xFF bytes (NaN in f32 and f64),
 * as a GPU's memory is garbage: a kernel reading what nothing wrote gives NaN. Freed mappings stay
 * inaccessible for a while (a use after free faults) before they are unmapped. */
#ifndef HR_EMU_MEMORY_H
#define HR_EMU_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hr_emu_alloc {
    unsigned char *data;        /* what cuMemAlloc returned */
    size_t size;                /* bytes asked for */
    unsigned char *map;         /* the mapping, guards included */
    size_t map_size;
    uint64_t serial;            /* the n-th allocation ever, for messages */
} hr_emu_alloc;

typedef struct hr_emu_memory {
    hr_emu_alloc *live;         /* sorted by data */
    int n, cap;
    hr_emu_alloc quarantine[64]; /* recently freed: still mapped, inaccessible */
    int q_next, q_n;
    size_t bytes, capacity;
    uint64_t serial;
    bool guard_before;
    size_t page;
} hr_emu_memory;

void hr_emu_memory_init(hr_emu_memory *m, size_t capacity, bool guard_before);
void hr_emu_memory_free_all(hr_emu_memory *m);
/* 0 and *ptr, or -1 when out of (emulated) memory. */
int hr_emu_alloc_new(hr_emu_memory *m, size_t bytes, void **ptr);
/* 0, or -1 when ptr is not the start of a live allocation. */
int hr_emu_alloc_release(hr_emu_memory *m, void *ptr);
/* The live allocation holding [p, p + bytes), or NULL. */
hr_emu_alloc *hr_emu_alloc_find(hr_emu_memory *m, const void *p, size_t bytes);
/* Says what addr is (past the end of a buffer, before one, in a freed one) into buf. */
void hr_emu_memory_describe(const hr_emu_memory *m, const void *addr, char *buf, size_t size);

#endif
