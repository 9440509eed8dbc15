/* What a kernel image (the cubin or PTX that NVRTC built and the backend hands to cuModuleLoadData)
 * says about one kernel: its launch bounds, its parameters' sizes and its static shared memory, read
 * as a driver reads them. The emulator checks launches against these, as a GPU would refuse them. */
#ifndef HR_EMU_IMAGE_H
#define HR_EMU_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "emu_api.h"

typedef struct hr_emu_image_kernel {
    bool found;
    int max_threads;          /* __launch_bounds__, 0 when none */
    int nparams;              /* -1 when the image does not say */
    int param_size[HR_EMU_MAX_PARAMS];
    long long static_shared;  /* bytes */
    int registers;            /* per thread (cubin only; 0 when unknown) */
} hr_emu_image_kernel;

/* Reads kernel `name` (its lowered name) out of image (a cubin ELF, or NUL-terminated PTX). */
void hr_emu_image_kernel_info(const void *image, const char *name, hr_emu_image_kernel *info);

#endif
