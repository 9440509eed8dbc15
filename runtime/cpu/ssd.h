/* Mamba-2 SSD (state space duality) recurrence, as mamba_ssm's ssd_minimal / selective_state_update,
 * computed by a sequential scan. Per batch b and head h the state is P x N (head dim x state dim),
 * and head h reads the B/C projections of group g = h / (H / G):
 *   a_t       = exp(dt_t * A)
 *   h_t[p][n] = a_t * h_{t-1}[p][n] + dt_t * x_t[p] * Bm_t[n]
 *   y_t[p]    = sum_n Cm_t[n] * h_t[p][n] + D * x_t[p]        (h_t includes the current input)
 * dt is already positive (softplus(dt + dt_bias) is the caller's) and A already negative
 * (-exp(A_log) is the caller's). */

/* x, y: (B, T, H, P); dt: (B, T, H); A: (H); Bm, Cm: (B, T, G, N), H divisible by G;
 * D: (H) or NULL (no skip term); h0, hT: (B, H, P, N) or NULL (zero initial state / final state
 * not wanted). Writes y (and hT). */
int K(hr_cpu_ssd_forward)(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                          const REAL *x, const REAL *dt, const REAL *A, const REAL *Bm, const REAL *Cm,
                          const REAL *D, const REAL *h0, REAL *y, REAL *hT);

/* dy: (B, T, H, P); dhT: (B, H, P, N) or NULL (no gradient flows into the final state).
 * Adds into dx (B, T, H, P), ddt (B, T, H), dA (H), dBm, dCm (B, T, G, N), dD (H), dh0 (B, H, P, N);
 * any may be NULL (dD is left alone when D is NULL). Recomputes the states from checkpoints taken
 * every L = max(32, ceil(sqrt(T))) steps, so scratch is O((T/L + L) * P*N) per thread, plus
 * (B, T, H, N) partial buffers for dBm / dCm when several heads share a group. */
int K(hr_cpu_ssd_backward)(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N,
                           const REAL *x, const REAL *dt, const REAL *A, const REAL *Bm, const REAL *Cm,
                           const REAL *D, const REAL *h0, const REAL *dy, const REAL *dhT,
                           REAL *dx, REAL *ddt, REAL *dA, REAL *dBm, REAL *dCm, REAL *dD, REAL *dh0);
