/* Op constructors: validate, allocate outputs, build the node, launch it. The arithmetic lives in
 * the backends; this file only knows shapes. */
#include "core/ops.h"

#include <stdio.h>
#include <string.h>

#include "core/checked.h"
#include "core/graph.h"

/* A printable shape for error messages; the buffer lives until the end of the enclosing block. */
#define SHAPE(t) hr_shape_str((t), (char[96]){0}, 96)

static int need_float(hr_ctx *ctx, hr_op_id op, const char *what, const hr_tensor *t) {
    if (t->dtype == HR_F32 || t->dtype == HR_F64) return 0;
    if (t->dtype == HR_BF16)
        return hr_error(ctx, "%s: %s is bf16, which is a storage type on the CPU; convert it with :to(\"f32\")",
                        hr_op_name(op), what);
    return hr_error(ctx, "%s: %s must be a float tensor (f32 or f64), got %s", hr_op_name(op), what,
                    hr_dtype_name(t->dtype));
}

/* Every tensor input of a float op: float, one dtype, one device. names[i] labels inputs[i]. */
static int need_floats(hr_ctx *ctx, hr_op_id op, int n, hr_tensor *const *ts, const char *const *names) {
    const hr_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (need_float(ctx, op, names[i], ts[i])) return -1;
        if (!first) { first = ts[i]; continue; }
        if (ts[i]->dtype != first->dtype)
            return hr_error(ctx, "%s: %s is %s but %s is %s; convert one with :to()", hr_op_name(op), names[i],
                            hr_dtype_name(ts[i]->dtype), names[0], hr_dtype_name(first->dtype));
        if (!hr_same_device(ts[i], first)) {
            char a[32], b[32];
            return hr_error(ctx, "%s: %s is on %s but %s is on %s; move one with :to()", hr_op_name(op), names[i],
                            hr_device_str(ts[i]->storage->device, a, sizeof a), names[0],
                            hr_device_str(first->storage->device, b, sizeof b));
        }
    }
    return 0;
}

static int need_shape(hr_ctx *ctx, hr_op_id op, const char *what, const hr_tensor *t, int ndim,
                      const int64_t *shape) {
    bool ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (ok) return 0;
    char want[96];
    return hr_error(ctx, "%s: %s must have shape %s, got %s", hr_op_name(op), what,
                    hr_shape_fmt(ndim, shape, want, sizeof want), SHAPE(t));
}

/* A node holding contiguous versions of the inputs (optional ones may be NULL). */
static hr_node *node_with_inputs(hr_ctx *ctx, hr_op_id op, int n, hr_tensor *const *inputs) {
    hr_node *node = hr_node_new(ctx, op);
    if (!node) return NULL;
    node->n_in = n;
    for (int i = 0; i < n; i++) {
        if (!inputs[i]) continue;
        node->in[i] = hr_contiguous(ctx, inputs[i]);
        if (!node->in[i]) {
            hr_node_release(node);
            return NULL;
        }
    }
    return node;
}

/* Adds output j (allocated here) to the node; returns it or NULL, releasing the node on failure. */
/* The device a node runs on: its first input's. */
static hr_device node_device(const hr_node *node) {
    for (int i = 0; i < node->n_in; i++)
        if (node->in[i]) return node->in[i]->storage->device;
    return (hr_device){HR_DEVICE_CPU, 0};
}

static hr_tensor *node_output(hr_ctx *ctx, hr_node *node, int j, hr_dtype dt, int ndim, const int64_t *shape) {
    hr_tensor *t = hr_tensor_empty_on(ctx, node_device(node), dt, ndim, shape);
    if (!t) {
        for (int i = 0; i < node->n_out; i++) hr_tensor_release(node->out[i]);
        hr_node_release(node);
        return NULL;
    }
    node->out[j] = t;
    if (node->n_out < j + 1) node->n_out = j + 1;
    return t;
}

/* A saved buffer for the backward; returns 0, or -1 with the node released. */
static int node_saved(hr_ctx *ctx, hr_node *node, int j, hr_dtype dt, int ndim, const int64_t *shape) {
    node->saved[j] = hr_tensor_zeros_on(ctx, node_device(node), dt, ndim, shape);
    if (node->saved[j]) return 0;
    for (int i = 0; i < node->n_out; i++) hr_tensor_release(node->out[i]);
    hr_node_release(node);
    return -1;
}

static hr_tensor *launch(hr_ctx *ctx, hr_node *node) {
    hr_tensor *out = node->out[0];
    return hr_node_launch(ctx, node) ? NULL : out;
}

/* Launches a recurrence whose output 2 is its final state: hands that to *state (the creation
 * reference passes to the caller, as the returned output's does), or drops it when state is NULL. */
static hr_tensor *launch_with_state(hr_ctx *ctx, hr_node *node, hr_tensor **state) {
    hr_tensor *final = node->out[1];
    hr_tensor *y = launch(ctx, node);
    if (y && state) *state = final;
    else if (y) hr_tensor_release(final);
    return y;
}

/* ids and the float tensor they index live on one device. */
static int need_same_device(hr_ctx *ctx, hr_op_id op, const hr_tensor *ids, const hr_tensor *x, const char *ids_name,
                            const char *x_name) {
    if (hr_same_device(ids, x)) return 0;
    char a[32], b[32];
    return hr_error(ctx, "%s: %s is on %s but %s is on %s; move one with :to()", hr_op_name(op), ids_name,
                    hr_device_str(ids->storage->device, a, sizeof a), x_name,
                    hr_device_str(x->storage->device, b, sizeof b));
}

/* Token ids (embedding inputs, cross-entropy targets) are i64, i32 or u8. */
static int need_ids(hr_ctx *ctx, hr_op_id op, const char *what, const hr_tensor *t) {
    if (t->dtype == HR_I64 || t->dtype == HR_I32 || t->dtype == HR_U8) return 0;
    return hr_error(ctx, "%s: %s must be integers (i64, i32 or u8), got %s", hr_op_name(op), what,
                    hr_dtype_name(t->dtype));
}

/* The product of all dims but the last (never a division: the last may be 0). */
static int64_t rows_of(const hr_tensor *t) {
    int64_t r = 1;
    for (int d = 0; d + 1 < t->ndim; d++) r *= t->shape[d];
    return r;
}

/* ---- views ---- */

static int norm_dim(hr_ctx *ctx, const char *op, int dim, int ndim) {
    if (dim < 0) dim += ndim;
    if (dim < 0 || dim >= ndim) {
        hr_error(ctx, "%s: dimension out of range for a %d-dimensional tensor", op, ndim);
        return -1;
    }
    return dim;
}

/* A view of x with the given layout. lstride/loffset: the same view expressed on x's contiguous
 * layout, which is where x's gradient lives; the backward scatters through it. */
static hr_tensor *make_view(hr_ctx *ctx, hr_tensor *x, int ndim, const int64_t *shape, const int64_t *stride,
                            int64_t offset, const int64_t *lstride, int64_t loffset) {
    hr_node *node = hr_node_new(ctx, HR_OP_VIEW);
    hr_tensor *v = node ? hr_tensor_alias(ctx, x) : NULL;
    if (!v) {
        hr_node_release(node);
        return NULL;
    }
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(v->stride, stride, (size_t)ndim * sizeof *stride);
    v->offset = offset;
    hr_tensor_retain(x);
    node->in[0] = x;
    node->n_in = 1;
    node->out[0] = v;
    node->n_out = 1;
    for (int d = 0; d < ndim; d++) node->iattr[d] = lstride[d];
    node->iattr[HR_MAX_DIMS] = loffset;
    return launch(ctx, node);
}

hr_tensor *hr_reshape(hr_ctx *ctx, hr_tensor *x, int ndim, const int64_t *shape_in) {
    if (ndim < 0 || ndim > HR_MAX_DIMS) {
        hr_error(ctx, "reshape: a tensor has 0 to %d dimensions, got %d", HR_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t shape[HR_MAX_DIMS], known = 1, numel = hr_tensor_numel(x);
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = shape_in[d];
        if (shape[d] == -1 && infer < 0) infer = d;
        else if (shape[d] < 0) {
            hr_error(ctx, "reshape: invalid size %lld in dimension %d", (long long)shape[d], d + 1);
            return NULL;
        } else if (!hr_checked_mul(known, shape[d], &known)) {
            known = -1; /* no shape whose product overflows holds numel elements */
        }
    }
    if (infer >= 0 && known > 0 && numel % known == 0) shape[infer] = numel / known;
    int64_t total = -1;
    if (known < 0 || !hr_checked_numel(ndim, shape, INT64_MAX, &total) || total != numel ||
        (infer >= 0 && known == 0)) {
        hr_error(ctx, "reshape: cannot view shape %s (%lld elements) with %d dims of the requested sizes",
                 SHAPE(x), (long long)numel, ndim);
        return NULL;
    }
    hr_tensor *c = hr_contiguous(ctx, x);
    if (!c) return NULL;
    int64_t stride[HR_MAX_DIMS];
    hr_contiguous_strides(ndim, shape, stride);
    hr_tensor *v = make_view(ctx, c, ndim, shape, stride, c->offset, stride, 0);
    hr_tensor_release(c);
    return v;
}

hr_tensor *hr_transpose(hr_ctx *ctx, hr_tensor *x, int d0, int d1) {
    if ((d0 = norm_dim(ctx, "transpose", d0, x->ndim)) < 0 || (d1 = norm_dim(ctx, "transpose", d1, x->ndim)) < 0)
        return NULL;
    int64_t shape[HR_MAX_DIMS], stride[HR_MAX_DIMS], lstride[HR_MAX_DIMS], tmp;
    memcpy(shape, x->shape, sizeof shape);
    memcpy(stride, x->stride, sizeof stride);
    hr_contiguous_strides(x->ndim, x->shape, lstride);
    tmp = shape[d0], shape[d0] = shape[d1], shape[d1] = tmp;
    tmp = stride[d0], stride[d0] = stride[d1], stride[d1] = tmp;
    tmp = lstride[d0], lstride[d0] = lstride[d1], lstride[d1] = tmp;
    return make_view(ctx, x, x->ndim, shape, stride, x->offset, lstride, 0);
}

hr_tensor *hr_narrow(hr_ctx *ctx, hr_tensor *x, int dim, int64_t start, int64_t length) {
    if ((dim = norm_dim(ctx, "narrow", dim, x->ndim)) < 0) return NULL;
    /* length > size - start, not start + length > size: the sum can pass 2^63 */
    if (start < 0 || length < 0 || start > x->shape[dim] || length > x->shape[dim] - start) {
        hr_error(ctx, "narrow: %lld elements from (0-based) index %lld are outside dimension %d of size %lld (shape %s)",
                 (long long)length, (long long)start, dim + 1, (long long)x->shape[dim], SHAPE(x));
        return NULL;
    }
    int64_t shape[HR_MAX_DIMS], lstride[HR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = length;
    hr_contiguous_strides(x->ndim, x->shape, lstride);
    return make_view(ctx, x, x->ndim, shape, x->stride, x->offset + start * x->stride[dim], lstride,
                     start * lstride[dim]);
}

hr_tensor *hr_contiguous(hr_ctx *ctx, hr_tensor *x) {
    if (hr_tensor_is_contiguous(x)) {
        hr_tensor_retain(x);
        return x;
    }
    hr_node *node = hr_node_new(ctx, HR_OP_CONTIGUOUS);
    if (!node) return NULL;
    hr_tensor_retain(x);
    node->in[0] = x;
    node->n_in = 1;
    if (!node_output(ctx, node, 0, x->dtype, x->ndim, x->shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_cast(hr_ctx *ctx, hr_tensor *x, hr_dtype dtype) {
    hr_node *node = hr_node_new(ctx, HR_OP_CAST);
    if (!node) return NULL;
    hr_tensor_retain(x);
    node->in[0] = x;
    node->n_in = 1;
    if (!node_output(ctx, node, 0, dtype, x->ndim, x->shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_concat(hr_ctx *ctx, int n, hr_tensor *const *xs, int dim) {
    if (n < 1 || n > HR_NODE_MAX_IN) {
        hr_error(ctx, "concat: takes 1 to %d tensors, got %d", HR_NODE_MAX_IN, n);
        return NULL;
    }
    const char *names[HR_NODE_MAX_IN] = {"tensor 1", "tensor 2", "tensor 3", "tensor 4",
                                         "tensor 5", "tensor 6", "tensor 7", "tensor 8"};
    if (need_floats(ctx, HR_OP_CONCAT, n, xs, names)) return NULL;
    if ((dim = norm_dim(ctx, "concat", dim, xs[0]->ndim)) < 0) return NULL;
    int64_t shape[HR_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++) ok = d == dim || xs[i]->shape[d] == xs[0]->shape[d];
        if (!ok) {
            hr_error(ctx, "concat: tensor %d has shape %s, which does not match %s outside dimension %d", i + 1,
                     SHAPE(xs[i]), SHAPE(xs[0]), dim + 1);
            return NULL;
        }
        shape[dim] += xs[i]->shape[dim];
    }
    hr_node *node = node_with_inputs(ctx, HR_OP_CONCAT, n, xs);
    if (!node || !node_output(ctx, node, 0, xs[0]->dtype, xs[0]->ndim, shape)) return NULL;
    node->iattr[0] = dim;
    return launch(ctx, node);
}

/* ---- products ---- */

hr_tensor *hr_matmul(hr_ctx *ctx, hr_tensor *a, hr_tensor *b, int trans_a, int trans_b) {
    const hr_tensor *ins[2] = {a, b};
    if (need_floats(ctx, HR_OP_MATMUL, 2, (hr_tensor *const *)ins, (const char *[]){"a", "b"})) return NULL;
    if (a->ndim < 2 || b->ndim < 2) {
        hr_error(ctx, "matmul: both operands need at least 2 dimensions, got %s and %s", SHAPE(a), SHAPE(b));
        return NULL;
    }
    int64_t m = a->shape[a->ndim - (trans_a ? 1 : 2)], ka = a->shape[a->ndim - (trans_a ? 2 : 1)];
    int64_t kb = b->shape[b->ndim - (trans_b ? 1 : 2)], n = b->shape[b->ndim - (trans_b ? 2 : 1)];
    bool batch_ok = b->ndim == 2 || b->ndim == a->ndim;
    for (int d = 0; batch_ok && b->ndim > 2 && d < a->ndim - 2; d++) batch_ok = a->shape[d] == b->shape[d];
    if (ka != kb || !batch_ok) {
        hr_error(ctx, "matmul: shapes %s%s and %s%s do not multiply (inner sizes %lld and %lld, batch dims "
                      "must match or b be 2-D)",
                 SHAPE(a), trans_a ? "ᵀ" : "", SHAPE(b), trans_b ? "ᵀ" : "", (long long)ka, (long long)kb);
        return NULL;
    }
    /* CBLAS takes 32-bit sizes: refuse up front rather than overflow. */
    if (m > INT32_MAX || n > INT32_MAX || ka > INT32_MAX) {
        hr_error(ctx, "matmul: a matrix dimension exceeds 2^31-1 (m=%lld, n=%lld, k=%lld)", (long long)m,
                 (long long)n, (long long)ka);
        return NULL;
    }
    /* A shared 2-D b under a batched, untransposed a is one large product: fold the batch into m. */
    if (b->ndim == 2 && a->ndim > 2 && !trans_a) {
        hr_tensor *a2 = hr_reshape(ctx, a, 2, (int64_t[]){-1, ka});
        hr_tensor *c2 = a2 ? hr_matmul(ctx, a2, b, 0, trans_b) : NULL;
        hr_tensor_release(a2);
        if (!c2) return NULL;
        int64_t shape[HR_MAX_DIMS];
        memcpy(shape, a->shape, sizeof shape);
        shape[a->ndim - 1] = n;
        hr_tensor *c = hr_reshape(ctx, c2, a->ndim, shape);
        hr_tensor_release(c2);
        return c;
    }
    int64_t shape[HR_MAX_DIMS], batch = 1;
    for (int d = 0; d < a->ndim - 2; d++) batch *= (shape[d] = a->shape[d]);
    shape[a->ndim - 2] = m;
    shape[a->ndim - 1] = n;
    hr_node *node = node_with_inputs(ctx, HR_OP_MATMUL, 2, (hr_tensor *[]){a, b});
    if (!node || !node_output(ctx, node, 0, a->dtype, a->ndim, shape)) return NULL;
    int64_t attrs[] = {trans_a, trans_b, batch, m, n, ka, b->ndim == 2 && a->ndim > 2};
    memcpy(node->iattr, attrs, sizeof attrs);
    return launch(ctx, node);
}

hr_tensor *hr_linear(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, hr_tensor *bias) {
    if (w->ndim != 2) {
        hr_error(ctx, "linear: weight must be 2-D (out, in), got %s", SHAPE(w));
        return NULL;
    }
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
        hr_error(ctx, "linear: input %s does not end in the weight's input size %lld (weight %s)", SHAPE(x),
                 (long long)w->shape[1], SHAPE(w));
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0])) {
        hr_error(ctx, "linear: bias must have shape (%lld), got %s", (long long)w->shape[0], SHAPE(bias));
        return NULL;
    }
    hr_tensor *x2 = x->ndim == 1 ? hr_reshape(ctx, x, 2, (int64_t[]){1, x->shape[0]}) : (hr_tensor_retain(x), x);
    hr_tensor *y = x2 ? hr_matmul(ctx, x2, w, 0, 1) : NULL;
    hr_tensor_release(x2);
    if (y && bias) {
        hr_tensor *yb = hr_binary(ctx, HR_OP_ADD, y, bias);
        hr_tensor_release(y);
        y = yb;
    }
    if (y && x->ndim == 1) {
        hr_tensor *y1 = hr_reshape(ctx, y, 1, (int64_t[]){w->shape[0]});
        hr_tensor_release(y);
        y = y1;
    }
    return y;
}

/* ---- elementwise ---- */

hr_tensor *hr_binary(hr_ctx *ctx, hr_op_id op, hr_tensor *a, hr_tensor *b) {
    if (need_floats(ctx, op, 2, (hr_tensor *[]){a, b}, (const char *[]){"a", "b"})) return NULL;
    int ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[HR_MAX_DIMS];
    for (int d = 0; d < ndim; d++) { /* align trailing dims, NumPy style */
        int da = d - (ndim - a->ndim), db = d - (ndim - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            hr_error(ctx, "%s: shapes %s and %s cannot broadcast (dimension %d: %lld vs %lld)", hr_op_name(op),
                     SHAPE(a), SHAPE(b), d + 1, (long long)sa, (long long)sb);
            return NULL;
        }
        shape[d] = sa == 1 ? sb : sa;
    }
    hr_node *node = node_with_inputs(ctx, op, 2, (hr_tensor *[]){a, b});
    if (!node || !node_output(ctx, node, 0, a->dtype, ndim, shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_affine(hr_ctx *ctx, hr_tensor *x, double alpha, double beta) {
    if (need_float(ctx, HR_OP_AFFINE, "x", x)) return NULL;
    hr_node *node = node_with_inputs(ctx, HR_OP_AFFINE, 1, &x);
    if (!node || !node_output(ctx, node, 0, x->dtype, x->ndim, x->shape)) return NULL;
    node->fattr[0] = alpha;
    node->fattr[1] = beta;
    return launch(ctx, node);
}

hr_tensor *hr_unary(hr_ctx *ctx, hr_op_id op, hr_tensor *x) {
    if (need_float(ctx, op, "x", x)) return NULL;
    hr_node *node = node_with_inputs(ctx, op, 1, &x);
    if (!node || !node_output(ctx, node, 0, x->dtype, x->ndim, x->shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_reduce(hr_ctx *ctx, hr_op_id op, hr_tensor *x, int dim, int keepdim) {
    if (need_float(ctx, op, "x", x)) return NULL;
    if ((dim = norm_dim(ctx, hr_op_name(op), dim, x->ndim)) < 0) return NULL;
    int64_t shape[HR_MAX_DIMS];
    int ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (d != dim) shape[ndim++] = x->shape[d];
        else if (keepdim) shape[ndim++] = 1;
    }
    hr_node *node = node_with_inputs(ctx, op, 1, &x);
    if (!node || !node_output(ctx, node, 0, x->dtype, ndim, shape)) return NULL;
    node->iattr[0] = dim;
    return launch(ctx, node);
}

/* ---- norms ---- */

/* Checks an optional per-channel vector of length c. */
static int need_vector(hr_ctx *ctx, hr_op_id op, const char *what, const hr_tensor *t, int64_t c) {
    return t ? need_shape(ctx, op, what, t, 1, &c) : 0;
}

/* Norm nodes save two per-(row, group) statistics (mean and rstd; RMS norms use only the second). */
static hr_tensor *norm_node(hr_ctx *ctx, hr_op_id op, hr_tensor *const *ins, int n_in, int64_t groups, double eps) {
    hr_tensor *x = ins[0];
    if (x->shape[x->ndim - 1] == 0) {
        hr_error(ctx, "%s: the normalized (last) dim of %s has no elements", hr_op_name(op), SHAPE(x));
        return NULL;
    }
    hr_node *node = node_with_inputs(ctx, op, n_in, ins);
    if (!node || !node_output(ctx, node, 0, x->dtype, x->ndim, x->shape)) return NULL;
    int64_t stats = rows_of(x) * groups;
    if (node_saved(ctx, node, 0, x->dtype, 1, &stats) || node_saved(ctx, node, 1, x->dtype, 1, &stats)) return NULL;
    node->iattr[0] = groups;
    node->fattr[0] = eps;
    return launch(ctx, node);
}

static int need_eps(hr_ctx *ctx, hr_op_id op, double eps) {
    return eps > 0 ? 0 : hr_error(ctx, "%s: eps must be positive, got %g", hr_op_name(op), eps);
}

hr_tensor *hr_layer_norm(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, hr_tensor *b, double eps) {
    hr_tensor *ins[3] = {x, w, b};
    if (need_floats(ctx, HR_OP_LAYER_NORM, 3, ins, (const char *[]){"x", "weight", "bias"})) return NULL;
    if (x->ndim < 1) return hr_error(ctx, "layer_norm: x must have at least one dimension"), NULL;
    int64_t c = x->shape[x->ndim - 1];
    if (need_vector(ctx, HR_OP_LAYER_NORM, "weight", w, c) || need_vector(ctx, HR_OP_LAYER_NORM, "bias", b, c) ||
        need_eps(ctx, HR_OP_LAYER_NORM, eps))
        return NULL;
    return norm_node(ctx, HR_OP_LAYER_NORM, ins, 3, 1, eps);
}

hr_tensor *hr_rms_norm(hr_ctx *ctx, hr_tensor *x, hr_tensor *w, double eps) {
    hr_tensor *ins[2] = {x, w};
    if (need_floats(ctx, HR_OP_RMS_NORM, 2, ins, (const char *[]){"x", "weight"})) return NULL;
    if (x->ndim < 1) return hr_error(ctx, "rms_norm: x must have at least one dimension"), NULL;
    if (need_vector(ctx, HR_OP_RMS_NORM, "weight", w, x->shape[x->ndim - 1]) || need_eps(ctx, HR_OP_RMS_NORM, eps))
        return NULL;
    return norm_node(ctx, HR_OP_RMS_NORM, ins, 2, 1, eps);
}

hr_tensor *hr_group_norm(hr_ctx *ctx, hr_tensor *x, int64_t groups, hr_tensor *w, hr_tensor *b, double eps) {
    hr_tensor *ins[3] = {x, w, b};
    if (need_floats(ctx, HR_OP_GROUP_NORM, 3, ins, (const char *[]){"x", "weight", "bias"})) return NULL;
    if (x->ndim < 1) return hr_error(ctx, "group_norm: x must have at least one dimension"), NULL;
    int64_t c = x->shape[x->ndim - 1];
    if (groups < 1 || c % groups) {
        hr_error(ctx, "group_norm: %lld groups do not divide the %lld channels of %s", (long long)groups,
                 (long long)c, SHAPE(x));
        return NULL;
    }
    if (need_vector(ctx, HR_OP_GROUP_NORM, "weight", w, c) || need_vector(ctx, HR_OP_GROUP_NORM, "bias", b, c) ||
        need_eps(ctx, HR_OP_GROUP_NORM, eps))
        return NULL;
    return norm_node(ctx, HR_OP_GROUP_NORM, ins, 3, groups, eps);
}

hr_tensor *hr_gated_rms_norm(hr_ctx *ctx, hr_tensor *y, hr_tensor *z, hr_tensor *w, double eps, int64_t group_size) {
    hr_tensor *ins[3] = {y, z, w};
    if (need_floats(ctx, HR_OP_GATED_RMS_NORM, 3, ins, (const char *[]){"y", "z", "weight"})) return NULL;
    if (y->ndim < 1) return hr_error(ctx, "gated_rms_norm: y must have at least one dimension"), NULL;
    if (need_shape(ctx, HR_OP_GATED_RMS_NORM, "z (the gate)", z, y->ndim, y->shape)) return NULL;
    int64_t c = y->shape[y->ndim - 1];
    if (group_size == 0) group_size = c;
    if (group_size < 1 || c % group_size) {
        hr_error(ctx, "gated_rms_norm: group size %lld does not divide the %lld channels of %s",
                 (long long)group_size, (long long)c, SHAPE(y));
        return NULL;
    }
    if (need_vector(ctx, HR_OP_GATED_RMS_NORM, "weight", w, c) || need_eps(ctx, HR_OP_GATED_RMS_NORM, eps))
        return NULL;
    return norm_node(ctx, HR_OP_GATED_RMS_NORM, ins, 3, c / group_size, eps);
}

/* ---- sequence ops ---- */

hr_tensor *hr_embedding(hr_ctx *ctx, hr_tensor *ids, hr_tensor *weight) {
    if (need_ids(ctx, HR_OP_EMBEDDING, "ids", ids) || need_float(ctx, HR_OP_EMBEDDING, "weight", weight) ||
        need_same_device(ctx, HR_OP_EMBEDDING, ids, weight, "ids", "weight"))
        return NULL;
    if (weight->ndim != 2 || ids->ndim > HR_MAX_DIMS - 1) {
        hr_error(ctx, "embedding: weight must be (vocab, channels) and ids at most 3-D, got weight %s, ids %s",
                 SHAPE(weight), SHAPE(ids));
        return NULL;
    }
    int64_t shape[HR_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof shape);
    shape[ids->ndim] = weight->shape[1];
    hr_node *node = node_with_inputs(ctx, HR_OP_EMBEDDING, 2, (hr_tensor *[]){ids, weight});
    if (!node || !node_output(ctx, node, 0, weight->dtype, ids->ndim + 1, shape)) return NULL;
    int64_t n = hr_tensor_numel(ids);
    if (node_saved(ctx, node, 0, HR_I64, 1, &n)) return NULL; /* the ids as validated i64 */
    return launch(ctx, node);
}

hr_tensor *hr_token_shift(hr_ctx *ctx, hr_tensor *x, hr_tensor *state) {
    hr_tensor *ins[2] = {x, state};
    if (need_floats(ctx, HR_OP_TOKEN_SHIFT, 2, ins, (const char *[]){"x", "state"})) return NULL;
    if (x->ndim != 3) return hr_error(ctx, "token_shift: x must be (B, T, C), got %s", SHAPE(x)), NULL;
    if (state && need_shape(ctx, HR_OP_TOKEN_SHIFT, "state", state, 2, (int64_t[]){x->shape[0], x->shape[2]}))
        return NULL;
    hr_node *node = node_with_inputs(ctx, HR_OP_TOKEN_SHIFT, 2, ins);
    if (!node || !node_output(ctx, node, 0, x->dtype, 3, x->shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_conv1d_causal(hr_ctx *ctx, hr_tensor *x, hr_tensor *weight, hr_tensor *bias, hr_tensor *state) {
    hr_tensor *ins[4] = {x, weight, bias, state};
    if (need_floats(ctx, HR_OP_CONV1D_CAUSAL, 4, ins, (const char *[]){"x", "weight", "bias", "state"})) return NULL;
    if (x->ndim != 3) return hr_error(ctx, "conv1d_causal: x must be (B, T, C), got %s", SHAPE(x)), NULL;
    int64_t B = x->shape[0], C = x->shape[2];
    if (weight->ndim != 2 || weight->shape[0] != C || weight->shape[1] < 2 || weight->shape[1] > 4) {
        hr_error(ctx, "conv1d_causal: weight must be (C=%lld, W) with kernel width W in 2..4, got %s", (long long)C,
                 SHAPE(weight));
        return NULL;
    }
    int64_t W = weight->shape[1];
    if (need_vector(ctx, HR_OP_CONV1D_CAUSAL, "bias", bias, C) ||
        (state && need_shape(ctx, HR_OP_CONV1D_CAUSAL, "state", state, 3, (int64_t[]){B, W - 1, C})))
        return NULL;
    hr_node *node = node_with_inputs(ctx, HR_OP_CONV1D_CAUSAL, 4, ins);
    if (!node || !node_output(ctx, node, 0, x->dtype, 3, x->shape)) return NULL;
    return launch(ctx, node);
}

hr_tensor *hr_wkv6(hr_ctx *ctx, hr_tensor *r, hr_tensor *k, hr_tensor *v, hr_tensor *w, hr_tensor *u,
                   hr_tensor *s0, hr_tensor **sT) {
    hr_tensor *ins[6] = {r, k, v, w, u, s0};
    if (need_floats(ctx, HR_OP_WKV6, 6, ins, (const char *[]){"r", "k", "v", "w", "u", "s0"})) return NULL;
    if (r->ndim != 4) return hr_error(ctx, "wkv6: r must be (B, T, H, N), got %s", SHAPE(r)), NULL;
    int64_t B = r->shape[0], H = r->shape[2], N = r->shape[3];
    if (need_shape(ctx, HR_OP_WKV6, "k", k, 4, r->shape) || need_shape(ctx, HR_OP_WKV6, "v", v, 4, r->shape) ||
        need_shape(ctx, HR_OP_WKV6, "w", w, 4, r->shape) ||
        need_shape(ctx, HR_OP_WKV6, "u", u, 2, (int64_t[]){H, N}) ||
        (s0 && need_shape(ctx, HR_OP_WKV6, "s0", s0, 4, (int64_t[]){B, H, N, N})))
        return NULL;
    hr_node *node = node_with_inputs(ctx, HR_OP_WKV6, 6, ins);
    if (!node || !node_output(ctx, node, 0, r->dtype, 4, r->shape) ||
        !node_output(ctx, node, 1, r->dtype, 4, (int64_t[]){B, H, N, N}))
        return NULL;
    return launch_with_state(ctx, node, sT);
}

hr_tensor *hr_ssd_scan(hr_ctx *ctx, hr_tensor *x, hr_tensor *dt, hr_tensor *A, hr_tensor *Bm, hr_tensor *Cm,
                       hr_tensor *D, hr_tensor *h0, hr_tensor **hT) {
    hr_tensor *ins[7] = {x, dt, A, Bm, Cm, D, h0};
    if (need_floats(ctx, HR_OP_SSD_SCAN, 7, ins, (const char *[]){"x", "dt", "A", "B", "C", "D", "h0"})) return NULL;
    if (x->ndim != 4) return hr_error(ctx, "ssd_scan: x must be (B, T, H, P), got %s", SHAPE(x)), NULL;
    int64_t B = x->shape[0], T = x->shape[1], H = x->shape[2], P = x->shape[3];
    if (Bm->ndim != 4 || Bm->shape[0] != B || Bm->shape[1] != T) {
        hr_error(ctx, "ssd_scan: B must be (B=%lld, T=%lld, G, N), got %s", (long long)B, (long long)T, SHAPE(Bm));
        return NULL;
    }
    int64_t G = Bm->shape[2], N = Bm->shape[3];
    if (G < 1 || H % G) {
        hr_error(ctx, "ssd_scan: %lld groups in B do not divide the %lld heads of x", (long long)G, (long long)H);
        return NULL;
    }
    if (need_shape(ctx, HR_OP_SSD_SCAN, "dt", dt, 3, (int64_t[]){B, T, H}) ||
        need_shape(ctx, HR_OP_SSD_SCAN, "A", A, 1, &H) || need_shape(ctx, HR_OP_SSD_SCAN, "C", Cm, 4, Bm->shape) ||
        (D && need_shape(ctx, HR_OP_SSD_SCAN, "D", D, 1, &H)) ||
        (h0 && need_shape(ctx, HR_OP_SSD_SCAN, "h0", h0, 4, (int64_t[]){B, H, P, N})))
        return NULL;
    hr_node *node = node_with_inputs(ctx, HR_OP_SSD_SCAN, 7, ins);
    if (!node || !node_output(ctx, node, 0, x->dtype, 4, x->shape) ||
        !node_output(ctx, node, 1, x->dtype, 4, (int64_t[]){B, H, P, N}))
        return NULL;
    return launch_with_state(ctx, node, hT);
}

hr_tensor *hr_cross_entropy(hr_ctx *ctx, hr_tensor *logits, hr_tensor *targets, int64_t ignore_index) {
    if (need_float(ctx, HR_OP_CROSS_ENTROPY, "logits", logits) || need_ids(ctx, HR_OP_CROSS_ENTROPY, "targets", targets) ||
        need_same_device(ctx, HR_OP_CROSS_ENTROPY, targets, logits, "targets", "logits"))
        return NULL;
    bool ok = logits->ndim >= 1 && targets->ndim == logits->ndim - 1;
    for (int d = 0; ok && d < targets->ndim; d++) ok = targets->shape[d] == logits->shape[d];
    if (!ok) {
        hr_error(ctx, "cross_entropy: targets %s must match the leading dims of logits %s (logits (..., V))",
                 SHAPE(targets), SHAPE(logits));
        return NULL;
    }
    if (logits->shape[logits->ndim - 1] == 0) {
        hr_error(ctx, "cross_entropy: logits %s have no classes (the last dim is 0)", SHAPE(logits));
        return NULL;
    }
    hr_node *node = node_with_inputs(ctx, HR_OP_CROSS_ENTROPY, 2, (hr_tensor *[]){logits, targets});
    if (!node || !node_output(ctx, node, 0, logits->dtype, 0, NULL)) return NULL;
    int64_t rows = rows_of(logits);
    /* saved[2]: the count of rows that count, where a GPU's backward reads it */
    if (node_saved(ctx, node, 0, logits->dtype, 1, &rows) || node_saved(ctx, node, 1, HR_I64, 1, &rows) ||
        node_saved(ctx, node, 2, HR_I64, 0, NULL))
        return NULL;
    node->iattr[0] = ignore_index;
    return launch(ctx, node);
}
