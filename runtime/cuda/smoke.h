/* An end-to-end check of the GPU path on one device, before any op runs there: the fill kernel for
 * the device's architecture comes from the kernel cache (NVRTC on a miss), is loaded into the
 * device's primary context, launched over an odd-sized buffer for f32 and f64, copied back and
 * compared element by element. What `hybridrt devices --smoke` and the gpu.smoke test run. */
#ifndef HR_CUDA_SMOKE_H
#define HR_CUDA_SMOKE_H

#include <stddef.h>

#include "cuda/driver.h"
#include "jit/cache.h"

/* Returns 0 with a one-line summary in msg (target, cached or compiled, times), or -1 with what
 * failed in msg. */
int hr_cuda_smoke_test(const hr_cuda_driver *drv, int ordinal, hr_kernel_cache *cache, char *msg, size_t msg_size);

#endif
