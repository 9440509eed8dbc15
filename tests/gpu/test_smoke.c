/* GPU smoke test: on every GPU the driver sees, the fill kernel end to end (kernel cache, NVRTC on
 * a miss, module load, launch, copy back, compare) in a fresh cache directory, then again from the
 * cache. Skips, saying why, where there is no usable GPU (CI); the device tool's machines run it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/driver.h"
#include "cuda/smoke.h"
#include "jit/cache.h"
#include "test_util.h"

int main(void) {
    char err[2048], msg[3072];
    hr_cuda_driver drv;
    if (hr_cuda_driver_open(&drv, err, sizeof err) != 0) {
        printf("gpu.smoke: SKIPPED: no usable GPU (%s)\n", err);
        return test_summary("gpu.smoke");
    }
    int count = 0;
    if (drv.DeviceGetCount(&count) != 0 || count == 0) {
        printf("gpu.smoke: SKIPPED: the driver sees no GPU\n");
        hr_cuda_driver_close(&drv);
        return test_summary("gpu.smoke");
    }
    hr_nvrtc nvrtc;
    CHECK(hr_nvrtc_open(&nvrtc, err, sizeof err) == 0, "NVRTC beside a GPU: %s", err);
    char dir[] = "/tmp/hybridrt-gpu-smoke-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    hr_kernel_cache cache;
    CHECK(hr_kernel_cache_open(&cache, dir, &nvrtc, err, sizeof err) == 0, "cache: %s", err);
    for (int i = 0; i < count; i++) {
        int rc = hr_cuda_smoke_test(&drv, i, &cache, msg, sizeof msg);
        CHECK(rc == 0 && strstr(msg, "compiled now"), "GPU %d, cold cache: %s", i, msg);
        printf("%s\n", msg);
        rc = hr_cuda_smoke_test(&drv, i, &cache, msg, sizeof msg);
        CHECK(rc == 0 && strstr(msg, "from the cache"), "GPU %d, warm cache: %s", i, msg);
        printf("%s\n", msg);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    hr_nvrtc_close(&nvrtc);
    hr_cuda_driver_close(&drv);
    return test_summary("gpu.smoke");
}
