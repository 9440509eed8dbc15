// fill: sets every element of a buffer to one value (zeroing gradients, initialising optimizer
// state). The first template of the GPU backend; element type T, grid-stride loop, 64-bit indices.

#include "common.cuh"

template <typename T>
__global__ void hr_fill(T *__restrict__ x, T value, long long n) {
    HR_GRID_STRIDE(i, n) x[i] = value;
}
