/* libFuzzer target: a safetensors file (runtime/io/safetensors.c, hr_safetensors_load): the 8-byte
 * header length, the JSON header (dtypes, shapes, data offsets, metadata) and the data. A file that
 * loads is saved again and reloaded: the same names, dtypes, shapes, bytes and metadata. */
#include "fuzz_util.h"

#include "core/context.h"
#include "core/tensor.h"
#include "io/safetensors.h"

static hr_ctx *ctx;

static void check_same(const hr_safetensors *a, const hr_safetensors *b) {
    if (a->n != b->n || a->n_meta != b->n_meta) fuzz_fail("reloaded %d tensors, %d metadata (saved %d, %d)", b->n, b->n_meta, a->n, a->n_meta);
    for (int i = 0; i < a->n; i++) {
        const hr_tensor *x = a->tensors[i], *y = b->tensors[i];
        if (strcmp(a->names[i], b->names[i]) || x->dtype != y->dtype || x->ndim != y->ndim)
            fuzz_fail("tensor %d (%s) changed in a round trip", i, a->names[i]);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d]) fuzz_fail("tensor %s: its shape changed in a round trip", a->names[i]);
        size_t bytes = (size_t)hr_tensor_numel(x) * hr_dtype_size(x->dtype);
        if (bytes && memcmp(hr_tensor_data(x), hr_tensor_data(y), bytes))
            fuzz_fail("tensor %s: its data changed in a round trip", a->names[i]);
    }
    for (int i = 0; i < a->n_meta; i++)
        if (strcmp(a->meta_keys[i], b->meta_keys[i]) || strcmp(a->meta_values[i], b->meta_values[i]))
            fuzz_fail("metadata %s changed in a round trip", a->meta_keys[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ctx) ctx = hr_ctx_create();
    char in[512];
    snprintf(in, sizeof in, "%s", fuzz_path("in.safetensors"));
    fuzz_write(in, data, size);
    hr_safetensors *st = hr_safetensors_load(ctx, in);
    if (!st) return 0;
    /* every tensor readable to its last byte */
    volatile uint8_t sink = 0;
    for (int i = 0; i < st->n; i++) {
        size_t bytes = (size_t)hr_tensor_numel(st->tensors[i]) * hr_dtype_size(st->tensors[i]->dtype);
        if (bytes) sink ^= ((const uint8_t *)hr_tensor_data(st->tensors[i]))[bytes - 1];
    }
    (void)sink;
    const char *out = fuzz_path("out.safetensors");
    if (hr_safetensors_save(ctx, out, st->n, (const char *const *)st->names, st->tensors, st->n_meta,
                            (const char *const *)st->meta_keys, (const char *const *)st->meta_values) == 0) {
        hr_safetensors *again = hr_safetensors_load(ctx, out);
        if (!again) fuzz_fail("a file it saved does not load: %s", hr_last_error(ctx));
        check_same(st, again);
        hr_safetensors_free(again);
    }
    hr_safetensors_free(st);
    return 0;
}
