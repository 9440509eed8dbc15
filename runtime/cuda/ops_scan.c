/* CUDA launchers of the sequence scans: RWKV-6's WKV (kernel_src/wkv6.cu) and Mamba-2's SSD scan
 * (kernel_src/ssd.cu), forward and backward, as the CPU backend (cpu/backend.c) runs them.
 *
 * Grid, block, shared memory and scratch sizes come from launch_plan.h, which refuses the shapes the
 * kernels cannot run (a head size without a compiled specialization, a state too large for shared
 * memory); the refusal becomes the op's error. Both ops have two outputs, y and the final state; the
 * backward runs with a zero y gradient when y was freed (the CPU's grad_or_zeros) and with no final
 * state gradient when none reached it (the kernels take dsT / dhT == NULL). Every input gradient may
 * be NULL: the kernels skip those; the per-(b, h) sums they always write (du_part, head_sums) go to
 * scratch here. */
#include <stdio.h>

#include "cuda/backend.h"
#include "cuda/launch_plan.h"

/* hr_cuda_launch with the argument count taken from the list. */
#define LAUNCH(file, name, grid, block, shared, ...) HR_CUDA_LAUNCH(ctx, file, name, grid, block, shared, __VA_ARGS__)
#define PTR(t) HR_KTENSOR(t)
#define GIN(i) hr_node_in_grad(n, i)

static int any_grad(const hr_node *n) {
    for (int i = 0; i < n->n_in; i++)
        if (hr_node_in_grad(n, i)) return 1;
    return 0;
}

/* ---- wkv6: in r, k, v, w, u, s0 (s0 may be NULL); out y, sT ---- */

static int wkv6_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *r = n->in[0];
    const int64_t B = r->shape[0], T = r->shape[1], H = r->shape[2], N = r->shape[3];
    if (B * H == 0) return 0;
    hr_launch_plan plan;
    char err[256], name[96];
    if (hr_wkv6_gpu_plan(B, T, H, N, (int)hr_dtype_size(r->dtype), 0, &plan, err, sizeof err))
        return hr_error(ctx, "%s", err);
    snprintf(name, sizeof name, "hr_wkv6_forward<%s, %d>", hr_cuda_type_name(r->dtype), (int)N);
    return LAUNCH("wkv6.cu", name, plan.grid, plan.block, plan.shared_bytes, HR_KI64(B), HR_KI64(T), HR_KI64(H),
                  PTR(n->in[0]), PTR(n->in[1]), PTR(n->in[2]), PTR(n->in[3]), PTR(n->in[4]), PTR(n->in[5]),
                  PTR(n->out[0]), PTR(n->out[1]));
}

/* One scratch buffer: [checkpoints and chunk states | du_part (B, H, N) | a zero dy when y was freed]. */
static int wkv6_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *r = n->in[0];
    const hr_dtype dt = r->dtype;
    const int64_t B = r->shape[0], T = r->shape[1], H = r->shape[2], N = r->shape[3];
    if (!any_grad(n) || B * H == 0) return 0;
    hr_launch_plan plan;
    char err[256], name[96], dflt[96];
    /* CHUNK, as the tuner chose it for this shape (the plan sizes the scratch for it) */
    static const char *const dims[3] = {"pairs", "T", "N"};
    const int64_t shape[3] = {B * H, T, N};
    int chunk;
    snprintf(dflt, sizeof dflt, "hr_wkv6_backward<%s, %d, %d>", hr_cuda_type_name(dt), (int)N, HR_WKV6_GPU_CHUNK);
    if (hr_cuda_tuned(ctx, "wkv6.cu", dflt, (int)N, 3, dims, shape, name, sizeof name, &chunk)) return -1;
    if (hr_wkv6_gpu_plan_chunk(B, T, H, N, (int)hr_dtype_size(dt), 1, chunk, &plan, err, sizeof err))
        return hr_error(ctx, "%s", err);
    const int64_t esize = (int64_t)hr_dtype_size(dt);
    hr_tensor *dy = hr_node_out_grad(n, 0);
    const int64_t zero_elems = dy ? 0 : hr_tensor_numel(r);
    uint64_t buf = 0;
    if (hr_cuda_scratch(ctx, (plan.scratch_elems + plan.du_part_elems + zero_elems) * esize, &buf)) return -1;
    const uint64_t states = buf, du_part = states + (uint64_t)(plan.scratch_elems * esize);
    const uint64_t dy_zero = du_part + (uint64_t)(plan.du_part_elems * esize);
    int rc = zero_elems ? hr_cuda_memzero(ctx, dy_zero, zero_elems * esize) : 0;
    if (!rc)
        rc = LAUNCH("wkv6.cu", name, plan.grid, plan.block, plan.shared_bytes, HR_KI64(B), HR_KI64(T), HR_KI64(H),
                    PTR(n->in[0]), PTR(n->in[1]), PTR(n->in[2]), PTR(n->in[3]), PTR(n->in[4]), PTR(n->in[5]),
                    HR_KPTR(dy ? hr_cuda_ptr(dy) : dy_zero), PTR(hr_node_out_grad(n, 1)), PTR(GIN(0)), PTR(GIN(1)),
                    PTR(GIN(2)), PTR(GIN(3)), HR_KPTR(du_part), PTR(GIN(5)), HR_KPTR(states));
    if (!rc && GIN(4)) { /* du: the pairs' shares summed over the batch in order */
        snprintf(name, sizeof name, "hr_wkv6_reduce_du<%s>", hr_cuda_type_name(dt));
        rc = LAUNCH("wkv6.cu", name, hr_cuda_grid_for(H * N, 256), 256, 0, HR_KI64(B), HR_KI64(H), HR_KI64(N),
                    HR_KPTR(du_part), PTR(GIN(4)));
    }
    hr_cuda_scratch_free(ctx, buf);
    return rc ? -1 : 0;
}

/* ---- ssd_scan: in x, dt, A, Bm, Cm, D, h0 (D, h0 may be NULL); out y, hT ---- */

static int ssd_forward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *x = n->in[0];
    const hr_dtype dt = x->dtype;
    const int64_t B = x->shape[0], T = x->shape[1], H = x->shape[2], P = x->shape[3];
    const int64_t G = n->in[3]->shape[2], N = n->in[3]->shape[3];
    if (B * H == 0) return 0;
    hr_launch_plan plan;
    char err[256], name[96];
    if (hr_ssd_gpu_plan(B, T, H, P, G, N, (int)hr_dtype_size(dt), 0, &plan, err, sizeof err))
        return hr_error(ctx, "%s", err);
    uint64_t state = 0; /* (B*H, N, P): the running state, n-major */
    if (hr_cuda_scratch(ctx, plan.scratch_elems * (int64_t)hr_dtype_size(dt), &state)) return -1;
    snprintf(name, sizeof name, "hr_ssd_forward<%s, %d>", hr_cuda_type_name(dt), (int)P);
    int rc = LAUNCH("ssd.cu", name, plan.grid, plan.block, plan.shared_bytes, HR_KI64(B), HR_KI64(T), HR_KI64(H),
                    HR_KI64(G), HR_KI64(N), PTR(n->in[0]), PTR(n->in[1]), PTR(n->in[2]), PTR(n->in[3]),
                    PTR(n->in[4]), PTR(n->in[5]), PTR(n->in[6]), PTR(n->out[0]), PTR(n->out[1]), HR_KPTR(state));
    hr_cuda_scratch_free(ctx, state);
    return rc ? -1 : 0;
}

/* out[r, g, :] += the rows of the group's heads in part, heads in order. */
static int ssd_reduce_groups(hr_ctx *ctx, hr_dtype dt, int64_t rows, int64_t G, int64_t hpg, int64_t N,
                             uint64_t part, hr_tensor *out) {
    char name[96];
    snprintf(name, sizeof name, "hr_ssd_reduce_groups<%s>", hr_cuda_type_name(dt));
    return LAUNCH("ssd.cu", name, hr_cuda_grid_for(rows * G * N, 256), 256, 0, HR_KI64(rows), HR_KI64(G),
                  HR_KI64(hpg), HR_KI64(N), HR_KPTR(part), PTR(out));
}

/* One scratch buffer: [checkpoints, chunk states, carry | head_sums (2, B, H) | then zeroed: per-head
 * dBm rows, per-head dCm rows (B, T, H, N) when heads share a group and that gradient is wanted (the
 * kernel adds into them) | a zero dy when y was freed]. */
static int ssd_backward(hr_ctx *ctx, hr_node *n) {
    const hr_tensor *x = n->in[0];
    const hr_dtype dt = x->dtype;
    const int64_t B = x->shape[0], T = x->shape[1], H = x->shape[2], P = x->shape[3];
    const int64_t G = n->in[3]->shape[2], N = n->in[3]->shape[3];
    if (!any_grad(n) || B * H == 0) return 0;
    hr_launch_plan plan;
    char err[256], name[96];
    if (hr_ssd_gpu_plan(B, T, H, P, G, N, (int)hr_dtype_size(dt), 1, &plan, err, sizeof err))
        return hr_error(ctx, "%s", err);
    const int64_t esize = (int64_t)hr_dtype_size(dt), hpg = H / G, rows_elems = B * T * H * N;
    hr_tensor *dy = hr_node_out_grad(n, 0), *dA = GIN(2), *dBm = GIN(3), *dCm = GIN(4), *dD = GIN(5);
    const int partial = hpg > 1; /* heads of a group would add into the same dBm / dCm rows */
    const int64_t dB_elems = partial && dBm ? rows_elems : 0, dC_elems = partial && dCm ? rows_elems : 0;
    const int64_t dy_elems = dy ? 0 : hr_tensor_numel(x), zero_elems = dB_elems + dC_elems + dy_elems;
    uint64_t buf = 0;
    if (hr_cuda_scratch(ctx, (plan.scratch_elems + 2 * B * H + zero_elems) * esize, &buf)) return -1;
    const uint64_t work = buf, head_sums = work + (uint64_t)(plan.scratch_elems * esize);
    const uint64_t dB_part = head_sums + (uint64_t)(2 * B * H * esize), dC_part = dB_part + (uint64_t)(dB_elems * esize);
    const uint64_t dy_zero = dC_part + (uint64_t)(dC_elems * esize);
    int rc = zero_elems ? hr_cuda_memzero(ctx, dB_part, zero_elems * esize) : 0;
    const uint64_t dB_rows = partial ? (dB_elems ? dB_part : 0) : hr_cuda_ptr(dBm);
    const uint64_t dC_rows = partial ? (dC_elems ? dC_part : 0) : hr_cuda_ptr(dCm);
    snprintf(name, sizeof name, "hr_ssd_backward<%s, %d>", hr_cuda_type_name(dt), (int)P);
    if (!rc)
        rc = LAUNCH("ssd.cu", name, plan.grid, plan.block, plan.shared_bytes, HR_KI64(B), HR_KI64(T), HR_KI64(H),
                    HR_KI64(G), HR_KI64(N), HR_KI64(plan.chunk), PTR(n->in[0]), PTR(n->in[1]), PTR(n->in[2]),
                    PTR(n->in[3]), PTR(n->in[4]), PTR(n->in[5]), PTR(n->in[6]), HR_KPTR(dy ? hr_cuda_ptr(dy) : dy_zero),
                    PTR(hr_node_out_grad(n, 1)), PTR(GIN(0)), PTR(GIN(1)), HR_KPTR(dB_rows), HR_KPTR(dC_rows),
                    PTR(GIN(6)), HR_KPTR(head_sums), HR_KPTR(work));
    if (!rc && (dA || dD)) { /* dA, dD: the pairs' sums over the batch in order */
        snprintf(name, sizeof name, "hr_ssd_reduce_heads<%s>", hr_cuda_type_name(dt));
        rc = LAUNCH("ssd.cu", name, hr_cuda_grid_for(H, 256), 256, 0, HR_KI64(B), HR_KI64(H), HR_KPTR(head_sums),
                    PTR(dA), PTR(dD));
    }
    if (!rc && dB_elems) rc = ssd_reduce_groups(ctx, dt, B * T, G, hpg, N, dB_part, dBm);
    if (!rc && dC_elems) rc = ssd_reduce_groups(ctx, dt, B * T, G, hpg, N, dC_part, dCm);
    hr_cuda_scratch_free(ctx, buf);
    return rc ? -1 : 0;
}

void hr_cuda_register_scan(hr_ctx *ctx) {
    ctx->ops[HR_OP_WKV6].forward[HR_DEVICE_CUDA] = wkv6_forward;
    ctx->ops[HR_OP_WKV6].backward[HR_DEVICE_CUDA] = wkv6_backward;
    ctx->ops[HR_OP_SSD_SCAN].forward[HR_DEVICE_CUDA] = ssd_forward;
    ctx->ops[HR_OP_SSD_SCAN].backward[HR_DEVICE_CUDA] = ssd_backward;
}
