/* The core from C: dtypes, the counter-based RNG, tensor lifetimes, views, autograd and capture,
 * and errors that must come back as messages rather than crashes. */
#include <string.h>

#include "core/graph.h"
#include "core/ops.h"
#include "cpu/backend.h"
#include "test_util.h"

static void test_bf16(void) {
    CHECK(hr_bf16_to_f32(hr_f32_to_bf16(1.0f)) == 1.0f, "1.0 survives bf16");
    CHECK(hr_bf16_to_f32(hr_f32_to_bf16(-3.5f)) == -3.5f, "-3.5 survives bf16");
    /* 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0) */
    CHECK(hr_bf16_to_f32(hr_f32_to_bf16(1.00390625f)) == 1.0f, "round half to even");
    CHECK(hr_bf16_to_f32(hr_f32_to_bf16(1.01171875f)) == 1.015625f, "round half to even, odd case up");
    float nan = __builtin_nanf("");
    float back = hr_bf16_to_f32(hr_f32_to_bf16(nan));
    CHECK(back != back, "NaN stays NaN");
    hr_dtype dt;
    CHECK(hr_dtype_parse("bfloat16", &dt) == 0 && dt == HR_BF16, "dtype aliases parse");
    CHECK(hr_dtype_parse("f16", &dt) == -1, "unknown dtype refused");
}

static void test_rng(void) {
    CHECK(hr_rng_bits(1, 5) == hr_rng_bits(1, 5), "pure function of (seed, counter)");
    CHECK(hr_rng_bits(1, 5) != hr_rng_bits(2, 5) && hr_rng_bits(1, 5) != hr_rng_bits(1, 6), "seed and counter matter");
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double z = hr_rng_normal(9, (uint64_t)i);
        sum += z, sq += z * z;
    }
    CHECK(fabs(sum / 1e5) < 0.02 && fabs(sq / 1e5 - 1) < 0.02, "normal mean %.4f var %.4f", sum / 1e5, sq / 1e5);
}

static void test_lifetimes_and_views(hr_ctx *ctx) {
    hr_tensor *x = hr_tensor_zeros(ctx, HR_F32, 2, (int64_t[]){3, 4});
    for (int i = 0; i < 12; i++) hr_tensor_set_flat(x, i, i);
    hr_tensor *t = hr_transpose(ctx, x, 0, 1);
    hr_tensor_release(x); /* the view keeps the storage alive */
    CHECK(t && t->shape[0] == 4 && hr_tensor_get_flat(t, 1) == 4.0, "transposed view reads through strides");
    CHECK(!hr_tensor_is_contiguous(t), "a transpose is not contiguous");
    hr_tensor *c = hr_contiguous(ctx, t);
    CHECK(c && hr_tensor_is_contiguous(c) && hr_tensor_get_flat(c, 1) == 4.0, "contiguous copies in logical order");
    hr_tensor_release(t);
    hr_tensor_release(c);
}

static void test_autograd(hr_ctx *ctx) {
    hr_tensor *w = hr_tensor_zeros(ctx, HR_F64, 1, (int64_t[]){3});
    for (int i = 0; i < 3; i++) hr_tensor_set_flat(w, i, i + 1);
    w->requires_grad = true;
    hr_tensor *sq = hr_binary(ctx, HR_OP_MUL, w, w);
    hr_tensor *loss = hr_reduce(ctx, HR_OP_SUM, sq, 0, 0);
    hr_tensor_release(sq); /* the graph keeps what the backward needs */
    CHECK(loss && hr_backward(ctx, loss, false) == 0, "backward runs: %s", hr_last_error(ctx));
    CHECK(w->grad && hr_tensor_get_flat(w->grad, 2) == 6.0, "d(sum w^2)/dw3 = 6");
    hr_tensor_release(loss);

    /* capture: the replay reads the current input values */
    hr_tensor *x = hr_tensor_zeros(ctx, HR_F64, 1, (int64_t[]){3});
    CHECK(hr_capture_begin(ctx) == 0, "capture begins");
    hr_tensor *y = hr_binary(ctx, HR_OP_MUL, x, w);
    hr_tensor *s = hr_reduce(ctx, HR_OP_SUM, y, 0, 0);
    hr_graph *g = hr_capture_end(ctx);
    CHECK(g && g->n_nodes == 2, "two ops recorded");
    hr_tensor_fill(ctx, x, 2.0);
    CHECK(hr_graph_forward(ctx, g) == 0 && hr_tensor_get_flat(s, 0) == 12.0, "replay sees new inputs: 2*(1+2+3)");
    hr_tensor_release(y);
    hr_tensor_release(s);
    hr_graph_free(g);
    hr_tensor_release(x);
    hr_tensor_release(w);
}

static void test_errors(hr_ctx *ctx) {
    hr_tensor *huge = hr_tensor_empty(ctx, HR_F32, 2, (int64_t[]){INT64_C(1) << 40, INT64_C(1) << 20});
    CHECK(!huge && strstr(hr_last_error(ctx), "too large"), "a shape past 2^48 elements is refused: %s",
          hr_last_error(ctx));
    huge = hr_tensor_empty(ctx, HR_F32, 2, (int64_t[]){INT64_C(1) << 24, INT64_C(1) << 22});
    CHECK(!huge && strstr(hr_last_error(ctx), "out of memory"), "a 64 TiB allocation fails cleanly: %s",
          hr_last_error(ctx));
    hr_tensor *a = hr_tensor_zeros(ctx, HR_F32, 2, (int64_t[]){2, 3});
    hr_tensor *b = hr_tensor_zeros(ctx, HR_F32, 1, (int64_t[]){4});
    CHECK(!hr_binary(ctx, HR_OP_ADD, a, b) && strstr(hr_last_error(ctx), "add: shapes (2, 3) and (4)"),
          "shape errors name the op and the shapes: %s", hr_last_error(ctx));
    /* 64-bit sizes: a view with more than 2^31 elements computes its numel exactly */
    hr_tensor big = {.ndim = 3, .shape = {INT64_C(1) << 20, 4096, 3}};
    CHECK(hr_tensor_numel(&big) == (INT64_C(3) << 32), "numel in 64-bit");
    hr_tensor_release(a);
    hr_tensor_release(b);
}

int main(void) {
    hr_ctx *ctx = hr_ctx_create();
    hr_cpu_register(ctx);
    test_bf16();
    test_rng();
    test_lifetimes_and_views(ctx);
    test_autograd(ctx);
    test_errors(ctx);
    hr_ctx_destroy(ctx);
    return test_summary("core");
}
