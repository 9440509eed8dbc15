/* Elementwise kernels: unary activations, affine scaling, broadcasting binary ops, sum over a dim. */

/* Unary activations, y = f(x) over n elements:
 * exp; tanh; sigmoid 1/(1+e^-x) (stable for large |x|); silu x*sigmoid(x);
 * gelu tanh form 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))); softplus log(1+e^x) computed stably
 * (for x > 20 return x, as PyTorch's threshold; otherwise log1p(exp(x))); relu max(x,0);
 * squared relu max(x,0)^2. relu and squared relu propagate NaN. */
void K(hr_cpu_unary_forward)(hr_unary_kind kind, int64_t n, const REAL *x, REAL *y);
/* dx += dy * f'(x). y is the forward output (used for exp, tanh, sigmoid; x for the others):
 * both x and y must be valid. dx may be NULL (nothing to do). */
void K(hr_cpu_unary_backward)(hr_unary_kind kind, int64_t n, const REAL *x, const REAL *y,
                              const REAL *dy, REAL *dx);

/* Affine scale: y = alpha * x + beta (covers scale by a constant, adding a constant, negation). */
void K(hr_cpu_affine_forward)(int64_t n, REAL alpha, REAL beta, const REAL *x, REAL *y);
void K(hr_cpu_affine_backward)(int64_t n, REAL alpha, const REAL *dy, REAL *dx); /* dx += alpha*dy */

/* Binary op with broadcasting over (up to) 4 dims. out is contiguous with shape out_shape[4]
 * (callers pad shapes with leading 1s). a and b are addressed through element strides a_stride[4],
 * b_stride[4]: a's element for output index (i0,i1,i2,i3) is a[i0*a_stride[0]+...+i3*a_stride[3]],
 * and a stride is 0 on a dimension where a is broadcast. out = a (+ - * /) b. */
void K(hr_cpu_binary_forward)(hr_binary_kind kind, const int64_t out_shape[4],
                              const REAL *a, const int64_t a_stride[4],
                              const REAL *b, const int64_t b_stride[4], REAL *out);
/* Gradients: da += sum over broadcast positions of dout * d(out)/d(a), addressed through the SAME
 * strides as the forward (so da has a's own contiguous layout); likewise db. da or db may be NULL.
 * Deterministic with broadcast: each gradient element sums its terms in a fixed order (in chunks
 * fixed by the shape, never by the thread count). a and b are read only where the derivative needs
 * them: never for add / sub (they may be NULL there). Returns 0 or HR_CPU_ENOMEM. */
int K(hr_cpu_binary_backward)(hr_binary_kind kind, const int64_t out_shape[4],
                              const REAL *a, const int64_t a_stride[4],
                              const REAL *b, const int64_t b_stride[4],
                              const REAL *dout, REAL *da, REAL *db);

/* Sum over one dimension of a contiguous array viewed as (outer, len, inner):
 * y[o, i] = scale * sum_d x[o, d, i]   (scale = 1 for sum, 1/len for mean). y is (outer, inner). */
int K(hr_cpu_sum_dim_forward)(int64_t outer, int64_t len, int64_t inner, REAL scale,
                              const REAL *x, REAL *y); /* 0, or HR_CPU_ENOMEM */
/* dx[o, d, i] += scale * dy[o, i] */
void K(hr_cpu_sum_dim_backward)(int64_t outer, int64_t len, int64_t inner, REAL scale,
                                const REAL *dy, REAL *dx);
