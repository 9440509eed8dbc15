#include "cuda/driver.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "jit/dynlib.h"

/* CUdevice_attribute values (cuda.h) */
enum { ATTR_MULTIPROCESSOR_COUNT = 16, ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76 };

const char *hr_cuda_error_string(const hr_cuda_driver *drv, int result, char *buf, size_t buf_size) {
    const char *text = NULL;
    if (drv->GetErrorString && drv->GetErrorString(result, &text) == 0 && text)
        snprintf(buf, buf_size, "%s (CUresult %d)", text, result);
    else snprintf(buf, buf_size, "CUresult %d", result);
    return buf;
}

int hr_cuda_driver_open(hr_cuda_driver *drv, char *err, size_t err_size) {
    memset(drv, 0, sizeof *drv);
    static const char *const names[] = {"libcuda.so.1", NULL};
    char why[768];
    drv->handle = hr_dl_open("HYBRIDRT_CUDA_DRIVER_LIBRARY", names, drv->path, sizeof drv->path, why, sizeof why);
    if (!drv->handle) {
        snprintf(err, err_size, "no NVIDIA driver: %s", why);
        return -1;
    }
    int rc = 0;
#define LOAD(field, name) HR_DL_LOAD(rc, drv->handle, drv->path, drv, field, name, err, err_size)
    LOAD(Init, "cuInit");
    LOAD(DriverGetVersion, "cuDriverGetVersion");
    LOAD(DeviceGetCount, "cuDeviceGetCount");
    LOAD(DeviceGet, "cuDeviceGet");
    LOAD(DeviceGetName, "cuDeviceGetName");
    LOAD(DeviceGetAttribute, "cuDeviceGetAttribute");
    LOAD(DeviceTotalMem, "cuDeviceTotalMem_v2");
    LOAD(GetErrorString, "cuGetErrorString");
    LOAD(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    LOAD(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    LOAD(CtxSetCurrent, "cuCtxSetCurrent");
    LOAD(CtxSynchronize, "cuCtxSynchronize");
    LOAD(MemAlloc, "cuMemAlloc_v2");
    LOAD(MemFree, "cuMemFree_v2");
    LOAD(MemcpyHtoD, "cuMemcpyHtoD_v2");
    LOAD(MemcpyDtoH, "cuMemcpyDtoH_v2");
    LOAD(MemcpyDtoD, "cuMemcpyDtoD_v2");
    LOAD(MemsetD8, "cuMemsetD8_v2");
    LOAD(ModuleLoadData, "cuModuleLoadData");
    LOAD(ModuleUnload, "cuModuleUnload");
    LOAD(ModuleGetFunction, "cuModuleGetFunction");
    LOAD(LaunchKernel, "cuLaunchKernel");
    LOAD(EventCreate, "cuEventCreate");
    LOAD(EventRecord, "cuEventRecord");
    LOAD(EventSynchronize, "cuEventSynchronize");
    LOAD(EventElapsedTime, "cuEventElapsedTime");
    LOAD(EventDestroy, "cuEventDestroy_v2");
#undef LOAD
    *(void **)&drv->FuncGetParamInfo = dlsym(drv->handle, "cuFuncGetParamInfo"); /* optional */
    if (!rc) drv->DriverGetVersion(&drv->version);
    int result;
    if (!rc && (result = drv->Init(0)) != 0) {
        char text[256];
        snprintf(err, err_size, "the CUDA driver %s (version %d.%d) did not initialise: %s", drv->path,
                 drv->version / 1000, drv->version % 1000 / 10, hr_cuda_error_string(drv, result, text, sizeof text));
        rc = -1;
    }
    if (rc) hr_cuda_driver_close(drv);
    return rc;
}

void hr_cuda_driver_close(hr_cuda_driver *drv) {
    if (drv->handle) dlclose(drv->handle);
    memset(drv, 0, sizeof *drv);
}

int hr_cuda_device_info_get(const hr_cuda_driver *drv, int ordinal, hr_cuda_device_info *info, char *err,
                            size_t err_size) {
    memset(info, 0, sizeof *info);
    int dev = 0, major = 0, minor = 0, rc;
    char text[256];
    if ((rc = drv->DeviceGet(&dev, ordinal)) != 0 ||
        (rc = drv->DeviceGetName(info->name, (int)sizeof info->name, dev)) != 0 ||
        (rc = drv->DeviceGetAttribute(&major, ATTR_CC_MAJOR, dev)) != 0 ||
        (rc = drv->DeviceGetAttribute(&minor, ATTR_CC_MINOR, dev)) != 0 ||
        (rc = drv->DeviceGetAttribute(&info->multiprocessors, ATTR_MULTIPROCESSOR_COUNT, dev)) != 0 ||
        (rc = drv->DeviceTotalMem(&info->memory_bytes, dev)) != 0) {
        snprintf(err, err_size, "GPU %d: %s", ordinal, hr_cuda_error_string(drv, rc, text, sizeof text));
        return -1;
    }
    info->sm = 10 * major + minor;
    return 0;
}

int hr_cublas_open(hr_cublas *lib, char *err, size_t err_size) {
    memset(lib, 0, sizeof *lib);
    static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", NULL};
    lib->handle = hr_dl_open("HYBRIDRT_CUBLAS_LIBRARY", names, lib->path, sizeof lib->path, err, err_size);
    if (!lib->handle) return -1;
    int rc = 0;
#define LOAD(field, name) HR_DL_LOAD(rc, lib->handle, lib->path, lib, field, name, err, err_size)
    LOAD(GetProperty, "cublasGetProperty");
    LOAD(Create, "cublasCreate_v2");
    LOAD(Destroy, "cublasDestroy_v2");
    LOAD(SetStream, "cublasSetStream_v2");
    LOAD(SetMathMode, "cublasSetMathMode");
    LOAD(SgemmStridedBatched, "cublasSgemmStridedBatched");
    LOAD(DgemmStridedBatched, "cublasDgemmStridedBatched");
#undef LOAD
    /* libraryPropertyType: MAJOR_VERSION 0, MINOR_VERSION 1, PATCH_LEVEL 2 */
    if (!rc && (lib->GetProperty(0, &lib->major) || lib->GetProperty(1, &lib->minor) ||
                lib->GetProperty(2, &lib->patch))) {
        snprintf(err, err_size, "%s: cublasGetProperty failed", lib->path);
        rc = -1;
    }
    if (rc) hr_cublas_close(lib);
    return rc;
}

void hr_cublas_close(hr_cublas *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}
