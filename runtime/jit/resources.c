#include "jit/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One item of a ptxas figures line ("256 bytes stack frame", "Used 32 registers", "8 bytes cmem[2]")
 * into out; items it does not know (cumulative stack size, gmem) are left alone. */
static void parse_item(const char *item, hr_kernel_resources *out) {
    long long v = 0;
    char unit[64] = "";
    if (sscanf(item, " %*[Uu]sed %lld %63s", &v, unit) == 2) {
        if (strcmp(unit, "registers") == 0) out->registers = (int)v;
        else if (strcmp(unit, "barriers") == 0) out->barriers = (int)v;
        return;
    }
    if (sscanf(item, " %lld bytes %63[^,\n]", &v, unit) != 2) return;
    if (strcmp(unit, "stack frame") == 0) out->stack_frame = v;
    else if (strcmp(unit, "spill stores") == 0) out->spill_stores = v;
    else if (strcmp(unit, "spill loads") == 0) out->spill_loads = v;
    else if (strcmp(unit, "smem") == 0) out->shared = v;
    else if (strncmp(unit, "cmem[", 5) == 0) out->constant = (out->constant < 0 ? 0 : out->constant) + v;
}

/* Every comma-separated item of the line that starts at `line`. */
static void parse_line(const char *line, hr_kernel_resources *out) {
    char buf[1024];
    size_t n = strcspn(line, "\n");
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, line, n);
    buf[n] = '\0';
    /* past the prefix: "ptxas info    : Used 32 registers, ..." or "ptxas         .     256 bytes stack frame, ..." */
    char *body = strchr(buf, ':'), *save = NULL;
    if (!body) body = strchr(buf, '.');
    for (char *item = strtok_r(body ? body + 1 : buf, ",", &save); item; item = strtok_r(NULL, ",", &save))
        parse_item(item, out);
}

int hr_ptxas_parse(const char *log, const char *lowered, hr_kernel_resources *out) {
    *out = (hr_kernel_resources){.constant = -1};
    size_t n = strlen(lowered) + 64;
    char *entry = malloc(n), *props = malloc(n);
    int rc = -1;
    if (!entry || !props) goto done;
    snprintf(entry, n, "Compiling entry function '%s'", lowered);
    snprintf(props, n, "Function properties for %s\n", lowered);
    const char *start = strstr(log, entry);
    if (!start) goto done;
    start += strlen(entry);
    const char *end = strstr(start, "Compiling entry function '"); /* the next kernel's block */
    if (!end) end = start + strlen(start);
    const char *p = strstr(start, props);
    if (p && p < end) parse_line(p + strlen(props), out); /* the stack frame and spills */
    for (const char *used = strstr(start, "Used "); used && used < end; used = strstr(used + 5, "Used ")) {
        const char *line = used;
        while (line > start && line[-1] != '\n') line--;
        parse_line(line, out);
        rc = 0; /* registers found: the block is there */
    }
done:
    free(entry);
    free(props);
    return rc;
}

int hr_kernel_measure(const hr_nvrtc *nvrtc, const hr_kernel_spec *spec, hr_kernel_resources *out, char *err,
                      size_t err_size) {
    *out = (hr_kernel_resources){.constant = -1};
    if (strncmp(spec->target, "sm_", 3) != 0) {
        snprintf(err, err_size, "%s for %s: resources need a cubin target (sm_XY): PTX is finished by the driver",
                 spec->name_expression, spec->target);
        return -1;
    }
    const char **opts = malloc(sizeof *opts * (size_t)(spec->n_options + 1));
    if (!opts) {
        snprintf(err, err_size, "%s: out of memory", spec->name_expression);
        return -1;
    }
    for (int i = 0; i < spec->n_options; i++) opts[i] = spec->options[i];
    opts[spec->n_options] = "--ptxas-options=-v";
    hr_kernel_spec verbose = *spec;
    verbose.options = opts;
    verbose.n_options = spec->n_options + 1;
    hr_nvrtc_output image;
    int rc = hr_kernel_compile(nvrtc, &verbose, &image, err, err_size);
    free(opts);
    if (rc == 0 && hr_ptxas_parse(image.log ? image.log : "", image.lowered_name, out) != 0) {
        snprintf(err, err_size, "%s (%s, %s): ptxas reported no resources for %s", spec->template_file,
                 spec->name_expression, spec->target, image.lowered_name);
        rc = -1;
    }
    hr_nvrtc_output_free(&image);
    return rc;
}
