/* Tests of the elementwise kernels (runtime/cpu/elementwise.inc): unary activations, affine,
 * broadcasting binary ops, sum over a dim. For each routine: finite-difference gradients of every
 * input on the _f64 instantiation, a naive reference (forward, and backward for the broadcast
 * reductions), _f32 vs _f64 agreement, additive gradients, NULL gradient pointers, and bitwise
 * determinism with 1 vs 3 threads. HR_TEST_QUICK=1 skips the largest shapes (for valgrind runs). */
#include "cpu/kernels.h"
#include "test_util.h"

#include <float.h>
#include <omp.h>
#include <string.h>

#define FD_H 1e-6
#define FD_TOL 1e-6
#define FD_PROBES 150
#define REF_TOL 1e-12 /* kernel _f64 vs the naive double reference, relative to the largest |value| */
#define F32_TOL 1e-4  /* _f32 vs _f64, relative to the largest |value| of each output / gradient
                       * (long f32 sums with cancellation reach ~1e-5) */

static int quick;
static double worst_f32; /* the largest f32-vs-f64 difference seen, for the closing report */
static double f32_seen(double e) { if (e > worst_f32) worst_f32 = e; return e; }

static double *alloc_d(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static float *alloc_f(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
/* sum_i x[i]*y[i] with Neumaier compensation: the FD losses sum up to ~1e5 terms, and plain
 * rounding there would swamp the differences being measured. */
static double dot(const double *x, const double *y, int64_t n) {
    double s = 0, comp = 0;
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i] * y[i], t = s + v;
        comp += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s;
        s = t;
    }
    return s + comp;
}
static void to_f32(float *dst, const double *src, int64_t n) { test_fill_f32(dst, src, n); }

// ----------------------------------------------------------------------------
// unary

static const char *unary_name[HR_UNARY_COUNT] = {"exp", "tanh", "sigmoid", "silu", "gelu_tanh",
                                                 "softplus", "relu", "relu_squared"};

/* Textbook formulas in double, evaluated independently of the kernel. */
static double unary_ref(hr_unary_kind kind, double v) {
    switch (kind) {
    case HR_UNARY_EXP: return exp(v);
    case HR_UNARY_TANH: return tanh(v);
    case HR_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case HR_UNARY_SILU: return v / (1.0 + exp(-v));
    case HR_UNARY_GELU_TANH: return 0.5 * v * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * pow(v, 3))));
    case HR_UNARY_SOFTPLUS: return v > 20 ? v : log(1.0 + exp(v));
    case HR_UNARY_RELU: return v > 0 ? v : 0;
    default: return v > 0 ? v * v : 0;
    }
}

typedef struct { hr_unary_kind kind; int64_t n; double *x, *y, *cot; } unary_ctx;
static double unary_loss(void *p) {
    unary_ctx *c = p;
    hr_cpu_unary_forward_f64(c->kind, c->n, c->x, c->y);
    return dot(c->y, c->cot, c->n);
}

static void test_unary(hr_unary_kind kind, int64_t n, uint64_t seed) {
    uint64_t s = seed;
    double *x = alloc_d(n), *y = alloc_d(n), *cot = alloc_d(n), *dx = alloc_d(n), *dx0 = alloc_d(n);
    test_fill(x, n, &s, -4, 4);
    // relu / squared relu have a kink at 0: keep the inputs (and FD probes) away from it
    for (int64_t i = 0; i < n; i++) if (fabs(x[i]) < 0.05) x[i] = x[i] < 0 ? -0.05 : 0.05;
    test_fill(cot, n, &s, -1, 1);
    test_fill(dx0, n, &s, -1, 1);

    // forward against the textbook formula
    hr_cpu_unary_forward_f64(kind, n, x, y);
    double *ref = alloc_d(n);
    for (int64_t i = 0; i < n; i++) ref[i] = unary_ref(kind, x[i]);
    double e = test_max_rel_diff(y, ref, n);
    CHECK(e < REF_TOL, "unary %s forward vs reference: %.3g", unary_name[kind], e);

    // finite differences (dx starts at 0), then the same call again adds onto dx0
    hr_cpu_unary_backward_f64(kind, n, x, y, cot, dx);
    unary_ctx c = {kind, n, x, alloc_d(n), cot};
    e = test_fd_error(unary_loss, &c, x, n, dx, FD_PROBES, FD_H);
    printf("fd unary %-12s dx (n=%lld): %.2e\n", unary_name[kind], (long long)n, e);
    CHECK(e < FD_TOL, "fd unary %s dx: %.3g", unary_name[kind], e);
    double *dxa = alloc_d(n);
    memcpy(dxa, dx0, (size_t)n * sizeof(double));
    hr_cpu_unary_backward_f64(kind, n, x, y, cot, dxa);
    for (int64_t i = 0; i < n; i++) dxa[i] -= dx0[i];
    e = test_max_rel_diff(dxa, dx, n);
    CHECK(e < 1e-14, "unary %s backward does not add: %.3g", unary_name[kind], e);
    hr_cpu_unary_backward_f64(kind, n, x, y, cot, NULL); // a NULL gradient is skipped

    // f32 against f64, and thread-count determinism
    float *xf = alloc_f(n), *yf = alloc_f(n), *cf = alloc_f(n), *dxf = alloc_f(n);
    float *yf3 = alloc_f(n), *dxf3 = alloc_f(n);
    to_f32(xf, x, n); to_f32(cf, cot, n);
    omp_set_num_threads(1);
    hr_cpu_unary_forward_f32(kind, n, xf, yf);
    hr_cpu_unary_backward_f32(kind, n, xf, yf, cf, dxf);
    omp_set_num_threads(3);
    hr_cpu_unary_forward_f32(kind, n, xf, yf3);
    hr_cpu_unary_backward_f32(kind, n, xf, yf3, cf, dxf3);
    double *xr = alloc_d(n), *yr = alloc_d(n), *cr = alloc_d(n), *dxr = alloc_d(n); // f32-rounded inputs
    for (int64_t i = 0; i < n; i++) { xr[i] = xf[i]; cr[i] = cf[i]; }
    hr_cpu_unary_forward_f64(kind, n, xr, yr);
    hr_cpu_unary_backward_f64(kind, n, xr, yr, cr, dxr);
    double ey = f32_seen(test_max_rel_diff_f32(yf, yr, n)), ed = f32_seen(test_max_rel_diff_f32(dxf, dxr, n));
    CHECK(ey < F32_TOL && ed < F32_TOL, "unary %s f32 vs f64: y %.3g dx %.3g", unary_name[kind], ey, ed);
    CHECK(!memcmp(yf, yf3, (size_t)n * sizeof(float)) && !memcmp(dxf, dxf3, (size_t)n * sizeof(float)),
          "unary %s differs with 1 vs 3 threads", unary_name[kind]);

    free(x); free(y); free(cot); free(dx); free(dx0); free(ref); free(c.y); free(dxa);
    free(xf); free(yf); free(cf); free(dxf); free(yf3); free(dxf3); free(xr); free(yr); free(cr); free(dxr);
}

/* Far tails: no overflow, no NaN, the right limits, in both precisions. */
static void test_unary_extremes(void) {
    const double xs[] = {-1000, -100, -30, -20.5, 19.5, 20.5, 30, 100, 1000};
    const int n = (int)(sizeof xs / sizeof xs[0]);
    const hr_unary_kind kinds[] = {HR_UNARY_SIGMOID, HR_UNARY_SILU, HR_UNARY_SOFTPLUS, HR_UNARY_TANH,
                                   HR_UNARY_GELU_TANH};
    for (int k = 0; k < 5; k++) {
        double y[16], dx[16] = {0}, dy[16];
        float xf[16], yf[16], dxf[16] = {0}, dyf[16];
        for (int i = 0; i < n; i++) { dy[i] = 1; dyf[i] = 1; xf[i] = (float)xs[i]; }
        hr_cpu_unary_forward_f64(kinds[k], n, xs, y);
        hr_cpu_unary_backward_f64(kinds[k], n, xs, y, dy, dx);
        hr_cpu_unary_forward_f32(kinds[k], n, xf, yf);
        hr_cpu_unary_backward_f32(kinds[k], n, xf, yf, dyf, dxf);
        for (int i = 0; i < n; i++) {
            const double v = xs[i];
            double want = 0, dwant = 0; // limits (exact to double precision at these |v|)
            switch (kinds[k]) {
            case HR_UNARY_SIGMOID: want = v > 0 ? 1 : 0; dwant = 0; break;
            case HR_UNARY_SILU: want = v > 0 ? v : 0; dwant = v > 0 ? 1 : 0; break;
            case HR_UNARY_SOFTPLUS: want = v > 0 ? v : 0; dwant = v > 0 ? 1 : 0; break;
            case HR_UNARY_TANH: want = v > 0 ? 1 : -1; dwant = 0; break;
            default: want = v > 0 ? v : 0; dwant = v > 0 ? 1 : 0; break;
            }
            const double tol = 1e-7 * (1 + fabs(want));
            CHECK(isfinite(y[i]) && fabs(y[i] - want) < tol && isfinite(dx[i]) && fabs(dx[i] - dwant) < 1e-7,
                  "%s(%g) f64: y %.17g dy/dx %.17g", unary_name[kinds[k]], v, y[i], dx[i]);
            CHECK(isfinite(yf[i]) && fabs(yf[i] - want) < 1e-5 * (1 + fabs(want)) && isfinite(dxf[i]) &&
                      fabs(dxf[i] - dwant) < 1e-5,
                  "%s(%g) f32: y %.9g dy/dx %.9g", unary_name[kinds[k]], v, yf[i], dxf[i]);
        }
    }
    // softplus of a very negative input is e^x, not a flushed 0 (log1p keeps it)
    double x = -30, y, sig;
    hr_cpu_unary_forward_f64(HR_UNARY_SOFTPLUS, 1, &x, &y);
    hr_cpu_unary_forward_f64(HR_UNARY_SIGMOID, 1, &x, &sig);
    CHECK(fabs(y / exp(-30) - 1) < 1e-12 && fabs(sig / exp(-30) - 1) < 1e-12,
          "softplus(-30) %.17g, sigmoid(-30) %.17g, e^-30 %.17g", y, sig, exp(-30));
    // NaN propagates through relu
    double nan_in = NAN, relu_out;
    hr_cpu_unary_forward_f64(HR_UNARY_RELU, 1, &nan_in, &relu_out);
    CHECK(isnan(relu_out), "relu(NaN) = %g", relu_out);
}

// ----------------------------------------------------------------------------
// affine

typedef struct { int64_t n; double alpha, beta; double *x, *y, *cot; } affine_ctx;
static double affine_loss(void *p) {
    affine_ctx *c = p;
    hr_cpu_affine_forward_f64(c->n, c->alpha, c->beta, c->x, c->y);
    return dot(c->y, c->cot, c->n);
}

static void test_affine(int64_t n, double alpha, double beta, uint64_t seed) {
    uint64_t s = seed;
    double *x = alloc_d(n), *y = alloc_d(n), *cot = alloc_d(n), *dx = alloc_d(n);
    test_fill(x, n, &s, -2, 2);
    test_fill(cot, n, &s, -1, 1);
    hr_cpu_affine_forward_f64(n, alpha, beta, x, y);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - (alpha * x[i] + beta)));
    CHECK(worst == 0, "affine forward vs reference: %.3g", worst);
    hr_cpu_affine_backward_f64(n, alpha, cot, dx);
    affine_ctx c = {n, alpha, beta, x, alloc_d(n), cot};
    double e = test_fd_error(affine_loss, &c, x, n, dx, FD_PROBES, FD_H);
    printf("fd affine dx (n=%lld, alpha=%g, beta=%g): %.2e\n", (long long)n, alpha, beta, e);
    CHECK(e < FD_TOL, "fd affine dx: %.3g", e);
    hr_cpu_affine_backward_f64(n, alpha, cot, dx); // adds: now twice the gradient
    worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(dx[i] - 2 * alpha * cot[i]));
    CHECK(worst < 1e-15, "affine backward does not add: %.3g", worst);
    hr_cpu_affine_backward_f64(n, alpha, cot, NULL);

    float *xf = alloc_f(n), *yf = alloc_f(n), *yf3 = alloc_f(n), *cf = alloc_f(n);
    float *dxf = alloc_f(n), *dxf3 = alloc_f(n);
    to_f32(xf, x, n); to_f32(cf, cot, n);
    omp_set_num_threads(1);
    hr_cpu_affine_forward_f32(n, (float)alpha, (float)beta, xf, yf);
    hr_cpu_affine_backward_f32(n, (float)alpha, cf, dxf);
    omp_set_num_threads(3);
    hr_cpu_affine_forward_f32(n, (float)alpha, (float)beta, xf, yf3);
    hr_cpu_affine_backward_f32(n, (float)alpha, cf, dxf3);
    double ey = f32_seen(test_max_rel_diff_f32(yf, y, n));
    CHECK(ey < F32_TOL, "affine f32 vs f64: %.3g", ey);
    CHECK(!memcmp(yf, yf3, (size_t)n * sizeof(float)) && !memcmp(dxf, dxf3, (size_t)n * sizeof(float)),
          "affine differs with 1 vs 3 threads");
    free(x); free(y); free(cot); free(dx); free(c.y); free(xf); free(yf); free(yf3); free(cf);
    free(dxf); free(dxf3);
}

// ----------------------------------------------------------------------------
// binary with broadcasting

static const char *binary_name[HR_BINARY_COUNT] = {"add", "sub", "mul", "div"};

static int64_t numel(const int64_t sh[4]) { return sh[0] * sh[1] * sh[2] * sh[3]; }
/* Strides of a contiguous operand of shape sh inside out_shape: 0 where it is broadcast. */
static void bcast_strides(const int64_t sh[4], int64_t st[4]) {
    int64_t acc = 1;
    for (int d = 3; d >= 0; d--) {
        st[d] = sh[d] == 1 ? 0 : acc;
        acc *= sh[d];
    }
}
static int64_t at(const int64_t st[4], int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
}
static double apply_ref(hr_binary_kind k, double x, double y) {
    return k == HR_BINARY_ADD ? x + y : k == HR_BINARY_SUB ? x - y : k == HR_BINARY_MUL ? x * y : x / y;
}

/* Naive 4-deep loops: out = a op b, and da, db += dout * partials (both gradients zeroed first). */
static void binary_ref(hr_binary_kind k, const int64_t o[4], const double *a, const int64_t as[4],
                       const double *b, const int64_t bs[4], const double *dout, double *out,
                       double *da, int64_t na, double *db, int64_t nb) {
    memset(da, 0, (size_t)na * sizeof(double));
    memset(db, 0, (size_t)nb * sizeof(double));
    int64_t e = 0;
    for (int64_t i0 = 0; i0 < o[0]; i0++)
        for (int64_t i1 = 0; i1 < o[1]; i1++)
            for (int64_t i2 = 0; i2 < o[2]; i2++)
                for (int64_t i3 = 0; i3 < o[3]; i3++, e++) {
                    const int64_t ia = at(as, i0, i1, i2, i3), ib = at(bs, i0, i1, i2, i3);
                    const double x = a[ia], y = b[ib], g = dout[e];
                    out[e] = apply_ref(k, x, y);
                    switch (k) {
                    case HR_BINARY_ADD: da[ia] += g; db[ib] += g; break;
                    case HR_BINARY_SUB: da[ia] += g; db[ib] -= g; break;
                    case HR_BINARY_MUL: da[ia] += g * y; db[ib] += g * x; break;
                    default: da[ia] += g / y; db[ib] -= g * x / (y * y); break;
                    }
                }
}

typedef struct {
    hr_binary_kind kind;
    const int64_t *o, *as, *bs;
    double *a, *b, *out, *cot;
} binary_ctx;
static double binary_loss(void *p) {
    binary_ctx *c = p;
    hr_cpu_binary_forward_f64(c->kind, c->o, c->a, c->as, c->b, c->bs, c->out);
    return dot(c->out, c->cot, numel(c->o));
}

static void shape_str(char *buf, const int64_t sh[4]) {
    sprintf(buf, "%lldx%lldx%lldx%lld", (long long)sh[0], (long long)sh[1], (long long)sh[2],
            (long long)sh[3]);
}

/* One (kind, a shape, b shape) case; out's shape is the broadcast of the two. */
static void test_binary(hr_binary_kind kind, const int64_t ash[4], const int64_t bsh[4], uint64_t seed) {
    int64_t o[4], as[4], bs[4];
    for (int d = 0; d < 4; d++) o[d] = ash[d] > bsh[d] ? ash[d] : bsh[d];
    bcast_strides(ash, as);
    bcast_strides(bsh, bs);
    for (int d = 0; d < 4; d++) // where out has extent 1 no index moves: any stride must do
        if (o[d] == 1) as[d] = bs[d] = 999;
    const int64_t n = numel(o), na = numel(ash), nb = numel(bsh);
    char so[64], sa[64], sb[64];
    shape_str(so, o); shape_str(sa, ash); shape_str(sb, bsh);

    uint64_t s = seed;
    double *a = alloc_d(na), *b = alloc_d(nb), *cot = alloc_d(n), *out = alloc_d(n);
    double *da = alloc_d(na), *db = alloc_d(nb);
    test_fill(a, na, &s, -1, 1);
    test_fill(b, nb, &s, 0.5, 2); // away from 0 for div
    test_fill(cot, n, &s, -1, 1);

    // forward and backward against the naive loops
    double *ro = alloc_d(n), *rda = alloc_d(na), *rdb = alloc_d(nb);
    binary_ref(kind, o, a, as, b, bs, cot, ro, rda, na, rdb, nb);
    hr_cpu_binary_forward_f64(kind, o, a, as, b, bs, out);
    int rc = hr_cpu_binary_backward_f64(kind, o, a, as, b, bs, cot, da, db);
    CHECK(rc == 0, "binary backward rc %d", rc);
    double eo = test_max_rel_diff(out, ro, n), ea = test_max_rel_diff(da, rda, na), eb = test_max_rel_diff(db, rdb, nb);
    CHECK(eo == 0 && ea < REF_TOL && eb < REF_TOL, "binary %s %s op %s vs reference: out %.3g da %.3g db %.3g",
          binary_name[kind], sa, sb, eo, ea, eb);

    // finite differences of both inputs
    binary_ctx c = {kind, o, as, bs, a, b, alloc_d(n), cot};
    double fa = test_fd_error(binary_loss, &c, a, na, da, FD_PROBES, FD_H);
    double fb = test_fd_error(binary_loss, &c, b, nb, db, FD_PROBES, FD_H);
    printf("fd binary %s da, db (out=%s a=%s b=%s): %.2e %.2e\n", binary_name[kind], so, sa, sb, fa, fb);
    CHECK(fa < FD_TOL && fb < FD_TOL, "fd binary %s a=%s b=%s: da %.3g db %.3g", binary_name[kind], sa, sb, fa, fb);

    // gradients add; a NULL gradient leaves the other one as it was
    double *da2 = alloc_d(na), *db2 = alloc_d(nb);
    for (int64_t i = 0; i < na; i++) da2[i] = 1;
    for (int64_t i = 0; i < nb; i++) db2[i] = -1;
    hr_cpu_binary_backward_f64(kind, o, a, as, b, bs, cot, da2, NULL);
    hr_cpu_binary_backward_f64(kind, o, a, as, b, bs, cot, NULL, db2);
    for (int64_t i = 0; i < na; i++) da2[i] -= 1;
    for (int64_t i = 0; i < nb; i++) db2[i] += 1;
    ea = test_max_rel_diff(da2, da, na); eb = test_max_rel_diff(db2, db, nb);
    CHECK(ea < 1e-14 && eb < 1e-14, "binary %s a=%s b=%s: additive / NULL gradients: %.3g %.3g",
          binary_name[kind], sa, sb, ea, eb);
    if (kind == HR_BINARY_ADD || kind == HR_BINARY_SUB) { // the inputs are not needed: may be NULL
        memset(da2, 0, (size_t)na * sizeof(double));
        memset(db2, 0, (size_t)nb * sizeof(double));
        hr_cpu_binary_backward_f64(kind, o, NULL, as, NULL, bs, cot, da2, db2);
        CHECK(!memcmp(da2, da, (size_t)na * sizeof(double)) && !memcmp(db2, db, (size_t)nb * sizeof(double)),
              "binary %s a=%s b=%s: NULL inputs change the gradients", binary_name[kind], sa, sb);
    }

    // f32 against f64 (on the f32-rounded inputs), and thread-count determinism
    float *af = alloc_f(na), *bf = alloc_f(nb), *cf = alloc_f(n);
    float *of[2] = {alloc_f(n), alloc_f(n)}, *daf[2] = {alloc_f(na), alloc_f(na)}, *dbf[2] = {alloc_f(nb), alloc_f(nb)};
    to_f32(af, a, na); to_f32(bf, b, nb); to_f32(cf, cot, n);
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        hr_cpu_binary_forward_f32(kind, o, af, as, bf, bs, of[r]);
        rc = hr_cpu_binary_backward_f32(kind, o, af, as, bf, bs, cf, daf[r], dbf[r]);
        CHECK(rc == 0, "binary backward f32 rc %d", rc);
    }
    for (int64_t i = 0; i < na; i++) a[i] = af[i];
    for (int64_t i = 0; i < nb; i++) b[i] = bf[i];
    for (int64_t i = 0; i < n; i++) cot[i] = cf[i];
    memset(da, 0, (size_t)na * sizeof(double));
    memset(db, 0, (size_t)nb * sizeof(double));
    hr_cpu_binary_forward_f64(kind, o, a, as, b, bs, out);
    hr_cpu_binary_backward_f64(kind, o, a, as, b, bs, cot, da, db);
    eo = f32_seen(test_max_rel_diff_f32(of[0], out, n));
    ea = f32_seen(test_max_rel_diff_f32(daf[0], da, na));
    eb = f32_seen(test_max_rel_diff_f32(dbf[0], db, nb));
    CHECK(eo < F32_TOL && ea < F32_TOL && eb < F32_TOL, "binary %s a=%s b=%s f32 vs f64: out %.3g da %.3g db %.3g",
          binary_name[kind], sa, sb, eo, ea, eb);
    CHECK(!memcmp(of[0], of[1], (size_t)n * sizeof(float)) && !memcmp(daf[0], daf[1], (size_t)na * sizeof(float)) &&
              !memcmp(dbf[0], dbf[1], (size_t)nb * sizeof(float)),
          "binary %s a=%s b=%s differs with 1 vs 3 threads", binary_name[kind], sa, sb);

    free(a); free(b); free(cot); free(out); free(da); free(db); free(ro); free(rda); free(rdb);
    free(c.out); free(da2); free(db2); free(af); free(bf); free(cf);
    for (int r = 0; r < 2; r++) { free(of[r]); free(daf[r]); free(dbf[r]); }
}

// ----------------------------------------------------------------------------
// sum over a dim

typedef struct { int64_t outer, len, inner; double scale; double *x, *y, *cot; } sum_ctx;
static double sum_loss(void *p) {
    sum_ctx *c = p;
    hr_cpu_sum_dim_forward_f64(c->outer, c->len, c->inner, c->scale, c->x, c->y);
    return dot(c->y, c->cot, c->outer * c->inner);
}

static void test_sum_dim(int64_t outer, int64_t len, int64_t inner, int mean, uint64_t seed) {
    const int64_t nx = outer * len * inner, ny = outer * inner;
    const double scale = mean && len ? 1.0 / (double)len : 1.0;
    uint64_t s = seed;
    double *x = alloc_d(nx), *y = alloc_d(ny), *cot = alloc_d(ny), *dx = alloc_d(nx), *ref = alloc_d(ny);
    test_fill(x, nx, &s, -1, 1);
    test_fill(cot, ny, &s, -1, 1);
    for (int64_t i = 0; i < ny; i++) y[i] = 12345; // must be overwritten
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            for (int64_t d = 0; d < len; d++) acc += x[(o * len + d) * inner + i];
            ref[o * inner + i] = scale * acc;
        }
    hr_cpu_sum_dim_forward_f64(outer, len, inner, scale, x, y);
    double e = test_max_rel_diff(y, ref, ny);
    CHECK(e < REF_TOL || (len == 0 && e == 0), "sum_dim (%lld,%lld,%lld) vs reference: %.3g",
          (long long)outer, (long long)len, (long long)inner, e);

    hr_cpu_sum_dim_backward_f64(outer, len, inner, scale, cot, dx);
    if (nx > 0) {
        sum_ctx c = {outer, len, inner, scale, x, alloc_d(ny), cot};
        e = test_fd_error(sum_loss, &c, x, nx, dx, FD_PROBES, FD_H);
        printf("fd sum_dim%s dx (outer=%lld,len=%lld,inner=%lld): %.2e\n", mean ? "(mean)" : "",
               (long long)outer, (long long)len, (long long)inner, e);
        CHECK(e < FD_TOL, "fd sum_dim dx: %.3g", e);
        free(c.y);
    }
    hr_cpu_sum_dim_backward_f64(outer, len, inner, scale, cot, dx); // adds: now twice
    double worst = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t d = 0; d < len; d++)
            for (int64_t i = 0; i < inner; i++)
                worst = fmax(worst, fabs(dx[(o * len + d) * inner + i] - 2 * scale * cot[o * inner + i]));
    CHECK(worst < 1e-15, "sum_dim backward does not add: %.3g", worst);
    hr_cpu_sum_dim_backward_f64(outer, len, inner, scale, cot, NULL);

    float *xf = alloc_f(nx), *cf = alloc_f(ny), *yf[2] = {alloc_f(ny), alloc_f(ny)}, *dxf[2] = {alloc_f(nx), alloc_f(nx)};
    to_f32(xf, x, nx); to_f32(cf, cot, ny);
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 3 : 1);
        hr_cpu_sum_dim_forward_f32(outer, len, inner, (float)scale, xf, yf[r]);
        hr_cpu_sum_dim_backward_f32(outer, len, inner, (float)scale, cf, dxf[r]);
    }
    for (int64_t i = 0; i < nx; i++) x[i] = xf[i];
    hr_cpu_sum_dim_forward_f64(outer, len, inner, (double)(float)scale, x, y);
    e = f32_seen(test_max_rel_diff_f32(yf[0], y, ny));
    CHECK(e < F32_TOL || (len == 0 && e == 0), "sum_dim (%lld,%lld,%lld) f32 vs f64: %.3g", (long long)outer,
          (long long)len, (long long)inner, e);
    CHECK(!memcmp(yf[0], yf[1], (size_t)ny * sizeof(float)) && !memcmp(dxf[0], dxf[1], (size_t)nx * sizeof(float)),
          "sum_dim (%lld,%lld,%lld) differs with 1 vs 3 threads", (long long)outer, (long long)len, (long long)inner);
    free(x); free(y); free(cot); free(dx); free(ref); free(xf); free(cf);
    for (int r = 0; r < 2; r++) { free(yf[r]); free(dxf[r]); }
}

// ----------------------------------------------------------------------------

/* hr_fast_exp_f32 (kernels.h): relative error below FLT_EPSILON over the float range, the right limits, and
 * the same bits from a vectorised loop as from scalar calls. */
static void test_fast_exp(void) {
    const int64_t n = 1 << 20;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (float)n;
    for (int64_t i = 0; i < n; i++) y[i] = hr_fast_exp_f32(x[i]); /* vectorised */
    double worst = 0;
    int64_t lane_mismatch = 0;
    for (int64_t i = 0; i < n; i++) {
        double ref = exp((double)x[i]);
        if (ref > 1.2e-38 && ref < 3.4e38) worst = fmax(worst, fabs(y[i] - ref) / ref);
        volatile float xi = x[i]; /* forces the scalar path */
        if (hr_fast_exp_f32(xi) != y[i]) lane_mismatch++;
    }
    printf("fast exp: worst relative error %.3g (%.2f FLT_EPSILON)\n", worst, worst / FLT_EPSILON);
    CHECK(worst < FLT_EPSILON, "fast exp relative error below FLT_EPSILON, got %.3g", worst);
    CHECK(lane_mismatch == 0, "vector and scalar fast exp differ at %lld points", (long long)lane_mismatch);
    CHECK(hr_fast_exp_f32(0.0f) == 1.0f, "exp(0) = 1");
    CHECK(hr_fast_exp_f32(-100.0f) == 0.0f && hr_fast_exp_f32(-INFINITY) == 0.0f, "exp underflows to 0");
    CHECK(isinf(hr_fast_exp_f32(100.0f)) && isinf(hr_fast_exp_f32(INFINITY)), "exp overflows to inf");
    CHECK(isnan(hr_fast_exp_f32(NAN)), "exp(NaN) is NaN");
    free(x);
    free(y);
}

int main(void) {
    quick = getenv("HR_TEST_QUICK") != NULL;
    test_fast_exp();
    uint64_t seed = 1;

    for (int k = 0; k < HR_UNARY_COUNT; k++) {
        test_unary((hr_unary_kind)k, 1, seed++);
        test_unary((hr_unary_kind)k, 1037, seed++);
        if (!quick) test_unary((hr_unary_kind)k, 50001, seed++); // several chunks
    }
    test_unary_extremes();

    test_affine(1037, 0.75, -1.5, seed++);
    test_affine(1, -1, 0, seed++);
    if (!quick) test_affine(50001, 2.5, 3, seed++);

    /* (a shape, b shape) pairs; both orders are tested so that each operand is once the broadcast one. */
    static const int64_t pairs[][2][4] = {
        {{2, 3, 4, 5}, {2, 3, 4, 5}},       // same shape
        {{2, 3, 4, 5}, {1, 1, 1, 5}},       // (.., C) op (C)
        {{2, 3, 4, 5}, {1, 3, 1, 5}},
        {{2, 3, 4, 5}, {2, 1, 4, 1}},
        {{2, 3, 4, 5}, {1, 1, 1, 1}},       // scalar-like
        {{2, 1, 4, 1}, {1, 3, 1, 5}},       // both broadcast
        {{1, 1, 1, 1}, {1, 1, 1, 1}},       // a single element
        {{1, 1, 7, 1}, {1, 1, 7, 1}},       // T = 1 style: size-1 dims around
        {{1, 2, 37, 3}, {1, 2, 37, 1}},     // per-row scale, odd sizes (g summed along the inner dim)
        {{1, 1, 3000, 37}, {1, 1, 1, 37}},  // a bias over many rows: reduced in chunks
        {{1, 1, 200, 600}, {1, 1, 1, 600}}, // a wide bias: several blocks of channels, chunked
        {{8, 50, 1, 100}, {1, 50, 1, 1}},   // summed inner and outer dims, chunked
        {{9, 3, 1, 1501}, {1, 3, 1, 1}},    // the same, a chunk boundary inside a row
        {{1, 1, 1, 70001}, {1, 1, 1, 1}},   // a long scalar reduction, chunked inside the row
        {{3, 1, 9000, 1}, {3, 1, 9000, 1}}, // same shape, several flat chunks
    };
    const int npairs = (int)(sizeof pairs / sizeof pairs[0]);
    for (int p = 0; p < npairs; p++) {
        if (quick && numel(pairs[p][0]) > 50000) continue;
        for (int k = 0; k < HR_BINARY_COUNT; k++) {
            test_binary((hr_binary_kind)k, pairs[p][0], pairs[p][1], seed++);
            if (memcmp(pairs[p][0], pairs[p][1], sizeof pairs[p][0]))
                test_binary((hr_binary_kind)k, pairs[p][1], pairs[p][0], seed++);
        }
    }

    static const int64_t sums[][3] = {
        {3, 5, 7}, {1, 37, 1}, {4, 1, 6}, {2, 9, 1}, {1, 1, 1}, {5, 0, 3}, // odd / degenerate
        {1, 20000, 3},  // few outputs, long sum: chunked
        {1, 100000, 1}, // a full sum
        {64, 300, 1},   // many rows summed along the inner dim
        {2, 700, 300},  // several blocks of the inner dim
    };
    const int nsums = (int)(sizeof sums / sizeof sums[0]);
    for (int i = 0; i < nsums; i++) {
        if (quick && sums[i][0] * sums[i][1] * sums[i][2] > 70000) continue;
        test_sum_dim(sums[i][0], sums[i][1], sums[i][2], 0, seed++);
        test_sum_dim(sums[i][0], sums[i][1], sums[i][2], 1, seed++);
    }

    printf("worst f32 vs f64 relative difference: %.2e (bound %.0e)\n", worst_f32, F32_TOL);
    return test_summary("elementwise");
}
