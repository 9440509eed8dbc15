/* Tests of the optimizer kernels (runtime/cpu/optim.inc): AdamW against a long-double transcription of
 * PyTorch's AdamW over several steps (with decay, clipping scale and bias correction), f32 against
 * f64, and the sum of squares: exact on integers, close to a long-double sum, and bitwise identical
 * for 1, 2 and 3 threads. */
#include "cpu/kernels.h"
#include "test_util.h"

#include <omp.h>

/* One AdamW step written from the definition (torch.optim.AdamW, decoupled decay). */
static void adamw_reference(int64_t n, long double *p, const double *g, long double *m, long double *v,
                            double lr, double b1, double b2, double eps, double wd, int step, double gs) {
    long double bias1 = 1 - powl(b1, step), bias2 = 1 - powl(b2, step);
    for (int64_t i = 0; i < n; i++) {
        long double gi = (long double)g[i] * gs;
        p[i] *= 1 - (long double)lr * wd;
        m[i] = b1 * m[i] + (1 - (long double)b1) * gi;
        v[i] = b2 * v[i] + (1 - (long double)b2) * gi * gi;
        p[i] -= lr * (m[i] / bias1) / (sqrtl(v[i] / bias2) + eps);
    }
}

static void test_adamw(void) {
    enum { N = 1000, STEPS = 7 };
    uint64_t seed = 42;
    double p64[N], m64[N] = {0}, v64[N] = {0}, g[N];
    float p32[N], m32[N] = {0}, v32[N] = {0}, g32[N];
    long double pr[N], mr[N] = {0}, vr[N] = {0};
    test_fill(p64, N, &seed, -1, 1);
    test_fill_f32(p32, p64, N);
    for (int i = 0; i < N; i++) pr[i] = p32[i], p64[i] = p32[i];
    double worst64 = 0, worst32 = 0;
    for (int step = 1; step <= STEPS; step++) {
        test_fill(g, N, &seed, -2, 2);
        if (step == 3) g[5] = 0, g[6] = 1e-12;   /* tiny gradients: eps dominates */
        test_fill_f32(g32, g, N);
        for (int i = 0; i < N; i++) g[i] = g32[i];
        double lr = 1e-2 * step, gs = step == 4 ? 0.25 : 1.0;
        adamw_reference(N, pr, g, mr, vr, lr, 0.9, 0.95, 1e-8, 0.1, step, gs);
        hr_cpu_adamw_f64(N, p64, g, m64, v64, lr, 0.9, 0.95, 1e-8, 0.1, 1 - pow(0.9, step), 1 - pow(0.95, step), gs);
        hr_cpu_adamw_f32(N, p32, g32, m32, v32, lr, 0.9, 0.95, 1e-8, 0.1, 1 - pow(0.9, step), 1 - pow(0.95, step), gs);
        for (int i = 0; i < N; i++) {
            double e64 = fabs((double)(p64[i] - pr[i])), e32 = fabs((double)(p32[i] - pr[i]));
            if (e64 > worst64) worst64 = e64;
            if (e32 > worst32) worst32 = e32;
        }
    }
    CHECK(worst64 < 1e-13, "adamw f64 vs reference: %.3g", worst64);
    CHECK(worst32 < 2e-6, "adamw f32 vs reference: %.3g", worst32);
    printf("adamw: %d steps, worst |p - reference| f64 %.2g, f32 %.2g\n", STEPS, worst64, worst32);

    /* The first step of Adam moves every parameter with a nonzero gradient by about lr. */
    double p[4] = {0, 0, 0, 0}, m[4] = {0}, v[4] = {0}, gg[4] = {3, -0.5, 1e-3, 0};
    hr_cpu_adamw_f64(4, p, gg, m, v, 0.1, 0.9, 0.95, 1e-8, 0, 1 - 0.9, 1 - 0.95, 1);
    CHECK(fabs(p[0] + 0.1) < 1e-6 && fabs(p[1] - 0.1) < 1e-6 && fabs(p[2] + 0.1) < 1e-4 && p[3] == 0,
          "first step: %g %g %g %g", p[0], p[1], p[2], p[3]);
}

static void test_sum_squares(void) {
    int64_t n = 3 * HR_CPU_SUMSQ_BLOCK + 17;
    float *x = malloc((size_t)n * sizeof *x);
    double *xd = malloc((size_t)n * sizeof *xd);
    uint64_t seed = 7;
    long double ref = 0;
    for (int64_t i = 0; i < n; i++) {
        xd[i] = test_uniform(&seed, -3, 3);
        x[i] = (float)xd[i];
        ref += (long double)x[i] * x[i];
    }
    double s1, s2, s3, sd;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    hr_cpu_sum_squares_f32(n, x, &s1);
    omp_set_num_threads(2);
    hr_cpu_sum_squares_f32(n, x, &s2);
    omp_set_num_threads(3);
    hr_cpu_sum_squares_f32(n, x, &s3);
    omp_set_num_threads(threads);
    CHECK(s1 == s2 && s2 == s3, "sum_squares differs by thread count: %.17g %.17g %.17g", s1, s2, s3);
    CHECK(fabs((double)(s1 - ref)) < 1e-12 * (double)ref, "sum_squares f32 vs long double: %.17g %.17Lg", s1, ref);
    hr_cpu_sum_squares_f64(n, xd, &sd);
    CHECK(sd > 0 && fabs(sd - (double)ref) < 1e-6 * (double)ref, "sum_squares f64: %.17g", sd);
    double ints[5] = {1, 2, 3, 4, 5}, s;
    hr_cpu_sum_squares_f64(5, ints, &s);
    CHECK(s == 55, "sum_squares of 1..5 = %g", s);
    hr_cpu_sum_squares_f64(0, ints, &s);
    CHECK(s == 0, "sum_squares of nothing = %g", s);
    free(x);
    free(xd);
}

int main(void) {
    test_adamw();
    test_sum_squares();
    return test_summary("cpu.optim");
}
