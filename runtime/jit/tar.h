/* A minimal tar (POSIX ustar) writer and reader for regular files: how `hybridrt cache export`
 * ships a warmed kernel cache and `import` installs it. Knows bytes and names, not kernels. */
#ifndef HR_JIT_TAR_H
#define HR_JIT_TAR_H

#include <stdint.h>
#include <stdio.h>

/* Appends one regular file (name under 100 bytes) to an open archive. Returns 0 or -1. */
int hr_tar_add(FILE *f, const char *name, const void *data, size_t size, int64_t mtime);
/* Writes the end-of-archive marker (two zero blocks). Returns 0 or -1. */
int hr_tar_finish(FILE *f);

/* Calls fn(name, data, size, arg) for each regular file of the archive, in order; fn returns
 * non-zero to stop. Returns the number of files read, or -1 with err (not a tar archive, a bad
 * header checksum, truncated). */
int hr_tar_each(FILE *f, int (*fn)(const char *name, const void *data, size_t size, void *arg), void *arg, char *err,
                size_t err_size);

#endif
