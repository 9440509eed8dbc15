/* The CPU backend: registers a forward and a backward for every op into a context. */
#ifndef HR_CPU_BACKEND_H
#define HR_CPU_BACKEND_H

#include "core/context.h"

void hr_cpu_register(hr_ctx *ctx);

/* Replaces the m x n column-major matrix a (m >= n) by the Q of its QR factorisation, columns signed
 * as torch.nn.init.orthogonal_ does (linalg.c). Returns -1 when out of memory or on a LAPACK error. */
int hr_cpu_orthonormalize(int64_t m, int64_t n, double *a);

#endif
