/* The differentiable ops, as C functions. Each checks its inputs (dtype, device, shape), allocates
 * its outputs, runs the forward on the inputs' backend and records the node for autograd.
 * Each returns a new tensor reference, or NULL with the context's error naming the op and the
 * shapes involved. Dimensions are 0-based here (the Lua binding converts from 1-based).
 * Optional tensor inputs are NULL when absent. */
#ifndef HR_OPS_H
#define HR_OPS_H

#include "core/context.h"
#include "core/tensor.h"

/* Views share storage with x (reshape copies first when x is not contiguous). shape may hold one -1. */
hr_tensor *hr_reshape(hr_ctx *ctx, hr_tensor *x, int ndim, const int64_t *shape);
hr_tensor *hr_transpose(hr_ctx *ctx, hr_tensor *x, int dim0, int dim1);
hr_tensor *hr_narrow(hr_ctx *ctx, hr_tensor *x, int dim, int64_t start, int64_t length);
/* A contiguous tensor with x's values: x itself (a new reference) when it already is one. */
hr_tensor *hr_contiguous(hr_ctx *ctx, hr_tensor *x);
/* A copy converted to dtype (differentiable between f32 and f64). */
hr_tensor *hr_cast(hr_ctx *ctx, hr_tensor *x, hr_dtype dtype);
hr_tensor *hr_concat(hr_ctx *ctx, int n, hr_tensor *const *xs, int dim);

/* op(a) @ op(b) over the trailing two dims; leading (batch) dims of a and b must match, or b is 2-D
 * and shared by every batch item. op transposes the trailing two dims when trans_* is set. */
hr_tensor *hr_matmul(hr_ctx *ctx, hr_tensor *a, hr_tensor *b, int trans_a, int trans_b);
/* x (..., in) @ w(out, in)^T + bias(out): PyTorch's Linear. */
hr_tensor *hr_linear(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, hr_tensor *bias);

/* Elementwise with NumPy broadcasting. op is HR_OP_ADD, SUB, MUL or DIV. */
hr_tensor *hr_binary(hr_ctx *ctx, hr_op_id op, hr_tensor *a, hr_tensor *b);
/* alpha * x + beta */
hr_tensor *hr_affine(hr_ctx *ctx, hr_tensor *x, double alpha, double beta);
/* op is HR_OP_EXP, TANH, SIGMOID, SILU, GELU, SOFTPLUS, RELU or RELU_SQUARED. */
hr_tensor *hr_unary(hr_ctx *ctx, hr_op_id op, hr_tensor *x);
/* op is HR_OP_SUM or HR_OP_MEAN over one dim. */
hr_tensor *hr_reduce(hr_ctx *ctx, hr_op_id op, hr_tensor *x, int dim, int keepdim);

hr_tensor *hr_layer_norm(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, hr_tensor *b, double eps);
hr_tensor *hr_rms_norm(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, double eps);
/* Normalises each of `groups` contiguous channel groups of the last dim (RWKV-6 ln_x). */
hr_tensor *hr_group_norm(hr_ctx *ctx, hr_tensor *x, int64_t groups, hr_tensor *w, hr_tensor *b, double eps);
/* rmsnorm(y * silu(z)) * w over groups of group_size channels (0: the whole last dim). */
hr_tensor *hr_gated_rms_norm(hr_ctx *ctx, hr_tensor *y, hr_tensor *z, hr_tensor *w, double eps,
                             int64_t group_size);

hr_tensor *hr_embedding(hr_ctx *ctx, hr_tensor *ids, hr_tensor *weight);
/* x (B, T, C) shifted one step later in time; state (B, C) fills t = 0 (zeros when NULL). */
hr_tensor *hr_token_shift(hr_ctx *ctx, hr_tensor *x, hr_tensor *state);
/* x (B, T, C), weight (C, W) with W in 2..4, bias (C), state (B, W-1, C): the inputs before t = 0. */
hr_tensor *hr_conv1d_causal(hr_ctx *ctx, hr_tensor *x, hr_tensor *weight, hr_tensor *bias, hr_tensor *state);

/* RWKV-6 WKV: r, k, v, w (B, T, H, N), u (H, N), s0 (B, H, N, N) -> y (B, T, H, N), *sT (B, H, N, N). */
hr_tensor *hr_wkv6(hr_ctx *ctx, hr_tensor *r, hr_tensor *k, hr_tensor *v, hr_tensor *w, hr_tensor *u,
                   hr_tensor *s0, hr_tensor **sT);
/* Mamba-2 SSD: x (B, T, H, P), dt (B, T, H), A (H), Bm, Cm (B, T, G, N), D (H), h0 (B, H, P, N)
 * -> y (B, T, H, P), *hT (B, H, P, N). */
hr_tensor *hr_ssd_scan(hr_ctx *ctx, hr_tensor *x, hr_tensor *dt, hr_tensor *A, hr_tensor *Bm,
                       hr_tensor *Cm, hr_tensor *D, hr_tensor *h0, hr_tensor **hT);

/* Mean over tokens of -log softmax(logits)[target]; logits (..., V), targets (...) integer ids. */
hr_tensor *hr_cross_entropy(hr_ctx *ctx, hr_tensor *logits, hr_tensor *targets, int64_t ignore_index);

#endif
