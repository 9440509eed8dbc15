/* The Lua side of the fuzz targets that go through the bundled library (fuzz_checkpoint,
 * fuzz_options): one state for the whole run, made as `hybridrt run` makes it, and a chunk of Lua
 * returning the function each input is given to. */
#ifndef HR_FUZZ_LUA_H
#define HR_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_util.h"
#include "lua/binding.h"

/* A state with the standard libraries, `require` finding the bundled library, `hr` loaded and the
 * functions of globals (NULL, or ended by {NULL, NULL}) set as globals; the function the chunk
 * returns is left in the registry under *ref. */
static inline lua_State *fuzz_lua_open(const char *chunk, const luaL_Reg *globals, int *ref) {
    lua_State *L = luaL_newstate();
    if (!L) fuzz_fail("out of memory creating the Lua state");
    luaL_openlibs(L);
    hr_lua_install_searcher(L);
    for (; globals && globals->name; globals++) lua_register(L, globals->name, globals->func);
    if (luaL_dostring(L, "hr = require 'hybridrt'") != LUA_OK || luaL_loadstring(L, chunk) != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_isfunction(L, -1))
        fuzz_fail("setting up Lua: %s", lua_tostring(L, -1));
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return L;
}

/* Calls the function with the n values on top of the stack. An error out of it is a finding: the
 * chunk catches what an input may legitimately raise. */
static inline void fuzz_lua_call(lua_State *L, int ref, int n) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_insert(L, -n - 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK) fuzz_fail("%s", lua_tostring(L, -1));
}

#endif
