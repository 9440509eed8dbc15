/* libhybridrt_emucuda.so: an emulated CUDA device for the unmodified hybridrt binary. It answers as
 * libcuda.so.1 (HYBRIDRT_CUDA_DRIVER_LIBRARY) and libcublas (HYBRIDRT_CUBLAS_LIBRARY, emu_blas.c):
 * one GPU whose memory is guarded host pages (emu_memory.c) and whose kernels are the real templates
 * of kernel_src/, compiled as host C++ into one library per template (gen_emu_kernels.c,
 * emu_shim.h) and run here, each GPU thread a fiber (emu_fiber.c) so that __syncthreads() is a real
 * barrier. The images NVRTC builds are loaded as a driver loads them, and each launch is checked
 * against them (launch bounds, parameters, shared memory).
 *
 * What it checks beyond what a GPU reports:
 *   - barriers: all threads of a block must wait at the same __syncthreads() (the same call site), and
 *     none may have returned while others wait there: otherwise the launch fails naming the kernel,
 *     the block, the threads and the lines;
 *   - shared memory and new device memory hold 0xFF bytes (NaN) until written, per block for shared;
 *   - a read or write past a device buffer, into freed memory or past a fiber's stack faults on a
 *     guard page and fails the launch, naming the buffer (CUDA_ERROR_ILLEGAL_ADDRESS);
 *   - schedules: every launch runs with the threads and blocks in order, reversed, then in a seeded
 *     random order between barriers, each from the same inputs; any difference in the bits the
 *     kernel writes fails the launch (a missing barrier or a race);
 *   - cuFuncGetParamInfo gives the parameter sizes the kernel declares, so the backend can check its
 *     arguments (it does, on any driver that has that call).
 * Environment: HYBRIDRT_EMU_KERNELS (folders of kernel libraries, ':'-separated, the first holding a
 * template wins; default: emu-kernels/ beside this library), HYBRIDRT_EMU_SCHEDULES (all, in-order,
 * reversed, random), HYBRIDRT_EMU_COMPARE=N (with "all": compare only the first N launches of each
 * kernel and launch shape, the later ones in one rotating schedule), HYBRIDRT_EMU_SEED, HYBRIDRT_EMU_GUARD=before, HYBRIDRT_EMU_SM (the compute
 * capability it reports, default 80), HYBRIDRT_EMU_MEMORY_MB (default 4096).
 *
 * Launches run synchronously on the calling host thread, one at a time. */
#define _GNU_SOURCE
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu_device.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_THREADS 1024
#define SHARED_LIMIT 49152

/* ---- errors: the text of the latest failure, which cuGetErrorString gives for its code ---- */

static struct {
    int code;
    char text[2048];
} last_error;

static const char *code_name(int code) {
    switch (code) {
    case HR_CU_OK: return "CUDA_SUCCESS";
    case HR_CU_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case HR_CU_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case HR_CU_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    case HR_CU_NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
    case HR_CU_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
    case HR_CU_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case HR_CU_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case HR_CU_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case HR_CU_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case HR_CU_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
    case HR_CU_NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
    default: return "CUDA_ERROR_UNKNOWN";
    }
}

int hr_emu_fail(int code, const char *fmt, ...) {
    char msg[1800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    last_error.code = code;
    snprintf(last_error.text, sizeof last_error.text, "%s on the emulated device: %s", code_name(code), msg);
    fprintf(stderr, "hybridrt emulated GPU: %s\n", msg);
    return code;
}

/* ---- the device ---- */

static struct {
    bool initialised;
    emu_module **modules;
    int n_modules, cap_modules;
    hr_emu_memory mem;
    int sm;
    int primary_refs;
    void *current_ctx;
} dev;

static int primary_context_object;

/* ---- the driver API ---- */

EXPORT int cuInit(unsigned flags) {
    if (flags) return HR_CU_INVALID_VALUE;
    if (dev.initialised) return HR_CU_OK;
    const char *sm = getenv("HYBRIDRT_EMU_SM"), *mb = getenv("HYBRIDRT_EMU_MEMORY_MB");
    const char *sched = getenv("HYBRIDRT_EMU_SCHEDULES"), *seed = getenv("HYBRIDRT_EMU_SEED");
    const char *guard = getenv("HYBRIDRT_EMU_GUARD");
    dev.sm = sm && atoi(sm) > 0 ? atoi(sm) : 80;
    size_t megabytes = mb && atoll(mb) > 0 ? (size_t)atoll(mb) : 4096;
    hr_emu_memory_init(&dev.mem, megabytes << 20, guard && strcmp(guard, "before") == 0);
    const char *compare = getenv("HYBRIDRT_EMU_COMPARE");
    int rc = hr_emu_launch_init(&dev.mem, sched && sched[0] ? sched : "all", seed ? strtoull(seed, NULL, 10) : 1,
                                compare && compare[0] ? atoll(compare) : -1);
    if (!rc) rc = hr_emu_load_libraries();
    if (rc) return rc;
    dev.initialised = true;
    return HR_CU_OK;
}

EXPORT int cuDriverGetVersion(int *v) { return *v = 13000, HR_CU_OK; }
EXPORT int cuDeviceGetCount(int *n) { return *n = dev.initialised ? 1 : 0, dev.initialised ? HR_CU_OK : HR_CU_NOT_INITIALIZED; }
EXPORT int cuDeviceGet(int *d, int ordinal) {
    if (ordinal != 0) return HR_CU_INVALID_DEVICE;
    *d = 0;
    return HR_CU_OK;
}
EXPORT int cuDeviceGetName(char *name, int len, int d) {
    if (d != 0 || len < 1) return HR_CU_INVALID_VALUE;
    snprintf(name, (size_t)len, "hybridrt emulated GPU");
    return HR_CU_OK;
}
EXPORT int cuDeviceGetAttribute(int *v, int attribute, int d) {
    if (d != 0) return HR_CU_INVALID_DEVICE;
    switch (attribute) { /* CUdevice_attribute */
    case 1: *v = MAX_THREADS; return HR_CU_OK;  /* MAX_THREADS_PER_BLOCK */
    case 8: *v = SHARED_LIMIT; return HR_CU_OK; /* MAX_SHARED_MEMORY_PER_BLOCK */
    case 10: *v = 32; return HR_CU_OK;          /* WARP_SIZE */
    case 16: *v = 4; return HR_CU_OK;           /* MULTIPROCESSOR_COUNT */
    case 75: *v = dev.sm / 10; return HR_CU_OK; /* COMPUTE_CAPABILITY_MAJOR */
    case 76: *v = dev.sm % 10; return HR_CU_OK; /* COMPUTE_CAPABILITY_MINOR */
    default: return HR_CU_INVALID_VALUE;
    }
}
EXPORT int cuDeviceTotalMem_v2(size_t *bytes, int d) {
    if (d != 0) return HR_CU_INVALID_DEVICE;
    *bytes = dev.mem.capacity;
    return HR_CU_OK;
}
EXPORT int cuGetErrorString(int result, const char **text) {
    *text = last_error.code == result && last_error.text[0] ? last_error.text : code_name(result);
    return HR_CU_OK;
}

EXPORT int cuDevicePrimaryCtxRetain(void **ctx, int d) {
    if (d != 0) return HR_CU_INVALID_DEVICE;
    dev.primary_refs++;
    *ctx = &primary_context_object;
    return HR_CU_OK;
}
EXPORT int cuDevicePrimaryCtxRelease_v2(int d) {
    if (d != 0 || dev.primary_refs == 0) return HR_CU_INVALID_VALUE;
    dev.primary_refs--;
    return HR_CU_OK;
}
EXPORT int cuCtxSetCurrent(void *ctx) {
    if (ctx && ctx != &primary_context_object) return HR_CU_INVALID_VALUE;
    dev.current_ctx = ctx;
    return HR_CU_OK;
}
EXPORT int cuCtxSynchronize(void) { return HR_CU_OK; } /* launches finish before they return */

EXPORT int cuMemAlloc_v2(unsigned long long *ptr, size_t bytes) {
    if (!dev.initialised) return HR_CU_NOT_INITIALIZED;
    if (bytes == 0) return hr_emu_fail(HR_CU_INVALID_VALUE, "cuMemAlloc of 0 bytes");
    void *p;
    if (hr_emu_alloc_new(&dev.mem, bytes, &p)) return HR_CU_OUT_OF_MEMORY;
    *ptr = (unsigned long long)(uintptr_t)p;
    return HR_CU_OK;
}
EXPORT int cuMemFree_v2(unsigned long long ptr) {
    if (hr_emu_alloc_release(&dev.mem, (void *)(uintptr_t)ptr))
        return hr_emu_fail(HR_CU_INVALID_VALUE, "cuMemFree(%#llx): not the start of a live device buffer", ptr);
    return HR_CU_OK;
}

/* The host bytes of a device range, or NULL with the error set. */
static unsigned char *device_range(unsigned long long addr, size_t bytes, const char *what) {
    void *p = (void *)(uintptr_t)addr;
    if (hr_emu_alloc_find(&dev.mem, p, bytes)) return p;
    char desc[400];
    hr_emu_memory_describe(&dev.mem, p, desc, sizeof desc);
    hr_emu_fail(HR_CU_INVALID_VALUE, "%s of %zu bytes at %#llx: not inside one live device buffer (%s)", what, bytes,
                addr, desc);
    return NULL;
}

EXPORT int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n) {
    unsigned char *d = n ? device_range(dst, n, "cuMemcpyHtoD") : NULL;
    if (n && !d) return HR_CU_INVALID_VALUE;
    if (n) memcpy(d, src, n);
    return HR_CU_OK;
}
EXPORT int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t n) {
    unsigned char *s = n ? device_range(src, n, "cuMemcpyDtoH") : NULL;
    if (n && !s) return HR_CU_INVALID_VALUE;
    if (n) memcpy(dst, s, n);
    return HR_CU_OK;
}
EXPORT int cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src, size_t n) {
    if (!n) return HR_CU_OK;
    unsigned char *d = device_range(dst, n, "cuMemcpyDtoD destination"), *s = d ? device_range(src, n, "cuMemcpyDtoD source") : NULL;
    if (!d || !s) return HR_CU_INVALID_VALUE;
    memmove(d, s, n);
    return HR_CU_OK;
}
EXPORT int cuMemsetD8_v2(unsigned long long dst, unsigned char v, size_t n) {
    unsigned char *d = n ? device_range(dst, n, "cuMemsetD8") : NULL;
    if (n && !d) return HR_CU_INVALID_VALUE;
    if (n) memset(d, v, n);
    return HR_CU_OK;
}

/* The bytes of an image: an ELF's extent from its headers, PTX up to its NUL. */
static size_t image_size(const unsigned char *img) {
    if (memcmp(img, ELFMAG, SELFMAG) != 0) return strlen((const char *)img) + 1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    size_t end = (size_t)eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type != SHT_NOBITS && sh[i].sh_offset + sh[i].sh_size > end) end = sh[i].sh_offset + sh[i].sh_size;
    return end;
}

EXPORT int cuModuleLoadData(void **module, const void *image) {
    const unsigned char *img = image;
    if (!img || (memcmp(img, ELFMAG, SELFMAG) != 0 && !strstr((const char *)img, ".entry")))
        return hr_emu_fail(HR_CU_INVALID_IMAGE, "cuModuleLoadData: neither a cubin nor PTX");
    emu_module *m = calloc(1, sizeof *m);
    size_t size = image_size(img);
    if (m) m->image = malloc(size);
    if (!m || !m->image || (dev.n_modules == dev.cap_modules &&
                            !(dev.modules = realloc(dev.modules, sizeof *dev.modules * (size_t)(dev.cap_modules += 64))))) {
        if (m) free(m->image);
        free(m);
        return HR_CU_OUT_OF_MEMORY;
    }
    memcpy(m->image, img, size);
    m->live = true;
    dev.modules[dev.n_modules++] = m;
    *module = m;
    return HR_CU_OK;
}

static emu_module *live_module(void *handle) {
    for (int i = 0; i < dev.n_modules; i++)
        if (dev.modules[i] == handle && dev.modules[i]->live) return dev.modules[i];
    return NULL;
}

EXPORT int cuModuleUnload(void *handle) {
    emu_module *m = live_module(handle);
    if (!m) return hr_emu_fail(HR_CU_INVALID_HANDLE, "cuModuleUnload of a module that is not loaded");
    m->live = false;
    for (int i = 0; i < m->n_functions; i++) free(m->functions[i]);
    free(m->functions);
    free(m->image);
    m->functions = NULL;
    m->image = NULL;
    m->n_functions = 0;
    return HR_CU_OK;
}

EXPORT int cuModuleGetFunction(void **function, void *handle, const char *name) {
    emu_module *m = live_module(handle);
    if (!m) return hr_emu_fail(HR_CU_INVALID_HANDLE, "cuModuleGetFunction(%s) on a module that is not loaded", name);
    hr_emu_image_kernel info;
    hr_emu_image_kernel_info(m->image, name, &info);
    if (!info.found) return hr_emu_fail(HR_CU_NOT_FOUND, "no kernel %s in the module's image", name);
    const emu_kernel *k = hr_emu_kernel_named(name);
    if (!k)
        return hr_emu_fail(HR_CU_NOT_FOUND, "no host build of kernel %s: the emulator's kernel libraries were not "
                                            "built from these templates and this registry (rebuild them)", name);
    if (info.nparams >= 0) { /* the image and the host build come from the same source, or the build is stale */
        bool same = info.nparams == k->k->nparams;
        for (int i = 0; same && i < info.nparams; i++) same = info.param_size[i] == k->k->param_size[i];
        if (!same)
            return hr_emu_fail(HR_CU_INVALID_IMAGE, "%s: the image has %d parameters, the host build %d (or their "
                                                    "sizes differ): the kernel libraries are stale",
                               k->k->name_expression, info.nparams, k->k->nparams);
    }
    emu_function *f = malloc(sizeof *f);
    emu_function **grown = f ? realloc(m->functions, sizeof *grown * (size_t)(m->n_functions + 1)) : NULL;
    if (!grown) {
        free(f);
        return HR_CU_OUT_OF_MEMORY;
    }
    *f = (emu_function){.kernel = k, .image = info, .module = m};
    m->functions = grown;
    m->functions[m->n_functions++] = f;
    *function = f;
    return HR_CU_OK;
}

static emu_function *live_function(void *handle) {
    for (int i = 0; i < dev.n_modules; i++) {
        emu_module *m = dev.modules[i];
        for (int j = 0; m->live && j < m->n_functions; j++)
            if (m->functions[j] == handle) return m->functions[j];
    }
    return NULL;
}

EXPORT int cuFuncGetParamInfo(void *function, size_t index, size_t *offset, size_t *size) {
    emu_function *f = live_function(function);
    if (!f) return HR_CU_INVALID_HANDLE;
    const hr_emu_kernel *k = f->kernel->k;
    if (index >= (size_t)k->nparams) return HR_CU_INVALID_VALUE;
    size_t off = 0;
    for (size_t i = 0; i <= index; i++) {
        size_t s = k->param_size[i], align = s >= 8 ? 8 : s >= 4 ? 4 : s >= 2 ? 2 : 1;
        off = (off + align - 1) / align * align;
        if (i < index) off += s;
    }
    if (offset) *offset = off;
    if (size) *size = k->param_size[index];
    return HR_CU_OK;
}

EXPORT int cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned shared, void *stream, void **params, void **extra) {
    emu_function *f = live_function(function);
    if (!f) return hr_emu_fail(HR_CU_INVALID_HANDLE, "cuLaunchKernel of a function that is not in a loaded module");
    if (extra) return hr_emu_fail(HR_CU_NOT_SUPPORTED, "cuLaunchKernel: `extra` parameter buffers are not emulated");
    if (stream) return hr_emu_fail(HR_CU_INVALID_HANDLE, "cuLaunchKernel: only the default stream is emulated");
    if (hr_emu_launch_busy()) return hr_emu_fail(HR_CU_INVALID_VALUE, "cuLaunchKernel from inside a kernel");
    return hr_emu_launch(f, gx, gy, gz, bx, by, bz, shared, params);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

EXPORT int cuEventCreate(void **e, unsigned flags) {
    if (flags) return HR_CU_INVALID_VALUE;
    emu_event *ev = calloc(1, sizeof *ev);
    if (!ev) return HR_CU_OUT_OF_MEMORY;
    *e = ev;
    return HR_CU_OK;
}
EXPORT int cuEventRecord(void *e, void *stream) {
    if (!e || stream) return HR_CU_INVALID_HANDLE;
    ((emu_event *)e)->t = now(); /* the stream is idle: every launch before has finished */
    return HR_CU_OK;
}
EXPORT int cuEventSynchronize(void *e) { return e ? HR_CU_OK : HR_CU_INVALID_HANDLE; }
EXPORT int cuEventElapsedTime(float *ms, void *a, void *b) {
    if (!a || !b) return HR_CU_INVALID_HANDLE;
    *ms = (float)((((emu_event *)b)->t - ((emu_event *)a)->t) * 1e3);
    return HR_CU_OK;
}
EXPORT int cuEventDestroy_v2(void *e) {
    free(e);
    return HR_CU_OK;
}

/* ---- for emu_blas.c ---- */

int hr_emu_check_range(const void *p, size_t bytes, const char *what) {
    return device_range((unsigned long long)(uintptr_t)p, bytes, what) ? 0 : -1;
}
