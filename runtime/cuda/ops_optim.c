/* CUDA optimizer primitives (core/optim.h) over kernel_src/optim.cu: the AdamW update with the
 * per-step constants folded on the host exactly as the CPU folds them (cpu/backend.c cpu_adamw,
 * cpu/optim.inc), and the sum of squares over the CPU's fixed blocks, so both give the CPU's bits
 * for the sum and the same constants for the update. */
#include <math.h>

#include "cpu/kernels.h" /* HR_CPU_SUMSQ_BLOCK: the same blocks, the same partial sums */
#include "cuda/backend.h"

/* hr_cuda_launch with the argument count taken from the list. */
#define LAUNCH(name, grid, block, ...) HR_CUDA_LAUNCH(ctx, "optim.cu", name, grid, block, 0, __VA_ARGS__)
#define PTR(t) HR_KTENSOR(t)

static int cuda_adamw(hr_ctx *ctx, hr_tensor *p, const hr_tensor *g, hr_tensor *m, hr_tensor *v,
                      const hr_adamw_params *hp) {
    const hr_dtype dt = p->dtype;
    const int64_t n = hr_tensor_numel(p);
    /* in double, then rounded to the parameters' type by HR_KREAL, as (REAL)(...) on the CPU */
    const double bias1 = 1 - pow(hp->beta1, (double)hp->step), bias2 = 1 - pow(hp->beta2, (double)hp->step);
    const double decay = 1.0 - hp->lr * hp->weight_decay, c1 = 1.0 - hp->beta1, c2 = 1.0 - hp->beta2;
    const double step = hp->lr / bias1, inv_sqrt_bias2 = 1.0 / sqrt(bias2);
    const char *name = dt == HR_F64 ? "hr_adamw<double>" : "hr_adamw<float>";
    return LAUNCH(name, hr_cuda_grid_for(n, 256), 256, HR_KI64(n), PTR(p), PTR(g), PTR(m), PTR(v),
                  HR_KREAL(dt, decay), HR_KREAL(dt, hp->beta1), HR_KREAL(dt, hp->beta2), HR_KREAL(dt, c1),
                  HR_KREAL(dt, c2), HR_KREAL(dt, step), HR_KREAL(dt, inv_sqrt_bias2), HR_KREAL(dt, hp->eps),
                  HR_KREAL(dt, hp->grad_scale), HR_KPTR(0) /* gs_dev: the scale by value */);
}

/* Block sums in double (block k over [k B, (k + 1) B), in order), then their sum in block order. */
static int cuda_sum_squares(hr_ctx *ctx, const hr_tensor *x, double *out) {
    const int64_t n = hr_tensor_numel(x), block = HR_CPU_SUMSQ_BLOCK, blocks = (n + block - 1) / block;
    if (n == 0) {
        *out = 0;
        return 0;
    }
    uint64_t partial = 0; /* (blocks) block sums, then the total */
    if (hr_cuda_scratch(ctx, (blocks + 1) * (int64_t)sizeof(double), &partial)) return -1;
    const uint64_t total = partial + (uint64_t)blocks * sizeof(double);
    const char *name = x->dtype == HR_F64 ? "hr_sum_squares_blocks<double>" : "hr_sum_squares_blocks<float>";
    int rc = LAUNCH(name, hr_cuda_grid_for(blocks, 256), 256, HR_KI64(n), HR_KI64(block), PTR(x), HR_KPTR(partial));
    if (!rc) rc = LAUNCH("hr_sum_squares_total", 1, 1, HR_KI64(blocks), HR_KPTR(partial), HR_KPTR(total));
    double sum = 0;
    if (!rc) rc = hr_cuda_download(ctx, &sum, total, (int64_t)sizeof sum);
    hr_cuda_scratch_free(ctx, partial);
    if (rc) return -1;
    *out = sum;
    return 0;
}

void hr_cuda_register_optim(hr_ctx *ctx) {
    ctx->optim[HR_DEVICE_CUDA] = (hr_optim_fns){.adamw = cuda_adamw, .sum_squares = cuda_sum_squares};
}
