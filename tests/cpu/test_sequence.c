/* Tests of the sequence kernels (runtime/cpu/sequence.inc): embedding, token shift, causal conv1d.
 * For each routine: finite-difference gradients of every input on the _f64 instantiation, a naive
 * reference forward, _f32 vs _f64 agreement, additive gradients, and bitwise determinism with 1 vs 3
 * threads. Everything but the determinism runs and the timing is single-threaded: the FD loops call
 * the kernels thousands of times on small shapes, where thread start-up would dominate (and the
 * determinism check proves the threaded result is the same bits). HR_TEST_QUICK=1 shrinks the
 * largest shapes (for valgrind runs). */
#include "cpu/kernels.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>
#include <time.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_PROBES 150
#define F32_TOL 1e-5 /* max |f32 - f64| / max |f64| over a whole output or gradient */

static int quick;       /* HR_TEST_QUICK: smaller shapes */
static int max_threads; /* the default OpenMP thread count, used for the timing only */

/* ---- small helpers ------------------------------------------------------------------------------ */

static double *dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static float *falloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static float *to_f32(const double *x, int64_t n) {
    if (!x) return NULL;
    float *y = falloc(n);
    test_fill_f32(y, x, n);
    return y;
}
static double *dcopy(const double *x, int64_t n) {
    double *y = dalloc(n);
    memcpy(y, x, (size_t)n * sizeof(double));
    return y;
}
static double dot(const double *a, const double *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static int same_f32(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}
/* Checks that a backward ADDS: grad_from_base - base must equal grad_from_zero. */
static double additive_error(const double *from_base, const double *base, const double *from_zero, int64_t n) {
    double worst = 0, scale = 1e-300;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((from_base[i] - base[i]) - from_zero[i]);
        if (d > worst) worst = d;
        if (fabs(from_base[i]) > scale) scale = fabs(from_base[i]);
    }
    return worst / scale;
}

/* Worst FD error per (routine, input) over all shapes, printed at the end. */
static struct { char name[48]; double worst; } fd_table[32];
static int fd_count;
static void fd_report(const char *name, const char *shape, double err) {
    printf("fd %s %s: %.1e\n", name, shape, err);
    CHECK(err < FD_TOL, "fd %s %s: %.3e", name, shape, err);
    int k = 0;
    while (k < fd_count && strcmp(fd_table[k].name, name) != 0) k++;
    if (k == fd_count) { snprintf(fd_table[fd_count].name, sizeof fd_table[0].name, "%s", name); fd_count++; }
    if (err > fd_table[k].worst) fd_table[k].worst = err;
}

/* ---- embedding ---------------------------------------------------------------------------------- */

typedef struct { int64_t n, C; const int64_t *ids; double *W; const double *cot; double *out; } emb_ctx;
static double emb_loss(void *p) {
    emb_ctx *c = p;
    hr_cpu_embedding_forward_f64(c->n, c->C, c->ids, c->W, c->out);
    return dot(c->out, c->cot, c->n * c->C);
}

static void test_embedding(int64_t n, int64_t V, int64_t C, uint64_t seed) {
    char shape[96];
    snprintf(shape, sizeof shape, "(n=%lld,V=%lld,C=%lld)", (long long)n, (long long)V, (long long)C);
    uint64_t s = seed;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    for (int64_t i = 0; i < n; i++) ids[i] = (int64_t)(test_rand_u64(&s) % (uint64_t)V);
    if (n > 2) ids[n / 2] = ids[n - 1] = ids[0]; // repeated ids for sure
    double *W = dalloc(V * C), *cot = dalloc(n * C), *out = dalloc(n * C), *dW = dalloc(V * C);
    double *ref = dalloc(V * C);
    test_fill(W, V * C, &s, -1, 1);
    test_fill(cot, n * C, &s, -1, 1);

    // Forward is a gather: exact.
    hr_cpu_embedding_forward_f64(n, C, ids, W, out);
    int ok = 1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) ok &= out[i * C + c] == W[ids[i] * C + c];
    CHECK(ok, "embedding forward %s", shape);

    // Backward vs a serial scatter: bitwise, both sum repeated ids in increasing i.
    CHECK(hr_cpu_embedding_backward_f64(n, V, C, ids, cot, dW) == 0, "embedding backward rc");
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) ref[ids[i] * C + c] += cot[i * C + c];
    CHECK(memcmp(dW, ref, (size_t)(V * C) * sizeof(double)) == 0, "embedding backward vs serial %s", shape);

    emb_ctx ctx = {n, C, ids, W, cot, out};
    fd_report("embedding dW", shape, test_fd_error(emb_loss, &ctx, W, V * C, dW, FD_PROBES, FD_H));

    // Gradients add into the buffer.
    double *base = dalloc(V * C), *acc = NULL;
    test_fill(base, V * C, &s, -1, 1);
    acc = dcopy(base, V * C);
    hr_cpu_embedding_backward_f64(n, V, C, ids, cot, acc);
    CHECK(additive_error(acc, base, dW, V * C) < 1e-14, "embedding backward adds %s", shape);
    CHECK(hr_cpu_embedding_backward_f64(n, V, C, ids, cot, NULL) == 0, "embedding NULL dW");

    // f32 vs f64, and bitwise identical with 1 and 3 threads.
    float *Wf = to_f32(W, V * C), *cotf = to_f32(cot, n * C), *outf[2], *dWf[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        outf[r] = falloc(n * C);
        dWf[r] = falloc(V * C);
        hr_cpu_embedding_forward_f32(n, C, ids, Wf, outf[r]);
        hr_cpu_embedding_backward_f32(n, V, C, ids, cotf, dWf[r]);
    }
    omp_set_num_threads(1);
    CHECK(same_f32(outf[0], outf[1], n * C) && same_f32(dWf[0], dWf[1], V * C),
          "embedding determinism %s", shape);
    double e32 = fmax(test_max_rel_diff_f32(outf[0], out, n * C), test_max_rel_diff_f32(dWf[0], dW, V * C));
    CHECK(e32 < F32_TOL, "embedding f32 vs f64 %s: %.2e", shape, e32);

    free(ids); free(W); free(cot); free(out); free(dW); free(ref); free(base); free(acc);
    free(Wf); free(cotf);
    for (int r = 0; r < 2; r++) { free(outf[r]); free(dWf[r]); }
}

/* ---- token shift -------------------------------------------------------------------------------- */

typedef struct { int64_t B, T, C; double *x, *state; const double *cot; double *out; } shift_ctx;
static double shift_loss(void *p) {
    shift_ctx *c = p;
    hr_cpu_token_shift_forward_f64(c->B, c->T, c->C, c->x, c->state, c->out);
    return dot(c->out, c->cot, c->B * c->T * c->C);
}

static void test_token_shift(int64_t B, int64_t T, int64_t C, int has_state, uint64_t seed) {
    char shape[96];
    snprintf(shape, sizeof shape, "(B=%lld,T=%lld,C=%lld,state=%d)", (long long)B, (long long)T,
             (long long)C, has_state);
    uint64_t s = seed;
    const int64_t nx = B * T * C, ns = B * C;
    double *x = dalloc(nx), *state = has_state ? dalloc(ns) : NULL, *cot = dalloc(nx), *out = dalloc(nx);
    double *dx = dalloc(nx), *dstate = dalloc(ns);
    test_fill(x, nx, &s, -1, 1);
    if (state) test_fill(state, ns, &s, -1, 1);
    test_fill(cot, nx, &s, -1, 1);

    // Forward vs the definition: exact.
    hr_cpu_token_shift_forward_f64(B, T, C, x, state, out);
    int ok = 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                double want = t > 0 ? x[(b * T + t - 1) * C + c] : state ? state[b * C + c] : 0.0;
                ok &= out[(b * T + t) * C + c] == want;
            }
    CHECK(ok, "token_shift forward %s", shape);

    hr_cpu_token_shift_backward_f64(B, T, C, cot, dx, dstate);
    shift_ctx ctx = {B, T, C, x, state, cot, out};
    fd_report("token_shift dx", shape, test_fd_error(shift_loss, &ctx, x, nx, dx, FD_PROBES, FD_H));
    if (state)
        fd_report("token_shift dstate", shape,
                  test_fd_error(shift_loss, &ctx, state, ns, dstate, FD_PROBES, FD_H));

    // Adds; NULL gradients are skipped.
    double *bx = dalloc(nx), *bs = dalloc(ns);
    test_fill(bx, nx, &s, -1, 1);
    test_fill(bs, ns, &s, -1, 1);
    double *ax = dcopy(bx, nx), *as = dcopy(bs, ns);
    hr_cpu_token_shift_backward_f64(B, T, C, cot, ax, NULL);
    hr_cpu_token_shift_backward_f64(B, T, C, cot, NULL, as);
    CHECK(additive_error(ax, bx, dx, nx) < 1e-14 && additive_error(as, bs, dstate, ns) < 1e-14,
          "token_shift backward adds %s", shape);

    // f32 vs f64 and determinism.
    float *xf = to_f32(x, nx), *sf = to_f32(state, ns), *cotf = to_f32(cot, nx);
    float *outf[2], *dxf[2], *dsf[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        outf[r] = falloc(nx); dxf[r] = falloc(nx); dsf[r] = falloc(ns);
        hr_cpu_token_shift_forward_f32(B, T, C, xf, sf, outf[r]);
        hr_cpu_token_shift_backward_f32(B, T, C, cotf, dxf[r], dsf[r]);
    }
    omp_set_num_threads(1);
    CHECK(same_f32(outf[0], outf[1], nx) && same_f32(dxf[0], dxf[1], nx) && same_f32(dsf[0], dsf[1], ns),
          "token_shift determinism %s", shape);
    double e32 = fmax(test_max_rel_diff_f32(outf[0], out, nx),
                      fmax(test_max_rel_diff_f32(dxf[0], dx, nx), test_max_rel_diff_f32(dsf[0], dstate, ns)));
    CHECK(e32 < F32_TOL, "token_shift f32 vs f64 %s: %.2e", shape, e32);

    free(x); free(state); free(cot); free(out); free(dx); free(dstate); free(bx); free(bs); free(ax); free(as);
    free(xf); free(sf); free(cotf);
    for (int r = 0; r < 2; r++) { free(outf[r]); free(dxf[r]); free(dsf[r]); }
}

/* ---- causal conv1d ------------------------------------------------------------------------------ */

/* Reference straight from PyTorch's Conv1d(C, C, W, groups=C, padding=W-1) output cut to T steps:
 * per (b, c), the input is padded with W-1 values on each side (the carried state, or zeros, on the
 * left) and y[t] = bias[c] + sum_j w[c, j] * xpad[t + j] (cross-correlation). */
static void conv_reference(int64_t B, int64_t T, int64_t C, int64_t W, const double *x, const double *w,
                           const double *bias, const double *state, double *out) {
    const int64_t L = T + 2 * (W - 1);
    double *xpad = dalloc(L);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            for (int64_t p = 0; p < L; p++) xpad[p] = 0;
            for (int64_t p = 0; p < W - 1; p++) xpad[p] = state ? state[(b * (W - 1) + p) * C + c] : 0.0;
            for (int64_t t = 0; t < T; t++) xpad[W - 1 + t] = x[(b * T + t) * C + c];
            for (int64_t t = 0; t < T; t++) { // the full output has T + W - 1 steps; keep the first T
                double y = bias ? bias[c] : 0.0;
                for (int64_t j = 0; j < W; j++) y += w[c * W + j] * xpad[t + j];
                out[(b * T + t) * C + c] = y;
            }
        }
    free(xpad);
}

typedef struct { int64_t B, T, C, W; double *x, *w, *bias, *state; const double *cot; double *out; } conv_ctx;
static double conv_loss(void *p) {
    conv_ctx *c = p;
    hr_cpu_conv1d_causal_forward_f64(c->B, c->T, c->C, c->W, c->x, c->w, c->bias, c->state, c->out);
    return dot(c->out, c->cot, c->B * c->T * c->C);
}

static void test_conv(int64_t B, int64_t T, int64_t C, int64_t W, int has_bias, int has_state, uint64_t seed) {
    char shape[128];
    snprintf(shape, sizeof shape, "(B=%lld,T=%lld,C=%lld,W=%lld,bias=%d,state=%d)", (long long)B,
             (long long)T, (long long)C, (long long)W, has_bias, has_state);
    uint64_t s = seed;
    const int64_t nx = B * T * C, nw = C * W, ns = B * (W - 1) * C;
    double *x = dalloc(nx), *w = dalloc(nw), *bias = has_bias ? dalloc(C) : NULL;
    double *state = has_state ? dalloc(ns) : NULL, *cot = dalloc(nx), *out = dalloc(nx), *ref = dalloc(nx);
    test_fill(x, nx, &s, -1, 1);
    test_fill(w, nw, &s, -1, 1);
    if (bias) test_fill(bias, C, &s, -1, 1);
    if (state) test_fill(state, ns, &s, -1, 1);
    test_fill(cot, nx, &s, -1, 1);

    hr_cpu_conv1d_causal_forward_f64(B, T, C, W, x, w, bias, state, out);
    conv_reference(B, T, C, W, x, w, bias, state, ref);
    double eref = test_max_rel_diff(out, ref, nx);
    CHECK(eref < 1e-14, "conv forward vs reference %s: %.2e", shape, eref);

    double *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc(C), *ds = dalloc(ns);
    CHECK(hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, state, cot, dx, dw, has_bias ? db : NULL,
                                            ds) == 0, "conv backward rc");
    conv_ctx ctx = {B, T, C, W, x, w, bias, state, cot, out};
    fd_report("conv1d dx", shape, test_fd_error(conv_loss, &ctx, x, nx, dx, FD_PROBES, FD_H));
    fd_report("conv1d dw", shape, test_fd_error(conv_loss, &ctx, w, nw, dw, FD_PROBES, FD_H));
    if (bias) fd_report("conv1d dbias", shape, test_fd_error(conv_loss, &ctx, bias, C, db, FD_PROBES, FD_H));
    if (state) {
        fd_report("conv1d dstate", shape, test_fd_error(conv_loss, &ctx, state, ns, ds, FD_PROBES, FD_H));
    } else {
        // Without a state the history is zero; its gradient is still defined and must match the one
        // computed with an explicit all-zero state.
        double *zero = dalloc(ns), *ds0 = dalloc(ns);
        hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, zero, cot, NULL, NULL, NULL, ds0);
        CHECK(memcmp(ds, ds0, (size_t)ns * sizeof(double)) == 0, "conv dstate with NULL state %s", shape);
        free(zero); free(ds0);
    }

    // Adds (each gradient alone, the others NULL).
    {
        double *bx = dalloc(nx), *bw = dalloc(nw), *bb = dalloc(C), *bs = dalloc(ns);
        test_fill(bx, nx, &s, -1, 1); test_fill(bw, nw, &s, -1, 1);
        test_fill(bb, C, &s, -1, 1); test_fill(bs, ns, &s, -1, 1);
        double *ax = dcopy(bx, nx), *aw = dcopy(bw, nw), *ab = dcopy(bb, C), *as = dcopy(bs, ns);
        hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, state, cot, ax, NULL, NULL, NULL);
        hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, state, cot, NULL, aw, NULL, NULL);
        hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, state, cot, NULL, NULL, ab, NULL);
        hr_cpu_conv1d_causal_backward_f64(B, T, C, W, x, w, state, cot, NULL, NULL, NULL, as);
        double ea = fmax(fmax(additive_error(ax, bx, dx, nx), additive_error(aw, bw, dw, nw)),
                         additive_error(as, bs, ds, ns));
        if (has_bias) ea = fmax(ea, additive_error(ab, bb, db, C));
        CHECK(ea < 1e-13, "conv backward adds %s: %.2e", shape, ea);
        free(bx); free(bw); free(bb); free(bs); free(ax); free(aw); free(ab); free(as);
    }

    // f32 vs f64 and determinism.
    float *xf = to_f32(x, nx), *wf = to_f32(w, nw), *bf = to_f32(bias, C), *sf = to_f32(state, ns);
    float *cotf = to_f32(cot, nx), *outf[2], *dxf[2], *dwf[2], *dbf[2], *dsf[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        outf[r] = falloc(nx); dxf[r] = falloc(nx); dwf[r] = falloc(nw); dbf[r] = falloc(C); dsf[r] = falloc(ns);
        hr_cpu_conv1d_causal_forward_f32(B, T, C, W, xf, wf, bf, sf, outf[r]);
        CHECK(hr_cpu_conv1d_causal_backward_f32(B, T, C, W, xf, wf, sf, cotf, dxf[r], dwf[r], dbf[r],
                                                dsf[r]) == 0, "conv backward f32 rc");
    }
    omp_set_num_threads(1);
    CHECK(same_f32(outf[0], outf[1], nx) && same_f32(dxf[0], dxf[1], nx) && same_f32(dwf[0], dwf[1], nw) &&
          same_f32(dbf[0], dbf[1], C) && same_f32(dsf[0], dsf[1], ns), "conv determinism %s", shape);
    double e32 = fmax(fmax(test_max_rel_diff_f32(outf[0], out, nx), test_max_rel_diff_f32(dxf[0], dx, nx)),
                      fmax(test_max_rel_diff_f32(dwf[0], dw, nw), test_max_rel_diff_f32(dsf[0], ds, ns)));
    if (has_bias) e32 = fmax(e32, test_max_rel_diff_f32(dbf[0], db, C));
    CHECK(e32 < F32_TOL, "conv f32 vs f64 %s: %.2e", shape, e32);

    free(x); free(w); free(bias); free(state); free(cot); free(out); free(ref);
    free(dx); free(dw); free(db); free(ds); free(xf); free(wf); free(bf); free(sf); free(cotf);
    for (int r = 0; r < 2; r++) { free(outf[r]); free(dxf[r]); free(dwf[r]); free(dbf[r]); free(dsf[r]); }
}

/* Rough f32 throughput of the conv at a training-like size (informational only). */
static void time_conv(void) {
    omp_set_num_threads(max_threads);
    const int64_t B = 8, T = 512, C = 1280, W = 4, nx = B * T * C, ns = B * (W - 1) * C;
    uint64_t s = 99;
    double *tmp = dalloc(nx);
    test_fill(tmp, nx, &s, -1, 1);
    float *x = to_f32(tmp, nx), *g = to_f32(tmp, nx), *w = to_f32(tmp, C * W), *b = to_f32(tmp, C);
    float *out = falloc(nx), *dx = falloc(nx), *dw = falloc(C * W), *db = falloc(C), *ds = falloc(ns);
    double best_f = 1e30, best_b = 1e30; // best of 3, the first run also pays the page faults
    for (int rep = 0; rep < 3; rep++) {
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        hr_cpu_conv1d_causal_forward_f32(B, T, C, W, x, w, b, NULL, out);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK(hr_cpu_conv1d_causal_backward_f32(B, T, C, W, x, w, NULL, g, dx, dw, db, ds) == 0, "conv rc");
        clock_gettime(CLOCK_MONOTONIC, &t2);
        best_f = fmin(best_f, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6);
        best_b = fmin(best_b, (t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) * 1e-6);
    }
    printf("time conv1d f32 (B=%lld,T=%lld,C=%lld,W=%lld, %d threads): forward %.2f ms, backward %.2f ms\n",
           (long long)B, (long long)T, (long long)C, (long long)W, max_threads, best_f, best_b);
    free(tmp); free(x); free(g); free(w); free(b); free(out); free(dx); free(dw); free(db); free(ds);
}

int main(void) {
    quick = getenv("HR_TEST_QUICK") != NULL;
    max_threads = omp_get_max_threads();
    omp_set_num_threads(1);

    test_embedding(1, 5, 3, 1);
    test_embedding(37, 11, 70, 2);                 // n > V: many repeats, C not a multiple of the block
    test_embedding(quick ? 64 : 300, 7, 129, 3);

    for (int st = 0; st <= 1; st++) {
        test_token_shift(1, 1, 4, st, 10 + st);
        test_token_shift(2, 37, 5, st, 12 + st);
        test_token_shift(3, 16, 130, st, 14 + st);
    }

    uint64_t seed = 100;
    for (int64_t W = 2; W <= 4; W++)
        for (int combo = 0; combo < 4; combo++) {
            const int has_bias = combo & 1, has_state = combo >> 1;
            test_conv(1, 1, 3, W, has_bias, has_state, seed++);     // T = 1 < W - 1: only history
            test_conv(2, 37, 5, W, has_bias, has_state, seed++);
            test_conv(quick ? 1 : 3, 260, 67, W, has_bias, has_state, seed++); // crosses blocks
        }
    test_conv(2, 2, 300, 4, 1, 1, seed++); // T < W - 1 with several channel blocks
    test_conv(quick ? 1 : 2, 260, 259, 4, 1, 1, seed++); // several time chunks and channel blocks
    test_conv(1, 300, 257, 3, 0, 0, seed++);

    printf("worst fd error per routine and input:\n");
    for (int k = 0; k < fd_count; k++) printf("  %-20s %.1e\n", fd_table[k].name, fd_table[k].worst);
    if (!quick) time_conv();
    return test_summary("sequence");
}
