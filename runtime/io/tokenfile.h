/* Training data: binary token files, and plain text read as bytes.
 *
 * A token file (docs/data.md) is a 32-byte little-endian header, then the ids:
 *   0  "HRTOKENS"   8  u32 version (1)   12  u32 id width in bytes (2 or 4)   16  u32 vocab size (1..2^30)
 *   20 u32 reserved (0)   24  u64 number of tokens   32  ids (u16 or u32, little-endian)
 * Any other file is text, and its bytes are its tokens (vocab 256).
 * Files are memory-mapped, not read: a multi-gigabyte corpus costs no memory up front, and ids are
 * checked against the vocab as batches read them, not when the file is opened. */
#ifndef HR_IO_TOKENFILE_H
#define HR_IO_TOKENFILE_H

#include <stdint.h>
#include <string.h>

#include "core/context.h"
#include "core/tensor.h"

#define HR_TOKENS_MAGIC "HRTOKENS"
#define HR_TOKENS_VERSION 1
#define HR_TOKENS_HEADER 32
/* The largest vocab size a token file may declare: the largest vocabulary a model may have
 * (lua/hybridrt/nn/model.lua) and `tokenize --train-bpe` may train. A 32-byte header claiming 2^32 - 1
 * would otherwise size a model's embedding. */
#define HR_TOKENS_MAX_VOCAB (1u << 30)

typedef enum { HR_TOKENS_TEXT, HR_TOKENS_FILE } hr_tokens_kind;

typedef struct {
    hr_tokens_kind kind;
    int64_t n_tokens;
    uint32_t vocab;     /* 256 for text */
    int width;          /* bytes per id: 1 (text), 2 or 4 */
    const uint8_t *ids; /* inside the mapping */
    const void *map;    /* the whole file, mapped read-only (NULL for ids held in memory) */
    size_t map_size;
    uint32_t *owned;    /* ids held in memory (hr_tokens_from_ids), freed by close */
    char *path;
} hr_tokens;

/* Maps path. Returns NULL with the context's error naming the file: missing (with the system's
 * reason), empty, or a token file whose header or size is wrong (truncated, trailing bytes). */
hr_tokens *hr_tokens_open(hr_ctx *ctx, const char *path);
void hr_tokens_close(hr_tokens *tok); /* unmaps or frees; NULL is fine */

/* Tokens held in memory, of the given kind (HR_TOKENS_TEXT for text a tokenizer encoded at load time): takes
 * ownership of ids (malloc'ed, n of them, all below vocab) and names them path. NULL when out of
 * memory (ids are then freed). */
hr_tokens *hr_tokens_from_ids(hr_ctx *ctx, const char *path, hr_tokens_kind kind, uint32_t *ids, int64_t n,
                              uint32_t vocab);

/* Token i (0 <= i < n_tokens; not checked, nor against the vocab). */
static inline uint32_t hr_tokens_get(const hr_tokens *tok, int64_t i) {
    const uint8_t *p = tok->ids + i * tok->width;
    if (tok->width == 1) return p[0];
    if (tok->width == 2) return (uint32_t)p[0] | (uint32_t)p[1] << 8;
    uint32_t v;
    memcpy(&v, p, 4); /* the host is little-endian (io/fileio.h) */
    return v;
}

/* A batch of next-token examples: for each row b, x[b, t] = tok[starts[b] + t] and
 * y[b, t] = tok[starts[b] + t + 1]. x and y are contiguous (B, T) tensors of i64 or i32, not outputs
 * of ops. Refuses a start outside [0, n_tokens - T - 1] and an id >= vocab (naming it and where it
 * is). Records the writes, so a backward through a graph that read x or y before refuses to run.
 * Returns 0, or -1 with the context's error set (after a bad id, the rows before it are written). */
int hr_tokens_fill(hr_ctx *ctx, const hr_tokens *tok, const int64_t *starts, int64_t B, int64_t T, hr_tensor *x,
                   hr_tensor *y);

/* Writes a token file (ids 2 bytes wide when vocab <= 65536, else 4) atomically: temp file + rename.
 * Refuses an id >= vocab, naming it and its position. Returns 0, or -1 with the error set. */
int hr_tokens_write(hr_ctx *ctx, const char *path, const uint32_t *ids, int64_t n, uint32_t vocab);

/* The same, streamed: open, append any number of times, then commit (or abort). The token count in
 * the header is filled in by commit. open returns NULL on failure; append and commit return 0, or -1
 * with the error set and the writer already freed (its temporary file removed). */
typedef struct hr_tokens_writer hr_tokens_writer;
hr_tokens_writer *hr_tokens_writer_open(hr_ctx *ctx, const char *path, uint32_t vocab);
int hr_tokens_writer_append(hr_ctx *ctx, hr_tokens_writer *w, const uint32_t *ids, int64_t n);
int hr_tokens_writer_commit(hr_ctx *ctx, hr_tokens_writer *w); /* frees w either way */
void hr_tokens_writer_abort(hr_tokens_writer *w);              /* removes the temporary file, frees w */
int64_t hr_tokens_writer_count(const hr_tokens_writer *w);     /* tokens appended so far */

#endif
