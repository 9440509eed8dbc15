/* CUDA launchers of the sequence ops: embedding, token shift and the causal depthwise conv1d, as
 * cpu/backend.c runs them (same node conventions; a backward adds into the gradient buffers), with
 * the kernels of kernel_src/sequence.cu. Optional inputs (token shift's state; the conv's bias and
 * state) travel as null pointers, which the kernels check. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend.h"

#define BLOCK 256 /* threads per block of every grid-stride kernel here */

/* A grid-stride launch over `count` elements (nothing when count is 0). */
static int launch(hr_ctx *ctx, const char *name, int64_t count, int nargs, const hr_karg *args) {
    return hr_cuda_launch(ctx, "sequence.cu", name, hr_cuda_grid_for(count, BLOCK), BLOCK, 0, nargs, args);
}
#define LAUNCH(name, count, ...) launch(ctx, name, count, HR_CUDA_ARGS(__VA_ARGS__))
#define PTR(t) HR_KTENSOR(t)
#define DT (n->in[0]->dtype)

/* Copies the integer ids (i64, i32 or u8, contiguous, on the GPU) into the i64 device tensor out_i64,
 * checking each against [0, limit) or == *allowed (when not NULL) on the host first, with the CPU's
 * validate_ids message: the kernels index with them unchecked. Synchronises with the stream (the
 * download). */
int hr_cuda_validated_ids(hr_ctx *ctx, const hr_node *n, const hr_tensor *ids, int64_t limit, const int64_t *allowed,
                          const char *what, hr_tensor *out_i64) {
    int64_t count = hr_tensor_numel(ids);
    if ((ids->dtype != HR_I64 && ids->dtype != HR_I32 && ids->dtype != HR_U8) || !hr_tensor_is_contiguous(ids) ||
        out_i64->dtype != HR_I64 || !hr_tensor_is_contiguous(out_i64) || hr_tensor_numel(out_i64) < count)
        return hr_error(ctx, "%s: %ss must be contiguous i64, i32 or u8 with an i64 buffer for them", hr_op_name(n->op),
                        what);
    if (count == 0) return 0;
    int64_t size = (int64_t)hr_dtype_size(ids->dtype);
    /* the i64 copy first (malloc's alignment), the downloaded bytes after it */
    int64_t *out = malloc((size_t)(count * (int64_t)sizeof(int64_t) + count * size));
    if (!out) return hr_error(ctx, "%s: out of memory for a host copy of %lld %ss", hr_op_name(n->op),
                              (long long)count, what);
    uint8_t *raw = (uint8_t *)(out + count);
    int rc = hr_cuda_download(ctx, raw, hr_cuda_ptr(ids), count * size);
    for (int64_t i = 0; i < count && !rc; i++) {
        int64_t id;
        if (ids->dtype == HR_I64) memcpy(&id, raw + i * 8, sizeof id);
        else if (ids->dtype == HR_I32) {
            int32_t v;
            memcpy(&v, raw + i * 4, sizeof v);
            id = v;
        } else id = raw[i];
        if ((id < 0 || id >= limit) && !(allowed && id == *allowed))
            rc = hr_error(ctx, "%s: %s %lld at position %lld is outside [0, %lld)", hr_op_name(n->op), what,
                          (long long)id, (long long)i + 1, (long long)limit);
        out[i] = id;
    }
    /* the upload has read the host buffer when it returns */
    if (!rc) rc = hr_cuda_upload(ctx, hr_cuda_ptr(out_i64), out, count * (int64_t)sizeof(int64_t));
    if (!rc) hr_tensor_mark_written(out_i64);
    free(out);
    return rc;
}

/* ---- embedding (saved[0]: the validated ids as i64) ---- */

static int embedding_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *w = n->in[1];
    if (hr_cuda_validated_ids(ctx, n, n->in[0], w->shape[0], NULL, "id", n->saved[0])) return -1;
    int64_t count = hr_tensor_numel(n->in[0]), C = w->shape[1];
    char name[64];
    snprintf(name, sizeof name, "hr_embedding_forward<%s>", hr_cuda_type_name(w->dtype));
    return LAUNCH(name, count * C, HR_KI64(count), HR_KI64(C), PTR(n->saved[0]), PTR(w), PTR(n->out[0]));
}

/* One thread per column of dW, rows in order: repeated ids never race. */
static int embedding_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *w = n->in[1];
    hr_tensor *gw = hr_node_in_grad(n, 1), *gy = hr_node_out_grad(n, 0);
    if (!gw || !gy) return 0;
    int64_t count = hr_tensor_numel(n->in[0]), C = w->shape[1];
    char name[64];
    snprintf(name, sizeof name, "hr_embedding_backward<%s>", hr_cuda_type_name(w->dtype));
    return LAUNCH(name, C, HR_KI64(count), HR_KI64(C), PTR(n->saved[0]), PTR(gy), PTR(gw));
}

/* ---- token shift: in[0] x (B, T, C), in[1] the optional state (B, C) ---- */

static int token_shift_forward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    char name[64];
    snprintf(name, sizeof name, "hr_token_shift_forward<%s>", hr_cuda_type_name(DT));
    return LAUNCH(name, s[0] * s[1] * s[2], HR_KI64(s[0]), HR_KI64(s[1]), HR_KI64(s[2]), PTR(n->in[0]),
                  PTR(n->in[1]), PTR(n->out[0]));
}

static int token_shift_backward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    hr_tensor *gy = hr_node_out_grad(n, 0), *gx = hr_node_in_grad(n, 0), *gstate = hr_node_in_grad(n, 1);
    if (!gy || (!gx && !gstate)) return 0;
    char name[64];
    snprintf(name, sizeof name, "hr_token_shift_backward<%s>", hr_cuda_type_name(DT));
    return LAUNCH(name, s[0] * s[1] * s[2], HR_KI64(s[0]), HR_KI64(s[1]), HR_KI64(s[2]), PTR(gy), PTR(gx),
                  PTR(gstate));
}

/* ---- causal conv1d: in[0] x (B, T, C), in[1] weight (C, K), in[2] bias (C), in[3] state (B, K-1, C);
 * bias and state optional ---- */

static int conv1d_forward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    int64_t K = n->in[1]->shape[1];
    char name[64];
    snprintf(name, sizeof name, "hr_conv1d_causal_forward<%s>", hr_cuda_type_name(DT));
    return LAUNCH(name, s[0] * s[1] * s[2], HR_KI64(s[0]), HR_KI64(s[1]), HR_KI64(s[2]), HR_KI64(K), PTR(n->in[0]),
                  PTR(n->in[1]), PTR(n->in[2]), PTR(n->in[3]), PTR(n->out[0]));
}

/* Input and state gradients (_backward_x: a thread per dx then dstate element), then weight and bias
 * gradients (_backward_w: a thread per (channel, tap or bias), positions in order). */
static int conv1d_backward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    int64_t B = s[0], T = s[1], C = s[2], K = n->in[1]->shape[1];
    hr_tensor *gy = hr_node_out_grad(n, 0);
    if (!gy) return 0;
    hr_tensor *gx = hr_node_in_grad(n, 0), *gw = hr_node_in_grad(n, 1), *gb = hr_node_in_grad(n, 2),
              *gstate = hr_node_in_grad(n, 3);
    const char *Tn = hr_cuda_type_name(DT);
    char name[64];
    if (gx || gstate) {
        int64_t count = (gx ? B * T * C : 0) + (gstate ? B * (K - 1) * C : 0); /* as the kernel's nx + ns */
        snprintf(name, sizeof name, "hr_conv1d_causal_backward_x<%s>", Tn);
        if (LAUNCH(name, count, HR_KI64(B), HR_KI64(T), HR_KI64(C), HR_KI64(K), PTR(n->in[1]), PTR(gy), PTR(gx),
                   PTR(gstate)))
            return -1;
    }
    if (gw || gb) {
        snprintf(name, sizeof name, "hr_conv1d_causal_backward_w<%s>", Tn);
        if (LAUNCH(name, C * (K + 1), HR_KI64(B), HR_KI64(T), HR_KI64(C), HR_KI64(K), PTR(n->in[0]), PTR(n->in[3]),
                   PTR(gy), PTR(gw), PTR(gb)))
            return -1;
    }
    return 0;
}

void hr_cuda_register_sequence(hr_ctx *ctx) {
    static const struct { hr_op_id op; hr_op_fn fwd, bwd; } table[] = {
        {HR_OP_EMBEDDING, embedding_forward, embedding_backward},
        {HR_OP_TOKEN_SHIFT, token_shift_forward, token_shift_backward},
        {HR_OP_CONV1D_CAUSAL, conv1d_forward, conv1d_backward},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ctx->ops[table[i].op].forward[HR_DEVICE_CUDA] = table[i].fwd;
        ctx->ops[table[i].op].backward[HR_DEVICE_CUDA] = table[i].bwd;
    }
}
