// fill: sets every element of a buffer to one value (zeroing gradients, initialising optimizer
// state). The first template of the GPU backend; element type T, grid-stride loop, 64-bit indices.
template <typename T>
__global__ void hr_fill(T *__restrict__ x, T value, long long n) {
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = value;
}
