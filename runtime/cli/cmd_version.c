/* hybridrt version: what this binary was built with and what it found. */
#include <cblas.h>
#include <lua.h>
#include <omp.h>
#include <stdio.h>

#include "cli/commands.h"

#ifndef HR_VERSION
#define HR_VERSION "0.0.0"
#endif
#ifndef HR_BUILD_TYPE
#define HR_BUILD_TYPE "unknown"
#endif

int hr_cmd_version(int argc, char **argv) {
    if (hr_wants_help(argc, argv)) {
        printf("usage: hybridrt version\n\nPrints the hybridrt version and build, the Lua and BLAS libraries, the CPU\n"
               "thread count and the state of the GPU backend.\n");
        return 0;
    }
    printf("hybridrt %s (%s build, C11, gcc %s)\n", HR_VERSION, HR_BUILD_TYPE, __VERSION__);
    printf("Lua:     %s\n", LUA_RELEASE);
    int parallel = openblas_get_parallel(); /* 0 sequential, 1 pthreads, 2 OpenMP */
    printf("BLAS:    OpenBLAS (%s; %s kernels; %s threads)\n", openblas_get_config(), openblas_get_corename(),
           parallel == 2 ? "OpenMP" : parallel == 1 ? "pthread" : "no");
    printf("threads: %d (OpenMP; set OMP_NUM_THREADS to change)\n", omp_get_max_threads());
    printf("CUDA:    not available: this build has the CPU backend only\n");
    return 0;
}
