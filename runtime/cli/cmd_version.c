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
               "thread count, and the CUDA driver, NVRTC and cuBLAS found (each opened at run time;\n"
               "HYBRIDRT_CUDA_DRIVER_LIBRARY, HYBRIDRT_NVRTC_LIBRARY and HYBRIDRT_CUBLAS_LIBRARY name files\n"
               "to use instead), or why not.\n");
        return 0;
    }
    printf("hybridrt %s (%s build, C11, gcc %s)\n", HR_VERSION, HR_BUILD_TYPE, __VERSION__);
    printf("Lua:     %s\n", LUA_RELEASE);
    int parallel = openblas_get_parallel(); /* 0 sequential, 1 pthreads, 2 OpenMP */
    printf("BLAS:    OpenBLAS (%s; %s kernels; %s threads)\n", openblas_get_config(), openblas_get_corename(),
           parallel == 2 ? "OpenMP" : parallel == 1 ? "pthread" : "no");
    printf("threads: %d (OpenMP; set OMP_NUM_THREADS to change)\n", omp_get_max_threads());
    hr_print_gpu_libraries();
    return 0;
}
