/* Instantiates the optimizer kernels for float (_f32) and double (_f64); see kernels.h. */
#include "cpu/kernels.h"
#include <stdlib.h>
#include <string.h>
#include <tgmath.h> /* exp, tanh, ... resolve to the float or double version by argument type */

/* No a*b+c in these kernels is fused into one multiply-add: the GPU's sum of squares promises the
 * bits of hr_cpu_sum_squares (kernel_src/optim.cu rounds each mul and add). The build's -std=c11
 * already makes GCC contract nothing, and x86-64 without -march has no FMA; the pragmas keep it so
 * for clang (which contracts by default), GCC in GNU mode, and a CPU with FMA (-march=native,
 * aarch64). Measured: gcc -std=gnu11 -march=haswell and clang -march=haswell fused it without them. */
#pragma STDC FP_CONTRACT OFF
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off") /* GCC ignores the STDC pragma */
#endif

#define REAL float
#define K(name) name##_f32
#include "cpu/optim.inc"
#undef REAL
#undef K

#define REAL double
#define K(name) name##_f64
#include "cpu/optim.inc"
#undef REAL
#undef K
