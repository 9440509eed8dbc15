/* The caching allocator of device memory: a training step frees and allocates the same sizes again
 * and again, and cuMemAlloc / cuMemFree synchronise the device and cost tens of microseconds, so
 * freed blocks are kept and handed out again. In steady state a step makes no raw allocation
 * (`raw_allocs` stops growing: the GPU tests check it), and the metrics report the bytes in use and
 * reserved, current and peak.
 *
 * Independent of CUDA: the raw allocation is a pair of callbacks (cuMemAlloc / cuMemFree on a GPU, a
 * fake in the tests), so all of it is tested on the CPU. One stream and one thread per allocator
 * (the backend's one stream per device); not thread-safe.
 *
 * Policy. Sizes round up to 512 bytes below 1 MiB and to 2 MiB above (fewer distinct sizes, more
 * reuse). A request takes the smallest cached free block that fits and wastes at most half of it
 * (or 2 MiB for big blocks), never splitting blocks. When the raw allocation fails, every cached
 * free block is released and it is tried once more; failing again is an error that names the
 * request and the allocator's state.
 *
 * Exact mode (HYBRIDRT_CUDA_NO_CACHING=1 in the backend): every request is its own raw allocation of
 * exactly the bytes asked for, returned to the device when freed, so a memory checker (the emulated
 * device's guard pages, compute-sanitizer) sees each buffer's true extent. Slow: for checking only. */
#ifndef HR_CUDA_ALLOCATOR_H
#define HR_CUDA_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* 0 and *ptr set, or non-zero when the device has no room (the message is the allocator's) */
    int (*alloc)(void *arg, size_t bytes, uint64_t *ptr);
    void (*free)(void *arg, uint64_t ptr);
    void *arg;
} hr_raw_memory;

typedef struct {
    uint64_t in_use, reserved;           /* bytes handed out (rounded), bytes held from the device */
    uint64_t peak_in_use, peak_reserved;
    uint64_t raw_allocs, raw_frees;      /* calls to the raw allocator, ever */
    uint64_t hits;                       /* requests served from the cache */
} hr_alloc_stats;

typedef struct hr_block hr_block;
typedef struct {
    hr_raw_memory raw;
    hr_block *blocks; /* every block held, in use or free */
    size_t n_blocks, cap_blocks;
    hr_alloc_stats stats;
    bool exact;       /* no rounding, no caching (see above) */
} hr_caching_allocator;

void hr_alloc_init(hr_caching_allocator *a, hr_raw_memory raw);
/* Returns every block to the device (in use ones too: call it at the end). */
void hr_alloc_destroy(hr_caching_allocator *a);

/* 0 and *ptr, or -1 with err ("out of GPU memory: 3.0 GiB requested; 20.1 GiB in use, 0 B cached,
 * peak 21.4 GiB"). Zero bytes is a valid request (a 512-byte block). */
int hr_alloc(hr_caching_allocator *a, size_t bytes, uint64_t *ptr, char *err, size_t err_size);
/* Back to the cache. -1 with err for a pointer it did not hand out, or one already freed. */
int hr_alloc_free(hr_caching_allocator *a, uint64_t ptr, char *err, size_t err_size);
/* Releases the cached free blocks to the device (in-use ones stay). Returns the bytes released. */
uint64_t hr_alloc_empty_cache(hr_caching_allocator *a);

/* The rounded size a request of `bytes` gets. */
size_t hr_alloc_round(size_t bytes);

#endif
