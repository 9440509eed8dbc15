/* Instantiates the optimizer kernels for float (_f32) and double (_f64); see kernels.h. */
#include "cpu/kernels.h"
#include <stdlib.h>
#include <string.h>
#include <tgmath.h> /* exp, tanh, ... resolve to the float or double version by argument type */

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
