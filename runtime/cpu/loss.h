/* Loss kernels: softmax cross-entropy over integer targets. */

/* Softmax cross-entropy with integer targets. logits: (n, V); targets: (n) int64, each in [0, V) or equal
 * to ignore_index (validated by the caller). Rows whose target is ignore_index are skipped.
 * *loss = mean over the counted rows of (logsumexp(logits[i]) - logits[i, targets[i]]), or 0 when no row
 * counts; *count = number of counted rows. lse: (n) logsumexp per row (saved for the backward; set to 0
 * for ignored rows). Numerically stable (subtract the row max). The sum over rows is deterministic
 * (per-row losses summed in increasing row order). Returns 0 (needs no scratch). */
int K(hr_cpu_cross_entropy_forward)(int64_t n, int64_t V, const REAL *logits, const int64_t *targets,
                                    int64_t ignore_index, REAL *loss, REAL *lse, int64_t *count);
/* dlogits[i, :] += dloss / count * (softmax(logits[i]) - onehot(targets[i])) for counted rows
 * (softmax recomputed from the saved lse). Nothing is added when count is 0. */
void K(hr_cpu_cross_entropy_backward)(int64_t n, int64_t V, const REAL *logits, const int64_t *targets,
                                      int64_t ignore_index, const REAL *lse, int64_t count, REAL dloss,
                                      REAL *dlogits);
