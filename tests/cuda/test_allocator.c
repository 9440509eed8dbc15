/* The caching allocator (runtime/cuda/allocator.c) over a fake device: rounding, reuse with no raw
 * allocation in steady state, best fit within the waste limit, releasing the cache and retrying when
 * the device is full, the out-of-memory message, bad frees, statistics, and nothing leaked. */
#include <string.h>

#include "cuda/allocator.h"
#include "test_util.h"

/* A fake device of `capacity` bytes: addresses count up from 0x1000, every live allocation tracked. */
typedef struct {
    uint64_t capacity, used, next;
    int live;
    uint64_t ptrs[256];
    size_t sizes[256];
} fake_device;

static int fake_alloc(void *arg, size_t bytes, uint64_t *ptr) {
    fake_device *d = arg;
    if (d->used + bytes > d->capacity || d->live == 256) return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
    d->ptrs[d->live] = d->next;
    d->sizes[d->live++] = bytes;
    *ptr = d->next;
    d->next += bytes + 0x1000;
    d->used += bytes;
    return 0;
}

static void fake_free(void *arg, uint64_t ptr) {
    fake_device *d = arg;
    for (int i = 0; i < d->live; i++)
        if (d->ptrs[i] == ptr) {
            d->used -= d->sizes[i];
            d->ptrs[i] = d->ptrs[--d->live];
            d->sizes[i] = d->sizes[d->live];
            return;
        }
    CHECK(0, "the allocator freed 0x%llx, which the device never gave out", (unsigned long long)ptr);
}

static hr_raw_memory fake(fake_device *d, uint64_t capacity) {
    *d = (fake_device){.capacity = capacity, .next = 0x1000};
    return (hr_raw_memory){fake_alloc, fake_free, d};
}

static char err[256];

static void test_rounding(void) {
    struct {
        size_t in, out;
    } r[] = {{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {(1u << 20) - 1, 1u << 20}, {1u << 20, 2u << 20},
             {3u << 20, 4u << 20}, {(size_t)5 << 30, (size_t)5 << 30}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        CHECK(hr_alloc_round(r[i].in) == r[i].out, "round(%zu) = %zu, want %zu", r[i].in, hr_alloc_round(r[i].in), r[i].out);
}

static void test_steady_state(void) {
    fake_device d;
    hr_caching_allocator a;
    hr_alloc_init(&a, fake(&d, 1u << 30));
    const size_t sizes[] = {1000, 4096, 3u << 20, 100, 70000, 4096};
    uint64_t p[6];
    for (int step = 0; step < 10; step++) {
        for (int i = 0; i < 6; i++) CHECK(hr_alloc(&a, sizes[i], &p[i], err, sizeof err) == 0, "alloc: %s", err);
        for (int i = 0; i < 6; i++) CHECK(hr_alloc_free(&a, p[i], err, sizeof err) == 0, "free: %s", err);
        if (step == 0) CHECK(a.stats.raw_allocs == 6, "first step: 6 raw allocations, got %llu", (unsigned long long)a.stats.raw_allocs);
    }
    CHECK(a.stats.raw_allocs == 6 && a.stats.hits == 54, "steady state: no raw allocation after the first step "
          "(%llu raw, %llu hits)", (unsigned long long)a.stats.raw_allocs, (unsigned long long)a.stats.hits);
    uint64_t expect = 1024 + 512 + 4096 * 2 + (4u << 20) + 70144; // 1000, 100, 4096 twice, 3 MiB, 70000 rounded
    CHECK(a.stats.in_use == 0 && a.stats.reserved == expect && a.stats.peak_in_use == expect,
          "stats: in use %llu, reserved %llu, peak %llu (want 0, %llu, %llu)", (unsigned long long)a.stats.in_use,
          (unsigned long long)a.stats.reserved, (unsigned long long)a.stats.peak_in_use, (unsigned long long)expect,
          (unsigned long long)expect);
    hr_alloc_destroy(&a);
    CHECK(d.live == 0 && d.used == 0, "destroy returns everything (%d blocks left)", d.live);
}

static void test_best_fit(void) {
    fake_device d;
    hr_caching_allocator a;
    hr_alloc_init(&a, fake(&d, 1u << 30));
    uint64_t small, big, q;
    hr_alloc(&a, 4096, &small, err, sizeof err);
    hr_alloc(&a, 65536, &big, err, sizeof err);
    hr_alloc_free(&a, big, err, sizeof err);
    hr_alloc_free(&a, small, err, sizeof err);
    CHECK(hr_alloc(&a, 4000, &q, err, sizeof err) == 0 && q == small, "4000 bytes take the 4096 block, not 65536");
    CHECK(hr_alloc(&a, 40000, &q, err, sizeof err) == 0 && q == big, "40000 bytes reuse the 65536 block (less than half wasted)");
    hr_alloc_free(&a, q, err, sizeof err);
    uint64_t raw_before = a.stats.raw_allocs;
    CHECK(hr_alloc(&a, 1000, &q, err, sizeof err) == 0 && q != big && a.stats.raw_allocs == raw_before + 1,
          "1000 bytes do not take a 65536 block: a new one");
    hr_alloc_destroy(&a);
    CHECK(d.live == 0, "nothing leaked");
}

static void test_out_of_memory(void) {
    fake_device d;
    hr_caching_allocator a;
    hr_alloc_init(&a, fake(&d, 10u << 20));
    uint64_t p, q, r;
    CHECK(hr_alloc(&a, 6u << 20, &p, err, sizeof err) == 0, "6 MiB on a 10 MiB device");
    hr_alloc_free(&a, p, err, sizeof err); /* cached: the device still holds it */
    CHECK(hr_alloc(&a, 8u << 20, &q, err, sizeof err) == 0, "8 MiB: the cached 6 MiB is released and the retry fits: %s", err);
    CHECK(a.stats.raw_frees == 1 && a.stats.reserved == (8u << 20), "the cache was emptied once");
    CHECK(hr_alloc(&a, 4u << 20, &r, err, sizeof err) == -1 &&
              strcmp(err, "out of GPU memory: 4.0 MiB requested; 8.0 MiB in use, 0 B cached, peak 8.0 MiB") == 0,
          "the message: %s", err);
    CHECK(a.stats.in_use == (8u << 20), "a failed request changes nothing in use");
    hr_alloc_destroy(&a);
    CHECK(d.live == 0 && d.used == 0, "nothing leaked");
}

static void test_bad_frees(void) {
    fake_device d;
    hr_caching_allocator a;
    hr_alloc_init(&a, fake(&d, 1u << 20));
    uint64_t p;
    hr_alloc(&a, 100, &p, err, sizeof err);
    CHECK(hr_alloc_free(&a, 0xdead, err, sizeof err) == -1 && strstr(err, "0xdead was not allocated here"), "%s", err);
    CHECK(hr_alloc_free(&a, p, err, sizeof err) == 0, "free");
    CHECK(hr_alloc_free(&a, p, err, sizeof err) == -1 && strstr(err, "freed twice"), "%s", err);
    CHECK(hr_alloc_empty_cache(&a) == 512 && d.live == 0 && a.stats.reserved == 0, "empty_cache releases the free block");
    hr_alloc_destroy(&a);
}

int main(void) {
    test_rounding();
    test_steady_state();
    test_best_fit();
    test_out_of_memory();
    test_bad_frees();
    return test_summary("cuda.allocator");
}
