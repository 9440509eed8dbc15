#include "io/tokenfile.h"

#include <stdlib.h>

#include "io/fileio.h"

/* ---- reading ---- */

/* The header of a token file, checked against the file's size: the ids must fill the rest exactly. */
static int read_header(hr_ctx *ctx, const char *path, const uint8_t *p, size_t size, hr_tokens *tok) {
    if (size < HR_TOKENS_HEADER)
        return hr_error(ctx, "%s: truncated token file: %zu bytes, shorter than its %d-byte header", path, size,
                        HR_TOKENS_HEADER);
    uint32_t version = hr_get_le32(p + 8), width = hr_get_le32(p + 12), vocab = hr_get_le32(p + 16);
    uint32_t reserved = hr_get_le32(p + 20);
    uint64_t n = hr_get_le64(p + 24), bytes = size - HR_TOKENS_HEADER;
    if (version != HR_TOKENS_VERSION)
        return hr_error(ctx, "%s: token file version %u is not supported (this build reads version %d)", path, version,
                        HR_TOKENS_VERSION);
    if (width != 2 && width != 4) return hr_error(ctx, "%s: token id width is %u bytes, not 2 or 4", path, width);
    if (vocab == 0) return hr_error(ctx, "%s: the vocab size in the header is 0", path);
    if (vocab > HR_TOKENS_MAX_VOCAB)
        return hr_error(ctx, "%s: the vocab size %u in the header is over the limit of %u", path, vocab,
                        HR_TOKENS_MAX_VOCAB);
    if (width == 2 && vocab > 65536)
        return hr_error(ctx, "%s: the vocab size %u does not fit ids 2 bytes wide (at most 65536)", path, vocab);
    if (reserved != 0) return hr_error(ctx, "%s: the reserved header field is %u, not 0", path, reserved);
    if (n > bytes / width)
        return hr_error(ctx, "%s: truncated: the header says %llu tokens (%llu bytes of ids) but %llu bytes follow it",
                        path, (unsigned long long)n, (unsigned long long)n * width, (unsigned long long)bytes);
    if (n * width != bytes)
        return hr_error(ctx, "%s: %llu trailing bytes after the %llu tokens the header announces", path,
                        (unsigned long long)(bytes - n * width), (unsigned long long)n);
    tok->kind = HR_TOKENS_FILE;
    tok->n_tokens = (int64_t)n;
    tok->vocab = vocab;
    tok->width = (int)width;
    tok->ids = p + HR_TOKENS_HEADER;
    return 0;
}

hr_tokens *hr_tokens_open(hr_ctx *ctx, const char *path) {
    hr_mapped_file m;
    if (hr_map_file(ctx, path, &m)) return NULL;
    if (m.size == 0) {
        hr_error(ctx, "%s: empty data file", path);
        return NULL;
    }
    hr_tokens *tok = calloc(1, sizeof *tok);
    char *name = strdup(path);
    if (!tok || !name) {
        free(tok);
        free(name);
        hr_unmap_file(&m);
        hr_error(ctx, "out of memory opening %s", path);
        return NULL;
    }
    *tok = (hr_tokens){.map = m.data, .map_size = m.size, .path = name};
    int rc = 0;
    if (m.size >= 8 && memcmp(m.data, HR_TOKENS_MAGIC, 8) == 0) {
        rc = read_header(ctx, path, m.data, m.size, tok);
    } else { /* text: every byte is a token */
        tok->kind = HR_TOKENS_TEXT;
        tok->n_tokens = (int64_t)m.size;
        tok->vocab = 256;
        tok->width = 1;
        tok->ids = m.data;
    }
    if (rc) {
        hr_tokens_close(tok);
        return NULL;
    }
    return tok;
}

hr_tokens *hr_tokens_from_ids(hr_ctx *ctx, const char *path, hr_tokens_kind kind, uint32_t *ids, int64_t n,
                              uint32_t vocab) {
    hr_tokens *tok = calloc(1, sizeof *tok);
    char *name = strdup(path);
    if (!tok || !name) {
        free(tok);
        free(name);
        free(ids);
        hr_error(ctx, "%s: out of memory", path);
        return NULL;
    }
    *tok = (hr_tokens){.kind = kind, .n_tokens = n, .vocab = vocab, .width = 4,
                       .ids = (const uint8_t *)ids, .owned = ids, .path = name};
    return tok;
}

void hr_tokens_close(hr_tokens *tok) {
    if (!tok) return;
    hr_mapped_file m = {tok->map, tok->map_size};
    if (tok->map) hr_unmap_file(&m);
    free(tok->owned);
    free(tok->path);
    free(tok);
}

/* ---- batches ---- */

static int check_target(hr_ctx *ctx, const char *what, const hr_tensor *t, int64_t B, int64_t T, uint32_t vocab) {
    char shape[96];
    if (t->dtype != HR_I64 && t->dtype != HR_I32)
        return hr_error(ctx, "fill: %s must be an i64 or i32 tensor, got %s", what, hr_dtype_name(t->dtype));
    if (t->dtype == HR_I32 && vocab > INT32_MAX)
        return hr_error(ctx, "fill: ids of a vocab of %u do not fit the i32 tensor %s; use i64", vocab, what);
    if (t->ndim != 2 || t->shape[0] != B || t->shape[1] != T)
        return hr_error(ctx, "fill: %s must have shape (B, T) = (%lld, %lld), got %s", what, (long long)B, (long long)T,
                        hr_shape_str(t, shape, sizeof shape));
    if (!hr_tensor_is_contiguous(t)) return hr_error(ctx, "fill: %s must be contiguous", what);
    if (t->storage->device.kind != HR_DEVICE_CPU) return hr_error(ctx, "fill: %s must be on the CPU", what);
    if (t->grad_fn) return hr_error(ctx, "fill: cannot write into %s, a computed tensor (it has a grad_fn)", what);
    return 0;
}

static inline void put_id(hr_tensor *t, int64_t i, uint32_t id) {
    if (t->dtype == HR_I64) ((int64_t *)hr_tensor_data(t))[i] = id;
    else ((int32_t *)hr_tensor_data(t))[i] = (int32_t)id;
}

int hr_tokens_fill(hr_ctx *ctx, const hr_tokens *tok, const int64_t *starts, int64_t B, int64_t T, hr_tensor *x,
                   hr_tensor *y) {
    if (B < 0 || T < 0) return hr_error(ctx, "fill: negative batch shape (%lld, %lld)", (long long)B, (long long)T);
    if (check_target(ctx, "x", x, B, T, tok->vocab) || check_target(ctx, "y", y, B, T, tok->vocab)) return -1;
    for (int64_t b = 0; b < B; b++) {
        if (starts[b] < 0)
            return hr_error(ctx, "fill: start %lld of row %lld is negative", (long long)starts[b], (long long)b + 1);
        if (starts[b] > tok->n_tokens - T - 1)
            return hr_error(ctx, "fill: start %lld of row %lld is out of range: start + T + 1 = %lld but %s holds %lld "
                                 "tokens", (long long)starts[b], (long long)b + 1, (long long)(starts[b] + T + 1),
                            tok->path, (long long)tok->n_tokens);
    }
    int rc = 0;
    for (int64_t b = 0; b < B && !rc; b++) {
        /* T + 1 consecutive tokens: the first T are inputs, the last T their targets */
        for (int64_t t = 0; t <= T; t++) {
            int64_t pos = starts[b] + t;
            uint32_t id = hr_tokens_get(tok, pos);
            if (id >= tok->vocab) {
                rc = hr_error(ctx, "%s: token id %u at position %lld is not below the vocab size %u", tok->path, id,
                              (long long)pos, tok->vocab);
                break;
            }
            if (t < T) put_id(x, b * T + t, id);
            if (t > 0) put_id(y, b * T + t - 1, id);
        }
    }
    hr_tensor_mark_written(x); /* also after an error: rows before it were written */
    hr_tensor_mark_written(y);
    return rc;
}

/* ---- writing ---- */

struct hr_tokens_writer {
    hr_atomic_file af;
    uint32_t vocab;
    int width;
    int64_t n;
    uint8_t chunk[1 << 16]; /* ids encoded for the file, written a chunk at a time */
};

hr_tokens_writer *hr_tokens_writer_open(hr_ctx *ctx, const char *path, uint32_t vocab) {
    if (vocab == 0 || vocab > HR_TOKENS_MAX_VOCAB) {
        hr_error(ctx, "write_tokens: the vocab size must be in 1..%u, got %u", HR_TOKENS_MAX_VOCAB, vocab);
        return NULL;
    }
    hr_tokens_writer *w = malloc(sizeof *w);
    if (!w) {
        hr_error(ctx, "out of memory writing %s", path);
        return NULL;
    }
    w->vocab = vocab;
    w->width = vocab <= 65536 ? 2 : 4;
    w->n = 0;
    uint8_t header[HR_TOKENS_HEADER];
    memcpy(header, HR_TOKENS_MAGIC, 8);
    hr_put_le32(header + 8, HR_TOKENS_VERSION);
    hr_put_le32(header + 12, (uint32_t)w->width);
    hr_put_le32(header + 16, vocab);
    hr_put_le32(header + 20, 0);
    hr_put_le64(header + 24, 0); /* the count, filled in by commit */
    if (hr_atomic_open(ctx, &w->af, path) || hr_atomic_write(ctx, &w->af, header, sizeof header)) {
        free(w);
        return NULL;
    }
    return w;
}

int hr_tokens_writer_append(hr_ctx *ctx, hr_tokens_writer *w, const uint32_t *ids, int64_t n) {
    int64_t per = (int64_t)sizeof w->chunk / w->width;
    for (int64_t i = 0; i < n; i += per) {
        int64_t m = n - i < per ? n - i : per;
        for (int64_t j = 0; j < m; j++) {
            uint32_t id = ids[i + j];
            if (id >= w->vocab) {
                hr_error(ctx, "write_tokens: id %u at position %lld is not below the vocab size %u", id,
                         (long long)(w->n + i + j), w->vocab);
                hr_tokens_writer_abort(w);
                return -1;
            }
            uint8_t *p = w->chunk + j * w->width;
            if (w->width == 2) p[0] = (uint8_t)id, p[1] = (uint8_t)(id >> 8);
            else hr_put_le32(p, id);
        }
        if (hr_atomic_write(ctx, &w->af, w->chunk, (size_t)(m * w->width))) {
            free(w); /* the failed write already removed the temporary file */
            return -1;
        }
    }
    w->n += n;
    return 0;
}

int64_t hr_tokens_writer_count(const hr_tokens_writer *w) { return w->n; }

int hr_tokens_writer_commit(hr_ctx *ctx, hr_tokens_writer *w) {
    uint8_t count[8];
    hr_put_le64(count, (uint64_t)w->n);
    int rc = hr_atomic_write_at(ctx, &w->af, 24, count, sizeof count) || hr_atomic_commit(ctx, &w->af) ? -1 : 0;
    free(w);
    return rc;
}

void hr_tokens_writer_abort(hr_tokens_writer *w) {
    if (!w) return;
    hr_atomic_abort(&w->af);
    free(w);
}

int hr_tokens_write(hr_ctx *ctx, const char *path, const uint32_t *ids, int64_t n, uint32_t vocab) {
    if (n < 0) return hr_error(ctx, "write_tokens: negative token count %lld", (long long)n);
    hr_tokens_writer *w = hr_tokens_writer_open(ctx, path, vocab);
    if (!w || hr_tokens_writer_append(ctx, w, ids, n)) return -1;
    return hr_tokens_writer_commit(ctx, w);
}
