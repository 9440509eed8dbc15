/* NVRTC through the dlopen layer, without a GPU: the library opens and lists its targets, every
 * template in kernel_src/ compiles for every target it lists (cubin) and for the newest as PTX, the
 * sum of squares has no fused multiply-add (the CPU's bits), a broken source fails with NVRTC's log,
 * and missing libraries are reported by name. Skips (exit 0,
 * saying so) when NVRTC is not installed, unless HYBRIDRT_REQUIRE_NVRTC=1 (CI sets it).
 * usage: test_nvrtc KERNEL_SRC_DIR */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/driver.h"
#include "jit/cache.h"
#include "jit/kernels.h"
#include "jit/nvrtc.h"
#include "jit/tune_space.h"
#include "test_util.h"

/* One compile without headers. */
static int compile(const hr_nvrtc *lib, const char *src, const char *src_name, const char *name_expression,
                   const char *target, const char *const *options, int n_options, hr_nvrtc_output *out, char *err,
                   size_t err_size) {
    hr_nvrtc_job job = {.src = src, .src_name = src_name, .name_expression = name_expression, .target = target,
                        .options = options, .n_options = n_options};
    return hr_nvrtc_compile(lib, &job, out, err, err_size);
}

/* Every name expression of a template, head sizes expanded, and every other value its tuning space
 * (@tune) allows for it: what `cache warm` and `cache warm --tuned` may build. Returns the count. */
static int expand_names(const hr_kernel_template *t, const hr_tune_space *spaces, int n_spaces, char names[][128],
                        int max) {
    static const int head_sizes[] = {32, 64, 128};
    int n = 0;
    for (int k = 0; t->name_expressions[k]; k++) {
        if (strstr(t->name_expressions[k], "%d")) {
            for (int h = 0; h < 3 && n < max; h++) snprintf(names[n++], 128, t->name_expressions[k], head_sizes[h]);
        } else if (n < max) {
            snprintf(names[n++], 128, "%s", t->name_expressions[k]);
        }
    }
    for (int i = 0, registered = n; i < registered; i++) {
        char kernel[64], args[HR_TUNE_MAX_PARAMS][32], err[256];
        if (hr_tune_split_expr(names[i], kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) < 1) continue;
        const hr_tune_space *s = hr_tune_space_find(spaces, n_spaces, kernel);
        int values[HR_TUNE_MAX_VALUES], n_values = s ? hr_tune_allowed_values(s, names[i], values) : 0;
        for (int v = 0; v < n_values && n < max; v++)
            if (values[v] != s->default_value && hr_tune_variant(s, names[i], values[v], names[n], 128, err, sizeof err) == 0)
                n++;
    }
    return n;
}

/* Every template registered in runtime/jit/kernels.c, every instantiation, every target NVRTC lists
 * (and the newest as PTX); and every .cu file of kernel_src/ is registered. */
static void test_templates(const hr_nvrtc *lib, const char *dir) {
    char err[2048];
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot list %s", dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".cu") != 0) continue;
        bool registered = false;
        for (int t = 0; t < hr_kernel_template_count; t++) registered |= strcmp(hr_kernel_templates[t].file, e->d_name) == 0;
        CHECK(registered, "kernel_src/%s is not in hr_kernel_templates (runtime/jit/kernels.c)", e->d_name);
    }
    if (d) closedir(d);
    /* the shared headers (common.cuh), which the templates #include by name */
    const char *header_names[16];
    char *header_sources[16];
    int n_headers = hr_kernel_header_names(header_names, 16), loaded = 0;
    for (; loaded < n_headers; loaded++) {
        size_t hsize;
        header_sources[loaded] = hr_kernel_source(header_names[loaded], &hsize, err, sizeof err);
        CHECK(header_sources[loaded] != NULL, "header %s: %s", header_names[loaded], err);
        if (!header_sources[loaded]) break;
    }
    CHECK(n_headers >= 1, "kernel_src/common.cuh is in the binary (%d headers)", n_headers);
    static hr_tune_space spaces[64];
    int n_spaces = 0;
    CHECK(hr_tune_spaces_load(spaces, 64, &n_spaces, err, sizeof err) == 0, "tuning spaces: %s", err);
    for (int t = 0; t < hr_kernel_template_count; t++) {
        const char *file = hr_kernel_templates[t].file;
        size_t size = 0;
        char *src = hr_kernel_source(file, &size, err, sizeof err);
        CHECK(src != NULL && size > 0, "template %s: %s", file, err);
        if (!src) continue;
        char names[128][128];
        const char *more[128];
        int n_names = expand_names(&hr_kernel_templates[t], spaces, n_spaces, names, 128);
        for (int k = 1; k < n_names; k++) more[k - 1] = names[k];
        /* every instantiation in one program per target: one compile, one module; targets in parallel
         * (NVRTC compiles distinct programs concurrently), the checks one thread at a time */
#pragma omp parallel for schedule(dynamic)
        for (int a = 0; a <= lib->n_archs; a++) {
            char target[32], why[2048];
            if (a < lib->n_archs) snprintf(target, sizeof target, "sm_%d", lib->archs[a]);
            else snprintf(target, sizeof target, "compute_%d", lib->archs[lib->n_archs - 1]); /* PTX for the newest */
            hr_nvrtc_job job = {.src = src, .src_name = file, .name_expression = names[0], .target = target,
                                .more_names = more, .n_more = n_names - 1,
                                .header_sources = (const char *const *)header_sources, .header_names = header_names,
                                .n_headers = loaded};
            hr_nvrtc_output out;
            int rc = hr_nvrtc_compile(lib, &job, &out, why, sizeof why);
#pragma omp critical
            {
                CHECK(rc == 0, "%s (%d kernels) for %s: %s", file, n_names, target, why);
                if (rc == 0) {
                    bool is_ptx = a == lib->n_archs;
                    CHECK(out.is_ptx == is_ptx && (is_ptx ? strstr(out.image, ".entry") != NULL
                                                          : out.size > 4 && memcmp(out.image, "\x7f" "ELF", 4) == 0),
                          "%s %s: not a %s image", file, target, is_ptx ? "PTX" : "cubin");
                    bool all_named = out.lowered_name[0] && out.n_more == n_names - 1;
                    for (int k = 0; all_named && k < out.n_more; k++) all_named = out.more_lowered[k][0] != '\0';
                    CHECK(all_named, "%s %s: a mangled name for each of the %d kernels", file, target, n_names);
                    /* a cubin names every kernel in its symbol table */
                    for (int k = 0; !is_ptx && all_named && k < n_names; k++) {
                        const char *lowered = k ? out.more_lowered[k - 1] : out.lowered_name;
                        bool found = memmem(out.image, out.size, lowered, strlen(lowered)) != NULL;
                        CHECK(found, "%s %s: kernel %s (%s) is in the cubin", file, target, names[k], lowered);
                    }
                }
            }
            hr_nvrtc_output_free(&out);
        }
        free(src);
    }
    for (int i = 0; i < loaded; i++) free(header_sources[i]);
}

static void test_errors(const hr_nvrtc *lib) {
    char err[2048];
    hr_nvrtc_output out;
    const char *broken = "template <typename T> __global__ void k(T *x) { x[0] = undefined_name; }\n";
    int rc = compile(lib, broken, "broken.cu", "k<float>", "sm_80", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "broken.cu (k<float>, sm_80) does not compile") && strstr(err, "undefined_name"),
          "a broken source: %s", err);
    CHECK(out.log && strstr(out.log, "undefined_name"), "the whole log is kept");
    hr_nvrtc_output_free(&out);
    rc = compile(lib, broken, "broken.cu", "k<float>", "gfx90a", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "unknown target 'gfx90a'"), "an unknown target: %s", err);
    const char *fine = "template <typename T> __global__ void k(T *x) { x[0] = T(1); }\n";
    rc = compile(lib, fine, "fine.cu", "no_such_kernel<float>", "sm_80", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0, "a name expression naming nothing fails");
    hr_nvrtc_output_free(&out);
    const char *opts[] = {"-DHR_VALUE=3"};
    const char *with_macro = "template <typename T> __global__ void k(T *x) { x[0] = T(HR_VALUE); }\n";
    rc = compile(lib, with_macro, "macro.cu", "k<float>", "sm_80", opts, 1, &out, err, sizeof err);
    CHECK(rc == 0, "extra options reach NVRTC: %s", err);
    hr_nvrtc_output_free(&out);
}

/* The body of the PTX entry function `lowered` (from its opening brace to the matching closing one), or
 * NULL; its length into *len. */
static const char *ptx_body(const char *ptx, const char *lowered, size_t *len) {
    char entry[512];
    snprintf(entry, sizeof entry, ".entry %s(", lowered);
    const char *p = strstr(ptx, entry);
    if (!p || !(p = strchr(p, '{'))) return NULL;
    int depth = 0;
    for (const char *q = p; *q; q++) {
        depth += *q == '{';
        depth -= *q == '}';
        if (depth == 0) {
            *len = (size_t)(q - p + 1);
            return p;
        }
    }
    return NULL;
}

/* The first floating-point instruction in body that may become a fused multiply-add: an fma or mad
 * already (NVRTC contracts a*b+c by default), or a mul/add without a rounding mode, which ptxas may
 * still fuse (the PTX ISA; __dmul_rn/__dadd_rn give mul.rn/add.rn, never fused). NULL when none. */
static const char *contractible(const char *body, size_t len, char *what, size_t what_size) {
    static const char *const ops[] = {"fma.", "mad.rn.f", "mad.f", "mul.f32", "mul.f64", "add.f32", "add.f64",
                                      "mul.ftz.f32", "add.ftz.f32"};
    const char *first = NULL;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const char *hit = memmem(body, len, ops[k], strlen(ops[k]));
        if (hit && (!first || hit < first)) first = hit;
    }
    if (first) snprintf(what, what_size, "%.*s", (int)strcspn(first, ";\n"), first);
    return first;
}

/* kernel_src/optim.cu promises the CPU's bits for the sum of squares (hr_cpu_sum_squares, which is
 * never contracted: runtime/cpu/optim.c): its PTX, for the oldest and the newest PTX target, has no
 * multiply-add and no multiply or add ptxas could fuse into one. */
static void test_sum_squares_not_contracted(const hr_nvrtc *lib) {
    static const char *const kernels[] = {"hr_sum_squares_blocks<float>", "hr_sum_squares_blocks<double>",
                                          "hr_sum_squares_total"};
    char targets[2][32];
    snprintf(targets[0], sizeof targets[0], "compute_%d", hr_nvrtc_supports(lib, 80) ? 80 : lib->archs[0]);
    snprintf(targets[1], sizeof targets[1], "compute_%d", lib->archs[lib->n_archs - 1]);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            char err[2048], what[128];
            hr_kernel_spec spec = {.template_file = "optim.cu", .name_expression = kernels[k], .target = targets[t]};
            hr_nvrtc_output out;
            int rc = hr_kernel_compile(lib, &spec, &out, err, sizeof err);
            CHECK(rc == 0 && out.is_ptx, "optim.cu %s to PTX for %s: %s", kernels[k], targets[t], rc ? err : "not PTX");
            size_t len = 0;
            const char *body = rc ? NULL : ptx_body(out.image, out.lowered_name, &len);
            CHECK(rc || body, "optim.cu %s: no .entry %s in the PTX for %s", kernels[k], out.lowered_name, targets[t]);
            if (body) {
                CHECK(!contractible(body, len, what, sizeof what),
                      "optim.cu %s for %s: `%s` may fuse a multiply and an add (the CPU does not: use __dmul_rn and "
                      "__dadd_rn)", kernels[k], targets[t], what);
                CHECK(memmem(body, len, "add.rn.f64", 10) != NULL, "optim.cu %s for %s: its sum is add.rn.f64",
                      kernels[k], targets[t]);
            }
            hr_nvrtc_output_free(&out);
        }
}

static void test_missing_libraries(void) {
    char err[1024];
    setenv("HYBRIDRT_NVRTC_LIBRARY", "/nonexistent/libnvrtc.so.99", 1);
    hr_nvrtc lib;
    CHECK(hr_nvrtc_open(&lib, err, sizeof err) != 0 && strstr(err, "HYBRIDRT_NVRTC_LIBRARY=/nonexistent/libnvrtc.so.99") &&
              strstr(err, "cannot be loaded"),
          "a missing NVRTC: %s", err);
    unsetenv("HYBRIDRT_NVRTC_LIBRARY");
    setenv("HYBRIDRT_CUDA_DRIVER_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    hr_cuda_driver drv;
    CHECK(hr_cuda_driver_open(&drv, err, sizeof err) != 0 && strstr(err, "no NVIDIA driver") &&
              strstr(err, "/nonexistent/libcuda.so.1"),
          "a missing driver: %s", err);
    unsetenv("HYBRIDRT_CUDA_DRIVER_LIBRARY");
    setenv("HYBRIDRT_CUBLAS_LIBRARY", "/nonexistent/libcublas.so.99", 1);
    hr_cublas blas;
    CHECK(hr_cublas_open(&blas, err, sizeof err) != 0 && strstr(err, "HYBRIDRT_CUBLAS_LIBRARY"), "a missing cuBLAS: %s",
          err);
    unsetenv("HYBRIDRT_CUBLAS_LIBRARY");
    /* a file that is there but is not the library asked for */
    setenv("HYBRIDRT_NVRTC_LIBRARY", "libm.so.6", 1);
    CHECK(hr_nvrtc_open(&lib, err, sizeof err) != 0 && strstr(err, "has no symbol nvrtcGetErrorString"),
          "a wrong library: %s", err);
    unsetenv("HYBRIDRT_NVRTC_LIBRARY");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_nvrtc KERNEL_SRC_DIR\n");
        return 2;
    }
    test_missing_libraries();
    char err[1024];
    hr_nvrtc lib;
    if (hr_nvrtc_open(&lib, err, sizeof err) != 0) {
        test_library_missing("jit.nvrtc", "the compile tests", "NVRTC", "HYBRIDRT_REQUIRE_NVRTC", err);
        return test_summary("jit.nvrtc");
    }
    printf("NVRTC %d.%d (%s), %d targets: sm_%d ... sm_%d\n", lib.major, lib.minor, lib.path, lib.n_archs,
           lib.archs[0], lib.archs[lib.n_archs - 1]);
    CHECK(lib.major >= 12, "NVRTC 12 or newer, got %d.%d", lib.major, lib.minor);
    CHECK(hr_nvrtc_supports(&lib, 80) && !hr_nvrtc_supports(&lib, 1), "target list");
    test_templates(&lib, argv[1]);
    test_sum_squares_not_contracted(&lib);
    test_errors(&lib);
    hr_nvrtc_close(&lib);
    return test_summary("jit.nvrtc");
}
