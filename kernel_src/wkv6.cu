// wkv6: the RWKV-6 (x060) WKV recurrence, forward and backward, with the head size N as a template
// parameter (32, 64, 128). The math is the CPU reference's (runtime/cpu/wkv6.h, wkv6.inc): per batch
// b and head h, an N x N state S[i][j] (i key channel, j value channel),
//   y_t[j]  = sum_i r_t[i] (u[i] k_t[i] v_t[j] + S[i][j])
//   S[i][j] <- exp(-exp(w_t[i])) S[i][j] + k_t[i] v_t[j]
// Layouts: r, k, v, w, y, dr, ... (B, T, H, N) contiguous; u (H, N); states (B, H, N, N).
//
// One thread block of N threads per (b, h) pair, running the T steps in order: simple and correct
// first (speed has its own issue). Every sum is over a fixed order in one thread, never an atomic,
// so results are bitwise repeatable. Sizes and offsets are 64-bit.
//
// Forward: thread j holds column j of S. Backward: thread i holds row i of the state gradient G; the states S_{t-1} it needs in reverse order are recomputed chunk by
// chunk (CHUNK steps, a template parameter for the tuner) from checkpoints in a scratch buffer the
// launcher provides, as the CPU backward does. The one sum across rows (dv) goes through shared
// memory in tiles of 32 columns, so N = 128 in double fits in 48 KiB. Loops over N unroll by 4 only:
// full unrolling made the per-thread arrays registers but tripled NVRTC's compile time at N = 128
// (measured), and that is for the tuning issue to weigh.

#include "common.cuh"

// exp(-exp(w)): the decay of one step
template <typename T> __device__ __forceinline__ T hr_wkv_decay(T w) { return hr_exp<T>(-hr_exp<T>(w)); }

// grid: B*H blocks; block: N threads. s0 / sT may be null (zero initial state / final state not wanted).
template <typename T, int N>
__global__ void __launch_bounds__(N) hr_wkv6_forward(hr_i64 B, hr_i64 Tn, hr_i64 H, const T *__restrict__ r,
                                                     const T *__restrict__ k, const T *__restrict__ v,
                                                     const T *__restrict__ w, const T *__restrict__ u,
                                                     const T *__restrict__ s0, T *__restrict__ y, T *__restrict__ sT) {
    const hr_i64 bh = blockIdx.x, b = bh / H, h = bh % H;
    const int j = threadIdx.x;
    if (bh >= B * H) return;
    __shared__ T sr[N], sk[N], sd[N], su[N];
    T S[N]; // column j
    const T *init = s0 ? s0 + bh * N * N : nullptr;
#pragma unroll 4
    for (int i = 0; i < N; i++) S[i] = init ? init[(hr_i64)i * N + j] : T(0);
    su[j] = u[h * N + j];
    const hr_i64 ts = H * N, base = (b * Tn * H + h) * N;
    for (hr_i64 t = 0; t < Tn; t++) {
        const hr_i64 o = base + t * ts;
        __syncthreads(); // the previous step is done with the shared arrays
        sr[j] = r[o + j];
        sk[j] = k[o + j];
        sd[j] = hr_wkv_decay<T>(w[o + j]);
        __syncthreads();
        const T vj = v[o + j];
        T ruk = T(0);
#pragma unroll 4
        for (int i = 0; i < N; i++) ruk += sr[i] * su[i] * sk[i];
        T yj = ruk * vj;
#pragma unroll 4
        for (int i = 0; i < N; i++) {
            yj += sr[i] * S[i];
            S[i] = sd[i] * S[i] + sk[i] * vj;
        }
        y[o + j] = yj;
    }
    if (sT)
#pragma unroll 4
        for (int i = 0; i < N; i++) sT[bh * N * N + (hr_i64)i * N + j] = S[i];
}

// Row i of one state update S <- diag(d) S + k v^T at the step whose (b, t, h, 0) offset is o; every
// thread of the block calls it (it synchronises). sv: shared (N).
template <typename T, int N>
__device__ __forceinline__ void hr_wkv6_advance_row(T *S, T *sv, const T *__restrict__ k, const T *__restrict__ v,
                                                    const T *__restrict__ w, hr_i64 o, int i) {
    __syncthreads();
    sv[i] = v[o + i];
    __syncthreads();
    const T di = hr_wkv_decay<T>(w[o + i]), ki = k[o + i];
#pragma unroll 4
    for (int j = 0; j < N; j++) S[j] = di * S[j] + ki * sv[j];
}

// Scratch per (b, h) pair, in elements: (ceil(T / CHUNK) + CHUNK) * N * N: the state before each
// chunk, then the states S_{t-1} of the chunk being processed (B*H times that in all, from the
// launcher's allocator), and du_part, (B, H, N): each pair's share of du, summed over b in order by
// hr_wkv6_reduce_du.
//
// grid: B*H blocks; block: N threads. dr, dk, dv, dw, ds0 are added into and may be null; dsT may be
// null (no gradient into the final state); du_part is written (not added). CHUNK trades recomputation
// for scratch memory (the launch plan sizes the scratch for it).
// @tune hr_wkv6_backward<T, N, CHUNK>: CHUNK = 8 16 32 64; default 16
template <typename T, int N, int CHUNK>
__global__ void __launch_bounds__(N) hr_wkv6_backward(hr_i64 B, hr_i64 Tn, hr_i64 H, const T *__restrict__ r,
                                                      const T *__restrict__ k, const T *__restrict__ v,
                                                      const T *__restrict__ w, const T *__restrict__ u,
                                                      const T *__restrict__ s0, const T *__restrict__ dy,
                                                      const T *__restrict__ dsT, T *__restrict__ dr, T *__restrict__ dk,
                                                      T *__restrict__ dv, T *__restrict__ dw, T *__restrict__ du_part,
                                                      T *__restrict__ ds0, T *__restrict__ scratch) {
    const hr_i64 bh = blockIdx.x, b = bh / H, h = bh % H;
    const int i = threadIdx.x; // this thread's row (key channel)
    if (bh >= B * H) return;
    const hr_i64 NN = (hr_i64)N * N, nchunk = (Tn + CHUNK - 1) / CHUNK;
    T *ckpt = scratch + bh * (nchunk + CHUNK) * NN; // (nchunk, N, N)
    T *Sc = ckpt + nchunk * NN;                      // (CHUNK, N, N): S_{t-1} within a chunk
    __shared__ T sv[N], sdy[N], sk[N], sr[N], su[N];
    __shared__ T red[N][33]; // k[i] G[i][j] for a tile of 32 columns (padded against bank conflicts)
    const hr_i64 ts = H * N, base = (b * Tn * H + h) * N;
    const T ui = u[h * N + i];
    su[i] = ui;

    // pass 1: the state before every chunk, row i of it in this thread
    T S[N];
#pragma unroll 4
    for (int j = 0; j < N; j++) S[j] = s0 ? s0[bh * NN + (hr_i64)i * N + j] : T(0);
    for (hr_i64 c = 0; c < nchunk; c++) {
#pragma unroll 4
        for (int j = 0; j < N; j++) ckpt[c * NN + (hr_i64)i * N + j] = S[j];
        if (c + 1 == nchunk) break;
        for (hr_i64 t = c * CHUNK; t < (c + 1) * CHUNK; t++) hr_wkv6_advance_row<T, N>(S, sv, k, v, w, base + t * ts, i);
    }

    // pass 2: chunks last to first; G = dL/dS_t (row i), from the final state's gradient
    T G[N];
#pragma unroll 4
    for (int j = 0; j < N; j++) G[j] = dsT ? dsT[bh * NN + (hr_i64)i * N + j] : T(0);
    T du_acc = T(0);
    for (hr_i64 c = nchunk - 1; c >= 0; c--) {
        const hr_i64 t0 = c * CHUNK, len = Tn - t0 < CHUNK ? Tn - t0 : CHUNK;
        // recompute Sc[s] = S_{t0+s-1}, row i
#pragma unroll 4
        for (int j = 0; j < N; j++) S[j] = ckpt[c * NN + (hr_i64)i * N + j];
        for (hr_i64 s = 0; s < len; s++) {
#pragma unroll 4
            for (int j = 0; j < N; j++) Sc[s * NN + (hr_i64)i * N + j] = S[j];
            if (s + 1 == len) break;
            hr_wkv6_advance_row<T, N>(S, sv, k, v, w, base + (t0 + s) * ts, i);
        }
        for (hr_i64 s = len - 1; s >= 0; s--) {
            const hr_i64 o = base + (t0 + s) * ts;
            __syncthreads();
            sv[i] = v[o + i];
            sdy[i] = dy[o + i];
            sk[i] = k[o + i];
            sr[i] = r[o + i];
            __syncthreads();
            const T ri = sr[i], ki = sk[i], wi = w[o + i];
            const T di = hr_wkv_decay<T>(wi);
            T dyv = T(0), ruk = T(0);
#pragma unroll 4
            for (int j = 0; j < N; j++) {
                dyv += sdy[j] * sv[j];
                ruk += sr[j] * su[j] * sk[j];
            }
            const T *sp = Sc + s * NN + (hr_i64)i * N; // row i of S_{t-1}
            T dy_sp = T(0), v_g = T(0), g_sp = T(0);
#pragma unroll 4
            for (int j = 0; j < N; j++) {
                const T spj = sp[j];
                dy_sp += sdy[j] * spj;
                v_g += sv[j] * G[j];
                g_sp += G[j] * spj;
            }
            // dv[j] = ruk dy[j] + sum_i k[i] G[i][j], with G before this step's update: a column sum
            for (int tile = 0; tile < N; tile += 32) {
#pragma unroll 4
                for (int c2 = 0; c2 < 32 && c2 < N; c2++) red[i][c2] = ki * G[tile + c2];
                __syncthreads();
                if (i >= tile && i < tile + 32) {
                    const int jj = i - tile;
                    T col = T(0);
                    for (int row = 0; row < N; row++) col += red[row][jj];
                    if (dv) dv[o + i] += ruk * sdy[i] + col;
                }
                __syncthreads();
            }
            if (dr) dr[o + i] += ui * ki * dyv + dy_sp;
            if (dk) dk[o + i] += v_g + ri * ui * dyv;
            // -exp(w) exp(-exp(w)) as one exp, so that a huge w gives 0, not inf * 0
            if (dw) dw[o + i] += -hr_exp<T>(wi - hr_exp<T>(wi)) * g_sp;
            du_acc += ri * ki * dyv;
#pragma unroll 4
            for (int j = 0; j < N; j++) G[j] = di * G[j] + ri * sdy[j];
        }
    }
    if (ds0)
#pragma unroll 4
        for (int j = 0; j < N; j++) ds0[bh * NN + (hr_i64)i * N + j] += G[j];
    du_part[bh * N + i] = du_acc;
}

// du[h, n] += sum over b of du_part[b, h, n], b in order. grid-stride over H*N.
template <typename T>
__global__ void hr_wkv6_reduce_du(hr_i64 B, hr_i64 H, hr_i64 N, const T *__restrict__ du_part, T *__restrict__ du) {
    HR_GRID_STRIDE(e, H * N) {
        T acc = T(0);
        for (hr_i64 b = 0; b < B; b++) acc += du_part[b * H * N + e];
        du[e] += acc;
    }
}
