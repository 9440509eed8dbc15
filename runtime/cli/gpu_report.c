/* What the GPU libraries report, for `hybridrt version` and `hybridrt devices`: which driver, NVRTC
 * and cuBLAS were found (or why not), and the GPUs. Opens the libraries, prints, closes them. */
#include <stdio.h>

#include "cli/commands.h"
#include "cuda/driver.h"
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

int hr_cmd_devices(int argc, char **argv) {
    if (hr_wants_help(argc, argv)) {
        printf("usage: hybridrt devices\n\nLists the NVIDIA GPUs the driver sees: index, name, SM architecture, multiprocessors\n"
               "and memory, with the driver version. Exits 1 (saying why) when there is no usable GPU.\n");
        return 0;
    }
    if (argc > 0) {
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
    hr_cuda_driver_close(&drv);
    return status;
}
