/* hr.tokenizer: byte-level BPE tokenizers (runtime/text) from Lua.
 *   hr.tokenizer.load(path) / .from_json(text) / .bytes() / .train_bpe{files=..., vocab_size=...}
 *   tok:encode(s) -> {ids}   tok:decode(ids) -> s   tok:save(path)   tok:to_json()
 *   tok:id(token) / tok:token(id)   tok:open_tokens(path) -> Tokens (text encoded, or a token file)
 *   fields: vocab_size, kind ("bytes" | "bpe"), n_merges, eos (id or nil), source */
#include <errno.h>
#include <lauxlib.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "lua/binding.h"
#include "text/bpe.h"
#include "text/bpe_train.h"
#include "text/tokenizer_json.h"

#define HR_TOKENIZER_MT "hybridrt.Tokenizer"

/* Text longer than this is encoded on all threads. */
#define PARALLEL_BYTES (1u << 20)

typedef struct {
    hr_bpe *bpe; /* NULL once collected */
    bool bytes;
    int n_encs;
    hr_bpe_encoder **encs; /* one per thread, created on first use */
} tokenizer_box;

static tokenizer_box *check_tok(lua_State *L, int arg) {
    tokenizer_box *box = luaL_checkudata(L, arg, HR_TOKENIZER_MT);
    if (!box->bpe) luaL_argerror(L, arg, "tokenizer has been released");
    return box;
}

/* A new Tokenizer userdata owning bpe (freed by the collector, even if this raises). */
static int push_tokenizer(lua_State *L, hr_bpe *bpe, bool bytes) {
    tokenizer_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = (tokenizer_box){0};
    luaL_setmetatable(L, HR_TOKENIZER_MT);
    box->bpe = bpe;
    box->bytes = bytes;
    box->n_encs = omp_get_max_threads();
    box->encs = calloc((size_t)box->n_encs, sizeof *box->encs);
    if (!box->encs) return luaL_error(L, "tokenizer: out of memory");
    return 1;
}

static int tok_gc(lua_State *L) {
    tokenizer_box *box = luaL_checkudata(L, 1, HR_TOKENIZER_MT);
    for (int i = 0; box->encs && i < box->n_encs; i++) hr_bpe_encoder_free(box->encs[i]);
    free(box->encs);
    hr_bpe_free(box->bpe);
    *box = (tokenizer_box){0};
    return 0;
}

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char err[HR_BPE_ERR];
    hr_bpe *bpe = hr_tokenizer_json_load(path, err);
    if (!bpe) return luaL_error(L, "tokenizer.load: %s", err);
    return push_tokenizer(L, bpe, false);
}

static int l_from_json(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    char err[HR_BPE_ERR];
    hr_bpe *bpe = hr_tokenizer_json_parse(text, len, err);
    if (!bpe) return luaL_error(L, "tokenizer.from_json: %s", err);
    return push_tokenizer(L, bpe, false);
}

static int l_bytes(lua_State *L) {
    hr_bpe *bpe = hr_bpe_new_bytes();
    if (!bpe) return luaL_error(L, "tokenizer.bytes: out of memory");
    return push_tokenizer(L, bpe, true);
}

/* The ids of text, appended to out; raises on failure (out is freed by the caller's pcall-free path:
 * callers keep it in a scratch structure and free it before raising). */
static int encode_into(tokenizer_box *box, const uint8_t *s, size_t n, hr_ids *out, char *err) {
    if (n >= PARALLEL_BYTES)
        return hr_bpe_encode_parallel(box->bpe, box->encs, box->n_encs, s, n, true, out, err);
    if (!box->encs[0] && !(box->encs[0] = hr_bpe_encoder_new(box->bpe))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    if (hr_bpe_encode(box->encs[0], s, n, true, out)) return snprintf(err, HR_BPE_ERR, "%s", hr_bpe_encoder_error(box->encs[0])), -1;
    return 0;
}

/* tok:encode(s) -> a table of ids */
static int t_encode(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    hr_ids ids = {0};
    char err[HR_BPE_ERR];
    if (encode_into(box, (const uint8_t *)s, n, &ids, err)) {
        hr_ids_free(&ids);
        return luaL_error(L, "encode: %s", err);
    }
    if (!lua_checkstack(L, 4)) {
        hr_ids_free(&ids);
        return luaL_error(L, "encode: out of memory");
    }
    lua_createtable(L, ids.n > INT32_MAX ? 0 : (int)ids.n, 0);
    for (size_t i = 0; i < ids.n; i++) {
        lua_pushinteger(L, ids.data[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    hr_ids_free(&ids);
    return 1;
}

/* tok:decode(ids [, {skip_special = true}]) -> string; ids: a table or an integer tensor */
static int t_decode(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    bool skip = false;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "skip_special");
        skip = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    hr_tensor *t = hr_lua_to_tensor(L, 2);
    size_t n;
    if (t) {
        t = hr_lua_host_tensor(L, 2);
        if (t->dtype != HR_I32 && t->dtype != HR_I64 && t->dtype != HR_U8)
            return luaL_error(L, "decode: ids must be an integer tensor (i32, i64 or u8), got %s", hr_dtype_name(t->dtype));
        n = (size_t)hr_tensor_numel(t);
    } else {
        luaL_argexpected(L, lua_istable(L, 2), 2, "table of ids or integer tensor");
        n = (size_t)hr_lua_array_len(L, 2, "decode: ids");
    }
    uint32_t *ids = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ids, 0); /* collected even if this raises */
    for (size_t i = 0; i < n; i++) {
        lua_Integer v;
        if (t) {
            v = (lua_Integer)hr_tensor_get_flat(t, (int64_t)i);
        } else {
            int is_int;
            lua_geti(L, 2, (lua_Integer)i + 1);
            v = lua_tointegerx(L, -1, &is_int);
            if (!is_int) return luaL_error(L, "decode: ids[%I] must be an integer, got %s", (lua_Integer)i + 1, luaL_tolstring(L, -1, NULL));
            lua_pop(L, 1);
        }
        if (v < 0 || v >= box->bpe->n_ids)
            return luaL_error(L, "decode: ids[%I] = %I is not below the vocab size %I", (lua_Integer)i + 1, v,
                              (lua_Integer)box->bpe->n_ids);
        ids[i] = (uint32_t)v;
    }
    uint8_t *out;
    size_t len;
    char err[HR_BPE_ERR];
    if (hr_bpe_decode(box->bpe, ids, n, skip, &out, &len, err)) return luaL_error(L, "decode: %s", err);
    lua_pushlstring(L, (const char *)out, len);
    free(out);
    return 1;
}

static int t_save(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (hr_tokenizer_json_save(hr_lua_ctx(L), box->bpe, path)) return hr_lua_raise(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int t_to_json(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    char *text = hr_tokenizer_json_dump(box->bpe, lua_toboolean(L, 2));
    if (!text) return luaL_error(L, "to_json: out of memory");
    lua_pushstring(L, text);
    free(text);
    return 1;
}

/* tok:id(token) -> id or nil (an added token's content, or a vocabulary string in byte-level form) */
static int t_id(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int64_t id = hr_bpe_token_id(box->bpe, s, len);
    if (id < 0) lua_pushnil(L);
    else lua_pushinteger(L, id);
    return 1;
}

/* tok:token(id) -> the token's string as the vocabulary writes it, or nil */
static int t_token(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    if (id < 0 || id >= box->bpe->n_ids || !box->bpe->token[id]) lua_pushnil(L);
    else lua_pushlstring(L, box->bpe->token[id], box->bpe->token_len[id]);
    return 1;
}

/* tok:open_tokens(path) -> a Tokens userdata: a token file as it is (its ids must fit this tokenizer),
 * or a text file encoded now, in memory, on all threads. */
static int t_open_tokens(lua_State *L) {
    tokenizer_box *box = check_tok(L, 1);
    const char *path = luaL_checkstring(L, 2);
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_mapped_file m;
    if (hr_map_file(ctx, path, &m)) return hr_lua_raise(L);
    if (m.size == 0) {
        hr_unmap_file(&m);
        return luaL_error(L, "%s: empty data file", path);
    }
    if (m.size >= 8 && memcmp(m.data, HR_TOKENS_MAGIC, 8) == 0) { /* a token file */
        hr_unmap_file(&m);
        hr_tokens *tok = hr_tokens_open(ctx, path);
        if (!tok) return hr_lua_raise(L);
        if (tok->vocab > box->bpe->n_ids) {
            uint32_t v = tok->vocab;
            hr_tokens_close(tok);
            return luaL_error(L, "%s: its ids go up to vocab %d but the tokenizer has %d tokens (was it made with another "
                                 "tokenizer?)", path, (int)v, (int)box->bpe->n_ids);
        }
        hr_lua_push_tokens(L, tok);
        return 1;
    }
    hr_ids ids = {0};
    char err[HR_BPE_ERR];
    int rc = encode_into(box, m.data, m.size, &ids, err);
    hr_unmap_file(&m);
    if (rc) {
        hr_ids_free(&ids);
        return luaL_error(L, "%s: %s", path, err);
    }
    hr_tokens *tok = hr_tokens_from_ids(ctx, path, HR_TOKENS_TEXT, ids.data, (int64_t)ids.n, box->bpe->n_ids);
    if (!tok) return hr_lua_raise(L);
    hr_lua_push_tokens(L, tok);
    return 1;
}

static int t_index(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING) return 1;
    const char *key = lua_tostring(L, 2);
    tokenizer_box *box = check_tok(L, 1);
    if (strcmp(key, "vocab_size") == 0) lua_pushinteger(L, box->bpe->n_ids);
    else if (strcmp(key, "kind") == 0) lua_pushstring(L, box->bytes ? "bytes" : "bpe");
    else if (strcmp(key, "n_merges") == 0) lua_pushinteger(L, box->bpe->n_merges);
    else if (strcmp(key, "eos") == 0) {
        int64_t id = hr_bpe_eos_id(box->bpe);
        if (id < 0 || box->bytes) lua_pushnil(L);
        else lua_pushinteger(L, id);
    } else lua_pushnil(L);
    return 1;
}

static int t_tostring(lua_State *L) {
    tokenizer_box *box = luaL_checkudata(L, 1, HR_TOKENIZER_MT);
    if (!box->bpe) lua_pushliteral(L, "tokenizer(released)");
    else if (box->bytes) lua_pushliteral(L, "tokenizer(bytes, vocab 256)");
    else lua_pushfstring(L, "tokenizer(bpe, vocab %I, %I merges)", (lua_Integer)box->bpe->n_ids, (lua_Integer)box->bpe->n_merges);
    return 1;
}

/* ---- training ---- */

static lua_Integer opt_integer(lua_State *L, int t, const char *name, lua_Integer dflt) {
    lua_getfield(L, t, name);
    lua_Integer v = dflt;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_error(L, "train_bpe: %s must be an integer", name);
    }
    lua_pop(L, 1);
    return v;
}

typedef struct {
    hr_bpe_trainer *tr;
} trainer_box;

static int trainer_gc(lua_State *L) {
    trainer_box *tb = lua_touserdata(L, 1);
    hr_bpe_trainer_free(tb->tr);
    tb->tr = NULL;
    return 0;
}

/* Feeds one file in blocks. */
static int feed_file(lua_State *L, hr_bpe_trainer *tr, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return luaL_error(L, "train_bpe: cannot read '%s': %s", path, strerror(errno));
    static const size_t BLOCK = 1u << 20;
    uint8_t *buf = malloc(BLOCK);
    size_t got;
    int rc = buf ? 0 : -1;
    while (!rc && (got = fread(buf, 1, BLOCK, f)) > 0) rc = hr_bpe_trainer_feed(tr, buf, got);
    bool bad = ferror(f);
    fclose(f);
    free(buf);
    if (rc || hr_bpe_trainer_end_file(tr)) return luaL_error(L, "train_bpe: out of memory");
    if (bad) return luaL_error(L, "train_bpe: read error in '%s'", path);
    return 0;
}

/* hr.tokenizer.train_bpe{files = {...} or text = "...", vocab_size = N, min_frequency = 2,
 *                        special_tokens = {"<pad>", "<unk>", "<bos>", "<eos>"}, add_prefix_space = false} */
static int l_train_bpe(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer vocab = opt_integer(L, 1, "vocab_size", -1);
    if (vocab < 1 || vocab > (1 << 30)) return luaL_error(L, "train_bpe: vocab_size must be an integer in 1..2^30");
    lua_Integer minf = opt_integer(L, 1, "min_frequency", 2);
    if (minf < 0) return luaL_error(L, "train_bpe: min_frequency must be >= 0");
    const char *specials[65];
    int n_special = 0;
    lua_getfield(L, 1, "special_tokens");
    if (lua_isnil(L, -1)) {
        static const char *const dflt[] = {"<pad>", "<unk>", "<bos>", "<eos>"};
        for (int i = 0; i < 4; i++) specials[n_special++] = dflt[i];
    } else {
        luaL_argexpected(L, lua_istable(L, -1), 1, "special_tokens as a table of strings");
        lua_Integer n = hr_lua_array_len(L, -1, "train_bpe: special_tokens");
        if (n > 64) return luaL_error(L, "train_bpe: at most 64 special tokens");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING || !lua_tostring(L, -1)[0])
                return luaL_error(L, "train_bpe: special_tokens[%I] must be a non-empty string", i);
            specials[n_special++] = lua_tostring(L, -1); /* kept alive by the table */
            lua_pop(L, 1);
        }
    }
    specials[n_special] = NULL;
    lua_getfield(L, 1, "add_prefix_space");
    hr_bpe_train_opts opts = {.vocab_size = (uint32_t)vocab, .min_frequency = (uint64_t)minf, .special = specials,
                              .add_prefix_space = lua_toboolean(L, -1)};
    lua_pop(L, 1);
    trainer_box *tb = lua_newuserdatauv(L, sizeof *tb, 0);
    tb->tr = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, trainer_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if (!(tb->tr = hr_bpe_trainer_new(&opts))) return luaL_error(L, "train_bpe: out of memory");
    lua_getfield(L, 1, "text");
    lua_getfield(L, 1, "files");
    if (lua_isstring(L, -2)) {
        size_t n;
        const char *text = lua_tolstring(L, -2, &n);
        if (hr_bpe_trainer_feed(tb->tr, (const uint8_t *)text, n) || hr_bpe_trainer_end_file(tb->tr))
            return luaL_error(L, "train_bpe: out of memory");
    } else if (lua_istable(L, -1)) {
        lua_Integer n = hr_lua_array_len(L, -1, "train_bpe: files");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "train_bpe: files[%I] must be a path", i);
            feed_file(L, tb->tr, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else {
        return luaL_error(L, "train_bpe: give text = STRING or files = {PATH, ...}");
    }
    if (hr_bpe_trainer_words(tb->tr) == 0) return luaL_error(L, "train_bpe: the training text is empty");
    char err[HR_BPE_ERR];
    hr_bpe *bpe = hr_bpe_trainer_finish(tb->tr, err);
    hr_bpe_trainer_free(tb->tr);
    tb->tr = NULL;
    if (!bpe) return luaL_error(L, "train_bpe: %s", err);
    return push_tokenizer(L, bpe, false);
}

static const luaL_Reg tokenizer_functions[] = {
    {"load", l_load}, {"from_json", l_from_json}, {"bytes", l_bytes}, {"train_bpe", l_train_bpe}, {NULL, NULL}};

static const luaL_Reg tokenizer_methods[] = {
    {"encode", t_encode}, {"decode", t_decode}, {"save", t_save}, {"to_json", t_to_json},
    {"id", t_id}, {"token", t_token}, {"open_tokens", t_open_tokens}, {NULL, NULL}};

void hr_lua_open_tokenizer(lua_State *L) {
    if (luaL_newmetatable(L, HR_TOKENIZER_MT)) {
        lua_pushcfunction(L, tok_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, t_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, tokenizer_methods);
        lua_pushcclosure(L, t_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, tokenizer_functions);
    lua_setfield(L, -2, "tokenizer");
}
