/* CUDA launchers of the layout and elementwise ops: views, contiguous copies, casts, concatenation,
 * the broadcasting binary ops, affine, the activations and sums over one dim. Each mirrors its
 * counterpart in cpu/backend.c (same node conventions; a backward adds into the gradient buffers)
 * and launches kernel_src/{layout,elementwise,unary}.cu by the names runtime/jit/kernels.c registers.
 * Inputs arrive contiguous, except a contiguous's and a cast's, which may be any view. Pointers come
 * from hr_cuda_ptr, which already points at element 0 of a view: layouts passed to the kernels are
 * relative to it (offset 0), except a view backward's, which is relative to the input's gradient. */
#include <stdbool.h>
#include <stdio.h>

#include "cuda/backend.h"

#define BLOCK 256 /* threads per block of every grid-stride kernel here */

/* The kernels' by-value structs, laid out as hr_view (layout.cu) and hr_bcast (elementwise.cu). */
typedef struct {
    int ndim;
    int64_t shape[8];
    int64_t stride[8]; /* elements */
    int64_t offset;
} kview;
typedef struct {
    int64_t n[4];  /* output shape */
    int64_t sa[4]; /* a's element strides (0: broadcast) */
    int64_t sb[4]; /* b's */
} kbcast;
_Static_assert(sizeof(kview) == 144, "kview must match hr_view");
_Static_assert(sizeof(kbcast) == 96, "kbcast must match hr_bcast");

/* A grid-stride launch over `count` elements (nothing when count is 0). */
static int launch(hr_ctx *ctx, const char *file, const char *name, int64_t count, int nargs, const hr_karg *args) {
    return hr_cuda_launch(ctx, file, name, hr_cuda_grid_for(count, BLOCK), BLOCK, 0, nargs, args);
}
#define LAUNCH(file, name, count, ...) launch(ctx, file, name, count, HR_CUDA_ARGS(__VA_ARGS__))
#define PTR(t) HR_KTENSOR(t)
#define DT (n->in[0]->dtype)

/* The C++ element type of a dtype in the layout kernels' names, or NULL. */
static const char *elem_name(hr_dtype dt) {
    switch (dt) {
    case HR_F32: return "float";
    case HR_F64: return "double";
    case HR_BF16: return "hr_bf16";
    case HR_I64: return "long long";
    case HR_I32: return "int";
    case HR_U8: return "unsigned char";
    default: return NULL;
    }
}

/* The T of the arithmetic kernels (f32 and f64 only), or NULL with the context error set. */
static const char *real_name(hr_ctx *ctx, const hr_node *n, hr_dtype dt) {
    if (dt == HR_F32 || dt == HR_F64) return hr_cuda_type_name(dt);
    hr_error(ctx, "%s: no GPU kernel for %s data (f32 and f64 only)", hr_op_name(n->op), hr_dtype_name(dt));
    return NULL;
}

/* dst[i] += src[i] for count elements: hr_affine_backward with alpha 1 (exact: 1 * x == x). */
static int add_into(hr_ctx *ctx, const hr_node *n, hr_dtype dt, int64_t count, uint64_t src, uint64_t dst) {
    const char *T = real_name(ctx, n, dt);
    if (!T) return -1;
    char name[64];
    snprintf(name, sizeof name, "hr_affine_backward<%s>", T);
    return LAUNCH("elementwise.cu", name, count, HR_KI64(count), HR_KREAL(dt, 1.0), HR_KPTR(src), HR_KPTR(dst));
}

/* ---- views and copies ---- */

static int view_forward(hr_ctx *ctx, hr_node *n) { (void)ctx, (void)n; return 0; } /* shares storage */

/* True when two elements of a layout may share an address: taken by increasing stride, each dim's
 * stride must pass the farthest element the smaller dims reach (a stride 0 over a dim longer than 1
 * never does). Every view core makes (reshape, transpose, narrow) passes. */
static bool may_overlap(int ndim, const int64_t *shape, const int64_t *stride) {
    int64_t s[HR_MAX_DIMS], len[HR_MAX_DIMS];
    int m = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) return false; /* no elements at all */
        if (shape[d] == 1) continue;
        int64_t a = stride[d] < 0 ? -stride[d] : stride[d];
        int k = m++;
        for (; k > 0 && s[k - 1] > a; k--) s[k] = s[k - 1], len[k] = len[k - 1];
        s[k] = a, len[k] = shape[d];
    }
    int64_t reach = 0;
    for (int k = 0; k < m; k++) {
        if (s[k] <= reach) return true;
        reach += (len[k] - 1) * s[k];
    }
    return false;
}

/* gx[view offset of e] += gy[e], through the view's layout on the input's contiguous gradient
 * (iattr[0..ndim) strides, iattr[HR_MAX_DIMS] offset, as core/ops.c make_view stores them). One
 * thread per view element: only safe when no two elements share a gradient element. */
static int view_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    const hr_tensor *y = n->out[0];
    if (may_overlap(y->ndim, y->shape, n->iattr)) {
        char shape[96];
        return hr_error(ctx, "view: no GPU backward for a view whose elements overlap (shape %s)",
                        hr_shape_str(y, shape, sizeof shape));
    }
    const char *T = real_name(ctx, n, gx->dtype);
    if (!T) return -1;
    kview v = {.ndim = y->ndim, .offset = n->iattr[HR_MAX_DIMS]};
    for (int d = 0; d < y->ndim; d++) v.shape[d] = y->shape[d], v.stride[d] = n->iattr[d];
    char name[64];
    snprintf(name, sizeof name, "hr_scatter_add<%s>", T);
    return LAUNCH("layout.cu", name, hr_tensor_numel(y), HR_KBYTES(&v), PTR(gy), PTR(gx));
}

/* dst = t made contiguous: t's shape and strides relative to its element 0. Any dtype. */
static int gather(hr_ctx *ctx, const hr_node *n, const hr_tensor *t, uint64_t dst) {
    const char *T = elem_name(t->dtype);
    if (!T) return hr_error(ctx, "%s: no GPU copy for %s data", hr_op_name(n->op), hr_dtype_name(t->dtype));
    kview v = {.ndim = t->ndim, .offset = 0};
    for (int d = 0; d < t->ndim; d++) v.shape[d] = t->shape[d], v.stride[d] = t->stride[d];
    char name[64];
    snprintf(name, sizeof name, "hr_gather<%s>", T);
    return LAUNCH("layout.cu", name, hr_tensor_numel(t), HR_KBYTES(&v), PTR(t), HR_KPTR(dst));
}

static int contiguous_forward(hr_ctx *ctx, hr_node *n) { return gather(ctx, n, n->in[0], hr_cuda_ptr(n->out[0])); }

static int contiguous_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    return add_into(ctx, n, gx->dtype, hr_tensor_numel(gx), hr_cuda_ptr(gy), hr_cuda_ptr(gx));
}

/* The element type of a float dtype (f32, f64, bf16) in hr_cast's names, or NULL. */
static const char *float_name(hr_dtype dt) { return hr_dtype_is_float(dt) ? elem_name(dt) : NULL; }

/* dst = src converted, count flat elements, between two float dtypes (hr_cast rounds as hr_dtype_set). */
static int convert(hr_ctx *ctx, hr_dtype from, hr_dtype to, int64_t count, uint64_t src, uint64_t dst) {
    char name[64];
    snprintf(name, sizeof name, "hr_cast<%s, %s>", float_name(from), float_name(to));
    return LAUNCH("layout.cu", name, count, HR_KI64(count), HR_KPTR(src), HR_KPTR(dst));
}

/* The same dtype is a copy; between the float dtypes, hr_cast on a flat source (a strided input is
 * gathered into scratch first). Other pairs have no kernel. */
static int cast_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *x = n->in[0], *y = n->out[0];
    if (x->dtype == y->dtype) return gather(ctx, n, x, hr_cuda_ptr(y));
    if (!float_name(x->dtype) || !float_name(y->dtype))
        return hr_error(ctx, "cast: no GPU conversion from %s to %s (only between f32, f64 and bf16)",
                        hr_dtype_name(x->dtype), hr_dtype_name(y->dtype));
    int64_t count = hr_tensor_numel(x);
    if (count == 0) return 0;
    if (hr_tensor_is_contiguous(x)) return convert(ctx, x->dtype, y->dtype, count, hr_cuda_ptr(x), hr_cuda_ptr(y));
    uint64_t tmp;
    if (hr_cuda_scratch(ctx, count * (int64_t)hr_dtype_size(x->dtype), &tmp)) return -1;
    int rc = gather(ctx, n, x, tmp);
    if (!rc) rc = convert(ctx, x->dtype, y->dtype, count, tmp, hr_cuda_ptr(y));
    hr_cuda_scratch_free(ctx, tmp);
    return rc;
}

/* gx += gy, as the CPU: both read as doubles, added, stored in gx's dtype. No kernel converts and
 * adds, so gy of another dtype goes through scratch. An f32 gx under an f64 gy is widened to f64,
 * added to and narrowed back, so the sum rounds once, as on the CPU. Every other pair converts gy
 * to gx's dtype exactly and then adds with the CPU's rounding (an f32 sum of two floats rounds like
 * their double sum stored as f32). */
static int cast_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    int64_t count = hr_tensor_numel(gx);
    uint64_t px = hr_cuda_ptr(gx), py = hr_cuda_ptr(gy);
    if (gx->dtype == gy->dtype) return add_into(ctx, n, gx->dtype, count, py, px);
    if (!float_name(gy->dtype) || !float_name(gx->dtype) || gx->dtype == HR_BF16)
        return hr_error(ctx, "cast: no GPU gradient from %s back to %s (gradients add in f32 or f64)",
                        hr_dtype_name(gy->dtype), hr_dtype_name(gx->dtype));
    if (count == 0) return 0;
    bool widen = gx->dtype == HR_F32 && gy->dtype == HR_F64;
    uint64_t tmp;
    if (hr_cuda_scratch(ctx, count * (int64_t)hr_dtype_size(widen ? HR_F64 : gx->dtype), &tmp)) return -1;
    int rc;
    if (widen) {
        rc = convert(ctx, HR_F32, HR_F64, count, px, tmp);
        if (!rc) rc = add_into(ctx, n, HR_F64, count, py, tmp);
        if (!rc) rc = convert(ctx, HR_F64, HR_F32, count, tmp, px);
    } else {
        rc = convert(ctx, gy->dtype, gx->dtype, count, py, tmp);
        if (!rc) rc = add_into(ctx, n, gx->dtype, count, tmp, px);
    }
    hr_cuda_scratch_free(ctx, tmp);
    return rc;
}

/* The (outer, inner) around the concatenated dim iattr[0] of the output. */
static void concat_dims(const hr_node *n, int64_t *outer, int64_t *inner) {
    const hr_tensor *o = n->out[0];
    int dim = (int)n->iattr[0];
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= o->shape[d];
    for (int d = dim + 1; d < o->ndim; d++) *inner *= o->shape[d];
}

/* One hr_concat_part per input, each into its slab [start, start + len) of the output's dim. */
static int concat_forward(hr_ctx *ctx, hr_node *n) {
    int dim = (int)n->iattr[0];
    int64_t outer, inner, total = n->out[0]->shape[dim], start = 0;
    concat_dims(n, &outer, &inner);
    char name[64];
    snprintf(name, sizeof name, "hr_concat_part<%s>", hr_cuda_type_name(DT));
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[dim];
        if (LAUNCH("layout.cu", name, outer * len * inner, HR_KI64(outer), HR_KI64(len), HR_KI64(inner),
                   HR_KI64(start), HR_KI64(total), PTR(n->in[i]), PTR(n->out[0])))
            return -1;
        start += len;
    }
    return 0;
}

static int concat_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gy = hr_node_out_grad(n, 0);
    if (!gy) return 0;
    int dim = (int)n->iattr[0];
    int64_t outer, inner, total = n->out[0]->shape[dim], start = 0;
    concat_dims(n, &outer, &inner);
    char name[64];
    snprintf(name, sizeof name, "hr_concat_part_backward<%s>", hr_cuda_type_name(DT));
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[dim];
        hr_tensor *gx = hr_node_in_grad(n, i);
        /* launches run in stream order, so an input given twice (one gradient) adds both slabs */
        if (gx && LAUNCH("layout.cu", name, outer * len * inner, HR_KI64(outer), HR_KI64(len), HR_KI64(inner),
                         HR_KI64(start), HR_KI64(total), PTR(gy), PTR(gx)))
            return -1;
        start += len;
    }
    return 0;
}

/* ---- binary ops (broadcasting) ---- */

/* 4-D right-aligned strides of t against out's shape, 0 on broadcast dims: the CPU's broadcast4. */
static void broadcast4(const hr_tensor *t, const hr_tensor *out, int64_t *shape4, int64_t *stride4) {
    int64_t cstride[HR_MAX_DIMS];
    hr_contiguous_strides(t->ndim, t->shape, cstride);
    for (int d = 0; d < 4; d++) {
        int od = d - (4 - out->ndim), td = d - (4 - t->ndim);
        shape4[d] = od >= 0 ? out->shape[od] : 1;
        stride4[d] = td >= 0 && t->shape[td] == shape4[d] && shape4[d] > 1 ? cstride[td] : 0;
    }
}

static kbcast bcast_of(const hr_node *n) {
    kbcast s;
    broadcast4(n->in[0], n->out[0], s.n, s.sa);
    broadcast4(n->in[1], n->out[0], s.n, s.sb);
    return s;
}

/* KIND of the binary kernels: 0 add, 1 sub, 2 mul, 3 div (hr_binary_kind). */
static int binary_kind(hr_op_id op) { return op == HR_OP_ADD ? 0 : op == HR_OP_SUB ? 1 : op == HR_OP_MUL ? 2 : 3; }

static int binary_forward(hr_ctx *ctx, hr_node *n) {
    kbcast s = bcast_of(n);
    char name[64];
    snprintf(name, sizeof name, "hr_binary_forward<%s, %d>", hr_cuda_type_name(DT), binary_kind(n->op));
    return LAUNCH("elementwise.cu", name, hr_tensor_numel(n->out[0]), HR_KBYTES(&s), PTR(n->in[0]), PTR(n->in[1]),
                  PTR(n->out[0]));
}

/* Each needed operand gradient by hr_binary_grad: one thread per gradient element (the dims where
 * that operand's stride is not 0), its broadcast positions summed in order. Add and sub share the
 * gradient KIND 0; sub's b takes scale -1. */
static int binary_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gy = hr_node_out_grad(n, 0);
    if (!gy || hr_tensor_numel(n->out[0]) == 0) return 0;
    kbcast s = bcast_of(n);
    int kind = binary_kind(n->op), gkind = kind <= 1 ? 0 : kind;
    for (int wrt_b = 0; wrt_b < 2; wrt_b++) {
        hr_tensor *g = hr_node_in_grad(n, wrt_b);
        if (!g) continue;
        const int64_t *sg = wrt_b ? s.sb : s.sa;
        int64_t kept = 1;
        for (int d = 0; d < 4; d++)
            if (sg[d] != 0) kept *= s.n[d];
        double scale = n->op == HR_OP_SUB && wrt_b ? -1.0 : 1.0;
        char name[64];
        snprintf(name, sizeof name, "hr_binary_grad<%s, %d, %d>", hr_cuda_type_name(DT), gkind, wrt_b);
        /* a * a: both gradients are one buffer; the two launches run in stream order */
        if (LAUNCH("elementwise.cu", name, kept, HR_KBYTES(&s), PTR(gy), PTR(n->in[0]), PTR(n->in[1]),
                   HR_KREAL(DT, scale), PTR(g)))
            return -1;
    }
    return 0;
}

/* ---- affine and activations ---- */

static int affine_forward(hr_ctx *ctx, hr_node *n) {
    int64_t count = hr_tensor_numel(n->in[0]);
    char name[64];
    snprintf(name, sizeof name, "hr_affine_forward<%s>", hr_cuda_type_name(DT));
    return LAUNCH("elementwise.cu", name, count, HR_KI64(count), HR_KREAL(DT, n->fattr[0]), HR_KREAL(DT, n->fattr[1]),
                  PTR(n->in[0]), PTR(n->out[0]));
}

static int affine_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    int64_t count = hr_tensor_numel(n->in[0]);
    char name[64];
    snprintf(name, sizeof name, "hr_affine_backward<%s>", hr_cuda_type_name(DT));
    return LAUNCH("elementwise.cu", name, count, HR_KI64(count), HR_KREAL(DT, n->fattr[0]), PTR(gy), PTR(gx));
}

/* The Op of hr_unary_forward/backward<T, Op> for an activation. */
static const char *unary_op(hr_op_id op) {
    switch (op) {
    case HR_OP_EXP: return "hr_exp_op";
    case HR_OP_TANH: return "hr_tanh_op";
    case HR_OP_SIGMOID: return "hr_sigmoid_op";
    case HR_OP_SILU: return "hr_silu_op";
    case HR_OP_GELU: return "hr_gelu_op";
    case HR_OP_SOFTPLUS: return "hr_softplus_op";
    case HR_OP_RELU: return "hr_relu_op";
    default: return "hr_relu_squared_op";
    }
}

/* (x, y, n): the element count comes last in the unary kernels. */
static int unary_forward(hr_ctx *ctx, hr_node *n) {
    int64_t count = hr_tensor_numel(n->in[0]);
    char name[80];
    snprintf(name, sizeof name, "hr_unary_forward<%s, %s>", hr_cuda_type_name(DT), unary_op(n->op));
    return LAUNCH("unary.cu", name, count, PTR(n->in[0]), PTR(n->out[0]), HR_KI64(count));
}

static int unary_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    int64_t count = hr_tensor_numel(n->in[0]);
    char name[80];
    snprintf(name, sizeof name, "hr_unary_backward<%s, %s>", hr_cuda_type_name(DT), unary_op(n->op));
    return LAUNCH("unary.cu", name, count, PTR(n->in[0]), PTR(n->out[0]), PTR(gy), PTR(gx), HR_KI64(count));
}

/* ---- sum and mean over a dim ---- */

/* (outer, len, inner) around the reduced dim iattr[0], and the scale (1 for sum, 1/len for mean). */
static void reduce_dims(const hr_node *n, int64_t *outer, int64_t *len, int64_t *inner, double *scale) {
    const hr_tensor *x = n->in[0];
    int dim = (int)n->iattr[0];
    *outer = *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
    *len = x->shape[dim];
    *scale = n->op == HR_OP_MEAN && *len ? 1.0 / (double)*len : 1.0;
}

/* One thread per output element (outer * inner), summing its len terms in order. */
static int reduce_forward(hr_ctx *ctx, hr_node *n) {
    int64_t outer, len, inner;
    double scale;
    reduce_dims(n, &outer, &len, &inner, &scale);
    char name[64];
    snprintf(name, sizeof name, "hr_sum_dim_forward<%s>", hr_cuda_type_name(DT));
    return LAUNCH("elementwise.cu", name, outer * inner, HR_KI64(outer), HR_KI64(len), HR_KI64(inner),
                  HR_KREAL(DT, scale), PTR(n->in[0]), PTR(n->out[0]));
}

/* One thread per input element (outer * len * inner). */
static int reduce_backward(hr_ctx *ctx, hr_node *n) {
    hr_tensor *gx = hr_node_in_grad(n, 0), *gy = hr_node_out_grad(n, 0);
    if (!gx || !gy) return 0;
    int64_t outer, len, inner;
    double scale;
    reduce_dims(n, &outer, &len, &inner, &scale);
    char name[64];
    snprintf(name, sizeof name, "hr_sum_dim_backward<%s>", hr_cuda_type_name(DT));
    return LAUNCH("elementwise.cu", name, outer * len * inner, HR_KI64(outer), HR_KI64(len), HR_KI64(inner),
                  HR_KREAL(DT, scale), PTR(gy), PTR(gx));
}

void hr_cuda_register_elementwise(hr_ctx *ctx) {
    static const struct { hr_op_id op; hr_op_fn fwd, bwd; } table[] = {
        {HR_OP_VIEW, view_forward, view_backward},
        {HR_OP_CONTIGUOUS, contiguous_forward, contiguous_backward},
        {HR_OP_CAST, cast_forward, cast_backward},
        {HR_OP_CONCAT, concat_forward, concat_backward},
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
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ctx->ops[table[i].op].forward[HR_DEVICE_CUDA] = table[i].fwd;
        ctx->ops[table[i].op].backward[HR_DEVICE_CUDA] = table[i].bwd;
    }
}
