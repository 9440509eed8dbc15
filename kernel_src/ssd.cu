// ssd: the Mamba-2 SSD recurrence as a sequential scan, forward and backward, with the head dim P
// (32, 64, 128) as a template parameter and the state size N at run time. The math is the CPU
// reference's (runtime/cpu/ssd.h, ssd.inc): per batch b and head h (group g = h / (H / G)),
//   a_t = exp(dt_t A),  h_t[p][n] = a_t h_{t-1}[p][n] + dt_t x_t[p] Bm_t[n],
//   y_t[p] = sum_n Cm_t[n] h_t[p][n] + D x_t[p]
// Layouts: x, y, dx, dy (B, T, H, P); dt, ddt (B, T, H); A, D, dA, dD (H); Bm, Cm, dBm, dCm
// (B, T, G, N); states (B, H, P, N).
//
// One block of P threads per (b, h); thread p owns state row p. The state lives in a scratch buffer
// the launcher provides, stored n-major ([n][p]) so that the P threads touch consecutive addresses.
// The backward recomputes states chunk by chunk from checkpoints (chunk length L from the
// launcher: the CPU's max(32, ceil(sqrt(T)))), and every sum across threads goes through shared
// memory in a fixed order: no atomics, bitwise repeatable. Per-(b, h) contributions to dA and dD,
// and per-head rows of dBm / dCm when heads share a group, are reduced afterwards in order by
// hr_ssd_reduce_heads and hr_ssd_reduce_groups. Sizes and offsets are 64-bit.

#include "common.cuh"

// Dynamic shared memory: Bm_t and Cm_t, 2 N elements.
// state: (B*H, N, P) scratch. h0 / hT may be null; D may be null (no skip term).
template <typename T, int P>
__global__ void __launch_bounds__(P) hr_ssd_forward(hr_i64 B, hr_i64 Tn, hr_i64 H, hr_i64 G, hr_i64 N,
                                                    const T *__restrict__ x, const T *__restrict__ dt,
                                                    const T *__restrict__ A, const T *__restrict__ Bm,
                                                    const T *__restrict__ Cm, const T *__restrict__ D,
                                                    const T *__restrict__ h0, T *__restrict__ y, T *__restrict__ hT,
                                                    T *__restrict__ state) {
    extern __shared__ unsigned char hr_ssd_smem[];
    T *sB = reinterpret_cast<T *>(hr_ssd_smem), *sC = sB + N;
    const hr_i64 bh = blockIdx.x, b = bh / H, h = bh % H, g = h / (H / G);
    const int p = threadIdx.x;
    if (bh >= B * H) return;
    T *S = state + bh * N * P; // S[n * P + p]
    for (hr_i64 n = 0; n < N; n++) S[n * P + p] = h0 ? h0[(bh * P + p) * N + n] : T(0);
    const T Ah = A[h], Dh = D ? D[h] : T(0);
    for (hr_i64 t = 0; t < Tn; t++) {
        const hr_i64 bt = b * Tn + t;
        __syncthreads();
        for (hr_i64 n = p; n < N; n += P) {
            sB[n] = Bm[(bt * G + g) * N + n];
            sC[n] = Cm[(bt * G + g) * N + n];
        }
        __syncthreads();
        const T dtt = dt[bt * H + h], a = hr_exp<T>(dtt * Ah), xp = x[(bt * H + h) * P + p], u = dtt * xp;
        T acc = T(0);
        for (hr_i64 n = 0; n < N; n++) {
            const T s = a * S[n * P + p] + u * sB[n];
            S[n * P + p] = s;
            acc += sC[n] * s;
        }
        y[(bt * H + h) * P + p] = acc + Dh * xp;
    }
    if (hT)
        for (hr_i64 n = 0; n < N; n++) hT[(bh * P + p) * N + n] = S[n * P + p];
}

// Block sum of v over the P threads, in thread order (thread 0 adds them up). Every thread returns it.
template <typename T, int P> __device__ T hr_ssd_block_sum(T v, T *buf) {
    __syncthreads();
    buf[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        T s = T(0);
        for (int i = 0; i < P; i++) s += buf[i];
        buf[P] = s;
    }
    __syncthreads();
    return buf[P];
}

// Scratch per (b, h), in elements: (nc + L + 1) * N * P with nc = ceil(T / L): the state before each
// chunk, the chunk's states, and the carried gradient, all n-major. Dynamic shared memory: Bm_t,
// Cm_t (2 N). head_sums: (2, B, H), this pair's dA and dD terms (written). dB_rows / dC_rows:
// (B, T, H, N) per-head rows when G < H (the launcher then reduces them over each group's heads with
// hr_ssd_reduce_groups), else dBm / dCm themselves (B, T, G, N) with G == H; added into, may be null.
// dx, ddt, dh0 are added into and may be null; dhT may be null.
template <typename T, int P>
__global__ void __launch_bounds__(P) hr_ssd_backward(hr_i64 B, hr_i64 Tn, hr_i64 H, hr_i64 G, hr_i64 N, hr_i64 L,
                                                     const T *__restrict__ x, const T *__restrict__ dt,
                                                     const T *__restrict__ A, const T *__restrict__ Bm,
                                                     const T *__restrict__ Cm, const T *__restrict__ D,
                                                     const T *__restrict__ h0, const T *__restrict__ dy,
                                                     const T *__restrict__ dhT, T *__restrict__ dx, T *__restrict__ ddt,
                                                     T *__restrict__ dB_rows, T *__restrict__ dC_rows,
                                                     T *__restrict__ dh0, T *__restrict__ head_sums,
                                                     T *__restrict__ scratch) {
    extern __shared__ unsigned char hr_ssd_smem[];
    T *sB = reinterpret_cast<T *>(hr_ssd_smem), *sC = sB + N;
    __shared__ T red[P][33]; // a tile of 32 state columns across the P rows
    __shared__ T sum_buf[P + 1];
    const hr_i64 bh = blockIdx.x, b = bh / H, h = bh % H, g = h / (H / G);
    const int p = threadIdx.x;
    if (bh >= B * H) return;
    const hr_i64 NP = N * P, nc = (Tn + L - 1) / L;
    T *ckpt = scratch + bh * (nc + L + 1) * NP; // (nc, N, P)
    T *chunk = ckpt + nc * NP;                   // (L, N, P): h_t in the current chunk
    T *carry = chunk + L * NP;                   // (N, P): a_{t+1} Gh_{t+1}
    const T Ah = A[h], Dh = D ? D[h] : T(0);

    // 1. the state before every chunk
    for (hr_i64 n = 0; n < N; n++) ckpt[n * P + p] = h0 ? h0[(bh * P + p) * N + n] : T(0);
    for (hr_i64 c = 1; c < nc; c++) {
        T *S = ckpt + c * NP;
        for (hr_i64 n = 0; n < N; n++) S[n * P + p] = S[n * P + p - NP];
        for (hr_i64 t = (c - 1) * L; t < c * L; t++) {
            const hr_i64 bt = b * Tn + t;
            __syncthreads();
            for (hr_i64 n = p; n < N; n += P) sB[n] = Bm[(bt * G + g) * N + n];
            __syncthreads();
            const T dtt = dt[bt * H + h], a = hr_exp<T>(dtt * Ah), u = dtt * x[(bt * H + h) * P + p];
            for (hr_i64 n = 0; n < N; n++) S[n * P + p] = a * S[n * P + p] + u * sB[n];
        }
    }

    // 2. chunks in reverse
    for (hr_i64 n = 0; n < N; n++) carry[n * P + p] = dhT ? dhT[(bh * P + p) * N + n] : T(0);
    T dA_acc = T(0), dD_acc = T(0);
    for (hr_i64 c = nc - 1; c >= 0; c--) {
        const hr_i64 t0 = c * L, len = Tn - t0 < L ? Tn - t0 : L;
        for (hr_i64 i = 0; i < len; i++) {
            const hr_i64 bt = b * Tn + t0 + i;
            __syncthreads();
            for (hr_i64 n = p; n < N; n += P) sB[n] = Bm[(bt * G + g) * N + n];
            __syncthreads();
            const T dtt = dt[bt * H + h], a = hr_exp<T>(dtt * Ah), u = dtt * x[(bt * H + h) * P + p];
            const T *prev = i ? chunk + (i - 1) * NP : ckpt + c * NP;
            T *next = chunk + i * NP;
            for (hr_i64 n = 0; n < N; n++) next[n * P + p] = a * prev[n * P + p] + u * sB[n];
        }
        for (hr_i64 i = len - 1; i >= 0; i--) {
            const hr_i64 bt = b * Tn + t0 + i;
            __syncthreads();
            for (hr_i64 n = p; n < N; n += P) {
                sB[n] = Bm[(bt * G + g) * N + n];
                sC[n] = Cm[(bt * G + g) * N + n];
            }
            __syncthreads();
            const T *S = chunk + i * NP, *Sprev = i ? chunk + (i - 1) * NP : ckpt + c * NP;
            const T xp = x[(bt * H + h) * P + p], dyp = dy[(bt * H + h) * P + p];
            const T dtt = dt[bt * H + h], a = hr_exp<T>(dtt * Ah), u = dtt * xp;
            T du = T(0), da = T(0);
            for (hr_i64 n0 = 0; n0 < N; n0 += 32) {
                const int width = N - n0 < 32 ? (int)(N - n0) : 32;
                // dBm_t[n] = sum_p u_p Gh[p][n], then dCm_t[n] = sum_p dy_p h_t[p][n], one tile of n at a time
                for (int j = 0; j < width; j++) {
                    const hr_i64 n = n0 + j;
                    const T gh = carry[n * P + p] + dyp * sC[n]; // Gh_t[p][n]
                    du += gh * sB[n];
                    da += gh * Sprev[n * P + p];
                    red[p][j] = u * gh;
                    carry[n * P + p] = a * gh; // what reaches h_{t-1}
                }
                __syncthreads();
                if (p < width && dB_rows) {
                    T col = T(0);
                    for (int q = 0; q < P; q++) col += red[q][p];
                    dB_rows[(bt * H + h) * N + n0 + p] += col;
                }
                __syncthreads();
                for (int j = 0; j < width; j++) red[p][j] = dyp * S[(n0 + j) * P + p];
                __syncthreads();
                if (p < width && dC_rows) {
                    T col = T(0);
                    for (int q = 0; q < P; q++) col += red[q][p];
                    dC_rows[(bt * H + h) * N + n0 + p] += col;
                }
                __syncthreads();
            }
            if (dx) dx[(bt * H + h) * P + p] += dtt * du + Dh * dyp;
            const T da_t = hr_ssd_block_sum<T, P>(da, sum_buf);
            const T ddt_in = hr_ssd_block_sum<T, P>(du * xp, sum_buf);
            const T dD_t = hr_ssd_block_sum<T, P>(dyp * xp, sum_buf);
            if (p == 0 && ddt) ddt[bt * H + h] += ddt_in + da_t * a * Ah;
            dA_acc += da_t * a * dtt;
            dD_acc += dD_t;
        }
    }
    if (dh0)
        for (hr_i64 n = 0; n < N; n++) dh0[(bh * P + p) * N + n] += carry[n * P + p];
    if (p == 0) {
        head_sums[bh] = dA_acc;
        head_sums[B * H + bh] = dD_acc;
    }
}

// dA[h] += sum_b head_sums[0, b, h]; dD[h] += sum_b head_sums[1, b, h] (b in order; dA / dD may be null).
template <typename T>
__global__ void hr_ssd_reduce_heads(hr_i64 B, hr_i64 H, const T *__restrict__ head_sums, T *__restrict__ dA,
                                    T *__restrict__ dD) {
    HR_GRID_STRIDE(h, H) {
        T sa = T(0), sd = T(0);
        for (hr_i64 b = 0; b < B; b++) {
            sa += head_sums[b * H + h];
            sd += head_sums[B * H + b * H + h];
        }
        if (dA) dA[h] += sa;
        if (dD) dD[h] += sd;
    }
}

// out[r, g, n] += sum_j part[r, g * hpg + j, n], j in order: the heads of each group.
// part: (rows, G * hpg, N); out: (rows, G, N). grid-stride over rows * G * N.
template <typename T>
__global__ void hr_ssd_reduce_groups(hr_i64 rows, hr_i64 G, hr_i64 hpg, hr_i64 N, const T *__restrict__ part,
                                     T *__restrict__ out) {
    HR_GRID_STRIDE(e, rows * G * N) {
        const hr_i64 rg = e / N, n = e % N;
        T acc = T(0);
        for (hr_i64 j = 0; j < hpg; j++) acc += part[(rg * hpg + j) * N + n];
        out[e] += acc;
    }
}
