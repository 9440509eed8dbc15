/* hybridrt tokenize IN... -o OUT.bin: text files to a token file (docs/data.md). The one tokenizer
 * of this build is bytes: every byte of the input is a token (vocab 256). The inputs are streamed,
 * so a corpus larger than memory is fine, and the output appears only once it is complete. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/context.h"
#include "io/tokenfile.h"

static void tokenize_usage(void) {
    printf("usage: hybridrt tokenize IN... -o OUT.bin [--tokenizer bytes]\n\n"
           "Reads the text files IN (- for standard input), concatenated in order, and writes their tokens\n"
           "to the token file OUT.bin (format in docs/data.md). OUT.bin appears only once it is complete: it\n"
           "is written to a temporary file beside it and renamed.\n\n"
           "options:\n"
           "  -o, --output FILE    the token file to write (required)\n"
           "  --tokenizer NAME     bytes (the default and, in this build, the only one): one token per byte,\n"
           "                       vocab 256\n\n"
           "Prints a summary (files, bytes, tokens, time) to stderr.\n"
           "Exit status: 0 on success; 1 if an input cannot be read or the output written; 2 for a usage error.\n");
}

typedef struct {
    const char *output;
    const char *tokenizer;
    int n_inputs;
    char **inputs; /* argv entries, reordered in place: options out, inputs first */
} options;

static int usage_error(const char *msg, const char *what) {
    fprintf(stderr, "hybridrt tokenize: %s%s (usage: hybridrt tokenize IN... -o OUT.bin; see --help)\n", msg, what);
    return 2;
}

/* The value of an option given as "--name VALUE" or "--name=VALUE"; NULL when it is missing. */
static const char *option_value(int argc, char **argv, int *i, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (eq && strncmp(arg, "--", 2) == 0) return eq + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static bool is_option(const char *arg, const char *short_name, const char *long_name) {
    size_t n = strlen(long_name);
    if (short_name && strcmp(arg, short_name) == 0) return true;
    return strncmp(arg, long_name, n) == 0 && (!arg[n] || arg[n] == '=');
}

/* Returns 0, or the exit status of a usage error (reported). */
static int parse(int argc, char **argv, options *o) {
    *o = (options){.tokenizer = "bytes", .inputs = argv};
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (is_option(arg, "-o", "--output")) {
            if (!(o->output = option_value(argc, argv, &i, arg)) || !*o->output)
                return usage_error("missing the file after ", arg);
        } else if (is_option(arg, NULL, "--tokenizer")) {
            if (!(o->tokenizer = option_value(argc, argv, &i, arg))) return usage_error("missing the name after ", arg);
        } else if (arg[0] == '-' && arg[1]) {
            return usage_error("unknown option ", arg);
        } else {
            o->inputs[o->n_inputs++] = argv[i];
        }
    }
    if (strcmp(o->tokenizer, "bytes") != 0) {
        fprintf(stderr, "hybridrt tokenize: unsupported tokenizer '%s': only 'bytes' is available in this build\n",
                o->tokenizer);
        return 2;
    }
    if (o->n_inputs == 0) return usage_error("no input files", "");
    if (!o->output) return usage_error("missing the output file: -o OUT.bin", "");
    return 0;
}

/* Streams one input into the writer; adds its size to *bytes. Returns 0, or 1 with the error reported
 * (the writer is then aborted). */
static int tokenize_file(hr_ctx *ctx, hr_tokens_writer *w, const char *name, int64_t *bytes) {
    bool is_stdin = strcmp(name, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(name, "rb");
    if (!f) {
        fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", name, strerror(errno));
        hr_tokens_writer_abort(w);
        return 1;
    }
    static unsigned char buf[1 << 16];
    static uint32_t ids[1 << 16];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++) ids[i] = buf[i];
        *bytes += (int64_t)got;
        if (hr_tokens_writer_append(ctx, w, ids, (int64_t)got)) { /* the writer is gone */
            fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
            rc = 1;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", is_stdin ? "standard input" : name,
                strerror(errno));
        hr_tokens_writer_abort(w);
        rc = 1;
    }
    if (!is_stdin) fclose(f);
    return rc;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int tokenize(hr_ctx *ctx, const options *o) {
    double t0 = now();
    hr_tokens_writer *w = hr_tokens_writer_open(ctx, o->output, 256);
    if (!w) {
        fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
        return 1;
    }
    int64_t bytes = 0;
    for (int i = 0; i < o->n_inputs; i++)
        if (tokenize_file(ctx, w, o->inputs[i], &bytes)) return 1;
    if (bytes == 0) {
        fprintf(stderr, "hybridrt tokenize: the input is empty: nothing to tokenize\n");
        hr_tokens_writer_abort(w);
        return 1;
    }
    int64_t tokens = hr_tokens_writer_count(w);
    if (hr_tokens_writer_commit(ctx, w)) {
        fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
        return 1;
    }
    double secs = now() - t0;
    fprintf(stderr, "tokenize: %d file%s, %lld bytes in, %lld tokens out (bytes, vocab 256), %.3f s, %.1f MB/s -> %s\n",
            o->n_inputs, o->n_inputs == 1 ? "" : "s", (long long)bytes, (long long)tokens, secs,
            secs > 0 ? (double)bytes / 1e6 / secs : 0.0, o->output);
    return 0;
}

int hr_cmd_tokenize(int argc, char **argv) {
    if (hr_wants_help(argc, argv)) {
        tokenize_usage();
        return 0;
    }
    options o;
    int status = parse(argc, argv, &o);
    if (status) return status;
    hr_ctx *ctx = hr_ctx_create();
    if (!ctx) {
        fprintf(stderr, "hybridrt tokenize: out of memory\n");
        return 1;
    }
    status = tokenize(ctx, &o);
    hr_ctx_destroy(ctx);
    return status;
}
