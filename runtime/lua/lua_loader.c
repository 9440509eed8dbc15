/* Finds the Lua library of lua/: compiled into the binary (embedded_lua.c, generated at build time),
 * or read from the folder named by HYBRIDRT_LUA_PATH so a developer can edit without rebuilding. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/binding.h"

typedef struct {
    const char *name; /* path under lua/, e.g. "hybridrt/init.lua" */
    const char *data;
    size_t size;
} hr_embedded_file;

extern const hr_embedded_file hr_embedded_lua[];
extern const int hr_embedded_lua_count;

const char *hr_lua_bundled(const char *name, size_t *size) {
    for (int i = 0; i < hr_embedded_lua_count; i++) {
        if (strcmp(hr_embedded_lua[i].name, name) == 0) {
            *size = hr_embedded_lua[i].size;
            return hr_embedded_lua[i].data;
        }
    }
    return NULL;
}

/* Loads lua/<rel> from the override folder or the bundle; pushes the chunk, or nothing when absent.
 * Returns LUA_OK, LUA_ERRFILE when absent, or the load error (message pushed). */
static int load_library_file(lua_State *L, const char *rel) {
    const char *dir = getenv("HYBRIDRT_LUA_PATH");
    if (dir && *dir) {
        lua_pushfstring(L, "%s/%s", dir, rel);
        const char *path = lua_tostring(L, -1);
        FILE *f = fopen(path, "r");
        if (!f) {
            lua_pop(L, 1);
            return LUA_ERRFILE;
        }
        fclose(f);
        int rc = luaL_loadfilex(L, path, "t");
        lua_remove(L, -2);
        return rc;
    }
    size_t size;
    const char *src = hr_lua_bundled(rel, &size);
    if (!src) return LUA_ERRFILE;
    lua_pushfstring(L, "@lua/%s", rel);
    int rc = luaL_loadbufferx(L, src, size, lua_tostring(L, -1), "t");
    lua_remove(L, -2);
    return rc;
}

/* A package.searchers entry: module a.b -> lua/a/b.lua or lua/a/b/init.lua. */
static int library_searcher(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *base = luaL_gsub(L, name, ".", "/");
    const char *candidates[2] = {lua_pushfstring(L, "%s.lua", base), lua_pushfstring(L, "%s/init.lua", base)};
    for (int i = 0; i < 2; i++) {
        int rc = load_library_file(L, candidates[i]);
        if (rc == LUA_OK) {
            lua_pushfstring(L, "lua/%s", candidates[i]);
            return 2;
        }
        if (rc != LUA_ERRFILE)
            return luaL_error(L, "error loading module '%s' from the hybridrt library:\n\t%s", name, lua_tostring(L, -1));
    }
    lua_pushfstring(L, "no file 'lua/%s.lua' in the hybridrt library", base);
    return 1;
}

void hr_lua_install_searcher(lua_State *L) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_hybridrt_core);
    lua_setfield(L, -2, "hybridrt.core");
    lua_pop(L, 1);
    lua_getfield(L, -1, "searchers");
    /* right after the preload searcher, before the system paths */
    for (lua_Integer i = (lua_Integer)luaL_len(L, -1); i >= 2; i--) {
        lua_geti(L, -1, i);
        lua_seti(L, -2, i + 1);
    }
    lua_pushcfunction(L, library_searcher);
    lua_seti(L, -2, 2);
    lua_pop(L, 2);
}
