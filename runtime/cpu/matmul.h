/* Batched matrix products through CBLAS. */

/* C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] for b in [0, batch).
 * op(A) is (m, k), op(B) is (k, n), C is (m, n); A is stored (m, k) or, when trans_a, (k, m);
 * B likewise. stride_a/b/c are the element distances between batch items (0 broadcasts A or B). */
void K(hr_cpu_gemm)(int64_t batch, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    REAL alpha, const REAL *a, int64_t stride_a, const REAL *b, int64_t stride_b,
                    REAL beta, REAL *c, int64_t stride_c);
