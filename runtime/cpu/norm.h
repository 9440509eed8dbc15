/* Normalisations over the last dim: layer norm, RMS norm, per-head group norm (RWKV-6's ln_x) and
 * Mamba-2's gated RMS norm. rows = the product of all leading dims; every tensor is contiguous.
 * Statistics are saved by the forward (mean, rstd) and reused by the backward. The forward may be
 * given NULL mean / rstd when no backward follows. Weight and bias gradients are sums over rows,
 * formed per fixed chunk of rows and then across chunks in order, so they are reproducible. */

/* Layer norm over the last dim. x, y: (rows, C); w, b: (C) or NULL (no scale / no shift).
 * y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps), var the biased variance (PyTorch's).
 * mean, rstd: (rows), saved for the backward. */
void K(hr_cpu_layer_norm_forward)(int64_t rows, int64_t C, REAL eps, const REAL *x, const REAL *w,
                                  const REAL *b, REAL *y, REAL *mean, REAL *rstd);
int K(hr_cpu_layer_norm_backward)(int64_t rows, int64_t C, const REAL *x, const REAL *w,
                                  const REAL *mean, const REAL *rstd, const REAL *dy,
                                  REAL *dx, REAL *dw, REAL *db);

/* RMS norm over the last dim: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps). w: (C) or NULL.
 * x, y: (rows, C); rstd: (rows). */
void K(hr_cpu_rms_norm_forward)(int64_t rows, int64_t C, REAL eps, const REAL *x, const REAL *w,
                                REAL *y, REAL *rstd);
int K(hr_cpu_rms_norm_backward)(int64_t rows, int64_t C, const REAL *x, const REAL *w,
                                const REAL *rstd, const REAL *dy, REAL *dx, REAL *dw);

/* Group norm per head (RWKV-6's ln_x = nn.GroupNorm(H, C, eps) applied to (B*T, C)): each row of C = G*S
 * channels is split into G groups of S contiguous channels; each group is layer-normalised on its own
 * (biased variance), then the per-channel affine w, b: (C) (either may be NULL) is applied.
 * x, y: (rows, C); mean, rstd: (rows, G). */
void K(hr_cpu_group_norm_forward)(int64_t rows, int64_t G, int64_t S, REAL eps, const REAL *x,
                                  const REAL *w, const REAL *b, REAL *y, REAL *mean, REAL *rstd);
int K(hr_cpu_group_norm_backward)(int64_t rows, int64_t G, int64_t S, const REAL *x, const REAL *w,
                                  const REAL *mean, const REAL *rstd, const REAL *dy,
                                  REAL *dx, REAL *dw, REAL *db);

/* Gated RMS norm, Mamba-2's RMSNormGated with norm_before_gate=False (mamba_ssm):
 * g = y * silu(z); each row's C = G*S channels form G groups of S (group_size); per group
 * out = g * rstd * w with rstd = 1/sqrt(mean_over_group(g^2) + eps); w: (C) or NULL. rstd: (rows, G).
 * y, z, out: (rows, C). */
void K(hr_cpu_gated_rms_norm_forward)(int64_t rows, int64_t G, int64_t S, REAL eps, const REAL *y,
                                      const REAL *z, const REAL *w, REAL *out, REAL *rstd);
int K(hr_cpu_gated_rms_norm_backward)(int64_t rows, int64_t G, int64_t S, const REAL *y,
                                      const REAL *z, const REAL *w, const REAL *rstd,
                                      const REAL *dout, REAL *dy, REAL *dz, REAL *dw);
