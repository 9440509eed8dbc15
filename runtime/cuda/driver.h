/* The CUDA driver (libcuda.so.1) and cuBLAS, opened at run time, and what they report about the
 * machine's GPUs. Own declarations of the C ABI (int results, int device handles): no CUDA header is
 * needed to build. */
#ifndef HR_CUDA_DRIVER_H
#define HR_CUDA_DRIVER_H

#include <stddef.h>

typedef struct hr_cuda_driver {
    void *handle;
    char path[512];
    int version;                 /* cuDriverGetVersion: 1000 * major + 10 * minor */
    int (*Init)(unsigned flags);
    int (*DriverGetVersion)(int *version);
    int (*DeviceGetCount)(int *count);
    int (*DeviceGet)(int *device, int ordinal);
    int (*DeviceGetName)(char *name, int len, int device);
    int (*DeviceGetAttribute)(int *value, int attribute, int device);
    int (*DeviceTotalMem)(size_t *bytes, int device);
    int (*GetErrorString)(int result, const char **text);
    /* contexts, memory, modules, launches (CUcontext, CUmodule, CUfunction are opaque pointers;
     * CUdeviceptr is a 64-bit integer) */
    int (*DevicePrimaryCtxRetain)(void **ctx, int device);
    int (*DevicePrimaryCtxRelease)(int device);
    int (*CtxSetCurrent)(void *ctx);
    int (*CtxSynchronize)(void);
    int (*MemAlloc)(unsigned long long *ptr, size_t bytes);
    int (*MemFree)(unsigned long long ptr);
    int (*MemcpyHtoD)(unsigned long long dst, const void *src, size_t bytes);
    int (*MemcpyDtoH)(void *dst, unsigned long long src, size_t bytes);
    int (*MemcpyDtoD)(unsigned long long dst, unsigned long long src, size_t bytes);
    int (*MemsetD8)(unsigned long long dst, unsigned char value, size_t bytes);
    int (*ModuleLoadData)(void **module, const void *image);
    int (*ModuleUnload)(void *module);
    int (*ModuleGetFunction)(void **function, void *module, const char *name);
    /* events (CUevent: an opaque pointer), for timing on the GPU's clock */
    int (*EventCreate)(void **event, unsigned flags);
    int (*EventRecord)(void *event, void *stream);
    int (*EventSynchronize)(void *event);
    int (*EventElapsedTime)(float *ms, void *start, void *end);
    int (*EventDestroy)(void *event);
    int (*LaunchKernel)(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared_bytes, void *stream, void **params, void **extra);
    /* cuFuncGetParamInfo (drivers of CUDA 12.4 and later; NULL when absent): a kernel's parameters
     * as compiled, so launches are checked against them */
    int (*FuncGetParamInfo)(void *function, size_t index, size_t *offset, size_t *size);
} hr_cuda_driver;

/* Opens libcuda.so.1 (HYBRIDRT_CUDA_DRIVER_LIBRARY names a file to use instead) and initialises it.
 * Returns 0, or -1 with the reason in err (no driver installed, or cuInit failing: no GPU, a driver
 * too old, ...). */
int hr_cuda_driver_open(hr_cuda_driver *drv, char *err, size_t err_size);
void hr_cuda_driver_close(hr_cuda_driver *drv);

/* One GPU as the driver describes it. */
typedef struct hr_cuda_device_info {
    char name[256];
    int sm;                      /* 10 * major + minor, e.g. 90 */
    int multiprocessors;
    size_t memory_bytes;
} hr_cuda_device_info;

/* Fills *info for GPU `ordinal`. Returns 0, or -1 with err. */
int hr_cuda_device_info_get(const hr_cuda_driver *drv, int ordinal, hr_cuda_device_info *info, char *err,
                            size_t err_size);

/* The driver's text for a CUresult ("CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"). */
const char *hr_cuda_error_string(const hr_cuda_driver *drv, int result, char *buf, size_t buf_size);

/* cuBLAS: its version and the calls behind matmul (cublasHandle_t and cudaStream_t are opaque
 * pointers; cublasOperation_t and cublasMath_t ints; strides long long, sizes int). */
typedef struct hr_cublas {
    void *handle;
    char path[512];
    int major, minor, patch;
    int (*GetProperty)(int type, int *value);
    int (*Create)(void **handle);
    int (*Destroy)(void *handle);
    int (*SetStream)(void *handle, void *stream);
    int (*SetMathMode)(void *handle, int mode);
    int (*SgemmStridedBatched)(void *handle, int transa, int transb, int m, int n, int k, const float *alpha,
                               const float *A, int lda, long long stride_a, const float *B, int ldb, long long stride_b,
                               const float *beta, float *C, int ldc, long long stride_c, int batch);
    int (*DgemmStridedBatched)(void *handle, int transa, int transb, int m, int n, int k, const double *alpha,
                               const double *A, int lda, long long stride_a, const double *B, int ldb,
                               long long stride_b, const double *beta, double *C, int ldc, long long stride_c,
                               int batch);
} hr_cublas;

/* Opens libcublas.so.13 (else .12; HYBRIDRT_CUBLAS_LIBRARY names a file). Returns 0 or -1 with err. */
int hr_cublas_open(hr_cublas *lib, char *err, size_t err_size);
void hr_cublas_close(hr_cublas *lib);

#endif
