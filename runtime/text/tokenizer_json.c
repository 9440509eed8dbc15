#include "text/tokenizer_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"

__attribute__((format(printf, 2, 3))) static int fail_msg(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, HR_BPE_ERR, fmt, ap);
    va_end(ap);
    return -1;
}
#define FAIL(...) fail_msg(err, __VA_ARGS__)

static const char *type_of(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : "(no type)";
}

/* An optional boolean field: the default when absent or null. */
static int get_bool(const cJSON *obj, const char *name, bool dflt, bool *out, const char *where, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v)) return FAIL("%s.%s: expected true or false", where, name);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A non-negative integer id below 2^31. */
static int get_id(const cJSON *v, uint32_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 2147483648.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    *out = (uint32_t)v->valuedouble;
    return 0;
}

static int check_pipeline(const cJSON *root, bool *add_prefix_space, bool *trim_offsets, bool *use_regex,
                          char *err) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) return FAIL("unsupported: normalizer %s (hybridrt reads byte-level BPE without one)", type_of(norm));
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pre || cJSON_IsNull(pre)) return FAIL("unsupported: no pre_tokenizer (hybridrt reads byte-level BPE: pre_tokenizer ByteLevel)");
    if (!cJSON_IsObject(pre) || strcmp(type_of(pre), "ByteLevel") != 0)
        return FAIL("unsupported: pre_tokenizer %s (hybridrt reads byte-level BPE: pre_tokenizer ByteLevel)", type_of(pre));
    if (get_bool(pre, "add_prefix_space", true, add_prefix_space, "pre_tokenizer", err) ||
        get_bool(pre, "trim_offsets", true, trim_offsets, "pre_tokenizer", err) ||
        get_bool(pre, "use_regex", true, use_regex, "pre_tokenizer", err))
        return -1;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (dec && !cJSON_IsNull(dec) && strcmp(type_of(dec), "ByteLevel") != 0)
        return FAIL("unsupported: decoder %s (hybridrt decodes byte-level BPE: decoder ByteLevel)", type_of(dec));
    return 0; /* post_processor: encode never adds template tokens, so any is accepted */
}

static int check_model_options(const cJSON *model, char *err) {
    const char *type = type_of(model);
    if (cJSON_GetObjectItemCaseSensitive(model, "type") && strcmp(type, "BPE") != 0)
        return FAIL("unsupported: %s model (hybridrt reads byte-level BPE)", type);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return FAIL("unsupported: model.dropout %g (BPE dropout; set it to null)", cJSON_IsNumber(v) ? v->valuedouble : -1.0);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return FAIL("unsupported: model.%s (not a byte-level BPE)", affixes[i]);
    }
    bool byte_fallback = false;
    if (get_bool(model, "byte_fallback", false, &byte_fallback, "model", err)) return -1;
    if (byte_fallback) return FAIL("unsupported: model.byte_fallback true (SentencePiece-style byte tokens)");
    return 0;
}

/* One merge, "a b" or ["a", "b"], as two ids. */
static int merge_ids(const hr_bpe *b, const cJSON *m, size_t i, uint32_t *left, uint32_t *right, char *err) {
    const char *part[2];
    size_t len[2];
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' '))
            return FAIL("model.merges[%zu]: \"%.60s\" is not two tokens separated by one space", i, s);
        part[0] = s, len[0] = (size_t)(space - s);
        part[1] = space + 1, len[1] = strlen(space + 1);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
        for (int k = 0; k < 2; k++) {
            part[k] = cJSON_GetArrayItem(m, k)->valuestring;
            len[k] = strlen(part[k]);
        }
    } else {
        return FAIL("model.merges[%zu]: expected \"left right\" or [\"left\", \"right\"]", i);
    }
    uint32_t *ids[2];
    for (int k = 0; k < 2; k++)
        if (!(ids[k] = hr_strmap_get(&b->vocab, part[k], len[k])))
            return FAIL("model.merges[%zu]: unknown token '%.*s' (not in model.vocab)", i, (int)(len[k] > 60 ? 60 : len[k]), part[k]);
    *left = *ids[0];
    *right = *ids[1];
    return 0;
}

static hr_bpe *from_tree(const cJSON *root, char *err) {
    if (!cJSON_IsObject(root)) return FAIL("not a tokenizer.json: the top level is not an object"), NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) return FAIL("model: missing"), NULL;
    if (!cJSON_IsObject(model)) return FAIL("model: not an object"), NULL;
    if (check_model_options(model, err)) return NULL;
    bool prefix = false, trim = true, regex = true;
    if (check_pipeline(root, &prefix, &trim, &regex, err)) return NULL;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!vocab) return FAIL("model.vocab: missing"), NULL;
    if (!cJSON_IsObject(vocab)) return FAIL("model.vocab: not an object of token -> id"), NULL;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!merges) return FAIL("model.merges: missing"), NULL;
    if (!cJSON_IsArray(merges)) return FAIL("model.merges: not an array"), NULL;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return FAIL("added_tokens: not an array"), NULL;

    /* ids run to the largest one in the vocab or the added tokens */
    uint32_t n_ids = 0, id;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (get_id(it, &id)) return FAIL("model.vocab: token '%.60s' has no valid id (an integer >= 0)", it->string), NULL;
        if (id + 1 > n_ids) n_ids = id + 1;
    }
    size_t i = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsObject(it)) return FAIL("added_tokens[%zu]: not an object", i), NULL;
        if (get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id)) return FAIL("added_tokens[%zu].id: missing or not an integer >= 0", i), NULL;
        if (!cJSON_IsString(content) || !content->valuestring[0]) return FAIL("added_tokens[%zu].content: missing or empty", i), NULL;
        if (id + 1 > n_ids) n_ids = id + 1;
        i++;
    }
    if (n_ids == 0) return FAIL("model.vocab: empty"), NULL;
    /* Every id up to the largest costs memory here and a row of the model's embedding: a short file
     * naming an id of 2^31 - 1 would claim gigabytes. Unused ids are allowed, but no more of them than
     * HR_BPE_MAX_UNUSED_IDS (the entries bound the rest, so the memory follows the file's size). */
    size_t entries = (size_t)cJSON_GetArraySize(vocab) + i;
    if (n_ids > entries + HR_BPE_MAX_UNUSED_IDS) {
        const char *what = "model.vocab", *name = "";
        cJSON_ArrayForEach(it, vocab) {
            if (get_id(it, &id) == 0 && id + 1 == n_ids) name = it->string;
        }
        if (!name[0]) {
            what = "added_tokens";
            cJSON_ArrayForEach(it, added) {
                const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
                if (get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id) == 0 && id + 1 == n_ids) name = content->valuestring;
            }
        }
        return FAIL("%s: token '%.60s' has id %u but the file holds %zu tokens: ids must run from 0 with at most %d "
                    "unused", what, name, n_ids - 1, entries, HR_BPE_MAX_UNUSED_IDS), NULL;
    }

    hr_bpe *b = hr_bpe_alloc(n_ids);
    if (!b) return FAIL("out of memory"), NULL;
    char why[HR_BPE_ERR];
    cJSON_ArrayForEach(it, vocab) {
        get_id(it, &id);
        if (hr_bpe_set_token(b, id, it->string, strlen(it->string), why)) {
            FAIL("model.vocab: %.400s", why);
            goto fail;
        }
    }
    i = 0;
    cJSON_ArrayForEach(it, merges) {
        uint32_t left = 0, right = 0;
        if (merge_ids(b, it, i, &left, &right, err)) goto fail;
        if (hr_bpe_add_merge(b, left, right, why)) {
            FAIL("model.merges[%zu]: %.400s", i, why);
            goto fail;
        }
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        hr_added_token t = {.content = content->valuestring, .len = strlen(content->valuestring)};
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &t.id);
        if (get_bool(it, "special", false, &t.special, where, err) ||
            get_bool(it, "single_word", false, &t.single_word, where, err) ||
            get_bool(it, "lstrip", false, &t.lstrip, where, err) || get_bool(it, "rstrip", false, &t.rstrip, where, err) ||
            get_bool(it, "normalized", !t.special, &t.normalized, where, err))
            goto fail;
        if (hr_bpe_add_token(b, &t, why)) {
            FAIL("%s: %.400s", where, why);
            goto fail;
        }
        i++;
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk)) {
            FAIL("model.unk_token: not a string");
            goto fail;
        }
        int64_t uid = hr_bpe_token_id(b, unk->valuestring, strlen(unk->valuestring));
        if (uid < 0) {
            FAIL("model.unk_token: '%.60s' is not in the vocab", unk->valuestring);
            goto fail;
        }
        b->unk_id = uid;
    }
    if (get_bool(model, "fuse_unk", false, &b->fuse_unk, "model", err) ||
        get_bool(model, "ignore_merges", false, &b->ignore_merges, "model", err))
        goto fail;
    b->add_prefix_space = prefix;
    b->trim_offsets = trim;
    b->use_regex = regex;
    if (hr_bpe_finish(b, why)) {
        FAIL("%s", why);
        goto fail;
    }
    return b;
fail:
    hr_bpe_free(b);
    return NULL;
}

hr_bpe *hr_tokenizer_json_parse(const char *json, size_t len, char *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        FAIL("not valid JSON (near byte %zu)", at);
        return NULL;
    }
    hr_bpe *b = from_tree(root, err);
    cJSON_Delete(root);
    return b;
}

hr_bpe *hr_tokenizer_json_load(const char *path, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL("%s: %s", path, strerror(errno)), NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 65536 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return FAIL("%s: out of memory", path), NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return FAIL("%s: read error", path), NULL;
    }
    if (n == 0) {
        free(buf);
        return FAIL("%s: empty file (not a tokenizer.json)", path), NULL;
    }
    char why[HR_BPE_ERR];
    hr_bpe *b = hr_tokenizer_json_parse(buf, n, why);
    free(buf);
    if (!b) FAIL("%.100s: %.400s", path, why);
    return b;
}

/* ---- writing ---- */

static cJSON *byte_level(bool add_prefix_space, bool trim_offsets) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", add_prefix_space);
    cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets);
    cJSON_AddBoolToObject(o, "use_regex", true);
    return o;
}

/* cJSON keeps the text of every string it is given, so the tree costs a copy of the vocabulary. */
char *hr_tokenizer_json_dump(const hr_bpe *b, bool pretty) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (uint32_t i = 0; i < b->n_added; i++) {
        const hr_added_token *t = &b->added[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", t->id);
        cJSON_AddStringToObject(o, "content", t->content);
        cJSON_AddBoolToObject(o, "single_word", t->single_word);
        cJSON_AddBoolToObject(o, "lstrip", t->lstrip);
        cJSON_AddBoolToObject(o, "rstrip", t->rstrip);
        cJSON_AddBoolToObject(o, "normalized", t->normalized);
        cJSON_AddBoolToObject(o, "special", t->special);
        cJSON_AddItemToArray(added, o);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = byte_level(b->add_prefix_space, b->trim_offsets);
    cJSON_ReplaceItemInObject(pre, "use_regex", cJSON_CreateBool(b->use_regex));
    cJSON_AddItemToObject(root, "pre_tokenizer", pre);
    cJSON_AddItemToObject(root, "post_processor", byte_level(true, false));
    cJSON_AddItemToObject(root, "decoder", byte_level(true, true));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (b->unk_id >= 0) cJSON_AddStringToObject(model, "unk_token", b->token[b->unk_id]);
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", b->fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON_AddBoolToObject(model, "ignore_merges", b->ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (uint32_t id = 0; id < b->n_ids; id++) {
        if (!b->token[id]) continue;
        uint32_t *in_vocab = hr_strmap_get(&b->vocab, b->token[id], b->token_len[id]);
        if (in_vocab && *in_vocab == id) cJSON_AddNumberToObject(vocab, b->token[id], id);
    }
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (uint32_t r = 0; r < b->n_merges; r++) {
        uint32_t left = b->merges[r][0], right = b->merges[r][1];
        int64_t *m = hr_u64map_get(&b->merge_of, (uint64_t)left << 32 | right);
        if ((uint32_t)((uint64_t)*m >> 32) != r) continue; /* a pair merged again later: written at its last rank */
        const char *pair[2] = {b->token[left], b->token[right]};
        cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
    }
    char *text = pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

int hr_tokenizer_json_save(hr_ctx *ctx, const hr_bpe *b, const char *path) {
    char *text = hr_tokenizer_json_dump(b, true);
    if (!text) return hr_error(ctx, "cannot write '%s': out of memory", path);
    hr_atomic_file af;
    int rc = hr_atomic_open(ctx, &af, path);
    if (!rc) rc = hr_atomic_write(ctx, &af, text, strlen(text));
    if (!rc) rc = hr_atomic_write(ctx, &af, "\n", 1);
    if (!rc) rc = hr_atomic_commit(ctx, &af);
    free(text);
    return rc;
}
