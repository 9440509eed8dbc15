#include "core/init.h"

#include <stdlib.h>

#include "core/context.h"

int hr_init_orthogonal(hr_ctx *ctx, hr_tensor *t, double gain) {
    if (t->ndim != 2) return hr_error(ctx, "orthogonal_: needs a 2-D tensor, got %d dimensions", t->ndim);
    if (t->dtype != HR_F32 && t->dtype != HR_F64)
        return hr_error(ctx, "orthogonal_: needs f32 or f64, not %s", hr_dtype_name(t->dtype));
    if (t->storage->device.kind != HR_DEVICE_CPU) return hr_error(ctx, "orthogonal_: initialise on the CPU, then move");
    if (!ctx->orthonormalize) return hr_error(ctx, "orthogonal_: no linear algebra backend registered");
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (rows == 0 || cols == 0) return 0;
    /* Factor the taller orientation: m >= n, stored column-major as LAPACK wants. Element (i, j) of
     * the normal matrix is counter i * cols + j whichever way it is factored. */
    int64_t m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    double *a = malloc((size_t)(m * n) * sizeof *a);
    if (!a) return hr_error(ctx, "orthogonal_: out of memory for a %lld x %lld matrix", (long long)rows, (long long)cols);
    uint64_t seed = ctx->rng.seed, base = ctx->rng.offset;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double z = hr_rng_normal(seed, base + (uint64_t)(i * cols + j));
            if (rows >= cols) a[i + j * m] = z;  /* (i, j) of the rows x cols matrix */
            else a[j + i * m] = z;               /* its transpose: (j, i) of cols x rows */
        }
    ctx->rng.offset += (uint64_t)(rows * cols);
    if (ctx->orthonormalize(m, n, a)) {
        free(a);
        return hr_error(ctx, "orthogonal_: QR factorisation of a %lld x %lld matrix failed", (long long)rows, (long long)cols);
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            hr_tensor_set_flat(t, i * cols + j, gain * (rows >= cols ? a[i + j * m] : a[j + i * m]));
    free(a);
    return 0;
}
