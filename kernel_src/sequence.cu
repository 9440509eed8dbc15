// sequence: embedding lookup, RWKV's token shift and Mamba-2's causal depthwise conv1d, forward and
// backward, with the CPU reference's math (runtime/cpu/sequence.h). Layouts: ids (n) int64, W (V, C);
// x, out (B, T, C); state (B, C) for the token shift, (B, K-1, C) for a conv of width K (2..4);
// conv weight (C, K), bias (C).
//
// Every sum over positions (embedding rows sharing an id, conv weight and bias gradients) is owned
// by one thread that adds its terms in index order: no atomics, bitwise repeatable (a sort-based,
// wider embedding backward is for the speed issue). Grid-stride loops, 64-bit indices.

#include "common.cuh"

// out[i, :] = W[ids[i], :] (ids checked by the caller)
template <typename T>
__global__ void hr_embedding_forward(hr_i64 n, hr_i64 C, const hr_i64 *__restrict__ ids, const T *__restrict__ W,
                                     T *__restrict__ out) {
    HR_GRID_STRIDE(e, n * C)
        out[e] = W[ids[e / C] * C + e % C];
}

// dW[ids[i], c] += dout[i, c]: one thread per column c, rows i in increasing order.
template <typename T>
__global__ void hr_embedding_backward(hr_i64 n, hr_i64 C, const hr_i64 *__restrict__ ids, const T *__restrict__ dout,
                                      T *__restrict__ dW) {
    HR_GRID_STRIDE(c, C)
        for (hr_i64 i = 0; i < n; i++) dW[ids[i] * C + c] += dout[i * C + c];
}

// out[b, t] = x[b, t-1] for t >= 1; out[b, 0] = state[b], or 0 when state is null.
template <typename T>
__global__ void hr_token_shift_forward(hr_i64 B, hr_i64 Tn, hr_i64 C, const T *__restrict__ x,
                                       const T *__restrict__ state, T *__restrict__ out) {
    HR_GRID_STRIDE(e, B * Tn * C) {
        const hr_i64 c = e % C, t = (e / C) % Tn, b = e / (C * Tn);
        out[e] = t ? x[e - C] : (state ? state[b * C + c] : T(0));
    }
}

// dx[b, t] += dout[b, t+1] (t < T-1); dstate[b] += dout[b, 0]. Either output may be null.
template <typename T>
__global__ void hr_token_shift_backward(hr_i64 B, hr_i64 Tn, hr_i64 C, const T *__restrict__ dout,
                                        T *__restrict__ dx, T *__restrict__ dstate) {
    HR_GRID_STRIDE(e, B * Tn * C) {
        const hr_i64 c = e % C, t = (e / C) % Tn, b = e / (C * Tn);
        if (dx && t + 1 < Tn) dx[e] += dout[e + C];
        if (dstate && t == 0) dstate[b * C + c] += dout[e];
    }
}

// The conv input at step s (may be negative: the carried state, or 0).
template <typename T>
__device__ __forceinline__ T hr_conv_in(const T *__restrict__ x, const T *__restrict__ state, hr_i64 b, hr_i64 s,
                                        hr_i64 c, hr_i64 Tn, hr_i64 C, hr_i64 K) {
    if (s >= 0) return x[(b * Tn + s) * C + c];
    return state ? state[(b * (K - 1) + (K - 1) + s) * C + c] : T(0);
}

// out[b, t, c] = bias[c] + sum_j w[c, j] xin(b, t - (K-1) + j, c); bias and state may be null.
template <typename T>
__global__ void hr_conv1d_causal_forward(hr_i64 B, hr_i64 Tn, hr_i64 C, hr_i64 K, const T *__restrict__ x,
                                         const T *__restrict__ w, const T *__restrict__ bias,
                                         const T *__restrict__ state, T *__restrict__ out) {
    HR_GRID_STRIDE(e, B * Tn * C) {
        const hr_i64 c = e % C, t = (e / C) % Tn, b = e / (C * Tn);
        T acc = bias ? bias[c] : T(0);
        for (hr_i64 j = 0; j < K; j++) acc += w[c * K + j] * hr_conv_in<T>(x, state, b, t - (K - 1) + j, c, Tn, C, K);
        out[e] = acc;
    }
}

// dx[b, s, c] += sum_j w[c, j] dout[b, s + (K-1) - j, c] over the steps that exist;
// dstate[b, k, c] += sum over t + j = k (t >= 0) of w[c, j] dout[b, t, c], whatever the state's value.
template <typename T>
__global__ void hr_conv1d_causal_backward_x(hr_i64 B, hr_i64 Tn, hr_i64 C, hr_i64 K, const T *__restrict__ w,
                                            const T *__restrict__ dout, T *__restrict__ dx, T *__restrict__ dstate) {
    const hr_i64 nx = dx ? B * Tn * C : 0, ns = dstate ? B * (K - 1) * C : 0;
    HR_GRID_STRIDE(e, nx + ns) {
        if (e < nx) {
            const hr_i64 c = e % C, s = (e / C) % Tn, b = e / (C * Tn);
            T acc = T(0);
            for (hr_i64 j = 0; j < K; j++) {
                const hr_i64 t = s + (K - 1) - j;
                if (t < Tn) acc += w[c * K + j] * dout[(b * Tn + t) * C + c];
            }
            dx[e] += acc;
        } else {
            const hr_i64 f = e - nx, c = f % C, k = (f / C) % (K - 1), b = f / (C * (K - 1));
            T acc = T(0);
            for (hr_i64 j = 0; j < K; j++) {
                const hr_i64 t = k - j;
                if (t >= 0 && t < Tn) acc += w[c * K + j] * dout[(b * Tn + t) * C + c];
            }
            dstate[f] += acc;
        }
    }
}

// dw[c, j] += sum_{b, t} dout[b, t, c] xin(b, t - (K-1) + j, c) and dbias[c] += sum_{b, t} dout[b, t, c]:
// one thread per (c, j) (j == K: the bias), b then t in order. Either output may be null.
template <typename T>
__global__ void hr_conv1d_causal_backward_w(hr_i64 B, hr_i64 Tn, hr_i64 C, hr_i64 K, const T *__restrict__ x,
                                            const T *__restrict__ state, const T *__restrict__ dout,
                                            T *__restrict__ dw, T *__restrict__ dbias) {
    HR_GRID_STRIDE(e, C * (K + 1)) {
        const hr_i64 c = e / (K + 1), j = e % (K + 1);
        if ((j < K && !dw) || (j == K && !dbias)) continue;
        T acc = T(0);
        for (hr_i64 b = 0; b < B; b++)
            for (hr_i64 t = 0; t < Tn; t++) {
                const T d = dout[(b * Tn + t) * C + c];
                acc += j == K ? d : d * hr_conv_in<T>(x, state, b, t - (K - 1) + j, c, Tn, C, K);
            }
        if (j == K) dbias[c] += acc;
        else dw[c * K + j] += acc;
    }
}
