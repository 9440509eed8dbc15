#include "jit/nvrtc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit/dynlib.h"

int hr_nvrtc_open(hr_nvrtc *lib, char *err, size_t err_size) {
    memset(lib, 0, sizeof *lib);
    static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", NULL};
    lib->handle = hr_dl_open("HYBRIDRT_NVRTC_LIBRARY", names, lib->path, sizeof lib->path, err, err_size);
    if (!lib->handle) return -1;
    int rc = 0;
#define LOAD(field) HR_DL_LOAD(rc, lib->handle, lib->path, lib, field, "nvrtc" #field, err, err_size)
    LOAD(GetErrorString);
    LOAD(Version);
    LOAD(GetNumSupportedArchs);
    LOAD(GetSupportedArchs);
    LOAD(CreateProgram);
    LOAD(DestroyProgram);
    LOAD(CompileProgram);
    LOAD(AddNameExpression);
    LOAD(GetLoweredName);
    LOAD(GetCUBINSize);
    LOAD(GetCUBIN);
    LOAD(GetPTXSize);
    LOAD(GetPTX);
    LOAD(GetProgramLogSize);
    LOAD(GetProgramLog);
#undef LOAD
    if (!rc && lib->Version(&lib->major, &lib->minor) != 0) {
        snprintf(err, err_size, "%s: nvrtcVersion failed", lib->path);
        rc = -1;
    }
    if (!rc && (lib->GetNumSupportedArchs(&lib->n_archs) != 0 || lib->n_archs < 1 ||
                lib->n_archs > (int)(sizeof lib->archs / sizeof lib->archs[0]) ||
                lib->GetSupportedArchs(lib->archs) != 0)) {
        snprintf(err, err_size, "%s: could not list the supported architectures", lib->path);
        rc = -1;
    }
    if (rc) hr_nvrtc_close(lib);
    return rc;
}

void hr_nvrtc_close(hr_nvrtc *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}

bool hr_nvrtc_supports(const hr_nvrtc *lib, int arch) {
    for (int i = 0; i < lib->n_archs; i++)
        if (lib->archs[i] == arch) return true;
    return false;
}

int hr_nvrtc_target_for(const hr_nvrtc *lib, int sm, char *target, size_t size, char *err, size_t err_size) {
    int newest = lib->archs[lib->n_archs - 1], oldest = lib->archs[0];
    if (sm > newest) {
        snprintf(target, size, "compute_%d", newest);
        return 1;
    }
    if (sm < oldest) {
        snprintf(err, err_size, "sm_%d is older than NVRTC %d.%d supports (sm_%d and newer)%s", sm, lib->major, lib->minor,
                 oldest, sm == 70 || sm == 72 ? "; Volta needs NVRTC 12 (CUDA 12.x)" : "");
        return -1;
    }
    if (!hr_nvrtc_supports(lib, sm)) {
        snprintf(err, err_size, "NVRTC %d.%d does not list sm_%d", lib->major, lib->minor, sm);
        return -1;
    }
    snprintf(target, size, "sm_%d", sm);
    return 0;
}

void hr_nvrtc_output_free(hr_nvrtc_output *out) {
    free(out->image);
    free(out->lowered_name);
    for (int i = 0; out->more_lowered && i < out->n_more; i++) free(out->more_lowered[i]);
    free(out->more_lowered);
    free(out->log);
    memset(out, 0, sizeof *out);
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* The program's log into out->log (empty when NVRTC gives none). */
static int read_log(const hr_nvrtc *lib, hr_nvrtc_prog prog, hr_nvrtc_output *out) {
    size_t size = 0;
    if (lib->GetProgramLogSize(prog, &size) != 0 || size == 0) size = 1;
    out->log = calloc(size, 1);
    if (!out->log) return -1;
    if (size > 1 && lib->GetProgramLog(prog, out->log) != 0) out->log[0] = '\0';
    return 0;
}

/* The first `max_lines` lines of a log, for a one-paragraph error. */
static void log_head(const char *log, int max_lines, char *dst, size_t dst_size) {
    size_t n = 0;
    int lines = 0;
    while (log[n] && lines < max_lines) {
        if (log[n] == '\n') lines++;
        n++;
    }
    if (n >= dst_size) n = dst_size - 1;
    memcpy(dst, log, n);
    dst[n] = '\0';
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' ')) dst[--n] = '\0';
}

int hr_nvrtc_compile(const hr_nvrtc *lib, const hr_nvrtc_job *job, hr_nvrtc_output *out, char *err,
                     size_t err_size) {
    const char *src = job->src, *src_name = job->src_name, *name_expression = job->name_expression;
    const char *target = job->target;
    const char *const *options = job->options;
    int n_options = job->n_options;
    memset(out, 0, sizeof *out);
    bool ptx = strncmp(target, "compute_", 8) == 0;
    if (!ptx && strncmp(target, "sm_", 3) != 0) {
        snprintf(err, err_size, "%s: unknown target '%s' (sm_XY for a cubin, compute_XY for PTX)", src_name, target);
        return -1;
    }
    const char **opts = malloc(sizeof(char *) * (size_t)(n_options + 2));
    char arch_opt[64];
    if (!opts) {
        snprintf(err, err_size, "%s: out of memory", src_name);
        return -1;
    }
    snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", target);
    opts[0] = arch_opt;
    opts[1] = "-std=c++17";
    for (int i = 0; i < n_options; i++) opts[i + 2] = options[i];

    hr_nvrtc_prog prog = NULL;
    int rc = lib->CreateProgram(&prog, src, src_name, job->n_headers, job->header_sources, job->header_names);
    if (rc != 0) {
        snprintf(err, err_size, "%s: nvrtcCreateProgram: %s", src_name, lib->GetErrorString(rc));
        free(opts);
        return -1;
    }
    int status = -1;
    for (int i = -1; i < job->n_more; i++) {
        const char *expr = i < 0 ? name_expression : job->more_names[i];
        if ((rc = lib->AddNameExpression(prog, expr)) != 0) {
            snprintf(err, err_size, "%s: nvrtcAddNameExpression(%s): %s", src_name, expr, lib->GetErrorString(rc));
            goto done;
        }
    }
    rc = lib->CompileProgram(prog, n_options + 2, opts);
    if (read_log(lib, prog, out)) {
        snprintf(err, err_size, "%s: out of memory", src_name);
        goto done;
    }
    if (rc != 0) {
        char head[768];
        log_head(out->log, 6, head, sizeof head);
        snprintf(err, err_size, "%s (%s, %s) does not compile: %s\n%s", src_name, name_expression, target,
                 lib->GetErrorString(rc), head);
        goto done;
    }
    const char *lowered = NULL;
    if ((rc = lib->GetLoweredName(prog, name_expression, &lowered)) != 0 || !lowered) {
        snprintf(err, err_size, "%s: no kernel for the name expression %s: %s", src_name, name_expression,
                 rc ? lib->GetErrorString(rc) : "empty name");
        goto done;
    }
    if (job->n_more > 0) {
        out->more_lowered = calloc((size_t)job->n_more, sizeof *out->more_lowered);
        if (!out->more_lowered) {
            snprintf(err, err_size, "%s: out of memory", src_name);
            goto done;
        }
        out->n_more = job->n_more;
        for (int i = 0; i < job->n_more; i++) {
            const char *more = NULL;
            if ((rc = lib->GetLoweredName(prog, job->more_names[i], &more)) != 0 || !more ||
                !(out->more_lowered[i] = copy_string(more))) {
                snprintf(err, err_size, "%s: no kernel for the name expression %s", src_name, job->more_names[i]);
                goto done;
            }
        }
    }
    size_t size = 0;
    rc = ptx ? lib->GetPTXSize(prog, &size) : lib->GetCUBINSize(prog, &size);
    if (rc != 0 || size == 0) {
        snprintf(err, err_size, "%s (%s): NVRTC produced no %s", src_name, target, ptx ? "PTX" : "cubin");
        goto done;
    }
    out->image = malloc(size);
    out->lowered_name = copy_string(lowered);
    if (!out->image || !out->lowered_name) {
        snprintf(err, err_size, "%s: out of memory for a %zu-byte image", src_name, size);
        goto done;
    }
    rc = ptx ? lib->GetPTX(prog, out->image) : lib->GetCUBIN(prog, out->image);
    if (rc != 0) {
        snprintf(err, err_size, "%s (%s): reading the image: %s", src_name, target, lib->GetErrorString(rc));
        goto done;
    }
    out->size = size;
    out->is_ptx = ptx;
    status = 0;
done:
    lib->DestroyProgram(&prog); /* the lowered name points into the program: copied above */
    free(opts);
    if (status) { /* keep the log, drop everything else */
        char *log = out->log;
        out->log = NULL;
        hr_nvrtc_output_free(out);
        out->log = log;
    }
    return status;
}
