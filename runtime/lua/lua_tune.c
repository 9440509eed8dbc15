/* Tuning from Lua (lua/tune.lua, the `hybridrt tune` command): the tuning spaces of the templates,
 * a template's source hash, and the tuning database (read, and one measured record merged into a file
 * at a time, so an interrupted tune keeps everything it measured). */
#include <lauxlib.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jit/cache.h"
#include "jit/tune_db.h"
#include "jit/tune_space.h"
#include "lua/binding.h"

#define MAX_SPACES 64

/* hr.tune_spaces() -> {{kernel, file, line, knob, values = {...}, default, require, params = {...}}, ...} */
static int l_tune_spaces(lua_State *L) {
    hr_tune_space spaces[MAX_SPACES];
    int n = 0;
    char err[1024];
    if (hr_tune_spaces_load(spaces, MAX_SPACES, &n, err, sizeof err)) return luaL_error(L, "%s", err);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const hr_tune_space *s = &spaces[i];
        lua_createtable(L, 0, 8);
        hr_lua_set_str(L, "kernel", s->kernel);
        hr_lua_set_str(L, "file", s->file);
        hr_lua_set_int(L, "line", s->line);
        hr_lua_set_str(L, "knob", s->params[s->knob]);
        hr_lua_set_int(L, "default", s->default_value);
        hr_lua_set_str(L, "require", s->require);
        lua_createtable(L, s->n_values, 0);
        for (int k = 0; k < s->n_values; k++) {
            lua_pushinteger(L, s->values[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "values");
        lua_createtable(L, s->n_params, 0);
        for (int k = 0; k < s->n_params; k++) {
            lua_pushstring(L, s->params[k]);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "params");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* hr.tune_source_hash(file) -> 16 hex digits */
static int l_tune_source_hash(lua_State *L) {
    char hash[17], err[512];
    if (hr_tune_source_hash(luaL_checkstring(L, 1), hash, err, sizeof err)) return luaL_error(L, "%s", err);
    lua_pushstring(L, hash);
    return 1;
}

/* The record table {kernel, src, dtype, head, shape = {{name, size}, ...}, knob, times = {{value, ms}, ...}}
 * at the top of the stack, into r. */
static void check_record(lua_State *L, int idx, hr_tune_record *r) {
    memset(r, 0, sizeof *r);
    luaL_checktype(L, idx, LUA_TTABLE);
    static const struct { const char *key; size_t off, size; } strs[] = {
        {"kernel", offsetof(hr_tune_record, kernel), sizeof r->kernel},
        {"src", offsetof(hr_tune_record, src), sizeof r->src},
        {"dtype", offsetof(hr_tune_record, dtype), sizeof r->dtype},
        {"knob", offsetof(hr_tune_record, knob), sizeof r->knob}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        lua_getfield(L, idx, strs[i].key);
        const char *v = lua_tostring(L, -1);
        if (!v || strlen(v) >= strs[i].size || strchr(v, ' '))
            luaL_error(L, "tuning record: '%s' must be a string of at most %d characters without spaces", strs[i].key,
                       (int)strs[i].size - 1);
        memcpy((char *)r + strs[i].off, v, strlen(v) + 1);
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "head");
    r->head = lua_isnil(L, -1) ? 0 : hr_lua_check_int_range(L, -1, 0, 65536, "tuning record: head");
    lua_pop(L, 1);
    lua_getfield(L, idx, "shape");
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_Integer dims = hr_lua_array_len(L, -1, "tuning record: shape");
    r->n_dims = dims > HR_TUNE_MAX_DIMS ? HR_TUNE_MAX_DIMS + 1 : (int)dims;
    if (r->n_dims > HR_TUNE_MAX_DIMS) luaL_error(L, "tuning record: at most %d shape dims", HR_TUNE_MAX_DIMS);
    for (int k = 0; k < r->n_dims; k++) {
        lua_geti(L, -1, k + 1);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        const char *name = lua_tostring(L, -2);
        if (!name || strlen(name) >= sizeof r->dim_names[k] || strchr(name, ',') || strchr(name, '='))
            luaL_error(L, "tuning record: shape dim %d needs a short name", k + 1);
        snprintf(r->dim_names[k], sizeof r->dim_names[k], "%s", name);
        r->dims[k] = (int64_t)luaL_checkinteger(L, -1);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "times");
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_Integer times = hr_lua_array_len(L, -1, "tuning record: times");
    r->n_times = times > HR_TUNE_MAX_TIMES ? HR_TUNE_MAX_TIMES + 1 : (int)times;
    if (r->n_times < 1 || r->n_times > HR_TUNE_MAX_TIMES)
        luaL_error(L, "tuning record: 1 to %d times", HR_TUNE_MAX_TIMES);
    for (int k = 0; k < r->n_times; k++) {
        lua_geti(L, -1, k + 1);
        lua_geti(L, -1, 1);
        lua_geti(L, -2, 2);
        r->values[k] = hr_lua_check_int_range(L, -2, 1, INT_MAX, "tuning record: a knob value");
        r->ms[k] = luaL_checknumber(L, -1);
        if (!(r->ms[k] > 0)) luaL_error(L, "tuning record: times must be positive milliseconds");
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
}

/* hr.tune_record(path, header, record): merges one measured record into the database file at path
 * (created with header = {gpu, arch, driver, nvrtc, date} when missing), written atomically. */
static int l_tune_record(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    hr_tune_record r;
    check_record(L, 3, &r);
    hr_tune_db db;
    char warn[1200];
    hr_tune_db_init(&db, NULL, NULL);
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        if (hr_tune_db_load(&db, path, warn, sizeof warn) < 0) {
            hr_tune_db_free(&db);
            return luaL_error(L, "%s (move it away to start a new database)", warn);
        }
    }
    static const struct { const char *key; size_t off, size; } fields[] = {
        {"gpu", offsetof(hr_tune_db, gpu), sizeof db.gpu}, {"arch", offsetof(hr_tune_db, arch), sizeof db.arch},
        {"driver", offsetof(hr_tune_db, driver), sizeof db.driver},
        {"nvrtc", offsetof(hr_tune_db, nvrtc), sizeof db.nvrtc}, {"date", offsetof(hr_tune_db, date), sizeof db.date}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        lua_getfield(L, 2, fields[i].key);
        const char *v = lua_tostring(L, -1);
        if (v) snprintf((char *)&db + fields[i].off, fields[i].size, "%s", v);
        lua_pop(L, 1);
    }
    char err[1200];
    int rc = hr_tune_db_put(&db, &r);
    if (!rc) rc = hr_tune_db_save(&db, path, err, sizeof err);
    else snprintf(err, sizeof err, "out of memory");
    hr_tune_db_free(&db);
    if (rc) return luaL_error(L, "tune: %s", err);
    return 0;
}

/* hr.tune_db(path) -> {gpu, arch, driver, nvrtc, date, records = {{kernel, src, dtype, head, shape,
 * knob, times, best}, ...}}, warning-or-nil; raises when the file cannot be used at all. */
static int l_tune_db(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    hr_tune_db db;
    char warn[1200];
    hr_tune_db_init(&db, NULL, NULL);
    if (hr_tune_db_load(&db, path, warn, sizeof warn) < 0) {
        hr_tune_db_free(&db);
        return luaL_error(L, "%s", warn);
    }
    lua_createtable(L, 0, 6);
    hr_lua_set_str(L, "gpu", db.gpu);
    hr_lua_set_str(L, "arch", db.arch);
    hr_lua_set_str(L, "driver", db.driver);
    hr_lua_set_str(L, "nvrtc", db.nvrtc);
    hr_lua_set_str(L, "date", db.date);
    lua_createtable(L, db.n, 0);
    for (int i = 0; i < db.n; i++) {
        const hr_tune_record *r = &db.records[i];
        lua_createtable(L, 0, 8);
        hr_lua_set_str(L, "kernel", r->kernel);
        hr_lua_set_str(L, "src", r->src);
        hr_lua_set_str(L, "dtype", r->dtype);
        hr_lua_set_int(L, "head", r->head);
        hr_lua_set_str(L, "knob", r->knob);
        hr_lua_set_int(L, "best", hr_tune_record_best(r));
        lua_createtable(L, r->n_dims, 0);
        for (int k = 0; k < r->n_dims; k++) {
            lua_createtable(L, 2, 0);
            lua_pushstring(L, r->dim_names[k]);
            lua_rawseti(L, -2, 1);
            lua_pushinteger(L, (lua_Integer)r->dims[k]);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_createtable(L, r->n_times, 0);
        for (int k = 0; k < r->n_times; k++) {
            lua_createtable(L, 2, 0);
            lua_pushinteger(L, r->values[k]);
            lua_rawseti(L, -2, 1);
            lua_pushnumber(L, r->ms[k]);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "times");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "records");
    hr_tune_db_free(&db);
    if (warn[0]) lua_pushstring(L, warn);
    else lua_pushnil(L);
    return 2;
}

/* hr.tune_db_filename(gpu, arch) -> "NVIDIA_H100_80GB_HBM3-sm_90.tune" */
static int l_tune_db_filename(lua_State *L) {
    char name[512];
    hr_tune_db_filename(luaL_checkstring(L, 1), luaL_checkstring(L, 2), name, sizeof name);
    lua_pushstring(L, name);
    return 1;
}

/* hr.cache_dir() -> the kernel cache's folder (HYBRIDRT_CACHE_DIR, else the XDG default); tuning
 * databases go in its tuned/ */
static int l_cache_dir(lua_State *L) {
    char dir[1024];
    hr_kernel_cache_default_dir(dir, sizeof dir);
    lua_pushstring(L, dir);
    return 1;
}

static const luaL_Reg tune_functions[] = {{"tune_spaces", l_tune_spaces},
                                          {"cache_dir", l_cache_dir},
                                          {"tune_source_hash", l_tune_source_hash},
                                          {"tune_record", l_tune_record},
                                          {"tune_db", l_tune_db},
                                          {"tune_db_filename", l_tune_db_filename},
                                          {NULL, NULL}};

void hr_lua_open_tune(lua_State *L) { luaL_setfuncs(L, tune_functions, 0); }
