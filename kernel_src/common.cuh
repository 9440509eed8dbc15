// common.cuh: what the templates share: 64-bit sizes, exp and log for float and double, and the
// grid-stride loop. Included by name ("common.cuh"); the cache key covers it like the templates.
#ifndef HR_COMMON_CUH
#define HR_COMMON_CUH

typedef long long hr_i64;

template <typename T> __device__ __forceinline__ T hr_exp(T v);
template <> __device__ __forceinline__ float hr_exp<float>(float v) { return expf(v); }
template <> __device__ __forceinline__ double hr_exp<double>(double v) { return exp(v); }

template <typename T> __device__ __forceinline__ T hr_log(T v);
template <> __device__ __forceinline__ float hr_log<float>(float v) { return logf(v); }
template <> __device__ __forceinline__ double hr_log<double>(double v) { return log(v); }

// for (hr_i64 e = this thread's first index; e < n; e += all threads of the grid)
#define HR_GRID_STRIDE(e, n) \
    for (hr_i64 e = blockIdx.x * (hr_i64)blockDim.x + threadIdx.x; e < (n); e += (hr_i64)gridDim.x * blockDim.x)

#endif
