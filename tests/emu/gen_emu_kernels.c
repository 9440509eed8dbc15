/* gen_emu_kernels TEMPLATE.cu OUT.cpp: writes the C++ file that builds one template of kernel_src/
 * into a kernel library of the emulated device. The instantiations are exactly the registry's
 * (runtime/jit/kernels.c: every name expression, each head size, and every tuning variant its @tune
 * line allows), so the emulator runs what `cache warm` builds and nothing else; the file includes
 * the template unchanged after emu_shim.h. An `extern __shared__ TYPE NAME[];` in the template gets
 * its definition here, at the most a launch may ask for (48 KiB). HYBRIDRT_KERNEL_SRC is honoured
 * for the @tune lines and that scan, as it is by NVRTC. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit/kernels.h"
#include "jit/tune_space.h"

#define MAX_SPACES 64
#define MAX_NAMES 512
#define DYNAMIC_SHARED_BYTES 49152

static const int head_sizes[] = {32, 64, 128};

typedef struct {
    char items[MAX_NAMES][128];
    int n;
} name_list;

static int add_name(name_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i], name) == 0) return 0;
    if (l->n == MAX_NAMES) return fprintf(stderr, "gen_emu_kernels: more than %d instantiations\n", MAX_NAMES), -1;
    snprintf(l->items[l->n++], sizeof l->items[0], "%s", name);
    return 0;
}

/* The registered name expressions of `file`, head sizes expanded, then each one's tuning variants. */
static int collect(const hr_kernel_template *t, const hr_tune_space *spaces, int n_spaces, name_list *out) {
    for (const char *const *e = t->name_expressions; *e; e++) {
        int copies = strstr(*e, "%d") ? 3 : 1;
        for (int h = 0; h < copies; h++) {
            char name[128];
            snprintf(name, sizeof name, *e, head_sizes[h]);
            if (add_name(out, name)) return -1;
        }
    }
    int registered = out->n;
    for (int i = 0; i < registered; i++) {
        char kernel[64], args[HR_TUNE_MAX_PARAMS][32], err[256];
        if (hr_tune_split_expr(out->items[i], kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) < 1) continue;
        const hr_tune_space *s = hr_tune_space_find(spaces, n_spaces, kernel);
        if (!s) continue;
        int values[HR_TUNE_MAX_VALUES], n = hr_tune_allowed_values(s, out->items[i], values);
        for (int v = 0; v < n; v++) {
            char variant[128];
            if (hr_tune_variant(s, out->items[i], values[v], variant, sizeof variant, err, sizeof err) == 0 &&
                add_name(out, variant))
                return -1;
        }
    }
    return 0;
}

/* The name of the template's `extern __shared__ TYPE NAME[]` array into name (at most one per template),
 * its type into type; 0 when there is none, 1 when found, -1 for a second, different one. */
static int find_dynamic_shared(const char *src, char *type, size_t type_size, char *name, size_t name_size) {
    int found = 0;
    for (const char *p = strstr(src, "extern __shared__"); p; p = strstr(p + 1, "extern __shared__")) {
        const char *q = p + strlen("extern __shared__");
        const char *bracket = strchr(q, '[');
        const char *semi = strchr(q, ';');
        if (!bracket || !semi || bracket > semi) continue;
        const char *end = bracket;
        while (end > q && isspace((unsigned char)end[-1])) end--;
        const char *start = end;
        while (start > q && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) start--;
        while (q < start && isspace((unsigned char)*q)) q++;
        const char *type_end = start;
        while (type_end > q && isspace((unsigned char)type_end[-1])) type_end--;
        char t[64], n[64];
        snprintf(t, sizeof t, "%.*s", (int)(type_end - q), q);
        snprintf(n, sizeof n, "%.*s", (int)(end - start), start);
        if (found && (strcmp(t, type) != 0 || strcmp(n, name) != 0)) return -1;
        snprintf(type, type_size, "%s", t);
        snprintf(name, name_size, "%s", n);
        found = 1;
    }
    return found;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gen_emu_kernels TEMPLATE.cu OUT.cpp\n");
        return 2;
    }
    const char *file = argv[1];
    const hr_kernel_template *t = NULL;
    for (int i = 0; i < hr_kernel_template_count; i++)
        if (strcmp(hr_kernel_templates[i].file, file) == 0) t = &hr_kernel_templates[i];
    if (!t) {
        fprintf(stderr, "gen_emu_kernels: %s is not a template of the registry (runtime/jit/kernels.c)\n", file);
        return 1;
    }
    static hr_tune_space spaces[MAX_SPACES];
    static name_list names;
    int n_spaces = 0;
    char err[1024];
    if (hr_tune_spaces_load(spaces, MAX_SPACES, &n_spaces, err, sizeof err)) {
        fprintf(stderr, "gen_emu_kernels: %s\n", err);
        return 1;
    }
    if (collect(t, spaces, n_spaces, &names)) return 1;
    size_t size = 0;
    char *src = hr_kernel_source(file, &size, err, sizeof err);
    if (!src) {
        fprintf(stderr, "gen_emu_kernels: %s\n", err);
        return 1;
    }
    char dyn_type[64] = "", dyn_name[64] = "";
    int dyn = find_dynamic_shared(src, dyn_type, sizeof dyn_type, dyn_name, sizeof dyn_name);
    free(src);
    if (dyn < 0) {
        fprintf(stderr, "gen_emu_kernels: %s declares two different extern __shared__ arrays\n", file);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        fprintf(stderr, "gen_emu_kernels: cannot write %s\n", argv[2]);
        return 1;
    }
    fprintf(out, "// %s for the emulated device: generated by tests/emu/gen_emu_kernels.c from the registry\n"
                 "// (runtime/jit/kernels.c) and the template's @tune lines. Do not edit.\n"
                 "#include \"emu_shim.h\"\n\n"
                 "// The guard after the shared arrays (0xFF, never written): GCC lays a file's thread-locals out\n"
                 "// last-defined first, so this one ends the block (emu_guard.cpp, linked first, starts it);\n"
                 "// the driver checks the layout.\n"
                 "HR_EMU_SHARED_GUARD(hr_emu_shared_guard_high)\n\n",
            file);
    /* defined before the template's `extern` declaration of it, so the compiler sees a thread-local
     * without dynamic initialisation (else it calls an initialisation function nothing defines) */
    if (dyn)
        fprintf(out, "alignas(16) thread_local %s %s[%d / sizeof(%s)];\n"
                     "static unsigned char *hr_emu_dynamic_shared() { return (unsigned char *)%s; }\n\n",
                dyn_type, dyn_name, DYNAMIC_SHARED_BYTES, dyn_type, dyn_name);
    fprintf(out, "#include \"%s\"\n\n", file);
    fprintf(out, "static const hr_emu_kernel hr_emu_kernels[] = {\n");
    for (int i = 0; i < names.n; i++)
        fprintf(out, "    HR_EMU_KERNEL(\"%s\", %s),\n", names.items[i], names.items[i]);
    fprintf(out, "};\n\nHR_EMU_MODULE(\"%s\", hr_emu_kernels, %s, %d)\n",
            file, dyn ? "hr_emu_dynamic_shared" : "nullptr", dyn ? DYNAMIC_SHARED_BYTES : 0);
    if (fclose(out) != 0) {
        fprintf(stderr, "gen_emu_kernels: writing %s failed\n", argv[2]);
        return 1;
    }
    return 0;
}
