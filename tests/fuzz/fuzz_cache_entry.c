/* libFuzzer target: a kernel cache entry (runtime/jit/cache.c): the file is put in an entry's place
 * and read as `hybridrt cache verify` reads it (hr_kernel_cache_check_entry) and as a kernel load
 * reads it (hr_kernel_cache_get: a hit copies the kernel name and image out, a bad entry is deleted).
 * A mutated entry rarely keeps a valid SHA-256, so each input is tried twice: as it is, and with its
 * checksum recomputed over whatever follows the header (the sizes and fields then decide alone).
 * Property: an entry that loads gives an image and a name that lie inside the file (the image last). */
#include "fuzz_util.h"

#include "jit/cache.h"
#include "jit/sha256.h"

#define HEADER 60 /* magic 8, format 4, kind 4, image size 8, name length 4, sha256 32 (docs/cache.md) */

static hr_kernel_cache cache;
static hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80"};
static char entry[1400];

static void setup(void) {
    char err[512], key[65];
    if (hr_kernel_cache_open(&cache, fuzz_path("cache"), NULL, err, sizeof err)) fuzz_fail("%s", err);
    snprintf(cache.nvrtc_id, sizeof cache.nvrtc_id, "fuzz"); /* a key without NVRTC: lookups only */
    if (hr_kernel_cache_key(&cache, &spec, key, err, sizeof err)) fuzz_fail("%s", err);
    char sub[1300];
    snprintf(sub, sizeof sub, "%s/%.2s", cache.dir, key);
    mkdir(sub, 0700);
    snprintf(entry, sizeof entry, "%s/%s.bin", sub, key);
}

static void try_entry(const uint8_t *data, size_t size) {
    char err[1024];
    fuzz_write(entry, data, size);
    int verified = hr_kernel_cache_check_entry(entry, err, sizeof err) == 0;
    hr_nvrtc_output out;
    hr_cache_source how;
    int loaded = hr_kernel_cache_get(&cache, &spec, &out, &how, err, sizeof err) == 0;
    if (loaded != verified) fuzz_fail("check_entry says %d, a load says %d", verified, loaded);
    if (loaded) {
        size_t name_len = strlen(out.lowered_name);
        if (how != HR_CACHE_HIT || out.size == 0 || out.size > size - HEADER || name_len > size - HEADER - out.size ||
            memcmp(out.lowered_name, data + HEADER, name_len) || memcmp(out.image, data + size - out.size, out.size))
            fuzz_fail("a loaded entry of %zu bytes gave a %zu-byte image and a %zu-byte name", size, out.size, name_len);
        hr_nvrtc_output_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!entry[0]) setup();
    try_entry(data, size);
    if (size < HEADER) return 0;
    uint8_t *fixed = malloc(size), digest[32];
    memcpy(fixed, data, size);
    hr_sha256 s;
    hr_sha256_init(&s);
    hr_sha256_update(&s, fixed + HEADER, size - HEADER);
    hr_sha256_final(&s, digest);
    if (memcmp(fixed + 28, digest, 32)) {
        memcpy(fixed + 28, digest, 32);
        try_entry(fixed, size);
    }
    free(fixed);
    return 0;
}
