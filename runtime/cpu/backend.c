/* CPU backend: turns a node (inputs, outputs, attributes) into calls of the raw kernels in
 * kernels.h, picking the f32 or f64 instantiation from the dtype. Inputs arrive contiguous. */
#include "cpu/backend.h"

#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "cpu/kernels.h"

/* Calls name_f32 or name_f64; tensor data travel as void * and convert to either precision. */
#define KERNEL(dt, name, ...) ((dt) == HR_F64 ? name##_f64(__VA_ARGS__) : name##_f32(__VA_ARGS__))
#define DATA(t) ((t) ? hr_tensor_data(t) : NULL)
#define IN(i) DATA(n->in[i])
#define OUT(j) DATA(n->out[j])
#define GIN(i) DATA(hr_node_in_grad(n, i))
#define GOUT(j) DATA(hr_node_out_grad(n, j))
#define SAVED(j) DATA(n->saved[j])
#define DT (n->in[0]->dtype)
/* A single-output node reached by the backward always has its output alive: the tensor that led
 * there holds it. Multi-output nodes (wkv6, ssd_scan) handle a freed output explicitly. */

static int oom(hr_ctx *ctx, const hr_node *n, int rc) {
    return rc ? hr_error(ctx, "%s: out of memory for scratch buffers", hr_op_name(n->op)) : 0;
}

static int64_t last_dim(const hr_tensor *t) { return t->shape[t->ndim - 1]; }
static int64_t rows(const hr_tensor *t) { /* all dims but the last: no division, the last may be 0 */
    int64_t r = 1;
    for (int d = 0; d + 1 < t->ndim; d++) r *= t->shape[d];
    return r;
}

/* ---- views and copies ---- */

static int view_forward(hr_ctx *ctx, hr_node *n) { (void)ctx, (void)n; return 0; } /* shares storage */

static int view_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    if (!GIN(0) || !GOUT(0)) return 0;
    KERNEL(DT, hr_cpu_scatter_add, n->out[0]->ndim, n->out[0]->shape, GOUT(0), GIN(0), n->iattr, n->iattr[HR_MAX_DIMS]);
    return 0;
}

/* contiguous (and a cast to the same dtype): a strided gather for float data, else the generic copy. */
static int copy_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    const hr_tensor *x = n->in[0];
    if ((x->dtype == HR_F32 || x->dtype == HR_F64) && x->dtype == n->out[0]->dtype && x->ndim > 0)
        KERNEL(DT, hr_cpu_gather, x->ndim, x->shape, IN(0), x->stride, OUT(0));
    else return hr_tensor_copy_into(ctx, n->out[0], n->in[0]);
    return 0;
}

static int contiguous_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    if (GIN(0) && GOUT(0)) KERNEL(DT, hr_cpu_affine_backward, hr_tensor_numel(n->in[0]), 1.0, GOUT(0), GIN(0));
    return 0;
}

static int cast_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    int64_t count = hr_tensor_numel(gx);
    void *px = hr_tensor_data(gx);
    const void *py = hr_tensor_data(gy);
    for (int64_t i = 0; i < count; i++)
        hr_dtype_set(gx->dtype, px, i, hr_dtype_get(gx->dtype, px, i) + hr_dtype_get(gy->dtype, py, i));
    return 0;
}

/* The (outer, len_i, inner) decomposition of a concat along iattr[0]. */
static void concat_dims(const hr_node *n, int64_t *outer, int64_t *inner, int64_t *lens) {
    const hr_tensor *o = n->out[0];
    int dim = (int)n->iattr[0];
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= o->shape[d];
    for (int d = dim + 1; d < o->ndim; d++) *inner *= o->shape[d];
    for (int i = 0; i < n->n_in; i++) lens[i] = n->in[i]->shape[dim];
}

static int concat_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t outer, inner, lens[HR_NODE_MAX_IN];
    void *xs[HR_NODE_MAX_IN];
    concat_dims(n, &outer, &inner, lens);
    for (int i = 0; i < n->n_in; i++) xs[i] = IN(i);
    KERNEL(DT, hr_cpu_concat_forward, outer, inner, n->n_in, lens, (void *)xs, OUT(0));
    return 0;
}

static int concat_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t outer, inner, lens[HR_NODE_MAX_IN];
    void *dxs[HR_NODE_MAX_IN];
    concat_dims(n, &outer, &inner, lens);
    for (int i = 0; i < n->n_in; i++) dxs[i] = GIN(i);
    if (GOUT(0)) KERNEL(DT, hr_cpu_concat_backward, outer, inner, n->n_in, lens, GOUT(0), (void *)dxs);
    return 0;
}

/* ---- matmul ---- */

static int matmul_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t ta = n->iattr[0], tb = n->iattr[1], batch = n->iattr[2], m = n->iattr[3], nn = n->iattr[4],
            k = n->iattr[5], shared_b = n->iattr[6];
    KERNEL(DT, hr_cpu_gemm, batch, (int)ta, (int)tb, m, nn, k, 1.0, IN(0), m * k, IN(1), shared_b ? 0 : k * nn, 0.0,
           OUT(0), m * nn);
    return 0;
}

/* With C = op(A) op(B): dA = dC op(B)^T and dB = op(A)^T dC, written for each stored layout. */
static int matmul_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t ta = n->iattr[0], tb = n->iattr[1], batch = n->iattr[2], m = n->iattr[3], nn = n->iattr[4],
            k = n->iattr[5], sb = n->iattr[6] ? 0 : k * nn;
    void *A = IN(0), *B = IN(1), *dC = GOUT(0), *dA = GIN(0), *dB = GIN(1);
    if (!dC) return 0;
    if (dA) {
        if (!ta) KERNEL(DT, hr_cpu_gemm, batch, 0, !tb, m, k, nn, 1.0, dC, m * nn, B, sb, 1.0, dA, m * k);
        else KERNEL(DT, hr_cpu_gemm, batch, tb, 1, k, m, nn, 1.0, B, sb, dC, m * nn, 1.0, dA, m * k);
    }
    if (dB) { /* a shared B (stride 0) accumulates over the batch: beta = 1 on every item */
        if (!tb) KERNEL(DT, hr_cpu_gemm, batch, !ta, 0, k, nn, m, 1.0, A, m * k, dC, m * nn, 1.0, dB, sb);
        else KERNEL(DT, hr_cpu_gemm, batch, 1, ta, nn, k, m, 1.0, dC, m * nn, A, m * k, 1.0, dB, sb);
    }
    return 0;
}

/* ---- elementwise ---- */

/* 4-D right-aligned strides of t against out's shape, 0 on broadcast dims. */
static void broadcast4(const hr_tensor *t, const hr_tensor *out, int64_t *shape4, int64_t *stride4) {
    int64_t cstride[HR_MAX_DIMS];
    hr_contiguous_strides(t->ndim, t->shape, cstride);
    for (int d = 0; d < 4; d++) {
        int od = d - (4 - out->ndim), td = d - (4 - t->ndim);
        shape4[d] = od >= 0 ? out->shape[od] : 1;
        stride4[d] = td >= 0 && t->shape[td] == shape4[d] && shape4[d] > 1 ? cstride[td] : 0;
    }
}

static hr_binary_kind binary_kind(hr_op_id op) {
    return op == HR_OP_ADD ? HR_BINARY_ADD : op == HR_OP_SUB ? HR_BINARY_SUB : op == HR_OP_MUL ? HR_BINARY_MUL
                                                                                                : HR_BINARY_DIV;
}

static int binary_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t shape[4], sa[4], sb[4];
    broadcast4(n->in[0], n->out[0], shape, sa);
    broadcast4(n->in[1], n->out[0], shape, sb);
    KERNEL(DT, hr_cpu_binary_forward, binary_kind(n->op), shape, IN(0), sa, IN(1), sb, OUT(0));
    return 0;
}

static int binary_backward(hr_ctx *ctx, hr_node *n) {
    if (!GOUT(0)) return 0;
    int64_t shape[4], sa[4], sb[4];
    broadcast4(n->in[0], n->out[0], shape, sa);
    broadcast4(n->in[1], n->out[0], shape, sb);
    return oom(ctx, n, KERNEL(DT, hr_cpu_binary_backward, binary_kind(n->op), shape, IN(0), sa, IN(1), sb, GOUT(0),
                              GIN(0), GIN(1)));
}

static int affine_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    KERNEL(DT, hr_cpu_affine_forward, hr_tensor_numel(n->in[0]), n->fattr[0], n->fattr[1], IN(0), OUT(0));
    return 0;
}

static int affine_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    if (GIN(0) && GOUT(0)) KERNEL(DT, hr_cpu_affine_backward, hr_tensor_numel(n->in[0]), n->fattr[0], GOUT(0), GIN(0));
    return 0;
}

static hr_unary_kind unary_kind(hr_op_id op) {
    switch (op) {
    case HR_OP_EXP: return HR_UNARY_EXP;
    case HR_OP_TANH: return HR_UNARY_TANH;
    case HR_OP_SIGMOID: return HR_UNARY_SIGMOID;
    case HR_OP_SILU: return HR_UNARY_SILU;
    case HR_OP_GELU: return HR_UNARY_GELU_TANH;
    case HR_OP_SOFTPLUS: return HR_UNARY_SOFTPLUS;
    case HR_OP_RELU: return HR_UNARY_RELU;
    default: return HR_UNARY_RELU_SQUARED;
    }
}

static int unary_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    KERNEL(DT, hr_cpu_unary_forward, unary_kind(n->op), hr_tensor_numel(n->in[0]), IN(0), OUT(0));
    return 0;
}

static int unary_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    if (GIN(0) && GOUT(0))
        KERNEL(DT, hr_cpu_unary_backward, unary_kind(n->op), hr_tensor_numel(n->in[0]), IN(0), OUT(0), GOUT(0), GIN(0));
    return 0;
}

/* (outer, len, inner) around the reduced dim, and the scale (1 for sum, 1/len for mean). */
static void reduce_dims(const hr_node *n, int64_t *outer, int64_t *len, int64_t *inner, double *scale) {
    const hr_tensor *x = n->in[0];
    int dim = (int)n->iattr[0];
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
    *len = x->shape[dim];
    *scale = n->op == HR_OP_MEAN && *len ? 1.0 / (double)*len : 1.0;
}

static int reduce_forward(hr_ctx *ctx, hr_node *n) {
    int64_t outer, len, inner;
    double scale;
    reduce_dims(n, &outer, &len, &inner, &scale);
    return oom(ctx, n, KERNEL(DT, hr_cpu_sum_dim_forward, outer, len, inner, scale, IN(0), OUT(0)));
}

static int reduce_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t outer, len, inner;
    double scale;
    reduce_dims(n, &outer, &len, &inner, &scale);
    if (GIN(0) && GOUT(0)) KERNEL(DT, hr_cpu_sum_dim_backward, outer, len, inner, scale, GOUT(0), GIN(0));
    return 0;
}

/* ---- norms (saved[0] = mean, saved[1] = rstd; iattr[0] = groups; fattr[0] = eps) ---- */

static int layer_norm_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    KERNEL(DT, hr_cpu_layer_norm_forward, rows(n->in[0]), last_dim(n->in[0]), n->fattr[0], IN(0), IN(1), IN(2),
           OUT(0), SAVED(0), SAVED(1));
    return 0;
}

static int layer_norm_backward(hr_ctx *ctx, hr_node *n) {
    if (!GOUT(0)) return 0;
    return oom(ctx, n, KERNEL(DT, hr_cpu_layer_norm_backward, rows(n->in[0]), last_dim(n->in[0]), IN(0), IN(1),
                              SAVED(0), SAVED(1), GOUT(0), GIN(0), GIN(1), GIN(2)));
}

static int rms_norm_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    KERNEL(DT, hr_cpu_rms_norm_forward, rows(n->in[0]), last_dim(n->in[0]), n->fattr[0], IN(0), IN(1), OUT(0),
           SAVED(1));
    return 0;
}

static int rms_norm_backward(hr_ctx *ctx, hr_node *n) {
    if (!GOUT(0)) return 0;
    return oom(ctx, n, KERNEL(DT, hr_cpu_rms_norm_backward, rows(n->in[0]), last_dim(n->in[0]), IN(0), IN(1),
                              SAVED(1), GOUT(0), GIN(0), GIN(1)));
}

static int group_norm_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t G = n->iattr[0];
    KERNEL(DT, hr_cpu_group_norm_forward, rows(n->in[0]), G, last_dim(n->in[0]) / G, n->fattr[0], IN(0), IN(1),
           IN(2), OUT(0), SAVED(0), SAVED(1));
    return 0;
}

static int group_norm_backward(hr_ctx *ctx, hr_node *n) {
    if (!GOUT(0)) return 0;
    int64_t G = n->iattr[0];
    return oom(ctx, n, KERNEL(DT, hr_cpu_group_norm_backward, rows(n->in[0]), G, last_dim(n->in[0]) / G, IN(0),
                              IN(1), SAVED(0), SAVED(1), GOUT(0), GIN(0), GIN(1), GIN(2)));
}

static int gated_rms_norm_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    int64_t G = n->iattr[0];
    KERNEL(DT, hr_cpu_gated_rms_norm_forward, rows(n->in[0]), G, last_dim(n->in[0]) / G, n->fattr[0], IN(0), IN(1),
           IN(2), OUT(0), SAVED(1));
    return 0;
}

static int gated_rms_norm_backward(hr_ctx *ctx, hr_node *n) {
    if (!GOUT(0)) return 0;
    int64_t G = n->iattr[0];
    return oom(ctx, n, KERNEL(DT, hr_cpu_gated_rms_norm_backward, rows(n->in[0]), G, last_dim(n->in[0]) / G, IN(0),
                              IN(1), IN(2), SAVED(1), GOUT(0), GIN(0), GIN(1), GIN(2)));
}

/* ---- sequence ops ---- */

/* Copies integer ids into an i64 buffer, checking each against [0, limit), or == *allowed when allowed
 * is not NULL (cross-entropy's ignore index; an embedding allows nothing else). */
static int validate_ids(hr_ctx *ctx, const hr_node *n, const hr_tensor *ids, int64_t limit, const int64_t *allowed,
                        const char *what, int64_t *out) {
    int64_t count = hr_tensor_numel(ids);
    const void *p = hr_tensor_data(ids);
    for (int64_t i = 0; i < count; i++) {
        int64_t id = ids->dtype == HR_I64 ? ((const int64_t *)p)[i]
                   : ids->dtype == HR_I32 ? ((const int32_t *)p)[i] : ((const uint8_t *)p)[i];
        if ((id < 0 || id >= limit) && !(allowed && id == *allowed))
            return hr_error(ctx, "%s: %s %lld at position %lld is outside [0, %lld)", hr_op_name(n->op), what,
                            (long long)id, (long long)i + 1, (long long)limit);
        out[i] = id;
    }
    return 0;
}

static int embedding_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *w = n->in[1];
    int64_t *ids = SAVED(0);
    if (validate_ids(ctx, n, n->in[0], w->shape[0], NULL, "id", ids)) return -1;
    KERNEL(w->dtype, hr_cpu_embedding_forward, hr_tensor_numel(n->in[0]), w->shape[1], ids, IN(1), OUT(0));
    return 0;
}

static int embedding_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *w = n->in[1];
    if (!GIN(1) || !GOUT(0)) return 0;
    return oom(ctx, n, KERNEL(w->dtype, hr_cpu_embedding_backward, hr_tensor_numel(n->in[0]), w->shape[0],
                              w->shape[1], SAVED(0), GOUT(0), GIN(1)));
}

static int token_shift_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    const int64_t *s = n->in[0]->shape;
    KERNEL(DT, hr_cpu_token_shift_forward, s[0], s[1], s[2], IN(0), IN(1), OUT(0));
    return 0;
}

static int token_shift_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    const int64_t *s = n->in[0]->shape;
    if (GOUT(0)) KERNEL(DT, hr_cpu_token_shift_backward, s[0], s[1], s[2], GOUT(0), GIN(0), GIN(1));
    return 0;
}

static int conv1d_forward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    const int64_t *s = n->in[0]->shape;
    KERNEL(DT, hr_cpu_conv1d_causal_forward, s[0], s[1], s[2], n->in[1]->shape[1], IN(0), IN(1), IN(2), IN(3), OUT(0));
    return 0;
}

static int conv1d_backward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    if (!GOUT(0)) return 0;
    return oom(ctx, n, KERNEL(DT, hr_cpu_conv1d_causal_backward, s[0], s[1], s[2], n->in[1]->shape[1], IN(0), IN(1),
                              IN(3), GOUT(0), GIN(0), GIN(1), GIN(2), GIN(3)));
}

static int wkv6_forward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    return oom(ctx, n, KERNEL(DT, hr_cpu_wkv6_forward, s[0], s[1], s[2], s[3], IN(0), IN(1), IN(2), IN(3), IN(4),
                              IN(5), OUT(0), OUT(1)));
}

/* The output gradient, or a zero buffer when that output was freed before the backward. */
static hr_tensor *grad_or_zeros(hr_ctx *ctx, const hr_node *n, int j, int ndim, const int64_t *shape) {
    hr_tensor *g = hr_node_out_grad(n, j);
    if (g) {
        hr_tensor_retain(g);
        return g;
    }
    return hr_tensor_zeros(ctx, n->in[0]->dtype, ndim, shape);
}

static int wkv6_backward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape;
    hr_tensor *dy = grad_or_zeros(ctx, n, 0, 4, s);
    if (!dy) return -1;
    int rc = oom(ctx, n, KERNEL(DT, hr_cpu_wkv6_backward, s[0], s[1], s[2], s[3], IN(0), IN(1), IN(2), IN(3), IN(4),
                                IN(5), DATA(dy), GOUT(1), GIN(0), GIN(1), GIN(2), GIN(3), GIN(4), GIN(5)));
    hr_tensor_release(dy);
    return rc;
}

static int ssd_forward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape, *sb = n->in[3]->shape;
    return oom(ctx, n, KERNEL(DT, hr_cpu_ssd_forward, s[0], s[1], s[2], s[3], sb[2], sb[3], IN(0), IN(1), IN(2),
                              IN(3), IN(4), IN(5), IN(6), OUT(0), OUT(1)));
}

static int ssd_backward(hr_ctx *ctx, hr_node *n) {
    const int64_t *s = n->in[0]->shape, *sb = n->in[3]->shape;
    hr_tensor *dy = grad_or_zeros(ctx, n, 0, 4, s);
    if (!dy) return -1;
    int rc = oom(ctx, n, KERNEL(DT, hr_cpu_ssd_backward, s[0], s[1], s[2], s[3], sb[2], sb[3], IN(0), IN(1), IN(2),
                                IN(3), IN(4), IN(5), IN(6), DATA(dy), GOUT(1), GIN(0), GIN(1), GIN(2), GIN(3),
                                GIN(4), GIN(5), GIN(6)));
    hr_tensor_release(dy);
    return rc;
}

/* saved[0] = per-row logsumexp, saved[1] = validated targets; iattr[0] = ignore_index, iattr[1] = count. */
static int cross_entropy_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *logits = n->in[0];
    int64_t V = last_dim(logits), count = 0;
    if (validate_ids(ctx, n, n->in[1], V, &n->iattr[0], "target", SAVED(1))) return -1;
    int rc = KERNEL(DT, hr_cpu_cross_entropy_forward, rows(logits), V, IN(0), SAVED(1), n->iattr[0], OUT(0),
                    SAVED(0), &count);
    n->iattr[1] = count;
    return oom(ctx, n, rc);
}

static int cross_entropy_backward(hr_ctx *ctx, hr_node *n) {
    (void)ctx;
    const hr_tensor *logits = n->in[0];
    hr_tensor *g = hr_node_out_grad(n, 0);
    if (!GIN(0) || !g) return 0;
    KERNEL(DT, hr_cpu_cross_entropy_backward, rows(logits), last_dim(logits), IN(0), SAVED(1), n->iattr[0], SAVED(0),
           n->iattr[1], hr_tensor_get_flat(g, 0), GIN(0));
    return 0;
}

/* ---- optimizer primitives (core/optim.h) ---- */

static int cpu_adamw(hr_ctx *ctx, hr_tensor *p, const hr_tensor *g, hr_tensor *m, hr_tensor *v,
                     const hr_adamw_params *hp) {
    (void)ctx;
    double bias1 = 1 - pow(hp->beta1, (double)hp->step), bias2 = 1 - pow(hp->beta2, (double)hp->step);
    KERNEL(p->dtype, hr_cpu_adamw, hr_tensor_numel(p), DATA(p), DATA(g), DATA(m), DATA(v), hp->lr, hp->beta1,
           hp->beta2, hp->eps, hp->weight_decay, bias1, bias2, hp->grad_scale);
    return 0;
}

static int cpu_sum_squares(hr_ctx *ctx, const hr_tensor *x, double *out) {
    if (KERNEL(x->dtype, hr_cpu_sum_squares, hr_tensor_numel(x), DATA(x), out))
        return hr_error(ctx, "sum_squares: out of memory for partial sums");
    return 0;
}

void hr_cpu_register(hr_ctx *ctx) {
    static const struct { hr_op_id op; hr_op_fn fwd, bwd; } table[] = {
        {HR_OP_VIEW, view_forward, view_backward},
        {HR_OP_CONTIGUOUS, copy_forward, contiguous_backward},
        {HR_OP_CAST, copy_forward, cast_backward},
        {HR_OP_CONCAT, concat_forward, concat_backward},
        {HR_OP_MATMUL, matmul_forward, matmul_backward},
        {HR_OP_ADD, binary_forward, binary_backward},
        {HR_OP_SUB, binary_forward, binary_backward},
        {HR_OP_MUL, binary_forward, binary_backward},
        {HR_OP_DIV, binary_forward, binary_backward},
        {HR_OP_AFFINE, affine_forward, affine_backward},
        {HR_OP_EXP, unary_forward, unary_backward},
        {HR_OP_TANH, unary_forward, unary_backward},
        {HR_OP_SIGMOID, unary_forward, unary_backward},
        {HR_OP_SILU, unary_forward, unary_backward},
        {HR_OP_GELU, unary_forward, unary_backward},
        {HR_OP_SOFTPLUS, unary_forward, unary_backward},
        {HR_OP_RELU, unary_forward, unary_backward},
        {HR_OP_RELU_SQUARED, unary_forward, unary_backward},
        {HR_OP_SUM, reduce_forward, reduce_backward},
        {HR_OP_MEAN, reduce_forward, reduce_backward},
        {HR_OP_LAYER_NORM, layer_norm_forward, layer_norm_backward},
        {HR_OP_RMS_NORM, rms_norm_forward, rms_norm_backward},
        {HR_OP_GROUP_NORM, group_norm_forward, group_norm_backward},
        {HR_OP_GATED_RMS_NORM, gated_rms_norm_forward, gated_rms_norm_backward},
        {HR_OP_EMBEDDING, embedding_forward, embedding_backward},
        {HR_OP_TOKEN_SHIFT, token_shift_forward, token_shift_backward},
        {HR_OP_CONV1D_CAUSAL, conv1d_forward, conv1d_backward},
        {HR_OP_WKV6, wkv6_forward, wkv6_backward},
        {HR_OP_SSD_SCAN, ssd_forward, ssd_backward},
        {HR_OP_CROSS_ENTROPY, cross_entropy_forward, cross_entropy_backward},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ctx->ops[table[i].op].forward[HR_DEVICE_CPU] = table[i].fwd;
        ctx->ops[table[i].op].backward[HR_DEVICE_CPU] = table[i].bwd;
    }
    ctx->optim[HR_DEVICE_CPU] = (hr_optim_fns){.adamw = cpu_adamw, .sum_squares = cpu_sum_squares};
    ctx->orthonormalize = hr_cpu_orthonormalize;
}
