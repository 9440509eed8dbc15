/* Batched GEMM through CBLAS: every transpose combination, batches, a shared operand (stride 0) and
 * accumulation (beta = 1), against a naive triple loop in f64; f32 against f64. */
#include "cpu/kernels.h"
#include "test_util.h"

/* C (m, n) = alpha * op(A) op(B) + beta * C, naively. */
static void naive(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha, const double *a, const double *b,
                  double beta, double *c) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) s += (ta ? a[l * m + i] : a[i * k + l]) * (tb ? b[j * k + l] : b[l * n + j]);
            c[i * n + j] = alpha * s + beta * c[i * n + j];
        }
}

static void test_case(int ta, int tb, int64_t batch, int64_t m, int64_t n, int64_t k, int shared_b, double beta,
                      uint64_t seed) {
    int64_t sa = m * k, sb = shared_b ? 0 : k * n, sc = m * n;
    double *a = malloc((size_t)(batch * sa) * sizeof *a), *b = malloc((size_t)(batch * k * n) * sizeof *b);
    double *c = malloc((size_t)(batch * sc) * sizeof *c), *ref = malloc((size_t)(batch * sc) * sizeof *ref);
    float *af = malloc((size_t)(batch * sa) * sizeof *af), *bf = malloc((size_t)(batch * k * n) * sizeof *bf);
    float *cf = malloc((size_t)(batch * sc) * sizeof *cf);
    test_fill(a, batch * sa, &seed, -1, 1);
    test_fill(b, batch * k * n, &seed, -1, 1);
    test_fill(c, batch * sc, &seed, -1, 1);
    for (int64_t i = 0; i < batch * sc; i++) ref[i] = c[i];
    test_fill_f32(af, a, batch * sa);
    test_fill_f32(bf, b, batch * k * n);
    test_fill_f32(cf, c, batch * sc);
    hr_cpu_gemm_f64(batch, ta, tb, m, n, k, 1.5, a, sa, b, sb, beta, c, sc);
    hr_cpu_gemm_f32(batch, ta, tb, m, n, k, 1.5f, af, sa, bf, sb, (float)beta, cf, sc);
    for (int64_t i = 0; i < batch; i++) naive(ta, tb, m, n, k, 1.5, a + i * sa, b + i * sb, beta, ref + i * sc);
    double err = test_max_rel_diff(c, ref, batch * sc), err32 = test_max_rel_diff_f32(cf, ref, batch * sc);
    CHECK(err < 1e-13, "gemm ta=%d tb=%d batch=%lld (%lld,%lld,%lld) shared=%d beta=%g: %.3g", ta, tb,
          (long long)batch, (long long)m, (long long)n, (long long)k, shared_b, beta, err);
    CHECK(err32 < 1e-5, "f32 gemm within 1e-5 of f64: %.3g", err32);
    free(a), free(b), free(c), free(ref), free(af), free(bf), free(cf);
}

int main(void) {
    uint64_t seed = 11;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            test_case(ta, tb, 1, 7, 5, 3, 0, 0.0, seed++);
            test_case(ta, tb, 3, 33, 17, 65, 0, 1.0, seed++);   /* accumulate into C */
            test_case(ta, tb, 4, 16, 9, 12, 1, 0.0, seed++);    /* b shared by the batch */
            test_case(ta, tb, 2, 128, 96, 200, 0, 0.5, seed++); /* BLAS-blocked sizes */
        }
    return test_summary("matmul");
}
