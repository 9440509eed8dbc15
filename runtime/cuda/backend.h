/* The CUDA backend: one GPU per process, its primary context and one stream (the legacy default
 * stream, so every launch and copy is ordered), the caching allocator, cuBLAS, and the kernels,
 * loaded from the on-disk cache (NVRTC compiles a miss) the first time an op launches them.
 *
 * hr_cuda_open registers the backend into a context: the device memory core uses (hr_ctx.devices),
 * each op's forward and backward on HR_DEVICE_CUDA (the launchers in ops_*.c) and the optimizer
 * primitives. Launchers call hr_cuda_launch with a name expression exactly as runtime/jit/kernels.c
 * registers it (so `hybridrt cache warm` builds what training loads) and arguments typed as the
 * kernel declares them. */
#ifndef HR_CUDA_BACKEND_H
#define HR_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "cuda/allocator.h"
#include "cuda/driver.h"

typedef enum { HR_KARG_PTR, HR_KARG_I64, HR_KARG_F32, HR_KARG_F64, HR_KARG_BYTES } hr_karg_kind;

/* One kernel argument, typed as the kernel declares it. */
typedef struct hr_karg {
    hr_karg_kind kind;
    union {
        uint64_t ptr;            /* a device address (CUdeviceptr), or 0 for a null pointer */
        int64_t i64;             /* hr_i64 / long long */
        float f32;
        double f64;
    } v;
    const void *bytes;           /* HR_KARG_BYTES: a struct passed by value (hr_bcast, hr_view) */
    size_t size;
} hr_karg;

#define HR_KPTR(p) ((hr_karg){.kind = HR_KARG_PTR, .v.ptr = (uint64_t)(uintptr_t)(p)})
#define HR_KI64(x) ((hr_karg){.kind = HR_KARG_I64, .v.i64 = (int64_t)(x)})
/* A real argument of the kernel's T: float for f32 tensors, double for f64. */
#define HR_KREAL(dt, x)                                                                                  \
    ((dt) == HR_F64 ? (hr_karg){.kind = HR_KARG_F64, .v.f64 = (double)(x)}                                \
                    : (hr_karg){.kind = HR_KARG_F32, .v.f32 = (float)(x)})
#define HR_KF64(x) ((hr_karg){.kind = HR_KARG_F64, .v.f64 = (double)(x)})
#define HR_KBYTES(p) ((hr_karg){.kind = HR_KARG_BYTES, .bytes = (p), .size = sizeof *(p)})

typedef struct hr_cuda_options {
    /* Function tables to use instead of opening libcuda / cuBLAS (the fake-device tests); the backend
     * does not close them. NULL: open the real libraries. */
    const hr_cuda_driver *driver;
    const hr_cublas *cublas;
    const char *cache_dir;       /* NULL: the default kernel cache */
    const char *target;          /* NULL: the GPU's own arch (sm_XY, or PTX when NVRTC is older) */
    /* Called before every kernel launch with its lowered (mangled) name and typed arguments: a
     * tracer's or a test's view of what runs. Returning non-zero refuses the launch (the message in
     * err becomes the op's error). NULL: none. */
    int (*on_launch)(void *arg, const char *name_expression, const char *lowered_name, int64_t grid, int64_t block,
                     int64_t shared_bytes, int nargs, const hr_karg *args, char *err, size_t err_size);
    void *on_launch_arg;
} hr_cuda_options;

/* Opens GPU `ordinal` and registers the backend into ctx. Returns 0, or -1 with the context error
 * naming what is missing: the driver, a GPU, NVRTC, cuBLAS, or a GPU NVRTC cannot target. */
int hr_cuda_open(hr_ctx *ctx, int ordinal, const hr_cuda_options *opts);

/* What the backend has done so far, for the start-up line and the metrics. */
typedef struct hr_cuda_stats {
    char gpu[256];               /* "NVIDIA H100 80GB HBM3 (sm_90)" */
    char gpu_name[256];          /* "NVIDIA H100 80GB HBM3": what names its tuning database */
    char target[32];             /* what kernels are built for: "sm_90" or "compute_121" */
    char driver[32], nvrtc[32];  /* versions: "13.0" */
    int kernels_cached, kernels_compiled, kernels_rebuilt; /* kernels loaded from the cache / built now */
    double kernel_load_s;        /* time spent finding, compiling and loading kernels */
    hr_alloc_stats mem;          /* the caching allocator's bytes and counts */
    int64_t launches;
    char cache_warning[1200];    /* the kernel cache's last recovered problem (a bad entry rebuilt), or "" */
    char tuning_file[1024];      /* the tuning database in use, or "" (defaults everywhere) */
    int tuning_records;          /* its records */
    char tuning_warning[1200];   /* a problem with it (bad lines skipped, unreadable), or "" */
} hr_cuda_stats;

/* 0 and *stats when ctx has the backend open, else -1. */
int hr_cuda_get_stats(const hr_ctx *ctx, hr_cuda_stats *stats);

/* ---- for the launchers (ops_*.c) ---- */

/* "float" or "double": the T of a name expression for an f32 or f64 tensor. */
const char *hr_cuda_type_name(hr_dtype dt);

/* Enqueues kernel `name_expression` of kernel_src/`file` on the stream: a 1-D grid of `grid` blocks
 * of `block` threads with `shared_bytes` of dynamic shared memory. grid == 0 launches nothing. The
 * kernel is loaded on first use (cache, else NVRTC). Returns 0, or -1 with the context error naming
 * the kernel (not registered, a compile failure, a grid beyond the GPU's limit, a launch error). */
int hr_cuda_launch(hr_ctx *ctx, const char *file, const char *name_expression, int64_t grid, int64_t block,
                   int64_t shared_bytes, int nargs, const hr_karg *args);

/* hr_cuda_launch with the arguments listed inline: HR_CUDA_LAUNCH(ctx, "norm.cu", name, grid, block, 0,
 * HR_KI64(rows), HR_KTENSOR(x), ...); the count comes from the list. */
#define HR_CUDA_ARGS(...) (int)(sizeof((hr_karg[]){__VA_ARGS__}) / sizeof(hr_karg)), (hr_karg[]){__VA_ARGS__}
#define HR_CUDA_LAUNCH(ctx, file, name, grid, block, shared, ...) \
    hr_cuda_launch(ctx, file, name, grid, block, shared, HR_CUDA_ARGS(__VA_ARGS__))
/* A tensor argument: its device address (0 for NULL). */
#define HR_KTENSOR(t) HR_KPTR(hr_cuda_ptr(t))

/* Blocks for a grid-stride loop over n elements with `block` threads: ceil(n / block), capped (the
 * loop covers the rest); 0 when n is 0. */
int64_t hr_cuda_grid_for(int64_t n, int64_t block);

/* Scratch device memory from the caching allocator, in stream order: free it right after enqueueing
 * the launches that use it (the single stream runs them before any later reuse). 0 or -1 with the
 * context error. */
int hr_cuda_scratch(hr_ctx *ctx, int64_t bytes, uint64_t *ptr);
void hr_cuda_scratch_free(hr_ctx *ctx, uint64_t ptr);
/* Device <-> host copies in stream order (they wait for the launches before them). */
int hr_cuda_download(hr_ctx *ctx, void *host, uint64_t device, int64_t bytes);
int hr_cuda_upload(hr_ctx *ctx, uint64_t device, const void *host, int64_t bytes);
/* Sets bytes to zero in stream order. */
int hr_cuda_memzero(hr_ctx *ctx, uint64_t device, int64_t bytes);
/* Copies integer ids (i64, i32 or u8, contiguous, on the GPU) into the i64 device tensor out_i64,
 * each checked on the host against [0, limit) or == *allowed (NULL: nothing else is allowed), with
 * the CPU's message naming `what` ("id", "target") and the position. Synchronises with the stream. 0,
 * or -1 with the context error. */
int hr_cuda_validated_ids(hr_ctx *ctx, const hr_node *n, const hr_tensor *ids, int64_t limit, const int64_t *allowed,
                          const char *what, hr_tensor *out_i64);

/* The device address of a tensor's element 0 (0 for NULL). */
static inline uint64_t hr_cuda_ptr(const hr_tensor *t) {
    return t ? (uint64_t)(uintptr_t)hr_tensor_data(t) : 0;
}

/* GPU time between two points of the stream, by events: hr_cuda_timer_start records the first,
 * hr_cuda_timer_stop the second, waits for it and gives the milliseconds between them (the launches
 * enqueued in between, without the host's overheads). 0, or -1 with the context error. */
int hr_cuda_timer_start(hr_ctx *ctx);
int hr_cuda_timer_stop(hr_ctx *ctx, double *ms);

/* ---- tuning (jit/tune_space.h, jit/tune_db.h) ---- */

/* The instantiation to launch for default_expr, a registered name expression of kernel_src/file: when
 * its kernel has a tuning space, the knob's value forced by hr_cuda_tune_force, else the tuning
 * database's choice for the nearest measured shape (dims named as the tuner names them), else the
 * space's default. Writes the name expression into out and the knob's value into *value (0 for a
 * kernel without a space, whose default_expr is used as it is). 0, or -1 with the context error. */
int hr_cuda_tuned(hr_ctx *ctx, const char *file, const char *default_expr, int head, int n_dims,
                  const char *const *dim_names, const int64_t *dims, char *out, size_t out_size, int *value);

/* Makes every launch of `kernel` (e.g. "hr_group_norm_forward") use the knob value `value` (the
 * tuner's trials); 0 returns it to the database's choice. -1 with the context error for a kernel
 * without a space or a value outside it. */
int hr_cuda_tune_force(hr_ctx *ctx, const char *kernel, int value);

/* cuBLAS: C = alpha op(A) op(B) + beta C over `batch` row-major items, as the CPU's hr_cpu_gemm
 * (strides in elements between items; 0 shares one matrix). f32 or f64. */
int hr_cuda_gemm(hr_ctx *ctx, hr_dtype dt, int64_t batch, int ta, int tb, int64_t m, int64_t n, int64_t k,
                 double alpha, uint64_t A, int64_t stride_a, uint64_t B, int64_t stride_b, double beta, uint64_t C,
                 int64_t stride_c);

/* Registration of each family's launchers (ops_*.c), called by hr_cuda_open. */
void hr_cuda_register_elementwise(hr_ctx *ctx); /* view, contiguous, cast, concat, affine, binary, unary, sum, mean */
void hr_cuda_register_sequence(hr_ctx *ctx);    /* embedding, token_shift, conv1d_causal */
void hr_cuda_register_matmul(hr_ctx *ctx);      /* matmul through cuBLAS */
void hr_cuda_register_norm(hr_ctx *ctx);        /* layer, rms, group, gated rms norms; cross_entropy */
void hr_cuda_register_scan(hr_ctx *ctx);        /* wkv6, ssd_scan */
void hr_cuda_register_optim(hr_ctx *ctx);       /* adamw, sum_squares */

#endif
