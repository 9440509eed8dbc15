/* NVRTC through the dlopen layer, without a GPU: the library opens and lists its targets, every
 * template in kernel_src/ compiles for every target it lists (cubin) and for the newest as PTX, a
 * broken source fails with NVRTC's log, and missing libraries are reported by name. Skips (exit 0,
 * saying so) when NVRTC is not installed, unless HYBRIDRT_REQUIRE_NVRTC=1 (CI sets it).
 * usage: test_nvrtc KERNEL_SRC_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/driver.h"
#include "jit/nvrtc.h"
#include "test_util.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* The kernels each template file instantiates, by name expression. */
typedef struct {
    const char *file;
    const char *names[4];
} template_case;

static const template_case templates[] = {
    {"fill.cu", {"hr_fill<float>", "hr_fill<double>", NULL}},
};

static void test_templates(const hr_nvrtc *lib, const char *dir) {
    char err[2048];
    for (size_t t = 0; t < sizeof templates / sizeof templates[0]; t++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, templates[t].file);
        char *src = read_file(path);
        CHECK(src != NULL, "cannot read %s", path);
        if (!src) continue;
        for (int k = 0; templates[t].names[k]; k++) {
            for (int a = 0; a < lib->n_archs; a++) {
                char target[32];
                snprintf(target, sizeof target, "sm_%d", lib->archs[a]);
                hr_nvrtc_output out;
                int rc = hr_nvrtc_compile(lib, src, templates[t].file, templates[t].names[k], target, NULL, 0, &out,
                                          err, sizeof err);
                CHECK(rc == 0, "%s %s %s: %s", templates[t].file, templates[t].names[k], target, err);
                if (rc == 0) {
                    CHECK(out.size > 4 && memcmp(out.image, "\x7f" "ELF", 4) == 0 && !out.is_ptx,
                          "%s %s: the cubin is not an ELF image", templates[t].names[k], target);
                    CHECK(strstr(out.lowered_name, "hr_fill") != NULL, "lowered name %s", out.lowered_name);
                }
                hr_nvrtc_output_free(&out);
            }
            /* PTX for the newest target: what a GPU newer than NVRTC gets, finished by the driver */
            char target[32];
            snprintf(target, sizeof target, "compute_%d", lib->archs[lib->n_archs - 1]);
            hr_nvrtc_output out;
            int rc = hr_nvrtc_compile(lib, src, templates[t].file, templates[t].names[k], target, NULL, 0, &out, err,
                                      sizeof err);
            CHECK(rc == 0 && out.is_ptx && strstr(out.image, ".entry") != NULL, "%s %s as PTX: %s",
                  templates[t].names[k], target, rc ? err : "no .entry in the PTX");
            hr_nvrtc_output_free(&out);
        }
        free(src);
    }
}

static void test_errors(const hr_nvrtc *lib) {
    char err[2048];
    hr_nvrtc_output out;
    const char *broken = "template <typename T> __global__ void k(T *x) { x[0] = undefined_name; }\n";
    int rc = hr_nvrtc_compile(lib, broken, "broken.cu", "k<float>", "sm_80", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "broken.cu (k<float>, sm_80) does not compile") && strstr(err, "undefined_name"),
          "a broken source: %s", err);
    CHECK(out.log && strstr(out.log, "undefined_name"), "the whole log is kept");
    hr_nvrtc_output_free(&out);
    rc = hr_nvrtc_compile(lib, broken, "broken.cu", "k<float>", "gfx90a", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0 && strstr(err, "unknown target 'gfx90a'"), "an unknown target: %s", err);
    const char *fine = "template <typename T> __global__ void k(T *x) { x[0] = T(1); }\n";
    rc = hr_nvrtc_compile(lib, fine, "fine.cu", "no_such_kernel<float>", "sm_80", NULL, 0, &out, err, sizeof err);
    CHECK(rc != 0, "a name expression naming nothing fails");
    hr_nvrtc_output_free(&out);
    const char *opts[] = {"-DHR_VALUE=3"};
    const char *with_macro = "template <typename T> __global__ void k(T *x) { x[0] = T(HR_VALUE); }\n";
    rc = hr_nvrtc_compile(lib, with_macro, "macro.cu", "k<float>", "sm_80", opts, 1, &out, err, sizeof err);
    CHECK(rc == 0, "extra options reach NVRTC: %s", err);
    hr_nvrtc_output_free(&out);
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
        const char *require = getenv("HYBRIDRT_REQUIRE_NVRTC");
        if (require && strcmp(require, "1") == 0) {
            CHECK(0, "NVRTC is required (HYBRIDRT_REQUIRE_NVRTC=1) but: %s", err);
        } else {
            printf("jit.nvrtc: SKIPPED the compile tests: NVRTC not found (%s)\n", err);
        }
        return test_summary("jit.nvrtc");
    }
    printf("NVRTC %d.%d (%s), %d targets: sm_%d ... sm_%d\n", lib.major, lib.minor, lib.path, lib.n_archs,
           lib.archs[0], lib.archs[lib.n_archs - 1]);
    CHECK(lib.major >= 12, "NVRTC 12 or newer, got %d.%d", lib.major, lib.minor);
    CHECK(hr_nvrtc_supports(&lib, 80) && !hr_nvrtc_supports(&lib, 1), "target list");
    test_templates(&lib, argv[1]);
    test_errors(&lib);
    hr_nvrtc_close(&lib);
    return test_summary("jit.nvrtc");
}
