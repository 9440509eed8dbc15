/* hybridrt run SCRIPT.lua [key=value ...]: runs a Lua script with the hybridrt library loaded.
 * key=value pairs reach the script, typed, as arg.opts; other arguments as arg[1..]. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/script_args.h"
#include "lua/binding.h"

static void run_usage(void) {
    printf("usage: hybridrt run SCRIPT.lua [key=value ...] [arguments ...]\n\n"
           "Runs a Lua 5.4 script with the hybridrt library loaded (require \"hybridrt\", also the global hr).\n"
           "SCRIPT is a path; a bare name that is not a file here is looked up among the scripts bundled\n"
           "in the binary (lua/). Modules next to the script can be required by name.\n\n"
           "key=value arguments are collected, typed, in the table arg.opts: numbers become numbers,\n"
           "true/false booleans, anything else a string (e.g. lr=3e-4 steps=100 out=runs/a).\n"
           "Other arguments are arg[1], arg[2], ...; arg[0] is the script.\n\n"
           "Exit status: 0 on success; 1 with the error and a traceback on stderr if the script fails.\n");
}

/* Adds a traceback to an error message (as lua.c's msghandler). */
static int message_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Loads the script from disk, or from the bundle when no such file exists. Pushes the chunk or an
 * error message; returns the lua_load status. */
static int load_script(lua_State *L, const char *script) {
    if (access(script, F_OK) == 0) return luaL_loadfilex(L, script, "t");
    const char *lua_dir = getenv("HYBRIDRT_LUA_PATH");
    if (lua_dir && *lua_dir && !strchr(script, '/')) { /* the source lua/ folder replaces the bundle */
        const char *path = lua_pushfstring(L, "%s/%s", lua_dir, script);
        if (access(path, F_OK) == 0) {
            int rc = luaL_loadfilex(L, path, "t");
            lua_remove(L, -2);
            return rc;
        }
        lua_pop(L, 1);
    }
    size_t size;
    const char *src = strchr(script, '/') ? NULL : hr_lua_bundled(script, &size);
    if (!src) {
        lua_pushfstring(L, "cannot open script '%s': no such file (and no bundled script of that name)", script);
        return LUA_ERRFILE;
    }
    lua_pushfstring(L, "@lua/%s", script);
    int rc = luaL_loadbufferx(L, src, size, lua_tostring(L, -1), "t");
    lua_remove(L, -2);
    return rc;
}

/* Lets the script require modules that sit next to it. */
static void add_script_dir_to_path(lua_State *L, const char *script) {
    const char *slash = strrchr(script, '/');
    lua_getglobal(L, "package");
    if (slash) lua_pushlstring(L, script, (size_t)(slash - script));
    else lua_pushliteral(L, ".");
    const char *dir = lua_tostring(L, -1);
    lua_getfield(L, -2, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -4, "path");
    lua_pop(L, 3);
}

static void report(lua_State *L, const char *what) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "hybridrt: %s%s\n", what, msg ? msg : "(no message)");
}

/* An error outside a protected call (only possible while setting up arg and package.path, e.g. out
 * of memory) would make Lua abort; report it and exit instead. */
static int panic(lua_State *L) {
    report(L, "fatal error while preparing the script: ");
    exit(1);
}

int hr_cmd_run(int argc, char **argv) {
    if (argc < 1 || hr_wants_help(1, argv)) {
        if (argc < 1) {
            fprintf(stderr, "hybridrt run: missing the script (usage: hybridrt run SCRIPT.lua [key=value ...])\n");
            return 2;
        }
        run_usage();
        return 0;
    }
    const char *script = argv[0];
    const char *lua_path = getenv("HYBRIDRT_LUA_PATH");
    struct stat st;
    if (lua_path && *lua_path && (stat(lua_path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        fprintf(stderr, "hybridrt: HYBRIDRT_LUA_PATH is '%s', which is not a directory (point it at a source lua/ "
                        "folder, or unset it to use the library inside the binary)\n", lua_path);
        return 1;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "hybridrt: out of memory creating the Lua state\n");
        return 1;
    }
    lua_atpanic(L, panic);
    luaL_openlibs(L);
    hr_lua_install_searcher(L);
    int status = 1;
    lua_pushcfunction(L, message_handler);
    int handler = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "hybridrt");
    if (lua_pcall(L, 1, 1, handler) != LUA_OK) {
        report(L, "loading the hybridrt library failed: ");
        goto done;
    }
    lua_setglobal(L, "hr");
    hr_push_script_args(L, script, argc - 1, argv + 1);
    add_script_dir_to_path(L, script);
    if (load_script(L, script) != LUA_OK) {
        report(L, "");
        goto done;
    }
    if (lua_pcall(L, 0, 0, handler) != LUA_OK) {
        report(L, "");
        goto done;
    }
    status = 0;
done:
    lua_close(L);
    return status;
}
