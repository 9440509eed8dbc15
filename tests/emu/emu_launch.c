/* Launches on the emulated device: the checks a GPU makes (and more), then the grid run block by
 * block, each GPU thread a fiber whose __syncthreads() is a real barrier, in up to three schedules
 * whose results must agree bit for bit; faults inside a kernel (guard pages, integer division by zero)
 * end the launch with an error naming the kernel, the block, the thread and the address. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_device.h"
#include "emu_fiber.h"

#define MAX_THREADS 1024
#define STACK_BYTES (64 * 1024)
#define SHARED_LIMIT 49152

#define SHAPE_SLOTS 8192 /* distinct (kernel, launch shape) pairs remembered for HYBRIDRT_EMU_COMPARE */

typedef struct {
    const emu_kernel *kernel;
    unsigned gx, bx, shared;
    long long compared;
} launch_shape;

static struct {
    hr_emu_memory *mem;
    hr_emu_stacks stacks;
    char schedules[16];
    long long compare_first;   /* HYBRIDRT_EMU_COMPARE, -1: every launch */
    launch_shape shapes[SHAPE_SLOTS];
    uint64_t seed, launches;
    struct sigaction previous[32];
} lc;

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
    bool flat;               /* a 1-D block */
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
    sigaction(sig, &lc.previous[sig], NULL);
}

static void install_fault_handlers(void) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, &lc.previous[sigs[i]]);
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

/* threadIdx of the t-th thread of the block (no divisions for the usual 1-D block). */
static inline void set_thread_index(unsigned t) {
    if (run.flat) run.idx->thread.x = t;
    else run.idx->thread = (hr_emu_dim3){t % run.bx, t / run.bx % run.by, t / (run.bx * run.by)};
}

/* One thread of the block run as a plain call on the scheduler's stack. */
static void run_direct(unsigned t) {
    run.current = (int)t;
    set_thread_index(t);
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
    hr_emu_poison_shared(k, dynamic_bytes);
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
                hr_emu_context_make(&f->ctx, hr_emu_stack(&lc.stacks, (int)t), lc.stacks.size, fiber_main);
                f->state = F_READY;
            }
            if (f->state != F_READY) continue;
            run.current = (int)t;
            set_thread_index(t);
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
    char what[256];
    if (hr_emu_shared_intact(k, dynamic_bytes > 0, what, sizeof what))
        return hr_emu_fail(HR_CU_LAUNCH_FAILED, "%s, block %llu: %s", k->k->name_expression, (unsigned long long)b, what);
    hr_emu_poison_shared(k, dynamic_bytes);
    return 0;
}

/* Runs the whole grid under one schedule. */
static int run_grid(uint64_t blocks, unsigned gx, unsigned gy, int schedule, size_t dynamic_bytes) {
    uint64_t *rng = &run.rng; /* not a local: a fault returns here through siglongjmp */
    *rng = (lc.seed * 0x9E3779B97F4A7C15ULL) ^ (lc.launches + 1) * 0xD1B54A32D192ED03ULL;
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
        int stack = hr_emu_stack_guard_hit(&lc.stacks, run.fault_addr);
        if (run.fault_sig == SIGFPE) snprintf(what, sizeof what, "an integer division by zero");
        else if (stack >= 0) snprintf(what, sizeof what, "a stack overflow (the thread's %d KiB)", STACK_BYTES / 1024);
        else {
            char desc[400];
            hr_emu_memory_describe(lc.mem, run.fault_addr, desc, sizeof desc);
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

/* Whether this launch runs in all three schedules: every launch when HYBRIDRT_EMU_COMPARE is unset,
 * else the first N of each kernel at each launch shape (grid, block, shared memory); the later ones
 * of that shape run in one schedule, rotating. A training loop repeats its shapes every step, so
 * this keeps the comparison for every distinct launch at a third of the cost. */
static bool compare_this_time(const emu_kernel *k, unsigned gx, unsigned bx, unsigned shared) {
    if (lc.compare_first < 0) return true;
    uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)gx << 20 | bx) * 0xC2B2AE3D27D4EB4FULL ^ shared;
    for (size_t i = h % SHAPE_SLOTS, probes = 0; probes < SHAPE_SLOTS; i = (i + 1) % SHAPE_SLOTS, probes++) {
        launch_shape *s = &lc.shapes[i];
        if (!s->kernel) *s = (launch_shape){.kernel = k, .gx = gx, .bx = bx, .shared = shared};
        if (s->kernel == k && s->gx == gx && s->bx == bx && s->shared == shared) return s->compared++ < lc.compare_first;
    }
    return true; /* the table is full: compare */
}

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
        if (p && !hr_emu_alloc_find(lc.mem, p, 0)) {
            char desc[400];
            hr_emu_memory_describe(lc.mem, p, desc, sizeof desc);
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
        hr_emu_alloc *a = p ? hr_emu_alloc_find(lc.mem, p, 0) : NULL;
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

int hr_emu_launch(emu_function *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
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
    hr_emu_poison_library(ek->lib);

    snapshot snaps[HR_EMU_MAX_PARAMS];
    int n_snaps = writable_buffers(fn, params, snaps);
    int first = 0, last = 2;
    if (strcmp(lc.schedules, "in-order") == 0) last = 0;
    else if (strcmp(lc.schedules, "reversed") == 0) first = last = 1;
    else if (strcmp(lc.schedules, "random") == 0) first = last = 2;
    else if (!compare_this_time(ek, gx, bx, shared)) first = last = (int)(lc.launches % 3); /* rotating */
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
    run.flat = by == 1 && bz == 1;
    run.idx->thread = (hr_emu_dim3){0, 0, 0};
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
    lc.launches++;
    return rc;
}

int hr_emu_launch_init(hr_emu_memory *mem, const char *schedules, uint64_t seed, long long compare_first) {
    lc.mem = mem;
    lc.compare_first = compare_first;
    snprintf(lc.schedules, sizeof lc.schedules, "%s", schedules);
    if (strcmp(schedules, "all") && strcmp(schedules, "in-order") && strcmp(schedules, "reversed") &&
        strcmp(schedules, "random"))
        return hr_emu_fail(HR_CU_INVALID_VALUE, "HYBRIDRT_EMU_SCHEDULES=%s: not all, in-order, reversed or random",
                           schedules);
    lc.seed = seed;
    if (hr_emu_stacks_init(&lc.stacks, MAX_THREADS, STACK_BYTES))
        return hr_emu_fail(HR_CU_OUT_OF_MEMORY, "cannot map %d fiber stacks", MAX_THREADS);
    install_fault_handlers();
    run.current = -1;
    return HR_CU_OK;
}

bool hr_emu_launch_busy(void) { return run.current >= 0 || run.in_kernel; }
