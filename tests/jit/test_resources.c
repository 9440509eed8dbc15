/* What the hot kernels cost a GPU, from ptxas without one (runtime/jit/resources.c): WKV6, the SSD scan,
 * the norms and cross-entropy, forward and backward, at sm_80 and sm_90, each within the budget
 * below: registers, stack frame (local memory), spill stores and loads, static shared memory. Also
 * the ptxas log parser on a known log. Skips (exit 0, saying so) when NVRTC is not installed, unless
 * HYBRIDRT_REQUIRE_NVRTC=1 (CI sets it). The templates are the binary's copies (HYBRIDRT_KERNEL_SRC
 * may name a folder instead). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/launch_plan.h"
#include "jit/kernels.h"
#include "jit/resources.h"
#include "test_util.h"

/* The budgets, per thread (registers, stack, spills) and per block (static shared), for every
 * kernel of the hot templates at the default tuning values; the worst of sm_80 and sm_90 must fit.
 * docs/kernel-resources.md states the same (and has every kernel's figures). Set from NVRTC 13.0's
 * figures (2026-12):
 *   registers: the next multiple of 8 above today's (registers are granted 8 per thread at a time);
 *   stack:     today's + 16 bytes, and 0 where there is none (WKV6 keeps T S[N] per thread there:
 *              N * sizeof(T) in the forward, about twice that in the backward);
 *   spills:    0, except the 8-32 bytes ptxas spills today (the WKV6 backward but f64 N = 64 and 128,
 *              the SSD backward but f32 P = 128, the SSD forward f64 P = 64 at sm_80, the group norm
 *              forward f64 at sm_90), kept exactly so that a new spill or a bigger one fails;
 *   shared:    today's exactly: static arrays sized by template arguments; the SSD backward's are
 *              what runtime/cuda/launch_plan.c subtracts from 48 KiB to bound its dynamic 2 N
 *              elements, so they have no margin at all (print_ssd_headroom).
 * A change that grows a kernel past its budget must say why here and in the doc. */
typedef struct {
    const char *kernel;
    int registers, stack, spill_stores, spill_loads, shared;
} budget;

static const budget budgets[] = {
    /* kernel                                       regs  stack  spill st/ld  shared */
    {"hr_wkv6_forward<float, 32>",                   40,  144,  0,  0,   512},
    {"hr_wkv6_forward<float, 64>",                   40,  272,  0,  0,  1024},
    {"hr_wkv6_forward<float, 128>",                  40,  528,  0,  0,  2048},
    {"hr_wkv6_backward<float, 32, 16>",              88,  288, 20, 32,  4864},
    {"hr_wkv6_backward<float, 64, 16>",              88,  544, 20, 32,  9728},
    {"hr_wkv6_backward<float, 128, 16>",             88, 1056, 20, 32, 19456},
    {"hr_wkv6_forward<double, 32>",                  64,  272,  0,  0,  1024},
    {"hr_wkv6_forward<double, 64>",                  48,  528,  0,  0,  2048},
    {"hr_wkv6_forward<double, 128>",                 48, 1040,  0,  0,  4096},
    {"hr_wkv6_backward<double, 32, 16>",             96,  544, 12, 24,  9728},
    {"hr_wkv6_backward<double, 64, 16>",             88, 1040,  0,  0, 19456},
    {"hr_wkv6_backward<double, 128, 16>",            88, 2064,  0,  0, 38912},
    {"hr_wkv6_reduce_du<float>",                     32,    0,  0,  0,     0},
    {"hr_wkv6_reduce_du<double>",                    40,    0,  0,  0,     0},
    {"hr_ssd_forward<float, 32>",                    72,    0,  0,  0,     0},
    {"hr_ssd_forward<float, 64>",                    64,    0,  0,  0,     0},
    {"hr_ssd_forward<float, 128>",                   64,    0,  0,  0,     0},
    {"hr_ssd_backward<float, 32>",                  104,   24,  8,  8,  4368},
    {"hr_ssd_backward<float, 64>",                  104,   32, 16, 16,  8720},
    {"hr_ssd_backward<float, 128>",                 104,    0,  0,  0, 17424},
    {"hr_ssd_forward<double, 32>",                   80,    0,  0,  0,     0},
    {"hr_ssd_forward<double, 64>",                   64,   24,  8,  8,     0},
    {"hr_ssd_forward<double, 128>",                  64,    0,  0,  0,     0},
    {"hr_ssd_backward<double, 32>",                 104,   24,  8,  8,  8720},
    {"hr_ssd_backward<double, 64>",                 104,   24,  8,  8, 17424},
    {"hr_ssd_backward<double, 128>",                136,   24,  8,  8, 34832},
    {"hr_ssd_reduce_heads<float>",                   48,    0,  0,  0,     0},
    {"hr_ssd_reduce_heads<double>",                  48,    0,  0,  0,     0},
    {"hr_ssd_reduce_groups<float>",                  40,    0,  0,  0,     0},
    {"hr_ssd_reduce_groups<double>",                 40,    0,  0,  0,     0},
    {"hr_cross_entropy_rows<float, 256>",            56,    0,  0,  0,  3072},
    {"hr_cross_entropy_rows<double, 256>",           56,    0,  0,  0,  4096},
    {"hr_cross_entropy_mean<float>",                 32,    0,  0,  0,     0},
    {"hr_cross_entropy_mean<double>",                32,    0,  0,  0,     0},
    {"hr_cross_entropy_backward<float>",             40,    0,  0,  0,     0},
    {"hr_cross_entropy_backward<double>",            40,    0,  0,  0,     0},
    {"hr_group_norm_forward<float, 256>",            40,    0,  0,  0,  1024},
    {"hr_group_norm_backward_dx<float, 256>",        40,    0,  0,  0,  1024},
    {"hr_group_norm_backward_wb<float>",             48,    0,  0,  0,     0},
    {"hr_gated_rms_norm_forward<float, 256>",        40,    0,  0,  0,  1024},
    {"hr_gated_rms_norm_backward_dx<float, 256>",    40,    0,  0,  0,  1024},
    {"hr_gated_rms_norm_backward_w<float>",          48,    0,  0,  0,     0},
    {"hr_norm_sum_partials<float>",                  32,    0,  0,  0,     0},
    {"hr_group_norm_forward<double, 256>",           40,   24,  8,  8,  2048},
    {"hr_group_norm_backward_dx<double, 256>",       48,    0,  0,  0,  2048},
    {"hr_group_norm_backward_wb<double>",            48,    0,  0,  0,     0},
    {"hr_gated_rms_norm_forward<double, 256>",       40,    0,  0,  0,  2048},
    {"hr_gated_rms_norm_backward_dx<double, 256>",   48,    0,  0,  0,  2048},
    {"hr_gated_rms_norm_backward_w<double>",         56,    0,  0,  0,     0},
    {"hr_norm_sum_partials<double>",                 40,    0,  0,  0,     0},
};
static const int n_budgets = (int)(sizeof budgets / sizeof budgets[0]);
static const char *const hot_templates[] = {"wkv6.cu", "ssd.cu", "norm.cu", "loss.cu"};
static const char *const archs[] = {"sm_80", "sm_90"};

/* The template whose registered instantiations (head sizes 32, 64, 128) include `kernel`, or NULL. */
static const char *template_of(const char *kernel) {
    for (int t = 0; t < hr_kernel_template_count; t++)
        for (int k = 0; hr_kernel_templates[t].name_expressions[k]; k++)
            for (int h = 32; h <= 128; h *= 2) {
                char name[128];
                snprintf(name, sizeof name, hr_kernel_templates[t].name_expressions[k], h);
                if (strcmp(name, kernel) == 0) return hr_kernel_templates[t].file;
            }
    return NULL;
}

static bool has_budget(const char *kernel) {
    for (int i = 0; i < n_budgets; i++)
        if (strcmp(budgets[i].kernel, kernel) == 0) return true;
    return false;
}

/* Every budget names a registered kernel of a hot template, and every such kernel has one. */
static void test_coverage(void) {
    for (int i = 0; i < n_budgets; i++) {
        const char *t = template_of(budgets[i].kernel);
        bool hot = false;
        for (int h = 0; t && h < 4; h++) hot |= strcmp(t, hot_templates[h]) == 0;
        CHECK(hot, "budget for %s: not a kernel of wkv6.cu, ssd.cu, norm.cu or loss.cu (runtime/jit/kernels.c)",
              budgets[i].kernel);
    }
    for (int t = 0; t < hr_kernel_template_count; t++) {
        bool hot = false;
        for (int h = 0; h < 4; h++) hot |= strcmp(hr_kernel_templates[t].file, hot_templates[h]) == 0;
        for (int k = 0; hot && hr_kernel_templates[t].name_expressions[k]; k++)
            for (int h = 32; h <= 128; h *= 2) {
                char name[128];
                snprintf(name, sizeof name, hr_kernel_templates[t].name_expressions[k], h);
                CHECK(has_budget(name), "%s %s has no budget in tests/jit/test_resources.c", hr_kernel_templates[t].file,
                      name);
                if (!strstr(hr_kernel_templates[t].name_expressions[k], "%d")) break;
            }
    }
}

/* The parser on a log of ptxas 13.0's shape: two kernels, the second's figures not taken for the
 * first, constant banks summed, a kernel the log does not have. */
static void test_parse(void) {
    const char *log =
        "ptxas info    : 0 bytes gmem\n"
        "ptxas info    : Compiling entry function '_Z1aPf' for 'sm_80'\n"
        "ptxas info    : Function properties for _Z1aPf\n"
        "ptxas         .     528 bytes stack frame, 20 bytes spill stores, 32 bytes spill loads\n"
        "ptxas info    : Used 80 registers, used 1 barriers, 528 bytes cumulative stack size, 9728 bytes smem, "
        "512 bytes cmem[0], 8 bytes cmem[2]\n"
        "ptxas info    : Compile time = 16.2 ms\n"
        "ptxas info    : Compiling entry function '_Z1bPf' for 'sm_80'\n"
        "ptxas info    : Function properties for _Z1bPf\n"
        "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
        "ptxas info    : Used 24 registers, used 0 barriers\n";
    hr_kernel_resources r;
    CHECK(hr_ptxas_parse(log, "_Z1aPf", &r) == 0 && r.registers == 80 && r.barriers == 1 && r.stack_frame == 528 &&
              r.spill_stores == 20 && r.spill_loads == 32 && r.shared == 9728 && r.constant == 520,
          "parse a: %d regs, %lld stack, %lld/%lld spills, %lld shared, %lld cmem", r.registers,
          (long long)r.stack_frame, (long long)r.spill_stores, (long long)r.spill_loads, (long long)r.shared,
          (long long)r.constant);
    CHECK(hr_ptxas_parse(log, "_Z1bPf", &r) == 0 && r.registers == 24 && r.stack_frame == 0 && r.shared == 0 &&
              r.constant == -1,
          "parse b: %d regs, %lld shared, %lld cmem (none given: -1)", r.registers, (long long)r.shared,
          (long long)r.constant);
    CHECK(hr_ptxas_parse(log, "_Z1cPf", &r) == -1, "a kernel the log does not have");
    CHECK(hr_ptxas_parse("", "_Z1aPf", &r) == -1, "an empty log (PTX, or no -v)");
}

/* One figure against its budget. */
static void check_figure(const char *what, long long value, long long limit, const char *kernel, const char *arch) {
    CHECK(value <= limit, "%s %s: %lld %s, over its budget of %lld (tests/jit/test_resources.c, "
          "docs/kernel-resources.md)", kernel, arch, value, what, limit);
}

/* The SSD backward's shared memory at the largest state size its launch plan accepts: the static
 * arrays ptxas reports plus the plan's dynamic 2 N elements, within the 48 KiB a block gets without
 * opting in (the plan counts each static array aligned to 16 bytes, as ptxas places them). Printed
 * for docs/kernel-resources.md, and checked. */
static void print_ssd_headroom(const char *kernel, const char *arch, const hr_kernel_resources *r) {
    char type[16];
    int P = 0;
    if (sscanf(kernel, "hr_ssd_backward<%15[^,], %d>", type, &P) != 2) return;
    int elem = strcmp(type, "double") == 0 ? 8 : 4;
    int64_t lo = 1, hi = 1 << 20; /* the largest N the plan accepts, by bisection */
    char err[512];
    hr_launch_plan plan;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (hr_ssd_gpu_plan(1, 1, 1, P, 1, mid, elem, 1, &plan, err, sizeof err) == 0) lo = mid;
        else hi = mid - 1;
    }
    if (hr_ssd_gpu_plan(1, 1, 1, P, 1, lo, elem, 1, &plan, err, sizeof err) != 0) return;
    long long total = (long long)r->shared + (long long)plan.shared_bytes;
    printf("%s %s: at the largest N the plan allows (%lld), %lld static + %lld dynamic = %lld bytes of shared memory "
           "of %lld%s\n", kernel, arch, (long long)lo, (long long)r->shared, (long long)plan.shared_bytes, total,
           (long long)HR_GPU_STATIC_SHARED_LIMIT,
           total > HR_GPU_STATIC_SHARED_LIMIT ? ": OVER (a launch at that N fails; runtime/cuda/launch_plan.c)" : "");
    CHECK(total <= HR_GPU_STATIC_SHARED_LIMIT, "%s %s: the launch plan allows N=%lld, whose %lld bytes of shared memory "
          "are over %lld", kernel, arch, (long long)lo, total, (long long)HR_GPU_STATIC_SHARED_LIMIT);
}

static void test_budgets(const hr_nvrtc *lib) {
    int n = n_budgets * 2;
    hr_kernel_resources *res = calloc((size_t)n, sizeof *res);
    int *rc = calloc((size_t)n, sizeof *rc);
    char (*why)[1024] = calloc((size_t)n, sizeof *why);
    if (!res || !rc || !why) {
        CHECK(0, "out of memory");
        free(res), free(rc), free(why);
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++) {
        const budget *b = &budgets[i / 2];
        const char *file = template_of(b->kernel);
        hr_kernel_spec spec = {.template_file = file ? file : "?", .name_expression = b->kernel,
                               .target = archs[i % 2]};
        rc[i] = hr_nvrtc_supports(lib, i % 2 ? 90 : 80) ? hr_kernel_measure(lib, &spec, &res[i], why[i], sizeof why[i])
                                                         : 1;
    }
    for (int i = 0; i < n; i++) {
        const budget *b = &budgets[i / 2];
        const hr_kernel_resources *r = &res[i];
        const char *arch = archs[i % 2];
        if (rc[i] > 0) {
            printf("%s: NVRTC %d.%d does not list %s\n", b->kernel, lib->major, lib->minor, arch);
            continue;
        }
        CHECK(rc[i] == 0, "%s %s: %s", b->kernel, arch, why[i]);
        if (rc[i]) continue;
        check_figure("registers", r->registers, b->registers, b->kernel, arch);
        check_figure("bytes of stack frame", r->stack_frame, b->stack, b->kernel, arch);
        check_figure("bytes of spill stores", r->spill_stores, b->spill_stores, b->kernel, arch);
        check_figure("bytes of spill loads", r->spill_loads, b->spill_loads, b->kernel, arch);
        check_figure("bytes of static shared memory", r->shared, b->shared, b->kernel, arch);
        print_ssd_headroom(b->kernel, arch, r);
    }
    free(res), free(rc), free(why);
}

int main(void) {
    test_parse();
    test_coverage();
    char err[1024];
    hr_nvrtc lib;
    if (hr_nvrtc_open(&lib, err, sizeof err) != 0) {
        test_library_missing("jit.resources", "the budgets", "NVRTC", "HYBRIDRT_REQUIRE_NVRTC", err);
        return test_summary("jit.resources");
    }
    printf("NVRTC %d.%d: %d hot kernels at sm_80 and sm_90 against their budgets\n", lib.major, lib.minor, n_budgets);
    test_budgets(&lib);
    hr_nvrtc_close(&lib);
    return test_summary("jit.resources");
}
