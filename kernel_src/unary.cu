// unary: the activations, forward y = f(x) and backward dx += dy * f'(x), with the math of the CPU
// reference (runtime/cpu/elementwise.inc): GELU in its tanh form written as x * sigmoid(2u), softplus
// exact above 20, ReLU passing NaN through. One thread per element, grid-stride, 64-bit indices.
// Instantiated by name expression as hr_unary_forward<float, hr_gelu>, hr_unary_backward<double, hr_silu>.

#include "common.cuh"

// 1/(1+e^-v) through e^-|v|, which never overflows
template <typename T> __device__ __forceinline__ T hr_sigmoid(T v) {
    const T e = hr_exp<T>(-fabs(v));
    return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

#define HR_GELU_C 0.7978845608028654 // sqrt(2/pi)
#define HR_GELU_K 0.044715
#define HR_SOFTPLUS_THRESHOLD 20

// Each op: f(x) and d = f'(x) given x and y = f(x).
struct hr_exp_op {
    template <typename T> __device__ static T f(T x) { return hr_exp<T>(x); }
    template <typename T> __device__ static T d(T x, T y) { return y; }
};
struct hr_tanh_op {
    template <typename T> __device__ static T f(T x) { return tanh(x); }
    template <typename T> __device__ static T d(T x, T y) { return T(1) - y * y; }
};
struct hr_sigmoid_op {
    template <typename T> __device__ static T f(T x) { return hr_sigmoid(x); }
    template <typename T> __device__ static T d(T x, T y) { return y * (T(1) - y); }
};
struct hr_silu_op {
    template <typename T> __device__ static T f(T x) { return x * hr_sigmoid(x); }
    // s cannot be recovered from y = x*s where x = 0: recompute it
    template <typename T> __device__ static T d(T x, T y) {
        const T s = hr_sigmoid(x);
        return s * (T(1) + x * (T(1) - s));
    }
};
struct hr_gelu_op {
    template <typename T> __device__ static T f(T x) {
        const T c = T(HR_GELU_C), k = T(HR_GELU_K);
        return x * hr_sigmoid(T(2) * c * (x + k * x * x * x));
    }
    // with s = sigmoid(2u) = 0.5 (1 + tanh u): 0.5 (1 - tanh^2 u) = 2 s (1 - s)
    template <typename T> __device__ static T d(T x, T y) {
        const T c = T(HR_GELU_C), k = T(HR_GELU_K);
        const T s = hr_sigmoid(T(2) * c * (x + k * x * x * x));
        const T du = c * (T(1) + T(3) * k * x * x);
        return s + x * T(2) * s * (T(1) - s) * du;
    }
};
struct hr_softplus_op {
    template <typename T> __device__ static T f(T x) { return x > T(HR_SOFTPLUS_THRESHOLD) ? x : log1p(hr_exp<T>(x)); }
    template <typename T> __device__ static T d(T x, T y) { return x > T(HR_SOFTPLUS_THRESHOLD) ? T(1) : hr_sigmoid(x); }
};
struct hr_relu_op {
    template <typename T> __device__ static T f(T x) { return x < T(0) ? T(0) : x; }
    template <typename T> __device__ static T d(T x, T y) { return x > T(0) ? T(1) : T(0); }
};
struct hr_relu_squared_op {
    template <typename T> __device__ static T f(T x) {
        const T r = x < T(0) ? T(0) : x;
        return r * r;
    }
    template <typename T> __device__ static T d(T x, T y) { return x > T(0) ? T(2) * x : T(0); }
};

template <typename T, typename Op>
__global__ void hr_unary_forward(const T *__restrict__ x, T *__restrict__ y, long long n) {
    HR_GRID_STRIDE(i, n) y[i] = Op::f(x[i]);
}

// dx += dy * f'(x): gradients accumulate, as on the CPU (a zeroed dx gives the plain product)
template <typename T, typename Op>
__global__ void hr_unary_backward(const T *__restrict__ x, const T *__restrict__ y, const T *__restrict__ dy,
                                  T *__restrict__ dx, long long n) {
    HR_GRID_STRIDE(i, n) dx[i] += dy[i] * Op::d(x[i], y[i]);
}
