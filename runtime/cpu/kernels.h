/* CPU kernels: raw-pointer compute routines, one family per file, forward and backward side by side.
 *
 * Every family is written once in terms of REAL (the element type) and K(name) (the name with a
 * precision suffix), then instantiated twice: float (`_f32`, the training path) and double (`_f64`,
 * used by the finite-difference gradient checks). The family header `cpu/<family>.h` declares its
 * routines and the body `cpu/<family>.inc` defines them; neither has an include guard because each
 * is included once per precision (here for declarations, in `cpu/<family>.c` for definitions).
 * Inside a .inc, use exp/tanh/log1p/sqrt/fabs directly: <tgmath.h> picks the precision.
 *
 * Conventions every kernel follows:
 *  - Tensors are dense, contiguous, row-major; shapes are int64_t and every index product is 64-bit.
 *  - Backward routines ADD into gradient buffers (dx += ...). A gradient pointer may be NULL: that
 *    input needs no gradient and the routine skips it.
 *  - Results do not depend on the number of OpenMP threads: no atomics, and every reduction across
 *    a parallel loop goes through per-task partial buffers summed afterwards in a fixed order.
 *  - Routines return 0 on success or HR_CPU_ENOMEM when scratch memory cannot be allocated; they
 *    never abort. Shape validation is the caller's job (core/ops), not the kernel's.
 */
#ifndef HR_CPU_KERNELS_H
#define HR_CPU_KERNELS_H

#include <stdint.h>
#include <stddef.h>

#define HR_CPU_ENOMEM 1

/* Unary activations understood by hr_cpu_unary_* (elementwise.h). */
typedef enum {
    HR_UNARY_EXP, HR_UNARY_TANH, HR_UNARY_SIGMOID, HR_UNARY_SILU, HR_UNARY_GELU_TANH,
    HR_UNARY_SOFTPLUS, HR_UNARY_RELU, HR_UNARY_RELU_SQUARED, HR_UNARY_COUNT
} hr_unary_kind;

/* Binary elementwise operations understood by hr_cpu_binary_* (elementwise.h). */
typedef enum { HR_BINARY_ADD, HR_BINARY_SUB, HR_BINARY_MUL, HR_BINARY_DIV, HR_BINARY_COUNT } hr_binary_kind;

#define REAL float
#define K(name) name##_f32
#include "cpu/elementwise.h"
#include "cpu/matmul.h"
#include "cpu/layout.h"
#include "cpu/norm.h"
#include "cpu/sequence.h"
#include "cpu/loss.h"
#include "cpu/wkv6.h"
#include "cpu/ssd.h"
#undef REAL
#undef K

#define REAL double
#define K(name) name##_f64
#include "cpu/elementwise.h"
#include "cpu/matmul.h"
#include "cpu/layout.h"
#include "cpu/norm.h"
#include "cpu/sequence.h"
#include "cpu/loss.h"
#include "cpu/wkv6.h"
#include "cpu/ssd.h"
#undef REAL
#undef K

#endif
