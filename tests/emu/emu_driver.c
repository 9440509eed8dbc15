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
 * reversed, random), HYBRIDRT_EMU_SEED, HYBRIDRT_EMU_GUARD=before, HYBRIDRT_EMU_SM (the compute
 * capability it reports, default 80), HYBRIDRT_EMU_MEMORY_MB (default 4096).
 *
 * Launches run synchronously on the calling host thread, one at a time. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "emu_api.h"
#include "emu_device.h"
#include "emu_fiber.h"
#include "emu_image.h"
#include "emu_memory.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_THREADS 1024
#define STACK_BYTES (64 * 1024)
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

/* ---- the kernel libraries ---- */

typedef struct shared_var {
    char *symbol;            /* a static __shared__ array: a thread-local symbol of the library */
    size_t size;
    void *addr;              /* for `thread` */
    pthread_t thread;
    bool resolved;
} shared_var;

typedef struct emu_library {
    void *handle;
    char path[4400];
    const hr_emu_module *mod;
    shared_var *vars;        /* every static shared array of the library */
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

/* ---- modules and functions ---- */

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

/* ---- the device ---- */

static struct {
    bool initialised;
    emu_library *libs;
    int n_libs;
    emu_kernel *kernels;
    int n_kernels;
    emu_module **modules;
    int n_modules, cap_modules;
    hr_emu_memory mem;
    hr_emu_stacks stacks;
    int sm;
    int primary_refs;
    void *current_ctx;
    char schedules[16];
    uint64_t seed, launches;
    struct sigaction previous[32];
} dev;

static int primary_context_object;

/* The thread-local address of a library symbol for the calling thread (dlsym resolves TLS). */
static void *var_addr(emu_library *lib, shared_var *v) {
    pthread_t self = pthread_self();
    if (!v->resolved || !pthread_equal(v->thread, self)) {
        v->addr = dlsym(lib->handle, v->symbol);
        v->thread = self;
        v->resolved = v->addr != NULL;
    }
    return v->addr;
}

/* Every TLS symbol the library defines whose name is a function's static local ("_ZZ..."): its
 * static __shared__ arrays. Read from the file's dynamic symbol table. */
static int read_shared_vars(emu_library *lib) {
    FILE *f = fopen(lib->path, "rb");
    if (!f) return -1;
    struct stat st;
    unsigned char *elf = NULL;
    int rc = -1;
    if (fstat(fileno(f), &st) == 0 && (elf = malloc((size_t)st.st_size)) &&
        fread(elf, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
        const Elf64_Shdr *sh = (const Elf64_Shdr *)(elf + eh->e_shoff);
        rc = 0;
        for (int i = 0; i < eh->e_shnum && rc == 0; i++) {
            if (sh[i].sh_type != SHT_DYNSYM) continue;
            const Elf64_Sym *sym = (const Elf64_Sym *)(elf + sh[i].sh_offset);
            const char *names = (const char *)elf + sh[sh[i].sh_link].sh_offset;
            size_t n = sh[i].sh_size / sizeof *sym;
            for (size_t s = 0; s < n; s++) {
                const char *name = names + sym[s].st_name;
                if (ELF64_ST_TYPE(sym[s].st_info) != STT_TLS || sym[s].st_shndx == SHN_UNDEF ||
                    strncmp(name, "_ZZ", 3) != 0)
                    continue;
                shared_var *grown = realloc(lib->vars, (size_t)(lib->n_vars + 1) * sizeof *grown);
                if (!grown || !(grown[lib->n_vars].symbol = strdup(name))) {
                    if (grown) lib->vars = grown;
                    rc = -1;
                    break;
                }
                lib->vars = grown;
                grown[lib->n_vars].size = sym[s].st_size;
                grown[lib->n_vars].resolved = false;
                lib->n_vars++;
            }
        }
    }
    free(elf);
    fclose(f);
    return rc;
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int add_library(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return hr_emu_fail(HR_CU_NO_DEVICE, "cannot load kernel library %s: %s", path, dlerror());
    hr_emu_module_get_fn get = (hr_emu_module_get_fn)dlsym(h, HR_EMU_MODULE_SYMBOL);
    static const hr_emu_host host = {.barrier = hr_emu_barrier};
    const hr_emu_module *mod = get ? get(&host) : NULL;
    if (!mod) {
        dlclose(h);
        return hr_emu_fail(HR_CU_NO_DEVICE, "%s is not a kernel library of the emulated device (no %s)", path,
                           HR_EMU_MODULE_SYMBOL);
    }
    for (int i = 0; i < dev.n_libs; i++)
        if (strcmp(dev.libs[i].mod->file, mod->file) == 0) { /* an earlier folder has this template */
            dlclose(h);
            return 0;
        }
    emu_library *libs = realloc(dev.libs, (size_t)(dev.n_libs + 1) * sizeof *libs);
    emu_kernel *kernels = libs ? realloc(dev.kernels, (size_t)(dev.n_kernels + mod->n_kernels) * sizeof *kernels) : NULL;
    if (libs) dev.libs = libs;
    if (kernels) dev.kernels = kernels;
    if (!libs || !kernels) {
        dlclose(h);
        return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "out of memory loading %s", path);
    }
    emu_library *lib = &dev.libs[dev.n_libs++];
    *lib = (emu_library){.handle = h, .mod = mod};
    snprintf(lib->path, sizeof lib->path, "%s", path);
    if (read_shared_vars(lib)) return hr_emu_fail(HR_CU_NO_DEVICE, "cannot read the symbols of %s", path);
    for (int i = 0; i < mod->n_kernels; i++) {
        Dl_info info;
        if (!dladdr(mod->kernels[i].function, &info) || !info.dli_sname)
            return hr_emu_fail(HR_CU_NO_DEVICE, "%s: %s has no symbol name", path, mod->kernels[i].name_expression);
        emu_kernel *k = &dev.kernels[dev.n_kernels++];
        *k = (emu_kernel){.k = &mod->kernels[i], .lib = NULL, .lowered = info.dli_sname};
        k->vars = malloc(sizeof(int) * (size_t)(lib->n_vars ? lib->n_vars : 1));
        if (!k->vars) return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "out of memory loading %s", path);
        char prefix[600]; /* a static local of function _Z<enc> is _ZZ<enc>E<name> */
        snprintf(prefix, sizeof prefix, "_ZZ%sE", k->lowered + 2);
        for (int v = 0; v < lib->n_vars; v++)
            if (strncmp(lib->vars[v].symbol, prefix, strlen(prefix)) == 0) k->vars[k->n_vars++] = v;
    }
    /* the library array may have moved: point every kernel at its library again */
    int at = 0;
    for (int l = 0; l < dev.n_libs; l++)
        for (int i = 0; i < dev.libs[l].mod->n_kernels; i++) dev.kernels[at++].lib = &dev.libs[l];
    return 0;
}

static int load_libraries(void) {
    char dirs[4096];
    const char *env = getenv("HYBRIDRT_EMU_KERNELS");
    if (env && env[0]) {
        snprintf(dirs, sizeof dirs, "%s", env);
    } else {
        Dl_info self;
        if (!dladdr((void *)load_libraries, &self) || !self.dli_fname)
            return hr_emu_fail(HR_CU_NO_DEVICE, "cannot find where libhybridrt_emucuda.so is");
        snprintf(dirs, sizeof dirs, "%s", self.dli_fname);
        char *slash = strrchr(dirs, '/');
        if (slash) snprintf(slash, sizeof dirs - (size_t)(slash - dirs), "/emu-kernels");
        else snprintf(dirs, sizeof dirs, "emu-kernels");
    }
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        DIR *dir = opendir(d);
        if (!dir) return hr_emu_fail(HR_CU_NO_DEVICE, "no kernel library folder %s (HYBRIDRT_EMU_KERNELS)", d);
        struct dirent *e;
        char names[64][256];
        int n = 0;
        while ((e = readdir(dir)) && n < 64)
            if (strncmp(e->d_name, "emu_", 4) == 0 && has_suffix(e->d_name, ".so"))
                snprintf(names[n++], sizeof names[0], "%s", e->d_name);
        closedir(dir);
        qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
        for (int i = 0; i < n; i++) {
            char path[4400];
            snprintf(path, sizeof path, "%.4000s/%.255s", d, names[i]);
            int rc = add_library(path);
            if (rc) return rc;
        }
    }
    if (dev.n_kernels == 0)
        return hr_emu_fail(HR_CU_NO_DEVICE, "no kernel libraries (emu_*.so) in %s: build the emulator's kernels", env ? env : "emu-kernels/");
    return 0;
}

static const emu_kernel *kernel_named(const char *lowered) {
    for (int i = 0; i < dev.n_kernels; i++)
        if (strcmp(dev.kernels[i].lowered, lowered) == 0) return &dev.kernels[i];
    return NULL;
}

/* ---- faults inside a kernel: guard pages, bad addresses, integer division by zero ---- */

static struct {
    const emu_function *fn;
    void *const *params;
    hr_emu_indices *idx;
    unsigned threads, bx, by;
    uint64_t block;
    int current;             /* the fiber running, or -1 */
    hr_emu_context sched;
    struct fiber {
        hr_emu_context ctx;
        enum { F_NEW, F_READY, F_BARRIER, F_DONE } state;
        void *pc;
        const char *file;
        int line;
    } fibers[MAX_THREADS];
    volatile sig_atomic_t in_kernel;
    bool direct;             /* the block's threads run as plain calls (run_block) */
    int probe;               /* the thread that returned without a barrier, making it so */
    uint64_t rng;            /* the random schedule's state */
    pthread_t thread;
    sigjmp_buf fault_env;
    volatile int fault_sig;
    void *volatile fault_addr;
    bool failed;             /* a barrier error ended the block */
} run;

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (run.in_kernel && pthread_equal(run.thread, pthread_self())) {
        run.fault_sig = sig;
        run.fault_addr = si->si_addr;
        run.in_kernel = 0;
        siglongjmp(run.fault_env, 1);
    }
    /* not a kernel's: the handler that was there before, by re-faulting under it */
    sigaction(sig, &dev.previous[sig], NULL);
}

static void install_fault_handlers(void) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, &dev.previous[sigs[i]]);
}

/* The handler runs on an alternate stack: a fiber's stack may be the one that overflowed. */
static void ensure_alt_stack(void) {
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;
    static __thread unsigned char *alt;
    if (!alt) alt = malloc(1 << 16);
    if (!alt) return;
    stack_t ss = {.ss_sp = alt, .ss_size = 1 << 16, .ss_flags = 0};
    sigaltstack(&ss, NULL);
}

/* ---- the barrier and the scheduler ---- */

static void fiber_main(void) {
    struct fiber *f = &run.fibers[run.current];
    run.fn->kernel->k->invoke(run.fn->kernel->k->function, run.params);
    f->state = F_DONE;
    hr_emu_context_switch(&f->ctx, &run.sched);
    abort(); /* a finished fiber is never resumed */
}

__attribute__((noinline)) void hr_emu_barrier(const char *file, int line) {
    if (run.current < 0) {
        fprintf(stderr, "hybridrt emulated GPU: __syncthreads() at %s:%d outside a launch\n", file, line);
        abort();
    }
    if (run.direct) { /* a plain call cannot wait: the thread that returned first makes this divergent */
        const char *slash = strrchr(file, '/');
        hr_emu_fail(HR_CU_LAUNCH_FAILED,
                    "divergent barrier in %s, block %llu: thread %d waits at __syncthreads() (%s:%d) while thread %d "
                    "has returned",
                    run.fn->kernel->k->name_expression, (unsigned long long)run.block, run.current,
                    slash ? slash + 1 : file, line, run.probe);
        run.in_kernel = 0;
        siglongjmp(run.fault_env, 2);
    }
    struct fiber *f = &run.fibers[run.current];
    f->state = F_BARRIER;
    f->pc = __builtin_return_address(0);
    f->file = file;
    f->line = line;
    hr_emu_context_switch(&f->ctx, &run.sched);
}

static uint64_t next_random(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* order[0..n) = 0..n-1 in order (0), reversed (1) or shuffled (2). */
static void make_order(unsigned *order, unsigned n, int schedule, uint64_t *rng) {
    for (unsigned i = 0; i < n; i++) order[i] = schedule == 1 ? n - 1 - i : i;
    if (schedule == 2)
        for (unsigned i = n; i > 1; i--) {
            unsigned j = (unsigned)(next_random(rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
}

static const char *where(const struct fiber *f, char *buf, size_t size) {
    const char *slash = strrchr(f->file, '/');
    snprintf(buf, size, "%s:%d", slash ? slash + 1 : f->file, f->line);
    return buf;
}

/* Fills this kernel's static shared arrays and the dynamic ones it asked for with 0xFF. */
static void poison_shared(const emu_kernel *k, size_t dynamic_bytes) {
    emu_library *lib = k->lib;
    for (int i = 0; i < k->n_vars; i++) {
        shared_var *v = &lib->vars[k->vars[i]];
        void *a = var_addr(lib, v);
        if (a) memset(a, 0xFF, v->size);
    }
    if (dynamic_bytes && lib->mod->dynamic_shared) memset(lib->mod->dynamic_shared(), 0xFF, dynamic_bytes);
}

/* The library's whole shared memory for this host thread, at its first launch there: what a block
 * reads past the end of its own arrays is then NaN too. */
static void poison_library(emu_library *lib) {
    pthread_t self = pthread_self();
    if (lib->filled && pthread_equal(lib->filled_for, self)) return;
    for (int i = 0; i < lib->n_vars; i++) {
        void *a = var_addr(lib, &lib->vars[i]);
        if (a) memset(a, 0xFF, lib->vars[i].size);
    }
    if (lib->mod->dynamic_shared) memset(lib->mod->dynamic_shared(), 0xFF, lib->mod->dynamic_shared_bytes);
    lib->filled = true;
    lib->filled_for = self;
}

/* One thread of the block run as a plain call on the scheduler's stack. */
static void run_direct(unsigned t) {
    run.current = (int)t;
    run.idx->thread = (hr_emu_dim3){t % run.bx, t / run.bx % run.by, t / (run.bx * run.by)};
    run.in_kernel = 1;
    run.fn->kernel->k->invoke(run.fn->kernel->k->function, run.params);
    run.in_kernel = 0;
}

/* Runs block `b` to its end: every fiber until all have returned, releasing each barrier once every
 * thread waits at it. The first thread of the schedule runs as a fiber; when it returns without
 * reaching a barrier, a thread of this block that reaches one is divergent, so the others run as plain
 * calls (hr_emu_barrier then fails the launch): kernels without barriers cost a call per thread. 0, or
 * an error code (the message is set). */
static int run_block(uint64_t b, unsigned gx, unsigned gy, int schedule, uint64_t *rng, size_t dynamic_bytes,
                     unsigned *order) {
    const emu_kernel *k = run.fn->kernel;
    run.block = b;
    run.idx->block = (hr_emu_dim3){(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / ((uint64_t)gx * gy))};
    poison_shared(k, dynamic_bytes);
    for (unsigned t = 0; t < run.threads; t++) run.fibers[t].state = F_NEW;
    for (int phase = 0;; phase++) {
        make_order(order, run.threads, schedule, rng);
        for (unsigned i = 0; i < run.threads; i++) {
            unsigned t = order[i];
            if (run.direct) {
                run_direct(t);
                continue;
            }
            struct fiber *f = &run.fibers[t];
            if (f->state == F_NEW) {
                hr_emu_context_make(&f->ctx, hr_emu_stack(&dev.stacks, (int)t), dev.stacks.size, fiber_main);
                f->state = F_READY;
            }
            if (f->state != F_READY) continue;
            run.current = (int)t;
            run.idx->thread = (hr_emu_dim3){t % run.bx, t / run.bx % run.by, t / (run.bx * run.by)};
            run.in_kernel = 1;
            hr_emu_context_switch(&run.sched, &f->ctx);
            run.in_kernel = 0;
            if (phase == 0 && i == 0 && f->state == F_DONE) {
                run.direct = true;
                run.probe = (int)t;
            }
        }
        run.current = -1;
        if (run.direct) {
            run.direct = false;
            break;
        }
        int waiting = -1, done = -1, other = -1;
        for (unsigned t = 0; t < run.threads; t++) {
            if (run.fibers[t].state == F_DONE) {
                if (done < 0) done = (int)t;
            } else if (waiting < 0) {
                waiting = (int)t;
            } else if (run.fibers[t].pc != run.fibers[waiting].pc && other < 0) {
                other = (int)t;
            }
        }
        if (waiting < 0) break; /* every thread has returned */
        char a[128], c[128];
        const char *name = k->k->name_expression;
        if (done >= 0)
            return hr_emu_fail(HR_CU_LAUNCH_FAILED,
                               "divergent barrier in %s, block %llu: thread %d waits at __syncthreads() (%s) while "
                               "thread %d has returned",
                               name, (unsigned long long)b, waiting, where(&run.fibers[waiting], a, sizeof a), done);
        if (other >= 0)
            return hr_emu_fail(HR_CU_LAUNCH_FAILED,
                               "divergent barrier in %s, block %llu: thread %d waits at __syncthreads() (%s), thread "
                               "%d at another one (%s)",
                               name, (unsigned long long)b, waiting, where(&run.fibers[waiting], a, sizeof a), other,
                               where(&run.fibers[other], c, sizeof c));
        for (unsigned t = 0; t < run.threads; t++) run.fibers[t].state = F_READY;
    }
    poison_shared(k, dynamic_bytes);
    return 0;
}

/* Runs the whole grid under one schedule. */
static int run_grid(uint64_t blocks, unsigned gx, unsigned gy, int schedule, size_t dynamic_bytes) {
    uint64_t *rng = &run.rng; /* not a local: a fault returns here through siglongjmp */
    *rng = (dev.seed * 0x9E3779B97F4A7C15ULL) ^ (dev.launches + 1) * 0xD1B54A32D192ED03ULL;
    if (!*rng) *rng = 1;
    /* volatile: a fault returns here through siglongjmp */
    unsigned *volatile block_order = blocks <= 0xFFFFFFFFu ? malloc(sizeof(unsigned) * (size_t)blocks) : NULL;
    unsigned *volatile order = malloc(sizeof(unsigned) * run.threads);
    if (!block_order || !order) {
        free(block_order);
        free(order);
        return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "out of host memory for a grid of %llu blocks",
                           (unsigned long long)blocks);
    }
    make_order(block_order, (unsigned)blocks, schedule, rng);
    volatile int rc = 0;
    int jumped = sigsetjmp(run.fault_env, 1);
    if (jumped == 2) { /* hr_emu_barrier set the error */
        rc = HR_CU_LAUNCH_FAILED;
        run.current = -1;
        run.direct = false;
    } else if (jumped) {
        char what[512];
        int stack = hr_emu_stack_guard_hit(&dev.stacks, run.fault_addr);
        if (run.fault_sig == SIGFPE) snprintf(what, sizeof what, "an integer division by zero");
        else if (stack >= 0) snprintf(what, sizeof what, "a stack overflow (the thread's %d KiB)", STACK_BYTES / 1024);
        else {
            char desc[400];
            hr_emu_memory_describe(&dev.mem, run.fault_addr, desc, sizeof desc);
            snprintf(what, sizeof what, "an access to %p, %s", run.fault_addr, desc);
        }
        rc = hr_emu_fail(run.fault_sig == SIGFPE ? HR_CU_LAUNCH_FAILED : HR_CU_ILLEGAL_ADDRESS,
                         "%s, block %llu, thread %d: %s", run.fn->kernel->k->name_expression,
                         (unsigned long long)run.block, run.current, what);
        run.current = -1;
        run.direct = false;
    } else {
        for (uint64_t i = 0; i < blocks && rc == 0; i++)
            rc = run_block(block_order[i], gx, gy, schedule, rng, dynamic_bytes, order);
    }
    free(block_order);
    free(order);
    return rc;
}

/* ---- launches ---- */

typedef struct {
    unsigned char *data;
    size_t size;
    unsigned char *before, *first;
    int param;
} snapshot;

static void free_snapshots(snapshot *s, int n) {
    for (int i = 0; i < n; i++) {
        free(s[i].before);
        free(s[i].first);
    }
}

static const char *schedule_name(int s) { return s == 0 ? "in order" : s == 1 ? "reversed" : "in random order"; }

/* Checks the arguments against the kernel's parameters: each non-null pointer inside a live buffer. */
static int check_params(const emu_function *fn, void *const *params) {
    const hr_emu_kernel *k = fn->kernel->k;
    for (int i = 0; i < k->nparams; i++) {
        if (!params || !params[i])
            return hr_emu_fail(HR_CU_INVALID_VALUE, "%s: parameter %d is missing (a NULL entry in kernelParams)",
                               k->name_expression, i);
        if (k->param_kind[i] != 'p') continue;
        void *p;
        memcpy(&p, params[i], sizeof p);
        if (p && !hr_emu_alloc_find(&dev.mem, p, 0)) {
            char desc[400];
            hr_emu_memory_describe(&dev.mem, p, desc, sizeof desc);
            return hr_emu_fail(HR_CU_ILLEGAL_ADDRESS, "%s: pointer parameter %d is %p, in no live device buffer (%s)",
                               k->name_expression, i, p, desc);
        }
    }
    return 0;
}

/* The live buffers a launch may write: those the kernel's non-const pointer parameters point into,
 * each once. */
static int writable_buffers(const emu_function *fn, void *const *params, snapshot *out) {
    const hr_emu_kernel *k = fn->kernel->k;
    int n = 0;
    for (int i = 0; i < k->nparams; i++) {
        if (!k->param_writes[i]) continue;
        void *p;
        memcpy(&p, params[i], sizeof p);
        hr_emu_alloc *a = p ? hr_emu_alloc_find(&dev.mem, p, 0) : NULL;
        if (!a) continue;
        bool seen = false;
        for (int j = 0; j < n; j++) seen |= out[j].data == a->data;
        if (!seen) out[n++] = (snapshot){.data = a->data, .size = a->size, .param = i};
    }
    return n;
}

static int compare_runs(const emu_function *fn, const snapshot *s, int n, int schedule) {
    for (int i = 0; i < n; i++) {
        if (memcmp(s[i].first, s[i].data, s[i].size) == 0) continue;
        size_t at = 0;
        while (s[i].first[at] == s[i].data[at]) at++;
        size_t e4 = at / 4 * 4, e8 = at / 8 * 8;
        float fa = 0, fb = 0;
        double da = 0, db = 0;
        if (e4 + 4 <= s[i].size) memcpy(&fa, s[i].first + e4, 4), memcpy(&fb, s[i].data + e4, 4);
        if (e8 + 8 <= s[i].size) memcpy(&da, s[i].first + e8, 8), memcpy(&db, s[i].data + e8, 8);
        return hr_emu_fail(HR_CU_LAUNCH_FAILED,
                           "%s writes different results with its threads and blocks in order and %s: byte %zu of the "
                           "buffer of parameter %d (%zu bytes) differs (as f32: %.9g vs %.9g; as f64: %.17g vs "
                           "%.17g): a missing __syncthreads() or a race between threads or blocks",
                           fn->kernel->k->name_expression, schedule_name(schedule), at, s[i].param, s[i].size,
                           (double)fa, (double)fb, da, db);
    }
    return 0;
}

static int launch(emu_function *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                  unsigned shared, void *const *params) {
    const emu_kernel *ek = fn->kernel;
    const hr_emu_kernel *k = ek->k;
    uint64_t blocks = (uint64_t)gx * gy * gz, threads = (uint64_t)bx * by * bz;
    if (!blocks || !threads || threads > MAX_THREADS || gx > 2147483647u || gy > 65535 || gz > 65535)
        return hr_emu_fail(HR_CU_INVALID_VALUE, "%s: cannot launch a grid of %ux%ux%u blocks of %ux%ux%u threads",
                           k->name_expression, gx, gy, gz, bx, by, bz);
    if (fn->image.max_threads && threads > (uint64_t)fn->image.max_threads)
        return hr_emu_fail(HR_CU_INVALID_VALUE, "%s: a block of %llu threads exceeds its __launch_bounds__ (%d)",
                           k->name_expression, (unsigned long long)threads, fn->image.max_threads);
    if ((long long)shared + fn->image.static_shared > SHARED_LIMIT)
        return hr_emu_fail(HR_CU_INVALID_VALUE, "%s: %u bytes of dynamic shared memory and %lld static exceed %d",
                           k->name_expression, shared, fn->image.static_shared, SHARED_LIMIT);
    if (shared > ek->lib->mod->dynamic_shared_bytes)
        return hr_emu_fail(HR_CU_INVALID_VALUE, "%s: %u bytes of dynamic shared memory, but %s declares %s",
                           k->name_expression, shared, ek->lib->mod->file,
                           ek->lib->mod->dynamic_shared ? "less" : "no extern __shared__ array");
    int rc = check_params(fn, params);
    if (rc) return rc;
    ensure_alt_stack();
    poison_library(ek->lib);

    snapshot snaps[HR_EMU_MAX_PARAMS];
    int n_snaps = writable_buffers(fn, params, snaps);
    int first = 0, last = 2;
    if (strcmp(dev.schedules, "in-order") == 0) last = 0;
    else if (strcmp(dev.schedules, "reversed") == 0) first = last = 1;
    else if (strcmp(dev.schedules, "random") == 0) first = last = 2;
    for (int i = 0; i < n_snaps && first != last; i++) {
        snaps[i].before = malloc(snaps[i].size);
        snaps[i].first = malloc(snaps[i].size);
        if (!snaps[i].before || !snaps[i].first) {
            free_snapshots(snaps, n_snaps);
            return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "%s: out of host memory for the schedule check",
                               k->name_expression);
        }
        memcpy(snaps[i].before, snaps[i].data, snaps[i].size);
    }
    run.fn = fn;
    run.params = params;
    run.idx = ek->lib->mod->indices();
    run.threads = (unsigned)threads;
    run.bx = bx;
    run.by = by;
    run.current = -1;
    run.thread = pthread_self();
    run.idx->block_dim = (hr_emu_dim3){bx, by, bz};
    run.idx->grid_dim = (hr_emu_dim3){gx, gy, gz};
    for (int s = first; s <= last && rc == 0; s++) {
        if (s > first)
            for (int i = 0; i < n_snaps; i++) {
                memcpy(snaps[i].first, snaps[i].data, snaps[i].size);
                memcpy(snaps[i].data, snaps[i].before, snaps[i].size);
            }
        rc = run_grid(blocks, gx, gy, s, shared);
        if (rc == 0 && s > first) rc = compare_runs(fn, snaps, n_snaps, s);
    }
    free_snapshots(snaps, n_snaps);
    dev.launches++;
    return rc;
}

/* ---- the driver API ---- */

EXPORT int cuInit(unsigned flags) {
    if (flags) return HR_CU_INVALID_VALUE;
    if (dev.initialised) return HR_CU_OK;
    const char *sm = getenv("HYBRIDRT_EMU_SM"), *mb = getenv("HYBRIDRT_EMU_MEMORY_MB");
    const char *sched = getenv("HYBRIDRT_EMU_SCHEDULES"), *seed = getenv("HYBRIDRT_EMU_SEED");
    const char *guard = getenv("HYBRIDRT_EMU_GUARD");
    dev.sm = sm && atoi(sm) > 0 ? atoi(sm) : 80;
    snprintf(dev.schedules, sizeof dev.schedules, "%s", sched && sched[0] ? sched : "all");
    if (strcmp(dev.schedules, "all") && strcmp(dev.schedules, "in-order") && strcmp(dev.schedules, "reversed") &&
        strcmp(dev.schedules, "random"))
        return hr_emu_fail(HR_CU_INVALID_VALUE, "HYBRIDRT_EMU_SCHEDULES=%s: not all, in-order, reversed or random",
                           dev.schedules);
    dev.seed = seed ? strtoull(seed, NULL, 10) : 1;
    size_t megabytes = mb && atoll(mb) > 0 ? (size_t)atoll(mb) : 4096;
    hr_emu_memory_init(&dev.mem, megabytes << 20, guard && strcmp(guard, "before") == 0);
    if (hr_emu_stacks_init(&dev.stacks, MAX_THREADS, STACK_BYTES))
        return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "cannot map %d fiber stacks", MAX_THREADS);
    int rc = load_libraries();
    if (rc) return rc;
    install_fault_handlers();
    run.current = -1;
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
    const emu_kernel *k = kernel_named(name);
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
    if (run.current >= 0 || run.in_kernel)
        return hr_emu_fail(HR_CU_INVALID_VALUE, "cuLaunchKernel from inside a kernel");
    return launch(f, gx, gy, gz, bx, by, bz, shared, params);
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
