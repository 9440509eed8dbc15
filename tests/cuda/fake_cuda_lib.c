/* A stand-in libcuda.so.1 and libcublas.so for the command-line tests of the GPU path without a GPU
 * (tests/cli/test_fake_cuda.sh): HYBRIDRT_CUDA_DRIVER_LIBRARY and HYBRIDRT_CUBLAS_LIBRARY point the
 * binary at this library, which answers as one compute-capability-8.0 GPU whose memory is host memory
 * (zeroed when allocated), whose modules load any image and whose kernels and GEMMs do nothing. So
 * train.lua, sample.lua and hybridrt tune run their whole device path (the backend, kernel cache and
 * NVRTC compiles, transfers, checkpoints) with all-zero numbers. The argument-level checks of every
 * launch are tests/cuda/test_fake_gpu.c's. Only the C ABI is declared: no CUDA header. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

enum { OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2 };

EXPORT int cuInit(unsigned flags) { return flags ? INVALID_VALUE : OK; }
EXPORT int cuDriverGetVersion(int *v) { return *v = 13000, OK; }
EXPORT int cuDeviceGetCount(int *n) { return *n = 1, OK; }
EXPORT int cuDeviceGet(int *d, int ordinal) { return ordinal == 0 ? (*d = 0, OK) : INVALID_VALUE; }
EXPORT int cuDeviceGetName(char *name, int len, int d) {
    (void)d;
    strncpy(name, "fake GPU (libfakecuda)", (size_t)len - 1);
    name[len - 1] = '\0';
    return OK;
}
EXPORT int cuDeviceGetAttribute(int *v, int attribute, int d) {
    (void)d;
    *v = attribute == 75 ? 8 : attribute == 76 ? 0 : attribute == 16 ? 4 : 0; /* CC 8.0, 4 SMs */
    return OK;
}
EXPORT int cuDeviceTotalMem_v2(size_t *bytes, int d) { return (void)d, *bytes = (size_t)1 << 30, OK; }
EXPORT int cuGetErrorString(int result, const char **text) {
    *text = result == OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY (fake)" : "CUDA_ERROR (fake)";
    return OK;
}

static int context_object;
EXPORT int cuDevicePrimaryCtxRetain(void **ctx, int d) { return (void)d, *ctx = &context_object, OK; }
EXPORT int cuDevicePrimaryCtxRelease_v2(int d) { return (void)d, OK; }
EXPORT int cuCtxSetCurrent(void *ctx) { return (void)ctx, OK; }
EXPORT int cuCtxSynchronize(void) { return OK; }

EXPORT int cuMemAlloc_v2(unsigned long long *ptr, size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) return OUT_OF_MEMORY;
    *ptr = (unsigned long long)(uintptr_t)p;
    return OK;
}
EXPORT int cuMemFree_v2(unsigned long long ptr) { return free((void *)(uintptr_t)ptr), OK; }
EXPORT int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n) {
    return memcpy((void *)(uintptr_t)dst, src, n), OK;
}
EXPORT int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t n) {
    return memcpy(dst, (const void *)(uintptr_t)src, n), OK;
}
EXPORT int cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src, size_t n) {
    return memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n), OK;
}
EXPORT int cuMemsetD8_v2(unsigned long long dst, unsigned char v, size_t n) {
    return memset((void *)(uintptr_t)dst, v, n), OK;
}

static int module_object, function_object;
EXPORT int cuModuleLoadData(void **module, const void *image) {
    return image ? (*module = &module_object, OK) : INVALID_VALUE;
}
EXPORT int cuModuleUnload(void *module) { return module == &module_object ? OK : INVALID_VALUE; }
EXPORT int cuModuleGetFunction(void **f, void *module, const char *name) {
    return module == &module_object && name && *name ? (*f = &function_object, OK) : INVALID_VALUE;
}
EXPORT int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shared, void *stream, void **params, void **extra) {
    (void)shared, (void)stream, (void)params, (void)extra;
    return f == &function_object && gx && gy && gz && bx && by && bz && bx * by * bz <= 1024 ? OK : INVALID_VALUE;
}

static int event_objects[64], events_made;
EXPORT int cuEventCreate(void **e, unsigned flags) {
    if (flags || events_made == 64) return INVALID_VALUE;
    *e = &event_objects[events_made++];
    return OK;
}
EXPORT int cuEventRecord(void *e, void *stream) { return (void)e, (void)stream, OK; }
EXPORT int cuEventSynchronize(void *e) { return (void)e, OK; }
EXPORT int cuEventElapsedTime(float *ms, void *a, void *b) { return (void)a, (void)b, *ms = 0.001f, OK; }
EXPORT int cuEventDestroy_v2(void *e) { return (void)e, OK; }

/* cuBLAS: the version (13.0.0) and GEMMs that leave C as it is */
static int blas_object;
EXPORT int cublasGetProperty(int type, int *v) { return *v = type == 0 ? 13 : 0, OK; }
EXPORT int cublasCreate_v2(void **h) { return *h = &blas_object, OK; }
EXPORT int cublasDestroy_v2(void *h) { return h == &blas_object ? OK : INVALID_VALUE; }
EXPORT int cublasSetStream_v2(void *h, void *s) { return (void)s, h == &blas_object ? OK : INVALID_VALUE; }
EXPORT int cublasSetMathMode(void *h, int mode) { return (void)mode, h == &blas_object ? OK : INVALID_VALUE; }
EXPORT int cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A,
                                     int lda, long long sa, const float *B, int ldb, long long sb, const float *beta,
                                     float *C, int ldc, long long sc, int batch) {
    (void)ta, (void)tb, (void)alpha, (void)A, (void)sa, (void)B, (void)sb, (void)beta, (void)C, (void)sc;
    return h == &blas_object && m > 0 && n > 0 && k > 0 && lda > 0 && ldb > 0 && ldc >= m && batch > 0 ? OK
                                                                                                    : INVALID_VALUE;
}
EXPORT int cublasDgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const double *alpha,
                                     const double *A, int lda, long long sa, const double *B, int ldb, long long sb,
                                     const double *beta, double *C, int ldc, long long sc, int batch) {
    (void)ta, (void)tb, (void)alpha, (void)A, (void)sa, (void)B, (void)sb, (void)beta, (void)C, (void)sc;
    return h == &blas_object && m > 0 && n > 0 && k > 0 && lda > 0 && ldb > 0 && ldc >= m && batch > 0 ? OK
                                                                                                    : INVALID_VALUE;
}
