/* libFuzzer target: a training data file (runtime/io/tokenfile.c, hr_tokens_open: the 32-byte
 * header of a token file checked against the file's size, or text read as bytes), then batches read
 * from it as train.lua reads them (hr_tokens_fill into i64 and i32 tensors, at the first and the
 * last window, every id checked against the vocab). Property: what opens has a vocab of
 * 1..HR_TOKENS_MAX_VOCAB and ids that fit in the file. */
#include "fuzz_util.h"

#include "core/context.h"
#include "core/tensor.h"
#include "io/tokenfile.h"

static hr_ctx *ctx;

static void fill(const hr_tokens *tok, hr_dtype dt, int64_t T) {
    int64_t shape[2] = {2, T}, starts[2] = {0, tok->n_tokens - T - 1};
    hr_tensor *x = hr_tensor_empty(ctx, dt, 2, shape), *y = hr_tensor_empty(ctx, dt, 2, shape);
    if (!x || !y) fuzz_fail("a (2, %lld) tensor: %s", (long long)T, hr_last_error(ctx));
    if (hr_tokens_fill(ctx, tok, starts, 2, T, x, y) == 0) {
        for (int64_t i = 0; i < 2 * T; i++) {
            int64_t v = dt == HR_I64 ? ((int64_t *)hr_tensor_data(y))[i] : ((int32_t *)hr_tensor_data(y))[i];
            if (v < 0 || v >= (int64_t)tok->vocab) fuzz_fail("fill gave id %lld, vocab %u", (long long)v, tok->vocab);
        }
    }
    hr_tensor_release(x);
    hr_tensor_release(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ctx) ctx = hr_ctx_create();
    const char *path = fuzz_path("data.bin");
    fuzz_write(path, data, size);
    hr_tokens *tok = hr_tokens_open(ctx, path);
    if (!tok) return 0;
    if (tok->n_tokens < 0 || tok->vocab == 0 || tok->vocab > HR_TOKENS_MAX_VOCAB || (tok->width != 1 && tok->width != 2 && tok->width != 4) ||
        (size_t)tok->n_tokens * (size_t)tok->width > size)
        fuzz_fail("opened with %lld tokens of %d bytes, vocab %u, from %zu bytes", (long long)tok->n_tokens,
                  tok->width, tok->vocab, size);
    if (tok->n_tokens > 0) {
        volatile uint32_t last = hr_tokens_get(tok, tok->n_tokens - 1);
        (void)last;
    }
    if (tok->n_tokens >= 2) {
        int64_t T = tok->n_tokens - 1 < 16 ? tok->n_tokens - 1 : 16;
        fill(tok, HR_I64, T);
        fill(tok, HR_I32, T);
    }
    hr_tokens_close(tok);
    return 0;
}
