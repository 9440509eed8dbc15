#include "cuda/smoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"

/* One dtype: fill n elements with `value` on the device, read them back, compare. */
static int fill_check(const hr_cuda_driver *drv, hr_kernel_cache *cache, const char *target, int f64, char *msg,
                      size_t msg_size, hr_cache_source *how) {
    hr_kernel_spec spec = {.template_file = "fill.cu", .name_expression = f64 ? "hr_fill<double>" : "hr_fill<float>",
                           .target = target};
    hr_nvrtc_output out;
    char text[256];
    if (hr_kernel_cache_get(cache, &spec, &out, how, msg, msg_size) != 0) {
        hr_nvrtc_output_free(&out); /* a failed compile leaves its log */
        return -1;
    }
    const long long n = (1 << 20) + 3; /* not a multiple of any block size */
    size_t elem = f64 ? sizeof(double) : sizeof(float), bytes = (size_t)n * elem;
    void *module = NULL, *function = NULL;
    unsigned long long dptr = 0;
    char *host = malloc(bytes);
    int rc = 0, status = -1;
    double dvalue = 3.25;
    float fvalue = 3.25f;
    if (!host) {
        snprintf(msg, msg_size, "out of memory");
        goto done;
    }
    if ((rc = drv->ModuleLoadData(&module, out.image)) != 0) {
        snprintf(msg, msg_size, "loading the %s image of %s: %s", out.is_ptx ? "PTX" : "cubin", spec.name_expression,
                 hr_cuda_error_string(drv, rc, text, sizeof text));
        goto done;
    }
    if ((rc = drv->ModuleGetFunction(&function, module, out.lowered_name)) != 0) {
        snprintf(msg, msg_size, "no function %s in the module: %s", out.lowered_name,
                 hr_cuda_error_string(drv, rc, text, sizeof text));
        goto done;
    }
    if ((rc = drv->MemAlloc(&dptr, bytes)) != 0) {
        snprintf(msg, msg_size, "allocating %zu bytes: %s", bytes, hr_cuda_error_string(drv, rc, text, sizeof text));
        goto done;
    }
    memset(host, 0, bytes);
    long long count = n;
    void *params[] = {&dptr, f64 ? (void *)&dvalue : (void *)&fvalue, &count};
    unsigned blocks = (unsigned)((n + 255) / 256);
    if ((rc = drv->MemcpyHtoD(dptr, host, bytes)) != 0 ||
        (rc = drv->LaunchKernel(function, blocks, 1, 1, 256, 1, 1, 0, NULL, params, NULL)) != 0 ||
        (rc = drv->CtxSynchronize()) != 0 || (rc = drv->MemcpyDtoH(host, dptr, bytes)) != 0) {
        snprintf(msg, msg_size, "running %s: %s", spec.name_expression, hr_cuda_error_string(drv, rc, text, sizeof text));
        goto done;
    }
    for (long long i = 0; i < n; i++) {
        double v = f64 ? ((double *)host)[i] : ((float *)host)[i];
        if (v != 3.25) {
            snprintf(msg, msg_size, "%s wrote %g at element %lld of %lld, expected 3.25", spec.name_expression, v, i, n);
            goto done;
        }
    }
    status = 0;
done:
    if (dptr) drv->MemFree(dptr);
    if (module) drv->ModuleUnload(module);
    free(host);
    hr_nvrtc_output_free(&out);
    return status;
}

int hr_cuda_smoke_test(const hr_cuda_driver *drv, int ordinal, hr_kernel_cache *cache, char *msg, size_t msg_size) {
    char err[1024], target[32], text[256];
    hr_cuda_device_info info;
    if (hr_cuda_device_info_get(drv, ordinal, &info, err, sizeof err) != 0) {
        snprintf(msg, msg_size, "%s", err);
        return -1;
    }
    if (!cache->nvrtc) {
        snprintf(msg, msg_size, "NVRTC is needed to find or build the kernels");
        return -1;
    }
    if (hr_nvrtc_target_for(cache->nvrtc, info.sm, target, sizeof target, err, sizeof err) < 0) {
        snprintf(msg, msg_size, "%s: %s", info.name, err);
        return -1;
    }
    int dev = 0, rc;
    void *ctx = NULL;
    if ((rc = drv->DeviceGet(&dev, ordinal)) != 0 || (rc = drv->DevicePrimaryCtxRetain(&ctx, dev)) != 0 ||
        (rc = drv->CtxSetCurrent(ctx)) != 0) {
        snprintf(msg, msg_size, "%s: no context: %s", info.name, hr_cuda_error_string(drv, rc, text, sizeof text));
        return -1;
    }
    double t0 = hr_now();
    hr_cache_source how32 = HR_CACHE_HIT, how64 = HR_CACHE_HIT;
    char what[1024] = "";
    int status = fill_check(drv, cache, target, 0, what, sizeof what, &how32);
    if (!status) status = fill_check(drv, cache, target, 1, what, sizeof what, &how64);
    double dt = hr_now() - t0;
    drv->CtxSetCurrent(NULL);
    drv->DevicePrimaryCtxRelease(dev);
    if (status) {
        snprintf(msg, msg_size, "%s (%s): %s", info.name, target, what);
        return -1;
    }
    snprintf(msg, msg_size, "%s: fill f32 and f64 over 1,048,579 elements correct on %s (kernels %s), %.1f ms", info.name,
             target, how32 == HR_CACHE_HIT && how64 == HR_CACHE_HIT ? "from the cache" : "compiled now", dt * 1e3);
    return 0;
}
