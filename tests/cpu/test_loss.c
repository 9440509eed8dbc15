/* Tests of the loss kernels (runtime/cpu/loss.inc): softmax cross-entropy with ignore_index.
 * Finite-difference gradients on the _f64 instantiation (spread probes plus every target logit), a
 * long-double reference for the loss, lse and gradient, _f32 vs _f64 agreement, additive gradients,
 * ignored and all-ignored rows, large logits, bitwise determinism with 1 vs 3 threads, and timings.
 * Everything but the determinism runs and the timings is single-threaded (thread start-up would
 * dominate the thousands of small FD calls). HR_TEST_QUICK=1 shrinks the largest shapes (valgrind). */
#include "cpu/kernels.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>
#include <time.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_PROBES 150
#define F32_TOL 1e-5 /* max |f32 - f64| / max |f64| for loss, lse and dlogits (inputs f32-representable) */

static int quick;
static int max_threads;

static double *dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static float *falloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static float *to_f32(const double *x, int64_t n) {
    float *y = falloc(n);
    test_fill_f32(y, x, n);
    return y;
}
static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static double fd_worst_all, fd_worst_target;

/* ---- reference (long double, written from the definition) --------------------------------------- */

/* Fills lse_ref (counted rows), dl_ref = dloss/count * (softmax - onehot); returns the mean loss. */
static long double ce_reference(int64_t n, int64_t V, const double *x, const int64_t *tg, int64_t ignore,
                                double dloss, long double *lse_ref, long double *dl_ref, int64_t *count) {
    long double total = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        if (tg[i] == ignore) continue;
        long double m = x[i * V];
        for (int64_t v = 1; v < V; v++) m = fmaxl(m, x[i * V + v]);
        long double s = 0;
        for (int64_t v = 0; v < V; v++) s += expl((long double)x[i * V + v] - m);
        lse_ref[i] = m + logl(s);
        total += lse_ref[i] - x[i * V + tg[i]];
        cnt++;
    }
    for (int64_t k = 0; k < n * V; k++) dl_ref[k] = 0;
    for (int64_t i = 0; i < n && cnt; i++) {
        if (tg[i] == ignore) continue;
        for (int64_t v = 0; v < V; v++)
            dl_ref[i * V + v] = (long double)dloss / cnt *
                                (expl((long double)x[i * V + v] - lse_ref[i]) - (v == tg[i] ? 1.0L : 0.0L));
    }
    *count = cnt;
    return cnt ? total / cnt : 0;
}

/* ---- one configuration --------------------------------------------------------------------------- */

typedef struct { int64_t n, V; double *x; const int64_t *tg; int64_t ignore; double dloss; double *lse; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    double loss;
    int64_t count;
    hr_cpu_cross_entropy_forward_f64(c->n, c->V, c->x, c->tg, c->ignore, &loss, c->lse, &count);
    return c->dloss * loss;
}

/* ignore_every: every k-th row (from row 1) is ignored, 0 for none, 1 for all.
 * large: logits are 1000 + U(-5, 5), and row 0 is one logit at +1000 and the rest at -1000. */
static void test_ce(int64_t n, int64_t V, int64_t ignore_index, int64_t ignore_every, int large, int fd,
                    uint64_t seed) {
    char shape[96];
    snprintf(shape, sizeof shape, "(n=%lld,V=%lld,ignore_every=%lld%s)", (long long)n, (long long)V,
             (long long)ignore_every, large ? ",large" : "");
    uint64_t s = seed;
    const int64_t nx = n * V;
    double *x = dalloc(nx), *lse = dalloc(n), *dl = dalloc(nx);
    int64_t *tg = malloc((size_t)n * sizeof *tg);
    test_fill(x, nx, &s, -5, 5);
    if (large) {
        for (int64_t k = 0; k < nx; k++) x[k] += 1000;
        for (int64_t v = 0; v < V; v++) x[v] = v == V / 2 ? 1000 : -1000;
    }
    if (fd && V >= 10000) {
        // With V ~ 50k and flat logits every probability is ~1e-5, so the gradient is so small that
        // the FD round-off (~1e-9) would dominate the normalised error. Peak the first probed logit
        // of each row at 16 (as in a trained LM, one token holds most of the mass) to give the
        // gradient a real scale.
        const int64_t step = nx > FD_PROBES ? nx / FD_PROBES : 1;
        for (int64_t k = 0, row = -1; k < nx; k += step)
            if (k / V != row) { row = k / V; x[k] = 16; }
    }
    for (int64_t k = 0; k < nx; k++) x[k] = (float)x[k]; // both precisions see the same inputs
    for (int64_t i = 0; i < n; i++) {
        tg[i] = (int64_t)(test_rand_u64(&s) % (uint64_t)V);
        if (ignore_every == 1 || (ignore_every > 1 && i % ignore_every == 1)) tg[i] = ignore_index;
    }
    const double dloss = 0.73;

    // Forward and backward vs the long-double reference.
    double loss = -1;
    int64_t count = -1, count_ref;
    CHECK(hr_cpu_cross_entropy_forward_f64(n, V, x, tg, ignore_index, &loss, lse, &count) == 0, "ce rc");
    hr_cpu_cross_entropy_backward_f64(n, V, x, tg, ignore_index, lse, count, dloss, dl);
    long double *lse_ref = calloc((size_t)n, sizeof(long double)), *dl_ref = calloc((size_t)nx, sizeof(long double));
    long double loss_ref = ce_reference(n, V, x, tg, ignore_index, dloss, lse_ref, dl_ref, &count_ref);
    CHECK(count == count_ref, "ce count %s: %lld vs %lld", shape, (long long)count, (long long)count_ref);
    CHECK(isfinite(loss) && fabsl(loss - loss_ref) <= 1e-12L * fmaxl(fabsl(loss_ref), 1e-300L),
          "ce loss vs reference %s: %.17g vs %.17Lg", shape, loss, loss_ref);
    double worst_lse = 0, worst_dl = 0, scale_dl = 1e-300;
    int finite = 1, ignored_zero = 1;
    for (int64_t i = 0; i < n; i++) {
        if (tg[i] != ignore_index) worst_lse = fmax(worst_lse, (double)(fabsl(lse[i] - lse_ref[i]) / fabsl(lse_ref[i]) ));
        for (int64_t v = 0; v < V; v++) {
            const int64_t k = i * V + v;
            finite &= isfinite(dl[k]) != 0;
            worst_dl = fmax(worst_dl, (double)fabsl(dl[k] - dl_ref[k]));
            scale_dl = fmax(scale_dl, (double)fabsl(dl_ref[k]));
            if (tg[i] == ignore_index) ignored_zero &= dl[k] == 0;
        }
    }
    CHECK(worst_lse < 1e-12, "ce lse vs reference %s: %.2e", shape, worst_lse);
    CHECK(finite && worst_dl / scale_dl < 1e-12, "ce dlogits vs reference %s: %.2e", shape, worst_dl / scale_dl);
    CHECK(ignored_zero, "ce ignored rows get no gradient %s", shape);

    if (count == 0) {
        CHECK(loss == 0, "ce all ignored: loss %g", loss);
        double *base = dalloc(nx);
        test_fill(base, nx, &s, -1, 1);
        double *acc = malloc((size_t)nx * sizeof(double));
        memcpy(acc, base, (size_t)nx * sizeof(double));
        hr_cpu_cross_entropy_backward_f64(n, V, x, tg, ignore_index, lse, count, dloss, acc);
        CHECK(memcmp(acc, base, (size_t)nx * sizeof(double)) == 0, "ce all ignored: backward adds nothing");
        free(base); free(acc);
    }

    // Finite differences: spread probes over all logits, then every counted row's target logit.
    if (fd && count > 0) {
        ce_ctx ctx = {n, V, x, tg, ignore_index, dloss, dalloc(n)};
        double e_all = test_fd_error(ce_loss, &ctx, x, nx, dl, FD_PROBES, FD_H), e_tg = 0;
        for (int64_t i = 0; i < n; i++)
            if (tg[i] != ignore_index)
                e_tg = fmax(e_tg, test_fd_error(ce_loss, &ctx, x + i * V + tg[i], 1, dl + i * V + tg[i], 1, FD_H));
        printf("fd cross_entropy dlogits %s: %.1e (target logits: %.1e)\n", shape, e_all, e_tg);
        CHECK(e_all < FD_TOL && e_tg < FD_TOL, "fd cross_entropy %s: %.2e %.2e", shape, e_all, e_tg);
        fd_worst_all = fmax(fd_worst_all, e_all);
        fd_worst_target = fmax(fd_worst_target, e_tg);
        free(ctx.lse);
    }

    // Adds into dlogits.
    {
        double *base = dalloc(nx), *acc = dalloc(nx);
        test_fill(base, nx, &s, -1, 1);
        memcpy(acc, base, (size_t)nx * sizeof(double));
        hr_cpu_cross_entropy_backward_f64(n, V, x, tg, ignore_index, lse, count, dloss, acc);
        double worst = 0;
        for (int64_t k = 0; k < nx; k++) worst = fmax(worst, fabs((acc[k] - base[k]) - dl[k]));
        CHECK(worst < 1e-15, "ce backward adds %s: %.2e", shape, worst);
        free(base); free(acc);
    }

    // f32 vs f64, and bitwise identical with 1 and 3 threads.
    float *xf = to_f32(x, nx), lossf[2], *lsef[2], *dlf[2];
    int64_t countf[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        lsef[r] = falloc(n);
        dlf[r] = falloc(nx);
        CHECK(hr_cpu_cross_entropy_forward_f32(n, V, xf, tg, ignore_index, &lossf[r], lsef[r], &countf[r]) == 0,
              "ce f32 rc");
        hr_cpu_cross_entropy_backward_f32(n, V, xf, tg, ignore_index, lsef[r], countf[r], (float)dloss, dlf[r]);
    }
    omp_set_num_threads(1);
    CHECK(memcmp(&lossf[0], &lossf[1], sizeof(float)) == 0 && countf[0] == countf[1] &&
          memcmp(lsef[0], lsef[1], (size_t)n * sizeof(float)) == 0 &&
          memcmp(dlf[0], dlf[1], (size_t)nx * sizeof(float)) == 0, "ce determinism %s", shape);
    double e32 = fmax(fabs(lossf[0] - loss) / fmax(fabs(loss), 1e-30),
                      fmax(test_max_rel_diff_f32(lsef[0], lse, n), test_max_rel_diff_f32(dlf[0], dl, nx)));
    CHECK(countf[0] == count && isfinite(lossf[0]) && e32 < F32_TOL,
          "ce f32 vs f64 %s: %.2e", shape, e32);
    printf("f32 vs f64 cross_entropy %s: %.1e\n", shape, e32);

    free(x); free(lse); free(dl); free(tg); free(lse_ref); free(dl_ref); free(xf);
    for (int r = 0; r < 2; r++) { free(lsef[r]); free(dlf[r]); }
}

/* f32 forward + backward timing with the default thread count, best of 3 (informational). */
static void time_ce(int64_t n, int64_t V) {
    omp_set_num_threads(max_threads);
    uint64_t s = 7;
    double *tmp = dalloc(n * V);
    test_fill(tmp, n * V, &s, -5, 5);
    float *x = to_f32(tmp, n * V), *lse = falloc(n), *dl = falloc(n * V), loss;
    int64_t *tg = malloc((size_t)n * sizeof *tg), count;
    for (int64_t i = 0; i < n; i++) tg[i] = (int64_t)(test_rand_u64(&s) % (uint64_t)V);
    double best_f = 1e30, best_b = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_ms();
        hr_cpu_cross_entropy_forward_f32(n, V, x, tg, -100, &loss, lse, &count);
        double t1 = now_ms();
        hr_cpu_cross_entropy_backward_f32(n, V, x, tg, -100, lse, count, 1.0f, dl);
        double t2 = now_ms();
        best_f = fmin(best_f, t1 - t0);
        best_b = fmin(best_b, t2 - t1);
    }
    CHECK(isfinite(loss) && count == n, "ce timing run");
    printf("time cross_entropy f32 (n=%lld,V=%lld, %d threads): forward %.2f ms, backward %.2f ms\n",
           (long long)n, (long long)V, max_threads, best_f, best_b);
    omp_set_num_threads(1);
    free(tmp); free(x); free(lse); free(dl); free(tg);
}

int main(void) {
    quick = getenv("HR_TEST_QUICK") != NULL;
    max_threads = omp_get_max_threads();
    omp_set_num_threads(1);

    test_ce(1, 1, -100, 0, 0, 0, 1);          // V = 1: loss 0, gradient 0
    test_ce(1, 7, -100, 0, 0, 1, 2);          // a single row
    test_ce(5, 3, -100, 2, 0, 1, 3);
    test_ce(37, 256, -100, 4, 0, 1, 4);       // ignore_index rows
    test_ce(7, 1000, -1, 0, 0, 1, 5);
    test_ce(6, 10, -100, 1, 0, 0, 6);         // all rows ignored
    test_ce(16, 256, -100, 3, 1, 0, 7);       // logits ~1000 and a +-1000 row stay finite
    test_ce(quick ? 2 : 3, 50257, -100, 0, 0, 1, 8);
    test_ce(quick ? 64 : 64 * 64, 256, -100, 5, 0, 0, 9);
    if (!quick) test_ce(64, 50257, -100, 7, 1, 0, 10);

    printf("worst fd error: cross_entropy dlogits %.1e (spread probes), %.1e (target logits)\n",
           fd_worst_all, fd_worst_target);
    if (!quick) {
        time_ce(64 * 64, 256);
        time_ce(64, 50257);
        time_ce(1024, 50257);
    }
    return test_summary("loss");
}
