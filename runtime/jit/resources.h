/* What a kernel costs a GPU, known without one: registers, local memory (the stack frame, where
 * per-thread arrays and spills live) and static shared memory per thread block, as ptxas reports
 * them when NVRTC is given --ptxas-options=-v. The text is in the program log, one block per entry
 * function:
 *
 *   ptxas info    : Compiling entry function '_Z15hr_wkv6_forwardIfLi64EE...' for 'sm_90'
 *   ptxas info    : Function properties for _Z15hr_wkv6_forwardIfLi64EE...
 *   ptxas         .     256 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
 *   ptxas info    : Used 32 registers, used 1 barriers, 256 bytes cumulative stack size, 1024 bytes smem
 *
 * Only a cubin target (sm_XY) runs ptxas; PTX (compute_XY) is finished by the driver and has no
 * such figures. Dynamic shared memory is a launch argument (runtime/cuda/launch_plan.c), not here. */
#ifndef HR_JIT_RESOURCES_H
#define HR_JIT_RESOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "jit/cache.h"

typedef struct hr_kernel_resources {
    int registers;               /* per thread */
    int barriers;
    int64_t stack_frame;         /* bytes of local memory per thread: arrays ptxas could not keep in registers, spills */
    int64_t spill_stores, spill_loads; /* bytes per thread */
    int64_t shared;              /* static shared memory per block, bytes */
    int64_t constant;            /* constant banks (cmem[0]: the parameters, cmem[2]: literals), bytes; -1: not reported */
} hr_kernel_resources;

/* The figures ptxas printed in `log` for the entry function `lowered` (its mangled name). Returns 0,
 * or -1 when the log has no such entry (compiled without -v, or to PTX). */
int hr_ptxas_parse(const char *log, const char *lowered, hr_kernel_resources *out);

/* Compiles spec (a cubin target) in memory with ptxas's verbose output, past the cache, and reads
 * its figures. Returns 0, or -1 with err (the compile failed, or ptxas reported nothing for it). */
int hr_kernel_measure(const hr_nvrtc *nvrtc, const hr_kernel_spec *spec, hr_kernel_resources *out, char *err,
                      size_t err_size);

#endif
