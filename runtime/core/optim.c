#include "core/optim.h"

#include <math.h>

#include "core/context.h"

static bool is_float(const hr_tensor *t) { return t->dtype == HR_F32 || t->dtype == HR_F64; }

static int check_buffer(hr_ctx *ctx, const char *what, const hr_tensor *t, const hr_tensor *p) {
    char a[64], b[64];
    if (!hr_same_shape(t, p))
        return hr_error(ctx, "adamw: %s shape %s differs from the parameters' %s", what,
                        hr_shape_str(t, a, sizeof a), hr_shape_str(p, b, sizeof b));
    if (t->dtype != p->dtype)
        return hr_error(ctx, "adamw: %s is %s, the parameters %s", what, hr_dtype_name(t->dtype),
                        hr_dtype_name(p->dtype));
    if (!hr_tensor_is_contiguous(t)) return hr_error(ctx, "adamw: %s must be contiguous", what);
    if (t->storage->device.kind != p->storage->device.kind || t->storage->device.index != p->storage->device.index)
        return hr_error(ctx, "adamw: %s is on another device than the parameters", what);
    return 0;
}

int hr_adamw_update(hr_ctx *ctx, hr_tensor *p, const hr_tensor *g, hr_tensor *m, hr_tensor *v,
                    const hr_adamw_params *hp) {
    if (!is_float(p)) return hr_error(ctx, "adamw: parameters must be f32 or f64, not %s", hr_dtype_name(p->dtype));
    if (!hr_tensor_is_contiguous(p)) return hr_error(ctx, "adamw: parameters must be contiguous");
    if (check_buffer(ctx, "gradient", g, p) || check_buffer(ctx, "first moment", m, p) ||
        check_buffer(ctx, "second moment", v, p))
        return -1;
    if (hp->step < 1) return hr_error(ctx, "adamw: step must be >= 1 (got %lld)", (long long)hp->step);
    if (!(hp->beta1 >= 0 && hp->beta1 < 1) || !(hp->beta2 >= 0 && hp->beta2 < 1))
        return hr_error(ctx, "adamw: betas must be in [0, 1) (got %g, %g)", hp->beta1, hp->beta2);
    if (!(hp->eps > 0)) return hr_error(ctx, "adamw: eps must be > 0 (got %g)", hp->eps);
    if (!(hp->lr >= 0) || !isfinite(hp->lr)) return hr_error(ctx, "adamw: learning rate must be >= 0 (got %g)", hp->lr);
    if (!isfinite(hp->weight_decay) || !isfinite(hp->grad_scale))
        return hr_error(ctx, "adamw: weight decay and gradient scale must be finite");
    hr_optim_fns *fns = &ctx->optim[p->storage->device.kind];
    if (!fns->adamw) return hr_error(ctx, "adamw: not available on this device");
    int rc = fns->adamw(ctx, p, g, m, v, hp);
    if (rc == 0) {
        hr_tensor_mark_written(p);
        hr_tensor_mark_written(m);
        hr_tensor_mark_written(v);
    }
    return rc;
}

int hr_sum_squares(hr_ctx *ctx, const hr_tensor *x, double *out) {
    if (!is_float(x)) return hr_error(ctx, "sum_squares: needs f32 or f64, not %s", hr_dtype_name(x->dtype));
    if (!hr_tensor_is_contiguous(x)) return hr_error(ctx, "sum_squares: the tensor must be contiguous");
    hr_optim_fns *fns = &ctx->optim[x->storage->device.kind];
    if (!fns->sum_squares) return hr_error(ctx, "sum_squares: not available on this device");
    return fns->sum_squares(ctx, x, out);
}
