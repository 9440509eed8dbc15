/* libFuzzer target: the @tune lines of a kernel template (runtime/jit/tune_space.c,
 * hr_tune_spaces_parse: kernel<params>, the knob's values, default, the `require` expression), then
 * what the tuner does with each space: the values allowed at a few instantiations
 * (hr_tune_allowed_values) and each variant's name expression (hr_tune_variant). The first line of
 * the input is also evaluated as a `require` expression of its own (hr_tune_eval). Properties: the
 * allowed values are values of the space; a variant that is made is an instantiation of the kernel. */
#include "fuzz_util.h"

#include "jit/tune_space.h"

#define MAX_SPACES 16

/* kernel<args>: the parameter names replaced by a number, except the first by a float type. */
static void instantiation(const hr_tune_space *s, const char *first, int number, char *out, size_t size) {
    size_t used = (size_t)snprintf(out, size, "%s<", s->kernel);
    for (int i = 0; i < s->n_params && used < size; i++)
        used += (size_t)(i == 0 ? snprintf(out + used, size - used, "%s", first)
                                : snprintf(out + used, size - used, ", %d", number));
    if (used < size) snprintf(out + used, size - used, ">");
}

static void use_space(const hr_tune_space *s) {
    static const char *const firsts[] = {"float", "double", "64"};
    static const int numbers[] = {1, 32, 64, 1000};
    for (int f = 0; f < 3; f++)
        for (int k = 0; k < 4; k++) {
            char expr[512], variant[512], err[512];
            instantiation(s, firsts[f], numbers[k], expr, sizeof expr);
            int allowed[HR_TUNE_MAX_VALUES];
            int n = hr_tune_allowed_values(s, expr, allowed);
            for (int i = 0; i < n; i++) {
                int listed = 0;
                for (int j = 0; j < s->n_values; j++) listed |= s->values[j] == allowed[i];
                if (!listed) fuzz_fail("%s: allowed value %d is not in the space", expr, allowed[i]);
            }
            for (int i = 0; i < s->n_values; i++) {
                if (hr_tune_variant(s, expr, s->values[i], variant, sizeof variant, err, sizeof err)) continue;
                char kernel[64], args[HR_TUNE_MAX_PARAMS][32];
                if (hr_tune_split_expr(variant, kernel, sizeof kernel, args, HR_TUNE_MAX_PARAMS) != s->n_params ||
                    strcmp(kernel, s->kernel))
                    fuzz_fail("variant %s of %s is not an instantiation of %s", variant, expr, s->kernel);
            }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1), err[1024];
    memcpy(src, data, size);
    src[size] = '\0';
    static hr_tune_space spaces[MAX_SPACES];
    int n = 0;
    hr_tune_spaces_parse("fuzz.cu", src, spaces, MAX_SPACES, &n, err, sizeof err);
    for (int i = 0; i < n; i++) use_space(&spaces[i]);
    char *nl = strchr(src, '\n');
    if (nl) *nl = '\0';
    static const char *const names[] = {"ELEM", "SHARED", "N", "CHUNK", "BLOCK"};
    static const long long values[] = {4, 49152, 64, 16, -1};
    long long r;
    hr_tune_eval(src, names, values, 5, &r, err, sizeof err);
    free(src);
    return 0;
}
