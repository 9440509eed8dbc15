/* runtime/io from C: safetensors round trips (every dtype, strided inputs, 0-d and empty tensors),
 * byte-exact determinism, metadata, every kind of corrupt file, atomic writes that leave the old file
 * intact on failure (a real short write, via RLIMIT_FSIZE); token files, text as bytes, batches. */
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/graph.h"
#include "core/ops.h"
#include "cpu/backend.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/tokenfile.h"
#include "test_util.h"

static char dir[64]; /* a fresh temporary directory for every file of this test */

static const char *path_of(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* The whole file, malloc'd (NULL if missing); *n its size. */
static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)size + 1);
    *n = fread(p, 1, (size_t)size, f);
    fclose(f);
    return p;
}

/* A safetensors file from a JSON header and raw data (no padding: readers must not need it). */
static void write_st(const char *path, const char *json, const void *data, size_t n) {
    size_t hlen = strlen(json);
    unsigned char *buf = malloc(8 + hlen + n + 1);
    hr_put_le64(buf, hlen);
    memcpy(buf + 8, json, hlen);
    if (n) memcpy(buf + 8 + hlen, data, n);
    write_bytes(path, buf, 8 + hlen + n);
    free(buf);
}

static int count_tmp_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static hr_tensor *filled(hr_ctx *ctx, hr_dtype dt, int ndim, const int64_t *shape, double base) {
    hr_tensor *t = hr_tensor_empty(ctx, dt, ndim, shape);
    double step = dt == HR_U8 ? 1 : -1.25;
    for (int64_t i = 0; i < hr_tensor_numel(t); i++) hr_tensor_set_flat(t, i, base + (double)i * step);
    return t;
}

/* A zeroed (B, T) batch tensor. */
static hr_tensor *ids_tensor(hr_ctx *ctx, hr_dtype dt, int64_t B, int64_t T) {
    return hr_tensor_zeros(ctx, dt, 2, (int64_t[]){B, T});
}

static bool same_values(const hr_tensor *a, const hr_tensor *b) {
    if (a->dtype != b->dtype || !hr_same_shape(a, b)) return false;
    for (int64_t i = 0; i < hr_tensor_numel(a); i++)
        if (hr_tensor_get_flat(a, i) != hr_tensor_get_flat(b, i)) return false;
    return true;
}

/* ---- safetensors ---- */

enum { N_ROUND = 9 };

static void make_round_trip_set(hr_ctx *ctx, hr_tensor **ts) {
    ts[0] = filled(ctx, HR_F32, 2, (int64_t[]){2, 3}, 0.5);
    ts[1] = filled(ctx, HR_F64, 1, (int64_t[]){4}, 1.0 / 3);
    ts[2] = filled(ctx, HR_BF16, 2, (int64_t[]){2, 2}, 3.0);
    ts[3] = filled(ctx, HR_I32, 3, (int64_t[]){3, 1, 2}, 1000);
    ts[4] = filled(ctx, HR_I64, 0, NULL, -((double)(INT64_C(1) << 40)));
    ts[5] = filled(ctx, HR_U8, 1, (int64_t[]){5}, 250);
    hr_tensor *base = filled(ctx, HR_F32, 2, (int64_t[]){3, 4}, 7);
    ts[6] = hr_transpose(ctx, base, 0, 1);           /* strided (4, 3) */
    ts[7] = hr_narrow(ctx, base, 1, 1, 2);            /* strided (3, 2) with an offset */
    ts[8] = filled(ctx, HR_F32, 2, (int64_t[]){0, 3}, 0); /* empty */
    hr_tensor_release(base);
}

static void test_st_round_trip(hr_ctx *ctx) {
    hr_tensor *ts[N_ROUND];
    make_round_trip_set(ctx, ts);
    const char *names[N_ROUND] = {"f32", "f64", "bf16", "i32", "i64.scalar", "u8", "transposed", "narrowed", "empty"};
    const char *keys[] = {"step", "note"}, *values[] = {"100", "quote \" backslash \\ newline \n ünï"};
    const char *p = path_of("round.safetensors");
    CHECK(hr_safetensors_save(ctx, p, N_ROUND, names, ts, 2, keys, values) == 0, "save: %s", hr_last_error(ctx));
    CHECK(!hr_tensor_is_contiguous(ts[6]) && !hr_tensor_is_contiguous(ts[7]), "the set has strided tensors");
    hr_safetensors *st = hr_safetensors_load(ctx, p);
    CHECK(st && st->n == N_ROUND, "load: %s", st ? "wrong count" : hr_last_error(ctx));
    for (int i = 0; st && i < st->n; i++) {
        if (i) CHECK(strcmp(st->names[i - 1], st->names[i]) < 0, "names come back sorted");
        int j = 0;
        while (j < N_ROUND && strcmp(names[j], st->names[i]) != 0) j++;
        CHECK(j < N_ROUND && same_values(st->tensors[i], ts[j]), "tensor '%s' round-trips", st->names[i]);
        CHECK(hr_tensor_is_contiguous(st->tensors[i]) && st->tensors[i]->refcount == 1, "'%s' is fresh and contiguous",
              st->names[i]);
    }
    CHECK(st && st->n_meta == 2 && strcmp(st->meta_keys[0], "note") == 0 &&
              strcmp(st->meta_values[0], values[1]) == 0 && strcmp(st->meta_keys[1], "step") == 0 &&
              strcmp(st->meta_values[1], "100") == 0,
          "metadata round-trips, sorted by key, escapes intact");
    if (st && st->n == N_ROUND) {
        hr_tensor *kept = st->tensors[0];
        st->tensors[0] = NULL; /* taken: the free must leave it alone */
        hr_safetensors_free(st);
        CHECK(kept->refcount == 1 && hr_tensor_numel(kept) >= 0, "a taken tensor outlives the result");
        hr_tensor_release(kept);
    } else {
        hr_safetensors_free(st);
    }

    size_t n;
    unsigned char *bytes = read_bytes(p, &n);
    uint64_t hlen = bytes ? hr_get_le64(bytes) : 1, json_end = hlen;
    while (bytes && json_end > 0 && bytes[8 + json_end - 1] == ' ') json_end--;
    CHECK(bytes && (8 + hlen) % 8 == 0 && hlen - json_end < 8 && bytes[8] == '{' && bytes[8 + json_end - 1] == '}',
          "the header is padded with fewer than 8 spaces so the data starts 8-byte aligned");
    free(bytes);
    for (int i = 0; i < N_ROUND; i++) hr_tensor_release(ts[i]);
}

static void test_st_determinism(hr_ctx *ctx) {
    hr_tensor *ts[N_ROUND], *rev[N_ROUND];
    make_round_trip_set(ctx, ts);
    const char *names[N_ROUND] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"}, *rnames[N_ROUND];
    for (int i = 0; i < N_ROUND; i++) rev[i] = ts[N_ROUND - 1 - i], rnames[i] = names[N_ROUND - 1 - i];
    const char *k1[] = {"x", "y"}, *v1[] = {"1", "2"}, *k2[] = {"y", "x"}, *v2[] = {"2", "1"};
    const char *p1 = path_of("order1.safetensors"), *p2 = path_of("order2.safetensors");
    CHECK(hr_safetensors_save(ctx, p1, N_ROUND, names, ts, 2, k1, v1) == 0, "save in order");
    CHECK(hr_safetensors_save(ctx, p2, N_ROUND, rnames, rev, 2, k2, v2) == 0, "save in reverse order");
    size_t n1 = 0, n2 = 1;
    unsigned char *b1 = read_bytes(p1, &n1), *b2 = read_bytes(p2, &n2);
    CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "the same tensors in another order give the same bytes");
    free(b1);
    free(b2);
    for (int i = 0; i < N_ROUND; i++) hr_tensor_release(ts[i]);
}

/* Loading path must fail with every fragment in the message (and the path). */
static void expect_load_error(hr_ctx *ctx, const char *p, const char *what, const char *frag1, const char *frag2) {
    hr_safetensors *st = hr_safetensors_load(ctx, p);
    const char *err = hr_last_error(ctx);
    CHECK(!st && strstr(err, p) && strstr(err, frag1) && (!frag2 || strstr(err, frag2)), "%s: got '%s'", what,
          st ? "(loaded)" : err);
    hr_safetensors_free(st);
}

static void test_st_corrupt(hr_ctx *ctx) {
    const char *p = path_of("bad.safetensors");
    float data[8] = {0};
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 8);
    hr_safetensors *ok = hr_safetensors_load(ctx, p);
    CHECK(ok && ok->n == 1, "the hand-made file loads: %s", hr_last_error(ctx));
    hr_safetensors_free(ok);

    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 5);
    expect_load_error(ctx, p, "data cut short", "truncated", "'a'");
    write_bytes(p, "\x10\0\0\0", 4);
    expect_load_error(ctx, p, "shorter than the length field", "truncated", NULL);
    write_bytes(p, "\x40\0\0\0\0\0\0\0{\"a\":", 13);
    expect_load_error(ctx, p, "header cut short", "truncated", "64");
    write_bytes(p, "\xff\xff\xff\xff\xff\xff\0\0{}", 10);
    expect_load_error(ctx, p, "huge header length", "header length", "limit");
    write_st(p, "{\"a\": {\"dtype\": \"F32\",", NULL, 0);
    expect_load_error(ctx, p, "bad JSON", "not valid JSON", NULL);
    write_st(p, "[1, 2]", NULL, 0);
    expect_load_error(ctx, p, "not an object", "not a JSON object", NULL);
    write_st(p, "{} x", NULL, 0);
    expect_load_error(ctx, p, "trailing garbage", "unexpected bytes", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, 12);
    expect_load_error(ctx, p, "overlapping ranges", "overlap", "'b'");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data, 8);
    expect_load_error(ctx, p, "byte size vs shape", "needs 12 bytes", "span 8");
    write_st(p, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", data, 4);
    expect_load_error(ctx, p, "unknown dtype", "unknown dtype 'F16'", "'a'");
    write_st(p, "{\"a\":3}", NULL, 0);
    expect_load_error(ctx, p, "entry not an object", "entry 'a' is not an object", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", data, 1);
    expect_load_error(ctx, p, "too many dims", "5 dimensions", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", data, 1);
    expect_load_error(ctx, p, "negative dim", "shape entry 1", "non-negative integer");
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", data, 1);
    expect_load_error(ctx, p, "fractional dim", "shape entry 1", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", data, 1);
    expect_load_error(ctx, p, "one offset", "data_offsets must be two", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", data, 4);
    expect_load_error(ctx, p, "end before begin", "end before", NULL);
    write_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", data, 2);
    expect_load_error(ctx, p, "duplicate name", "duplicate tensor name 'a'", NULL);
    /* found by fuzz_safetensors: a tensor named "" loaded, but could never be saved again */
    write_st(p, "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", data, 1);
    expect_load_error(ctx, p, "empty name", "a tensor has an empty name", NULL);
    write_st(p, "{\"__metadata__\":{\"k\":1}}", NULL, 0);
    expect_load_error(ctx, p, "metadata number", "metadata value for key 'k' is not a string", NULL);
    expect_load_error(ctx, path_of("missing.safetensors"), "missing file", "No such file", NULL);

    /* int64 arithmetic: a shape whose byte size overflows is refused, not wrapped */
    write_st(p, "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", data, 8);
    expect_load_error(ctx, p, "overflowing size", "too large", NULL);
}

static void test_st_save_errors(hr_ctx *ctx) {
    hr_tensor *a = filled(ctx, HR_F32, 1, (int64_t[]){3}, 1), *ts[2] = {a, a};
    const char *p = path_of("save_err.safetensors");
    CHECK(hr_safetensors_save(ctx, p, 2, (const char *[]){"w", "w"}, ts, 0, NULL, NULL) == -1 &&
              strstr(hr_last_error(ctx), "duplicate tensor name 'w'"), "duplicate names: %s", hr_last_error(ctx));
    CHECK(hr_safetensors_save(ctx, p, 1, (const char *[]){""}, ts, 0, NULL, NULL) == -1 &&
              strstr(hr_last_error(ctx), "empty name"), "empty name: %s", hr_last_error(ctx));
    CHECK(hr_safetensors_save(ctx, p, 1, (const char *[]){"__metadata__"}, ts, 0, NULL, NULL) == -1 &&
              strstr(hr_last_error(ctx), "reserved"), "reserved name: %s", hr_last_error(ctx));
    CHECK(hr_safetensors_save(ctx, p, 1, (const char *[]){"w"}, ts, 2, (const char *[]){"k", "k"},
                              (const char *[]){"1", "2"}) == -1 &&
              strstr(hr_last_error(ctx), "duplicate metadata key 'k'"),
          "duplicate metadata keys: %s", hr_last_error(ctx));
    CHECK(access(p, F_OK) != 0, "no file after refused saves");
    const char *nodir = path_of("no/such/dir/x.safetensors");
    CHECK(hr_safetensors_save(ctx, nodir, 1, (const char *[]){"w"}, ts, 0, NULL, NULL) == -1 &&
              strstr(hr_last_error(ctx), "cannot write") && strstr(hr_last_error(ctx), nodir) &&
              strstr(hr_last_error(ctx), "No such file"), "a missing directory: %s", hr_last_error(ctx));
    hr_tensor_release(a);
}

/* A failed save never damages the file it would replace, and leaves no temporary file behind. */
static void test_st_atomic(hr_ctx *ctx) {
    const char *p = path_of("keep.safetensors");
    hr_tensor *small = filled(ctx, HR_F32, 1, (int64_t[]){4}, 1);
    hr_tensor *big = filled(ctx, HR_F32, 1, (int64_t[]){1 << 16}, 2); /* 256 KiB */
    CHECK(hr_safetensors_save(ctx, p, 1, (const char *[]){"w"}, &small, 0, NULL, NULL) == 0, "the original is saved");
    size_t n0 = 0, n1 = 1;
    unsigned char *before = read_bytes(p, &n0);

    hr_tensor *dup[2] = {big, big};
    CHECK(hr_safetensors_save(ctx, p, 2, (const char *[]){"w", "w"}, dup, 0, NULL, NULL) == -1, "a refused input");
    unsigned char *after = read_bytes(p, &n1);
    CHECK(after && n1 == n0 && memcmp(before, after, n0) == 0, "a refused input leaves the old file byte-identical");
    free(after);

    /* a real short write: the file-size limit makes write() fail with EFBIG partway (even as root) */
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit low = {.rlim_cur = 64 << 10, .rlim_max = old.rlim_max};
    bool limited = setrlimit(RLIMIT_FSIZE, &low) == 0;
    int rc = hr_safetensors_save(ctx, p, 1, (const char *[]){"w"}, &big, 0, NULL, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    if (limited) {
        CHECK(rc == -1 && strstr(hr_last_error(ctx), "cannot write") && strstr(hr_last_error(ctx), "too large"),
              "a write past the file-size limit fails: %s", rc ? hr_last_error(ctx) : "(saved)");
        after = read_bytes(p, &n1);
        CHECK(after && n1 == n0 && memcmp(before, after, n0) == 0, "a failed write leaves the old file byte-identical");
        free(after);
    }
    CHECK(count_tmp_files() == 0, "no temporary files are left behind");
    free(before);
    hr_tensor_release(small);
    hr_tensor_release(big);
}

/* ---- token files ---- */

static void test_tokens_round_trip(hr_ctx *ctx, uint32_t vocab, int want_width) {
    enum { N = 1000 };
    uint32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (uint32_t)((uint64_t)i * 7919 % vocab);
    ids[N - 1] = vocab - 1;
    const char *p = path_of("round.bin");
    CHECK(hr_tokens_write(ctx, p, ids, N, vocab) == 0, "write vocab %u: %s", vocab, hr_last_error(ctx));
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && sb.st_size == HR_TOKENS_HEADER + (off_t)N * want_width, "vocab %u: 32 + %d*n bytes",
          vocab, want_width);
    hr_tokens *tok = hr_tokens_open(ctx, p);
    CHECK(tok && tok->kind == HR_TOKENS_FILE && tok->n_tokens == N && tok->vocab == vocab && tok->width == want_width,
          "vocab %u: header read back: %s", vocab, tok ? "wrong fields" : hr_last_error(ctx));
    bool same = tok != NULL;
    for (int i = 0; same && i < N; i++) same = hr_tokens_get(tok, i) == ids[i];
    CHECK(same, "vocab %u: every id reads back", vocab);
    hr_tokens_close(tok);
}

static void test_tokens_write_errors(hr_ctx *ctx) {
    const char *p = path_of("refused.bin");
    CHECK(hr_tokens_write(ctx, p, (uint32_t[]){1, 2, 300, 4}, 4, 256) == -1 &&
              strstr(hr_last_error(ctx), "id 300 at position 2") && strstr(hr_last_error(ctx), "256"),
          "an id >= vocab is refused with its position: %s", hr_last_error(ctx));
    CHECK(access(p, F_OK) != 0 && count_tmp_files() == 0, "nothing is left of a refused write");
    CHECK(hr_tokens_write(ctx, p, (uint32_t[]){0}, 1, 0) == -1 && strstr(hr_last_error(ctx), "vocab"), "vocab 0");
    CHECK(hr_tokens_write(ctx, p, (uint32_t[]){0}, 1, HR_TOKENS_MAX_VOCAB + 1) == -1 &&
              strstr(hr_last_error(ctx), "vocab size must be in 1..1073741824"),
          "a vocab no reader would open is not written: %s", hr_last_error(ctx));
    CHECK(access(p, F_OK) != 0 && count_tmp_files() == 0, "nothing is left of a refused vocab");
}

static void test_tokens_text(hr_ctx *ctx) {
    const char *p = path_of("text.txt");
    write_bytes(p, "hello\xff", 6);
    hr_tokens *tok = hr_tokens_open(ctx, p);
    CHECK(tok && tok->kind == HR_TOKENS_TEXT && tok->vocab == 256 && tok->n_tokens == 6 &&
              hr_tokens_get(tok, 1) == 'e' && hr_tokens_get(tok, 5) == 255,
          "a text file is its bytes: %s", tok ? "" : hr_last_error(ctx));
    hr_tokens_close(tok);
    write_bytes(p, "HRTOKEN", 7); /* a prefix of the magic is still text */
    tok = hr_tokens_open(ctx, p);
    CHECK(tok && tok->kind == HR_TOKENS_TEXT && tok->n_tokens == 7, "a 7-byte text file");
    hr_tokens_close(tok);
}

static void expect_open_error(hr_ctx *ctx, const char *p, const char *what, const char *frag) {
    hr_tokens *tok = hr_tokens_open(ctx, p);
    CHECK(!tok && strstr(hr_last_error(ctx), p) && strstr(hr_last_error(ctx), frag), "%s: got '%s'", what,
          tok ? "(opened)" : hr_last_error(ctx));
    hr_tokens_close(tok);
}

/* A token file header with the given fields, then `extra` bytes of ids. */
static void write_token_file(const char *p, uint32_t version, uint32_t width, uint32_t vocab, uint64_t n,
                             const void *ids, size_t bytes) {
    uint8_t buf[256] = {0};
    memcpy(buf, HR_TOKENS_MAGIC, 8);
    hr_put_le32(buf + 8, version);
    hr_put_le32(buf + 12, width);
    hr_put_le32(buf + 16, vocab);
    hr_put_le64(buf + 24, n);
    memcpy(buf + 32, ids, bytes);
    write_bytes(p, buf, 32 + bytes);
}

static void test_tokens_bad_files(hr_ctx *ctx) {
    const char *p = path_of("bad.bin");
    uint16_t ids[12] = {0};
    write_token_file(p, 1, 2, 256, 10, ids, 16);
    expect_open_error(ctx, p, "fewer ids than the header says", "truncated");
    write_token_file(p, 1, 2, 256, 10, ids, 21);
    expect_open_error(ctx, p, "an extra byte", "trailing bytes");
    write_token_file(p, 2, 2, 256, 10, ids, 20);
    expect_open_error(ctx, p, "version 2", "version 2");
    write_token_file(p, 1, 3, 256, 10, ids, 30);
    expect_open_error(ctx, p, "width 3", "width");
    write_token_file(p, 1, 2, 0, 10, ids, 20);
    expect_open_error(ctx, p, "vocab 0", "vocab size");
    /* found by fuzzing (tests/fuzz): a header may not declare a vocab no model can have */
    write_token_file(p, 1, 4, 4294967295u, 2, ids, 8);
    expect_open_error(ctx, p, "vocab 2^32 - 1", "vocab size 4294967295 in the header is over the limit of 1073741824");
    write_token_file(p, 1, 4, HR_TOKENS_MAX_VOCAB + 1, 2, ids, 8);
    expect_open_error(ctx, p, "vocab 2^30 + 1", "over the limit");
    write_token_file(p, 1, 4, HR_TOKENS_MAX_VOCAB, 2, ids, 8);
    hr_tokens *largest = hr_tokens_open(ctx, p);
    CHECK(largest && largest->vocab == HR_TOKENS_MAX_VOCAB, "vocab 2^30 opens: %s", largest ? "" : hr_last_error(ctx));
    hr_tokens_close(largest);
    write_bytes(p, "HRTOKENS\1\0\0\0", 12);
    expect_open_error(ctx, p, "header cut short", "truncated");
    write_bytes(p, "", 0);
    expect_open_error(ctx, p, "empty file", "empty data file");
    expect_open_error(ctx, path_of("missing.bin"), "missing file", "No such file");
}

static void test_tokens_fill(hr_ctx *ctx) {
    uint32_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = (uint32_t)i;
    const char *p = path_of("fill.bin");
    hr_tokens_write(ctx, p, ids, 100, 256);
    hr_tokens *tok = hr_tokens_open(ctx, p);
    if (!tok) {
        CHECK(false, "open: %s", hr_last_error(ctx));
        return;
    }
    for (int k = 0; k < 2; k++) {
        hr_dtype dt = k ? HR_I32 : HR_I64;
        hr_tensor *x = ids_tensor(ctx, dt, 3, 4), *y = ids_tensor(ctx, dt, 3, 4);
        CHECK(hr_tokens_fill(ctx, tok, (int64_t[]){0, 50, 95}, 3, 4, x, y) == 0, "fill %s: %s", hr_dtype_name(dt),
              hr_last_error(ctx));
        bool right = true;
        int64_t starts[3] = {0, 50, 95};
        for (int b = 0; b < 3; b++)
            for (int t = 0; t < 4; t++)
                right = right && hr_tensor_get_flat(x, b * 4 + t) == (double)(starts[b] + t) &&
                        hr_tensor_get_flat(y, b * 4 + t) == (double)(starts[b] + t + 1);
        CHECK(right, "fill %s: x[b, t] = tok[s + t], y[b, t] = tok[s + t + 1], up to the last token",
              hr_dtype_name(dt));
        hr_tensor_release(x);
        hr_tensor_release(y);
    }
    hr_tensor *x = ids_tensor(ctx, HR_I64, 1, 4), *y = ids_tensor(ctx, HR_I64, 1, 4);
    hr_tensor *f = ids_tensor(ctx, HR_F32, 1, 4), *wrong = ids_tensor(ctx, HR_I64, 1, 5);
    CHECK(hr_tokens_fill(ctx, tok, (int64_t[]){96}, 1, 4, x, y) == -1 && strstr(hr_last_error(ctx), "start 96") &&
              strstr(hr_last_error(ctx), "101") && strstr(hr_last_error(ctx), "100 tokens"),
          "a start past the end: %s", hr_last_error(ctx));
    CHECK(hr_tokens_fill(ctx, tok, (int64_t[]){-1}, 1, 4, x, y) == -1 && strstr(hr_last_error(ctx), "negative"),
          "a negative start: %s", hr_last_error(ctx));
    CHECK(hr_tokens_fill(ctx, tok, (int64_t[]){0}, 1, 4, f, y) == -1 && strstr(hr_last_error(ctx), "i64 or i32"),
          "a float x: %s", hr_last_error(ctx));
    CHECK(hr_tokens_fill(ctx, tok, (int64_t[]){0}, 1, 4, x, wrong) == -1 && strstr(hr_last_error(ctx), "(1, 5)"),
          "a y of the wrong shape: %s", hr_last_error(ctx));
    hr_tensor_release(f);
    hr_tensor_release(wrong);
    hr_tokens_close(tok);

    /* ids are checked against the vocab as they are read, not at open */
    const char *q = path_of("badid.bin");
    write_token_file(q, 1, 2, 10, 6, (uint16_t[]){1, 2, 3, 12, 4, 5}, 12);
    tok = hr_tokens_open(ctx, q);
    CHECK(tok != NULL, "a file with an id >= vocab opens: %s", hr_last_error(ctx));
    hr_tensor *x2 = ids_tensor(ctx, HR_I64, 1, 2), *y2 = ids_tensor(ctx, HR_I64, 1, 2);
    CHECK(tok && hr_tokens_fill(ctx, tok, (int64_t[]){0}, 1, 2, x2, y2) == 0, "a batch before the bad id is fine");
    CHECK(tok && hr_tokens_fill(ctx, tok, (int64_t[]){2}, 1, 2, x2, y2) == -1 &&
              strstr(hr_last_error(ctx), "token id 12 at position 3") && strstr(hr_last_error(ctx), "vocab size 10"),
          "a batch over it names the id, its position and the vocab: %s", hr_last_error(ctx));
    hr_tokens_close(tok);
    hr_tensor_release(x2);
    hr_tensor_release(y2);
    hr_tensor_release(x);
    hr_tensor_release(y);
}

/* fill records its writes: a backward through a graph that read the old batch is refused. */
static void test_tokens_fill_versions(hr_ctx *ctx) {
    uint32_t ids[16];
    for (int i = 0; i < 16; i++) ids[i] = (uint32_t)(i % 5);
    const char *p = path_of("versions.bin");
    hr_tokens_write(ctx, p, ids, 16, 5);
    hr_tokens *tok = hr_tokens_open(ctx, p);
    hr_tensor *x = ids_tensor(ctx, HR_I64, 2, 3), *y = ids_tensor(ctx, HR_I64, 2, 3);
    hr_tensor *w = filled(ctx, HR_F64, 2, (int64_t[]){5, 4}, 0.5);
    w->requires_grad = true;
    uint64_t v0 = x->storage->version;
    CHECK(tok && hr_tokens_fill(ctx, tok, (int64_t[]){0, 4}, 2, 3, x, y) == 0 && x->storage->version > v0,
          "fill bumps the version");
    hr_tensor *e = hr_embedding(ctx, x, w);
    hr_tensor *flat = e ? hr_reshape(ctx, e, 1, (int64_t[]){-1}) : NULL;
    hr_tensor *loss = flat ? hr_reduce(ctx, HR_OP_SUM, flat, 0, 0) : NULL;
    CHECK(loss && tok && hr_tokens_fill(ctx, tok, (int64_t[]){1, 5}, 2, 3, x, y) == 0, "a new batch is written");
    CHECK(loss && hr_backward(ctx, loss, false) == -1 && strstr(hr_last_error(ctx), "written in place"),
          "backward through the old batch is refused: %s", hr_last_error(ctx));
    hr_tensor_release(loss);
    hr_tensor_release(flat);
    hr_tensor_release(e);
    hr_tensor_release(w);
    hr_tensor_release(x);
    hr_tensor_release(y);
    hr_tokens_close(tok);
}

static void remove_dir(void) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') unlink(path_of(e->d_name));
    if (d) closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/hr_test_io.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    hr_ctx *ctx = hr_ctx_create();
    hr_cpu_register(ctx);
    test_st_round_trip(ctx);
    test_st_determinism(ctx);
    test_st_corrupt(ctx);
    test_st_save_errors(ctx);
    test_st_atomic(ctx);
    test_tokens_round_trip(ctx, 256, 2);
    test_tokens_round_trip(ctx, 70000, 4);
    test_tokens_write_errors(ctx);
    test_tokens_text(ctx);
    test_tokens_bad_files(ctx);
    test_tokens_fill(ctx);
    test_tokens_fill_versions(ctx);
    hr_ctx_destroy(ctx);
    remove_dir();
    return test_summary("core.io");
}
