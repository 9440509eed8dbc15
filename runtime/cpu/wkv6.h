/* RWKV-6 (x060) WKV recurrence: a matrix-valued linear attention with a per-channel,
 * data-dependent decay. Per batch b and head h the state S is N x N, S[i][j] with i the key
 * channel and j the value channel:
 *   y_t[j]  = sum_i r_t[i] * (u[i] * k_t[i] * v_t[j] + S[i][j])
 *   S[i][j] <- exp(-exp(w_t[i])) * S[i][j] + k_t[i] * v_t[j]
 * w is the raw decay parameter (the per-step decay is exp(-exp(w)), as RWKV-LM x060) and u the
 * per-head "bonus" given to the current token. */

/* r, k, v, w, y: (B, T, H, N); u: (H, N); s0, sT: (B, H, N, N).
 * s0 NULL means a zero initial state; sT NULL means the final state is not wanted. */
int K(hr_cpu_wkv6_forward)(int64_t B, int64_t T, int64_t H, int64_t N,
                           const REAL *r, const REAL *k, const REAL *v, const REAL *w, const REAL *u,
                           const REAL *s0, REAL *y, REAL *sT);

/* dy: (B, T, H, N); dsT: (B, H, N, N) or NULL (no gradient flows into the final state).
 * Adds into dr, dk, dv, dw: (B, T, H, N); du: (H, N); ds0: (B, H, N, N); any may be NULL.
 * Recomputes the states from checkpoints taken every few steps, so scratch memory is
 * O(T/chunk * N*N) per thread rather than O(T * N*N). */
int K(hr_cpu_wkv6_backward)(int64_t B, int64_t T, int64_t H, int64_t N,
                            const REAL *r, const REAL *k, const REAL *v, const REAL *w, const REAL *u,
                            const REAL *s0, const REAL *dy, const REAL *dsT,
                            REAL *dr, REAL *dk, REAL *dv, REAL *dw, REAL *du, REAL *ds0);
