/* Tests for the Mamba-2 SSD kernels (cpu/ssd.inc): finite-difference gradients on the f64 kernel,
 * f32 against f64, an independent quadratic ("attention") form of the forward, state carrying
 * across a split sequence (forward and backward), add-into semantics and thread-count determinism.
 * HR_TEST_QUICK=1 in the environment runs a reduced set (for valgrind). */
#include "cpu/kernels.h"
#include "test_util.h"
#include <omp.h>
#include <string.h>

#define F32_TOL 1e-4     /* f32 vs f64: max abs diff / max abs of the f64 result */
#define NAIVE_TOL 1e-10  /* kernel vs the quadratic form, both f64 */
#define FD_TOL 1e-6

typedef struct {
    int64_t B, T, H, P, G, N;
    int use_D, use_h0, use_dhT;
    double dt_lo, dt_hi;
    int64_t fd_probes;   /* 0: no finite differences for this case */
} ssd_case;

/* One problem in double: inputs, cotangents, and the kernel's results. */
typedef struct {
    ssd_case c;
    int64_t nx, ndt, nbc, ns;              /* sizes of (B,T,H,P), (B,T,H), (B,T,G,N), (B,H,P,N) */
    double *x, *dt, *A, *Bm, *Cm, *D, *h0; /* inputs; D, h0 NULL when unused */
    double *dy, *dhT;                      /* cotangents; dhT NULL when unused */
    double *y, *hT;                        /* forward outputs */
    double *g[7];                          /* gradients: x, dt, A, Bm, Cm, D, h0 (NULL when unused) */
} ssd_data;

enum { GX, GDT, GA, GB, GC, GD, GH0, NGRAD };
static const char *grad_name[NGRAD] = {"dx", "ddt", "dA", "dBm", "dCm", "dD", "dh0"};

static double *alloc_d(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

static int64_t grad_size(const ssd_data *d, int i) {
    const int64_t sizes[NGRAD] = {d->nx, d->ndt, d->c.H, d->nbc, d->nbc, d->c.H, d->ns};
    return sizes[i];
}
static double *input_ptr(const ssd_data *d, int i) {
    double *ptrs[NGRAD] = {d->x, d->dt, d->A, d->Bm, d->Cm, d->D, d->h0};
    return ptrs[i];
}

static void data_init(ssd_data *d, ssd_case c, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->c = c;
    d->nx = c.B * c.T * c.H * c.P; d->ndt = c.B * c.T * c.H;
    d->nbc = c.B * c.T * c.G * c.N; d->ns = c.B * c.H * c.P * c.N;
    d->x = alloc_d(d->nx); d->dt = alloc_d(d->ndt); d->A = alloc_d(c.H);
    d->Bm = alloc_d(d->nbc); d->Cm = alloc_d(d->nbc); d->dy = alloc_d(d->nx);
    d->y = alloc_d(d->nx); d->hT = alloc_d(d->ns);
    test_fill(d->x, d->nx, &seed, -1, 1);
    test_fill(d->dt, d->ndt, &seed, c.dt_lo, c.dt_hi);
    test_fill(d->A, c.H, &seed, -16, -1);
    test_fill(d->Bm, d->nbc, &seed, -1, 1);
    test_fill(d->Cm, d->nbc, &seed, -1, 1);
    test_fill(d->dy, d->nx, &seed, -1, 1);
    if (c.use_D) { d->D = alloc_d(c.H); test_fill(d->D, c.H, &seed, 0.5, 1.5); }
    if (c.use_h0) { d->h0 = alloc_d(d->ns); test_fill(d->h0, d->ns, &seed, -1, 1); }
    if (c.use_dhT) { d->dhT = alloc_d(d->ns); test_fill(d->dhT, d->ns, &seed, -1, 1); }
    for (int i = 0; i < NGRAD; i++) d->g[i] = input_ptr(d, i) ? alloc_d(grad_size(d, i)) : NULL;
}

static void data_free(ssd_data *d) {
    double *all[] = {d->x, d->dt, d->A, d->Bm, d->Cm, d->D, d->h0, d->dy, d->dhT, d->y, d->hT};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    for (int i = 0; i < NGRAD; i++) free(d->g[i]);
}

/* want_hT = 0 passes hT = NULL (the final state not wanted). */
static void run_forward(ssd_data *d, int want_hT) {
    const ssd_case c = d->c;
    int rc = hr_cpu_ssd_forward_f64(c.B, c.T, c.H, c.P, c.G, c.N, d->x, d->dt, d->A, d->Bm, d->Cm,
                                    d->D, d->h0, d->y, want_hT ? d->hT : NULL);
    CHECK(rc == 0, "ssd_forward_f64 returned %d", rc);
}

/* Adds the gradients of L = sum(y * dy) + sum(hT * dhT) into g (g[i] NULL: not requested). */
static void run_backward(const ssd_data *d, double **g) {
    const ssd_case c = d->c;
    int rc = hr_cpu_ssd_backward_f64(c.B, c.T, c.H, c.P, c.G, c.N, d->x, d->dt, d->A, d->Bm, d->Cm,
                                     d->D, d->h0, d->dy, d->dhT, g[GX], g[GDT], g[GA], g[GB], g[GC],
                                     g[GD], g[GH0]);
    CHECK(rc == 0, "ssd_backward_f64 returned %d", rc);
}

static double loss_fn(void *ctx) {
    ssd_data *d = ctx;
    run_forward(d, d->dhT != NULL);
    /* compensated (Neumaier) sums: rounding in a plain sum is most of the noise of a central
     * difference at h = 1e-6 on these sizes */
    double L = 0, comp = 0;
    for (int part = 0; part < 2; part++) {
        const double *out = part ? d->hT : d->y, *cot = part ? d->dhT : d->dy;
        const int64_t n = part ? d->ns : d->nx;
        if (!cot) continue;
        for (int64_t i = 0; i < n; i++) {
            const double term = out[i] * cot[i], sum = L + term;
            comp += fabs(L) >= fabs(term) ? (L - sum) + term : (term - sum) + L;
            L = sum;
        }
    }
    return L + comp;
}

/* Independent forward in the quadratic form, with cum_t = sum_{r<=t} dt_r:
 *   y_t = sum_{s<=t} (C_t . B_s) exp(A (cum_t - cum_s)) dt_s x_s + C_t exp(A cum_t) h0 + D x_t
 *   hT  = exp(A cum_{T-1}) h0 + sum_s exp(A (cum_{T-1} - cum_s)) dt_s x_s B_s^T */
static void naive_forward(const ssd_data *d, double *y, double *hT) {
    const ssd_case c = d->c;
    const int64_t T = c.T, H = c.H, P = c.P, G = c.G, N = c.N;
    double *cum = alloc_d(T);
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / (H / G);
            const double A = d->A[h];
            const double *h0 = d->h0 ? d->h0 + (b * H + h) * P * N : NULL;
            double run = 0;
            for (int64_t t = 0; t < T; t++) { run += d->dt[(b * T + t) * H + h]; cum[t] = run; }
            for (int64_t t = 0; t < T; t++) {
                const double *Ct = d->Cm + ((b * T + t) * G + g) * N;
                const double *xt = d->x + ((b * T + t) * H + h) * P;
                double *yt = y + ((b * T + t) * H + h) * P;
                for (int64_t p = 0; p < P; p++) yt[p] = d->D ? d->D[h] * xt[p] : 0;
                for (int64_t s = 0; s <= t; s++) {
                    const double *Bs = d->Bm + ((b * T + s) * G + g) * N;
                    const double *xs = d->x + ((b * T + s) * H + h) * P;
                    double cb = 0;
                    for (int64_t n = 0; n < N; n++) cb += Ct[n] * Bs[n];
                    const double w = cb * exp(A * (cum[t] - cum[s])) * d->dt[(b * T + s) * H + h];
                    for (int64_t p = 0; p < P; p++) yt[p] += w * xs[p];
                }
                if (h0)
                    for (int64_t p = 0; p < P; p++) {
                        double acc = 0;
                        for (int64_t n = 0; n < N; n++) acc += Ct[n] * h0[p * N + n];
                        yt[p] += exp(A * cum[t]) * acc;
                    }
            }
            double *hTb = hT + (b * H + h) * P * N;
            for (int64_t i = 0; i < P * N; i++) hTb[i] = h0 && T > 0 ? exp(A * cum[T - 1]) * h0[i] : 0;
            for (int64_t s = 0; s < T; s++) {
                const double *Bs = d->Bm + ((b * T + s) * G + g) * N;
                const double *xs = d->x + ((b * T + s) * H + h) * P;
                const double w = exp(A * (cum[T - 1] - cum[s])) * d->dt[(b * T + s) * H + h];
                for (int64_t p = 0; p < P; p++)
                    for (int64_t n = 0; n < N; n++) hTb[p * N + n] += w * xs[p] * Bs[n];
            }
        }
    free(cum);
}

/* Copies time steps [t0, t1) of a (B, T, inner) array into dst: (B, t1 - t0, inner). */
static void time_slice(const double *src, int64_t B, int64_t T, int64_t inner, int64_t t0, int64_t t1,
                       double *dst) {
    for (int64_t b = 0; b < B; b++)
        memcpy(dst + b * (t1 - t0) * inner, src + (b * T + t0) * inner,
               (size_t)((t1 - t0) * inner) * sizeof(double));
}

/* The first (seg 0) or second (seg 1) part of d's sequence split at T1, sharing A and D. */
static void make_segment(const ssd_data *d, int64_t T1, int seg, ssd_data *s) {
    ssd_case c = d->c;
    const int64_t t0 = seg ? T1 : 0, t1 = seg ? c.T : T1;
    c.T = t1 - t0;
    c.use_h0 = 1;                         /* the second part always starts from the carried state */
    c.use_dhT = seg ? d->c.use_dhT : 1;   /* the first part always gets the gradient carried back */
    data_init(s, c, 1);
    time_slice(d->x, c.B, d->c.T, c.H * c.P, t0, t1, s->x);
    time_slice(d->dt, c.B, d->c.T, c.H, t0, t1, s->dt);
    time_slice(d->Bm, c.B, d->c.T, c.G * c.N, t0, t1, s->Bm);
    time_slice(d->Cm, c.B, d->c.T, c.G * c.N, t0, t1, s->Cm);
    time_slice(d->dy, c.B, d->c.T, c.H * c.P, t0, t1, s->dy);
    memcpy(s->A, d->A, (size_t)c.H * sizeof(double));
    if (d->D) memcpy(s->D, d->D, (size_t)c.H * sizeof(double));
    if (seg == 0) {
        if (d->h0) memcpy(s->h0, d->h0, (size_t)d->ns * sizeof(double));
        else memset(s->h0, 0, (size_t)d->ns * sizeof(double));
    } else if (d->dhT) {
        memcpy(s->dhT, d->dhT, (size_t)d->ns * sizeof(double));
    }
}

/* Running T steps equals running T1 then T - T1 with the state carried (hT -> h0), and the
 * backward of the second part hands dh0 to the first part as its dhT. */
static void check_split(const ssd_data *d, const char *shape) {
    const ssd_case c = d->c;
    const int64_t T1 = c.T / 2 + 1;
    if (c.T < 2 || T1 >= c.T) return;
    ssd_data s0, s1;
    make_segment(d, T1, 0, &s0);
    make_segment(d, T1, 1, &s1);
    run_forward(&s0, 1);
    memcpy(s1.h0, s0.hT, (size_t)d->ns * sizeof(double));
    run_forward(&s1, 1);
    run_backward(&s1, s1.g);
    memcpy(s0.dhT, s1.g[GH0], (size_t)d->ns * sizeof(double));
    run_backward(&s0, s0.g);

    int64_t ncat = d->nx > d->nbc ? d->nx : d->nbc;
    double *cat = alloc_d(ncat > d->ns ? ncat : d->ns);
    const int64_t inner[NGRAD] = {c.H * c.P, c.H, 0, c.G * c.N, c.G * c.N, 0, 0};
    /* forward: bitwise the same arithmetic */
    for (int64_t b = 0; b < c.B; b++) {
        memcpy(cat + b * c.T * c.H * c.P, s0.y + b * T1 * c.H * c.P, (size_t)(T1 * c.H * c.P) * sizeof(double));
        memcpy(cat + (b * c.T + T1) * c.H * c.P, s1.y + b * (c.T - T1) * c.H * c.P,
               (size_t)((c.T - T1) * c.H * c.P) * sizeof(double));
    }
    CHECK(memcmp(cat, d->y, (size_t)d->nx * sizeof(double)) == 0, "split y differs %s", shape);
    CHECK(memcmp(s1.hT, d->hT, (size_t)d->ns * sizeof(double)) == 0, "split hT differs %s", shape);
    /* backward: per-step gradients concatenate, dA / dD / dh0 add up */
    for (int i = 0; i < NGRAD; i++) {
        if (!d->g[i]) continue;
        double err;
        if (inner[i]) {
            for (int64_t b = 0; b < c.B; b++) {
                memcpy(cat + b * c.T * inner[i], s0.g[i] + b * T1 * inner[i], (size_t)(T1 * inner[i]) * sizeof(double));
                memcpy(cat + (b * c.T + T1) * inner[i], s1.g[i] + b * (c.T - T1) * inner[i],
                       (size_t)((c.T - T1) * inner[i]) * sizeof(double));
            }
            err = test_max_rel_diff(cat, d->g[i], grad_size(d, i));
        } else if (i == GH0) {
            err = test_max_rel_diff(s0.g[GH0], d->g[GH0], d->ns);
        } else {
            for (int64_t h = 0; h < c.H; h++) cat[h] = s0.g[i][h] + s1.g[i][h];
            err = test_max_rel_diff(cat, d->g[i], c.H);
        }
        CHECK(err < 1e-12, "split %s differs %s: %.2e", grad_name[i], shape, err);
    }
    free(cat);
    data_free(&s0);
    data_free(&s1);
}

/* Each gradient asked for alone (the others NULL) equals the one from the full call, bitwise;
 * without D, a dD buffer is left untouched. */
static void check_null_grads(const ssd_data *d, const char *shape) {
    for (int i = 0; i < NGRAD; i++) {
        double *only[NGRAD] = {0};
        double sentinel = 7.0;
        if (d->g[i]) only[i] = alloc_d(grad_size(d, i));
        else if (i == GD) only[i] = &sentinel;
        else continue;
        run_backward(d, only);
        if (d->g[i])
            CHECK(memcmp(only[i], d->g[i], (size_t)grad_size(d, i) * sizeof(double)) == 0,
                  "%s alone differs %s", grad_name[i], shape);
        else
            CHECK(sentinel == 7.0, "dD written without D %s", shape);
        if (d->g[i]) free(only[i]);
    }
}

/* The f32 kernel agrees with f64, and gives bitwise identical results on 1 and 3 threads. */
static double check_f32(const ssd_data *d, const char *shape) {
    const ssd_case c = d->c;
    const int64_t n_in[NGRAD] = {d->nx, d->ndt, c.H, d->nbc, d->nbc, c.H, d->ns};
    float *in[NGRAD], *grads[2][NGRAD], *y[2], *hT[2];
    float *dy = malloc((size_t)d->nx * sizeof(float)), *dhT = NULL;
    test_fill_f32(dy, d->dy, d->nx);
    if (d->dhT) { dhT = malloc((size_t)d->ns * sizeof(float)); test_fill_f32(dhT, d->dhT, d->ns); }
    for (int i = 0; i < NGRAD; i++) {
        const double *src = input_ptr(d, i);
        in[i] = src ? malloc((size_t)n_in[i] * sizeof(float)) : NULL;
        if (src) test_fill_f32(in[i], src, n_in[i]);
    }
    double worst = 0;
    for (int run = 0; run < 2; run++) {
        omp_set_num_threads(run ? 3 : 1);
        y[run] = malloc((size_t)d->nx * sizeof(float));
        hT[run] = malloc((size_t)d->ns * sizeof(float));
        for (int i = 0; i < NGRAD; i++)
            grads[run][i] = in[i] ? calloc((size_t)n_in[i], sizeof(float)) : NULL;
        int rc = hr_cpu_ssd_forward_f32(c.B, c.T, c.H, c.P, c.G, c.N, in[GX], in[GDT], in[GA], in[GB],
                                        in[GC], in[GD], in[GH0], y[run], hT[run]);
        rc |= hr_cpu_ssd_backward_f32(c.B, c.T, c.H, c.P, c.G, c.N, in[GX], in[GDT], in[GA], in[GB],
                                      in[GC], in[GD], in[GH0], dy, dhT, grads[run][GX], grads[run][GDT],
                                      grads[run][GA], grads[run][GB], grads[run][GC], grads[run][GD],
                                      grads[run][GH0]);
        CHECK(rc == 0, "f32 kernels failed %s", shape);
    }
    omp_set_num_threads(1);

    double e = test_max_rel_diff_f32(y[0], d->y, d->nx);
    CHECK(e < F32_TOL, "f32 y %s: %.2e", shape, e);
    if (e > worst) worst = e;
    e = test_max_rel_diff_f32(hT[0], d->hT, d->ns);
    CHECK(e < F32_TOL, "f32 hT %s: %.2e", shape, e);
    if (e > worst) worst = e;
    CHECK(memcmp(y[0], y[1], (size_t)d->nx * sizeof(float)) == 0, "y depends on threads %s", shape);
    CHECK(memcmp(hT[0], hT[1], (size_t)d->ns * sizeof(float)) == 0, "hT depends on threads %s", shape);
    for (int i = 0; i < NGRAD; i++) {
        if (!in[i]) continue;
        e = test_max_rel_diff_f32(grads[0][i], d->g[i], n_in[i]);
        CHECK(e < F32_TOL, "f32 %s %s: %.2e", grad_name[i], shape, e);
        if (e > worst) worst = e;
        CHECK(memcmp(grads[0][i], grads[1][i], (size_t)n_in[i] * sizeof(float)) == 0,
              "%s depends on threads %s", grad_name[i], shape);
    }
    for (int i = 0; i < NGRAD; i++) { free(in[i]); free(grads[0][i]); free(grads[1][i]); }
    free(y[0]); free(y[1]); free(hT[0]); free(hT[1]); free(dy); free(dhT);
    return worst;
}

static double fd_worst[NGRAD];
static char fd_worst_shape[NGRAD][96];
static double f32_worst, naive_worst;

static void run_case(ssd_case c, uint64_t seed) {
    char shape[96];
    snprintf(shape, sizeof shape, "(B=%lld,T=%lld,H=%lld,P=%lld,G=%lld,N=%lld,D=%d,h0=%d,dhT=%d,dt<%.1f)",
             (long long)c.B, (long long)c.T, (long long)c.H, (long long)c.P, (long long)c.G,
             (long long)c.N, c.use_D, c.use_h0, c.use_dhT, c.dt_hi);
    ssd_data d;
    data_init(&d, c, seed);
    run_forward(&d, 1);
    run_backward(&d, d.g);

    /* independent forward */
    double *y_ref = alloc_d(d.nx), *hT_ref = alloc_d(d.ns);
    naive_forward(&d, y_ref, hT_ref);
    double e = fmax(test_max_rel_diff(d.y, y_ref, d.nx), test_max_rel_diff(d.hT, hT_ref, d.ns));
    CHECK(e < NAIVE_TOL, "forward vs quadratic form %s: %.2e", shape, e);
    if (e > naive_worst) naive_worst = e;
    free(y_ref); free(hT_ref);

    /* backward adds into its buffers: a second call doubles every gradient */
    double *again[NGRAD];
    for (int i = 0; i < NGRAD; i++) {
        again[i] = d.g[i] ? alloc_d(grad_size(&d, i)) : NULL;
        if (again[i]) memcpy(again[i], d.g[i], (size_t)grad_size(&d, i) * sizeof(double));
    }
    run_backward(&d, again);
    for (int i = 0; i < NGRAD; i++) {
        if (!again[i]) continue;
        for (int64_t j = 0; j < grad_size(&d, i); j++) again[i][j] *= 0.5;
        double err = test_max_rel_diff(again[i], d.g[i], grad_size(&d, i));
        CHECK(err < 1e-13, "%s not added into %s: %.2e", grad_name[i], shape, err);
        free(again[i]);
    }

    check_null_grads(&d, shape);
    double e32 = check_f32(&d, shape);
    if (e32 > f32_worst) f32_worst = e32;
    check_split(&d, shape);

    if (c.fd_probes > 0)
        for (int i = 0; i < NGRAD; i++) {
            if (!d.g[i]) continue;
            double err = test_fd_error(loss_fn, &d, input_ptr(&d, i), grad_size(&d, i), d.g[i],
                                       c.fd_probes, 1e-6);
            CHECK(err < FD_TOL, "fd %s %s: %.2e", grad_name[i], shape, err);
            if (err >= fd_worst[i]) { fd_worst[i] = err; snprintf(fd_worst_shape[i], 96, "%s", shape); }
        }
    data_free(&d);
}

int main(void) {
    const int small = getenv("HR_TEST_QUICK") != NULL;
    const int64_t Ps[] = {32, 64, 128}, Ns[] = {16, 64}, Gs[] = {1, 2}, Ts[] = {1, 7, 37, 70};
    /* one thread except where determinism is checked: small parallel regions on a busy machine
     * mostly wait at barriers */
    omp_set_num_threads(1);
    int ncases = 0;
    uint64_t seed = 42;
    /* the grid: every (P, N, G) meets every T, and the 8 (D, h0, dhT) combinations rotate */
    for (int ip = 0; ip < 3; ip++)
        for (int in = 0; in < 2; in++)
            for (int ig = 0; ig < 2; ig++)
                for (int it = 0; it < 4; it++) {
                    const int k = (ip * 2 + in) * 2 + ig, flags = (k + 3 * it) % 8;
                    ssd_case c = {.B = 2, .T = Ts[it], .H = 4, .P = Ps[ip], .G = Gs[ig], .N = Ns[in],
                                  .use_D = flags & 1, .use_h0 = (flags >> 1) & 1, .use_dhT = (flags >> 2) & 1,
                                  .dt_lo = 0.001, .dt_hi = 0.1};
                    if ((k + it) % 3 == 0) { c.dt_lo = 0.1; c.dt_hi = 1.0; }
                    /* finite differences cost a forward per probe: fewer probes on the big problems
                     * (their kernels run the same code; f32 and the quadratic form still cover them) */
                    const int64_t macs = c.B * c.H * c.T * c.P * c.N;
                    c.fd_probes = macs <= 150000 ? 100 : macs <= 600000 ? 24 : 6;
                    if (small && (c.P != 32 || c.N != 16 || c.T > 37)) continue;
                    if (small) c.fd_probes = 10;
                    run_case(c, seed++);
                    ncases++;
                }
    /* extras: one head per group (dBm / dCm written directly), all options on, everything at T = 1,
     * and a long sequence where the checkpoint spacing grows to ceil(sqrt(T)) = 34 */
    const ssd_case extras[] = {
        {3, 37, 4, 16, 4, 8, 1, 1, 1, 0.001, 0.1, 100},
        {2, 70, 4, 32, 2, 16, 1, 1, 1, 0.1, 1.0, 100},
        {2, 1, 4, 32, 1, 16, 1, 1, 1, 0.001, 0.1, 100},
        {1, 1100, 2, 8, 1, 4, 1, 1, 1, 0.001, 0.1, 100},
    };
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        ssd_case c = extras[i];
        if (small && c.T > 100) c.T = 100;
        if (small) c.fd_probes = 10;
        run_case(c, seed++);
        ncases++;
    }

    printf("ssd: %d cases\n", ncases);
    for (int i = 0; i < NGRAD; i++)
        printf("fd ssd_backward %s %s: %.1e\n", grad_name[i], fd_worst_shape[i], fd_worst[i]);
    printf("f32 vs f64 worst relative diff (y, hT, all gradients): %.1e (bound %.0e)\n", f32_worst, F32_TOL);
    printf("forward vs quadratic form worst relative diff: %.1e (bound %.0e)\n", naive_worst, NAIVE_TOL);
    return test_summary("ssd");
}
