/* Files from Lua: safetensors checkpoints (hr.save_safetensors, hr.load_safetensors) and training
 * data (hr.open_tokens, a Tokens userdata that fills batches; hr.write_tokens). */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "io/safetensors.h"
#include "io/tokenfile.h"
#include "io/fileio.h"
#include "lua/binding.h"

#define HR_TOKENS_MT "hybridrt.Tokens"
#define HR_LOADED_MT "hybridrt.LoadedSafetensors"

/* A scratch array owned by Lua (a userdata left on the stack): the collector frees it even when an
 * error interrupts the function filling it, so no C allocation can leak past a Lua error. */
static void *scratch(lua_State *L, size_t n, size_t size) { return lua_newuserdatauv(L, (n ? n : 1) * size, 0); }

static int count_pairs(lua_State *L, int table) {
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

/* ---- safetensors ---- */

/* hr.save_safetensors(path, {name = tensor, ...}, [{key = string or number, ...}]) -> true */
static int l_save_safetensors(lua_State *L) {
    luaL_checkstring(L, 1);
    const char *path = hr_lua_check_c_string(L, 1, "save_safetensors: the path");
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    int n = count_pairs(L, 2), n_meta = lua_isnil(L, 3) ? 0 : count_pairs(L, 3);
    const char **names = scratch(L, (size_t)n, sizeof *names);
    hr_tensor **tensors = scratch(L, (size_t)n, sizeof *tensors);
    const char **keys = scratch(L, (size_t)n_meta, sizeof *keys);
    const char **values = scratch(L, (size_t)n_meta, sizeof *values);
    lua_newtable(L); /* host copies of device tensors, alive until the file is written */
    int copies = lua_gettop(L);
    int i = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1), i++) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "save_safetensors: tensor names must be strings, got a %s key", luaL_typename(L, -2));
        names[i] = hr_lua_check_c_string(L, -2, "save_safetensors: tensor name"); /* kept alive by the table */
        tensors[i] = hr_lua_to_tensor(L, lua_gettop(L));
        if (!tensors[i])
            return luaL_error(L, "save_safetensors: '%s' is a %s, not a tensor", names[i], luaL_typename(L, -1));
        if (!hr_tensor_on_host(tensors[i])) { /* a GPU tensor is written from a host copy */
            tensors[i] = hr_lua_host_tensor(L, lua_gettop(L));
            lua_rawsetp(L, copies, tensors[i]);
        }
    }
    lua_newtable(L); /* holds the strings made from numbers, so their pointers stay valid */
    int anchor = lua_gettop(L);
    i = 0;
    for (lua_pushnil(L); n_meta && lua_next(L, 3); lua_pop(L, 1), i++) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "save_safetensors: metadata keys must be strings, got a %s key", luaL_typename(L, -2));
        keys[i] = hr_lua_check_c_string(L, -2, "save_safetensors: metadata key");
        int type = lua_type(L, -1);
        if (type != LUA_TSTRING && type != LUA_TNUMBER)
            return luaL_error(L, "save_safetensors: metadata '%s' must be a string or a number, got a %s", keys[i],
                              luaL_typename(L, -1));
        luaL_tolstring(L, -1, NULL); /* numbers as tostring writes them */
        values[i] = hr_lua_check_c_string(L, -1, "save_safetensors: the value of a metadata key");
        lua_rawseti(L, anchor, i + 1);
    }
    if (hr_safetensors_save(hr_lua_ctx(L), path, n, names, tensors, n_meta, keys, values)) return hr_lua_raise(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* What hr_safetensors_load returned, boxed until its contents are in Lua tables: freed by the
 * collector if an error strikes in between. */
typedef struct {
    hr_safetensors *st;
} loaded_box;

static int loaded_gc(lua_State *L) {
    loaded_box *box = luaL_checkudata(L, 1, HR_LOADED_MT);
    hr_safetensors_free(box->st);
    box->st = NULL;
    return 0;
}

/* tensors, meta = hr.load_safetensors(path) */
static int l_load_safetensors(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    loaded_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->st = NULL;
    luaL_setmetatable(L, HR_LOADED_MT);
    hr_safetensors *st = box->st = hr_safetensors_load(hr_lua_ctx(L), path);
    if (!st) return hr_lua_raise(L);
    lua_createtable(L, 0, st->n);
    for (int i = 0; i < st->n; i++) {
        hr_lua_push_tensor(L, st->tensors[i]);
        st->tensors[i] = NULL; /* the userdata owns the reference now */
        lua_setfield(L, -2, st->names[i]);
    }
    lua_createtable(L, 0, st->n_meta);
    for (int i = 0; i < st->n_meta; i++) {
        lua_pushstring(L, st->meta_values[i]);
        lua_setfield(L, -2, st->meta_keys[i]);
    }
    hr_safetensors_free(st);
    box->st = NULL;
    return 2;
}

/* ---- token files ---- */

typedef struct {
    hr_tokens *tok; /* NULL once closed */
} tokens_box;

static hr_tokens *check_tokens(lua_State *L) {
    tokens_box *box = luaL_checkudata(L, 1, HR_TOKENS_MT);
    if (!box->tok) luaL_argerror(L, 1, "token file has been closed");
    return box->tok;
}

/* hr.open_tokens(path) -> a Tokens userdata */
static int l_open_tokens(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    tokens_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->tok = NULL; /* closed until the file is open: a failed open leaves nothing to release */
    luaL_setmetatable(L, HR_TOKENS_MT);
    box->tok = hr_tokens_open(hr_lua_ctx(L), path);
    if (!box->tok) return hr_lua_raise(L);
    return 1;
}

void hr_lua_push_tokens(lua_State *L, hr_tokens *tok) {
    tokens_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->tok = tok;
    luaL_setmetatable(L, HR_TOKENS_MT);
}

static int t_close(lua_State *L) {
    tokens_box *box = luaL_checkudata(L, 1, HR_TOKENS_MT);
    hr_tokens_close(box->tok);
    box->tok = NULL;
    return 0;
}

static int t_len(lua_State *L) {
    lua_pushinteger(L, check_tokens(L)->n_tokens);
    return 1;
}

/* ds:get(i) -> the id of token i (0-based) */
static int t_get(lua_State *L) {
    const hr_tokens *tok = check_tokens(L);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (i < 0 || i >= tok->n_tokens)
        return luaL_error(L, "get: index %I is out of range for %I tokens (indices are 0-based)", i,
                          (lua_Integer)tok->n_tokens);
    lua_pushinteger(L, hr_tokens_get(tok, i));
    return 1;
}

/* ds:fill(x, y, starts): x[b] = tokens starts[b] .. starts[b]+T-1, y[b] the same shifted by one. */
static int t_fill(lua_State *L) {
    const hr_tokens *tok = check_tokens(L);
    hr_tensor *x = hr_lua_check_tensor(L, 2), *y = hr_lua_check_tensor(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_Integer B = hr_lua_array_len(L, 4, "fill: starts");
    if (x->ndim == 2 && B != x->shape[0])
        return luaL_error(L, "fill: %I starts for the %I rows of x", B, (lua_Integer)x->shape[0]);
    int64_t *starts = scratch(L, (size_t)B, sizeof *starts);
    for (lua_Integer b = 0; b < B; b++) {
        lua_geti(L, 4, b + 1);
        int is_int;
        starts[b] = lua_tointegerx(L, -1, &is_int);
        if (!is_int)
            return luaL_error(L, "fill: starts[%I] must be an integer, got %s", b + 1, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 1);
    }
    int64_t T = x->ndim > 0 ? x->shape[x->ndim - 1] : 0;
    if (hr_tokens_fill(hr_lua_ctx(L), tok, starts, B, T, x, y)) return hr_lua_raise(L);
    return 0;
}

/* The methods, then the fields ds.vocab, ds.kind and ds.path (which raise once closed). */
static int t_index(lua_State *L) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING) return 1;
    const char *key = lua_tostring(L, 2);
    const hr_tokens *tok = check_tokens(L);
    if (strcmp(key, "vocab") == 0) lua_pushinteger(L, tok->vocab);
    else if (strcmp(key, "kind") == 0) lua_pushstring(L, tok->kind == HR_TOKENS_TEXT ? "text" : "tokens");
    else if (strcmp(key, "path") == 0) lua_pushstring(L, tok->path);
    else lua_pushnil(L);
    return 1;
}

static int t_tostring(lua_State *L) {
    tokens_box *box = luaL_checkudata(L, 1, HR_TOKENS_MT);
    if (!box->tok) lua_pushliteral(L, "tokens(closed)");
    else
        lua_pushfstring(L, "tokens(%s, %I tokens, vocab %I, %s)", box->tok->path, (lua_Integer)box->tok->n_tokens,
                        (lua_Integer)box->tok->vocab, box->tok->kind == HR_TOKENS_TEXT ? "text" : "token file");
    return 1;
}

/* The ids of a table {3, 1, 4} (1-based positions in messages) or of an integer tensor. */
static uint32_t *check_ids(lua_State *L, int arg, uint32_t vocab, int64_t *n) {
    hr_tensor *t = hr_lua_to_tensor(L, arg);
    if (t) {
        t = hr_lua_host_tensor(L, arg);
        if (t->dtype != HR_I32 && t->dtype != HR_I64 && t->dtype != HR_U8)
            luaL_error(L, "write_tokens: ids must be an integer tensor (i32, i64 or u8), got %s",
                       hr_dtype_name(t->dtype));
        *n = hr_tensor_numel(t);
        uint32_t *ids = scratch(L, (size_t)*n, sizeof *ids);
        for (int64_t i = 0; i < *n; i++) {
            double v = hr_tensor_get_flat(t, i);
            if (v < 0 || v > UINT32_MAX)
                luaL_error(L, "write_tokens: id %I at position %I is not a token id", (lua_Integer)v, (lua_Integer)i);
            ids[i] = (uint32_t)v; /* the writer checks it against the vocab */
        }
        return ids;
    }
    luaL_argexpected(L, lua_istable(L, arg), arg, "table of ids or integer tensor");
    *n = hr_lua_array_len(L, arg, "write_tokens: ids");
    uint32_t *ids = scratch(L, (size_t)*n, sizeof *ids);
    for (int64_t i = 0; i < *n; i++) {
        lua_geti(L, arg, i + 1);
        int is_int;
        lua_Integer v = lua_tointegerx(L, -1, &is_int);
        if (!is_int)
            luaL_error(L, "write_tokens: ids[%I] must be an integer, got %s", (lua_Integer)i + 1,
                       luaL_tolstring(L, -1, NULL));
        if (v < 0 || v >= vocab)
            luaL_error(L, "write_tokens: ids[%I] = %I is not below the vocab size %I", (lua_Integer)i + 1, v,
                       (lua_Integer)vocab);
        ids[i] = (uint32_t)v;
        lua_pop(L, 1);
    }
    return ids;
}

/* hr.write_tokens(path, ids, vocab) -> true */
static int l_write_tokens(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer vocab = luaL_checkinteger(L, 3);
    luaL_argcheck(L, vocab >= 1 && vocab <= UINT32_MAX, 3, "the vocab size must be in 1..4294967295");
    int64_t n;
    const uint32_t *ids = check_ids(L, 2, (uint32_t)vocab, &n);
    if (hr_tokens_write(hr_lua_ctx(L), path, ids, n, (uint32_t)vocab)) return hr_lua_raise(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* hr.write_file(path, text) -> true: all or nothing (io/fileio's atomic writer: a temporary file
 * beside it, every write checked, fsync, rename; on any failure, a full disk among them, the file
 * already at path is left as it was and the error names it). */
static int l_write_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_atomic_file af;
    if (hr_atomic_open(ctx, &af, path) || hr_atomic_write(ctx, &af, text, n) || hr_atomic_commit(ctx, &af))
        return hr_lua_raise(L);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg io_functions[] = {
    {"save_safetensors", l_save_safetensors}, {"load_safetensors", l_load_safetensors},
    {"open_tokens", l_open_tokens}, {"write_tokens", l_write_tokens}, {"write_file", l_write_file}, {NULL, NULL}};

static const luaL_Reg tokens_methods[] = {
    {"len", t_len}, {"get", t_get}, {"fill", t_fill}, {"close", t_close}, {NULL, NULL}};

void hr_lua_open_io(lua_State *L) {
    if (luaL_newmetatable(L, HR_TOKENS_MT)) {
        lua_pushcfunction(L, t_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, t_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, t_len);
        lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, t_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, tokens_methods);
        lua_pushcclosure(L, t_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, HR_LOADED_MT)) {
        lua_pushcfunction(L, loaded_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, io_functions, 0);
}
