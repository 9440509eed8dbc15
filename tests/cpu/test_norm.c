/* Tests for the norm kernels (runtime/cpu/norm.inc): layer norm, RMS norm, group norm, gated RMS norm.
 * Per case: forward against a naive double reference, finite-difference gradients of every input on
 * the _f64 kernels, _f32 against _f64, NULL gradient pointers, and bitwise determinism across thread
 * counts. Set HR_TEST_QUICK=1 for fewer probes and smaller shapes (e.g. under valgrind). */
#include "cpu/kernels.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define F32_TOL 1e-5 /* f32 vs f64, relative to the largest |value| of each output / gradient */

typedef enum { LAYER, RMS, GROUP, GATED, NKIND } norm_kind;
static const char *kind_name[NKIND] = {"layer_norm", "rms_norm", "group_norm", "gated_rms_norm"};

/* Inputs of one case. For LAYER / RMS, G = 1 and S = C. For GATED, x is the kernel's y.
 * w, b, z are NULL where the routine or the case has none. */
typedef struct {
    norm_kind kind;
    int64_t rows, G, S;
    double eps;
    double *x, *z, *w, *b; // (rows, C), (rows, C), (C), (C)
    double *cot;           // (rows, C) cotangent: L = sum(out * cot)
    double *out, *mean, *rstd; // forward buffers used by the loss
} norm_case;

static int64_t C_of(const norm_case *c) { return c->G * c->S; }

static void forward_f64(const norm_case *c, const double *x, const double *z, const double *w,
                        const double *b, double *out, double *mean, double *rstd) {
    const int64_t C = C_of(c);
    switch (c->kind) {
    case LAYER: hr_cpu_layer_norm_forward_f64(c->rows, C, c->eps, x, w, b, out, mean, rstd); break;
    case RMS: hr_cpu_rms_norm_forward_f64(c->rows, C, c->eps, x, w, out, rstd); break;
    case GROUP: hr_cpu_group_norm_forward_f64(c->rows, c->G, c->S, c->eps, x, w, b, out, mean, rstd); break;
    default: hr_cpu_gated_rms_norm_forward_f64(c->rows, c->G, c->S, c->eps, x, z, w, out, rstd); break;
    }
}

static int backward_f64(const norm_case *c, const double *x, const double *z, const double *w,
                        const double *mean, const double *rstd, const double *dout,
                        double *dx, double *dz, double *dw, double *db) {
    const int64_t C = C_of(c);
    switch (c->kind) {
    case LAYER: return hr_cpu_layer_norm_backward_f64(c->rows, C, x, w, mean, rstd, dout, dx, dw, db);
    case RMS: return hr_cpu_rms_norm_backward_f64(c->rows, C, x, w, rstd, dout, dx, dw);
    case GROUP: return hr_cpu_group_norm_backward_f64(c->rows, c->G, c->S, x, w, mean, rstd, dout, dx, dw, db);
    default: return hr_cpu_gated_rms_norm_backward_f64(c->rows, c->G, c->S, x, z, w, rstd, dout, dx, dz, dw);
    }
}

static void forward_f32(const norm_case *c, const float *x, const float *z, const float *w,
                        const float *b, float *out, float *mean, float *rstd) {
    const int64_t C = C_of(c);
    const float eps = (float)c->eps;
    switch (c->kind) {
    case LAYER: hr_cpu_layer_norm_forward_f32(c->rows, C, eps, x, w, b, out, mean, rstd); break;
    case RMS: hr_cpu_rms_norm_forward_f32(c->rows, C, eps, x, w, out, rstd); break;
    case GROUP: hr_cpu_group_norm_forward_f32(c->rows, c->G, c->S, eps, x, w, b, out, mean, rstd); break;
    default: hr_cpu_gated_rms_norm_forward_f32(c->rows, c->G, c->S, eps, x, z, w, out, rstd); break;
    }
}

static int backward_f32(const norm_case *c, const float *x, const float *z, const float *w,
                        const float *mean, const float *rstd, const float *dout,
                        float *dx, float *dz, float *dw, float *db) {
    const int64_t C = C_of(c);
    switch (c->kind) {
    case LAYER: return hr_cpu_layer_norm_backward_f32(c->rows, C, x, w, mean, rstd, dout, dx, dw, db);
    case RMS: return hr_cpu_rms_norm_backward_f32(c->rows, C, x, w, rstd, dout, dx, dw);
    case GROUP: return hr_cpu_group_norm_backward_f32(c->rows, c->G, c->S, x, w, mean, rstd, dout, dx, dw, db);
    default: return hr_cpu_gated_rms_norm_backward_f32(c->rows, c->G, c->S, x, z, w, rstd, dout, dx, dz, dw);
    }
}

/* L = sum(out * cot), accumulated in long double so that the finite differences see the change of
 * the probed row and not the rounding of a long sum. */
static double loss_f64(void *ctx) {
    norm_case *c = ctx;
    forward_f64(c, c->x, c->z, c->w, c->b, c->out, c->mean, c->rstd);
    long double acc = 0;
    for (int64_t i = 0; i < c->rows * C_of(c); i++) acc += (long double)c->out[i] * c->cot[i];
    return (double)acc;
}

/* Naive reference: every statistic by a plain loop in double, straight from the definitions. */
static void reference_forward(const norm_case *c, double *out, double *mean, double *rstd) {
    const int64_t G = c->G, S = c->S, C = G * S;
    for (int64_t r = 0; r < c->rows; r++) {
        for (int64_t g = 0; g < G; g++) {
            const int64_t o = r * C + g * S;
            double v[4096]; // the normalised quantity: x, or y * silu(z)
            for (int64_t i = 0; i < S; i++) {
                const double xi = c->x[o + i];
                v[i] = c->kind == GATED ? xi * c->z[o + i] / (1.0 + exp(-c->z[o + i])) : xi;
            }
            double m = 0, ss = 0;
            if (c->kind == LAYER || c->kind == GROUP) {
                for (int64_t i = 0; i < S; i++) m += v[i];
                m /= (double)S;
            }
            for (int64_t i = 0; i < S; i++) ss += (v[i] - m) * (v[i] - m);
            const double rs = 1.0 / sqrt(ss / (double)S + c->eps);
            for (int64_t i = 0; i < S; i++) {
                const int64_t ch = g * S + i;
                out[o + i] = (v[i] - m) * rs * (c->w ? c->w[ch] : 1.0) + (c->b ? c->b[ch] : 0.0);
            }
            mean[r * G + g] = m;
            rstd[r * G + g] = rs;
        }
    }
}

static double *dup_or_null(const double *src, int64_t n) {
    if (!src) return NULL;
    double *d = malloc((size_t)n * sizeof(double));
    memcpy(d, src, (size_t)n * sizeof(double));
    return d;
}
static float *f32_or_null(const double *src, int64_t n) {
    if (!src) return NULL;
    float *d = malloc((size_t)n * sizeof(float));
    test_fill_f32(d, src, n);
    return d;
}

// ----------------------------------------------------------------------------
// worst results over all cases, reported at the end

enum { IN_X, IN_Z, IN_W, IN_B, NIN };
static const char *in_name[NIN] = {"dx", "dz", "dw", "db"};
/* The gated norm calls its main input y. */
static const char *grad_name(norm_kind kind, int i) { return kind == GATED && i == IN_X ? "dy" : in_name[i]; }
static double worst_fd[NKIND][NIN];
static char worst_fd_shape[NKIND][NIN][96];
static double worst_f32[NKIND];
static int quick;

// ----------------------------------------------------------------------------
// one case: everything but determinism

/* fd = 0 skips the finite differences (large shapes, checked against the reference and f32 only). */
static void run_case(norm_kind kind, int64_t rows, int64_t G, int64_t S, double eps, int has_w,
                     int has_b, int fd, uint64_t seed) {
    if (kind == LAYER || kind == RMS) { S *= G; G = 1; }
    if (kind == RMS || kind == GATED) has_b = 0;
    const int64_t C = G * S, n = rows * C, ns = rows * G;
    uint64_t s = seed;
    norm_case c = {kind, rows, G, S, eps, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.x = malloc((size_t)n * sizeof(double));
    // an offset on x for the mean-centred norms: the centring must actually matter
    test_fill(c.x, n, &s, kind == LAYER || kind == GROUP ? -0.7 : -1.0, 1.3);
    if (kind == GATED) { c.z = malloc((size_t)n * sizeof(double)); test_fill(c.z, n, &s, -3, 3); }
    if (has_w) { c.w = malloc((size_t)C * sizeof(double)); test_fill(c.w, C, &s, 0.5, 1.5); }
    if (has_b) { c.b = malloc((size_t)C * sizeof(double)); test_fill(c.b, C, &s, -0.5, 0.5); }
    c.cot = malloc((size_t)n * sizeof(double)); test_fill(c.cot, n, &s, -1, 1);
    c.out = malloc((size_t)n * sizeof(double));
    c.mean = calloc((size_t)ns, sizeof(double));
    c.rstd = malloc((size_t)ns * sizeof(double));

    char shape[96];
    snprintf(shape, sizeof shape, "(rows=%lld,G=%lld,S=%lld,eps=%g%s%s)", (long long)rows,
             (long long)G, (long long)S, eps, has_w ? ",w" : "", has_b ? ",b" : "");

    // forward against the naive reference
    double *out = malloc((size_t)n * sizeof(double)), *mean = calloc((size_t)ns, sizeof(double));
    double *rstd = malloc((size_t)ns * sizeof(double));
    double *ref = malloc((size_t)n * sizeof(double)), *ref_mean = malloc((size_t)ns * sizeof(double));
    double *ref_rstd = malloc((size_t)ns * sizeof(double));
    forward_f64(&c, c.x, c.z, c.w, c.b, out, mean, rstd);
    reference_forward(&c, ref, ref_mean, ref_rstd);
    double e_out = test_max_rel_diff(out, ref, n), e_rstd = test_max_rel_diff(rstd, ref_rstd, ns);
    double e_mean = (kind == LAYER || kind == GROUP) ? test_max_rel_diff(mean, ref_mean, ns) : 0;
    CHECK(e_out < 1e-12 && e_mean < 1e-12 && e_rstd < 1e-12,
          "%s %s forward vs reference: out %.2e mean %.2e rstd %.2e", kind_name[kind], shape, e_out,
          e_mean, e_rstd);

    // backward into buffers holding random values: the kernel must add, so analytic = after - before
    double *pre[NIN] = {0}, *grad[NIN] = {0};
    const int64_t len[NIN] = {n, n, C, C};
    const int wanted[NIN] = {1, c.z != NULL, c.w != NULL, c.b != NULL};
    for (int i = 0; i < NIN; i++) {
        if (!wanted[i]) continue;
        pre[i] = malloc((size_t)len[i] * sizeof(double));
        test_fill(pre[i], len[i], &s, -1, 1);
        grad[i] = dup_or_null(pre[i], len[i]);
    }
    int rc = backward_f64(&c, c.x, c.z, c.w, mean, rstd, c.cot, grad[IN_X], grad[IN_Z], grad[IN_W],
                          grad[IN_B]);
    CHECK(rc == 0, "%s backward returned %d", kind_name[kind], rc);

    // finite differences of every input
    double *inputs[NIN] = {c.x, c.z, c.w, c.b};
    const int64_t probes = quick ? 40 : 150;
    if (fd) printf("fd %-14s %-44s", kind_name[kind], shape);
    for (int i = 0; fd && i < NIN; i++) {
        if (!wanted[i]) continue;
        double *analytic = malloc((size_t)len[i] * sizeof(double));
        for (int64_t j = 0; j < len[i]; j++) analytic[j] = grad[i][j] - pre[i][j];
        double err = test_fd_error(loss_f64, &c, inputs[i], len[i], analytic, probes, FD_H);
        printf(" %s %.1e", grad_name(kind, i), err);
        CHECK(err < FD_TOL, "fd %s %s %s: %.3e", kind_name[kind], grad_name(kind, i), shape, err);
        if (err >= worst_fd[kind][i]) {
            worst_fd[kind][i] = err;
            snprintf(worst_fd_shape[kind][i], sizeof worst_fd_shape[kind][i], "%s", shape);
        }
        free(analytic);
    }
    if (fd) printf("\n");

    // each gradient alone (the others NULL) is bitwise the one of the full call
    for (int i = 0; i < NIN; i++) {
        if (!wanted[i]) continue;
        double *alone[NIN] = {0};
        alone[i] = dup_or_null(pre[i], len[i]);
        rc = backward_f64(&c, c.x, c.z, c.w, mean, rstd, c.cot, alone[IN_X], alone[IN_Z], alone[IN_W],
                          alone[IN_B]);
        CHECK(rc == 0 && memcmp(alone[i], grad[i], (size_t)len[i] * sizeof(double)) == 0,
              "%s %s %s alone differs from the full backward", kind_name[kind], grad_name(kind, i), shape);
        free(alone[i]);
    }

    // f32 against f64 (f32 gradients start from zero, so compare with after - before)
    float *xf = f32_or_null(c.x, n), *zf = f32_or_null(c.z, n), *wf = f32_or_null(c.w, C);
    float *bf = f32_or_null(c.b, C), *cotf = f32_or_null(c.cot, n);
    float *outf = malloc((size_t)n * sizeof(float)), *meanf = calloc((size_t)ns, sizeof(float));
    float *rstdf = malloc((size_t)ns * sizeof(float));
    forward_f32(&c, xf, zf, wf, bf, outf, meanf, rstdf);
    double e32 = test_max_rel_diff_f32(outf, out, n);
    e32 = fmax(e32, test_max_rel_diff_f32(rstdf, rstd, ns));
    if (kind == LAYER || kind == GROUP) e32 = fmax(e32, test_max_rel_diff_f32(meanf, mean, ns));
    float *gradf[NIN] = {0};
    for (int i = 0; i < NIN; i++)
        if (wanted[i]) gradf[i] = calloc((size_t)len[i], sizeof(float));
    rc = backward_f32(&c, xf, zf, wf, meanf, rstdf, cotf, gradf[IN_X], gradf[IN_Z], gradf[IN_W],
                      gradf[IN_B]);
    CHECK(rc == 0, "%s backward_f32 returned %d", kind_name[kind], rc);
    for (int i = 0; i < NIN; i++) {
        if (!wanted[i]) continue;
        for (int64_t j = 0; j < len[i]; j++) grad[i][j] -= pre[i][j];
        e32 = fmax(e32, test_max_rel_diff_f32(gradf[i], grad[i], len[i]));
    }
    CHECK(e32 < F32_TOL, "%s %s f32 vs f64: %.3e", kind_name[kind], shape, e32);
    if (e32 > worst_f32[kind]) worst_f32[kind] = e32;

    for (int i = 0; i < NIN; i++) { free(pre[i]); free(grad[i]); free(gradf[i]); }
    free(xf); free(zf); free(wf); free(bf); free(cotf); free(outf); free(meanf); free(rstdf);
    free(out); free(mean); free(rstd); free(ref); free(ref_mean); free(ref_rstd);
    free(c.x); free(c.z); free(c.w); free(c.b); free(c.cot); free(c.out); free(c.mean); free(c.rstd);
}

// ----------------------------------------------------------------------------
// determinism: f32 forward + backward with 1 and 3 threads, bitwise

typedef struct { float *out, *mean, *rstd, *dx, *dz, *dw, *db; } f32_results;

static f32_results run_f32(const norm_case *c, const float *x, const float *z, const float *w,
                           const float *b, const float *dout, int threads) {
    const int64_t n = c->rows * C_of(c), ns = c->rows * c->G, C = C_of(c);
    f32_results r = {malloc((size_t)n * sizeof(float)), calloc((size_t)ns, sizeof(float)),
                     malloc((size_t)ns * sizeof(float)), calloc((size_t)n, sizeof(float)),
                     z ? calloc((size_t)n, sizeof(float)) : NULL, w ? calloc((size_t)C, sizeof(float)) : NULL,
                     b ? calloc((size_t)C, sizeof(float)) : NULL};
    omp_set_num_threads(threads);
    forward_f32(c, x, z, w, b, r.out, r.mean, r.rstd);
    int rc = backward_f32(c, x, z, w, r.mean, r.rstd, dout, r.dx, r.dz, r.dw, r.db);
    CHECK(rc == 0, "%s backward_f32 returned %d", kind_name[c->kind], rc);
    return r;
}

static int same(const float *a, const float *b, int64_t n) {
    return (!a && !b) || (a && b && memcmp(a, b, (size_t)n * sizeof(float)) == 0);
}

static void run_determinism(norm_kind kind, int64_t rows, int64_t G, int64_t S, uint64_t seed) {
    if (kind == LAYER || kind == RMS) { S *= G; G = 1; }
    const int64_t C = G * S, n = rows * C;
    norm_case c = {kind, rows, G, S, 1e-5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    uint64_t s = seed;
    double *tmp = malloc((size_t)n * sizeof(double));
    float *x = malloc((size_t)n * sizeof(float)), *dout = malloc((size_t)n * sizeof(float));
    float *z = kind == GATED ? malloc((size_t)n * sizeof(float)) : NULL;
    float *w = malloc((size_t)C * sizeof(float));
    float *b = kind == LAYER || kind == GROUP ? malloc((size_t)C * sizeof(float)) : NULL;
    test_fill(tmp, n, &s, -1, 1.5); test_fill_f32(x, tmp, n);
    test_fill(tmp, n, &s, -1, 1); test_fill_f32(dout, tmp, n);
    if (z) { test_fill(tmp, n, &s, -3, 3); test_fill_f32(z, tmp, n); }
    test_fill(tmp, C, &s, 0.5, 1.5); test_fill_f32(w, tmp, C);
    if (b) { test_fill(tmp, C, &s, -0.5, 0.5); test_fill_f32(b, tmp, C); }

    f32_results r1 = run_f32(&c, x, z, w, b, dout, 1), r3 = run_f32(&c, x, z, w, b, dout, 3);
    int ok = same(r1.out, r3.out, n) && same(r1.mean, r3.mean, rows * G) &&
             same(r1.rstd, r3.rstd, rows * G) && same(r1.dx, r3.dx, n) && same(r1.dz, r3.dz, n) &&
             same(r1.dw, r3.dw, C) && same(r1.db, r3.db, C);
    CHECK(ok, "%s (rows=%lld,G=%lld,S=%lld): 1 and 3 threads differ", kind_name[kind],
          (long long)rows, (long long)G, (long long)S);
    printf("determinism %-14s (rows=%lld,G=%lld,S=%lld): %s\n", kind_name[kind], (long long)rows,
           (long long)G, (long long)S, ok ? "bitwise identical" : "DIFFERENT");
    f32_results *rs[2] = {&r1, &r3};
    for (int i = 0; i < 2; i++) {
        free(rs[i]->out); free(rs[i]->mean); free(rs[i]->rstd); free(rs[i]->dx); free(rs[i]->dz);
        free(rs[i]->dw); free(rs[i]->db);
    }
    free(tmp); free(x); free(dout); free(z); free(w); free(b);
}

int main(void) {
    const char *q = getenv("HR_TEST_QUICK");
    quick = q && q[0] && q[0] != '0';
    // rows of the larger fd cases: several backward chunks, yet under HR_NORM_PAR_MIN elements so
    // that the thousands of forward calls of the finite differences pay no fork / join; the
    // parallel path is checked by the last, larger case (reference, f32, NULL gradients) and by
    // the determinism checks
    const int64_t big = quick ? 40 : 100;

    // Shapes are (rows, G, S); layer / RMS norm flatten them to C = G * S. rows = B*T, e.g.
    // 74 = 2 x 37 and 1 = T=1. Every eps the models use; with and without w / b; odd sizes.
    for (norm_kind k = 0; k < NKIND; k++) {
        uint64_t seed = 1000 * (uint64_t)(k + 1);
        run_case(k, 1, 1, 64, 1e-5, 1, 1, 1, seed++);
        run_case(k, 1, 3, 32, 6.4e-4, 1, 1, 1, seed++);
        run_case(k, 74, 3, 32, 6.4e-4, 1, 1, 1, seed++);
        run_case(k, 37, 2, 64, 1e-5, 1, 0, 1, seed++);
        run_case(k, 13, 5, 7, 1e-6, 0, 1, 1, seed++);
        run_case(k, big, 1, 33, 1e-5, 0, 0, 1, seed++);
        run_case(k, 9, 1, 129, 1e-6, 1, 1, 1, seed++);
        run_case(k, big, 4, 64, 6.4e-4, 1, 1, 1, seed++);
        // one channel per group (in all, for layer norm): the normalised value is exactly 0. (The
        // RMS family with one channel is x / sqrt(x^2 + eps): too ill-conditioned for these bounds.)
        if (k == LAYER || k == GROUP) run_case(k, 2, k == LAYER ? 1 : 2, 1, 1e-5, 1, 1, 1, seed++);
        run_case(k, quick ? 70 : 517, 8, 64, 1e-5, 1, 1, 0, seed++);
    }

    for (norm_kind k = 0; k < NKIND; k++) {
        // above HR_NORM_PAR_MIN elements, so that the kernels do run on several threads
        run_determinism(k, quick ? 200 : 1001, 4, 64, 77 + k);
        run_determinism(k, 33, 1, 2048, 99 + k);
    }

    printf("worst fd error per routine and input:\n");
    for (norm_kind k = 0; k < NKIND; k++)
        for (int i = 0; i < NIN; i++)
            if (worst_fd_shape[k][i][0])
                printf("  fd %s %s %s: %.1e\n", kind_name[k], grad_name(k, i), worst_fd_shape[k][i],
                       worst_fd[k][i]);
    for (norm_kind k = 0; k < NKIND; k++)
        printf("  f32 vs f64 %s: %.1e (bound %.0e)\n", kind_name[k], worst_f32[k], F32_TOL);
    return test_summary("norm");
}
