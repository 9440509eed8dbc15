/* Launch plans of the sequence kernels (kernel_src/wkv6.cu, ssd.cu): from the shapes and the dtype,
 * the grid, block, shared memory and scratch a launch needs, computed in 64-bit arithmetic, or a
 * plain refusal naming the limit when the GPU kernels cannot run that shape (never a wrong run).
 * Pure arithmetic, no CUDA: tested on the CPU (tests/cuda/test_launch_plan.c); the launchers use it. */
#ifndef HR_CUDA_LAUNCH_PLAN_H
#define HR_CUDA_LAUNCH_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define HR_GPU_MAX_GRID_X 2147483647LL       /* gridDim.x on every supported arch (sm_75+) */
#define HR_GPU_STATIC_SHARED_LIMIT 49152LL   /* bytes of shared memory a block gets without opting in */
#define HR_WKV6_GPU_CHUNK 16                  /* the backward's default steps per checkpoint (wkv6.cu's @tune default) */

typedef struct {
    int64_t grid, block;      /* blocks (one per (batch, head)) and threads per block */
    int64_t shared_bytes;     /* dynamic shared memory */
    int64_t scratch_elems;    /* scratch the launcher allocates, in elements of the dtype */
    int64_t chunk;            /* backward: steps per checkpoint */
    int64_t du_part_elems;    /* wkv6 backward: (B, H, N) per-pair du */
} hr_launch_plan;

/* elem_size: 4 (f32) or 8 (f64). backward: plan the backward (scratch) rather than the forward.
 * Returns 0, or -1 with err: "wkv6 on the GPU: head size 48 is not one of 32, 64, 128". */
int hr_wkv6_gpu_plan(int64_t B, int64_t T, int64_t H, int64_t N, int elem_size, int backward, hr_launch_plan *plan,
                     char *err, size_t err_size);

/* The same with the backward's chunk length (steps per checkpoint) chosen by the tuner: the scratch
 * holds ceil(T / chunk) checkpoints and one chunk of states per (batch, head). */
int hr_wkv6_gpu_plan_chunk(int64_t B, int64_t T, int64_t H, int64_t N, int elem_size, int backward, int64_t chunk,
                           hr_launch_plan *plan, char *err, size_t err_size);

/* P: head dim (the template parameter), N: state size (run time), G: groups of B/C. */
int hr_ssd_gpu_plan(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N, int elem_size, int backward,
                    hr_launch_plan *plan, char *err, size_t err_size);

/* The backward's checkpoint spacing: max(32, ceil(sqrt(T))), as the CPU's. */
int64_t hr_ssd_chunk_len(int64_t T);

#endif
