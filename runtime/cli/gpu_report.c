/* What the GPU libraries report, for `hybridrt version` and `hybridrt devices`: which driver, NVRTC
 * and cuBLAS were found (or why not), and the GPUs. Opens the libraries, prints, closes them. */
#include <stdio.h>

#include "cli/commands.h"
#include <string.h>

#include "cuda/driver.h"
#include "cuda/smoke.h"
#include "jit/cache.h"
#include "jit/nvrtc.h"

/* "sm_75 sm_80 ..." into buf. */
static void arch_list(const hr_nvrtc *lib, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < lib->n_archs && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%ssm_%d", i ? " " : "", lib->archs[i]);
}

void hr_print_gpu_libraries(void) {
    char err[1024];
    hr_cuda_driver drv;
    if (hr_cuda_driver_open(&drv, err, sizeof err) == 0) {
        int count = 0;
        drv.DeviceGetCount(&count);
        printf("CUDA:    driver %d.%d (%s), %d GPU%s\n", drv.version / 1000, drv.version % 1000 / 10, drv.path,
               count, count == 1 ? "" : "s");
        hr_cuda_driver_close(&drv);
    } else {
        printf("CUDA:    not usable, the CPU backend runs: %s\n", err);
    }
    hr_nvrtc nvrtc;
    if (hr_nvrtc_open(&nvrtc, err, sizeof err) == 0) {
        char archs[512];
        arch_list(&nvrtc, archs, sizeof archs);
        printf("NVRTC:   %d.%d (%s); targets %s\n", nvrtc.major, nvrtc.minor, nvrtc.path, archs);
        hr_nvrtc_close(&nvrtc);
    } else {
        printf("NVRTC:   not found: %s\n", err);
    }
    hr_cublas cublas;
    if (hr_cublas_open(&cublas, err, sizeof err) == 0) {
        printf("cuBLAS:  %d.%d.%d (%s)\n", cublas.major, cublas.minor, cublas.patch, cublas.path);
        hr_cublas_close(&cublas);
    } else {
        printf("cuBLAS:  not found: %s\n", err);
    }
}

/* `--smoke`: one end-to-end kernel run per GPU. Returns 1 when any fails. */
static int smoke_all(const hr_cuda_driver *drv, int count) {
    char err[2048];
    hr_nvrtc nvrtc;
    if (hr_nvrtc_open(&nvrtc, err, sizeof err) != 0) {
        printf("smoke: NVRTC is needed to build the kernels: %s\n", err);
        return 1;
    }
    hr_kernel_cache cache;
    if (hr_kernel_cache_open(&cache, NULL, &nvrtc, err, sizeof err) != 0) {
        printf("smoke: %s\n", err);
        hr_nvrtc_close(&nvrtc);
        return 1;
    }
    if (cache.warning[0]) fprintf(stderr, "warning: %s\n", cache.warning);
    int failed = 0;
    for (int i = 0; i < count; i++) {
        char msg[3072];
        int rc = hr_cuda_smoke_test(drv, i, &cache, msg, sizeof msg);
        printf("  cuda:%d  smoke %s: %s\n", i, rc ? "FAILED" : "ok", msg);
        failed |= rc != 0;
    }
    hr_nvrtc_close(&nvrtc);
    return failed;
}

int hr_cmd_devices(int argc, char **argv) {
    if (hr_wants_help(argc, argv)) {
        printf("usage: hybridrt devices [--smoke]\n\nLists the NVIDIA GPUs the driver sees: index, name, SM architecture, multiprocessors\n"
               "and memory, with the driver version. Exits 1 (saying why) when there is no usable GPU.\n\n"
               "  --smoke  also run a kernel on each GPU end to end (from the kernel cache, NVRTC on a miss;\n"
               "           loaded, launched, read back and compared); exits 1 when one fails\n");
        return 0;
    }
    int smoke = argc == 1 && strcmp(argv[0], "--smoke") == 0;
    if (argc > 0 && !smoke) {
        fprintf(stderr, "hybridrt devices: unexpected argument '%s' (see hybridrt devices --help)\n", argv[0]);
        return 2;
    }
    char err[1024];
    hr_cuda_driver drv;
    if (hr_cuda_driver_open(&drv, err, sizeof err) != 0) {
        printf("no usable GPU: %s\n", err);
        return 1;
    }
    int count = 0, rc = drv.DeviceGetCount(&count);
    if (rc != 0 || count == 0) {
        char text[256];
        printf("no GPU: the driver %d.%d (%s) sees none%s%s\n", drv.version / 1000, drv.version % 1000 / 10, drv.path,
               rc ? ": " : "", rc ? hr_cuda_error_string(&drv, rc, text, sizeof text) : "");
        hr_cuda_driver_close(&drv);
        return 1;
    }
    printf("driver %d.%d (%s), %d GPU%s\n", drv.version / 1000, drv.version % 1000 / 10, drv.path, count,
           count == 1 ? "" : "s");
    int status = 0;
    for (int i = 0; i < count; i++) {
        hr_cuda_device_info info;
        if (hr_cuda_device_info_get(&drv, i, &info, err, sizeof err) != 0) {
            printf("  cuda:%d  %s\n", i, err);
            status = 1;
            continue;
        }
        printf("  cuda:%d  %s  sm_%d  %d SMs  %.1f GiB\n", i, info.name, info.sm, info.multiprocessors,
               (double)info.memory_bytes / (1024.0 * 1024.0 * 1024.0));
    }
    if (smoke) status |= smoke_all(&drv, count);
    hr_cuda_driver_close(&drv);
    return status;
}
