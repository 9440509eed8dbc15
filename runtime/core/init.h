/* Parameter initialisers that are more than a random fill. */
#ifndef HR_INIT_H
#define HR_INIT_H

#include "core/tensor.h"

struct hr_ctx;

/* torch.nn.init.orthogonal_: t (2-D, f32 or f64, CPU) becomes gain times a random matrix with
 * orthonormal rows or columns (whichever are fewer), drawn from the context generator (rows x cols
 * normal values, then QR). */
int hr_init_orthogonal(struct hr_ctx *ctx, hr_tensor *t, double gain);

#endif
