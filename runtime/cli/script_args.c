#include "cli/script_args.h"

#include <string.h>

/* Pushes value typed: integer, float, boolean or string. */
static void push_typed(lua_State *L, const char *value) {
    if (strcmp(value, "true") == 0) lua_pushboolean(L, 1);
    else if (strcmp(value, "false") == 0) lua_pushboolean(L, 0);
    else if (*value == '\0' || lua_stringtonumber(L, value) == 0) lua_pushstring(L, value);
}

void hr_push_script_args(lua_State *L, const char *script, int argc, char **argv) {
    lua_createtable(L, argc, 3);
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    lua_newtable(L); /* opts */
    lua_newtable(L); /* opts_text */
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq && eq != argv[i]) {
            lua_pushlstring(L, argv[i], (size_t)(eq - argv[i]));
            lua_pushvalue(L, -1);
            push_typed(L, eq + 1);
            lua_rawset(L, -5);
            lua_pushstring(L, eq + 1);
            lua_rawset(L, -3);
        } else {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -4, ++positional);
        }
    }
    lua_setfield(L, -3, "opts_text");
    lua_setfield(L, -2, "opts");
    lua_setglobal(L, "arg");
}
