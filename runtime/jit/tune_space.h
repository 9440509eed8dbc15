/* Tuning spaces: the knobs of a kernel a tuner may turn, declared in its template beside the kernel
 * (a .cu file of kernel_src/), one line per knob:
 *
 *   // @tune hr_group_norm_forward<T, BLOCK>: BLOCK = 64 128 256 512 1024; default 256
 *   // @tune hr_wkv6_backward<T, N, CHUNK>: CHUNK = 8 16 32 64; default 16; require CHUNK <= 2 * N
 *
 * The knob is one of the kernel's template arguments, so each value is its own instantiation (name
 * expression), compiled and cached like any other. `require` is an integer expression over the
 * template's integer arguments (by their names), ELEM (the bytes of T) and SHARED (49152, the shared
 * memory a block gets without opting in), with + - * / % ( ) < <= > >= == != && ||; a value for which
 * it is false is not part of the space for that instantiation. Adding a knob is a local change to
 * the kernel's file. */
#ifndef HR_JIT_TUNE_SPACE_H
#define HR_JIT_TUNE_SPACE_H

#include <stdbool.h>
#include <stddef.h>

#define HR_TUNE_MAX_VALUES 16
#define HR_TUNE_MAX_PARAMS 6

typedef struct hr_tune_space {
    char file[64];                              /* the template, e.g. "norm.cu" */
    int line;                                   /* of the @tune line, for messages */
    char kernel[64];                            /* "hr_group_norm_forward" */
    char params[HR_TUNE_MAX_PARAMS][16];        /* the template's parameter names: "T", "BLOCK" */
    int n_params;
    int knob;                                   /* which parameter is tuned */
    int values[HR_TUNE_MAX_VALUES];
    int n_values;
    int default_value;                          /* one of values */
    char require[160];                          /* "" for none */
} hr_tune_space;

/* Appends the @tune lines of one template's source to spaces (at most max in all, *n counts them).
 * Returns 0, or -1 with err naming the file, the line and what is wrong. */
int hr_tune_spaces_parse(const char *file, const char *source, hr_tune_space *spaces, int max, int *n, char *err,
                         size_t err_size);

/* Every template's spaces (the sources the binary carries, or HYBRIDRT_KERNEL_SRC). */
int hr_tune_spaces_load(hr_tune_space *spaces, int max, int *n, char *err, size_t err_size);

/* The space of a kernel by name (the part before '<'), or NULL. */
const hr_tune_space *hr_tune_space_find(const hr_tune_space *spaces, int n, const char *kernel);

/* Splits a name expression "hr_wkv6_backward<float, 64, 16>" into its kernel name and template
 * arguments (trimmed). Returns the argument count, or -1 when it is not of that form. */
int hr_tune_split_expr(const char *expr, char *kernel, size_t kernel_size, char args[][32], int max_args);

/* The instantiation of expr (an instantiation of s's kernel) with the knob set to value: 0 and out,
 * or -1 with err when expr does not match the space or value breaks the space's `require` there. */
int hr_tune_variant(const hr_tune_space *s, const char *expr, int value, char *out, size_t out_size, char *err,
                    size_t err_size);

/* The values of s allowed for instantiation expr (its `require` evaluated there), in declaration
 * order. Returns their count (0 when expr does not match), values into out. */
int hr_tune_allowed_values(const hr_tune_space *s, const char *expr, int *out);

/* Evaluates an integer expression with variables (names[i] = values[i]). Returns 0 and *result, or
 * -1 with err (a syntax error, an unknown name, a division by zero). */
int hr_tune_eval(const char *expr, const char *const *names, const long long *values, int n_vars, long long *result,
                 char *err, size_t err_size);

#endif
