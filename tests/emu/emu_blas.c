/* The cuBLAS of the emulated device: strided-batched GEMMs in cuBLAS's column-major terms, computed by
 * the host's BLAS item by item, every operand checked to lie inside one live device buffer. As cuBLAS,
 * C is not read when beta is 0 (new device memory is NaN here). */
#include <cblas.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "emu_device.h"

#define EXPORT __attribute__((visibility("default")))

enum { BLAS_OK = 0, BLAS_NOT_INITIALIZED = 1, BLAS_INVALID_VALUE = 7, BLAS_EXECUTION_FAILED = 13 };
enum { OP_N = 0, OP_T = 1 };

static int handle_object, handles;

EXPORT int cublasGetProperty(int type, int *v) {
    if (type < 0 || type > 2) return BLAS_INVALID_VALUE;
    *v = type == 0 ? 13 : 0;
    return BLAS_OK;
}
EXPORT int cublasCreate_v2(void **h) {
    handles++;
    *h = &handle_object;
    return BLAS_OK;
}
EXPORT int cublasDestroy_v2(void *h) {
    if (h != &handle_object || handles == 0) return BLAS_NOT_INITIALIZED;
    handles--;
    return BLAS_OK;
}
EXPORT int cublasSetStream_v2(void *h, void *s) { return h == &handle_object && !s ? BLAS_OK : BLAS_INVALID_VALUE; }
EXPORT int cublasSetMathMode(void *h, int mode) { return h == &handle_object && mode == 0 ? BLAS_OK : BLAS_INVALID_VALUE; }

/* Elements one item of a column-major rows x cols matrix with leading dimension ld spans. */
static int64_t extent(int64_t rows, int64_t cols, int64_t ld) { return ld * (cols - 1) + rows; }

/* The checks cuBLAS makes, and that every operand of every item lies inside one device buffer. */
static int check(void *h, int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc, const void *A, long long sa,
                 const void *B, long long sb, const void *C, long long sc, int batch, size_t elem) {
    if (h != &handle_object) return BLAS_NOT_INITIALIZED;
    if ((ta != OP_N && ta != OP_T) || (tb != OP_N && tb != OP_T) || m < 0 || n < 0 || k < 0 || batch < 0 ||
        lda < (ta == OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) || ldb < (tb == OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) ||
        ldc < (m > 1 ? m : 1) || sa < 0 || sb < 0 || sc < 0)
        return BLAS_INVALID_VALUE;
    if (!m || !n || !batch) return BLAS_OK;
    int64_t ea = k ? extent(ta == OP_N ? m : k, ta == OP_N ? k : m, lda) : 0;
    int64_t eb = k ? extent(tb == OP_N ? k : n, tb == OP_N ? n : k, ldb) : 0;
    int64_t ec = extent(m, n, ldc), last = batch - 1;
    if ((ea && hr_emu_check_range(A, (size_t)(last * sa + ea) * elem, "cuBLAS GEMM operand A")) ||
        (eb && hr_emu_check_range(B, (size_t)(last * sb + eb) * elem, "cuBLAS GEMM operand B")) ||
        hr_emu_check_range(C, (size_t)(last * sc + ec) * elem, "cuBLAS GEMM result C"))
        return BLAS_EXECUTION_FAILED;
    return BLAS_OK;
}

/* Column j of item b of C, as bytes. */
static unsigned char *column(void *C, long long sc, int ldc, int b, int j, size_t elem) {
    return (unsigned char *)C + ((int64_t)b * sc + (int64_t)j * ldc) * (int64_t)elem;
}

/* Both precisions: each item through the host's BLAS; C cleared first when beta is 0 (not read). */
static int gemm(bool f64, void *h, int ta, int tb, int m, int n, int k, double alpha, const void *A, int lda,
                long long sa, const void *B, int ldb, long long sb, double beta, void *C, int ldc, long long sc,
                int batch) {
    size_t elem = f64 ? sizeof(double) : sizeof(float);
    int rc = check(h, ta, tb, m, n, k, lda, ldb, ldc, A, sa, B, sb, C, sc, batch, elem);
    if (rc || !m || !n) return rc;
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    for (int b = 0; b < batch; b++) {
        if (beta == 0)
            for (int j = 0; j < n; j++) memset(column(C, sc, ldc, b, j, elem), 0, elem * (size_t)m);
        if (!k) { /* an empty product: C = beta C */
            for (int j = 0; j < n && beta != 1 && beta != 0; j++)
                for (int i = 0; i < m; i++) {
                    if (f64) ((double *)column(C, sc, ldc, b, j, elem))[i] *= beta;
                    else ((float *)column(C, sc, ldc, b, j, elem))[i] *= (float)beta;
                }
            continue;
        }
        if (f64)
            cblas_dgemm(CblasColMajor, opa, opb, m, n, k, alpha, (const double *)A + (int64_t)b * sa, lda,
                        (const double *)B + (int64_t)b * sb, ldb, beta, (double *)C + (int64_t)b * sc, ldc);
        else
            cblas_sgemm(CblasColMajor, opa, opb, m, n, k, (float)alpha, (const float *)A + (int64_t)b * sa, lda,
                        (const float *)B + (int64_t)b * sb, ldb, (float)beta, (float *)C + (int64_t)b * sc, ldc);
    }
    return BLAS_OK;
}

EXPORT int cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A,
                                     int lda, long long sa, const float *B, int ldb, long long sb, const float *beta,
                                     float *C, int ldc, long long sc, int batch) {
    return gemm(false, h, ta, tb, m, n, k, *alpha, A, lda, sa, B, ldb, sb, *beta, C, ldc, sc, batch);
}

EXPORT int cublasDgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const double *alpha,
                                     const double *A, int lda, long long sa, const double *B, int ldb, long long sb,
                                     const double *beta, double *C, int ldc, long long sc, int batch) {
    return gemm(true, h, ta, tb, m, n, k, *alpha, A, lda, sa, B, ldb, sb, *beta, C, ldc, sc, batch);
}
