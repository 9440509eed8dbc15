#include "jit/tune_db.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit/kernels.h"
#include "jit/sha256.h"

void hr_tune_db_init(hr_tune_db *db, const char *gpu, const char *arch) {
    memset(db, 0, sizeof *db);
    snprintf(db->gpu, sizeof db->gpu, "%s", gpu ? gpu : "");
    snprintf(db->arch, sizeof db->arch, "%s", arch ? arch : "");
}

void hr_tune_db_free(hr_tune_db *db) {
    free(db->records);
    db->records = NULL;
    db->n = db->cap = 0;
}

/* ---- keys ---- */

static bool same_shape(const hr_tune_record *a, const hr_tune_record *b) {
    if (a->n_dims != b->n_dims) return false;
    for (int i = 0; i < a->n_dims; i++)
        if (strcmp(a->dim_names[i], b->dim_names[i]) != 0 || a->dims[i] != b->dims[i]) return false;
    return true;
}

static bool same_key(const hr_tune_record *a, const hr_tune_record *b) {
    return strcmp(a->kernel, b->kernel) == 0 && strcmp(a->src, b->src) == 0 && strcmp(a->dtype, b->dtype) == 0 &&
           a->head == b->head && strcmp(a->knob, b->knob) == 0 && same_shape(a, b);
}

int hr_tune_db_put(hr_tune_db *db, const hr_tune_record *r) {
    for (int i = 0; i < db->n; i++) {
        hr_tune_record *have = &db->records[i];
        if (!same_key(have, r)) continue;
        for (int j = 0; j < r->n_times; j++) {
            int k = 0;
            while (k < have->n_times && have->values[k] != r->values[j]) k++;
            if (k == have->n_times) {
                if (have->n_times == HR_TUNE_MAX_TIMES) continue;
                have->values[have->n_times++] = r->values[j];
            }
            have->ms[k] = r->ms[j];
        }
        return 0;
    }
    if (db->n == db->cap) {
        int cap = db->cap ? 2 * db->cap : 32;
        hr_tune_record *grown = realloc(db->records, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        db->records = grown;
        db->cap = cap;
    }
    db->records[db->n++] = *r;
    return 0;
}

int hr_tune_db_merge(hr_tune_db *db, const hr_tune_db *src) {
    for (int i = 0; i < src->n; i++)
        if (hr_tune_db_put(db, &src->records[i])) return -1;
    return 0;
}

int hr_tune_record_best(const hr_tune_record *r) {
    int best = -1;
    double t = 0;
    for (int i = 0; i < r->n_times; i++)
        if (best < 0 || r->ms[i] < t) best = r->values[i], t = r->ms[i];
    return best;
}

const hr_tune_record *hr_tune_db_lookup(const hr_tune_db *db, const char *kernel, const char *src, const char *dtype,
                                        int head, const char *const *dim_names, const int64_t *dims, int n_dims,
                                        int *exact) {
    const hr_tune_record *best = NULL;
    double best_d = 0;
    for (int i = 0; i < db->n; i++) {
        const hr_tune_record *r = &db->records[i];
        if (strcmp(r->kernel, kernel) || strcmp(r->src, src) || strcmp(r->dtype, dtype) || r->head != head ||
            r->n_dims != n_dims || r->n_times == 0)
            continue;
        double d = 0;
        bool comparable = true;
        for (int k = 0; k < n_dims && comparable; k++) {
            comparable = strcmp(r->dim_names[k], dim_names[k]) == 0;
            double a = (double)(r->dims[k] > 0 ? r->dims[k] : 1), b = (double)(dims[k] > 0 ? dims[k] : 1);
            d += fabs(log2(a) - log2(b));
        }
        if (comparable && (!best || d < best_d)) best = r, best_d = d;
    }
    if (exact) *exact = best && best_d == 0;
    return best;
}

/* ---- text ---- */

void hr_tune_db_filename(const char *gpu, const char *arch, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = gpu; *p && n + 1 < size; p++)
        out[n++] = isalnum((unsigned char)*p) || *p == '.' || *p == '-' ? *p : '_';
    out[n] = '\0';
    snprintf(out + n, size - n, "-%s.tune", arch);
}

/* A whole decimal integer of text (up to `end`, or the NUL) in lo..hi into *out: false for anything
 * else (atoi took "64x" for 64 and wrapped 2^40 into an int). */
static bool whole_int(const char *text, const char *end, long long lo, long long hi, long long *out) {
    char *stop;
    errno = 0;
    long long v = strtoll(text, &stop, 10);
    if (stop == text || errno == ERANGE || (end ? stop != end : *stop != '\0') || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* One record line (after "record "): the key, then "knob K times v:ms ...". */
static int parse_record(char *text, hr_tune_record *r, char *why, size_t why_size) {
    memset(r, 0, sizeof *r);
    r->head = -1;
    char *save = NULL;
    char *tok = strtok_r(text, " \t", &save);
    if (!tok) return snprintf(why, why_size, "an empty record"), -1;
    snprintf(r->kernel, sizeof r->kernel, "%s", tok);
    bool times = false;
    while ((tok = strtok_r(NULL, " \t", &save))) {
        if (!times && strcmp(tok, "times") == 0) {
            times = true;
            continue;
        }
        if (times) {
            char *colon = strchr(tok, ':'), *end = NULL;
            long long v = 0;
            double ms = colon ? strtod(colon + 1, &end) : 0;
            if (!colon || !whole_int(tok, colon, 1, INT_MAX, &v) || end == colon + 1 || *end || !(ms > 0) || !isfinite(ms))
                return snprintf(why, why_size, "a time '%s' is not value:ms (a value in 1..%d)", tok, INT_MAX), -1;
            if (r->n_times == HR_TUNE_MAX_TIMES) return snprintf(why, why_size, "too many times"), -1;
            r->values[r->n_times] = (int)v;
            r->ms[r->n_times++] = ms;
            continue;
        }
        char *value = strtok_r(NULL, " \t", &save);
        if (!value) return snprintf(why, why_size, "'%s' has no value", tok), -1;
        if (strcmp(tok, "src") == 0) {
            if (strlen(value) != 16) return snprintf(why, why_size, "src is not 16 hex digits"), -1;
            memcpy(r->src, value, 17);
        } else if (strcmp(tok, "dtype") == 0) {
            snprintf(r->dtype, sizeof r->dtype, "%s", value);
        } else if (strcmp(tok, "head") == 0) {
            long long head;
            if (!whole_int(value, NULL, 0, INT_MAX, &head))
                return snprintf(why, why_size, "head '%s' is not an integer in 0..%d", value, INT_MAX), -1;
            r->head = (int)head;
        } else if (strcmp(tok, "knob") == 0) {
            snprintf(r->knob, sizeof r->knob, "%s", value);
        } else if (strcmp(tok, "shape") == 0) {
            char *s2 = NULL;
            for (char *d = strtok_r(value, ",", &s2); d; d = strtok_r(NULL, ",", &s2)) {
                char *eq = strchr(d, '=');
                long long size;
                if (!eq || r->n_dims == HR_TUNE_MAX_DIMS || eq - d >= 16 || !whole_int(eq + 1, NULL, 0, LLONG_MAX, &size))
                    return snprintf(why, why_size, "a shape dim '%s' is not name=size", d), -1;
                *eq = '\0';
                snprintf(r->dim_names[r->n_dims], 16, "%s", d);
                r->dims[r->n_dims++] = size;
            }
        } else {
            return snprintf(why, why_size, "unknown field '%s'", tok), -1;
        }
    }
    if (!r->src[0] || !r->dtype[0] || r->head < 0 || !r->knob[0] || r->n_times == 0)
        return snprintf(why, why_size, "a record needs src, dtype, head, knob and times"), -1;
    return 0;
}

int hr_tune_db_load(hr_tune_db *db, const char *path, char *warn, size_t warn_size) {
    warn[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(warn, warn_size, "%s: cannot be read", path);
        return -1;
    }
    snprintf(db->path, sizeof db->path, "%s", path);
    char line[4096];
    int lineno = 0, read = 0, bad = 0;
    bool header = false;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len || line[0] == '#') continue;
        char why[256] = "";
        if (!header) {
            int format = 0;
            if (sscanf(line, "hybridrt-tuning %d", &format) != 1 || format != HR_TUNE_FORMAT) {
                snprintf(warn, warn_size, "%s:%d: not a hybridrt tuning database of format %d (first line: "
                                          "'hybridrt-tuning %d')", path, lineno, HR_TUNE_FORMAT, HR_TUNE_FORMAT);
                fclose(f);
                return -1;
            }
            header = true;
            continue;
        }
        char *sp = strchr(line, ' ');
        const char *value = sp ? sp + 1 : "";
        if (sp) *sp = '\0';
        if (strcmp(line, "gpu") == 0) snprintf(db->gpu, sizeof db->gpu, "%s", value);
        else if (strcmp(line, "arch") == 0) snprintf(db->arch, sizeof db->arch, "%s", value);
        else if (strcmp(line, "driver") == 0) snprintf(db->driver, sizeof db->driver, "%s", value);
        else if (strcmp(line, "nvrtc") == 0) snprintf(db->nvrtc, sizeof db->nvrtc, "%s", value);
        else if (strcmp(line, "date") == 0) snprintf(db->date, sizeof db->date, "%s", value);
        else if (strcmp(line, "record") == 0) {
            hr_tune_record r;
            char copy[4096];
            snprintf(copy, sizeof copy, "%s", value);
            if (parse_record(copy, &r, why, sizeof why) == 0) {
                if (hr_tune_db_put(db, &r)) {
                    snprintf(warn, warn_size, "%s: out of memory", path);
                    fclose(f);
                    return -1;
                }
                read++;
            }
        } else {
            snprintf(why, sizeof why, "unknown line '%s'", line);
        }
        if (why[0] && bad++ == 0) snprintf(warn, warn_size, "%s:%d: %s (line skipped)", path, lineno, why);
    }
    fclose(f);
    if (!header) {
        snprintf(warn, warn_size, "%s: empty, not a hybridrt tuning database", path);
        return -1;
    }
    if (bad > 1) {
        size_t used = strlen(warn);
        snprintf(warn + used, warn_size - used, "; %d bad lines in all", bad);
    }
    return read;
}

static int compare_records(const void *pa, const void *pb) {
    const hr_tune_record *a = pa, *b = pb;
    int c = strcmp(a->kernel, b->kernel);
    if (!c) c = strcmp(a->dtype, b->dtype);
    if (!c) c = a->head - b->head;
    for (int i = 0; !c && i < a->n_dims && i < b->n_dims; i++) c = a->dims[i] < b->dims[i] ? -1 : a->dims[i] > b->dims[i];
    if (!c) c = a->n_dims - b->n_dims;
    if (!c) c = strcmp(a->src, b->src);
    return c;
}

int hr_tune_db_save(const hr_tune_db *db, const char *path, char *err, size_t err_size) {
    hr_tune_record *sorted = malloc((size_t)(db->n ? db->n : 1) * sizeof *sorted);
    if (!sorted) return snprintf(err, err_size, "out of memory"), -1;
    if (db->n) memcpy(sorted, db->records, (size_t)db->n * sizeof *sorted);
    qsort(sorted, (size_t)db->n, sizeof *sorted, compare_records);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(sorted);
        return snprintf(err, err_size, "cannot write %s", tmp), -1;
    }
    fprintf(f, "hybridrt-tuning %d\n# kernel timings on one GPU, written by `hybridrt tune` (docs/tuning.md)\n",
            HR_TUNE_FORMAT);
    fprintf(f, "gpu %s\narch %s\ndriver %s\nnvrtc %s\ndate %s\n", db->gpu, db->arch, db->driver, db->nvrtc, db->date);
    for (int i = 0; i < db->n; i++) {
        const hr_tune_record *r = &sorted[i];
        fprintf(f, "record %s src %s dtype %s head %d", r->kernel, r->src, r->dtype, r->head);
        for (int k = 0; k < r->n_dims; k++) /* no shape field for a record without dims: "shape" alone would not read back */
            fprintf(f, "%s%s=%lld", k ? "," : " shape ", r->dim_names[k], (long long)r->dims[k]);
        fprintf(f, " knob %s times", r->knob);
        for (int k = 0; k < r->n_times; k++) fprintf(f, " %d:%.6g", r->values[k], r->ms[k]);
        fputc('\n', f);
    }
    free(sorted);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return snprintf(err, err_size, "cannot write %s", path), -1;
    }
    return 0;
}

int hr_tune_source_hash(const char *template_file, char out[17], char *err, size_t err_size) {
    hr_sha256 s;
    hr_sha256_init(&s);
    const char *names[32];
    int n_headers = hr_kernel_header_names(names, 32);
    for (int i = -1; i < n_headers; i++) {
        size_t size;
        char *src = hr_kernel_source(i < 0 ? template_file : names[i], &size, err, err_size);
        if (!src) return -1;
        hr_sha256_update(&s, src, size + 1); /* the NUL separates the files */
        free(src);
    }
    uint8_t digest[32];
    char hex[65];
    hr_sha256_final(&s, digest);
    hr_sha256_to_hex(digest, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
    return 0;
}
