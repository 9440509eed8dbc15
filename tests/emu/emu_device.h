/* What the parts of the emulated device (emu_driver.c, emu_blas.c) share: CUresult codes and the
 * error the latest failing call set. */
#ifndef HR_EMU_DEVICE_H
#define HR_EMU_DEVICE_H

#include <stddef.h>

/* CUresult values (cuda.h) */
enum {
    HR_CU_OK = 0, HR_CU_INVALID_VALUE = 1, HR_CU_OUT_OF_MEMORY = 2, HR_CU_NOT_INITIALIZED = 3, HR_CU_NO_DEVICE = 100,
    HR_CU_INVALID_DEVICE = 101, HR_CU_INVALID_IMAGE = 200, HR_CU_INVALID_HANDLE = 400, HR_CU_NOT_FOUND = 500,
    HR_CU_ILLEGAL_ADDRESS = 700, HR_CU_LAUNCH_FAILED = 719, HR_CU_NOT_SUPPORTED = 801
};

/* Sets the error text cuGetErrorString gives for `code` (and prints it to stderr); returns code. */
int hr_emu_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 0 when [p, p + bytes) lies inside one live device buffer, else -1 with the error set. */
int hr_emu_check_range(const void *p, size_t bytes, const char *what);

/* __syncthreads() of the kernel libraries. */
void hr_emu_barrier(const char *file, int line);

#endif
