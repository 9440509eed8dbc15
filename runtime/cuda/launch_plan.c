#include "cuda/launch_plan.h"

#include <stdio.h>

/* a * b, or -1 when it overflows int64 (all inputs are >= 0) */
static int64_t mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > INT64_MAX / a) return -1;
    return a * b;
}

static int head_size_ok(int64_t n) { return n == 32 || n == 64 || n == 128; }

int hr_wkv6_gpu_plan(int64_t B, int64_t T, int64_t H, int64_t N, int elem_size, int backward, hr_launch_plan *plan,
                     char *err, size_t err_size) {
    return hr_wkv6_gpu_plan_chunk(B, T, H, N, elem_size, backward, HR_WKV6_GPU_CHUNK, plan, err, err_size);
}

int hr_wkv6_gpu_plan_chunk(int64_t B, int64_t T, int64_t H, int64_t N, int elem_size, int backward, int64_t chunk,
                           hr_launch_plan *plan, char *err, size_t err_size) {
    *plan = (hr_launch_plan){0};
    if (!head_size_ok(N))
        return snprintf(err, err_size, "wkv6 on the GPU: head size %lld is not one of 32, 64, 128 (the compiled "
                                       "specializations)", (long long)N), -1;
    if (elem_size != 4 && elem_size != 8)
        return snprintf(err, err_size, "wkv6 on the GPU: f32 or f64 only (element size %d)", elem_size), -1;
    if (B < 0 || T < 0 || H < 0) return snprintf(err, err_size, "wkv6 on the GPU: negative size"), -1;
    if (chunk < 1) return snprintf(err, err_size, "wkv6 on the GPU: chunk length %lld < 1", (long long)chunk), -1;
    int64_t pairs = mul(B, H);
    if (pairs < 0 || pairs > HR_GPU_MAX_GRID_X)
        return snprintf(err, err_size, "wkv6 on the GPU: B*H = %lld*%lld (batch x heads) is over the grid limit "
                                       "of %lld blocks", (long long)B, (long long)H, (long long)HR_GPU_MAX_GRID_X), -1;
    plan->grid = pairs;
    plan->block = N;
    plan->chunk = chunk;
    if (!backward) return 0;
    int64_t nchunk = T / chunk + (T % chunk != 0);
    int64_t per_pair = mul(nchunk + chunk, N * N);
    int64_t total = mul(pairs, per_pair);
    if (per_pair < 0 || total < 0 || mul(total, elem_size) < 0)
        return snprintf(err, err_size, "wkv6 on the GPU: the backward's scratch for B=%lld T=%lld H=%lld N=%lld "
                                       "does not fit 64-bit sizes", (long long)B, (long long)T, (long long)H,
                        (long long)N), -1;
    plan->scratch_elems = total;
    plan->du_part_elems = mul(pairs, N);
    return 0;
}

int64_t hr_ssd_chunk_len(int64_t T) {
    int64_t L = 1;
    while (L * L < T) L++;
    return L < 32 ? 32 : L;
}

int hr_ssd_gpu_plan(int64_t B, int64_t T, int64_t H, int64_t P, int64_t G, int64_t N, int elem_size, int backward,
                    hr_launch_plan *plan, char *err, size_t err_size) {
    *plan = (hr_launch_plan){0};
    if (!head_size_ok(P))
        return snprintf(err, err_size, "ssd_scan on the GPU: head dim %lld is not one of 32, 64, 128 (the compiled "
                                       "specializations)", (long long)P), -1;
    if (elem_size != 4 && elem_size != 8)
        return snprintf(err, err_size, "ssd_scan on the GPU: f32 or f64 only (element size %d)", elem_size), -1;
    if (B < 0 || T < 0 || H < 0 || N < 1 || G < 1 || H % G != 0)
        return snprintf(err, err_size, "ssd_scan on the GPU: bad sizes (H=%lld must be a multiple of G=%lld, N >= 1)",
                        (long long)H, (long long)G), -1;
    int64_t pairs = mul(B, H);
    if (pairs < 0 || pairs > HR_GPU_MAX_GRID_X)
        return snprintf(err, err_size, "ssd_scan on the GPU: B*H = %lld*%lld is over the grid limit of %lld blocks",
                        (long long)B, (long long)H, (long long)HR_GPU_MAX_GRID_X), -1;
    /* shared memory: Bm_t and Cm_t (dynamic, 2N), plus in the backward a (P, 33) tile and P+1 sums,
     * static arrays that ptxas aligns to 16 bytes each (jit.resources checks this against ptxas) */
    int64_t fixed = backward ? (P * 33 * elem_size + 15) / 16 * 16 + ((P + 1) * elem_size + 15) / 16 * 16 : 0;
    int64_t max_n = (HR_GPU_STATIC_SHARED_LIMIT - fixed) / (2 * elem_size);
    if (N > max_n)
        return snprintf(err, err_size, "ssd_scan on the GPU: state size N=%lld is over the %lld that fit the %lld "
                                       "bytes of shared memory of a block (P=%lld, %s)", (long long)N,
                        (long long)max_n, (long long)HR_GPU_STATIC_SHARED_LIMIT, (long long)P,
                        elem_size == 4 ? "f32" : "f64"), -1;
    plan->grid = pairs;
    plan->block = P;
    plan->shared_bytes = 2 * N * elem_size;
    int64_t state = mul(N, P);
    if (!backward) {
        plan->scratch_elems = mul(pairs, state); /* the running state, n-major */
    } else {
        int64_t L = hr_ssd_chunk_len(T), nc = T / L + (T % L != 0);
        plan->chunk = L;
        int64_t per_pair = mul(nc + L + 1, state);
        plan->scratch_elems = mul(pairs, per_pair);
    }
    if (state < 0 || plan->scratch_elems < 0 || mul(plan->scratch_elems, elem_size) < 0)
        return snprintf(err, err_size, "ssd_scan on the GPU: the scratch for B=%lld T=%lld H=%lld P=%lld N=%lld does "
                                       "not fit 64-bit sizes", (long long)B, (long long)T, (long long)H, (long long)P,
                        (long long)N), -1;
    return 0;
}
