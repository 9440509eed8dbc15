/* The runtime context: the one place that holds mutable runtime state (op table, autograd mode,
 * random generator, last error, the graph being captured). One per Lua state. */
#ifndef HR_CONTEXT_H
#define HR_CONTEXT_H

#include <stdbool.h>

#include "core/op.h"
#include "core/optim.h"
#include "core/rng.h"

#define HR_ERR_SIZE 1024

/* Wall time spent in one op's kernels while profiling is on (hr.profile). */
typedef struct hr_op_time {
    double fwd_s, bwd_s;
    int64_t fwd_calls, bwd_calls;
} hr_op_time;

typedef struct hr_ctx {
    hr_op ops[HR_OP_COUNT];      /* filled by each backend's registration */
    hr_optim_fns optim[HR_DEVICE_KINDS]; /* optimizer primitives per device, also registered */
    /* Host linear algebra for initialisation (orthogonal matrices), registered by the CPU backend:
     * replaces an m x n column-major matrix (m >= n) by its orthonormal QR factor; -1 on failure. */
    int (*orthonormalize)(int64_t m, int64_t n, double *a);
    /* Memory of the devices a backend has opened (one GPU per process so far), or NULL; the context
     * holds one reference and releases it when destroyed. */
    hr_device_mem *devices[HR_DEVICE_KINDS];
    bool grad_enabled;           /* false inside no_grad */
    bool check_nan;              /* check every op's outputs (and gradients) for NaN/Inf */
    hr_rng rng;
    struct hr_graph *capture;    /* the graph being recorded, or NULL */
    uint64_t backward_passes;    /* numbers each backward's graph walk (hr_node.visit) */
    bool profiling;              /* accumulate op_time (off by default: two clock reads per op) */
    hr_op_time op_time[HR_OP_COUNT];
    double grad_zero_s;          /* backward's zeroing of intermediate gradients, while profiling */
    char err[HR_ERR_SIZE];       /* the last error, for the caller to report */
} hr_ctx;

/* Returns NULL when out of memory. The ops table starts with names only: register backends after. */
hr_ctx *hr_ctx_create(void);
void hr_ctx_destroy(hr_ctx *ctx);

/* Sets the error message (printf style) and returns -1 so callers can `return hr_error(...)`. */
int hr_error(hr_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *hr_last_error(const hr_ctx *ctx);

/* Seconds on a monotonic wall clock. */
double hr_now(void);

#endif
