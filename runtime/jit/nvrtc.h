/* NVRTC, opened at run time: the function table, the library's version and target list, and one
 * compile call (a CUDA C++ source and a name expression to a cubin or PTX image). Declares its own
 * types (NVRTC's C ABI: int results, opaque program handles), so the build needs no CUDA header. */
#ifndef HR_JIT_NVRTC_H
#define HR_JIT_NVRTC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hr_nvrtc_program *hr_nvrtc_prog;

typedef struct hr_nvrtc {
    void *handle;
    char path[512];              /* the library file loaded */
    int major, minor;            /* nvrtcVersion */
    int n_archs;                 /* the SM versions it compiles for, e.g. 75, 80, ..., 120 */
    int archs[64];
    const char *(*GetErrorString)(int result);
    int (*Version)(int *major, int *minor);
    int (*GetNumSupportedArchs)(int *n);
    int (*GetSupportedArchs)(int *archs);
    int (*CreateProgram)(hr_nvrtc_prog *prog, const char *src, const char *name, int n_headers,
                         const char *const *headers, const char *const *include_names);
    int (*DestroyProgram)(hr_nvrtc_prog *prog);
    int (*CompileProgram)(hr_nvrtc_prog prog, int n_options, const char *const *options);
    int (*AddNameExpression)(hr_nvrtc_prog prog, const char *name_expression);
    int (*GetLoweredName)(hr_nvrtc_prog prog, const char *name_expression, const char **lowered);
    int (*GetCUBINSize)(hr_nvrtc_prog prog, size_t *size);
    int (*GetCUBIN)(hr_nvrtc_prog prog, char *cubin);
    int (*GetPTXSize)(hr_nvrtc_prog prog, size_t *size);
    int (*GetPTX)(hr_nvrtc_prog prog, char *ptx);
    int (*GetProgramLogSize)(hr_nvrtc_prog prog, size_t *size);
    int (*GetProgramLog)(hr_nvrtc_prog prog, char *log);
} hr_nvrtc;

/* Opens libnvrtc.so.13 (else .12; HYBRIDRT_NVRTC_LIBRARY names a file to use instead) and reads its
 * version and targets. Returns 0, or -1 with the reason in err. */
int hr_nvrtc_open(hr_nvrtc *lib, char *err, size_t err_size);
void hr_nvrtc_close(hr_nvrtc *lib);

/* True when NVRTC lists sm_<arch> (arch = 10 * major + minor). */
bool hr_nvrtc_supports(const hr_nvrtc *lib, int arch);

/* The target to build for a GPU of architecture sm (e.g. 90): "sm_90" when NVRTC lists it (returns 0);
 * PTX for NVRTC's newest, "compute_121", when the GPU is newer (returns 1: the driver finishes it);
 * -1 with err for a GPU older than NVRTC supports (naming NVRTC 12 for Volta) or one it does not list. */
int hr_nvrtc_target_for(const hr_nvrtc *lib, int sm, char *target, size_t size, char *err, size_t err_size);

/* What one compilation produced. Free with hr_nvrtc_output_free. */
typedef struct hr_nvrtc_output {
    char *image;                 /* the cubin (ELF) or, for a compute_XY target, NUL-terminated PTX */
    size_t size;
    bool is_ptx;
    char *lowered_name;          /* the mangled name of the kernel the name expression chose */
    char **more_lowered;         /* the same for each of the job's more_names (NULL when none) */
    int n_more;
    char *log;                   /* NVRTC's log (warnings, or the errors of a failed compile) */
} hr_nvrtc_output;
void hr_nvrtc_output_free(hr_nvrtc_output *out);

/* What to compile: a source (named `src_name` in messages) with the headers it may #include, the
 * kernel to instantiate by name expression (e.g. "hr_fill<float>"), the target ("sm_XY" gives a
 * cubin, "compute_XY" PTX) and extra NVRTC options (e.g. "-DHR_BLOCK=256"). */
typedef struct hr_nvrtc_job {
    const char *src, *src_name, *name_expression, *target;
    const char *const *options;
    int n_options;
    const char *const *header_sources, *const *header_names;
    int n_headers;
    const char *const *more_names; /* further kernels to instantiate in the same program (one module) */
    int n_more;
} hr_nvrtc_job;

/* Compiles one job. Returns 0, or -1 with err naming the kernel, the target and NVRTC's first log
 * lines; out->log then holds the whole log. */
int hr_nvrtc_compile(const hr_nvrtc *lib, const hr_nvrtc_job *job, hr_nvrtc_output *out, char *err,
                     size_t err_size);

#endif
