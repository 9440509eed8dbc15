/* libFuzzer target: a tar archive (runtime/jit/tar.c, hr_tar_each: ustar headers, their checksums,
 * sizes, prefix/name, member data) read as `hybridrt cache import` reads it
 * (hr_kernel_cache_import into a scratch cache: member names, entries verified before they are
 * installed, manifests), then the cache emptied again (hr_kernel_cache_evict). A mutated archive
 * rarely keeps valid header checksums, so each input is tried twice: as it is, and with every
 * header's checksum recomputed (and the SHA-256 of every member that looks like a cache entry).
 * Property: every member handed over has a NUL-terminated name and readable data. */
#include "fuzz_util.h"

#include "jit/cache.h"
#include "jit/sha256.h"
#include "jit/tar.h"

#define BLOCK 512

static hr_kernel_cache cache;

static int touch(const char *name, const void *data, size_t size, void *arg) {
    volatile uint8_t sink = (uint8_t)strlen(name);
    if (size) sink ^= ((const uint8_t *)data)[0] ^ ((const uint8_t *)data)[size - 1];
    (void)sink;
    ++*(int *)arg;
    return 0;
}

static void try_archive(const uint8_t *data, size_t size) {
    char err[1024];
    int members = 0;
    const char *path = fuzz_path("in.tar");
    fuzz_write(path, data, size);
    FILE *f = fopen(path, "rb");
    if (!f) fuzz_fail("cannot open %s", path);
    int n = hr_tar_each(f, touch, &members, err, sizeof err);
    fclose(f);
    if (n >= 0 && n != members) fuzz_fail("hr_tar_each says %d files but handed over %d", n, members);
    int skipped = 0;
    hr_kernel_cache_import(&cache, path, &skipped, err, sizeof err);
    hr_kernel_cache_evict(&cache, 0);
}

/* The size field of a header, as the reader takes it (octal), or 0. */
static size_t member_size(const uint8_t *h) {
    size_t v = 0;
    for (int i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; i++) v = v * 8 + (size_t)(h[i] - '0');
    return v;
}

/* Recomputes every header checksum (and cache entry checksum) in place; true when any changed. */
static bool fix_checksums(uint8_t *a, size_t size) {
    bool changed = false;
    for (size_t pos = 0; pos + BLOCK <= size;) {
        uint8_t *h = a + pos, old[8];
        unsigned sum = 0;
        memcpy(old, h + 148, 8);
        for (int i = 0; i < BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        if (sum == 8 * ' ') break; /* a zero block: the end */
        char field[8];
        snprintf(field, sizeof field, "%06o", sum & 0777777);
        memcpy(h + 148, field, 7);
        h[155] = ' ';
        changed |= memcmp(old, h + 148, 8) != 0;
        size_t n = member_size(h), body = pos + BLOCK;
        if (n >= 60 && n <= size - body && memcmp(a + body, "HRKCACHE", 8) == 0) {
            uint8_t digest[32];
            hr_sha256 s;
            hr_sha256_init(&s);
            hr_sha256_update(&s, a + body + 60, n - 60);
            hr_sha256_final(&s, digest);
            changed |= memcmp(a + body + 28, digest, 32) != 0;
            memcpy(a + body + 28, digest, 32);
        }
        if (n > size) break;
        pos = body + (n + BLOCK - 1) / BLOCK * BLOCK;
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!cache.dir[0]) {
        char err[512];
        if (hr_kernel_cache_open(&cache, fuzz_path("cache"), NULL, err, sizeof err) || !cache.writable)
            fuzz_fail("%s", err);
    }
    try_archive(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    memcpy(fixed, data, size);
    if (fix_checksums(fixed, size)) try_archive(fixed, size);
    free(fixed);
    return 0;
}
