// optim: the AdamW update and the sum of squares behind the global gradient norm, on flat buffers,
// with the CPU reference's arithmetic (runtime/cpu/optim.h, optim.inc).
//
// hr_adamw takes the per-step constants folded by the launcher exactly as the CPU folds them (in
// double, then rounded to T), and the gradient scale either as a value or, when gs_dev is not null,
// from device memory (clipping computed on the GPU, no wait for the host). The sum of squares runs
// in double over fixed blocks of `block` elements, each block in index order, then the block sums in
// block order by one thread: the same bits as the CPU's hr_cpu_sum_squares for the same block size.
// That needs every product and sum rounded on its own, as the CPU does (runtime/cpu/optim.c never
// contracts): NVRTC would fuse `s += x * x` into one fma (one rounding, other bits), so the sums
// are written with __dmul_rn and __dadd_rn, which CUDA never merges into a multiply-add
// (tests/jit/test_nvrtc.c checks the PTX has no fma and no unrounded mul or add there).

#include "common.cuh"

template <typename T>
__global__ void hr_adamw(hr_i64 n, T *__restrict__ p, const T *__restrict__ grad, T *__restrict__ m, T *__restrict__ v,
                         T decay, T b1, T b2, T c1, T c2, T step, T inv_sqrt_bias2, T e, T grad_scale,
                         const T *__restrict__ gs_dev) {
    const T gs = gs_dev ? *gs_dev : grad_scale;
    HR_GRID_STRIDE(i, n) {
        const T g = grad[i] * gs;
        const T mi = b1 * m[i] + c1 * g;
        const T vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrt(vi) * inv_sqrt_bias2 + e);
    }
}

// partial[k] = sum of x[i]^2 over block k (i in order, in double). grid-stride over the blocks.
template <typename T>
__global__ void hr_sum_squares_blocks(hr_i64 n, hr_i64 block, const T *__restrict__ x, double *__restrict__ partial) {
    const hr_i64 blocks = (n + block - 1) / block;
    HR_GRID_STRIDE(k, blocks) {
        const hr_i64 lo = k * block, hi = lo + block < n ? lo + block : n;
        double s = 0;
        for (hr_i64 i = lo; i < hi; i++) s = __dadd_rn(s, __dmul_rn((double)x[i], (double)x[i]));
        partial[k] = s;
    }
}

// *out = the block sums added in block order (one thread).
__global__ void hr_sum_squares_total(hr_i64 blocks, const double *__restrict__ partial, double *__restrict__ out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double s = 0;
    for (hr_i64 k = 0; k < blocks; k++) s = __dadd_rn(s, partial[k]);
    *out = s;
}
