/* File plumbing shared by the formats of runtime/io: mapping a file to read it whole, writing a file
 * all or nothing, and little-endian header fields. */
#ifndef HR_IO_FILEIO_H
#define HR_IO_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/context.h"

/* ---- reading: a read-only private mapping of a whole regular file ---- */

typedef struct {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
} hr_mapped_file;

/* Returns 0, or -1 with the error "PATH: reason" (missing, a directory, not a regular file, ...). */
int hr_map_file(hr_ctx *ctx, const char *path, hr_mapped_file *m);
void hr_unmap_file(hr_mapped_file *m);

/* ---- writing all or nothing ----
 * The bytes go to a temporary file beside the target (<path>.tmp.XXXXXX, in the same directory so
 * the rename cannot cross file systems), which is flushed, synced and renamed over the target only
 * once everything was written. Any failure removes the temporary file and leaves an existing file at
 * the target untouched: a full disk in the middle of a checkpoint never destroys the previous one.
 * A target that exists and is not a regular file (a directory, a device such as /dev/null, a FIFO,
 * a socket) is refused, never replaced; a symbolic link is followed to its file, which is written
 * (the link stays), and a link to nothing is refused. */

typedef struct {
    FILE *f;     /* the temporary file, NULL once closed */
    char *path;  /* the target (owned copy) */
    char *tmp;   /* the temporary file's name, NULL once renamed or removed */
} hr_atomic_file;

/* Each returns 0, or -1 with the error "cannot write 'PATH': reason". A call that fails has already
 * removed the temporary file; call hr_atomic_abort only to give up for a reason of your own. */
int hr_atomic_open(hr_ctx *ctx, hr_atomic_file *af, const char *path);
int hr_atomic_write(hr_ctx *ctx, hr_atomic_file *af, const void *data, size_t n);
/* Overwrites bytes already written at offset (a header patched once its counts are known). */
int hr_atomic_write_at(hr_ctx *ctx, hr_atomic_file *af, int64_t offset, const void *data, size_t n);
/* flush, fsync, close, rename over the target. On failure the temporary file is gone too. */
int hr_atomic_commit(hr_ctx *ctx, hr_atomic_file *af);
/* Closes and removes the temporary file (safe to call twice, or after a failed open). */
void hr_atomic_abort(hr_atomic_file *af);

/* ---- little-endian header fields (the formats are little-endian whatever the host) ---- */

static inline void hr_put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hr_put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t hr_get_le32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint64_t hr_get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Tensor data is written and read as the host lays it out: these formats need a little-endian host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "runtime/io reads and writes little-endian data and needs a little-endian host"
#endif

#endif
