/* What the fuzz targets of tests/fuzz share (docs/fuzzing.md): a private scratch directory for the
 * readers that take a path (removed at exit), writing an input there, and a failed property. Each
 * target is one LLVMFuzzerTestOneInput; a crash, a sanitizer report, a leak or fuzz_fail is a finding.
 * Built with _GNU_SOURCE (tests/fuzz/CMakeLists.txt: mkdtemp, nftw, fmemopen). */
#ifndef HR_FUZZ_UTIL_H
#define HR_FUZZ_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[256];

static inline int fuzz_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static inline void fuzz_remove_dir(void) {
    if (fuzz_dir_path[0]) nftw(fuzz_dir_path, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory: in /dev/shm when there is one (no disk writes per input), else $TMPDIR or
 * /tmp. */
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    const char *tmp = getenv("TMPDIR");
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && tmp[0] ? tmp : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/hybridrt-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_path)) {
        perror("fuzz: cannot create a scratch directory");
        abort();
    }
    atexit(fuzz_remove_dir);
    return fuzz_dir_path;
}

/* dir/name (a static buffer per call site is the caller's business: this one is reused). */
static inline const char *fuzz_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

/* Writes the bytes to path (replacing it). */
static inline void fuzz_write(const char *path, const void *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0) {
        perror(path);
        abort();
    }
}

/* A property every input must keep was broken: report it as a finding. */
#define fuzz_fail(...)                                                                                           \
    do {                                                                                                         \
        fprintf(stderr, "fuzz: property failed at %s:%d: ", __FILE__, __LINE__);                                 \
        fprintf(stderr, __VA_ARGS__);                                                                            \
        fprintf(stderr, "\n");                                                                                   \
        abort();                                                                                                 \
    } while (0)

#endif
