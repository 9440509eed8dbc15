/* A tiny test harness shared by the C tests: checks that count, a closing summary line, a seeded
 * random fill, and a finite-difference gradient check for raw CPU kernels in double precision. */
#ifndef HR_TEST_UTIL_H
#define HR_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) { test_passed++; }                                                  \
        else { test_failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
               fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); }                 \
    } while (0)

/* Prints the closing line and returns the process exit status. */
static inline int test_summary(const char *name) {
    printf("%s: %d checks passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

/* A library the test needs is missing (NVRTC, for the jit tests): a failure when the environment
 * variable require_var is "1" (CI sets HYBRIDRT_REQUIRE_NVRTC=1), else a skip that says what was
 * skipped ("the compile tests"; "" for all) and why. */
static inline void test_library_missing(const char *test, const char *skipped, const char *library,
                                        const char *require_var, const char *why) {
    const char *require = getenv(require_var);
    if (require && strcmp(require, "1") == 0) CHECK(0, "%s is required (%s=1) but: %s", library, require_var, why);
    else printf("%s: SKIPPED%s%s: %s not found (%s)\n", test, skipped[0] ? " " : "", skipped, library, why);
}

/* splitmix64: deterministic test data independent of anything else. */
static inline uint64_t test_rand_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double test_uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * ((double)(test_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}
static inline void test_fill(double *x, int64_t n, uint64_t *s, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = test_uniform(s, lo, hi);
}
static inline void test_fill_f32(float *x, const double *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)src[i];
}

/* Finite-difference check of one input's gradient.
 * loss(ctx) must recompute the scalar L = sum(out * cotangent) from the current inputs;
 * analytic[i] is the kernel's dL/dx[i]. At most `max_probe` elements (spread evenly) are probed
 * with central differences of step h. Returns the error normalised by the gradient's scale:
 * max_i |analytic_i - numeric_i| / max(max_i |numeric_i|, 1e-12). */
static inline double test_fd_error(double (*loss)(void *), void *ctx, double *x, int64_t n,
                                   const double *analytic, int64_t max_probe, double h) {
    int64_t step = n > max_probe ? n / max_probe : 1;
    double worst = 0, scale = 1e-12;
    for (int64_t i = 0; i < n; i += step) {
        double keep = x[i];
        x[i] = keep + h; double lp = loss(ctx);
        x[i] = keep - h; double lm = loss(ctx);
        x[i] = keep;
        double numeric = (lp - lm) / (2 * h);
        double err = fabs(numeric - analytic[i]);
        if (err > worst) worst = err;
        if (fabs(numeric) > scale) scale = fabs(numeric);
    }
    return worst / scale;
}

/* Largest |a-b| / max(|b|max, 1e-300): compares a kernel's output with a reference. */
static inline double test_max_rel_diff(const double *a, const double *b, int64_t n) {
    double worst = 0, scale = 1e-300;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > worst) worst = fabs(a[i] - b[i]);
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return worst / scale;
}

/* Largest |a-b| / max(|b|max, 1e-12): compares the float kernel with the double one. */
static inline double test_max_rel_diff_f32(const float *a, const double *b, int64_t n) {
    double worst = 0, scale = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > worst) worst = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return worst / scale;
}

#endif
