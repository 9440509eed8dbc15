/* What the parts of the emulated device (emu_driver.c, emu_blas.c) share: CUresult codes and the
 * error the latest failing call set. */
#ifndef HR_EMU_DEVICE_H
#define HR_EMU_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu_api.h"
#include "emu_image.h"
#include "emu_memory.h"

/* CUresult values (cuda.h) */
enum {
    HR_CU_OK = 0, HR_CU_INVALID_VALUE = 1, HR_CU_OUT_OF_MEMORY = 2, HR_CU_NOT_INITIALIZED = 3, HR_CU_NO_DEVICE = 100,
    HR_CU_INVALID_DEVICE = 101, HR_CU_INVALID_IMAGE = 200, HR_CU_INVALID_HANDLE = 400, HR_CU_NOT_FOUND = 500,
    HR_CU_ILLEGAL_ADDRESS = 700, HR_CU_LAUNCH_FAILED = 719, HR_CU_NOT_SUPPORTED = 801
};

/* ---- the kernel libraries (emu_kernels.c) ---- */

typedef struct shared_var {
    char *symbol;            /* a thread-local symbol of the library: a static __shared__ array ("_ZZ..."),
                                the extern __shared__ one, or a guard the generated file adds */
    size_t size;
    uint64_t offset;         /* in the library's thread-local block */
    size_t span;             /* to the next symbol (or the block's end): the array and its padding */
    int next;                /* the symbol after it in the block, or -1 */
    void *addr;              /* for `thread` */
    pthread_t thread;
    bool resolved;
} shared_var;

typedef struct emu_library {
    void *handle;
    char path[4400];
    const hr_emu_module *mod;
    shared_var *vars;        /* every thread-local symbol of the library, by offset */
    int n_vars;
    pthread_t filled_for;    /* the host thread whose copies were filled with 0xFF at first use */
    bool filled;
} emu_library;

typedef struct emu_kernel {
    const hr_emu_kernel *k;
    emu_library *lib;
    const char *lowered;     /* the symbol of k->function: NVRTC's lowered name */
    int *vars;               /* indices into lib->vars: this kernel's shared arrays */
    int n_vars;
} emu_kernel;

/* ---- modules and functions (emu_driver.c) ---- */

typedef struct emu_function {
    const emu_kernel *kernel;
    hr_emu_image_kernel image;
    struct emu_module *module;
} emu_function;

typedef struct emu_module {
    void *image;
    emu_function **functions;
    int n_functions;
    bool live;
} emu_module;

typedef struct emu_event {
    double t;
} emu_event;

/* Loads every kernel library of HYBRIDRT_EMU_KERNELS (else emu-kernels/ beside this library). 0 or
 * a CUresult with the error set. */
int hr_emu_load_libraries(void);
/* The kernel whose symbol is `lowered` (NVRTC's lowered name), or NULL. */
const emu_kernel *hr_emu_kernel_named(const char *lowered);
/* The calling thread's copy of a shared array (dlsym resolves thread-local symbols). */
void *hr_emu_var_addr(emu_library *lib, shared_var *v);
/* 0xFF into the kernel's static shared arrays and the first dynamic_bytes of the dynamic one. */
void hr_emu_poison_shared(const emu_kernel *k, size_t dynamic_bytes);
/* 0xFF into all of the library's shared memory, at its first launch on this host thread. */
void hr_emu_poison_library(emu_library *lib);
/* After a block: 0 when the padding after each of k's shared arrays and the start of the array after
 * it (another kernel's, or a guard: 0xFF at rest) are untouched, else -1 with the array named in
 * what (a write past its end). uses_dynamic: the block may write the extern __shared__ array. */
int hr_emu_shared_intact(const emu_kernel *k, bool uses_dynamic, char *what, size_t size);

/* ---- launches (emu_launch.c) ---- */

/* The fiber stacks, the schedules to run ("all", "in-order", "reversed", "random"), the random seed,
 * how many launches of each shape "all" compares (-1: every one) and the fault handlers. 0 or a
 * CUresult with the error set. */
int hr_emu_launch_init(hr_emu_memory *mem, const char *schedules, uint64_t seed, long long compare_first);
/* Runs one launch to its end, checked (emu_driver.c has checked the function handle). */
int hr_emu_launch(emu_function *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                  unsigned shared, void *const *params);
/* True while a kernel runs (a launch from inside one is refused). */
bool hr_emu_launch_busy(void);

/* ---- errors (emu_driver.c) ---- */

/* Sets the error text cuGetErrorString gives for `code` (and prints it to stderr); returns code. */
int hr_emu_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 0 when [p, p + bytes) lies inside one live device buffer, else -1 with the error set. */
int hr_emu_check_range(const void *p, size_t bytes, const char *what);

/* __syncthreads() of the kernel libraries. */
void hr_emu_barrier(const char *file, int line);

#endif
