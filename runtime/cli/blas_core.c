/* Makes sure OpenBLAS runs kernels that fit the CPU.
 *
 * OpenBLAS (Debian's 0.3.21, built for every x86 core) picks its kernels from the CPU model number
 * when the library loads; a CPU newer than its table gets the oldest kernels, Prescott (SSE3). On
 * this project's AVX-512 machines that made products 4x slower (38 instead of 150 GFLOP/s on 2 cores).
 * The documented override is the OPENBLAS_CORETYPE variable, read only while the library loads,
 * before main. So when OpenBLAS chose a pre-AVX2 core on a CPU that has AVX2, main sets the variable
 * from the instruction sets the CPU reports and re-executes the binary once (the variable, now set,
 * stops a second round). A value the user set is never touched. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"

/* The best OpenBLAS core for what this CPU supports, or NULL below AVX2. */
static const char *core_for_this_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16")) return "Cooperlake";
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

/* OpenBLAS's fallbacks for CPUs it does not know: cores without AVX2. */
static int is_pre_avx2_core(const char *name) {
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                      "Sandybridge", "Katmai", "Coppermine", "Northwood", "Banias", NULL};
    for (int i = 0; old[i]; i++)
        if (strcmp(name, old[i]) == 0) return 1;
    return 0;
}

void hr_fix_blas_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *want = core_for_this_cpu(), *have = openblas_get_corename();
    if (!want || !have || !is_pre_avx2_core(have)) return;
    /* exec the binary's real path: exec'ing /proc/self/exe itself would rename the process "exe" */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || setenv("OPENBLAS_CORETYPE", want, 0) != 0) return;
    self[len] = '\0';
    execv(self, argv); /* returns only on failure: then run on with the slow kernels */
}
