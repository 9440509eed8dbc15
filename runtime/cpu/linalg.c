/* Host linear algebra for parameter initialisation: orthonormal columns through LAPACK's Householder
 * QR (dgeqrf + dorgqr, shipped inside OpenBLAS). Registered into the context by the CPU backend. */
#include "cpu/backend.h"

#include <stdlib.h>

/* Fortran LAPACK entry points (OpenBLAS exports them; Debian ships no lapack.h next to its cblas.h). */
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work, const int *lwork,
             int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau, double *work,
             const int *lwork, int *info);

int hr_cpu_orthonormalize(int64_t m64, int64_t n64, double *a) {
    if (m64 < n64 || n64 < 1 || m64 > 1 << 30) return -1;
    int m = (int)m64, n = (int)n64, info = 0, lwork = -1;
    double *tau = malloc((size_t)n * sizeof *tau), *r_diag = malloc((size_t)n * sizeof *r_diag), query;
    if (!tau || !r_diag) goto fail;
    dgeqrf_(&m, &n, a, &m, tau, &query, &lwork, &info); /* workspace size query */
    lwork = (int)query > n ? (int)query : n;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work) goto fail;
    dgeqrf_(&m, &n, a, &m, tau, work, &lwork, &info);
    if (info == 0) {
        for (int j = 0; j < n; j++) r_diag[j] = a[j + (int64_t)j * m];
        dorgqr_(&m, &n, &n, a, &m, tau, work, &lwork, &info);
    }
    free(work);
    if (info != 0) goto fail;
    /* Sign convention of torch.nn.init.orthogonal_: column j times sign(R_jj), which makes the result
     * uniformly distributed over orthogonal matrices. */
    for (int j = 0; j < n; j++)
        if (r_diag[j] < 0)
            for (int i = 0; i < m; i++) a[i + (int64_t)j * m] = -a[i + (int64_t)j * m];
    free(tau);
    free(r_diag);
    return 0;
fail:
    free(tau);
    free(r_diag);
    return -1;
}
