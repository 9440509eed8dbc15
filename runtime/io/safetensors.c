/* safetensors: the writer builds the JSON header with cJSON and streams the tensors into an atomic
 * file; the reader maps the file, validates every header entry before allocating anything, then
 * copies each tensor's bytes into a fresh tensor. */
#include "io/safetensors.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

#define META_KEY "__metadata__"

static const char *const st_dtype_names[HR_DTYPE_COUNT] = {
    [HR_F32] = "F32", [HR_F64] = "F64", [HR_BF16] = "BF16", [HR_I32] = "I32", [HR_I64] = "I64", [HR_U8] = "U8"};

const char *hr_safetensors_dtype_name(hr_dtype dt) {
    return (unsigned)dt < HR_DTYPE_COUNT ? st_dtype_names[dt] : "?";
}

int hr_safetensors_dtype_parse(const char *name, hr_dtype *out) {
    for (int i = 0; i < HR_DTYPE_COUNT; i++)
        if (strcmp(name, st_dtype_names[i]) == 0) {
            *out = (hr_dtype)i;
            return 0;
        }
    return -1;
}

/* A name and where it came from: sorting these sorts tensors (or metadata pairs) by name. */
typedef struct {
    const char *name;
    int index;
} named;

static int cmp_named(const void *a, const void *b) {
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

/* The n names sorted, or NULL with an error naming a repeated one. */
static named *sort_unique(hr_ctx *ctx, int n, const char *const *names, const char *what) {
    named *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s) {
        hr_error(ctx, "save_safetensors: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) s[i] = (named){names[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_named);
    for (int i = 1; i < n; i++)
        if (strcmp(s[i - 1].name, s[i].name) == 0) {
            hr_error(ctx, "save_safetensors: duplicate %s '%s'", what, s[i].name);
            free(s);
            return NULL;
        }
    return s;
}

/* ---- writing ---- */

static int check_inputs(hr_ctx *ctx, int n, const char *const *names, hr_tensor *const *tensors, int n_meta,
                        const char *const *keys, const char *const *values) {
    if (n < 0 || n_meta < 0) return hr_error(ctx, "save_safetensors: negative count");
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0]) return hr_error(ctx, "save_safetensors: tensor %d has an empty name", i + 1);
        if (strcmp(names[i], META_KEY) == 0)
            return hr_error(ctx, "save_safetensors: '" META_KEY "' is reserved for the metadata, not a tensor name");
        if (!tensors[i]) return hr_error(ctx, "save_safetensors: tensor '%s' is missing", names[i]);
        if (tensors[i]->storage->device.kind != HR_DEVICE_CPU)
            return hr_error(ctx, "save_safetensors: tensor '%s' is not on the CPU", names[i]);
    }
    for (int i = 0; i < n_meta; i++)
        if (!keys[i] || !values[i]) return hr_error(ctx, "save_safetensors: metadata pair %d is missing", i + 1);
    return 0;
}

static int64_t tensor_nbytes(const hr_tensor *t) { return hr_tensor_numel(t) * (int64_t)hr_dtype_size(t->dtype); }

static bool add_int(cJSON *array, int64_t v) {
    cJSON *x = cJSON_CreateNumber((double)v); /* exact: sizes stay far below 2^53 */
    if (x && cJSON_AddItemToArray(array, x)) return true;
    cJSON_Delete(x);
    return false;
}

/* "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} */
static bool add_entry(cJSON *root, const char *name, const hr_tensor *t, int64_t begin, int64_t end) {
    cJSON *e = cJSON_AddObjectToObject(root, name);
    if (!e || !cJSON_AddStringToObject(e, "dtype", hr_safetensors_dtype_name(t->dtype))) return false;
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    cJSON *offsets = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
    if (!offsets) return false;
    for (int d = 0; d < t->ndim; d++)
        if (!add_int(shape, t->shape[d])) return false;
    return add_int(offsets, begin) && add_int(offsets, end);
}

/* The JSON header padded with spaces to a multiple of 8 bytes (so the data starts 8-byte aligned),
 * or NULL with an error. Tensors lie back to back in name order, as the format asks (no holes). */
static char *build_header(hr_ctx *ctx, int n, const named *order, hr_tensor *const *tensors, int n_meta,
                          const named *meta, const char *const *values, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, META_KEY);
        ok = m != NULL;
        for (int i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].name, values[meta[i].index]) != NULL;
    }
    int64_t offset = 0;
    for (int i = 0; ok && i < n; i++) {
        const hr_tensor *t = tensors[order[i].index];
        ok = add_entry(root, order[i].name, t, offset, offset + tensor_nbytes(t));
        offset += tensor_nbytes(t);
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) {
        hr_error(ctx, "save_safetensors: out of memory building the header");
        return NULL;
    }
    size_t used = strlen(json), padded = (used + 7) / 8 * 8;
    char *header = padded <= HR_SAFETENSORS_MAX_HEADER ? malloc(padded) : NULL;
    if (header) {
        memcpy(header, json, used);
        memset(header + used, ' ', padded - used);
        *len = padded;
    } else if (padded > HR_SAFETENSORS_MAX_HEADER) {
        hr_error(ctx, "save_safetensors: the header would take %zu bytes, over the %d-byte limit", padded,
                 HR_SAFETENSORS_MAX_HEADER);
    } else {
        hr_error(ctx, "save_safetensors: out of memory building the header");
    }
    cJSON_free(json);
    return header;
}

/* A tensor's elements in row-major order: directly when contiguous, else gathered a chunk at a time. */
static int write_tensor(hr_ctx *ctx, hr_atomic_file *af, const hr_tensor *t) {
    if (hr_tensor_is_contiguous(t)) return hr_atomic_write(ctx, af, hr_tensor_data(t), (size_t)tensor_nbytes(t));
    char chunk[1 << 16];
    int64_t es = (int64_t)hr_dtype_size(t->dtype), per = (int64_t)sizeof chunk / es, numel = hr_tensor_numel(t);
    const char *base = hr_tensor_data(t);
    for (int64_t i = 0; i < numel; i += per) {
        int64_t m = numel - i < per ? numel - i : per;
        for (int64_t j = 0; j < m; j++)
            memcpy(chunk + j * es, base + hr_tensor_flat_to_offset(t, i + j) * es, (size_t)es);
        if (hr_atomic_write(ctx, af, chunk, (size_t)(m * es))) return -1;
    }
    return 0;
}

static int write_file(hr_ctx *ctx, const char *path, const char *header, size_t hlen, int n, const named *order,
                      hr_tensor *const *tensors) {
    hr_atomic_file af;
    uint8_t len[8];
    hr_put_le64(len, hlen);
    if (hr_atomic_open(ctx, &af, path) || hr_atomic_write(ctx, &af, len, 8) || hr_atomic_write(ctx, &af, header, hlen))
        return -1;
    for (int i = 0; i < n; i++)
        if (write_tensor(ctx, &af, tensors[order[i].index])) return -1;
    return hr_atomic_commit(ctx, &af);
}

int hr_safetensors_save(hr_ctx *ctx, const char *path, int n, const char *const *names, hr_tensor *const *tensors,
                        int n_meta, const char *const *meta_keys, const char *const *meta_values) {
    if (check_inputs(ctx, n, names, tensors, n_meta, meta_keys, meta_values)) return -1;
    named *order = sort_unique(ctx, n, names, "tensor name");
    named *meta = order ? sort_unique(ctx, n_meta, meta_keys, "metadata key") : NULL;
    size_t hlen = 0;
    char *header = meta ? build_header(ctx, n, order, tensors, n_meta, meta, meta_values, &hlen) : NULL;
    int rc = header ? write_file(ctx, path, header, hlen, n, order, tensors) : -1;
    free(header);
    free(meta);
    free(order);
    return rc;
}

/* ---- reading ---- */

/* One tensor's header entry, validated. */
typedef struct {
    const char *name; /* points into the parsed JSON */
    hr_dtype dtype;
    int ndim;
    int64_t shape[HR_MAX_DIMS];
    int64_t begin, end; /* byte offsets into the data */
} entry;

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int cmp_entry_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : (x->end > y->end) - (x->end < y->end);
}

/* A JSON number that is a non-negative integer no larger than 2^53 (where doubles stop being exact). */
static bool json_size(const cJSON *x, int64_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    double v = x->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || (double)(int64_t)v != v) return false;
    *out = (int64_t)v;
    return true;
}

/* numel * itemsize, false on int64 overflow. */
static bool entry_nbytes(const entry *e, int64_t *out) {
    int64_t n = (int64_t)hr_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++)
        if (__builtin_mul_overflow(n, e->shape[d], &n)) return false;
    *out = n;
    return true;
}

static int parse_entry(hr_ctx *ctx, const char *path, const cJSON *j, int64_t data_len, entry *e) {
    const char *name = j->string;
    if (!cJSON_IsObject(j)) return hr_error(ctx, "%s: entry '%s' is not an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    e->name = name;
    /* what save refuses, load refuses: a tensor named "" could be read but never written back */
    if (!name[0]) return hr_error(ctx, "%s: a tensor has an empty name", path);
    if (!cJSON_IsString(dtype)) return hr_error(ctx, "%s: tensor '%s': dtype is missing or not a string", path, name);
    if (hr_safetensors_dtype_parse(dtype->valuestring, &e->dtype))
        return hr_error(ctx, "%s: tensor '%s': unknown dtype '%s' (supported: F32, F64, BF16, I32, I64, U8)", path,
                        name, dtype->valuestring);
    if (!cJSON_IsArray(shape)) return hr_error(ctx, "%s: tensor '%s': shape is missing or not an array", path, name);
    e->ndim = cJSON_GetArraySize(shape);
    if (e->ndim > HR_MAX_DIMS)
        return hr_error(ctx, "%s: tensor '%s': shape has %d dimensions, at most %d are supported", path, name, e->ndim,
                        HR_MAX_DIMS);
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++)
        if (!json_size(s, &e->shape[d]))
            return hr_error(ctx, "%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, d + 1);
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || !json_size(offsets->child, &e->begin) ||
        !json_size(offsets->child->next, &e->end))
        return hr_error(ctx, "%s: tensor '%s': data_offsets must be two non-negative integers", path, name);
    if (e->end < e->begin)
        return hr_error(ctx, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path, name,
                        (long long)e->begin, (long long)e->end);
    int64_t need;
    char shp[96];
    if (!entry_nbytes(e, &need))
        return hr_error(ctx, "%s: tensor '%s': shape %s is too large", path, name,
                        hr_shape_fmt(e->ndim, e->shape, shp, 96));
    if (need != e->end - e->begin)
        return hr_error(ctx, "%s: tensor '%s': shape %s of %s needs %lld bytes but data_offsets span %lld bytes", path,
                        name, hr_shape_fmt(e->ndim, e->shape, shp, 96), dtype->valuestring, (long long)need,
                        (long long)(e->end - e->begin));
    if (e->end > data_len)
        return hr_error(ctx, "%s: truncated: tensor '%s' ends at data byte %lld but the file holds %lld bytes of data",
                        path, name, (long long)e->end, (long long)data_len);
    return 0;
}

/* "__metadata__": {"key": "value", ...} into st, sorted by key. */
static int read_metadata(hr_ctx *ctx, const char *path, const cJSON *m, hr_safetensors *st) {
    if (!cJSON_IsObject(m)) return hr_error(ctx, "%s: " META_KEY " is not an object", path);
    int n = cJSON_GetArraySize(m), rc = 0, i = 0;
    size_t cap = (size_t)(n > 0 ? n : 1);
    named *order = malloc(sizeof *order * cap);
    const char **values = malloc(sizeof *values * cap);
    st->meta_keys = calloc(cap, sizeof(char *));
    st->meta_values = calloc(cap, sizeof(char *));
    if (!order || !values || !st->meta_keys || !st->meta_values) rc = hr_error(ctx, "out of memory reading %s", path);
    for (const cJSON *x = m->child; !rc && x; x = x->next, i++) {
        if (!cJSON_IsString(x)) rc = hr_error(ctx, "%s: metadata value for key '%s' is not a string", path, x->string);
        order[i] = (named){x->string, i};
        values[i] = x->valuestring;
    }
    if (!rc) qsort(order, (size_t)n, sizeof *order, cmp_named);
    for (i = 1; !rc && i < n; i++)
        if (strcmp(order[i - 1].name, order[i].name) == 0)
            rc = hr_error(ctx, "%s: duplicate metadata key '%s'", path, order[i].name);
    for (i = 0; !rc && i < n; i++) {
        st->meta_keys[i] = strdup(order[i].name);
        st->meta_values[i] = strdup(values[order[i].index]);
        st->n_meta = i + 1;
        if (!st->meta_keys[i] || !st->meta_values[i]) rc = hr_error(ctx, "out of memory reading %s", path);
    }
    free(values);
    free(order);
    return rc;
}

/* Refuses repeated names (entries sorted by name) and overlapping byte ranges (sorted by begin).
 * Empty tensors occupy no bytes and overlap nothing. */
static int check_layout(hr_ctx *ctx, const char *path, entry *es, int n) {
    qsort(es, (size_t)n, sizeof *es, cmp_entry_name);
    for (int i = 1; i < n; i++)
        if (strcmp(es[i - 1].name, es[i].name) == 0)
            return hr_error(ctx, "%s: duplicate tensor name '%s'", path, es[i].name);
    entry *by_begin = malloc(sizeof *es * (size_t)(n > 0 ? n : 1));
    if (!by_begin) return hr_error(ctx, "out of memory reading a safetensors header");
    memcpy(by_begin, es, sizeof *es * (size_t)n);
    qsort(by_begin, (size_t)n, sizeof *es, cmp_entry_begin);
    const entry *last = NULL; /* the non-empty range reaching furthest so far */
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const entry *e = &by_begin[i];
        if (e->begin == e->end) continue;
        if (last && e->begin < last->end)
            rc = hr_error(ctx, "%s: tensors '%s' [%lld, %lld) and '%s' [%lld, %lld) overlap", path, last->name,
                          (long long)last->begin, (long long)last->end, e->name, (long long)e->begin,
                          (long long)e->end);
        if (!last || e->end > last->end) last = e;
    }
    free(by_begin);
    return rc;
}

/* Allocates each tensor and copies its bytes: only once the whole header has been checked. */
static int read_tensors(hr_ctx *ctx, const char *path, const entry *es, int n, const uint8_t *data,
                        hr_safetensors *st) {
    st->names = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    st->tensors = calloc((size_t)(n > 0 ? n : 1), sizeof(hr_tensor *));
    if (!st->names || !st->tensors) return hr_error(ctx, "out of memory reading %s", path);
    for (int i = 0; i < n; i++) {
        st->n = i + 1; /* so that hr_safetensors_free sees what was filled so far */
        st->names[i] = strdup(es[i].name);
        if (!st->names[i]) return hr_error(ctx, "out of memory reading %s", path);
        st->tensors[i] = hr_tensor_empty(ctx, es[i].dtype, es[i].ndim, es[i].shape);
        if (!st->tensors[i]) {
            char why[HR_ERR_SIZE];
            snprintf(why, sizeof why, "%s", hr_last_error(ctx));
            return hr_error(ctx, "%s: tensor '%s': %s", path, es[i].name, why);
        }
        memcpy(hr_tensor_data(st->tensors[i]), data + es[i].begin, (size_t)(es[i].end - es[i].begin));
    }
    return 0;
}

/* Everything after the header length: the JSON, its entries, then the tensors. */
static int read_header(hr_ctx *ctx, const char *path, const cJSON *root, const uint8_t *data, int64_t data_len,
                       hr_safetensors *st) {
    if (!cJSON_IsObject(root)) return hr_error(ctx, "%s: the header is not a JSON object", path);
    int count = cJSON_GetArraySize(root), n = 0;
    entry *es = malloc(sizeof *es * (size_t)(count > 0 ? count : 1));
    if (!es) return hr_error(ctx, "out of memory reading a safetensors header");
    bool seen_meta = false;
    int rc = 0;
    for (const cJSON *j = root->child; j && !rc; j = j->next) {
        if (strcmp(j->string, META_KEY) == 0) {
            rc = seen_meta ? hr_error(ctx, "%s: duplicate key '" META_KEY "'", path) : read_metadata(ctx, path, j, st);
            seen_meta = true;
        } else {
            rc = parse_entry(ctx, path, j, data_len, &es[n++]);
        }
    }
    if (!rc) rc = check_layout(ctx, path, es, n);
    if (!rc) rc = read_tensors(ctx, path, es, n, data, st);
    free(es);
    return rc;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The offset of the first NUL in the header, as a byte or as the escape \u0000, or -1. The JSON
 * parser keeps strings as C strings, so a name, dtype or metadata key with a NUL in it would be cut
 * there without a word ("a\u0000b" read as "a"). */
static long long first_nul(const char *json, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '\0') return (long long)i;
        if (json[i] != '\\' || i + 1 >= len) continue;
        if (json[i + 1] == 'u' && i + 6 <= len && memcmp(json + i + 2, "0000", 4) == 0) return (long long)i;
        i++; /* the escaped character: "\\u0000" is a backslash, then text */
    }
    return -1;
}

static int read_file(hr_ctx *ctx, const char *path, const uint8_t *p, size_t size, hr_safetensors *st) {
    if (size < 8)
        return hr_error(ctx, "%s: truncated: %zu bytes, too short for the 8-byte header length of a safetensors file",
                        path, size);
    uint64_t hlen = hr_get_le64(p);
    if (hlen > HR_SAFETENSORS_MAX_HEADER)
        return hr_error(ctx, "%s: header length %llu is over the %d-byte limit (not a safetensors file?)", path,
                        (unsigned long long)hlen, HR_SAFETENSORS_MAX_HEADER);
    if (hlen > size - 8)
        return hr_error(ctx, "%s: truncated: the header length is %llu bytes but only %zu bytes follow it", path,
                        (unsigned long long)hlen, size - 8);
    const char *json = (const char *)p + 8, *end = NULL;
    long long nul = first_nul(json, (size_t)hlen);
    if (nul >= 0)
        return hr_error(ctx, "%s: the header holds a NUL character at byte %lld: names, dtypes and metadata cannot "
                        "contain one", path, nul);
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root)
        return hr_error(ctx, "%s: the header is not valid JSON (error near byte %lld of %llu)", path,
                        end ? (long long)(end - json) : 0LL, (unsigned long long)hlen);
    while (end < json + hlen && is_space(*end)) end++;
    int rc = end < json + hlen
                 ? hr_error(ctx, "%s: unexpected bytes after the JSON header (at byte %lld of %llu)", path,
                            (long long)(end - json), (unsigned long long)hlen)
                 : read_header(ctx, path, root, p + 8 + hlen, (int64_t)(size - 8 - hlen), st);
    cJSON_Delete(root);
    return rc;
}

hr_safetensors *hr_safetensors_load(hr_ctx *ctx, const char *path) {
    hr_mapped_file m;
    if (hr_map_file(ctx, path, &m)) return NULL;
    hr_safetensors *st = calloc(1, sizeof *st);
    int rc = st ? read_file(ctx, path, m.data, m.size, st) : hr_error(ctx, "out of memory reading %s", path);
    hr_unmap_file(&m);
    if (rc) {
        hr_safetensors_free(st);
        return NULL;
    }
    return st;
}

void hr_safetensors_free(hr_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        free(st->names[i]);
        hr_tensor_release(st->tensors[i]);
    }
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}
