/* libFuzzer target: script options, `hybridrt run SCRIPT.lua key=value ...`. The input is the
 * argument list, one argument per line. It goes through the C side (runtime/cli/script_args.c:
 * key=value split, values typed into arg.opts) and then the Lua side as train.lua uses it
 * (lua/hybridrt/options.lua: options.parse against a spec of every type, options.help,
 * options.json_line). Properties: parse either raises a string or returns a value of the declared
 * type for every option, equal to what was given (a string option: its text as written); json_line's
 * text is valid JSON (checked with cJSON). */
#include <cjson/cJSON.h>

#include "cli/script_args.h"
#include "fuzz_lua.h"

#define MAX_ARGS 64

static const char CHUNK[] =
    "local options = require 'hybridrt.options'\n"
    "local SPEC = {\n"
    "  {'preset', 'string', 'tiny', 'model size'}, {'d_model', 'integer', nil, 'width'},\n"
    "  {'steps', 'integer', 2000, 'optimizer steps'}, {'lr', 'number', 3e-4, 'peak learning rate'},\n"
    "  {'minutes', 'number', nil, 'wall time'}, {'out', 'string', nil, 'run directory'},\n"
    "  {'help', 'boolean', false, 'print this help'},\n"
    "}\n"
    "local KEYS = {}\n"
    "for i, o in ipairs(SPEC) do KEYS[i] = o[1] end\n"
    "local function check_json(text)\n"
    "  if not json_valid(text) then error('json_line wrote invalid JSON: ' .. text) end\n"
    "end\n"
    "return function()\n"
    "  local ok, o = pcall(options.parse, SPEC, arg, 'fuzz.lua')\n"
    "  if not ok then\n"
    "    if type(o) ~= 'string' then error('options.parse raised a ' .. type(o)) end\n"
    "  elseif not o.help then\n"
    "    for _, s in ipairs(SPEC) do\n"
    "      local v, ty, given = o[s[1]], s[2], arg.opts[s[1]]\n"
    "      local typed = v == nil or (ty == 'integer' and math.type(v) == 'integer') or\n"
    "                    (ty == 'number' and type(v) == 'number') or type(v) == ty\n"
    "      if not typed then error(s[1] .. ' is a ' .. type(v) .. ', not a ' .. ty) end\n"
    "      if ty == 'string' and given ~= nil then given = arg.opts_text[s[1]] end -- as written: out=007 stays 007\n"
    "      if given ~= nil and v ~= given and v == v then\n"
    "        error(s[1] .. ' is ' .. tostring(v) .. ' but ' .. tostring(given) .. ' was given')\n"
    "      end\n"
    "    end\n"
    "    check_json(options.json_line(KEYS, o))\n"
    "  end\n"
    "  local given = {}\n"
    "  for k in pairs(arg.opts) do given[#given + 1] = k end\n"
    "  check_json(options.json_line(given, arg.opts))\n"
    "  options.help(SPEC, 'usage: fuzz.lua [key=value ...]')\n"
    "end\n";

static int json_valid(lua_State *L) {
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    lua_pushboolean(L, j && cJSON_IsObject(j) && end == text + n);
    cJSON_Delete(j);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lua_State *L;
    static int ref;
    if (!L) {
        static const luaL_Reg globals[] = {{"json_valid", json_valid}, {NULL, NULL}};
        L = fuzz_lua_open(CHUNK, globals, &ref);
    }
    char *text = malloc(size + 1), *argv[MAX_ARGS];
    memcpy(text, data, size);
    text[size] = '\0';
    int argc = 0;
    for (char *p = text; argc < MAX_ARGS;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    hr_push_script_args(L, "fuzz.lua", argc, argv);
    fuzz_lua_call(L, ref, 0);
    free(text);
    return 0;
}
