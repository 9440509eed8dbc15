// layout: data movement, with the CPU reference's semantics (runtime/cpu/layout.h, core/dtype.c):
// a strided view made contiguous (gather) and its backward (scatter-add into the base's gradient),
// concatenation along a middle dim and its backward, and dtype casts (bf16 rounds to nearest even,
// NaN stays NaN, as hr_f32_to_bf16). Views have at most 8 dims, passed by value. Grid-stride loops,
// 64-bit indices.
//
// hr_scatter_add gives each view element its own base element: the launcher uses it only for views
// whose elements do not overlap (no stride 0 over a dim longer than 1, no other aliasing); an
// overlapping view's gradient must be summed in order some other way, never with racing adds.

#include "common.cuh"

typedef unsigned short hr_bf16;

struct hr_view {
    int ndim;
    hr_i64 shape[8];
    hr_i64 stride[8]; // elements
    hr_i64 offset;
};

// The element offset of contiguous index e in view v.
__device__ __forceinline__ hr_i64 hr_view_offset(const hr_view &v, hr_i64 e) {
    hr_i64 off = v.offset;
    for (int d = v.ndim - 1; d >= 0; d--) {
        off += (e % v.shape[d]) * v.stride[d];
        e /= v.shape[d];
    }
    return off;
}

__device__ __forceinline__ hr_i64 hr_view_numel(const hr_view &v) {
    hr_i64 n = 1;
    for (int d = 0; d < v.ndim; d++) n *= v.shape[d];
    return n;
}

// dst[e] = src[view offset of e]: a strided view made contiguous.
template <typename T>
__global__ void hr_gather(hr_view v, const T *__restrict__ src, T *__restrict__ dst) {
    const hr_i64 n = hr_view_numel(v);
    HR_GRID_STRIDE(e, n)
        dst[e] = src[hr_view_offset(v, e)];
}

// dst[view offset of e] += src[e] (a view that does not overlap itself).
template <typename T>
__global__ void hr_scatter_add(hr_view v, const T *__restrict__ src, T *__restrict__ dst) {
    const hr_i64 n = hr_view_numel(v);
    HR_GRID_STRIDE(e, n)
        dst[hr_view_offset(v, e)] += src[e];
}

// One input of a concatenation: x viewed as (outer, len, inner) goes to out[:, start:start+len, :] of
// an out with `total` along the middle dim. The launcher runs it once per input.
template <typename T>
__global__ void hr_concat_part(hr_i64 outer, hr_i64 len, hr_i64 inner, hr_i64 start, hr_i64 total,
                               const T *__restrict__ x, T *__restrict__ out) {
    HR_GRID_STRIDE(e, outer * len * inner) {
        const hr_i64 o = e / (len * inner), r = e % (len * inner);
        out[o * total * inner + start * inner + r] = x[e];
    }
}

// dx += the block of dout that hr_concat_part wrote from x.
template <typename T>
__global__ void hr_concat_part_backward(hr_i64 outer, hr_i64 len, hr_i64 inner, hr_i64 start, hr_i64 total,
                                        const T *__restrict__ dout, T *__restrict__ dx) {
    HR_GRID_STRIDE(e, outer * len * inner) {
        const hr_i64 o = e / (len * inner), r = e % (len * inner);
        dx[e] += dout[o * total * inner + start * inner + r];
    }
}

__device__ __forceinline__ hr_bf16 hr_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (hr_bf16)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                          // round to nearest even
    return (hr_bf16)(u >> 16);
}
__device__ __forceinline__ float hr_from_bf16(hr_bf16 b) { return __uint_as_float((unsigned int)b << 16); }

// Conversions: the element as a double in between, as the CPU's hr_dtype_get / hr_dtype_set (float
// to and from double is exact one way and rounds to nearest the other).
template <typename T> __device__ __forceinline__ double hr_cast_get(const T *p, hr_i64 i) { return (double)p[i]; }
template <> __device__ __forceinline__ double hr_cast_get<hr_bf16>(const hr_bf16 *p, hr_i64 i) { return (double)hr_from_bf16(p[i]); }
template <typename T> __device__ __forceinline__ void hr_cast_set(T *p, hr_i64 i, double v) { p[i] = (T)v; }
template <> __device__ __forceinline__ void hr_cast_set<hr_bf16>(hr_bf16 *p, hr_i64 i, double v) { p[i] = hr_to_bf16((float)v); }

template <typename S, typename D>
__global__ void hr_cast(hr_i64 n, const S *__restrict__ src, D *__restrict__ dst) {
    HR_GRID_STRIDE(e, n)
        hr_cast_set<D>(dst, e, hr_cast_get<S>(src, e));
}
