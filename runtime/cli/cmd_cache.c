/* hybridrt cache warm|list|stats|verify|clear|export|import: the on-disk kernel cache (runtime/jit/cache.c). */
#include <cjson/cJSON.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/context.h"
#include "jit/cache.h"
#include "jit/kernels.h"
#include "jit/resources.h"
#include "jit/tune_db.h"
#include "jit/tune_space.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hybridrt cache <action> [options]\n\n"
            "The compiled-kernel cache (HYBRIDRT_CACHE_DIR, else $XDG_CACHE_HOME/hybridrt, else ~/.cache/hybridrt).\n\n"
            "actions:\n"
            "  warm [--arch sm_80,sm_90] [--head-size 32,64,128] [--jobs N] [--tuned FILE.tune]\n"
            "       [--report] [--report-format table|tsv|md]\n"
            "          compile every kernel template for those GPU architectures (default: every one NVRTC\n"
            "          lists) and head sizes (default: all three); needs NVRTC, not a GPU. --tuned: the\n"
            "          variants a GPU tuned by that database loads instead of the defaults (and its arch\n"
            "          when --arch is not given): a zero-compile start on that GPU.\n"
            "          --report: instead of warming, compile the same kernels in memory (the cache is\n"
            "          neither read nor written) and print what ptxas says each costs: registers per\n"
            "          thread, stack frame (local memory) and spill stores/loads in bytes per thread,\n"
            "          static shared memory per block, constant banks; one row per kernel and arch.\n"
            "          --report-format: table (default), tsv (tab-separated, a header line; for scripts)\n"
            "          or md (a Markdown table, as in docs/kernel-resources.md); implies --report\n"
            "  list    one line per cached kernel: template, instantiation, target, kind, size\n"
            "  stats   the cache directory, its entries and bytes, and the NVRTC its keys are for\n"
            "  verify  check every entry's checksum; delete (and report) the bad ones, and the temporary\n"
            "          files of writers killed mid-write\n"
            "  clear   delete every entry\n"
            "  export FILE.tar   write every valid entry to a tar archive (to ship a warmed cache)\n"
            "  import FILE.tar   install an archive's entries, each verified first; keeps entries already there\n\n"
            "HYBRIDRT_CACHE_MAX_BYTES caps the cache (default 2 GiB; 0: no cap): the least recently used\n"
            "entries go first.\n");
}

/* Splits "a,b,c" into at most max items (pointers into buf). */
static int split_list(char *buf, char **items, int max) {
    int n = 0;
    for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) items[n++] = tok;
    return n;
}

/* A target NVRTC can build for `arch` ("sm_90", "sm_90a", "compute_90", or "90"): itself when listed,
 * PTX for the newest listed when the GPU is newer, an error when it is older than NVRTC supports. */
static int resolve_target(const hr_nvrtc *lib, const char *arch, char *target, size_t size, char *err, size_t err_size) {
    const char *digits = arch;
    if (strncmp(arch, "sm_", 3) == 0) digits = arch + 3;
    else if (strncmp(arch, "compute_", 8) == 0) digits = arch + 8;
    char *end = NULL;
    long sm = strtol(digits, &end, 10);
    if (end == digits || sm < 10 || (*end && strcmp(end, "a") != 0 && strcmp(end, "f") != 0)) {
        snprintf(err, err_size, "'%s' is not a GPU architecture (write sm_80, sm_90a, compute_90 or 90)", arch);
        return -1;
    }
    if (sm > INT_MAX) sm = INT_MAX;
    int rc = hr_nvrtc_target_for(lib, (int)sm, target, size, err, err_size);
    if (rc != 0) return rc; /* PTX for the newest, or an error */
    if (strncmp(arch, "compute_", 8) == 0) snprintf(target, size, "compute_%ld", sm);
    else snprintf(target, size, "sm_%ld%s", sm, end);
    return 0;
}

typedef struct {
    const char *template_file;
    int template_index;          /* into hr_kernel_templates, for the per-template compile times */
    char name[128];
    char target[32];
} warm_job;

/* The values of a tunable instantiation a GPU tuned by db loads: the best value of every record for
 * its kernel, template source, dtype and head size (every shape finds its nearest record), or none
 * when db has no such record (the default is loaded then). Returns the count, values into out. */
static int tuned_values(const hr_tune_db *db, const hr_tune_space *s, const char *src_hash, const char *expr, int head,
                        int *out) {
    char kernel[64], args[HR_TUNE_MAX_PARAMS][32];
    if (hr_tune_split_expr(expr, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) != s->n_params) return 0;
    const char *dtype = strcmp(args[0], "double") == 0 ? "f64" : "f32";
    int allowed[HR_TUNE_MAX_VALUES], n_allowed = hr_tune_allowed_values(s, expr, allowed), n = 0;
    for (int i = 0; i < db->n; i++) {
        const hr_tune_record *r = &db->records[i];
        if (strcmp(r->kernel, kernel) || strcmp(r->src, src_hash) || strcmp(r->dtype, dtype) || r->head != head) continue;
        int best = hr_tune_record_best(r), listed = 0, ok = 0;
        for (int k = 0; k < n; k++) listed |= out[k] == best;
        for (int k = 0; k < n_allowed; k++) ok |= allowed[k] == best;
        if (ok && !listed && n < HR_TUNE_MAX_VALUES) out[n++] = best;
    }
    return n;
}

/* Removes the temporary files writers killed mid-write left in the cache, saying so when there were
 * any (warm, verify and clear start with it). */
static void print_swept(const hr_kernel_cache *cache) {
    int64_t bytes = 0;
    int n = hr_kernel_cache_sweep_temps(cache, &bytes);
    if (n > 0)
        printf("removed %d temporary file%s (%lld bytes) that writers killed mid-write left in %s\n", n,
               n == 1 ? "" : "s", (long long)bytes, cache->dir);
}

/* ---- warm --report: what each kernel costs, from ptxas ---- */

typedef enum { REPORT_NONE, REPORT_TABLE, REPORT_TSV, REPORT_MD } report_format;

static void print_report_header(report_format fmt) {
    if (fmt == REPORT_TSV)
        printf("arch\ttemplate\tkernel\tregisters\tstack_bytes\tspill_store_bytes\tspill_load_bytes\t"
               "shared_bytes\tconstant_bytes\tbarriers\n");
    else if (fmt == REPORT_MD)
        printf("| arch | template | kernel | regs | stack B | spill st/ld B | static shared B | cmem B |\n"
               "|---|---|---|---:|---:|---:|---:|---:|\n");
    else
        printf("%-11s %-15s %-44s %5s %7s %13s %9s %7s\n", "arch", "template", "kernel", "regs", "stack",
               "spill st/ld", "shared", "cmem");
}

/* One row; r is NULL for a PTX target (no ptxas: the driver finishes it). */
static void print_report_row(report_format fmt, const warm_job *j, const hr_kernel_resources *r) {
    char cmem[32] = "-", spill[48] = "-";
    if (r && r->constant >= 0) snprintf(cmem, sizeof cmem, "%lld", (long long)r->constant);
    if (r) snprintf(spill, sizeof spill, "%lld/%lld", (long long)r->spill_stores, (long long)r->spill_loads);
    if (!r) {
        if (fmt == REPORT_TSV) printf("%s\t%s\t%s\t\t\t\t\t\t\t\n", j->target, j->template_file, j->name);
        else if (fmt == REPORT_MD) printf("| %s | %s | `%s` | PTX | | | | |\n", j->target, j->template_file, j->name);
        else printf("%-11s %-15s %-44s %s\n", j->target, j->template_file, j->name, "(PTX: no ptxas figures)");
    } else if (fmt == REPORT_TSV) {
        printf("%s\t%s\t%s\t%d\t%lld\t%lld\t%lld\t%lld\t%s\t%d\n", j->target, j->template_file, j->name,
               r->registers, (long long)r->stack_frame, (long long)r->spill_stores, (long long)r->spill_loads,
               (long long)r->shared, r->constant >= 0 ? cmem : "", r->barriers);
    } else if (fmt == REPORT_MD) {
        printf("| %s | %s | `%s` | %d | %lld | %s | %lld | %s |\n", j->target, j->template_file, j->name,
               r->registers, (long long)r->stack_frame, spill, (long long)r->shared, cmem);
    } else {
        printf("%-11s %-15s %-44s %5d %7lld %13s %9lld %7s\n", j->target, j->template_file, j->name, r->registers,
               (long long)r->stack_frame, spill, (long long)r->shared, cmem);
    }
}

/* Compiles every job in memory with ptxas's figures (in parallel) and prints them in job order. The
 * table and its closing line go to stdout; with tsv or md only the table does (the rest to stderr).
 * Returns the exit status: 1 when a kernel failed to compile. */
static int cmd_report(const hr_nvrtc *lib, const warm_job *list, int n_jobs, int jobs, report_format fmt) {
    FILE *notes = fmt == REPORT_TABLE ? stdout : stderr;
    hr_kernel_resources *res = calloc((size_t)(n_jobs > 0 ? n_jobs : 1), sizeof *res);
    int *state = calloc((size_t)(n_jobs > 0 ? n_jobs : 1), sizeof *state); /* 0 measured, 1 PTX, -1 failed */
    if (!res || !state) {
        free(res);
        free(state);
        fprintf(stderr, "hybridrt cache warm --report: out of memory\n");
        return 1;
    }
    fprintf(notes, "resources of %d kernels from ptxas (compiled in memory; the cache is not used), %d jobs\n", n_jobs,
            jobs);
    fflush(notes);
    int failed = 0, ptx = 0, done = 0, tty = isatty(2);
    double t0 = hr_now();
#pragma omp parallel for num_threads(jobs) schedule(dynamic) reduction(+ : failed, ptx)
    for (int i = 0; i < n_jobs; i++) {
        char why[2048] = "";
        int rc = 0;
        if (strncmp(list[i].target, "sm_", 3) != 0) {
            state[i] = 1;
            ptx++;
        } else {
            hr_kernel_spec spec = {.template_file = list[i].template_file, .name_expression = list[i].name,
                                   .target = list[i].target};
            rc = hr_kernel_measure(lib, &spec, &res[i], why, sizeof why);
            state[i] = rc ? -1 : 0;
            failed += rc != 0;
        }
#pragma omp critical
        {
            done++;
            if (rc) fprintf(stderr, "%sFAILED %s %s: %s\n", tty ? "\r\033[K" : "", list[i].name, list[i].target, why);
            if (tty) fprintf(stderr, "\r\033[K[%d/%d] %s %s", done, n_jobs, list[i].name, list[i].target);
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    print_report_header(fmt);
    for (int i = 0; i < n_jobs; i++)
        if (state[i] >= 0) print_report_row(fmt, &list[i], state[i] == 0 ? &res[i] : NULL);
    fprintf(notes, "kernels: %d measured, %d failed", n_jobs - failed - ptx, failed);
    if (ptx) fprintf(notes, ", %d PTX (the driver compiles those: no figures)", ptx);
    fprintf(notes, " (%.1f s)\n", hr_now() - t0);
    free(res);
    free(state);
    return failed ? 1 : 0;
}

static int parse_report_format(const char *v, report_format *fmt) {
    if (strcmp(v, "table") == 0) *fmt = REPORT_TABLE;
    else if (strcmp(v, "tsv") == 0) *fmt = REPORT_TSV;
    else if (strcmp(v, "md") == 0) *fmt = REPORT_MD;
    else return -1;
    return 0;
}

static int cmd_warm(int argc, char **argv) {
    char arch_buf[1024] = "", head_buf[256] = "32,64,128", tuned_path[1024] = "";
    int jobs = omp_get_max_threads();
    report_format report = REPORT_NONE;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "--arch") == 0 || strcmp(a, "--head-size") == 0 || strcmp(a, "--jobs") == 0 ||
             strcmp(a, "--tuned") == 0 || strcmp(a, "--report-format") == 0) && !v) {
            fprintf(stderr, "hybridrt cache warm: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--arch") == 0) snprintf(arch_buf, sizeof arch_buf, "%s", argv[++i]);
        else if (strcmp(a, "--head-size") == 0) snprintf(head_buf, sizeof head_buf, "%s", argv[++i]);
        else if (strcmp(a, "--jobs") == 0) jobs = atoi(argv[++i]);
        else if (strcmp(a, "--tuned") == 0) snprintf(tuned_path, sizeof tuned_path, "%s", argv[++i]);
        else if (strcmp(a, "--report") == 0) report = report ? report : REPORT_TABLE;
        else if (strcmp(a, "--report-format") == 0) {
            if (parse_report_format(argv[++i], &report)) {
                fprintf(stderr, "hybridrt cache warm: --report-format '%s' is not table, tsv or md\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "hybridrt cache warm: unknown option '%s' (see hybridrt cache --help)\n", a);
            return 2;
        }
    }
    if (jobs < 1) {
        fprintf(stderr, "hybridrt cache warm: --jobs must be at least 1\n");
        return 2;
    }
    FILE *info = report == REPORT_TSV || report == REPORT_MD ? stderr : stdout; /* keep a tsv or md report clean */
    char err[2048];
    /* --tuned: the database, the templates' spaces, and the database's arch unless --arch says */
    hr_tune_db db;
    hr_tune_db_init(&db, NULL, NULL);
    static hr_tune_space spaces[64];
    int n_spaces = 0;
    if (tuned_path[0]) {
        char warn[1200];
        int records = hr_tune_db_load(&db, tuned_path, warn, sizeof warn);
        if (records < 0) {
            fprintf(stderr, "hybridrt cache warm: %s\n", warn);
            hr_tune_db_free(&db);
            return 1;
        }
        if (warn[0]) fprintf(stderr, "warning: %s\n", warn);
        if (hr_tune_spaces_load(spaces, 64, &n_spaces, err, sizeof err)) {
            fprintf(stderr, "hybridrt cache warm: %s\n", err);
            hr_tune_db_free(&db);
            return 1;
        }
        if (!arch_buf[0]) snprintf(arch_buf, sizeof arch_buf, "%s", db.arch);
        fprintf(info, "tuned: %s (%s, %s, %d records)\n", tuned_path, db.gpu, db.arch, records);
    }
    hr_nvrtc lib;
    if (hr_nvrtc_open(&lib, err, sizeof err) != 0) {
        hr_tune_db_free(&db);
        fprintf(stderr, "hybridrt cache warm: NVRTC is needed to compile kernels: %s\n", err);
        return 1;
    }
    int heads[8], n_heads = 0;
    char *items[64];
    int n = split_list(head_buf, items, 8);
    for (int i = 0; i < n; i++) {
        int h = atoi(items[i]);
        if (h != 32 && h != 64 && h != 128) {
            fprintf(stderr, "hybridrt cache warm: head size '%s' is not 32, 64 or 128\n", items[i]);
            hr_nvrtc_close(&lib);
            hr_tune_db_free(&db);
            return 2;
        }
        heads[n_heads++] = h;
    }
    char targets[64][32];
    int n_targets = 0;
    if (!arch_buf[0]) {
        for (int i = 0; i < lib.n_archs && n_targets < 64; i++) snprintf(targets[n_targets++], 32, "sm_%d", lib.archs[i]);
    } else {
        n = split_list(arch_buf, items, 64);
        for (int i = 0; i < n; i++) {
            int rc = resolve_target(&lib, items[i], targets[n_targets], 32, err, sizeof err);
            if (rc < 0) {
                fprintf(stderr, "hybridrt cache warm: %s\n", err);
                hr_nvrtc_close(&lib);
                hr_tune_db_free(&db);
                return 2;
            }
            if (rc > 0)
                fprintf(info, "%s is newer than NVRTC %d.%d knows: PTX for %s, finished by the driver\n", items[i],
                        lib.major, lib.minor, targets[n_targets]);
            n_targets++;
        }
    }
    /* every (template, instantiation, target) */
    int n_jobs = 0, cap = 64;
    warm_job *list = malloc(sizeof *list * (size_t)cap);
    for (int t = 0; list && t < hr_kernel_template_count; t++)
        for (int k = 0; list && hr_kernel_templates[t].name_expressions[k]; k++) {
            const char *expr = hr_kernel_templates[t].name_expressions[k];
            int per_head = strstr(expr, "%d") != NULL;
            for (int h = 0; list && h < (per_head ? n_heads : 1); h++) {
                /* the instantiation, or with --tuned the variants the database picks for it */
                char base[128], names[HR_TUNE_MAX_VALUES][128], kernel[64], args[HR_TUNE_MAX_PARAMS][32];
                snprintf(base, sizeof base, expr, per_head ? heads[h] : 0);
                int n_names = 1;
                snprintf(names[0], sizeof names[0], "%s", base);
                const hr_tune_space *sp = NULL;
                if (n_spaces && hr_tune_split_expr(base, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) > 0)
                    sp = hr_tune_space_find(spaces, n_spaces, kernel);
                char src_hash[17];
                int values[HR_TUNE_MAX_VALUES], n_values = 0;
                if (sp && hr_tune_source_hash(sp->file, src_hash, err, sizeof err) == 0)
                    n_values = tuned_values(&db, sp, src_hash, base, per_head ? heads[h] : 0, values);
                for (int k = 0; k < n_values; k++)
                    if (hr_tune_variant(sp, base, values[k], names[k], sizeof names[k], err, sizeof err) == 0)
                        n_names = k + 1;
                for (int v = 0; v < n_names; v++)
                    for (int a = 0; list && a < n_targets; a++) {
                        if (n_jobs == cap) {
                            cap *= 2;
                            warm_job *grown = realloc(list, sizeof *list * (size_t)cap);
                            if (!grown) free(list);
                            list = grown;
                            if (!list) break;
                        }
                        warm_job *j = &list[n_jobs++];
                        j->template_file = hr_kernel_templates[t].file;
                        j->template_index = t;
                        snprintf(j->name, sizeof j->name, "%s", names[v]);
                        memcpy(j->target, targets[a], sizeof j->target); /* both 32 bytes, NUL-terminated */
                    }
            }
        }
    hr_tune_db_free(&db);
    if (!list) {
        fprintf(stderr, "hybridrt cache warm: out of memory\n");
        hr_nvrtc_close(&lib);
        return 1;
    }
    if (report) {
        int rc = cmd_report(&lib, list, n_jobs, jobs, report);
        free(list);
        hr_nvrtc_close(&lib);
        return rc;
    }
    hr_kernel_cache cache;
    if (hr_kernel_cache_open(&cache, NULL, &lib, err, sizeof err) != 0) {
        fprintf(stderr, "hybridrt cache warm: %s\n", err);
        free(list);
        hr_nvrtc_close(&lib);
        return 1;
    }
    if (cache.warning[0]) fprintf(stderr, "warning: %s\n", cache.warning);
    print_swept(&cache);
    printf("warming %s: %d kernels (%d templates) for %d target%s, %d jobs\n", cache.dir, n_jobs,
           hr_kernel_template_count, n_targets, n_targets == 1 ? "" : "s", jobs);
    int compiled = 0, cached = 0, failed = 0, done = 0;
    int tty = isatty(2);
    /* NVRTC seconds and kernels compiled per template: the compile-time benchmark's figures */
    double *tmpl_s = calloc((size_t)hr_kernel_template_count, sizeof *tmpl_s);
    int *tmpl_n = calloc((size_t)hr_kernel_template_count, sizeof *tmpl_n);
    double t0 = hr_now();
#pragma omp parallel for num_threads(jobs) schedule(dynamic) reduction(+ : compiled, cached, failed)
    for (int i = 0; i < n_jobs; i++) {
        hr_kernel_cache mine = cache; /* per-thread counts and warnings */
        mine.warning[0] = '\0';
        hr_kernel_spec spec = {.template_file = list[i].template_file, .name_expression = list[i].name,
                               .target = list[i].target};
        hr_nvrtc_output out;
        hr_cache_source how;
        char why[2048];
        double k0 = hr_now();
        int rc = hr_kernel_cache_get(&mine, &spec, &out, &how, why, sizeof why);
        double k_s = hr_now() - k0;
        hr_nvrtc_output_free(&out);
        if (rc) failed++;
        else if (how == HR_CACHE_HIT) cached++;
        else compiled++;
#pragma omp critical
        {
            done++;
            if (!rc && how != HR_CACHE_HIT && tmpl_s && tmpl_n) {
                tmpl_s[list[i].template_index] += k_s;
                tmpl_n[list[i].template_index]++;
            }
            if (rc) fprintf(stderr, "%sFAILED %s %s: %s\n", tty ? "\r\033[K" : "", list[i].name, list[i].target, why);
            if (mine.warning[0]) fprintf(stderr, "%swarning: %s\n", tty ? "\r\033[K" : "", mine.warning);
            if (tty) fprintf(stderr, "\r\033[K[%d/%d] %s %s", done, n_jobs, list[i].name, list[i].target);
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    printf("kernels: %d compiled, %d already cached, %d failed (%.1f s)\n", compiled, cached, failed, hr_now() - t0);
    if (compiled && tmpl_s && tmpl_n) {
        printf("%-16s %9s %12s %14s\n", "template", "compiled", "NVRTC s", "s per kernel");
        for (int t = 0; t < hr_kernel_template_count; t++)
            if (tmpl_n[t])
                printf("%-16s %9d %12.2f %14.3f\n", hr_kernel_templates[t].file, tmpl_n[t], tmpl_s[t],
                       tmpl_s[t] / tmpl_n[t]);
    }
    free(tmpl_s);
    free(tmpl_n);
    free(list);
    hr_nvrtc_close(&lib);
    return failed ? 1 : 0;
}

/* ---- list / stats / verify / clear ---- */

typedef struct {
    int entries, bad, removed;
    int64_t bytes;
    bool verbose_list, verify, clear;
} walk_state;

static void print_manifest(const char *manifest, int64_t bytes) {
    FILE *f = fopen(manifest, "rb");
    char text[8192];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *m = cJSON_Parse(text);
    const char *fields[] = {"template", "name_expression", "target", "kind"};
    const char *values[4] = {"?", "?", "?", "?"};
    for (int i = 0; m && i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, fields[i]);
        if (cJSON_IsString(v)) values[i] = v->valuestring;
    }
    printf("%-12s %-28s %-12s %-6s %9lld bytes\n", values[0], values[1], values[2], values[3], (long long)bytes);
    cJSON_Delete(m);
}

static int walk(const char *bin, int64_t bytes, const char *manifest, void *arg) {
    walk_state *s = arg;
    s->entries++;
    s->bytes += bytes;
    if (s->verbose_list) print_manifest(manifest, bytes);
    if (s->verify) {
        char err[512];
        if (hr_kernel_cache_check_entry(bin, err, sizeof err) != 0) {
            s->bad++;
            printf("bad entry %s: %s; deleted\n", bin, err);
            unlink(bin);
            unlink(manifest);
        }
    }
    if (s->clear) {
        s->removed += unlink(bin) == 0;
        unlink(manifest);
    }
    return 0;
}

static int cmd_walk(const char *action) {
    char err[2048];
    hr_nvrtc lib;
    bool have_nvrtc = hr_nvrtc_open(&lib, err, sizeof err) == 0;
    hr_kernel_cache cache;
    if (hr_kernel_cache_open(&cache, NULL, have_nvrtc ? &lib : NULL, err, sizeof err) != 0) {
        fprintf(stderr, "hybridrt cache %s: %s\n", action, err);
        if (have_nvrtc) hr_nvrtc_close(&lib);
        return 1;
    }
    walk_state s = {.verbose_list = strcmp(action, "list") == 0, .verify = strcmp(action, "verify") == 0,
                    .clear = strcmp(action, "clear") == 0};
    if (s.verify || s.clear) print_swept(&cache);
    int rc = hr_kernel_cache_each(&cache, walk, &s);
    if (rc < 0) {
        fprintf(stderr, "hybridrt cache %s: cannot read %s\n", action, cache.dir);
        if (have_nvrtc) hr_nvrtc_close(&lib);
        return 1;
    }
    if (strcmp(action, "stats") == 0) {
        printf("directory: %s%s\n", cache.dir, cache.writable ? "" : " (not writable)");
        printf("entries:   %d\nbytes:     %lld (%.1f MiB)\n", s.entries, (long long)s.bytes, (double)s.bytes / 1048576.0);
        printf("keys for:  %s\n", have_nvrtc ? cache.nvrtc_id : "(NVRTC not found: new keys cannot be computed)");
        if (cache.max_bytes > 0) printf("cap:       %lld bytes (HYBRIDRT_CACHE_MAX_BYTES)\n", (long long)cache.max_bytes);
        else printf("cap:       none (HYBRIDRT_CACHE_MAX_BYTES=0)\n");
    } else if (s.verify) {
        printf("%d entries checked, %d bad%s\n", s.entries, s.bad, s.bad ? " (deleted: they are rebuilt on next use)" : "");
    } else if (s.clear) {
        printf("removed %d entries from %s\n", s.removed, cache.dir);
    } else if (s.entries == 0) {
        printf("(no kernels cached in %s)\n", cache.dir);
    }
    if (have_nvrtc) hr_nvrtc_close(&lib);
    return s.bad ? 1 : 0;
}

static int cmd_archive(const char *action, const char *path) {
    char err[2048];
    hr_kernel_cache cache;
    if (hr_kernel_cache_open(&cache, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "hybridrt cache %s: %s\n", action, err);
        return 1;
    }
    if (strcmp(action, "export") == 0) {
        int n = hr_kernel_cache_export(&cache, path, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "hybridrt cache %s\n", err);
            return 1;
        }
        printf("exported %d entries from %s to %s\n", n, cache.dir, path);
        return 0;
    }
    int skipped = 0;
    int n = hr_kernel_cache_import(&cache, path, &skipped, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "hybridrt cache %s\n", err);
        return 1;
    }
    printf("imported %d entries into %s\n", n, cache.dir);
    if (skipped) fprintf(stderr, "warning: %d archive members skipped (last: %s)\n", skipped, err);
    return skipped ? 1 : 0;
}

int hr_cmd_cache(int argc, char **argv) {
    if (hr_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    const char *action = argv[0];
    if (strcmp(action, "warm") == 0) return cmd_warm(argc - 1, argv + 1);
    if (strcmp(action, "list") == 0 || strcmp(action, "stats") == 0 || strcmp(action, "verify") == 0 ||
        strcmp(action, "clear") == 0) {
        if (argc > 1) {
            fprintf(stderr, "hybridrt cache %s: unexpected argument '%s'\n", action, argv[1]);
            return 2;
        }
        return cmd_walk(action);
    }
    if (strcmp(action, "export") == 0 || strcmp(action, "import") == 0) {
        if (argc != 2) {
            fprintf(stderr, "hybridrt cache %s: needs one archive path (hybridrt cache %s FILE.tar)\n", action, action);
            return 2;
        }
        return cmd_archive(action, argv[1]);
    }
    fprintf(stderr, "hybridrt cache: unknown action '%s' (warm, list, stats, verify, clear, export, import; see --help)\n",
            action);
    return 2;
}
