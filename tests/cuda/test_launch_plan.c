/* Launch plans of the GPU sequence kernels (runtime/cuda/launch_plan.c): grid, block, shared memory
 * and scratch in 64-bit arithmetic at sizes past 2^31 elements, and the refusals that name the limit. */
#include <string.h>

#include "cuda/launch_plan.h"
#include "test_util.h"

static char err[512];

static void test_wkv6(void) {
    hr_launch_plan p;
    CHECK(hr_wkv6_gpu_plan(16, 64, 4, 32, 4, 0, &p, err, sizeof err) == 0 && p.grid == 64 && p.block == 32 &&
              p.scratch_elems == 0,
          "forward: a block of N threads per (batch, head)");
    CHECK(hr_wkv6_gpu_plan(16, 100, 4, 64, 4, 1, &p, err, sizeof err) == 0 && p.chunk == 16 &&
              p.scratch_elems == 64LL * (7 + 16) * 64 * 64 && p.du_part_elems == 64LL * 64,
          "backward scratch: (ceil(T/16) + 16) N^2 per pair, got %lld", (long long)p.scratch_elems);
    /* B*T*H*N past 2^31: the sizes stay exact */
    CHECK(hr_wkv6_gpu_plan(64, 1 << 20, 32, 128, 4, 1, &p, err, sizeof err) == 0 &&
              p.scratch_elems == 2048LL * ((1 << 20) / 16 + 16) * 128 * 128,
          "long sequences: %lld scratch elements", (long long)p.scratch_elems);
    CHECK(hr_wkv6_gpu_plan(2, 8, 2, 48, 4, 0, &p, err, sizeof err) == -1 &&
              strstr(err, "head size 48 is not one of 32, 64, 128"), "%s", err);
    CHECK(hr_wkv6_gpu_plan(2, 8, 2, 64, 2, 0, &p, err, sizeof err) == -1 && strstr(err, "f32 or f64 only"), "%s", err);
    CHECK(hr_wkv6_gpu_plan(1LL << 31, 8, 2, 64, 4, 0, &p, err, sizeof err) == -1 && strstr(err, "over the grid limit"),
          "%s", err);
    CHECK(hr_wkv6_gpu_plan(1LL << 20, 1LL << 40, 1024, 128, 8, 1, &p, err, sizeof err) == -1 &&
              strstr(err, "does not fit 64-bit sizes"), "%s", err);
}

static void test_ssd(void) {
    hr_launch_plan p;
    CHECK(hr_ssd_chunk_len(10) == 32 && hr_ssd_chunk_len(4096) == 64 && hr_ssd_chunk_len(4097) == 65,
          "chunk length max(32, ceil(sqrt T)) as the CPU's");
    CHECK(hr_ssd_gpu_plan(8, 64, 4, 64, 1, 64, 4, 0, &p, err, sizeof err) == 0 && p.grid == 32 && p.block == 64 &&
              p.shared_bytes == 2 * 64 * 4 && p.scratch_elems == 32LL * 64 * 64,
          "forward: the state in scratch, Bm and Cm in shared memory");
    CHECK(hr_ssd_gpu_plan(8, 100, 4, 64, 2, 64, 4, 1, &p, err, sizeof err) == 0 && p.chunk == 32 &&
              p.scratch_elems == 32LL * (4 + 32 + 1) * 64 * 64,
          "backward scratch: (nc + L + 1) P N per pair, got %lld", (long long)p.scratch_elems);
    CHECK(hr_ssd_gpu_plan(2, 8, 2, 96, 1, 64, 4, 0, &p, err, sizeof err) == -1 && strstr(err, "head dim 96"), "%s", err);
    CHECK(hr_ssd_gpu_plan(2, 8, 3, 64, 2, 64, 4, 0, &p, err, sizeof err) == -1 && strstr(err, "multiple of G=2"), "%s", err);
    /* f64 backward at P = 128: 128*33 and 129 doubles of static shared memory, each array aligned to
     * 16 bytes as ptxas places them (33792 + 1040 = 34832 bytes), leave (49152 - 34832) / 16 = 895
     * states' worth for Bm and Cm */
    CHECK(hr_ssd_gpu_plan(1, 8, 1, 128, 1, 895, 8, 1, &p, err, sizeof err) == 0, "N = 895 fits");
    CHECK(hr_ssd_gpu_plan(1, 8, 1, 128, 1, 896, 8, 1, &p, err, sizeof err) == -1 &&
              strstr(err, "state size N=896 is over the 895 that fit"), "%s", err);
    /* f32 at P = 128: 16896 + 528 = 17424 bytes (not the 17412 of the unaligned arrays, which let
     * N = 3967 through at 49160 bytes): (49152 - 17424) / 8 = 3966 */
    CHECK(hr_ssd_gpu_plan(1, 8, 1, 128, 1, 3966, 4, 1, &p, err, sizeof err) == 0, "f32 N = 3966 fits");
    CHECK(hr_ssd_gpu_plan(1, 8, 1, 128, 1, 3967, 4, 1, &p, err, sizeof err) == -1 &&
              strstr(err, "state size N=3967 is over the 3966 that fit"), "%s", err);
    CHECK(hr_ssd_gpu_plan(4, 1LL << 22, 64, 128, 8, 128, 4, 1, &p, err, sizeof err) == 0 &&
              p.scratch_elems == 256LL * ((1LL << 22) / 2048 + 2048 + 1) * 128 * 128,
          "long sequences: exact 64-bit scratch, %lld", (long long)p.scratch_elems);
}

int main(void) {
    test_wkv6();
    test_ssd();
    return test_summary("cuda.launch_plan");
}
