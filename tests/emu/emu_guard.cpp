// The low guard of a kernel library's shared memory: compiled and linked before the generated file,
// so the linker puts it first in the library's thread-local block (the generated file defines the
// high one, which GCC puts last). Never written: 0xFF at rest, so a kernel reading before its first
// array reads NaN, and a write there is reported (emu_kernels.c).
#include "emu_shim.h"

HR_EMU_SHARED_GUARD(hr_emu_shared_guard_low)
