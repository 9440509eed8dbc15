/* Tuning without a GPU: the @tune lines of the templates (parsing, refusals naming the line,
 * enumeration under `require`), the expression evaluator, variants of name expressions, and the
 * tuning database (write, read back, merge, nearest-shape lookup, malformed and stale files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit/kernels.h"
#include "jit/tune_db.h"
#include "jit/tune_space.h"
#include "test_util.h"

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_eval(void) {
    const char *names[] = {"N", "ELEM", "BLOCK"};
    const long long values[] = {64, 4, 256};
    long long r = 0;
    char err[256];
    CHECK(hr_tune_eval("N * ELEM * 2 + 1", names, values, 3, &r, err, sizeof err) == 0 && r == 513, "arithmetic");
    CHECK(hr_tune_eval("(BLOCK <= 1024) && BLOCK % 32 == 0", names, values, 3, &r, err, sizeof err) == 0 && r == 1,
          "comparison and logic");
    CHECK(hr_tune_eval("BLOCK > 256 || !(N != 64)", names, values, 3, &r, err, sizeof err) == 0 && r == 1, "or, not");
    CHECK(hr_tune_eval("-N + 65", names, values, 3, &r, err, sizeof err) == 0 && r == 1, "unary minus");
    CHECK(hr_tune_eval("N / 0", names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "division by zero"),
          "division by zero refused: %s", err);
    CHECK(hr_tune_eval("P * 2", names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "unknown name"),
          "unknown name refused: %s", err);
    CHECK(hr_tune_eval("(N + 1", names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "')'"), "unclosed: %s",
          err);
    CHECK(hr_tune_eval("N N", names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "unexpected"), "trailing: %s",
          err);
    /* found by fuzzing (tests/fuzz/fuzz_tune_space): signed overflow was undefined behaviour, and the
     * one quotient outside 64 bits, LLONG_MIN / -1, a crash (SIGFPE); both are now errors */
    static const char *const overflowing[] = {
        "9223372036854775807 + 1", "-9223372036854775807 - 2", "4294967296 * 4294967296",
        "(-9223372036854775807 - 1) / -1", "(-9223372036854775807 - 1) % -1", "-(-9223372036854775807 - 1)",
    };
    for (int i = 0; i < 6; i++)
        CHECK(hr_tune_eval(overflowing[i], names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "integer overflow"),
              "%s refused: %s", overflowing[i], err);
    CHECK(hr_tune_eval("99999999999999999999 > N", names, values, 3, &r, err, sizeof err) < 0 &&
              strstr(err, "out of range"),
          "a number past 64 bits refused: %s", err);
    CHECK(hr_tune_eval("9223372036854775807 - 1 > 0 && -9223372036854775807 - 1 < 0", names, values, 3, &r, err,
                       sizeof err) == 0 && r == 1,
          "the extremes themselves still evaluate: %s", err);
    char deep[700];
    memset(deep, '(', 300);
    deep[300] = '1';
    memset(deep + 301, ')', 300);
    deep[601] = '\0';
    CHECK(hr_tune_eval(deep, names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "nested too deeply"),
          "300 nested parentheses refused: %s", err);
    memset(deep, '-', 300);
    snprintf(deep + 300, 10, "N");
    CHECK(hr_tune_eval(deep, names, values, 3, &r, err, sizeof err) < 0 && strstr(err, "nested too deeply"),
          "300 unary minuses refused: %s", err);
    CHECK(hr_tune_eval("--N == N && !!1", names, values, 3, &r, err, sizeof err) == 0 && r == 1, "a few unary operators");
}

static void test_parse(void) {
    hr_tune_space sp[8];
    int n = 0;
    char err[512];
    const char *src = "// a kernel\n"
                      "// @tune k_norm<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256\n"
                      "template <typename T, int N, int CHUNK> __global__ void k_scan();\n"
                      "// @tune k_scan<T, N, CHUNK>: CHUNK = 8 16 32 64; default 16; require CHUNK * N * ELEM <= 8192\n";
    CHECK(hr_tune_spaces_parse("x.cu", src, sp, 8, &n, err, sizeof err) == 0 && n == 2, "two spaces: %s", err);
    CHECK(strcmp(sp[0].kernel, "k_norm") == 0 && sp[0].knob == 1 && sp[0].n_values == 5 && sp[0].default_value == 256 &&
              sp[0].line == 2,
          "the first space");
    CHECK(strcmp(sp[1].params[1], "N") == 0 && sp[1].knob == 2 && strcmp(sp[1].require, "CHUNK * N * ELEM <= 8192") == 0,
          "the second space with its requirement");
    char out[128];
    CHECK(hr_tune_variant(&sp[0], "k_norm<float, 256>", 64, out, sizeof out, err, sizeof err) == 0 &&
              strcmp(out, "k_norm<float, 64>") == 0,
          "a variant: %s", out);
    CHECK(hr_tune_variant(&sp[0], "other<float, 256>", 64, out, sizeof out, err, sizeof err) < 0 &&
              strstr(err, "not an instantiation"),
          "another kernel's expression refused");
    /* require: CHUNK * 64 * ELEM <= 8192 allows 8, 16, 32 in f32 (32*64*4 = 8192) and 8, 16 in f64 */
    int allowed[HR_TUNE_MAX_VALUES];
    CHECK(hr_tune_allowed_values(&sp[1], "k_scan<float, 64, 16>", allowed) == 3 && allowed[2] == 32, "f32 allows 3");
    CHECK(hr_tune_allowed_values(&sp[1], "k_scan<double, 64, 16>", allowed) == 2, "f64 allows 2 (ELEM 8)");
    CHECK(hr_tune_allowed_values(&sp[1], "k_scan<float, 128, 16>", allowed) == 2, "N 128 allows 2");
    CHECK(hr_tune_variant(&sp[1], "k_scan<double, 64, 16>", 64, out, sizeof out, err, sizeof err) < 0 &&
              strstr(err, "breaks"),
          "a value breaking the requirement refused: %s", err);

    static const struct { const char *line, *want; } bad[] = {
        {"// @tune k<T, BLOCK> BLOCK = 1; default 1\n", "kernel<params>:"},
        {"// @tune k<T, BLOCK>: SIZE = 64; default 64\n", "not a template parameter"},
        {"// @tune k<T, BLOCK>: BLOCK = 64 128\n", "no default"},
        {"// @tune k<T, BLOCK>: BLOCK = 64 128; default 256\n", "not one of the values"},
        {"// @tune k<T, BLOCK>: BLOCK = 64 x; default 64\n", "positive integers"},
        {"// @tune k<T, BLOCK>: BLOCK = 64; default 64; require BLOCK <= Q\n", "unknown name"},
        {"// @tune k<T, BLOCK>: BLOCK = 64; default 64\n// @tune k<T, BLOCK>: BLOCK = 64; default 64\n",
         "second @tune line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 0;
        err[0] = '\0';
        int rc = hr_tune_spaces_parse("bad.cu", bad[i].line, sp, 8, &n, err, sizeof err);
        CHECK(rc < 0 && strstr(err, bad[i].want) && strstr(err, "bad.cu:"), "bad line %zu: '%s' (want %s)", i, err,
              bad[i].want);
    }
}

/* The spaces the templates declare: every knob's default is the registered instantiation. */
static void test_template_spaces(void) {
    hr_tune_space sp[64];
    int n = 0;
    char err[512];
    CHECK(hr_tune_spaces_load(sp, 64, &n, err, sizeof err) == 0, "the templates' spaces parse: %s", err);
    CHECK(n >= 6, "at least six tunable kernels (norms, cross-entropy, wkv6 backward), got %d", n);
    int variants = 0;
    for (int i = 0; i < n; i++) {
        const hr_kernel_template *t = NULL;
        for (int k = 0; k < hr_kernel_template_count; k++)
            if (strcmp(hr_kernel_templates[k].file, sp[i].file) == 0) t = &hr_kernel_templates[k];
        int matched = 0;
        for (const char *const *e = t ? t->name_expressions : NULL; e && *e; e++) {
            char expr[256];
            snprintf(expr, sizeof expr, *e, 64);
            int allowed[HR_TUNE_MAX_VALUES], count = hr_tune_allowed_values(&sp[i], expr, allowed);
            if (!count) continue;
            matched++;
            variants += count;
            char kernel[64], args[HR_TUNE_MAX_PARAMS][32];
            hr_tune_split_expr(expr, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS);
            CHECK(atoi(args[sp[i].knob]) == sp[i].default_value, "%s registers the default %d", expr,
                  sp[i].default_value);
        }
        CHECK(matched >= 2, "%s (%s:%d) matches registered instantiations (f32 and f64)", sp[i].kernel, sp[i].file,
              sp[i].line);
    }
    printf("  %d tunable kernels, %d variants at head size 64\n", n, variants);
}

static hr_tune_record record(const char *kernel, const char *src, int64_t rows, int64_t c, int n, const int *values,
                             const double *ms) {
    hr_tune_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", kernel);
    snprintf(r.src, sizeof r.src, "%s", src);
    snprintf(r.dtype, sizeof r.dtype, "f32");
    snprintf(r.knob, sizeof r.knob, "BLOCK");
    snprintf(r.dim_names[0], 16, "segments");
    snprintf(r.dim_names[1], 16, "size");
    r.dims[0] = rows;
    r.dims[1] = c;
    r.n_dims = 2;
    for (int i = 0; i < n; i++) r.values[i] = values[i], r.ms[i] = ms[i];
    r.n_times = n;
    return r;
}

static void test_db(void) {
    char dir[] = "/tmp/hybridrt-tune-XXXXXX", path[256], err[512], warn[1024];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char name[128];
    hr_tune_db_filename("NVIDIA H100 80GB HBM3", "sm_90", name, sizeof name);
    CHECK(strcmp(name, "NVIDIA_H100_80GB_HBM3-sm_90.tune") == 0, "file name %s", name);
    snprintf(path, sizeof path, "%s/%s", dir, name);

    hr_tune_db db;
    hr_tune_db_init(&db, "NVIDIA H100 80GB HBM3", "sm_90");
    snprintf(db.date, sizeof db.date, "2026-11-30");
    const char *src = "0123456789abcdef";
    hr_tune_record a = record("k_norm", src, 4096, 128, 3, (int[]){64, 128, 256}, (double[]){0.5, 0.25, 0.375});
    hr_tune_record b = record("k_norm", src, 64, 1024, 2, (int[]){256, 1024}, (double[]){0.2, 0.1});
    CHECK(hr_tune_db_put(&db, &a) == 0 && hr_tune_db_put(&db, &b) == 0 && db.n == 2, "two records");
    CHECK(hr_tune_record_best(&a) == 128 && hr_tune_record_best(&b) == 1024, "best values");
    /* merging new times into a's key: 512 is new, 128 re-measured slower; 256 now wins */
    hr_tune_record a2 = record("k_norm", src, 4096, 128, 2, (int[]){512, 128}, (double[]){0.9, 0.4});
    CHECK(hr_tune_db_put(&db, &a2) == 0 && db.n == 2 && db.records[0].n_times == 4, "merged into one record");
    CHECK(hr_tune_record_best(&db.records[0]) == 256, "the best recomputed after the merge: %d",
          hr_tune_record_best(&db.records[0]));
    CHECK(hr_tune_db_save(&db, path, err, sizeof err) == 0, "saved: %s", err);

    hr_tune_db back;
    hr_tune_db_init(&back, NULL, NULL);
    CHECK(hr_tune_db_load(&back, path, warn, sizeof warn) == 2 && !warn[0], "read back: %s", warn);
    CHECK(strcmp(back.gpu, "NVIDIA H100 80GB HBM3") == 0 && strcmp(back.arch, "sm_90") == 0 &&
              strcmp(back.date, "2026-11-30") == 0,
          "the header");
    const char *dims[] = {"segments", "size"};
    int exact = -1;
    const hr_tune_record *r = hr_tune_db_lookup(&back, "k_norm", src, "f32", 0, dims, (int64_t[]){4096, 128}, 2, &exact);
    CHECK(r && exact == 1 && hr_tune_record_best(r) == 256, "exact lookup");
    r = hr_tune_db_lookup(&back, "k_norm", src, "f32", 0, dims, (int64_t[]){100, 900}, 2, &exact);
    CHECK(r && exact == 0 && r->dims[0] == 64, "the nearest shape (log scale)");
    r = hr_tune_db_lookup(&back, "k_norm", "fedcba9876543210", "f32", 0, dims, (int64_t[]){4096, 128}, 2, &exact);
    CHECK(!r, "an edited kernel (another source hash) finds nothing");
    r = hr_tune_db_lookup(&back, "k_norm", src, "f64", 0, dims, (int64_t[]){4096, 128}, 2, &exact);
    CHECK(!r, "another dtype finds nothing");

    /* a second database merged in */
    hr_tune_db other;
    hr_tune_db_init(&other, "NVIDIA H100 80GB HBM3", "sm_90");
    hr_tune_record c = record("k_other", src, 8, 8, 1, (int[]){64}, (double[]){1.0});
    hr_tune_db_put(&other, &c);
    CHECK(hr_tune_db_merge(&back, &other) == 0 && back.n == 3, "merge adds the other's records");
    hr_tune_db_free(&other);

    /* save, then the same file's text is stable (sorted records: diffable) */
    char path2[300];
    snprintf(path2, sizeof path2, "%s/again.tune", dir);
    hr_tune_db_save(&back, path2, err, sizeof err);
    hr_tune_db again;
    hr_tune_db_init(&again, NULL, NULL);
    CHECK(hr_tune_db_load(&again, path2, warn, sizeof warn) == 3, "three records back");
    hr_tune_db_free(&again);
    hr_tune_db_free(&back);
    hr_tune_db_free(&db);

    /* malformed files: a wrong header is refused; bad lines are skipped and named */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.tune", dir);
    write_text(bad, "something else\n");
    hr_tune_db_init(&back, NULL, NULL);
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) < 0 && strstr(warn, "not a hybridrt tuning database"),
          "a foreign file refused: %s", warn);
    write_text(bad, "hybridrt-tuning 2\n");
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) < 0 && strstr(warn, "format 1"), "a newer format refused: %s",
          warn);
    write_text(bad, "");
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) < 0 && strstr(warn, "empty"), "an empty file: %s", warn);
    write_text(bad, "hybridrt-tuning 1\ngpu X\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=1 knob BLOCK times 64:0.5\n"
                    "record k src 0123 dtype f32 head 0 shape a=2 knob BLOCK times 64:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=3 knob BLOCK times 64:-1\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=4 knob BLOCK\n"
                    "bogus line\n");
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) == 1, "one good record of five lines");
    CHECK(strstr(warn, "bad.tune:4:") && strstr(warn, "4 bad lines"), "the first bad line named, the count: %s", warn);
    hr_tune_db_free(&back);
    CHECK(hr_tune_db_load(&back, "/nonexistent/x.tune", warn, sizeof warn) < 0 && strstr(warn, "cannot be read"),
          "a missing file: %s", warn);
    hr_tune_db_free(&back);

    /* found by fuzzing (tests/fuzz/fuzz_tune_db): a record without a shape class loaded, but was saved
     * as "shape  knob ..." and skipped when the file was read again */
    write_text(bad, "hybridrt-tuning 1\nrecord k src 0123456789abcdef dtype f32 head 0 knob BLOCK times 64:0.5\n");
    hr_tune_db_init(&back, NULL, NULL);
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) == 1 && back.records[0].n_dims == 0, "a record without a shape");
    CHECK(hr_tune_db_save(&back, path2, err, sizeof err) == 0, "saved: %s", err);
    hr_tune_db_init(&again, NULL, NULL);
    CHECK(hr_tune_db_load(&again, path2, warn, sizeof warn) == 1 && !warn[0] && again.records[0].n_dims == 0,
          "a record without a shape reads back: %s", warn);
    hr_tune_db_free(&again);
    hr_tune_db_free(&back);
    /* ... and a value past an int was read as its truncation (2^32 + 255 as 255, 2^63 - 1 as -1, then
     * written so); numbers are now whole integers in range or the line is skipped */
    write_text(bad, "hybridrt-tuning 1\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=1 knob B times 4294967551:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=2 knob B times 9223372036854775807:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=3 knob B times 99999999999999999999:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 64x shape a=4 knob B times 64:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 4294967360 shape a=5 knob B times 64:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=40)6 knob B times 64:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=-1 knob B times 64:0.5\n"
                    "record k src 0123456789abcdef dtype f32 head 0 shape a=6 knob B times 64:0.5ms\n"
                    "record k src 0123456789abcdef dtype f32 head 32 shape a=7 knob B times 2147483647:0.5\n");
    hr_tune_db_init(&back, NULL, NULL);
    CHECK(hr_tune_db_load(&back, bad, warn, sizeof warn) == 1 && back.records[0].values[0] == 2147483647 &&
              back.records[0].head == 32 && strstr(warn, "bad.tune:2:") && strstr(warn, "8 bad lines"),
          "values past an int, sloppy integers refused, the largest int kept: %s", warn);
    hr_tune_db_free(&back);

    char src_hash[17], src_hash2[17];
    CHECK(hr_tune_source_hash("norm.cu", src_hash, err, sizeof err) == 0 && strlen(src_hash) == 16, "a source hash");
    CHECK(hr_tune_source_hash("loss.cu", src_hash2, err, sizeof err) == 0 && strcmp(src_hash, src_hash2) != 0,
          "templates hash differently");
    CHECK(hr_tune_source_hash("nope.cu", src_hash, err, sizeof err) < 0, "a missing template: %s", err);

    unlink(path);
    unlink(path2);
    unlink(bad);
    rmdir(dir);
}

int main(void) {
    test_eval();
    test_parse();
    test_template_spaces();
    test_db();
    return test_summary("jit.tune");
}
