#include "jit/tune_space.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit/kernels.h"

/* ---- the integer expressions of `require` ---- */

typedef struct {
    const char *p;                 /* the next character */
    const char *const *names;
    const long long *values;
    int n_vars;
    char *err;
    size_t err_size;
    bool failed;
    int depth;                     /* of nested parentheses and unary operators */
} parser;

#define MAX_DEPTH 100

static void skip_space(parser *ps) {
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

static long long fail_at(parser *ps, const char *what) {
    if (!ps->failed) snprintf(ps->err, ps->err_size, "%s at \"%.20s\"", what, ps->p);
    ps->failed = true;
    return 0;
}

/* Consumes token tok when it comes next (and is not the start of a longer operator). */
static bool accept(parser *ps, const char *tok) {
    skip_space(ps);
    size_t n = strlen(tok);
    if (strncmp(ps->p, tok, n) != 0) return false;
    if (n == 1 && (tok[0] == '<' || tok[0] == '>' || tok[0] == '!') && ps->p[1] == '=') return false;
    ps->p += n;
    return true;
}

static long long parse_or(parser *ps);

static long long parse_primary(parser *ps) {
    skip_space(ps);
    if (accept(ps, "(")) {
        if (++ps->depth > MAX_DEPTH) return fail_at(ps, "nested too deeply");
        long long v = parse_or(ps);
        ps->depth--;
        if (!accept(ps, ")")) return fail_at(ps, "expected ')'");
        return v;
    }
    if (isdigit((unsigned char)*ps->p)) {
        char *end;
        errno = 0;
        long long v = strtoll(ps->p, &end, 10);
        if (errno == ERANGE) return fail_at(ps, "number out of range");
        ps->p = end;
        return v;
    }
    if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
        const char *start = ps->p;
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_') ps->p++;
        size_t len = (size_t)(ps->p - start);
        for (int i = 0; i < ps->n_vars; i++)
            if (strlen(ps->names[i]) == len && strncmp(ps->names[i], start, len) == 0) return ps->values[i];
        ps->p = start;
        return fail_at(ps, "unknown name");
    }
    return fail_at(ps, "expected a number, a name or '('");
}

/* The arithmetic is checked: a result outside 64 bits is an error, not undefined behaviour. */
static long long overflow(parser *ps) { return fail_at(ps, "integer overflow"); }

static long long parse_unary(parser *ps) {
    bool minus = accept(ps, "-"), bang = !minus && accept(ps, "!");
    if (!minus && !bang) return parse_primary(ps);
    if (++ps->depth > MAX_DEPTH) return fail_at(ps, "nested too deeply");
    long long v = parse_unary(ps), r;
    ps->depth--;
    if (bang) return !v;
    return __builtin_sub_overflow(0LL, v, &r) ? overflow(ps) : r;
}

static long long parse_mul(parser *ps) {
    long long v = parse_unary(ps);
    for (;;) {
        char op = accept(ps, "*") ? '*' : accept(ps, "/") ? '/' : accept(ps, "%") ? '%' : 0;
        if (!op) return v;
        long long r = parse_unary(ps);
        if (op == '*') {
            if (__builtin_mul_overflow(v, r, &v)) return overflow(ps);
        } else if (r == 0) {
            return fail_at(ps, "division by zero");
        } else if (v == LLONG_MIN && r == -1) {
            return overflow(ps); /* the one quotient outside 64 bits (and x86 traps on its remainder too) */
        } else {
            v = op == '/' ? v / r : v % r;
        }
    }
}

static long long parse_add(parser *ps) {
    long long v = parse_mul(ps);
    for (;;) {
        bool add = accept(ps, "+");
        if (!add && !accept(ps, "-")) return v;
        long long r = parse_mul(ps);
        if (add ? __builtin_add_overflow(v, r, &v) : __builtin_sub_overflow(v, r, &v)) return overflow(ps);
    }
}

static long long parse_cmp(parser *ps) {
    long long v = parse_add(ps);
    if (accept(ps, "<=")) return v <= parse_add(ps);
    if (accept(ps, ">=")) return v >= parse_add(ps);
    if (accept(ps, "==")) return v == parse_add(ps);
    if (accept(ps, "!=")) return v != parse_add(ps);
    if (accept(ps, "<")) return v < parse_add(ps);
    if (accept(ps, ">")) return v > parse_add(ps);
    return v;
}

static long long parse_and(parser *ps) {
    long long v = parse_cmp(ps);
    while (accept(ps, "&&")) {
        long long r = parse_cmp(ps);
        v = v && r;
    }
    return v;
}

static long long parse_or(parser *ps) {
    long long v = parse_and(ps);
    while (accept(ps, "||")) {
        long long r = parse_and(ps);
        v = v || r;
    }
    return v;
}

int hr_tune_eval(const char *expr, const char *const *names, const long long *values, int n_vars, long long *result,
                 char *err, size_t err_size) {
    parser ps = {.p = expr, .names = names, .values = values, .n_vars = n_vars, .err = err, .err_size = err_size};
    long long v = parse_or(&ps);
    skip_space(&ps);
    if (!ps.failed && *ps.p) fail_at(&ps, "unexpected text");
    if (ps.failed) return -1;
    *result = v;
    return 0;
}

/* ---- name expressions ---- */

static void trim_copy(char *dst, size_t size, const char *start, const char *end) {
    while (start < end && isspace((unsigned char)*start)) start++;
    while (end > start && isspace((unsigned char)end[-1])) end--;
    size_t n = (size_t)(end - start);
    if (n >= size) n = size - 1;
    memcpy(dst, start, n);
    dst[n] = '\0';
}

int hr_tune_split_expr(const char *expr, char *kernel, size_t kernel_size, char args[][32], int max_args) {
    const char *lt = strchr(expr, '<'), *gt = strrchr(expr, '>');
    if (!lt || !gt || gt < lt || gt[1] != '\0') return -1;
    trim_copy(kernel, kernel_size, expr, lt);
    int n = 0;
    const char *start = lt + 1;
    for (const char *c = start; c <= gt; c++) {
        if (*c != ',' && c != gt) continue;
        if (n == max_args) return -1;
        trim_copy(args[n++], 32, start, c);
        start = c + 1;
    }
    return n;
}

/* ---- parsing @tune lines ---- */

static int line_error(char *err, size_t err_size, const char *file, int line, const char *what) {
    snprintf(err, err_size, "%s:%d: @tune: %s (form: // @tune kernel<T, BLOCK>: BLOCK = 128 256; default 256; "
                            "require EXPR)", file, line, what);
    return -1;
}

/* Parses the text after "@tune" on one line into s. */
static int parse_line(const char *file, int line, const char *text, hr_tune_space *s, char *err, size_t err_size) {
    memset(s, 0, sizeof *s);
    snprintf(s->file, sizeof s->file, "%s", file);
    s->line = line;
    const char *colon = strstr(text, ">:");
    if (!colon) return line_error(err, err_size, file, line, "no 'kernel<params>:'");
    char head[160], args[HR_TUNE_MAX_PARAMS][32];
    trim_copy(head, sizeof head, text, colon + 1);
    s->n_params = hr_tune_split_expr(head, s->kernel, sizeof s->kernel, args, HR_TUNE_MAX_PARAMS);
    if (s->n_params < 1) return line_error(err, err_size, file, line, "bad kernel<params>");
    for (int i = 0; i < s->n_params; i++) snprintf(s->params[i], sizeof s->params[i], "%.15s", args[i]);
    /* the clauses: KNOB = v v v; default v; require EXPR */
    char body[400];
    snprintf(body, sizeof body, "%s", colon + 2);
    bool have_default = false;
    s->knob = -1;
    for (char *clause = strtok(body, ";"); clause; clause = strtok(NULL, ";")) {
        while (isspace((unsigned char)*clause)) clause++;
        if (strncmp(clause, "default", 7) == 0 && isspace((unsigned char)clause[7])) {
            char *end;
            s->default_value = (int)strtol(clause + 8, &end, 10);
            while (isspace((unsigned char)*end)) end++;
            if (end == clause + 8 || *end) return line_error(err, err_size, file, line, "default needs one integer");
            have_default = true;
        } else if (strncmp(clause, "require", 7) == 0 && isspace((unsigned char)clause[7])) {
            trim_copy(s->require, sizeof s->require, clause + 8, clause + strlen(clause));
        } else {
            char *eq = strchr(clause, '=');
            if (!eq) return line_error(err, err_size, file, line, "expected KNOB = values");
            char knob[64];
            trim_copy(knob, sizeof knob, clause, eq);
            for (int i = 0; i < s->n_params; i++)
                if (strcmp(s->params[i], knob) == 0) s->knob = i;
            if (s->knob < 0) return line_error(err, err_size, file, line, "the knob is not a template parameter");
            for (char *p = eq + 1;;) {
                while (isspace((unsigned char)*p)) p++;
                if (!*p) break;
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v <= 0) return line_error(err, err_size, file, line, "values are positive integers");
                if (s->n_values == HR_TUNE_MAX_VALUES) return line_error(err, err_size, file, line, "too many values");
                s->values[s->n_values++] = (int)v;
                p = end;
            }
        }
    }
    if (s->knob < 0 || s->n_values == 0) return line_error(err, err_size, file, line, "no knob values");
    if (!have_default) return line_error(err, err_size, file, line, "no default");
    bool listed = false;
    for (int i = 0; i < s->n_values; i++) listed |= s->values[i] == s->default_value;
    if (!listed) return line_error(err, err_size, file, line, "the default is not one of the values");
    if (s->require[0]) { /* the expression must at least parse, with every name known */
        const char *names[HR_TUNE_MAX_PARAMS + 2] = {"ELEM", "SHARED"};
        long long values[HR_TUNE_MAX_PARAMS + 2] = {4, 49152};
        int nv = 2;
        for (int i = 0; i < s->n_params; i++) names[nv] = s->params[i], values[nv++] = 1;
        long long r;
        char why[200];
        if (hr_tune_eval(s->require, names, values, nv, &r, why, sizeof why)) {
            char msg[300];
            snprintf(msg, sizeof msg, "require: %s", why);
            return line_error(err, err_size, file, line, msg);
        }
    }
    return 0;
}

int hr_tune_spaces_parse(const char *file, const char *source, hr_tune_space *spaces, int max, int *n, char *err,
                         size_t err_size) {
    int line = 1;
    for (const char *p = source; *p; line++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char text[512];
        trim_copy(text, sizeof text, p, p + (len < sizeof text - 1 ? len : sizeof text - 1));
        if (strncmp(text, "// @tune", 8) == 0) {
            if (*n == max) {
                snprintf(err, err_size, "%s:%d: more than %d @tune lines in all", file, line, max);
                return -1;
            }
            if (parse_line(file, line, text + 8, &spaces[*n], err, err_size)) return -1;
            for (int i = 0; i < *n; i++)
                if (strcmp(spaces[i].kernel, spaces[*n].kernel) == 0) {
                    snprintf(err, err_size, "%s:%d: a second @tune line for %s (one knob per kernel)", file, line,
                             spaces[*n].kernel);
                    return -1;
                }
            (*n)++;
        }
        p += len + (eol != NULL);
    }
    return 0;
}

int hr_tune_spaces_load(hr_tune_space *spaces, int max, int *n, char *err, size_t err_size) {
    *n = 0;
    for (int t = 0; t < hr_kernel_template_count; t++) {
        size_t size;
        char *src = hr_kernel_source(hr_kernel_templates[t].file, &size, err, err_size);
        if (!src) return -1;
        int rc = hr_tune_spaces_parse(hr_kernel_templates[t].file, src, spaces, max, n, err, err_size);
        free(src);
        if (rc) return -1;
    }
    return 0;
}

const hr_tune_space *hr_tune_space_find(const hr_tune_space *spaces, int n, const char *kernel) {
    for (int i = 0; i < n; i++)
        if (strcmp(spaces[i].kernel, kernel) == 0) return &spaces[i];
    return NULL;
}

/* The variables of s's `require` at instantiation args with the knob at value. */
static int eval_require(const hr_tune_space *s, char args[][32], int value, bool *ok, char *err, size_t err_size) {
    *ok = true;
    if (!s->require[0]) return 0;
    const char *names[HR_TUNE_MAX_PARAMS + 2] = {"ELEM", "SHARED"};
    long long values[HR_TUNE_MAX_PARAMS + 2] = {4, 49152};
    int nv = 2;
    for (int i = 0; i < s->n_params; i++) {
        const char *a = args[i];
        if (i == s->knob) {
            names[nv] = s->params[i], values[nv++] = value;
        } else if (isdigit((unsigned char)a[0])) {
            names[nv] = s->params[i], values[nv++] = atoll(a);
        } else if (strcmp(a, "double") == 0 || strcmp(a, "float") == 0) {
            values[0] = strcmp(a, "double") == 0 ? 8 : 4; /* ELEM: the bytes of the float type */
        }
    }
    long long r;
    if (hr_tune_eval(s->require, names, values, nv, &r, err, err_size)) return -1;
    *ok = r != 0;
    return 0;
}

int hr_tune_variant(const hr_tune_space *s, const char *expr, int value, char *out, size_t out_size, char *err,
                    size_t err_size) {
    char kernel[64], args[HR_TUNE_MAX_PARAMS][32];
    int n = hr_tune_split_expr(expr, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS);
    if (n != s->n_params || strcmp(kernel, s->kernel) != 0) {
        snprintf(err, err_size, "%s is not an instantiation of %s (%s:%d)", expr, s->kernel, s->file, s->line);
        return -1;
    }
    bool ok;
    if (eval_require(s, args, value, &ok, err, err_size)) return -1;
    if (!ok) {
        snprintf(err, err_size, "%s=%d breaks %s's requirement %s for %s", s->params[s->knob], value, s->kernel,
                 s->require, expr);
        return -1;
    }
    snprintf(args[s->knob], 32, "%d", value);
    size_t used = (size_t)snprintf(out, out_size, "%s<", kernel);
    for (int i = 0; i < n && used < out_size; i++)
        used += (size_t)snprintf(out + used, out_size - used, i ? ", %s" : "%s", args[i]);
    if (used + 2 > out_size) {
        snprintf(err, err_size, "the name expression of %s is too long", expr);
        return -1;
    }
    snprintf(out + used, out_size - used, ">");
    return 0;
}

int hr_tune_allowed_values(const hr_tune_space *s, const char *expr, int *out) {
    char kernel[64], args[HR_TUNE_MAX_PARAMS][32], err[200];
    int n = hr_tune_split_expr(expr, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS);
    if (n != s->n_params || strcmp(kernel, s->kernel) != 0) return 0;
    int count = 0;
    for (int i = 0; i < s->n_values; i++) {
        bool ok;
        if (eval_require(s, args, s->values[i], &ok, err, sizeof err) == 0 && ok) out[count++] = s->values[i];
    }
    return count;
}
