/* Optimizer kernels: the AdamW update and the sum of squares behind a global gradient norm. They work
 * on flat buffers (one parameter buffer, one gradient buffer), outside autograd. */

/* AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW) over n elements, in place:
 *   g = grad_scale * grad                    (grad_scale carries global-norm clipping)
 *   p -= lr * weight_decay * p               (decoupled decay, before the Adam step)
 *   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
 *   p -= lr * (m / bias1) / (sqrt(v / bias2) + eps),  bias1 = 1 - beta1^step, bias2 = 1 - beta2^step
 * The moments m and v are kept in the parameters' precision. Elementwise: no reduction, so results
 * never depend on the thread count. */
void K(hr_cpu_adamw)(int64_t n, REAL *p, const REAL *grad, REAL *m, REAL *v, double lr, double beta1,
                     double beta2, double eps, double weight_decay, double bias1, double bias2,
                     double grad_scale);

/* sum(x^2) accumulated in double over fixed blocks of HR_CPU_SUMSQ_BLOCK elements, the block sums
 * added in block order: the same bits for any thread count. Returns HR_CPU_ENOMEM when the partial
 * sums cannot be allocated (then *out is untouched). */
int K(hr_cpu_sum_squares)(int64_t n, const REAL *x, double *out);
