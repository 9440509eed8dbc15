/* Tests for the RWKV-6 WKV kernels (runtime/cpu/wkv6.inc): forward against a naive reference that
 * materialises every state, finite-difference gradients of every input on the double kernel,
 * float vs double, thread-count determinism, accumulate-into semantics, NULL gradients, and
 * chaining (T steps at once == T1 steps then T - T1 steps with the state carried).
 * HR_TEST_QUICK=1 in the environment shrinks the problem sizes (for valgrind). */
#include "cpu/kernels.h"
#include "test_util.h"
#include <omp.h>
#include <string.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define F32_TOL 1e-5 /* f32 vs f64: max abs difference / max |f64| per output or gradient */
#define REF_TOL 1e-12 /* kernel vs naive reference, both in double */

static int64_t max_probe = 100;
static double worst_fd[6]; /* per input over all cases: r, k, v, w, u, s0 */
static const char *input_names[6] = {"dr", "dk", "dv", "dw", "du", "ds0"};

static double *alloc_d(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static float *to_f32(const double *x, int64_t n) {
    if (!x) return NULL;
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    test_fill_f32(f, x, n);
    return f;
}
/* One problem: inputs, cotangents and output buffers, all double. s0 / dsT may be NULL. */
typedef struct {
    int64_t B, T, H, N;
    double *r, *k, *v, *w, *u, *s0; /* (B,T,H,N) x4, (H,N), (B,H,N,N) */
    double *dy, *dsT;               /* (B,T,H,N), (B,H,N,N) */
    double *y, *sT;                 /* forward outputs */
} problem;

static int64_t n_btn(const problem *p) { return p->B * p->T * p->H * p->N; }
static int64_t n_state(const problem *p) { return p->B * p->H * p->N * p->N; }

static void problem_init(problem *p, int64_t B, int64_t T, int64_t H, int64_t N, int has_s0,
                         int has_dsT, uint64_t *seed) {
    *p = (problem){.B = B, .T = T, .H = H, .N = N};
    int64_t n = n_btn(p), ns = n_state(p);
    p->r = alloc_d(n); p->k = alloc_d(n); p->v = alloc_d(n); p->w = alloc_d(n);
    p->u = alloc_d(H * N); p->dy = alloc_d(n); p->y = alloc_d(n); p->sT = alloc_d(ns);
    test_fill(p->r, n, seed, -1, 1);
    test_fill(p->k, n, seed, -1, 1);
    test_fill(p->v, n, seed, -1, 1);
    test_fill(p->w, n, seed, -3, 0.5); /* decays exp(-exp(w)) from ~0.95 to ~0.2 */
    test_fill(p->u, H * N, seed, -1, 1);
    test_fill(p->dy, n, seed, -1, 1);
    if (has_s0) { p->s0 = alloc_d(ns); test_fill(p->s0, ns, seed, -1, 1); }
    if (has_dsT) { p->dsT = alloc_d(ns); test_fill(p->dsT, ns, seed, -1, 1); }
}
static void problem_free(problem *p) {
    free(p->r); free(p->k); free(p->v); free(p->w); free(p->u); free(p->s0);
    free(p->dy); free(p->dsT); free(p->y); free(p->sT);
}

/* L = sum(y * dy) + sum(sT * dsT), recomputed with the double kernel. */
static double loss_f64(void *ctx) {
    problem *p = ctx;
    hr_cpu_wkv6_forward_f64(p->B, p->T, p->H, p->N, p->r, p->k, p->v, p->w, p->u, p->s0, p->y,
                            p->dsT ? p->sT : NULL);
    long double L = 0; /* extended precision: keeps the summation's rounding out of the differences */
    for (int64_t i = 0; i < n_btn(p); i++) L += (long double)p->y[i] * p->dy[i];
    if (p->dsT)
        for (int64_t i = 0; i < n_state(p); i++) L += (long double)p->sT[i] * p->dsT[i];
    return (double)L;
}

/* Naive forward: materialises all T+1 states of each (b, h) and applies the formula literally. */
static void naive_forward(const problem *p, double *y, double *sT) {
    const int64_t T = p->T, H = p->H, N = p->N, NN = N * N;
    double *S = alloc_d((T + 1) * NN); /* (T+1, N, N): S[t] is the state before step t */
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t e = 0; e < NN; e++) S[e] = p->s0 ? p->s0[(b * H + h) * NN + e] : 0;
            for (int64_t t = 0; t < T; t++) {
                const int64_t o = ((b * T + t) * H + h) * N;
                const double *r = p->r + o, *k = p->k + o, *v = p->v + o, *w = p->w + o;
                const double *St = S + t * NN;
                double *Sn = S + (t + 1) * NN;
                for (int64_t j = 0; j < N; j++) {
                    double acc = 0;
                    for (int64_t i = 0; i < N; i++)
                        acc += r[i] * (p->u[h * N + i] * k[i] * v[j] + St[i * N + j]);
                    y[o + j] = acc;
                }
                for (int64_t i = 0; i < N; i++)
                    for (int64_t j = 0; j < N; j++)
                        Sn[i * N + j] = exp(-exp(w[i])) * St[i * N + j] + k[i] * v[j];
            }
            memcpy(sT + (b * H + h) * NN, S + T * NN, (size_t)NN * sizeof(double));
        }
    free(S);
}

/* Gradients of one problem in double (grads[i] NULL when not wanted; index as input_names). */
static void backward_f64(const problem *p, double **g) {
    int rc = hr_cpu_wkv6_backward_f64(p->B, p->T, p->H, p->N, p->r, p->k, p->v, p->w, p->u, p->s0,
                                      p->dy, p->dsT, g[0], g[1], g[2], g[3], g[4], g[5]);
    CHECK(rc == 0, "wkv6 backward f64 returned %d", rc);
}

/* float forward + backward of a problem, outputs freshly zeroed. out: y, sT, dr, dk, dv, dw, du, ds0. */
static void run_f32(const problem *p, float **out) {
    const int64_t n = n_btn(p), ns = n_state(p), nu = p->H * p->N;
    const int64_t sizes[8] = {n, ns, n, n, n, n, nu, ns};
    float *r = to_f32(p->r, n), *k = to_f32(p->k, n), *v = to_f32(p->v, n), *w = to_f32(p->w, n);
    float *u = to_f32(p->u, nu), *s0 = to_f32(p->s0, ns), *dy = to_f32(p->dy, n);
    float *dsT = to_f32(p->dsT, ns);
    for (int i = 0; i < 8; i++) out[i] = calloc((size_t)(sizes[i] > 0 ? sizes[i] : 1), sizeof(float));
    int rc = hr_cpu_wkv6_forward_f32(p->B, p->T, p->H, p->N, r, k, v, w, u, s0, out[0], out[1]);
    rc |= hr_cpu_wkv6_backward_f32(p->B, p->T, p->H, p->N, r, k, v, w, u, s0, dy, dsT, out[2],
                                   out[3], out[4], out[5], out[6], p->s0 ? out[7] : NULL);
    CHECK(rc == 0, "wkv6 f32 returned %d", rc);
    free(r); free(k); free(v); free(w); free(u); free(s0); free(dy); free(dsT);
}

static void run_case(int64_t B, int64_t T, int64_t H, int64_t N, int has_s0, int has_dsT,
                     uint64_t seed) {
    problem p;
    problem_init(&p, B, T, H, N, has_s0, has_dsT, &seed);
    const int64_t n = n_btn(&p), ns = n_state(&p), nu = H * N;
    const int64_t sizes[6] = {n, n, n, n, nu, ns};
    char tag[96];
    snprintf(tag, sizeof tag, "(B=%lld,T=%lld,H=%lld,N=%lld%s%s)", (long long)B, (long long)T,
             (long long)H, (long long)N, has_s0 ? ",s0" : "", has_dsT ? ",dsT" : "");

    /* forward vs the naive reference */
    double *y_ref = alloc_d(n), *sT_ref = alloc_d(ns);
    naive_forward(&p, y_ref, sT_ref);
    int rc = hr_cpu_wkv6_forward_f64(B, T, H, N, p.r, p.k, p.v, p.w, p.u, p.s0, p.y, p.sT);
    CHECK(rc == 0, "wkv6 forward f64 returned %d", rc);
    double ey = test_max_rel_diff(p.y, y_ref, n), es = test_max_rel_diff(p.sT, sT_ref, ns);
    CHECK(ey < REF_TOL && es < REF_TOL, "wkv6 forward vs naive %s: y %.2e sT %.2e", tag, ey, es);
    printf("ref wkv6 forward %s: y %.1e, sT %.1e\n", tag, ey, es);
    /* sT NULL must not change y */
    double *y2 = alloc_d(n);
    hr_cpu_wkv6_forward_f64(B, T, H, N, p.r, p.k, p.v, p.w, p.u, p.s0, y2, NULL);
    CHECK(memcmp(y2, p.y, (size_t)n * sizeof(double)) == 0, "wkv6 forward sT=NULL changes y %s", tag);
    free(y2);

    /* analytic gradients; ds0 only exists when there is an s0 */
    double *g[6];
    for (int i = 0; i < 6; i++) g[i] = (i == 5 && !has_s0) ? NULL : alloc_d(sizes[i]);
    backward_f64(&p, g);

    /* finite differences of every input. Thousands of small forward calls: one thread avoids
     * paying a parallel region per call (results do not depend on it, see the check below) */
    int keep_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    double *inputs[6] = {p.r, p.k, p.v, p.w, p.u, p.s0};
    for (int i = 0; i < 6; i++) {
        if (!g[i]) continue;
        double e = test_fd_error(loss_f64, &p, inputs[i], sizes[i], g[i], max_probe, FD_H);
        printf("fd wkv6 %s %s: %.1e\n", input_names[i], tag, e);
        CHECK(e < FD_TOL, "wkv6 fd %s %s: %.2e", input_names[i], tag, e);
        if (e > worst_fd[i]) worst_fd[i] = e;
    }
    omp_set_num_threads(keep_threads);
    loss_f64(&p); /* the probes left y, sT of a perturbed input behind: recompute them */

    /* backward adds into its outputs: a second call doubles them (du is re-summed over b) */
    double *g2[6];
    for (int i = 0; i < 6; i++) {
        g2[i] = g[i] ? alloc_d(sizes[i]) : NULL;
        if (g[i]) memcpy(g2[i], g[i], (size_t)sizes[i] * sizeof(double));
    }
    backward_f64(&p, g2);
    for (int i = 0; i < 6; i++) {
        if (!g[i]) continue;
        for (int64_t e = 0; e < sizes[i]; e++) g[i][e] *= 2;
        double d = test_max_rel_diff(g2[i], g[i], sizes[i]);
        CHECK(d < 1e-14, "wkv6 backward does not accumulate %s %s: %.2e", input_names[i], tag, d);
        for (int64_t e = 0; e < sizes[i]; e++) g[i][e] /= 2; /* exact: powers of two */
    }

    /* each gradient alone (the others NULL) equals the same gradient computed with all of them */
    for (int i = 0; i < 6; i++) {
        if (!g[i]) continue;
        double *one[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
        one[i] = alloc_d(sizes[i]);
        backward_f64(&p, one);
        CHECK(memcmp(one[i], g[i], (size_t)sizes[i] * sizeof(double)) == 0,
              "wkv6 backward with only %s differs %s", input_names[i], tag);
        free(one[i]);
    }

    /* float vs double */
    float *f[8];
    run_f32(&p, f);
    const double *dref[8] = {p.y, p.sT, g[0], g[1], g[2], g[3], g[4], g[5]};
    const int64_t fsizes[8] = {n, ns, n, n, n, n, nu, ns};
    const char *fnames[8] = {"y", "sT", "dr", "dk", "dv", "dw", "du", "ds0"};
    double worst32 = 0;
    for (int i = 0; i < 8; i++) {
        if (!dref[i]) continue;
        double d = test_max_rel_diff_f32(f[i], dref[i], fsizes[i]);
        CHECK(d < F32_TOL, "wkv6 f32 vs f64 %s %s: %.2e", fnames[i], tag, d);
        if (d > worst32) worst32 = d;
    }
    printf("f32 wkv6 %s: worst rel diff vs f64 %.1e\n", tag, worst32);

    /* bitwise identical with 1 and 3 threads */
    float *f1[8], *f3[8];
    omp_set_num_threads(1);
    run_f32(&p, f1);
    omp_set_num_threads(3);
    run_f32(&p, f3);
    omp_set_num_threads(keep_threads);
    for (int i = 0; i < 8; i++) {
        size_t bytes = (size_t)fsizes[i] * sizeof(float);
        CHECK(memcmp(f1[i], f3[i], bytes) == 0 && memcmp(f1[i], f[i], bytes) == 0,
              "wkv6 f32 %s depends on the thread count %s", fnames[i], tag);
        free(f[i]); free(f1[i]); free(f3[i]);
    }

    for (int i = 0; i < 6; i++) { free(g[i]); free(g2[i]); }
    free(y_ref); free(sT_ref);
    problem_free(&p);
}

/* Copies steps [t0, t0 + Tn) of a (B, T, H, N) array into a (B, Tn, H, N) one. */
static double *slice_time(const double *x, int64_t B, int64_t T, int64_t HN, int64_t t0, int64_t Tn) {
    double *out = alloc_d(B * Tn * HN);
    for (int64_t b = 0; b < B; b++)
        memcpy(out + b * Tn * HN, x + (b * T + t0) * HN, (size_t)(Tn * HN) * sizeof(double));
    return out;
}

/* Running T steps at once equals T1 steps then T - T1 steps with sT -> s0 carried, forward and
 * backward (the second half's ds0 becomes the first half's dsT). */
static void run_split(int64_t B, int64_t T, int64_t T1, int64_t H, int64_t N, uint64_t seed) {
    problem p;
    problem_init(&p, B, T, H, N, 1, 1, &seed);
    const int64_t n = n_btn(&p), ns = n_state(&p), nu = H * N, HN = H * N, T2 = T - T1;
    char tag[96];
    snprintf(tag, sizeof tag, "(B=%lld,T=%lld=%lld+%lld,H=%lld,N=%lld)", (long long)B, (long long)T,
             (long long)T1, (long long)T2, (long long)H, (long long)N);
    hr_cpu_wkv6_forward_f64(B, T, H, N, p.r, p.k, p.v, p.w, p.u, p.s0, p.y, p.sT);
    double *g[6] = {alloc_d(n), alloc_d(n), alloc_d(n), alloc_d(n), alloc_d(nu), alloc_d(ns)};
    backward_f64(&p, g);

    /* the two halves */
    double *x1[5], *x2[5], *src[5] = {p.r, p.k, p.v, p.w, p.dy};
    for (int i = 0; i < 5; i++) {
        x1[i] = slice_time(src[i], B, T, HN, 0, T1);
        x2[i] = slice_time(src[i], B, T, HN, T1, T2);
    }
    double *y1 = alloc_d(B * T1 * HN), *y2 = alloc_d(B * T2 * HN), *smid = alloc_d(ns), *sT = alloc_d(ns);
    hr_cpu_wkv6_forward_f64(B, T1, H, N, x1[0], x1[1], x1[2], x1[3], p.u, p.s0, y1, smid);
    hr_cpu_wkv6_forward_f64(B, T2, H, N, x2[0], x2[1], x2[2], x2[3], p.u, smid, y2, sT);
    double *y1ref = slice_time(p.y, B, T, HN, 0, T1), *y2ref = slice_time(p.y, B, T, HN, T1, T2);
    CHECK(memcmp(y1, y1ref, (size_t)(B * T1 * HN) * sizeof(double)) == 0 &&
          memcmp(y2, y2ref, (size_t)(B * T2 * HN) * sizeof(double)) == 0 &&
          memcmp(sT, p.sT, (size_t)ns * sizeof(double)) == 0, "wkv6 split forward differs %s", tag);

    /* backward: second half first, its ds0 is the gradient flowing into the carried state */
    double *h1[6], *h2[6];
    for (int i = 0; i < 4; i++) { h1[i] = alloc_d(B * T1 * HN); h2[i] = alloc_d(B * T2 * HN); }
    h1[4] = alloc_d(nu); h2[4] = alloc_d(nu); h1[5] = alloc_d(ns); h2[5] = alloc_d(ns);
    hr_cpu_wkv6_backward_f64(B, T2, H, N, x2[0], x2[1], x2[2], x2[3], p.u, smid, x2[4], p.dsT,
                             h2[0], h2[1], h2[2], h2[3], h2[4], h2[5]);
    hr_cpu_wkv6_backward_f64(B, T1, H, N, x1[0], x1[1], x1[2], x1[3], p.u, p.s0, x1[4], h2[5],
                             h1[0], h1[1], h1[2], h1[3], h1[4], h1[5]);
    double worst = 0;
    for (int i = 0; i < 4; i++) {
        double *a = slice_time(g[i], B, T, HN, 0, T1), *b = slice_time(g[i], B, T, HN, T1, T2);
        double d1 = test_max_rel_diff(h1[i], a, B * T1 * HN), d2 = test_max_rel_diff(h2[i], b, B * T2 * HN);
        worst = fmax(worst, fmax(d1, d2));
        free(a); free(b);
    }
    for (int64_t e = 0; e < nu; e++) h1[4][e] += h2[4][e]; /* du sums over time: add the halves */
    worst = fmax(worst, test_max_rel_diff(h1[4], g[4], nu));
    worst = fmax(worst, test_max_rel_diff(h1[5], g[5], ns));
    CHECK(worst < 1e-13, "wkv6 split backward differs %s: %.2e", tag, worst);
    printf("split wkv6 %s: forward bitwise, backward rel diff %.1e\n", tag, worst);

    for (int i = 0; i < 5; i++) { free(x1[i]); free(x2[i]); }
    for (int i = 0; i < 6; i++) { free(g[i]); free(h1[i]); free(h2[i]); }
    free(y1); free(y2); free(smid); free(sT); free(y1ref); free(y2ref);
    problem_free(&p);
}

/* T = 0: no steps, the final state is the initial one and its gradient passes straight through. */
static void run_empty(void) {
    const int64_t B = 2, H = 2, N = 4, ns = B * H * N * N;
    uint64_t seed = 99;
    double *s0 = alloc_d(ns), *sT = alloc_d(ns), *dsT = alloc_d(ns), *ds0 = alloc_d(ns);
    double u[8] = {0}, du[8] = {0}, dummy[1] = {0};
    test_fill(s0, ns, &seed, -1, 1);
    test_fill(dsT, ns, &seed, -1, 1);
    int rc = hr_cpu_wkv6_forward_f64(B, 0, H, N, dummy, dummy, dummy, dummy, u, s0, dummy, sT);
    rc |= hr_cpu_wkv6_backward_f64(B, 0, H, N, dummy, dummy, dummy, dummy, u, s0, dummy, dsT,
                                   NULL, NULL, NULL, NULL, du, ds0);
    CHECK(rc == 0 && memcmp(sT, s0, (size_t)ns * sizeof(double)) == 0 &&
          memcmp(ds0, dsT, (size_t)ns * sizeof(double)) == 0, "wkv6 T=0");
    free(s0); free(sT); free(dsT); free(ds0);
}

int main(void) {
    const char *q = getenv("HR_TEST_QUICK");
    int quick = q && q[0] && q[0] != '0';
    if (quick) {
        max_probe = 10;
        run_case(2, 1, 2, 8, 1, 1, 1);
        run_case(2, 37, 3, 8, 0, 1, 2);
        run_case(2, 19, 2, 5, 1, 0, 3);
        run_split(2, 37, 17, 2, 8, 4);
        run_empty();
        return test_summary("wkv6");
    }
    /*       B   T  H    N  s0 dsT seed  (the checkpoint chunk is 16 steps) */
    run_case(2,  1, 2,  32, 1, 1, 11);
    run_case(2,  7, 3,  32, 0, 0, 12);
    run_case(2, 37, 2,  32, 1, 0, 13);
    run_case(2, 70, 3,  32, 1, 1, 14);
    run_case(2, 32, 2,  32, 1, 1, 24); /* exactly two chunks */
    run_case(3, 19, 2,   5, 0, 1, 15); /* odd head size */
    run_case(2, 37, 2,  64, 0, 1, 16);
    run_case(2, 70, 2,  64, 1, 1, 17);
    run_case(2,  1, 2, 128, 0, 0, 18);
    run_case(2,  7, 2, 128, 1, 1, 19);
    run_case(2, 20, 2, 128, 1, 1, 20);
    run_split(2, 70, 33, 3, 32, 21);
    run_split(2, 37, 16, 2, 64, 22);
    run_split(1, 7, 1, 2, 128, 23);
    run_empty();
    for (int i = 0; i < 6; i++) printf("fd wkv6 %s worst over all shapes: %.1e\n", input_names[i], worst_fd[i]);
    return test_summary("wkv6");
}
