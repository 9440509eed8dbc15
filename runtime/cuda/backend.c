/* The CUDA backend's core: opening the GPU, device memory for core (through the caching allocator),
 * finding and loading kernels, launching them, cuBLAS. The op launchers live in ops_*.c. */
#include "cuda/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit/cache.h"
#include "jit/kernels.h"
#include "jit/nvrtc.h"
#include "jit/tune_db.h"
#include "jit/tune_space.h"

/* One loaded kernel, keyed by its name expression (unique across templates). */
typedef struct {
    char *name;
    char *lowered;  /* its mangled name, for on_launch */
    void *function; /* CUfunction */
    int nparams;    /* its parameters as the driver reports them (cuFuncGetParamInfo), -1 when it cannot */
    uint16_t param_size[32];
} kernel_slot;

#define KERNEL_SLOTS 1024 /* a power of two, well above the ~300 name expressions there are */
#define MAX_SPACES 64

/* A choice made before: launches of one op at one shape repeat every step, so each (instantiation,
 * shape) is looked up in the database once. */
#define TUNE_MEMO 256 /* a power of two */
typedef struct {
    char key[224];                   /* default expression | head | dims; "" when empty */
    char expr[128];
    int value;
} tune_memo;

/* What the tuner declared and measured, and what it forces now. */
typedef struct {
    hr_tune_space spaces[MAX_SPACES];
    int n_spaces;
    hr_tune_db db;                   /* empty when no database was found */
    char src_hash[MAX_SPACES][17];   /* per space: its template's source hash ("" until needed) */
    int forced[MAX_SPACES];          /* per space: a value forced by hr_cuda_tune_force, or 0 */
    tune_memo memo[TUNE_MEMO];       /* cleared when a value is forced */
} tuning;

typedef struct hr_cuda_backend {
    hr_cuda_driver own_driver;   /* opened here unless the options supplied a table */
    const hr_cuda_driver *drv;
    hr_cublas own_cublas;
    const hr_cublas *blas;
    void *blas_handle;           /* cublasHandle_t */
    hr_nvrtc nvrtc;
    hr_kernel_cache cache;
    hr_cuda_device_info info;
    int device;                  /* CUdevice */
    void *cu_ctx;                /* the primary context */
    hr_caching_allocator alloc;
    kernel_slot slots[KERNEL_SLOTS];
    void **modules;              /* every CUmodule loaded, unloaded at close */
    int n_modules, cap_modules;
    hr_cuda_stats stats;
    hr_cuda_options opts;        /* as opened (the library tables it points to outlive the backend) */
    tuning tune;
    void *timer[2];              /* CUevents of hr_cuda_timer_start/stop, made on first use */
    hr_device_mem mem;           /* what core sees; mem.state points back here */
} hr_cuda_backend;

static hr_cuda_backend *backend_of(const hr_ctx *ctx) {
    hr_device_mem *mem = ctx->devices[HR_DEVICE_CUDA];
    return mem ? mem->state : NULL;
}

static const char *cu_error(const hr_cuda_backend *be, int result, char *buf, size_t size) {
    return hr_cuda_error_string(be->drv, result, buf, size);
}

/* ---- raw memory for the caching allocator ---- */

static int raw_alloc(void *arg, size_t bytes, uint64_t *ptr) {
    hr_cuda_backend *be = arg;
    unsigned long long p = 0;
    if (be->drv->MemAlloc(&p, bytes) != 0) return -1;
    *ptr = p;
    return 0;
}

static void raw_free(void *arg, uint64_t ptr) {
    hr_cuda_backend *be = arg;
    be->drv->MemFree(ptr);
}

/* ---- device memory as core sees it (hr_device_mem) ---- */

static int mem_alloc(void *state, int64_t nbytes, void **data, char *err, size_t err_size) {
    hr_cuda_backend *be = state;
    uint64_t p;
    if (hr_alloc(&be->alloc, (size_t)nbytes, &p, err, err_size)) return -1;
    *data = (void *)(uintptr_t)p;
    return 0;
}

static void mem_free(void *state, void *data) {
    hr_cuda_backend *be = state;
    char err[256];
    /* cannot fail for a pointer the allocator handed out; nothing to report to */
    (void)hr_alloc_free(&be->alloc, (uint64_t)(uintptr_t)data, err, sizeof err);
}

static int mem_copy(void *state, void *dst, bool dst_host, const void *src, bool src_host, int64_t nbytes, char *err,
                    size_t err_size) {
    hr_cuda_backend *be = state;
    uint64_t d = (uint64_t)(uintptr_t)dst, s = (uint64_t)(uintptr_t)src;
    int rc;
    const char *what;
    if (dst_host && src_host) {
        memmove(dst, src, (size_t)nbytes);
        return 0;
    } else if (dst_host) {
        what = "device to host";
        rc = be->drv->MemcpyDtoH(dst, s, (size_t)nbytes);
    } else if (src_host) {
        what = "host to device";
        rc = be->drv->MemcpyHtoD(d, src, (size_t)nbytes);
    } else {
        what = "device to device";
        rc = be->drv->MemcpyDtoD(d, s, (size_t)nbytes);
    }
    if (rc == 0) return 0;
    char text[256];
    snprintf(err, err_size, "%s: copying %lld bytes %s: %s", be->mem.name, (long long)nbytes, what,
             cu_error(be, rc, text, sizeof text));
    return -1;
}

static int mem_zero(void *state, void *data, int64_t nbytes, char *err, size_t err_size) {
    hr_cuda_backend *be = state;
    int rc = be->drv->MemsetD8((uint64_t)(uintptr_t)data, 0, (size_t)nbytes);
    if (rc == 0) return 0;
    char text[256];
    snprintf(err, err_size, "%s: clearing %lld bytes: %s", be->mem.name, (long long)nbytes,
             cu_error(be, rc, text, sizeof text));
    return -1;
}

static int mem_sync(void *state, char *err, size_t err_size) {
    hr_cuda_backend *be = state;
    int rc = be->drv->CtxSynchronize();
    if (rc == 0) return 0;
    char text[256];
    snprintf(err, err_size, "%s: a kernel failed: %s", be->mem.name, cu_error(be, rc, text, sizeof text));
    return -1;
}

static void backend_close(void *state) {
    hr_cuda_backend *be = state;
    if (!be) return;
    for (int i = 0; i < KERNEL_SLOTS; i++) {
        free(be->slots[i].name);
        free(be->slots[i].lowered);
    }
    if (be->cu_ctx) {
        be->drv->CtxSetCurrent(be->cu_ctx);
        be->drv->CtxSynchronize();
        for (int i = 0; i < be->n_modules; i++) be->drv->ModuleUnload(be->modules[i]);
        for (int i = 0; i < 2; i++)
            if (be->timer[i]) be->drv->EventDestroy(be->timer[i]);
        if (be->blas_handle) be->blas->Destroy(be->blas_handle);
        hr_alloc_destroy(&be->alloc);
        be->drv->CtxSetCurrent(NULL);
        be->drv->DevicePrimaryCtxRelease(be->device);
    }
    free(be->modules);
    hr_tune_db_free(&be->tune.db);
    if (be->nvrtc.handle) hr_nvrtc_close(&be->nvrtc);
    if (be->own_cublas.handle) hr_cublas_close(&be->own_cublas);
    if (be->own_driver.handle) hr_cuda_driver_close(&be->own_driver);
    free(be);
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ---- tuning ---- */

/* The tuning spaces of the templates and this GPU's database: HYBRIDRT_TUNING names a file (or "off"),
 * else CACHE_DIR/tuned/<gpu>-<arch>.tune, else the checkout's cache/tuned/. Problems are warnings:
 * the kernels then run with their defaults. */
static void open_tuning(hr_cuda_backend *be, const char *cache_dir) {
    tuning *t = &be->tune;
    char err[1024];
    hr_tune_db_init(&t->db, be->info.name, be->stats.target);
    if (hr_tune_spaces_load(t->spaces, MAX_SPACES, &t->n_spaces, err, sizeof err)) {
        t->n_spaces = 0;
        snprintf(be->stats.tuning_warning, sizeof be->stats.tuning_warning, "tuning spaces: %s", err);
        return;
    }
    const char *env = getenv("HYBRIDRT_TUNING");
    if (env && strcmp(env, "off") == 0) return;
    char name[256], dir[700], candidates[2][1000];
    hr_tune_db_filename(be->info.name, be->stats.target, name, sizeof name);
    if (cache_dir) snprintf(dir, sizeof dir, "%s", cache_dir);
    else hr_kernel_cache_default_dir(dir, sizeof dir);
    int n = 0;
    if (env && env[0]) {
        snprintf(candidates[n++], sizeof candidates[0], "%s", env);
    } else {
        snprintf(candidates[n++], sizeof candidates[0], "%s/tuned/%s", dir, name);
#ifdef HR_SOURCE_DIR
        snprintf(candidates[n++], sizeof candidates[0], "%s/cache/tuned/%s", HR_SOURCE_DIR, name);
#endif
    }
    for (int i = 0; i < n; i++) {
        if (!env && access(candidates[i], R_OK) != 0) continue;
        char warn[1200];
        int records = hr_tune_db_load(&t->db, candidates[i], warn, sizeof warn);
        snprintf(be->stats.tuning_warning, sizeof be->stats.tuning_warning, "%s", warn);
        if (records < 0) {
            hr_tune_db_free(&t->db);
            hr_tune_db_init(&t->db, be->info.name, be->stats.target);
            return;
        }
        if (strcmp(t->db.gpu, be->info.name) != 0 || strcmp(t->db.arch, be->stats.target) != 0)
            snprintf(be->stats.tuning_warning, sizeof be->stats.tuning_warning,
                     "%.600s was measured on %.200s (%.31s), this is %.200s (%.31s): its choices are used anyway",
                     candidates[i],
                     t->db.gpu, t->db.arch, be->info.name, be->stats.target);
        snprintf(be->stats.tuning_file, sizeof be->stats.tuning_file, "%.999s", candidates[i]);
        be->stats.tuning_records = records;
        return;
    }
}

static int space_index(const tuning *t, const char *kernel) {
    for (int i = 0; i < t->n_spaces; i++)
        if (strcmp(t->spaces[i].kernel, kernel) == 0) return i;
    return -1;
}

int hr_cuda_tune_force(hr_ctx *ctx, const char *kernel, int value) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "tune: the CUDA backend is not open");
    int i = space_index(&be->tune, kernel);
    if (i < 0) return hr_error(ctx, "tune: %s has no tuning space (no @tune line in kernel_src/)", kernel);
    const hr_tune_space *s = &be->tune.spaces[i];
    bool listed = value == 0;
    for (int k = 0; k < s->n_values; k++) listed |= s->values[k] == value;
    if (!listed) return hr_error(ctx, "tune: %s=%d is not in %s's space (%s:%d)", s->params[s->knob], value, kernel,
                                 s->file, s->line);
    be->tune.forced[i] = value;
    for (int k = 0; k < TUNE_MEMO; k++) be->tune.memo[k].key[0] = '\0';
    return 0;
}

int hr_cuda_tuned(hr_ctx *ctx, const char *file, const char *default_expr, int head, int n_dims,
                  const char *const *dim_names, const int64_t *dims, char *out, size_t out_size, int *value) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "%s: the CUDA backend is not open", default_expr);
    tuning *t = &be->tune;
    char key[224];
    int used = snprintf(key, sizeof key, "%s|%d", default_expr, head);
    for (int k = 0; k < n_dims && used > 0 && (size_t)used < sizeof key; k++)
        used += snprintf(key + used, sizeof key - (size_t)used, "|%lld", (long long)dims[k]);
    bool memo_ok = used > 0 && (size_t)used < sizeof key;
    tune_memo *m = &t->memo[hash_name(key) & (TUNE_MEMO - 1)];
    if (memo_ok && strcmp(m->key, key) == 0) {
        snprintf(out, out_size, "%s", m->expr);
        *value = m->value;
        return 0;
    }
    char kernel[64], args[HR_TUNE_MAX_PARAMS][32], err[512];
    int n_args = hr_tune_split_expr(default_expr, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS);
    int i = n_args > 0 ? space_index(t, kernel) : -1;
    *value = 0;
    if (i < 0) {
        snprintf(out, out_size, "%s", default_expr);
        return 0;
    }
    const hr_tune_space *s = &t->spaces[i];
    int choice = t->forced[i];
    if (!choice && t->db.n) {
        if (!t->src_hash[i][0] && hr_tune_source_hash(file, t->src_hash[i], err, sizeof err))
            return hr_error(ctx, "%s", err);
        const char *dtype = strcmp(args[0], "double") == 0 ? "f64" : "f32";
        const hr_tune_record *r =
            hr_tune_db_lookup(&t->db, kernel, t->src_hash[i], dtype, head, dim_names, dims, n_dims, NULL);
        if (r) choice = hr_tune_record_best(r);
    }
    if (choice <= 0) choice = s->default_value;
    if (hr_tune_variant(s, default_expr, choice, out, out_size, err, sizeof err)) {
        /* a recorded choice this instantiation does not allow: the default, which always is */
        choice = s->default_value;
        if (hr_tune_variant(s, default_expr, choice, out, out_size, err, sizeof err)) return hr_error(ctx, "%s", err);
    }
    *value = choice;
    if (memo_ok && strlen(out) < sizeof m->expr) { /* a slot holds the latest choice that hashed to it */
        snprintf(m->key, sizeof m->key, "%s", key);
        snprintf(m->expr, sizeof m->expr, "%s", out);
        m->value = choice;
    }
    return 0;
}

/* ---- opening ---- */

static int open_fail(hr_ctx *ctx, hr_cuda_backend *be, const char *fmt, const char *a, const char *b) {
    char msg[4 * HR_ERR_SIZE]; /* room for both parts; the context keeps what fits */
    snprintf(msg, sizeof msg, fmt, a, b);
    backend_close(be);
    return hr_error(ctx, "%s", msg);
}

int hr_cuda_open(hr_ctx *ctx, int ordinal, const hr_cuda_options *opts) {
    static const hr_cuda_options defaults = {0};
    if (!opts) opts = &defaults;
    hr_device_mem *have = ctx->devices[HR_DEVICE_CUDA];
    if (have) {
        if (have->index == ordinal) return 0;
        return hr_error(ctx, "cuda:%d: this process already uses %s (one GPU per process)", ordinal, have->name);
    }
    hr_cuda_backend *be = calloc(1, sizeof *be);
    if (!be) return hr_error(ctx, "out of memory opening the CUDA backend");
    be->opts = *opts;
    be->opts.cache_dir = be->opts.target = NULL; /* not kept: used only while opening */
    char err[1024], text[256], name[32];
    snprintf(name, sizeof name, "cuda:%d", ordinal);
    if (opts->driver) {
        be->drv = opts->driver;
    } else {
        if (hr_cuda_driver_open(&be->own_driver, err, sizeof err))
            return open_fail(ctx, be, "%s: %s", name, err);
        be->drv = &be->own_driver;
    }
    int count = 0, rc;
    if ((rc = be->drv->DeviceGetCount(&count)) != 0)
        return open_fail(ctx, be, "%s: cannot count GPUs: %s", name, cu_error(be, rc, text, sizeof text));
    if (ordinal < 0 || ordinal >= count) {
        snprintf(err, sizeof err, "there %s %d GPU%s (cuda:0 .. cuda:%d)", count == 1 ? "is" : "are", count,
                 count == 1 ? "" : "s", count - 1);
        return open_fail(ctx, be, "%s: no such GPU: %s", name, count ? err : "the driver sees no GPU");
    }
    if (hr_cuda_device_info_get(be->drv, ordinal, &be->info, err, sizeof err))
        return open_fail(ctx, be, "%s: %s", name, err);
    if (hr_nvrtc_open(&be->nvrtc, err, sizeof err))
        return open_fail(ctx, be, "%s: NVRTC is needed to find or build the kernels: %s", name, err);
    if (opts->target) {
        snprintf(be->stats.target, sizeof be->stats.target, "%s", opts->target);
    } else if (hr_nvrtc_target_for(&be->nvrtc, be->info.sm, be->stats.target, sizeof be->stats.target, err,
                                   sizeof err) < 0) {
        return open_fail(ctx, be, "%s: %s", be->info.name, err);
    }
    if (hr_kernel_cache_open(&be->cache, opts->cache_dir, &be->nvrtc, err, sizeof err))
        return open_fail(ctx, be, "%s: kernel cache: %s", name, err);
    open_tuning(be, opts->cache_dir);
    if (opts->cublas) {
        be->blas = opts->cublas;
    } else {
        if (hr_cublas_open(&be->own_cublas, err, sizeof err))
            return open_fail(ctx, be, "%s: cuBLAS is needed for matmul: %s", name, err);
        be->blas = &be->own_cublas;
    }
    if ((rc = be->drv->DeviceGet(&be->device, ordinal)) != 0 ||
        (rc = be->drv->DevicePrimaryCtxRetain(&be->cu_ctx, be->device)) != 0 ||
        (rc = be->drv->CtxSetCurrent(be->cu_ctx)) != 0) {
        be->cu_ctx = NULL;
        return open_fail(ctx, be, "%s: no CUDA context: %s", name, cu_error(be, rc, text, sizeof text));
    }
    hr_alloc_init(&be->alloc, (hr_raw_memory){.alloc = raw_alloc, .free = raw_free, .arg = be});
    const char *no_caching = getenv("HYBRIDRT_CUDA_NO_CACHING"); /* for memory checkers: allocator.h */
    be->alloc.exact = no_caching && strcmp(no_caching, "1") == 0;
    /* the legacy default stream (NULL) and the default math mode (no TF32: f32 stays f32) */
    if ((rc = be->blas->Create(&be->blas_handle)) != 0 || (rc = be->blas->SetStream(be->blas_handle, NULL)) != 0 ||
        (rc = be->blas->SetMathMode(be->blas_handle, 0)) != 0) {
        snprintf(err, sizeof err, "cublasStatus %d", rc);
        return open_fail(ctx, be, "%s: cuBLAS did not start: %s", name, err);
    }
    snprintf(be->stats.gpu, sizeof be->stats.gpu, "%s (sm_%d)", be->info.name, be->info.sm);
    snprintf(be->stats.gpu_name, sizeof be->stats.gpu_name, "%s", be->info.name);
    snprintf(be->stats.driver, sizeof be->stats.driver, "%d.%d", be->drv->version / 1000, be->drv->version % 1000 / 10);
    snprintf(be->stats.nvrtc, sizeof be->stats.nvrtc, "%d.%d", be->nvrtc.major, be->nvrtc.minor);
    be->mem = (hr_device_mem){.state = be, .index = ordinal, .alloc = mem_alloc, .free = mem_free, .copy = mem_copy,
                              .zero = mem_zero, .sync = mem_sync, .close = backend_close, .refs = 1};
    snprintf(be->mem.name, sizeof be->mem.name, "%s", name);
    ctx->devices[HR_DEVICE_CUDA] = &be->mem;
    hr_cuda_register_elementwise(ctx);
    hr_cuda_register_sequence(ctx);
    hr_cuda_register_matmul(ctx);
    hr_cuda_register_norm(ctx);
    hr_cuda_register_scan(ctx);
    hr_cuda_register_optim(ctx);
    return 0;
}

int hr_cuda_get_stats(const hr_ctx *ctx, hr_cuda_stats *stats) {
    const hr_cuda_backend *be = backend_of(ctx);
    if (!be) return -1;
    *stats = be->stats;
    stats->mem = be->alloc.stats;
    snprintf(stats->cache_warning, sizeof stats->cache_warning, "%s", be->cache.warning);
    return 0;
}

/* ---- kernels ---- */

const char *hr_cuda_type_name(hr_dtype dt) { return dt == HR_F64 ? "double" : "float"; }

int64_t hr_cuda_grid_for(int64_t n, int64_t block) {
    if (n <= 0) return 0;
    int64_t g = (n + block - 1) / block;
    return g < 65536 ? g : 65536; /* enough blocks to fill any GPU; the grid-stride loop does the rest */
}

/* True when runtime/jit/kernels.c registers name_expression for file, so `cache warm` builds it. */
static bool registered_exactly(const char *file, const char *name_expression) {
    static const int head_sizes[] = {32, 64, 128};
    for (int t = 0; t < hr_kernel_template_count; t++) {
        if (strcmp(hr_kernel_templates[t].file, file) != 0) continue;
        for (const char *const *e = hr_kernel_templates[t].name_expressions; *e; e++) {
            if (!strstr(*e, "%d")) {
                if (strcmp(*e, name_expression) == 0) return true;
                continue;
            }
            for (int h = 0; h < 3; h++) {
                char expanded[256];
                snprintf(expanded, sizeof expanded, *e, head_sizes[h]);
                if (strcmp(expanded, name_expression) == 0) return true;
            }
        }
    }
    return false;
}


/* Registered, or a variant of a registered instantiation within its kernel's tuning space (what
 * `cache warm --tuned` builds). */
static bool registered(const tuning *t, const char *file, const char *name_expression) {
    if (registered_exactly(file, name_expression)) return true;
    char kernel[64], args[HR_TUNE_MAX_PARAMS][32], dflt[256], err[256];
    if (hr_tune_split_expr(name_expression, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) < 1) return false;
    int i = space_index(t, kernel);
    if (i < 0) return false;
    const hr_tune_space *s = &t->spaces[i];
    int allowed[HR_TUNE_MAX_VALUES], n = hr_tune_allowed_values(s, name_expression, allowed);
    bool listed = false;
    for (int k = 0; k < n; k++) listed |= allowed[k] == atoi(args[s->knob]);
    return listed && hr_tune_variant(s, name_expression, s->default_value, dflt, sizeof dflt, err, sizeof err) == 0 &&
           registered_exactly(file, dflt);
}

/* The kernel's parameter sizes from the driver, when it can tell (slot->nparams -1 when not). */
static void read_params(const hr_cuda_backend *be, kernel_slot *slot) {
    slot->nparams = -1;
    if (!be->drv->FuncGetParamInfo) return;
    int n = 0;
    size_t offset, size;
    while (n < 32 && be->drv->FuncGetParamInfo(slot->function, (size_t)n, &offset, &size) == 0 && size <= 0xFFFF)
        slot->param_size[n++] = (uint16_t)size;
    if (n > 0) slot->nparams = n;
}

/* The bytes a launch argument occupies. */
static size_t karg_size(const hr_karg *a) {
    return a->kind == HR_KARG_BYTES ? a->size : a->kind == HR_KARG_F32 ? sizeof(float) : sizeof(uint64_t);
}

/* The launcher's arguments against the kernel's parameters, as compiled: a mismatch (a template
 * changed without its launcher) is refused here, before the kernel reads garbage. */
static int check_args(hr_ctx *ctx, const kernel_slot *k, const char *name_expression, int nargs, const hr_karg *args) {
    if (k->nparams < 0) return 0;
    if (nargs != k->nparams)
        return hr_error(ctx, "%s takes %d parameters, its launcher passes %d (the template and runtime/cuda disagree)",
                        name_expression, k->nparams, nargs);
    for (int i = 0; i < nargs; i++)
        if (karg_size(&args[i]) != k->param_size[i])
            return hr_error(ctx, "%s: argument %d is %zu bytes, the kernel's parameter %d bytes (the template and "
                                 "runtime/cuda disagree)",
                            name_expression, i, karg_size(&args[i]), k->param_size[i]);
    return 0;
}

/* Loads a kernel: from the cache, else compiled by NVRTC (and stored), then into a module. A cached
 * image the driver rejects is deleted and rebuilt once; a fresh image failing is an error. */
static int load_kernel(hr_ctx *ctx, hr_cuda_backend *be, const char *file, const char *name_expression,
                       kernel_slot *slot) {
    if (!registered(&be->tune, file, name_expression))
        return hr_error(ctx, "kernel %s of %s is not registered in runtime/jit/kernels.c (cache warm would miss it)",
                        name_expression, file);
    double t0 = hr_now();
    hr_kernel_spec spec = {.template_file = file, .name_expression = name_expression, .target = be->stats.target};
    char err[HR_ERR_SIZE], text[256];
    if (be->n_modules == be->cap_modules) {
        int cap = be->cap_modules ? 2 * be->cap_modules : 64;
        void **m = realloc(be->modules, (size_t)cap * sizeof *m);
        if (!m) return hr_error(ctx, "out of memory loading kernel %s", name_expression);
        be->modules = m;
        be->cap_modules = cap;
    }
    for (int attempt = 0;; attempt++) {
        hr_nvrtc_output out;
        hr_cache_source how;
        if (hr_kernel_cache_get(&be->cache, &spec, &out, &how, err, sizeof err)) {
            hr_nvrtc_output_free(&out);
            return hr_error(ctx, "%s", err);
        }
        void *module = NULL;
        int rc = be->drv->ModuleLoadData(&module, out.image);
        if (rc != 0) {
            cu_error(be, rc, text, sizeof text);
            bool retry = how == HR_CACHE_HIT && attempt == 0;
            hr_nvrtc_output_free(&out);
            if (retry && hr_kernel_cache_discard(&be->cache, &spec, text) == 0) continue;
            return hr_error(ctx, "%s: the driver cannot load the image of %s built for %s: %s", be->mem.name,
                            name_expression, be->stats.target, text);
        }
        be->modules[be->n_modules++] = module;
        rc = be->drv->ModuleGetFunction(&slot->function, module, out.lowered_name);
        if (rc != 0) {
            hr_error(ctx, "kernel %s: no function %s in its module: %s", name_expression, out.lowered_name,
                     cu_error(be, rc, text, sizeof text));
            hr_nvrtc_output_free(&out);
            return -1;
        }
        slot->lowered = strdup(out.lowered_name);
        hr_nvrtc_output_free(&out);
        if (!slot->lowered) return hr_error(ctx, "out of memory loading kernel %s", name_expression);
        read_params(be, slot);
        if (how == HR_CACHE_HIT) be->stats.kernels_cached++;
        else if (how == HR_CACHE_REBUILT || attempt > 0) be->stats.kernels_rebuilt++;
        else be->stats.kernels_compiled++;
        be->stats.kernel_load_s += hr_now() - t0;
        return 0;
    }
}

static const kernel_slot *find_kernel(hr_ctx *ctx, hr_cuda_backend *be, const char *file,
                                      const char *name_expression) {
    size_t i = (size_t)hash_name(name_expression) & (KERNEL_SLOTS - 1);
    for (;; i = (i + 1) & (KERNEL_SLOTS - 1)) {
        kernel_slot *s = &be->slots[i];
        if (!s->name) break;
        if (strcmp(s->name, name_expression) == 0) return s;
    }
    kernel_slot slot = {0};
    if (load_kernel(ctx, be, file, name_expression, &slot)) {
        free(slot.lowered);
        return NULL;
    }
    slot.name = strdup(name_expression);
    if (!slot.name) {
        free(slot.lowered);
        hr_error(ctx, "out of memory");
        return NULL;
    }
    be->slots[i] = slot;
    return &be->slots[i];
}

int hr_cuda_launch(hr_ctx *ctx, const char *file, const char *name_expression, int64_t grid, int64_t block,
                   int64_t shared_bytes, int nargs, const hr_karg *args) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "%s: the CUDA backend is not open", name_expression);
    if (grid == 0) return 0;
    if (grid < 0 || grid > 2147483647LL || block < 1 || block > 1024 || shared_bytes < 0 || shared_bytes > 49152)
        return hr_error(ctx, "%s: cannot launch %lld blocks of %lld threads with %lld bytes of shared memory (the "
                             "limits: 2^31-1 blocks, 1024 threads, 48 KiB)",
                        name_expression, (long long)grid, (long long)block, (long long)shared_bytes);
    if (nargs > 32) return hr_error(ctx, "%s: %d arguments, at most 32", name_expression, nargs);
    const kernel_slot *k = find_kernel(ctx, be, file, name_expression);
    if (!k || check_args(ctx, k, name_expression, nargs, args)) return -1;
    if (be->opts.on_launch && be->opts.on_launch(be->opts.on_launch_arg, name_expression, k->lowered, grid, block,
                                                 shared_bytes, nargs, args, ctx->err, sizeof ctx->err))
        return -1;
    void *params[32];
    for (int i = 0; i < nargs; i++)
        params[i] = args[i].kind == HR_KARG_BYTES ? (void *)args[i].bytes : (void *)&args[i].v;
    int rc = be->drv->LaunchKernel(k->function, (unsigned)grid, 1, 1, (unsigned)block, 1, 1, (unsigned)shared_bytes, NULL,
                                   params, NULL);
    if (rc != 0) {
        char text[256];
        return hr_error(ctx, "%s: launch of %lld x %lld failed: %s", name_expression, (long long)grid,
                        (long long)block, cu_error(be, rc, text, sizeof text));
    }
    be->stats.launches++;
    return 0;
}

/* ---- scratch and copies ---- */

int hr_cuda_scratch(hr_ctx *ctx, int64_t bytes, uint64_t *ptr) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "the CUDA backend is not open");
    return hr_alloc(&be->alloc, (size_t)bytes, ptr, ctx->err, sizeof ctx->err);
}

void hr_cuda_scratch_free(hr_ctx *ctx, uint64_t ptr) {
    hr_cuda_backend *be = backend_of(ctx);
    if (be && ptr) mem_free(be, (void *)(uintptr_t)ptr);
}

int hr_cuda_download(hr_ctx *ctx, void *host, uint64_t device, int64_t bytes) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "the CUDA backend is not open");
    return mem_copy(be, host, true, (void *)(uintptr_t)device, false, bytes, ctx->err, sizeof ctx->err);
}

int hr_cuda_upload(hr_ctx *ctx, uint64_t device, const void *host, int64_t bytes) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "the CUDA backend is not open");
    return mem_copy(be, (void *)(uintptr_t)device, false, host, true, bytes, ctx->err, sizeof ctx->err);
}

int hr_cuda_memzero(hr_ctx *ctx, uint64_t device, int64_t bytes) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "the CUDA backend is not open");
    return bytes ? mem_zero(be, (void *)(uintptr_t)device, bytes, ctx->err, sizeof ctx->err) : 0;
}

/* ---- timing ---- */

int hr_cuda_timer_start(hr_ctx *ctx) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "timer: the CUDA backend is not open");
    char text[256];
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++)
        if (!be->timer[i]) rc = be->drv->EventCreate(&be->timer[i], 0);
    if (!rc) rc = be->drv->EventRecord(be->timer[0], NULL);
    if (rc) return hr_error(ctx, "timer: %s", cu_error(be, rc, text, sizeof text));
    return 0;
}

int hr_cuda_timer_stop(hr_ctx *ctx, double *ms) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be || !be->timer[0]) return hr_error(ctx, "timer: not started");
    char text[256];
    float t = 0;
    int rc = be->drv->EventRecord(be->timer[1], NULL);
    if (!rc) rc = be->drv->EventSynchronize(be->timer[1]);
    if (!rc) rc = be->drv->EventElapsedTime(&t, be->timer[0], be->timer[1]);
    if (rc) return hr_error(ctx, "timer: %s", cu_error(be, rc, text, sizeof text));
    *ms = t;
    return 0;
}

/* ---- cuBLAS ---- */

enum { OP_N = 0, OP_T = 1 }; /* cublasOperation_t */

/* One strided-batched call in cuBLAS's column-major terms. Row-major C = op(A) op(B) is column-major
 * C^T = op(B)^T op(A)^T: B comes first, m and n swap, and each stored row-major matrix is its own
 * transpose in column-major, so the transpose flags carry over unchanged. */
static int gemm_call(hr_ctx *ctx, hr_cuda_backend *be, hr_dtype dt, int64_t batch, int ta, int tb, int64_t m,
                     int64_t n, int64_t k, double alpha, uint64_t A, int64_t sa, uint64_t B, int64_t sb, double beta,
                     uint64_t C, int64_t sc) {
    const int64_t lim = 2147483647LL;
    if (m > lim || n > lim || k > lim || batch > lim)
        return hr_error(ctx, "matmul on the GPU: %lld x %lld x %lld in a batch of %lld passes cuBLAS's limit of "
                             "2^31-1 per dimension",
                        (long long)m, (long long)n, (long long)k, (long long)batch);
    int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n), ldc = (int)n;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    int rc;
    if (dt == HR_F64) {
        rc = be->blas->DgemmStridedBatched(be->blas_handle, tb ? OP_T : OP_N, ta ? OP_T : OP_N, (int)n, (int)m, (int)k,
                                           &alpha, (const double *)(uintptr_t)B, ldb, sb, (const double *)(uintptr_t)A,
                                           lda, sa, &beta, (double *)(uintptr_t)C, ldc, sc, (int)batch);
    } else {
        float fa = (float)alpha, fb = (float)beta;
        rc = be->blas->SgemmStridedBatched(be->blas_handle, tb ? OP_T : OP_N, ta ? OP_T : OP_N, (int)n, (int)m, (int)k,
                                           &fa, (const float *)(uintptr_t)B, ldb, sb, (const float *)(uintptr_t)A, lda,
                                           sa, &fb, (float *)(uintptr_t)C, ldc, sc, (int)batch);
    }
    if (rc != 0)
        return hr_error(ctx, "matmul on the GPU: cuBLAS gemm (%lld x %lld x %lld, batch %lld) failed with status %d",
                        (long long)m, (long long)n, (long long)k, (long long)batch, rc);
    be->stats.launches++;
    return 0;
}

int hr_cuda_gemm(hr_ctx *ctx, hr_dtype dt, int64_t batch, int ta, int tb, int64_t m, int64_t n, int64_t k,
                 double alpha, uint64_t A, int64_t stride_a, uint64_t B, int64_t stride_b, double beta, uint64_t C,
                 int64_t stride_c) {
    hr_cuda_backend *be = backend_of(ctx);
    if (!be) return hr_error(ctx, "matmul: the CUDA backend is not open");
    if (batch <= 0 || m <= 0 || n <= 0) return 0;
    if (k <= 0) { /* an empty product: C = beta C */
        if (beta == 1) return 0;
        return hr_error(ctx, "matmul on the GPU: an empty inner dimension with beta %g", beta);
    }
    /* A batch of items that share one B, with A's items stacked rows (not transposed): one product with
     * batch * m rows. The same when C is shared (a weight's gradient summed over the batch) and
     * the stacked dimension is the inner one. */
    if (batch > 1 && stride_b == 0 && stride_c != 0 && !ta && stride_a == m * k && stride_c == m * n)
        return gemm_call(ctx, be, dt, 1, 0, tb, batch * m, n, k, alpha, A, 0, B, 0, beta, C, 0);
    if (batch > 1 && stride_c == 0) {
        /* C (k x n or n x k) += sum over items: the items stack along the inner dimension when both
         * operands are stored with their batch-stacked rows contiguous (beta 1: the CPU applies beta
         * at every item, which only then equals applying it once) */
        if (beta == 1 && ta && !tb && stride_a == k * m && stride_b == k * n) /* C(m x n) += A^T B: A (k x m) rows */
            return gemm_call(ctx, be, dt, 1, 1, 0, m, n, batch * k, alpha, A, 0, B, 0, beta, C, 0);
        for (int64_t i = 0; i < batch; i++) /* anything else: one item at a time, in order, as the CPU */
            if (gemm_call(ctx, be, dt, 1, ta, tb, m, n, k, alpha, A + (uint64_t)(i * stride_a * (int64_t)hr_dtype_size(dt)),
                          0, B + (uint64_t)(i * stride_b * (int64_t)hr_dtype_size(dt)), 0, beta, C, 0))
                return -1;
        return 0;
    }
    return gemm_call(ctx, be, dt, batch, ta, tb, m, n, k, alpha, A, stride_a, B, stride_b, beta, C, stride_c);
}
