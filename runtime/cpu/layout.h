/* Data movement for views and concatenation. */

/* dst[dst_offset + sum_d i_d * dst_stride[d]] += src[i] for every index i of `shape` (src contiguous).
 * The backward of a view: scatters the view's gradient into its base's contiguous gradient. */
void K(hr_cpu_scatter_add)(int ndim, const int64_t *shape, const REAL *src, REAL *dst, const int64_t *dst_stride,
                           int64_t dst_offset);
/* dst[i] = src[sum_d i_d * src_stride[d]] for every index i of `shape` (dst contiguous): makes a
 * strided view contiguous. */
void K(hr_cpu_gather)(int ndim, const int64_t *shape, const REAL *src, const int64_t *src_stride, REAL *dst);
/* Concatenation of n arrays, each viewed as (outer, lens[i], inner), along the middle dim. */
void K(hr_cpu_concat_forward)(int64_t outer, int64_t inner, int n, const int64_t *lens, const REAL *const *xs,
                              REAL *out);
/* dxs[i] += the matching block of dout (NULL entries are skipped). */
void K(hr_cpu_concat_backward)(int64_t outer, int64_t inner, int n, const int64_t *lens, const REAL *dout,
                               REAL *const *dxs);
