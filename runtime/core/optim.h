/* Optimizer primitives over flat buffers, outside autograd: the AdamW update and the sum of squares
 * behind a global gradient norm. Each backend provides them (hr_optim_fns); core checks the arguments
 * and dispatches on the parameters' device. */
#ifndef HR_OPTIM_H
#define HR_OPTIM_H

#include <stdint.h>

#include "core/tensor.h"

struct hr_ctx;

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    double grad_scale; /* multiplies the gradient first: global-norm clipping without a pass of its own */
    int64_t step;      /* 1 for the first update: bias corrections 1 - beta^step */
} hr_adamw_params;

typedef struct {
    int (*adamw)(struct hr_ctx *ctx, hr_tensor *p, const hr_tensor *g, hr_tensor *m, hr_tensor *v,
                 const hr_adamw_params *hp);
    int (*sum_squares)(struct hr_ctx *ctx, const hr_tensor *x, double *out);
} hr_optim_fns;

/* One AdamW update of p from g, in place on p, m and v (all contiguous, same shape and float dtype,
 * one device). Refused with an error naming the problem: shapes, dtypes, non-contiguous buffers,
 * step < 1, betas outside [0, 1), eps <= 0, a negative learning rate. */
int hr_adamw_update(struct hr_ctx *ctx, hr_tensor *p, const hr_tensor *g, hr_tensor *m, hr_tensor *v,
                    const hr_adamw_params *hp);
/* sum(x^2) in double, bitwise independent of the thread count (x contiguous, f32 or f64). */
int hr_sum_squares(struct hr_ctx *ctx, const hr_tensor *x, double *out);

#endif
