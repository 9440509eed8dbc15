/* Layout kernels: gather (a strided view made contiguous), scatter_add (its adjoint, the backward of a
 * view) and concat, against naive loops; the adjoint identity <gather(x), y> = <x, scatter(y)>; f32. */
#include <string.h>

#include "cpu/kernels.h"
#include "test_util.h"

/* Offset of flat index i of a row-major `shape` under `stride`. */
static int64_t strided_offset(int ndim, const int64_t *shape, const int64_t *stride, int64_t i) {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        off += (i % shape[d]) * stride[d];
        i /= shape[d];
    }
    return off;
}

/* A transposed view (dims a and b swapped) of a contiguous base with shape `base`. */
static void test_view(int ndim, const int64_t *base, int a, int b, uint64_t seed) {
    int64_t n = 1, bstride[4], shape[4], stride[4];
    for (int d = 0; d < ndim; d++) n *= base[d];
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) bstride[d] = s, s *= base[d];
    memcpy(shape, base, sizeof shape);
    memcpy(stride, bstride, sizeof stride);
    int64_t t = shape[a]; shape[a] = shape[b]; shape[b] = t;
    t = stride[a]; stride[a] = stride[b]; stride[b] = t;

    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double *gx = malloc((size_t)n * sizeof *gx), *sy = calloc((size_t)n, sizeof *sy);
    test_fill(x, n, &seed, -1, 1);
    test_fill(y, n, &seed, -1, 1);
    hr_cpu_gather_f64(ndim, shape, x, stride, gx);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += gx[i] != x[strided_offset(ndim, shape, stride, i)];
    CHECK(bad == 0, "gather reads the view in row-major order (%d wrong, ndim %d)", bad, ndim);

    hr_cpu_scatter_add_f64(ndim, shape, y, sy, stride, 0);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += sy[strided_offset(ndim, shape, stride, i)] != y[i];
    CHECK(bad == 0, "scatter_add writes each view element to its base position (%d wrong)", bad);

    double lhs = 0, rhs = 0; /* adjoint: <gather(x), y> == <x, scatter(y)> */
    for (int64_t i = 0; i < n; i++) lhs += gx[i] * y[i], rhs += x[i] * sy[i];
    CHECK(fabs(lhs - rhs) <= 1e-12 * (fabs(lhs) + 1), "scatter_add is the adjoint of gather: %.17g vs %.17g", lhs, rhs);

    hr_cpu_scatter_add_f64(ndim, shape, y, sy, stride, 0); /* accumulates */
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += sy[strided_offset(ndim, shape, stride, i)] != 2 * y[i];
    CHECK(bad == 0, "scatter_add adds into its destination");

    float *xf = malloc((size_t)n * sizeof *xf), *gf = malloc((size_t)n * sizeof *gf);
    test_fill_f32(xf, x, n);
    hr_cpu_gather_f32(ndim, shape, xf, stride, gf);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += gf[i] != (float)gx[i];
    CHECK(bad == 0, "f32 gather equals f64 gather");
    free(x), free(y), free(gx), free(sy), free(xf), free(gf);
}

static void test_concat(uint64_t seed) {
    const int64_t outer = 3, inner = 5, lens[3] = {2, 1, 4}, total = 7;
    double *xs[3], *dxs[3], out[3 * 7 * 5], dout[3 * 7 * 5];
    for (int i = 0; i < 3; i++) {
        xs[i] = malloc((size_t)(outer * lens[i] * inner) * sizeof(double));
        dxs[i] = calloc((size_t)(outer * lens[i] * inner), sizeof(double));
        test_fill(xs[i], outer * lens[i] * inner, &seed, -1, 1);
    }
    hr_cpu_concat_forward_f64(outer, inner, 3, lens, (const double *const *)xs, out);
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0, base = 0; j < 3; base += lens[j], j++)
            for (int64_t l = 0; l < lens[j]; l++)
                for (int64_t e = 0; e < inner; e++)
                    bad += out[(o * total + base + l) * inner + e] != xs[j][(o * lens[j] + l) * inner + e];
    CHECK(bad == 0, "concat places each piece along the middle dim");
    test_fill(dout, outer * total * inner, &seed, -1, 1);
    free(dxs[1]);
    dxs[1] = NULL; /* a piece that needs no gradient */
    hr_cpu_concat_backward_f64(outer, inner, 3, lens, dout, dxs);
    bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0, base = 0; j < 3; base += lens[j], j++)
            for (int64_t l = 0; dxs[j] && l < lens[j]; l++)
                for (int64_t e = 0; e < inner; e++)
                    bad += dxs[j][(o * lens[j] + l) * inner + e] != dout[(o * total + base + l) * inner + e];
    CHECK(bad == 0, "concat backward hands each piece its block of the gradient");
    for (int i = 0; i < 3; i++) free(xs[i]), free(dxs[i]);
}

int main(void) {
    uint64_t seed = 3;
    test_view(2, (int64_t[]){7, 5}, 0, 1, seed++);
    test_view(3, (int64_t[]){4, 6, 3}, 0, 2, seed++);
    test_view(4, (int64_t[]){3, 5, 2, 7}, 1, 2, seed++);
    test_view(4, (int64_t[]){64, 16, 4, 32}, 1, 2, seed++); /* large enough to run in parallel */
    test_view(1, (int64_t[]){9}, 0, 0, seed++);
    test_concat(seed++);
    return test_summary("layout");
}
