/* The on-disk kernel cache, without a GPU: miss then hit, what the key depends on, corrupt and
 * truncated entries rebuilt, the manifest, two processes compiling the same miss once, a
 * directory that cannot be created, export/import (corrupt, truncated, crafted archives) and
 * least-recently-used eviction. Skips like jit.nvrtc where NVRTC is missing (the crafted entries and
 * archives found by fuzzing, and the sweep of killed writers' temporary files, need no NVRTC and
 * run anyway).
 * usage: test_cache KERNEL_SRC_DIR */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "io/fileio.h"
#include "jit/cache.h"
#include "jit/kernels.h"
#include "jit/sha256.h"
#include "jit/tar.h"
#include "test_util.h"

static char err[4096];

static int get(hr_kernel_cache *c, const hr_kernel_spec *spec, hr_cache_source *how, hr_nvrtc_output *out) {
    int rc = hr_kernel_cache_get(c, spec, out, how, err, sizeof err);
    if (rc) fprintf(stderr, "get %s %s: %s\n", spec->name_expression, spec->target, err);
    return rc;
}

static void key_of(hr_kernel_cache *c, const hr_kernel_spec *spec, char key[65]) {
    if (hr_kernel_cache_key(c, spec, key, err, sizeof err)) {
        fprintf(stderr, "key: %s\n", err);
        key[0] = '\0';
    }
}

static void copy_file(const char *from, const char *to, int flip_last_byte) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int ch, prev = EOF;
    while (in && out && (ch = fgetc(in)) != EOF) {
        if (prev != EOF) fputc(prev, out);
        prev = ch;
    }
    if (out && prev != EOF) fputc(flip_last_byte ? prev ^ 1 : prev, out);
    if (in) fclose(in);
    if (out) fclose(out);
}

static int entry_count(const char *bin, int64_t bytes, const char *manifest, void *arg) {
    (void)bin, (void)bytes, (void)manifest;
    ++*(int *)arg;
    return 0;
}

static void test_hit_and_miss(const hr_nvrtc *lib, const char *dir) {
    hr_kernel_cache c;
    CHECK(hr_kernel_cache_open(&c, dir, lib, err, sizeof err) == 0 && c.writable, "open %s: %s", dir, err);
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80"};
    hr_cache_source how;
    hr_nvrtc_output first, second;
    CHECK(get(&c, &spec, &how, &first) == 0 && how == HR_CACHE_COMPILED, "a first get compiles");
    hr_kernel_cache again; /* as another process would */
    hr_kernel_cache_open(&again, dir, lib, err, sizeof err);
    CHECK(get(&again, &spec, &how, &second) == 0 && how == HR_CACHE_HIT && again.hits == 1 && again.compiled == 0,
          "a second get is a hit");
    CHECK(first.size == second.size && memcmp(first.image, second.image, first.size) == 0 &&
              strcmp(first.lowered_name, second.lowered_name) == 0,
          "the cached image and kernel name equal the compiled ones");
    hr_nvrtc_output_free(&first);
    hr_nvrtc_output_free(&second);

    /* the entry, its manifest, and the directory walk */
    char key[65], path[2048];
    key_of(&c, &spec, key);
    snprintf(path, sizeof path, "%s/%.2s/%s.bin", c.dir, key, key);
    CHECK(hr_kernel_cache_check_entry(path, err, sizeof err) == 0, "the entry verifies: %s", err);
    snprintf(path, sizeof path, "%s/%.2s/%s.json", c.dir, key, key);
    FILE *f = fopen(path, "r");
    char manifest[4096] = "";
    if (f) {
        size_t n = fread(manifest, 1, sizeof manifest - 1, f);
        manifest[n] = '\0';
        fclose(f);
    }
    CHECK(strstr(manifest, "\"template\":\t\"fill.cu\"") && strstr(manifest, "\"target\":\t\"sm_80\"") &&
              strstr(manifest, "\"kind\":\t\"cubin\""),
          "a readable manifest: %s", manifest);
    int entries = 0;
    CHECK(hr_kernel_cache_each(&c, entry_count, &entries) == 1 && entries == 1, "one entry listed, got %d", entries);

    /* PTX entries are kept as PTX */
    hr_kernel_spec ptx = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "compute_80"};
    hr_nvrtc_output out;
    CHECK(get(&c, &ptx, &how, &out) == 0 && out.is_ptx && how == HR_CACHE_COMPILED, "PTX compiled");
    hr_nvrtc_output_free(&out);
    CHECK(get(&again, &ptx, &how, &out) == 0 && out.is_ptx && how == HR_CACHE_HIT && strstr(out.image, ".entry"),
          "PTX from the cache");
    hr_nvrtc_output_free(&out);
}

static void test_key(const hr_nvrtc *lib, const char *dir, const char *kernel_src) {
    hr_kernel_cache c;
    hr_kernel_cache_open(&c, dir, lib, err, sizeof err);
    const char *ab[] = {"-DA=1", "-DB=2"}, *ba[] = {"-DB=2", "-DA=1"}, *a2[] = {"-DA=2", "-DB=2"};
    hr_kernel_spec base = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80",
                           .options = ab, .n_options = 2};
    char k0[65], k1[65];
    key_of(&c, &base, k0);
    hr_kernel_spec s = base;
    s.options = ba;
    key_of(&c, &s, k1);
    CHECK(k0[0] && strcmp(k0, k1) == 0, "the order of options does not change the key");
    /* each of these differs from base in one thing, and must get its own key */
    hr_kernel_spec variants[4] = {base, base, base, base};
    variants[0].options = a2;
    variants[1].target = "sm_86";
    variants[2].target = "compute_80";
    variants[3].name_expression = "hr_fill<double>";
    const char *what[4] = {"one option", "the target", "PTX instead of a cubin", "the name expression"};
    for (int i = 0; i < 4; i++) {
        key_of(&c, &variants[i], k1);
        CHECK(strcmp(k0, k1) != 0, "%s changes the key", what[i]);
    }
    hr_kernel_cache other = c;
    strcat(other.nvrtc_id, "-other");
    key_of(&other, &base, k1);
    CHECK(strcmp(k0, k1) != 0, "the NVRTC version changes the key");

    /* one byte of the template (read from HYBRIDRT_KERNEL_SRC) changes the key */
    char changed_dir[1024], from[1100], to[1100];
    snprintf(changed_dir, sizeof changed_dir, "%s-src", dir);
    mkdir(changed_dir, 0777);
    char hfrom[1100], hto[1100]; /* the shared header comes along: templates include it */
    snprintf(hfrom, sizeof hfrom, "%s/common.cuh", kernel_src);
    snprintf(hto, sizeof hto, "%s/common.cuh", changed_dir);
    copy_file(hfrom, hto, 0);
    snprintf(from, sizeof from, "%s/fill.cu", kernel_src);
    snprintf(to, sizeof to, "%s/fill.cu", changed_dir);
    copy_file(from, to, 0);
    setenv("HYBRIDRT_KERNEL_SRC", changed_dir, 1);
    key_of(&c, &base, k1);
    CHECK(strcmp(k0, k1) == 0, "the same template from a source folder has the same key");
    FILE *f = fopen(to, "ab");
    if (f) fputs("// one more line\n", f), fclose(f);
    key_of(&c, &base, k1);
    CHECK(strcmp(k0, k1) != 0, "a changed template changes the key");
    char k2[65];
    f = fopen(hto, "ab");
    if (f) fputs("// one more line\n", f), fclose(f);
    key_of(&c, &base, k2);
    CHECK(strcmp(k1, k2) != 0, "a changed header (common.cuh) changes the key");
    unsetenv("HYBRIDRT_KERNEL_SRC");
}

static void test_corruption(const hr_nvrtc *lib, const char *dir) {
    hr_kernel_cache c;
    hr_kernel_cache_open(&c, dir, lib, err, sizeof err);
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<double>", .target = "sm_90"};
    hr_cache_source how;
    hr_nvrtc_output good, out;
    CHECK(get(&c, &spec, &how, &good) == 0, "compile for the corruption test");
    char key[65], bin[2048], bad[2100];
    key_of(&c, &spec, key);
    snprintf(bin, sizeof bin, "%s/%.2s/%s.bin", c.dir, key, key);
    snprintf(bad, sizeof bad, "%s.flipped", bin);

    copy_file(bin, bad, 1); /* one flipped bit in the image */
    rename(bad, bin);
    CHECK(hr_kernel_cache_check_entry(bin, err, sizeof err) != 0 && strstr(err, "checksum mismatch"),
          "a flipped bit is caught: %s", err);
    c.warning[0] = '\0';
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_REBUILT && strstr(c.warning, "checksum mismatch") &&
              strstr(c.warning, "rebuilding"),
          "a corrupt entry is reported and rebuilt: %s", c.warning);
    CHECK(out.size == good.size && memcmp(out.image, good.image, good.size) == 0, "the rebuilt image is right");
    hr_nvrtc_output_free(&out);
    CHECK(hr_kernel_cache_check_entry(bin, err, sizeof err) == 0, "the rebuilt entry verifies");

    CHECK(truncate(bin, 100) == 0, "truncate");
    c.warning[0] = '\0';
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_REBUILT && strstr(c.warning, "truncated"),
          "a truncated entry is rebuilt: %s", c.warning);
    hr_nvrtc_output_free(&out);
    FILE *f = fopen(bin, "wb");
    if (f) fputs("not a cache entry at all, but long enough to have a header of sixty bytes in it....", f), fclose(f);
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_REBUILT && strstr(c.warning, "bad magic"),
          "a foreign file is rebuilt: %s", c.warning);
    CHECK(c.rebuilt == 3, "three rebuilds counted: %d", c.rebuilt);
    hr_nvrtc_output_free(&out);

    /* a FIFO in an entry's place once blocked every reader forever: now it is a bad entry at once
     * (the alarm fails the test instead of hanging it) */
    alarm(60);
    CHECK(unlink(bin) == 0 && mkfifo(bin, 0644) == 0, "a FIFO in place of the entry");
    CHECK(hr_kernel_cache_check_entry(bin, err, sizeof err) != 0 && strstr(err, "cannot read"),
          "verify reports the FIFO without blocking: %s", err);
    char tar[2200];
    snprintf(tar, sizeof tar, "%s-fifo.tar", dir);
    CHECK(hr_kernel_cache_export(&c, tar, err, sizeof err) >= 0, "export skips the FIFO without blocking: %s", err);
    unlink(tar);
    c.warning[0] = '\0';
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_REBUILT && out.size == good.size,
          "a FIFO entry is rebuilt: %s", c.warning);
    struct stat st;
    CHECK(stat(bin, &st) == 0 && S_ISREG(st.st_mode), "the rebuilt entry is a regular file again");
    hr_nvrtc_output_free(&out);
    CHECK(unlink(bin) == 0 && symlink("/dev/zero", bin) == 0, "a symbolic link to /dev/zero in its place");
    CHECK(hr_kernel_cache_check_entry(bin, err, sizeof err) != 0, "verify refuses the link: %s", err);
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_REBUILT, "a linked entry is rebuilt: %s", c.warning);
    hr_nvrtc_output_free(&out);
    alarm(0);
    hr_nvrtc_output_free(&good);
}

/* Two processes miss the same kernel at once: it is compiled once, both get it. */
static void test_concurrent(const hr_nvrtc *lib, const char *dir) {
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<double>", .target = "sm_86"};
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            hr_kernel_cache c;
            hr_cache_source how;
            hr_nvrtc_output out;
            if (hr_kernel_cache_open(&c, dir, lib, err, sizeof err) || hr_kernel_cache_get(&c, &spec, &out, &how, err, sizeof err))
                _exit(9);
            _exit(how == HR_CACHE_COMPILED ? 1 : 0);
        }
    }
    int compiled = 0, failed = 0;
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 9;
        if (code == 9) failed++;
        else compiled += code;
    }
    CHECK(failed == 0 && compiled == 1, "two processes: %d failed, %d compiled (want 0 and 1)", failed, compiled);
}

static void test_unwritable(const hr_nvrtc *lib, const char *dir) {
    /* a cache directory below a regular file can never be created */
    char file[1024], below[1100];
    snprintf(file, sizeof file, "%s-file", dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    snprintf(below, sizeof below, "%s/cache", file);
    hr_kernel_cache c;
    CHECK(hr_kernel_cache_open(&c, below, lib, err, sizeof err) == 0 && !c.writable && strstr(c.warning, "not writable"),
          "an unusable directory still opens, with a warning: %s", c.warning);
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_75"};
    hr_cache_source how;
    hr_nvrtc_output out;
    CHECK(get(&c, &spec, &how, &out) == 0 && how == HR_CACHE_COMPILED && out.size > 0, "compiled in memory");
    hr_nvrtc_output_free(&out);
    /* no NVRTC and a miss: a clear error */
    hr_kernel_cache bare;
    hr_kernel_cache_open(&bare, dir, NULL, err, sizeof err);
    CHECK(hr_kernel_cache_get(&bare, &spec, &out, &how, err, sizeof err) != 0 && strstr(err, "NVRTC"),
          "no NVRTC: %s", err);
    unlink(file);
}

/* Lets the clock move on, so that entries used one after the other have distinct modification times. */
static void pause_20ms(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int count_entries(hr_kernel_cache *c) {
    int n = 0;
    hr_kernel_cache_each(c, entry_count, &n);
    return n;
}

/* export -> import into an empty cache: the same entries, found as hits; archives that are bad or
 * crafted are refused or skipped member by member. */
static void test_archive(const hr_nvrtc *lib, const char *dir) {
    hr_kernel_cache src, dst;
    char dst_dir[1024], tar[1100], bad[1100];
    snprintf(dst_dir, sizeof dst_dir, "%s-imported", dir);
    snprintf(tar, sizeof tar, "%s.tar", dir);
    snprintf(bad, sizeof bad, "%s-bad.tar", dir);
    hr_kernel_cache_open(&src, dir, lib, err, sizeof err);
    hr_kernel_cache_open(&dst, dst_dir, lib, err, sizeof err);
    int n_src = count_entries(&src);
    int exported = hr_kernel_cache_export(&src, tar, err, sizeof err);
    CHECK(exported == n_src && n_src > 0, "exported %d of %d entries: %s", exported, n_src, err);
    int skipped = -1;
    int imported = hr_kernel_cache_import(&dst, tar, &skipped, err, sizeof err);
    CHECK(imported == n_src && skipped == 0 && count_entries(&dst) == n_src, "imported %d, skipped %d: %s", imported,
          skipped, err);
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80"};
    hr_cache_source how;
    hr_nvrtc_output out;
    CHECK(get(&dst, &spec, &how, &out) == 0 && how == HR_CACHE_HIT, "an imported kernel is a hit");
    hr_nvrtc_output_free(&out);
    CHECK(hr_kernel_cache_import(&dst, tar, &skipped, err, sizeof err) == 0 && skipped == 0,
          "importing again keeps the entries there");

    /* a flipped byte inside a member's image: that member is skipped, the others installed */
    FILE *f = fopen(tar, "rb");
    char *bytes = NULL;
    long size = 0;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (bytes = malloc((size_t)size)) && fread(bytes, 1, (size_t)size, f) == (size_t)size) {
        bytes[512 + 200] ^= 1; /* inside the first member's data */
        FILE *g = fopen(bad, "wb");
        if (g) fwrite(bytes, 1, (size_t)size, g), fclose(g);
    }
    if (f) fclose(f);
    char fresh_dir[1100];
    snprintf(fresh_dir, sizeof fresh_dir, "%s-fresh", dir);
    hr_kernel_cache fresh;
    hr_kernel_cache_open(&fresh, fresh_dir, lib, err, sizeof err);
    imported = hr_kernel_cache_import(&fresh, bad, &skipped, err, sizeof err);
    CHECK(imported == n_src - 1 && skipped == 1 && strstr(err, "checksum mismatch"),
          "a corrupt member is skipped: imported %d, skipped %d, %s", imported, skipped, err);
    /* truncated, and not a tar file at all */
    f = fopen(bad, "wb");
    if (f && bytes) fwrite(bytes, 1, 700, f);
    if (f) fclose(f);
    CHECK(hr_kernel_cache_import(&fresh, bad, &skipped, err, sizeof err) < 0 && strstr(err, "truncated"),
          "a truncated archive: %s", err);
    f = fopen(bad, "wb");
    if (f) fputs("this is not a tar archive, just some text that is longer than nothing\n", f), fclose(f);
    CHECK(hr_kernel_cache_import(&fresh, bad, &skipped, err, sizeof err) < 0 && strstr(err, "tar"),
          "not a tar file: %s", err);
    CHECK(hr_kernel_cache_import(&fresh, "/nonexistent.tar", &skipped, err, sizeof err) < 0 && strstr(err, "cannot open"),
          "a missing archive: %s", err);
    /* a member trying to leave the cache directory is skipped */
    f = fopen(bad, "wb");
    if (f) {
        hr_tar_add(f, "hybridrt-kernels-v1/../../evil.bin", "x", 1, 0);
        hr_tar_finish(f);
        fclose(f);
    }
    CHECK(hr_kernel_cache_import(&fresh, bad, &skipped, err, sizeof err) == 0 && skipped == 1 &&
              strstr(err, "not a kernel cache member"),
          "a crafted member is skipped: %s", err);
    free(bytes);
    unlink(tar);
    unlink(bad);
}

/* A size cap evicts the least recently used entries first. */
static void test_eviction(const hr_nvrtc *lib, const char *dir) {
    char evict_dir[1100];
    snprintf(evict_dir, sizeof evict_dir, "%s-evict", dir);
    hr_kernel_cache c;
    hr_kernel_cache_open(&c, evict_dir, lib, err, sizeof err);
    c.max_bytes = 0;
    const char *targets[] = {"sm_75", "sm_80", "sm_86", "sm_90"};
    hr_cache_source how;
    hr_nvrtc_output out;
    for (int i = 0; i < 4; i++) {
        hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = targets[i]};
        get(&c, &spec, &how, &out);
        hr_nvrtc_output_free(&out);
        pause_20ms();
    }
    /* use sm_75 again: it becomes the most recently used */
    hr_kernel_spec first = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_75"};
    get(&c, &first, &how, &out);
    hr_nvrtc_output_free(&out);
    CHECK(count_entries(&c) == 4, "four entries before the cap");
    int removed = hr_kernel_cache_evict(&c, 1); /* no entry fits in one byte */
    CHECK(removed == 4 && count_entries(&c) == 0, "a 1-byte cap removes everything: %d", removed);
    for (int i = 0; i < 4; i++) {
        hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = targets[i]};
        get(&c, &spec, &how, &out);
        hr_nvrtc_output_free(&out);
        pause_20ms();
    }
    get(&c, &first, &how, &out); /* sm_75 used last */
    hr_nvrtc_output_free(&out);
    c.max_bytes = 3 * 6000; /* room for two or three entries */
    hr_kernel_spec fifth = {.template_file = "fill.cu", .name_expression = "hr_fill<double>", .target = "sm_80"};
    CHECK(get(&c, &fifth, &how, &out) == 0 && how == HR_CACHE_COMPILED && c.evicted >= 2, "storing past the cap evicts (%d)",
          c.evicted);
    hr_nvrtc_output_free(&out);
    CHECK(get(&c, &first, &how, &out) == 0 && how == HR_CACHE_HIT, "the most recently used entry survives");
    hr_nvrtc_output_free(&out);
    hr_kernel_spec oldest = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80"};
    c.max_bytes = 0;
    CHECK(get(&c, &oldest, &how, &out) == 0 && how == HR_CACHE_COMPILED, "the least recently used entry went first");
    hr_nvrtc_output_free(&out);
}

/* ---- crafted files, found by fuzzing (tests/fuzz): no NVRTC needed ---- */

/* An entry whose name length and image size add up to the file's size only modulo 2^64: it passed the
 * size check, and a load copied 2^64 - 1 bytes (tests/fuzz/corpus/fuzz_cache_entry/finding-size-wrap.bin). */
static void test_entry_size_wrap(const char *dir) {
    hr_kernel_cache c;
    CHECK(hr_kernel_cache_open(&c, dir, NULL, err, sizeof err) == 0, "open without NVRTC: %s", err);
    snprintf(c.nvrtc_id, sizeof c.nvrtc_id, "test"); /* keys without NVRTC: lookups only */
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = "hr_fill<float>", .target = "sm_80"};
    char key[65], sub[1200], path[1300];
    key_of(&c, &spec, key);
    snprintf(sub, sizeof sub, "%s/%.2s", c.dir, key);
    mkdir(sub, 0777);
    snprintf(path, sizeof path, "%s/%s.bin", sub, key);
    uint8_t entry[61];
    memcpy(entry, "HRKCACHE", 8);
    hr_put_le32(entry + 8, HR_CACHE_FORMAT);
    hr_put_le32(entry + 12, 0);
    hr_put_le64(entry + 16, UINT64_MAX); /* 60 + 2 + (2^64 - 1) == 61 (mod 2^64) */
    hr_put_le32(entry + 24, 2);
    entry[60] = 'k';
    hr_sha256 s;
    hr_sha256_init(&s);
    hr_sha256_update(&s, entry + 60, 1);
    hr_sha256_final(&s, entry + 28);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(entry, 1, sizeof entry, f), fclose(f);
    CHECK(hr_kernel_cache_check_entry(path, err, sizeof err) == -1 && strstr(err, "inconsistent sizes"),
          "sizes that wrap around 2^64 are refused: %s", err);
    hr_cache_source how;
    hr_nvrtc_output out;
    CHECK(hr_kernel_cache_get(&c, &spec, &out, &how, err, sizeof err) == -1 && strstr(c.warning, "inconsistent sizes") &&
              access(path, F_OK) != 0,
          "a load reports the bad entry and deletes it: %s", c.warning);
}

/* A tar header with the given name and ustar prefix (their full widths, without NULs) and size field. */
static void tar_header(uint8_t *h, const char *name, const char *prefix, const char *size) {
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 124, size, strlen(size));
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 345, prefix, strlen(prefix));
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static int keep_name(const char *name, const void *data, size_t size, void *arg) {
    (void)data, (void)size;
    snprintf(arg, 300, "%s", name);
    return 0;
}

static void test_tar_crafted(const char *dir) {
    char path[1100], name[101], prefix[156], got[300] = "", want[300];
    snprintf(path, sizeof path, "%s/crafted.tar", dir);
    memset(name, 'n', 100), name[100] = '\0';
    memset(prefix, 'p', 155), prefix[155] = '\0';
    /* a 155-byte prefix and a 100-byte name: 257 bytes with the '/' and the NUL (a 256-byte buffer
     * overflowed by one) */
    uint8_t blocks[4 * 512] = {0};
    tar_header(blocks, name, prefix, "00000000001");
    blocks[512] = 'x';
    FILE *f = fopen(path, "wb");
    if (f) fwrite(blocks, 1, sizeof blocks, f), fclose(f);
    f = fopen(path, "rb");
    int n = f ? hr_tar_each(f, keep_name, got, err, sizeof err) : -1;
    if (f) fclose(f);
    snprintf(want, sizeof want, "%s/%s", prefix, name);
    CHECK(n == 1 && strcmp(got, want) == 0, "the longest ustar name, prefix/name, is read whole (%zu bytes)", strlen(got));

    /* a member claiming 64 GiB in a 1.5 KB archive: refused as truncated, without first allocating
     * what it claims (checked under a 2 GiB address-space limit, in a child) */
    tar_header(blocks, "big.bin", "", "777777777777");
    f = fopen(path, "wb");
    if (f) fwrite(blocks, 1, 3 * 512, f), fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit lim = {(rlim_t)2 << 30, (rlim_t)2 << 30};
        setrlimit(RLIMIT_AS, &lim);
        FILE *g = fopen(path, "rb");
        int rc = g ? hr_tar_each(g, keep_name, got, err, sizeof err) : 0;
        _exit(rc == -1 && strstr(err, "truncated") ? 0 : (fprintf(stderr, "big member: %s\n", err), 1));
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "a member larger than the archive is truncated");
    unlink(path);
}

/* The temporary files killed writers leave (found by cli.crash: kill -9 in cache warm left
 * KEY.bin.tmp.* that nothing removed): the sweep removes a dead process's of this machine at once,
 * another machine's (or an old-style name's) only once HR_CACHE_STALE_TEMP_S old, a live writer's and
 * the entries never. */
static void test_temp_sweep(const char *dir) {
    hr_kernel_cache c;
    CHECK(hr_kernel_cache_open(&c, dir, NULL, err, sizeof err) == 0, "open without NVRTC: %s", err);
    char host[64];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '.' || *p == '/' || *p == '@') *p = '_';
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    const char *key = "ab34567890123456789012345678901234567890123456789012345678901234";
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/ab", c.dir);
    mkdir(sub, 0777);
    struct {
        char name[300];
        int old, removed;
    } files[7];
    snprintf(files[0].name, 300, "%s.bin.tmp.%d@%s.0123456789abcdef", key, (int)dead, host);
    files[0].old = 0, files[0].removed = 1; /* this machine, process gone */
    snprintf(files[1].name, 300, "%s.bin.tmp.%d@%s.0123456789abcdef", key, (int)getpid(), host);
    files[1].old = 1, files[1].removed = 0; /* this machine, alive (however old) */
    snprintf(files[2].name, 300, "%s.json.tmp.%d@other-machine.0123456789abcdef", key, (int)dead);
    files[2].old = 0, files[2].removed = 0; /* another machine's, recent: it may be writing */
    snprintf(files[3].name, 300, "%s.json.tmp.%d@other-machine.fedcba9876543210", key, (int)dead);
    files[3].old = 1, files[3].removed = 1;
    snprintf(files[4].name, 300, "%s.bin.tmp.%d.0123456789abcdef", key, (int)dead);
    files[4].old = 0, files[4].removed = 0; /* the name before it said the machine: by age */
    snprintf(files[5].name, 300, "%s.bin.tmp.%d.fedcba9876543210", key, (int)dead);
    files[5].old = 1, files[5].removed = 1;
    snprintf(files[6].name, 300, "%s.bin", key);
    files[6].old = 1, files[6].removed = 0; /* an entry, never */
    for (int i = 0; i < 7; i++) {
        char path[1600];
        snprintf(path, sizeof path, "%s/%s", sub, files[i].name);
        FILE *f = fopen(path, "wb");
        if (f) fputs("half", f), fclose(f);
        struct utimbuf t = {time(NULL) - 2 * HR_CACHE_STALE_TEMP_S, time(NULL) - 2 * HR_CACHE_STALE_TEMP_S};
        if (files[i].old) utime(path, &t);
    }
    int64_t bytes = 0;
    int n = hr_kernel_cache_sweep_temps(&c, &bytes);
    CHECK(n == 3 && bytes == 12, "the sweep removes 3 files of 4 bytes, removed %d (%lld bytes)", n, (long long)bytes);
    for (int i = 0; i < 7; i++) {
        char path[1600];
        snprintf(path, sizeof path, "%s/%s", sub, files[i].name);
        CHECK((access(path, F_OK) != 0) == files[i].removed, "%s is %s", files[i].name,
              files[i].removed ? "removed" : "kept");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_cache KERNEL_SRC_DIR\n");
        return 2;
    }
    char crafted[] = "/tmp/hybridrt-cache-crafted-XXXXXX";
    CHECK(mkdtemp(crafted) != NULL, "mkdtemp");
    test_entry_size_wrap(crafted);
    test_tar_crafted(crafted);
    test_temp_sweep(crafted);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", crafted);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", crafted);
    hr_nvrtc lib;
    if (hr_nvrtc_open(&lib, err, sizeof err) != 0) {
        test_library_missing("jit.cache", "", "NVRTC", "HYBRIDRT_REQUIRE_NVRTC", err);
        return test_summary("jit.cache");
    }
    char dir[] = "/tmp/hybridrt-cache-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_hit_and_miss(&lib, dir);
    test_key(&lib, dir, argv[1]);
    test_corruption(&lib, dir);
    test_concurrent(&lib, dir);
    test_unwritable(&lib, dir);
    test_archive(&lib, dir);
    test_eviction(&lib, dir);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'-src '%s'-imported '%s'-fresh '%s'-evict", dir, dir, dir, dir, dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    hr_nvrtc_close(&lib);
    return test_summary("jit.cache");
}
