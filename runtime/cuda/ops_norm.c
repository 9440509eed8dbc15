/* CUDA launchers of the norms (kernel_src/norm.cu) and the cross-entropy loss (kernel_src/loss.cu),
 * op by op as the CPU backend (cpu/backend.c): the same node conventions, gradients added into the
 * gradient buffers, absent gradients skipped.
 *
 * Norm nodes: iattr[0] = groups, fattr[0] = eps, saved[0] = mean, saved[1] = rstd, both (rows, G).
 * Layer norm is group norm with one group; RMS norm is gated RMS norm with one group and no gate
 * (z == NULL). Weight and bias gradients are sums over rows: formed per chunk of rows into a
 * scratch partial buffer, then added in chunk order (hr_norm_sum_partials), so no atomics.
 *
 * Cross-entropy nodes: iattr[0] = ignore_index, iattr[1] = count; saved[0] = per-row logsumexp,
 * saved[1] = validated i64 targets, saved[2] = the count on the device (read by the backward). */
#include <stdio.h>

#include "cuda/backend.h"

#define NORM_BLOCK 256          /* the BLOCK of the segment kernels as kernels.c instantiates them */
#define NORM_MAX_CHUNKS 1024    /* bounds the (nchunk, C) partial buffers of the weight gradients */
#define CE_BLOCK 256            /* the BLOCK of hr_cross_entropy_rows in kernels.c */

/* hr_cuda_launch with the argument count taken from the list. */
#define LAUNCH(file, name, grid, block, shared, ...) HR_CUDA_LAUNCH(ctx, file, name, grid, block, shared, __VA_ARGS__)
#define PTR(t) HR_KTENSOR(t)

/* "base<float>" or "base<double, 256>" (block 0: no second template argument). */
static const char *kname(char *buf, size_t size, const char *base, hr_dtype dt, int block) {
    if (block) snprintf(buf, size, "%s<%s, %d>", base, hr_cuda_type_name(dt), block);
    else snprintf(buf, size, "%s<%s>", base, hr_cuda_type_name(dt));
    return buf;
}

/* A block-per-segment kernel's instantiation as the tuner chose it (BLOCK, the launch's threads too):
 * the name into buf, BLOCK into *block. Its shape class: the segments and their length. */
static int tuned(hr_ctx *ctx, const char *file, const char *base, hr_dtype dt, int default_block, const char *dim0,
                 int64_t n0, const char *dim1, int64_t n1, char *buf, size_t size, int *block) {
    char dflt[96];
    const char *const dims[2] = {dim0, dim1};
    const int64_t d[2] = {n0, n1};
    kname(dflt, sizeof dflt, base, dt, default_block);
    return hr_cuda_tuned(ctx, file, dflt, 0, 2, dims, d, buf, size, block);
}
#define TUNED_NORM(base, dt, segments, S) \
    tuned(ctx, "norm.cu", base, dt, NORM_BLOCK, "segments", segments, "size", S, name, sizeof name, &block)

static int64_t last_dim(const hr_tensor *t) { return t->shape[t->ndim - 1]; }
static int64_t rows_of(const hr_tensor *t) { return last_dim(t) ? hr_tensor_numel(t) / last_dim(t) : 0; }

/* ---- weight / bias gradients by row chunks ---- */

/* Rows per chunk: at least 1, and few enough chunks to bound the partial buffers. A function of
 * rows alone, so the sums are the same on every run. */
static int64_t chunk_rows_for(int64_t rows) {
    int64_t c = (rows + NORM_MAX_CHUNKS - 1) / NORM_MAX_CHUNKS;
    return c < 1 ? 1 : c;
}

/* grad[c] += sum_k part[k, c], k in order. */
static int sum_partials(hr_ctx *ctx, hr_dtype dt, int64_t nchunk, int64_t C, uint64_t part, hr_tensor *grad) {
    char name[96];
    return LAUNCH("norm.cu", kname(name, sizeof name, "hr_norm_sum_partials", dt, 0), hr_cuda_grid_for(C, 256), 256,
                  0, HR_KI64(nchunk), HR_KI64(C), HR_KPTR(part), PTR(grad));
}

/* ---- group norm (layer norm: one group) ---- */

static int64_t norm_groups(const hr_node *n) {
    return n->op == HR_OP_LAYER_NORM || n->op == HR_OP_RMS_NORM ? 1 : n->iattr[0];
}

/* in: x, weight, bias (weight / bias may be NULL). */
static int group_norm_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *x = n->in[0];
    int64_t rows = rows_of(x), C = last_dim(x), G = norm_groups(n);
    if (rows == 0 || C == 0) return 0;
    char name[96];
    int block;
    if (TUNED_NORM("hr_group_norm_forward", x->dtype, rows * G, C / G)) return -1;
    return LAUNCH("norm.cu", name, rows * G, block, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G), HR_KREAL(x->dtype, n->fattr[0]), PTR(x),
                  PTR(n->in[1]), PTR(n->in[2]), PTR(n->out[0]), PTR(n->saved[0]), PTR(n->saved[1]));
}

/* dw / db (either may be NULL): per-chunk partials, then summed in chunk order. */
static int group_norm_backward_wb(hr_ctx *ctx, hr_node *n, hr_tensor *dw, hr_tensor *db) {
    const hr_tensor *x = n->in[0];
    hr_dtype dt = x->dtype;
    int64_t rows = rows_of(x), C = last_dim(x), G = norm_groups(n);
    int64_t chunk = chunk_rows_for(rows), nchunk = (rows + chunk - 1) / chunk;
    int64_t part_bytes = nchunk * C * (int64_t)hr_dtype_size(dt);
    uint64_t part = 0;
    if (hr_cuda_scratch(ctx, (dw && db ? 2 : 1) * part_bytes, &part)) return -1;
    uint64_t dw_part = dw ? part : 0, db_part = db ? part + (dw ? (uint64_t)part_bytes : 0) : 0;
    char name[96];
    int rc = LAUNCH("norm.cu", kname(name, sizeof name, "hr_group_norm_backward_wb", dt, 0),
                    hr_cuda_grid_for(nchunk * C, 256), 256, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G),
                    HR_KI64(chunk), PTR(x), PTR(n->saved[0]), PTR(n->saved[1]), PTR(hr_node_out_grad(n, 0)),
                    HR_KPTR(dw_part), HR_KPTR(db_part));
    if (!rc && dw) rc = sum_partials(ctx, dt, nchunk, C, dw_part, dw);
    if (!rc && db) rc = sum_partials(ctx, dt, nchunk, C, db_part, db);
    hr_cuda_scratch_free(ctx, part);
    return rc ? -1 : 0;
}

static int group_norm_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *x = n->in[0];
    hr_tensor *dy = hr_node_out_grad(n, 0), *dx = hr_node_in_grad(n, 0);
    hr_tensor *dw = hr_node_in_grad(n, 1), *db = hr_node_in_grad(n, 2);
    int64_t rows = rows_of(x), C = last_dim(x), G = norm_groups(n);
    if (!dy || rows == 0 || C == 0) return 0;
    char name[96];
    int block;
    if (dx && TUNED_NORM("hr_group_norm_backward_dx", x->dtype, rows * G, C / G)) return -1;
    if (dx && LAUNCH("norm.cu", name, rows * G, block, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G), PTR(x), PTR(n->in[1]),
                     PTR(n->saved[0]), PTR(n->saved[1]), PTR(dy), PTR(dx)))
        return -1;
    return dw || db ? group_norm_backward_wb(ctx, n, dw, db) : 0;
}

/* ---- gated RMS norm (RMS norm: one group, no gate) ---- */

/* RMS norm's inputs are (x, weight); gated RMS norm's (y, z, weight). */
static const hr_tensor *rms_gate(const hr_node *n) { return n->op == HR_OP_GATED_RMS_NORM ? n->in[1] : NULL; }
static int rms_weight_index(const hr_node *n) { return n->op == HR_OP_GATED_RMS_NORM ? 2 : 1; }

static int rms_norm_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *y = n->in[0];
    int64_t rows = rows_of(y), C = last_dim(y), G = norm_groups(n);
    if (rows == 0 || C == 0) return 0;
    char name[96];
    int block;
    if (TUNED_NORM("hr_gated_rms_norm_forward", y->dtype, rows * G, C / G)) return -1;
    return LAUNCH("norm.cu", name, rows * G, block, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G), HR_KREAL(y->dtype, n->fattr[0]), PTR(y),
                  PTR(rms_gate(n)), PTR(n->in[rms_weight_index(n)]), PTR(n->out[0]), PTR(n->saved[1]));
}

static int rms_norm_backward_w(hr_ctx *ctx, hr_node *n, hr_tensor *dw) {
    const hr_tensor *y = n->in[0];
    hr_dtype dt = y->dtype;
    int64_t rows = rows_of(y), C = last_dim(y), G = norm_groups(n);
    int64_t chunk = chunk_rows_for(rows), nchunk = (rows + chunk - 1) / chunk;
    uint64_t part = 0;
    if (hr_cuda_scratch(ctx, nchunk * C * (int64_t)hr_dtype_size(dt), &part)) return -1;
    char name[96];
    int rc = LAUNCH("norm.cu", kname(name, sizeof name, "hr_gated_rms_norm_backward_w", dt, 0),
                    hr_cuda_grid_for(nchunk * C, 256), 256, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G),
                    HR_KI64(chunk), PTR(y), PTR(rms_gate(n)), PTR(n->saved[1]), PTR(hr_node_out_grad(n, 0)),
                    HR_KPTR(part));
    if (!rc) rc = sum_partials(ctx, dt, nchunk, C, part, dw);
    hr_cuda_scratch_free(ctx, part);
    return rc ? -1 : 0;
}

static int rms_norm_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *y = n->in[0], *z = rms_gate(n);
    hr_tensor *dout = hr_node_out_grad(n, 0), *dy = hr_node_in_grad(n, 0);
    hr_tensor *dz = z ? hr_node_in_grad(n, 1) : NULL, *dw = hr_node_in_grad(n, rms_weight_index(n));
    int64_t rows = rows_of(y), C = last_dim(y), G = norm_groups(n);
    if (!dout || rows == 0 || C == 0) return 0;
    char name[96];
    int block;
    if ((dy || dz) && TUNED_NORM("hr_gated_rms_norm_backward_dx", y->dtype, rows * G, C / G)) return -1;
    if ((dy || dz) &&
        LAUNCH("norm.cu", name, rows * G, block, 0, HR_KI64(rows), HR_KI64(G), HR_KI64(C / G), PTR(y), PTR(z),
               PTR(n->in[rms_weight_index(n)]), PTR(n->saved[1]), PTR(dout), PTR(dy), PTR(dz)))
        return -1;
    return dw ? rms_norm_backward_w(ctx, n, dw) : 0;
}

/* ---- cross-entropy ---- */

/* Validates the targets on the host as the CPU does (into saved[1]), then per-row logsumexp and
 * loss, then their mean over the counted rows in row order (the count into saved[2]). */
static int cross_entropy_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *logits = n->in[0];
    hr_dtype dt = logits->dtype;
    int64_t V = last_dim(logits), rows = hr_tensor_numel(n->in[1]), ignore = n->iattr[0];
    if (hr_cuda_validated_ids(ctx, n, n->in[1], V, &ignore, "target", n->saved[1])) return -1;
    uint64_t row_loss = 0; /* (rows): 0 for ignored rows */
    if (hr_cuda_scratch(ctx, (rows > 0 ? rows : 1) * (int64_t)hr_dtype_size(dt), &row_loss)) return -1;
    char name[96];
    int block, rc = tuned(ctx, "loss.cu", "hr_cross_entropy_rows", dt, CE_BLOCK, "rows", rows, "classes", V, name,
                          sizeof name, &block);
    if (!rc)
        rc = LAUNCH("loss.cu", name, rows, block, 0,
                    HR_KI64(rows), HR_KI64(V), PTR(logits), PTR(n->saved[1]), HR_KI64(ignore), PTR(n->saved[0]),
                    HR_KPTR(row_loss));
    if (!rc)
        rc = LAUNCH("loss.cu", kname(name, sizeof name, "hr_cross_entropy_mean", dt, 0), 1, 1, 0, HR_KI64(rows),
                    PTR(n->saved[1]), HR_KI64(ignore), HR_KPTR(row_loss), PTR(n->out[0]), PTR(n->saved[2]));
    hr_cuda_scratch_free(ctx, row_loss);
    if (rc) return -1;
    /* iattr[1] as the CPU sets it, so the node reads the same on either device */
    int64_t count = 0;
    if (hr_cuda_download(ctx, &count, hr_cuda_ptr(n->saved[2]), (int64_t)sizeof count)) return -1;
    n->iattr[1] = count;
    return 0;
}

/* dlogits += dloss / count * (softmax - onehot) on counted rows; dloss and count read on the device. */
static int cross_entropy_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *logits = n->in[0];
    hr_tensor *dloss = hr_node_out_grad(n, 0), *dlogits = hr_node_in_grad(n, 0);
    if (!dloss || !dlogits) return 0;
    int64_t V = last_dim(logits), rows = hr_tensor_numel(n->in[1]);
    char name[96];
    return LAUNCH("loss.cu", kname(name, sizeof name, "hr_cross_entropy_backward", logits->dtype, 0),
                  hr_cuda_grid_for(rows * V, 256), 256, 0, HR_KI64(rows), HR_KI64(V), PTR(logits), PTR(n->saved[1]),
                  HR_KI64(n->iattr[0]), PTR(n->saved[0]), PTR(n->saved[2]), PTR(dloss), PTR(dlogits));
}

void hr_cuda_register_norm(hr_ctx *ctx) {
    static const struct { hr_op_id op; hr_op_fn fwd, bwd; } table[] = {
        {HR_OP_LAYER_NORM, group_norm_forward, group_norm_backward},
        {HR_OP_GROUP_NORM, group_norm_forward, group_norm_backward},
        {HR_OP_RMS_NORM, rms_norm_forward, rms_norm_backward},
        {HR_OP_GATED_RMS_NORM, rms_norm_forward, rms_norm_backward},
        {HR_OP_CROSS_ENTROPY, cross_entropy_forward, cross_entropy_backward},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ctx->ops[table[i].op].forward[HR_DEVICE_CUDA] = table[i].fwd;
        ctx->ops[table[i].op].backward[HR_DEVICE_CUDA] = table[i].bwd;
    }
}
