// elementwise: affine y = alpha x + beta, the broadcasting binary ops (+ - * /) and the sum over one
// dimension, forward and backward, with the CPU reference's math (runtime/cpu/elementwise.h).
// Broadcasting as on the CPU: the output is contiguous with shape n[4] (leading 1s as padding);
// operand a's element for output index (i0..i3) is a[i0 sa[0] + ... + i3 sa[3]], stride 0 where a is
// broadcast, and likewise b. A gradient da has a's own layout and is addressed through the same
// strides: each of its elements is owned by one thread that adds the terms of every output position
// mapping to it, in index order, then adds the total in: no atomics, bitwise repeatable.
// KIND: 0 add, 1 sub, 2 mul, 3 div (hr_binary_kind). Grid-stride loops, 64-bit indices.

#include "common.cuh"

struct hr_bcast {
    hr_i64 n[4];  // output shape
    hr_i64 sa[4]; // a's element strides (0: broadcast)
    hr_i64 sb[4]; // b's
};

template <typename T>
__global__ void hr_affine_forward(hr_i64 n, T alpha, T beta, const T *__restrict__ x, T *__restrict__ y) {
    HR_GRID_STRIDE(e, n)
        y[e] = alpha * x[e] + beta;
}

// dx += alpha dy
template <typename T>
__global__ void hr_affine_backward(hr_i64 n, T alpha, const T *__restrict__ dy, T *__restrict__ dx) {
    HR_GRID_STRIDE(e, n)
        dx[e] += alpha * dy[e];
}

template <typename T, int KIND> __device__ __forceinline__ T hr_binary_apply(T a, T b) {
    return KIND == 0 ? a + b : KIND == 1 ? a - b : KIND == 2 ? a * b : a / b;
}

template <typename T, int KIND>
__global__ void hr_binary_forward(hr_bcast s, const T *__restrict__ a, const T *__restrict__ b, T *__restrict__ out) {
    const hr_i64 total = s.n[0] * s.n[1] * s.n[2] * s.n[3];
    HR_GRID_STRIDE(e, total) {
        hr_i64 r = e, oa = 0, ob = 0;
        for (int d = 3; d >= 0; d--) {
            const hr_i64 i = r % s.n[d];
            r /= s.n[d];
            oa += i * s.sa[d];
            ob += i * s.sb[d];
        }
        out[e] = hr_binary_apply<T, KIND>(a[oa], b[ob]);
    }
}

// The term of one output position for the gradient of a (WRT_B = 0) or b (1): dout times the
// derivative; add and sub share KIND 0 (sub's sign for b is in scale).
template <typename T, int KIND, int WRT_B> __device__ __forceinline__ T hr_binary_term(T d, T a, T b) {
    if (KIND == 0 || KIND == 1) return d;
    if (KIND == 2) return WRT_B ? d * a : d * b;
    return WRT_B ? -(d * a / (b * b)) : d / b;
}

// g (a's or b's gradient, in that operand's layout through its strides) += scale * the sum of the
// terms mapping to each element. One thread per element of g: its index runs over the dims where
// the operand's stride is not 0; the others (broadcast) are summed, in index order.
template <typename T, int KIND, int WRT_B>
__global__ void hr_binary_grad(hr_bcast s, const T *__restrict__ dout, const T *__restrict__ a,
                               const T *__restrict__ b, T scale, T *__restrict__ g) {
    const hr_i64 *sg = WRT_B ? s.sb : s.sa;
    hr_i64 kept = 1, summed = 1;
    for (int d = 0; d < 4; d++) {
        if (sg[d] != 0) kept *= s.n[d];
        else summed *= s.n[d];
    }
    HR_GRID_STRIDE(e, kept) {
        hr_i64 idx[4] = {0, 0, 0, 0}, r = e;
        for (int d = 3; d >= 0; d--)
            if (sg[d] != 0) {
                idx[d] = r % s.n[d];
                r /= s.n[d];
            }
        T acc = T(0);
        for (hr_i64 q = 0; q < summed; q++) {
            hr_i64 rq = q;
            for (int d = 3; d >= 0; d--)
                if (sg[d] == 0) {
                    idx[d] = rq % s.n[d];
                    rq /= s.n[d];
                }
            hr_i64 od = 0, oa = 0, ob = 0;
            for (int d = 0; d < 4; d++) {
                od = od * s.n[d] + idx[d];
                oa += idx[d] * s.sa[d];
                ob += idx[d] * s.sb[d];
            }
            acc += hr_binary_term<T, KIND, WRT_B>(dout[od], KIND >= 2 ? a[oa] : T(0), KIND >= 2 ? b[ob] : T(0));
        }
        hr_i64 og = 0;
        for (int d = 0; d < 4; d++) og += idx[d] * sg[d];
        g[og] += scale * acc;
    }
}

// y[o, i] = scale * sum_d x[o, d, i], d in order. One thread per (o, i).
template <typename T>
__global__ void hr_sum_dim_forward(hr_i64 outer, hr_i64 len, hr_i64 inner, T scale, const T *__restrict__ x,
                                   T *__restrict__ y) {
    HR_GRID_STRIDE(e, outer * inner) {
        const hr_i64 o = e / inner, i = e % inner;
        T s = T(0);
        for (hr_i64 d = 0; d < len; d++) s += x[(o * len + d) * inner + i];
        y[e] = scale * s;
    }
}

// dx[o, d, i] += scale * dy[o, i]
template <typename T>
__global__ void hr_sum_dim_backward(hr_i64 outer, hr_i64 len, hr_i64 inner, T scale, const T *__restrict__ dy,
                                    T *__restrict__ dx) {
    HR_GRID_STRIDE(e, outer * len * inner) {
        const hr_i64 o = e / (len * inner), i = e % inner;
        dx[e] += scale * dy[o * inner + i];
    }
}
