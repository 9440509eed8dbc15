/* Sequence kernels: embedding lookup, RWKV token shift, causal depthwise conv1d (Mamba-2's conv on xBC). */

/* Embedding lookup: out[i, :] = W[ids[i], :]. ids: (n) int64, already validated in [0, V) by the caller;
 * W: (V, C); out: (n, C). */
void K(hr_cpu_embedding_forward)(int64_t n, int64_t C, const int64_t *ids, const REAL *W, REAL *out);
/* dW[ids[i], :] += dout[i, :]. Deterministic: repeated ids are summed in increasing i order whatever
 * the thread count (parallel over column blocks of C, serial over i inside). */
int K(hr_cpu_embedding_backward)(int64_t n, int64_t V, int64_t C, const int64_t *ids,
                                 const REAL *dout, REAL *dW);

/* Token shift (RWKV's time_shift, nn.ZeroPad2d((0,0,1,-1))): x, out: (B, T, C);
 * out[b, t] = x[b, t-1] for t >= 1, out[b, 0] = state[b] where state: (B, C), or 0 if state is NULL. */
void K(hr_cpu_token_shift_forward)(int64_t B, int64_t T, int64_t C, const REAL *x, const REAL *state,
                                   REAL *out);
/* dx[b, t] += dout[b, t+1] for t < T-1; dstate[b] += dout[b, 0]. */
void K(hr_cpu_token_shift_backward)(int64_t B, int64_t T, int64_t C, const REAL *dout, REAL *dx,
                                    REAL *dstate);

/* Causal depthwise conv1d, as PyTorch nn.Conv1d(C, C, W, groups=C, padding=W-1) with the output cut to
 * the first T steps (what mamba_ssm's Mamba2 does on xBC), but in (B, T, C) layout:
 * out[b,t,c] = bias[c] + sum_{j=0}^{W-1} w[c,j] * xin(b, t-(W-1)+j, c)
 * where xin(b, s, c) = x[b,s,c] for s >= 0, and for s < 0 the carried state: state[b, (W-1)+s, c]
 * (state: (B, W-1, C), the last W-1 inputs before t = 0), or 0 if state is NULL.
 * x, out: (B, T, C); w: (C, W); bias: (C) or NULL. W is 2..4 (callers check). */
void K(hr_cpu_conv1d_causal_forward)(int64_t B, int64_t T, int64_t C, int64_t W, const REAL *x,
                                     const REAL *w, const REAL *bias, const REAL *state, REAL *out);
/* Gradients of the above: dx (B, T, C), dw (C, W), dbias (C), dstate (B, W-1, C); any may be NULL.
 * dstate does not depend on the state's value, so it is filled even when state is NULL (zero history).
 * Returns HR_CPU_ENOMEM if the scratch for the dw/dbias partial sums cannot be allocated. */
int K(hr_cpu_conv1d_causal_backward)(int64_t B, int64_t T, int64_t C, int64_t W, const REAL *x,
                                     const REAL *w, const REAL *state, const REAL *dout,
                                     REAL *dx, REAL *dw, REAL *dbias, REAL *dstate);
