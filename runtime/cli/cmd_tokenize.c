/* hybridrt tokenize IN... -o OUT.bin: text to a token file (docs/tokenizers.md, docs/data.md).
 * The tokenizer is bytes (one token per byte) or a byte-level BPE tokenizer.json, which --train-bpe
 * trains on the inputs first. Inputs are streamed in blocks cut where the pre-tokenizer allows, each
 * block encoded on all threads, so a corpus larger than memory is fine and the ids are exactly those
 * of encoding each file whole. OUT.bin appears only once it is complete. */
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/context.h"
#include "io/tokenfile.h"
#include "text/bpe.h"
#include "text/bpe_train.h"
#include "text/tokenizer_json.h"

#define BLOCK (16u << 20)

static void tokenize_usage(void) {
    printf("usage: hybridrt tokenize [options] IN... -o OUT.bin\n\n"
           "Reads the text files IN (a directory: every file under it, in name order; - for standard input)\n"
           "and writes their tokens to the token file OUT.bin (docs/data.md), with a document separator\n"
           "between files. OUT.bin appears only once it is complete: it is written to a temporary file\n"
           "beside it and renamed.\n\n"
           "options:\n"
           "  -o, --output FILE     the token file to write (required)\n"
           "  --tokenizer FILE      a byte-level BPE tokenizer.json to encode with (Hugging Face format), or\n"
           "                        'bytes' (the default: one token per byte, vocab 256). With --train-bpe:\n"
           "                        where to write the trained tokenizer (default: OUT with .tokenizer.json)\n"
           "  --train-bpe VOCAB     first train a byte-level BPE of VOCAB tokens on the inputs (as Hugging\n"
           "                        Face tokenizers would), write it, then encode with it\n"
           "  --min-frequency N     training: merge only pairs seen at least N times (default 2)\n"
           "  --special LIST        training: comma-separated special tokens (default <pad>,<unk>,<bos>,<eos>)\n"
           "  --add-prefix-space    training: a space before each line, and before the text when encoding\n"
           "  --force               training: overwrite an existing tokenizer file\n"
           "  --separator TOKEN     the token put between files (default <eos>, <|endoftext|> or </s>, the\n"
           "                        first the tokenizer has; none for bytes); 'none' for no separator\n"
           "  --threads N           encoding threads (default: all cores)\n"
           "  -q, --quiet           no progress bar\n\n"
           "Prints a summary (files, bytes, tokens, time, MB/s) to stderr.\n"
           "Exit status: 0 on success; 1 if an input cannot be read, the tokenizer loaded or the output\n"
           "written; 2 for a usage error.\n");
}

typedef struct {
    const char *output, *tokenizer, *separator, *special;
    long train_vocab; /* 0: no training */
    long min_frequency;
    bool add_prefix_space, force, quiet;
    int threads;
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

static bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Returns 0, or the exit status of a usage error (reported). */
static int parse(int argc, char **argv, options *o) {
    *o = (options){.tokenizer = NULL, .inputs = argv, .min_frequency = 2, .special = "<pad>,<unk>,<bos>,<eos>"};
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v;
        long n;
        if (is_option(arg, "-o", "--output")) {
            if (!(o->output = option_value(argc, argv, &i, arg)) || !*o->output)
                return usage_error("missing the file after ", arg);
        } else if (is_option(arg, NULL, "--tokenizer")) {
            if (!(o->tokenizer = option_value(argc, argv, &i, arg)) || !*o->tokenizer)
                return usage_error("missing the file after ", arg);
        } else if (is_option(arg, NULL, "--train-bpe")) {
            if (!(v = option_value(argc, argv, &i, arg)) || !parse_long(v, 1, 1 << 30, &o->train_vocab))
                return usage_error("--train-bpe needs a vocab size (a positive integer), got ", v ? v : "nothing");
        } else if (is_option(arg, NULL, "--min-frequency")) {
            if (!(v = option_value(argc, argv, &i, arg)) || !parse_long(v, 0, 1L << 40, &o->min_frequency))
                return usage_error("--min-frequency needs an integer >= 0, got ", v ? v : "nothing");
        } else if (is_option(arg, NULL, "--special")) {
            if (!(o->special = option_value(argc, argv, &i, arg))) return usage_error("missing the list after ", arg);
        } else if (is_option(arg, NULL, "--separator")) {
            if (!(o->separator = option_value(argc, argv, &i, arg)) || !*o->separator)
                return usage_error("missing the token after ", arg);
        } else if (is_option(arg, NULL, "--threads")) {
            if (!(v = option_value(argc, argv, &i, arg)) || !parse_long(v, 1, 1024, &n))
                return usage_error("--threads needs an integer in 1..1024, got ", v ? v : "nothing");
            o->threads = (int)n;
        } else if (strcmp(arg, "--add-prefix-space") == 0) {
            o->add_prefix_space = true;
        } else if (strcmp(arg, "--force") == 0) {
            o->force = true;
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            o->quiet = true;
        } else if (arg[0] == '-' && arg[1]) {
            return usage_error("unknown option ", arg);
        } else {
            o->inputs[o->n_inputs++] = argv[i];
        }
    }
    if (o->n_inputs == 0) return usage_error("no input files", "");
    if (!o->output) return usage_error("missing the output file: -o OUT.bin", "");
    if (o->train_vocab && o->tokenizer && strcmp(o->tokenizer, "bytes") == 0)
        return usage_error("--train-bpe writes a tokenizer.json: --tokenizer names that file, not 'bytes'", "");
    if (!o->train_vocab && (o->add_prefix_space || o->force))
        return usage_error("--add-prefix-space and --force go with --train-bpe", "");
    if (!o->threads) o->threads = omp_get_max_threads();
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the input list: files, directories expanded in name order, - for stdin ---- */

typedef struct {
    char **path;
    int64_t *size; /* -1 for stdin */
    int n, cap;
} file_list;

static int list_add(file_list *l, const char *path, int64_t size) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->path, (size_t)cap * sizeof *p);
        if (p) l->path = p;
        int64_t *s = realloc(l->size, (size_t)cap * sizeof *s);
        if (s) l->size = s;
        if (!p || !s) return -1;
        l->cap = cap;
    }
    if (!(l->path[l->n] = strdup(path))) return -1;
    l->size[l->n++] = size;
    return 0;
}

static void list_free(file_list *l) {
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    free(l->size);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Adds path: a regular file, or every regular file under a directory (hidden entries skipped). */
static int expand(file_list *l, const char *path) {
    if (strcmp(path, "-") == 0) return list_add(l, path, -1);
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", path, strerror(errno));
        return 1;
    }
    if (S_ISREG(st.st_mode)) return list_add(l, path, (int64_t)st.st_size) ? -1 : 0;
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "hybridrt tokenize: '%s' is neither a file nor a directory\n", path);
        return 1;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "hybridrt tokenize: cannot read directory '%s': %s\n", path, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) rc = -1;
            else names = grown;
        }
        if (!rc) {
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            if (!(names[n] = malloc(len))) rc = -1;
            else snprintf(names[n++], len, "%s/%s", path, e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (!rc) rc = expand(l, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ---- progress on stderr (a terminal only) ---- */

typedef struct {
    bool on;
    const char *what;
    int64_t total; /* bytes, -1 when unknown (stdin) */
    double t0, last;
} progress;

static void progress_show(progress *p, int64_t done, bool final) {
    if (!p->on) return;
    double t = now();
    if (!final && t - p->last < 0.1) return;
    p->last = t;
    double mbs = (double)done / 1e6 / (t - p->t0 > 1e-9 ? t - p->t0 : 1e-9);
    if (p->total > 0) {
        int width = 30, fill = (int)((double)done / (double)p->total * width);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r\033[K%s [%s] %5.1f%% %.1f/%.1f MB, %.1f MB/s", p->what, bar,
                100.0 * (double)done / (double)p->total, (double)done / 1e6, (double)p->total / 1e6, mbs);
    } else {
        fprintf(stderr, "\r\033[K%s %.1f MB, %.1f MB/s", p->what, (double)done / 1e6, mbs);
    }
    if (final) fprintf(stderr, "\r\033[K");
}

static void merges_progress(void *arg, const char *stage, uint64_t done, uint64_t total) {
    progress *p = arg;
    if (!p->on) return;
    fprintf(stderr, "\r\033[Ktrain-bpe: %s %llu/%llu tokens", stage, (unsigned long long)done, (unsigned long long)total);
}

/* ---- reading blocks ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} block;

/* Reads more of f into b (growing it when full). Returns the bytes read, 0 at the end, -1 on error. */
static long read_more(FILE *f, block *b) {
    if (b->cap - b->len < BLOCK / 2) {
        size_t cap = b->cap ? 2 * b->cap : BLOCK;
        uint8_t *grown = realloc(b->buf, cap);
        if (!grown) {
            errno = ENOMEM;
            return -1;
        }
        b->buf = grown;
        b->cap = cap;
    }
    size_t got = fread(b->buf + b->len, 1, b->cap - b->len, f);
    if (got == 0 && ferror(f)) return -1;
    b->len += got;
    return (long)got;
}

static FILE *open_input(const char *name) { return strcmp(name, "-") == 0 ? stdin : fopen(name, "rb"); }
static const char *shown_name(const char *name) { return strcmp(name, "-") == 0 ? "standard input" : name; }

/* ---- training ---- */

static hr_bpe *train(const options *o, const file_list *files, progress *pr) {
    const char *specials[65];
    int n_special = 0;
    char *list = strdup(o->special);
    if (!list) return NULL;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n_special == 64) {
            fprintf(stderr, "hybridrt tokenize: at most 64 special tokens\n");
            free(list);
            return NULL;
        }
        specials[n_special++] = t;
    }
    specials[n_special] = NULL;
    hr_bpe_train_opts opts = {.vocab_size = (uint32_t)o->train_vocab, .min_frequency = (uint64_t)o->min_frequency,
                              .special = specials, .add_prefix_space = o->add_prefix_space,
                              .progress = merges_progress, .progress_arg = pr};
    hr_bpe_trainer *tr = hr_bpe_trainer_new(&opts);
    free(list);
    block b = {0};
    hr_bpe *bpe = NULL;
    int64_t done = 0;
    pr->what = "train-bpe: counting";
    if (!tr) goto oom;
    for (int i = 0; i < files->n; i++) {
        FILE *f = open_input(files->path[i]);
        if (!f) {
            fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", files->path[i], strerror(errno));
            goto out;
        }
        long got;
        while ((got = read_more(f, &b)) > 0) {
            if (hr_bpe_trainer_feed(tr, b.buf, b.len)) {
                fclose(f);
                goto oom;
            }
            done += got;
            b.len = 0;
            progress_show(pr, done, false);
        }
        int err = errno;
        fclose(f);
        if (got < 0) {
            fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", files->path[i], strerror(err));
            goto out;
        }
        if (hr_bpe_trainer_end_file(tr)) goto oom;
    }
    if (hr_bpe_trainer_words(tr) == 0) {
        fprintf(stderr, "hybridrt tokenize: the input is empty: nothing to train on\n");
        goto out;
    }
    char err[HR_BPE_ERR];
    if (!(bpe = hr_bpe_trainer_finish(tr, err))) fprintf(stderr, "hybridrt tokenize: %s\n", err);
    if (pr->on) fprintf(stderr, "\r\033[K");
    goto out;
oom:
    fprintf(stderr, "hybridrt tokenize: out of memory while training\n");
out:
    hr_bpe_trainer_free(tr);
    free(b.buf);
    return bpe;
}

/* The tokenizer file --train-bpe writes: --tokenizer, else OUT with .bin replaced by .tokenizer.json. */
static char *trained_path(const options *o) {
    if (o->tokenizer) return strdup(o->tokenizer);
    size_t n = strlen(o->output);
    if (n > 4 && strcmp(o->output + n - 4, ".bin") == 0) n -= 4;
    char *p = malloc(n + 16);
    if (p) snprintf(p, n + 16, "%.*s.tokenizer.json", (int)n, o->output);
    return p;
}

/* ---- encoding ---- */

typedef struct {
    const hr_bpe *bpe;
    hr_bpe_encoder **encs;
    int threads;
    hr_tokens_writer *w;
    hr_ctx *ctx;
} encoding;

/* Streams one input through the tokenizer into the writer. Returns 0, or 1 with the error reported
 * (the writer is then aborted). */
static int encode_file(encoding *e, const char *name, int64_t *bytes, progress *pr) {
    FILE *f = open_input(name);
    if (!f) {
        fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", name, strerror(errno));
        return 1;
    }
    block b = {0};
    hr_ids ids = {0};
    bool first = true, eof = false;
    int rc = 0;
    while (!rc && !eof) {
        long got = read_more(f, &b);
        if (got < 0) {
            fprintf(stderr, "hybridrt tokenize: cannot read '%s': %s\n", shown_name(name), strerror(errno));
            rc = 1;
            break;
        }
        eof = got == 0;
        *bytes += got;
        size_t cut = eof ? b.len : hr_bpe_stream_cut(e->bpe, b.buf, b.len);
        if (cut == 0 && !eof) continue; /* no safe cut yet: read more */
        char err[HR_BPE_ERR];
        ids.n = 0;
        if (hr_bpe_encode_parallel(e->bpe, e->encs, e->threads, b.buf, cut, first, &ids, err)) {
            fprintf(stderr, "hybridrt tokenize: %s: %s\n", shown_name(name), err);
            rc = 1;
        } else if (hr_tokens_writer_append(e->ctx, e->w, ids.data, (int64_t)ids.n)) {
            fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(e->ctx));
            e->w = NULL; /* append frees the writer on failure */
            rc = 1;
        }
        memmove(b.buf, b.buf + cut, b.len - cut);
        b.len -= cut;
        first = false;
        progress_show(pr, *bytes, false);
    }
    if (f != stdin) fclose(f);
    free(b.buf);
    hr_ids_free(&ids);
    return rc;
}

static int tokenize(hr_ctx *ctx, const options *o) {
    double t0 = now();
    file_list files = {0};
    int rc = 0;
    for (int i = 0; i < o->n_inputs && !rc; i++) rc = expand(&files, o->inputs[i]);
    if (rc) {
        if (rc < 0) fprintf(stderr, "hybridrt tokenize: out of memory\n");
        list_free(&files);
        return 1;
    }
    if (files.n == 0) {
        fprintf(stderr, "hybridrt tokenize: no input files (the directories given are empty)\n");
        list_free(&files);
        return 1;
    }
    int64_t total = 0;
    for (int i = 0; i < files.n; i++) total = files.size[i] < 0 || total < 0 ? -1 : total + files.size[i];
    progress pr = {.on = !o->quiet && isatty(2), .total = total, .t0 = t0, .last = 0};

    /* the tokenizer: trained, loaded, or bytes */
    hr_bpe *bpe = NULL;
    char *tok_path = NULL, err[HR_BPE_ERR];
    const char *tok_name = "bytes";
    bool is_bytes = false;
    double train_s = 0;
    if (o->train_vocab) {
        for (int i = 0; i < files.n; i++)
            if (files.size[i] < 0) {
                fprintf(stderr, "hybridrt tokenize: --train-bpe reads the inputs twice, so standard input (-) "
                                "cannot be one: save it to a file first\n");
                goto fail;
            }
        if (!(tok_path = trained_path(o))) goto oom;
        struct stat st;
        if (!o->force && stat(tok_path, &st) == 0) {
            fprintf(stderr, "hybridrt tokenize: '%s' exists: pass --force to replace it, or --tokenizer FILE to write "
                            "elsewhere\n", tok_path);
            goto fail;
        }
        if (!(bpe = train(o, &files, &pr))) goto fail;
        if (hr_tokenizer_json_save(ctx, bpe, tok_path)) {
            fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
            goto fail;
        }
        train_s = now() - t0;
        fprintf(stderr, "train-bpe: %llu input bytes, vocab %u (%u merges, min frequency %ld), %.2f s -> %s\n",
                (unsigned long long)total, bpe->n_ids, bpe->n_merges, o->min_frequency, train_s, tok_path);
        tok_name = tok_path;
    } else if (!o->tokenizer || strcmp(o->tokenizer, "bytes") == 0) {
        is_bytes = true;
        if (!(bpe = hr_bpe_new_bytes())) goto oom;
    } else {
        if (!(bpe = hr_tokenizer_json_load(o->tokenizer, err))) {
            fprintf(stderr, "hybridrt tokenize: cannot load the tokenizer: %s\n", err);
            goto fail;
        }
        tok_name = o->tokenizer;
    }

    /* the separator between files */
    int64_t sep = -1;
    if (o->separator && strcmp(o->separator, "none") != 0) {
        sep = is_bytes ? -1 : hr_bpe_token_id(bpe, o->separator, strlen(o->separator));
        if (sep < 0) {
            fprintf(stderr, "hybridrt tokenize: --separator %s: the tokenizer (%s) has no such token\n", o->separator,
                    tok_name);
            goto fail;
        }
    } else if (!o->separator && !is_bytes) {
        sep = hr_bpe_eos_id(bpe);
        if (sep < 0 && files.n > 1)
            fprintf(stderr, "note: the tokenizer has none of <eos>, <|endoftext|>, </s>: files are joined without a "
                            "separator\n");
    }

    hr_tokens_writer *w = hr_tokens_writer_open(ctx, o->output, bpe->n_ids);
    if (!w) {
        fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
        goto fail;
    }
    encoding e = {.bpe = bpe, .threads = o->threads, .w = w, .ctx = ctx};
    if (!(e.encs = calloc((size_t)o->threads, sizeof *e.encs))) {
        hr_tokens_writer_abort(w);
        goto oom;
    }
    double t1 = now();
    int64_t bytes = 0;
    pr.what = "tokenize";
    pr.t0 = t1;
    for (int i = 0; i < files.n && !rc; i++) {
        rc = encode_file(&e, files.path[i], &bytes, &pr);
        if (!rc && sep >= 0 && i + 1 < files.n) {
            uint32_t id = (uint32_t)sep;
            if (hr_tokens_writer_append(ctx, e.w, &id, 1)) {
                fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
                e.w = NULL;
                rc = 1;
            }
        }
    }
    progress_show(&pr, bytes, true);
    for (int t = 0; t < o->threads; t++) hr_bpe_encoder_free(e.encs[t]);
    free(e.encs);
    if (!rc && bytes == 0) {
        fprintf(stderr, "hybridrt tokenize: the input is empty: nothing to tokenize\n");
        rc = 1;
    }
    if (rc) {
        if (e.w) hr_tokens_writer_abort(e.w);
        goto fail;
    }
    int64_t tokens = hr_tokens_writer_count(e.w);
    if (hr_tokens_writer_commit(ctx, e.w)) {
        fprintf(stderr, "hybridrt tokenize: %s\n", hr_last_error(ctx));
        goto fail;
    }
    double secs = now() - t1;
    fprintf(stderr,
            "tokenize: %d file%s, %lld bytes in, %lld tokens out (%s, vocab %u), %.3f s, %.1f MB/s, %d thread%s -> %s\n",
            files.n, files.n == 1 ? "" : "s", (long long)bytes, (long long)tokens, is_bytes ? "bytes" : tok_name,
            bpe->n_ids, secs, secs > 0 ? (double)bytes / 1e6 / secs : 0.0, o->threads, o->threads == 1 ? "" : "s",
            o->output);
    hr_bpe_free(bpe);
    free(tok_path);
    list_free(&files);
    return 0;
oom:
    fprintf(stderr, "hybridrt tokenize: out of memory\n");
fail:
    hr_bpe_free(bpe);
    free(tok_path);
    list_free(&files);
    return 1;
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
