// norm: group norm (layer norm is its one-group case) and Mamba-2's gated RMS norm (RMS norm is its
// one-group, no-gate case), forward and backward, with the CPU reference's math
// (runtime/cpu/norm.h, norm.inc). Each row of C = G*S channels is G segments of S channels.
//   group norm:      y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps), biased, centred variance
//   gated RMS norm:  g = y * silu(z) (or y), out = g * rstd * w, rstd = 1/sqrt(mean(g^2) + eps)
// Layouts: x, y, dy, ... (rows, C); w, b, dw, db (C); mean, rstd (rows, G).
//
// One block of BLOCK threads per segment (a fixed reduction tree in shared memory); the weight and
// bias gradients, sums over rows, are formed per chunk of rows (one thread per (chunk, channel),
// rows in order) and the chunks then added in order by hr_norm_sum_partials: no atomics, bitwise
// repeatable. BLOCK (a power of two) is a template parameter for the tuner.

#include "common.cuh"

template <typename T> __device__ __forceinline__ T hr_norm_rsqrt(T v) { return T(1) / sqrt(v); }
template <typename T> __device__ __forceinline__ T hr_norm_sigmoid(T v) { return T(1) / (T(1) + hr_exp<T>(-v)); }

// The sum of v over the block by a fixed tree; every thread gets it. buf: shared (BLOCK).
template <typename T, int BLOCK> __device__ T hr_norm_block_sum(T v, T *buf) {
    __syncthreads(); // buf is free
    buf[threadIdx.x] = v;
    for (int stride = BLOCK / 2; stride > 0; stride /= 2) {
        __syncthreads();
        if (threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    }
    __syncthreads();
    return buf[0];
}

// ---- group norm ----

// grid: rows * G blocks. w, b, mean, rstd may be null.
// @tune hr_group_norm_forward<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) hr_group_norm_forward(hr_i64 rows, hr_i64 G, hr_i64 S, T eps,
                                                               const T *__restrict__ x, const T *__restrict__ w,
                                                               const T *__restrict__ b, T *__restrict__ y,
                                                               T *__restrict__ mean, T *__restrict__ rstd) {
    __shared__ T buf[BLOCK];
    const hr_i64 seg = blockIdx.x, g = seg % G, off = seg * S; // segments are consecutive in (rows, C)
    if (seg >= rows * G) return;
    T s = T(0);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) s += x[off + i];
    const T m = hr_norm_block_sum<T, BLOCK>(s, buf) / T(S);
    T q = T(0);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) q += (x[off + i] - m) * (x[off + i] - m);
    const T r = hr_norm_rsqrt<T>(hr_norm_block_sum<T, BLOCK>(q, buf) / T(S) + eps);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        T v = (x[off + i] - m) * r;
        if (w) v *= w[g * S + i];
        if (b) v += b[g * S + i];
        y[off + i] = v;
    }
    if (threadIdx.x == 0) {
        if (mean) mean[seg] = m;
        if (rstd) rstd[seg] = r;
    }
}

// dx += rstd (wdy - mean(wdy) - xhat mean(wdy xhat)), xhat = (x - mean) rstd, wdy = w dy. grid: rows * G.
// @tune hr_group_norm_backward_dx<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) hr_group_norm_backward_dx(hr_i64 rows, hr_i64 G, hr_i64 S,
                                                                   const T *__restrict__ x, const T *__restrict__ w,
                                                                   const T *__restrict__ mean, const T *__restrict__ rstd,
                                                                   const T *__restrict__ dy, T *__restrict__ dx) {
    __shared__ T buf[BLOCK];
    const hr_i64 seg = blockIdx.x, g = seg % G, off = seg * S;
    if (seg >= rows * G) return;
    const T m = mean[seg], r = rstd[seg];
    T s1 = T(0), s2 = T(0);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T wdy = (w ? w[g * S + i] : T(1)) * dy[off + i];
        s1 += wdy * (x[off + i] - m) * r;
        s2 += wdy;
    }
    const T c1 = hr_norm_block_sum<T, BLOCK>(s1, buf) / T(S);
    const T c2 = hr_norm_block_sum<T, BLOCK>(s2, buf) / T(S);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T wdy = (w ? w[g * S + i] : T(1)) * dy[off + i], xhat = (x[off + i] - m) * r;
        dx[off + i] += (wdy - xhat * c1 - c2) * r;
    }
}

// Per chunk of chunk_rows rows: dw_part[k, c] = sum_r dy[r, c] xhat[r, c], db_part[k, c] = sum_r dy[r, c],
// rows in order; either output may be null. grid-stride over nchunk * C threads.
template <typename T>
__global__ void hr_group_norm_backward_wb(hr_i64 rows, hr_i64 G, hr_i64 S, hr_i64 chunk_rows,
                                          const T *__restrict__ x, const T *__restrict__ mean,
                                          const T *__restrict__ rstd, const T *__restrict__ dy,
                                          T *__restrict__ dw_part, T *__restrict__ db_part) {
    const hr_i64 C = G * S, nchunk = (rows + chunk_rows - 1) / chunk_rows;
    HR_GRID_STRIDE(e, nchunk * C) {
        const hr_i64 k = e / C, c = e % C, g = c / S;
        const hr_i64 r0 = k * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
        T sw = T(0), sb = T(0);
        for (hr_i64 r = r0; r < r1; r++) {
            const T d = dy[r * C + c];
            sw += d * (x[r * C + c] - mean[r * G + g]) * rstd[r * G + g];
            sb += d;
        }
        if (dw_part) dw_part[e] = sw;
        if (db_part) db_part[e] = sb;
    }
}

// grad[c] += sum_k part[k, c], k in order. grid-stride over C.
template <typename T>
__global__ void hr_norm_sum_partials(hr_i64 nchunk, hr_i64 C, const T *__restrict__ part, T *__restrict__ grad) {
    HR_GRID_STRIDE(c, C) {
        T s = T(0);
        for (hr_i64 k = 0; k < nchunk; k++) s += part[k * C + c];
        grad[c] += s;
    }
}

// ---- gated RMS norm ----

// grid: rows * G blocks. z (no gate), w, rstd may be null.
// @tune hr_gated_rms_norm_forward<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) hr_gated_rms_norm_forward(hr_i64 rows, hr_i64 G, hr_i64 S, T eps,
                                                                   const T *__restrict__ y, const T *__restrict__ z,
                                                                   const T *__restrict__ w, T *__restrict__ out,
                                                                   T *__restrict__ rstd) {
    __shared__ T buf[BLOCK];
    const hr_i64 seg = blockIdx.x, g = seg % G, off = seg * S;
    if (seg >= rows * G) return;
    T q = T(0);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T gi = z ? y[off + i] * (z[off + i] * hr_norm_sigmoid<T>(z[off + i])) : y[off + i];
        q += gi * gi;
    }
    const T r = hr_norm_rsqrt<T>(hr_norm_block_sum<T, BLOCK>(q, buf) / T(S) + eps);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T gi = z ? y[off + i] * (z[off + i] * hr_norm_sigmoid<T>(z[off + i])) : y[off + i];
        out[off + i] = gi * r * (w ? w[g * S + i] : T(1));
    }
    if (threadIdx.x == 0 && rstd) rstd[seg] = r;
}

// dg = rstd (wdo - g rstd^2 mean(wdo g)), then dy += dg silu(z) (dg without a gate),
// dz += dg y silu'(z). dy, dz may be null. grid: rows * G.
// @tune hr_gated_rms_norm_backward_dx<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) hr_gated_rms_norm_backward_dx(hr_i64 rows, hr_i64 G, hr_i64 S,
                                                                       const T *__restrict__ y, const T *__restrict__ z,
                                                                       const T *__restrict__ w, const T *__restrict__ rstd,
                                                                       const T *__restrict__ dout, T *__restrict__ dy,
                                                                       T *__restrict__ dz) {
    __shared__ T buf[BLOCK];
    const hr_i64 seg = blockIdx.x, g = seg % G, off = seg * S;
    if (seg >= rows * G) return;
    const T r = rstd[seg];
    T s = T(0);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T gi = z ? y[off + i] * (z[off + i] * hr_norm_sigmoid<T>(z[off + i])) : y[off + i];
        s += (w ? w[g * S + i] : T(1)) * dout[off + i] * gi;
    }
    const T c = r * r * hr_norm_block_sum<T, BLOCK>(s, buf) / T(S);
    for (hr_i64 i = threadIdx.x; i < S; i += BLOCK) {
        const T wdo = (w ? w[g * S + i] : T(1)) * dout[off + i];
        if (!z) {
            if (dy) dy[off + i] += (wdo - y[off + i] * c) * r;
            continue;
        }
        const T zi = z[off + i], sig = hr_norm_sigmoid<T>(zi), gi = y[off + i] * (zi * sig);
        const T dg = (wdo - gi * c) * r;
        if (dy) dy[off + i] += dg * (zi * sig);
        if (dz) dz[off + i] += dg * y[off + i] * (sig * (T(1) + zi * (T(1) - sig)));
    }
}

// dw_part[k, c] = sum over the rows of chunk k of dout[r, c] g[r, c] rstd[r, g], rows in order.
template <typename T>
__global__ void hr_gated_rms_norm_backward_w(hr_i64 rows, hr_i64 G, hr_i64 S, hr_i64 chunk_rows,
                                             const T *__restrict__ y, const T *__restrict__ z,
                                             const T *__restrict__ rstd, const T *__restrict__ dout,
                                             T *__restrict__ dw_part) {
    const hr_i64 C = G * S, nchunk = (rows + chunk_rows - 1) / chunk_rows;
    HR_GRID_STRIDE(e, nchunk * C) {
        const hr_i64 k = e / C, c = e % C, g = c / S;
        const hr_i64 r0 = k * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
        T sw = T(0);
        for (hr_i64 r = r0; r < r1; r++) {
            const hr_i64 o = r * C + c;
            const T gi = z ? y[o] * (z[o] * hr_norm_sigmoid<T>(z[o])) : y[o];
            sw += dout[o] * (gi * rstd[r * G + g]);
        }
        dw_part[e] = sw;
    }
}
