/* libFuzzer target: a checkpoint loaded as sample.lua and gates.lua load one (hr.load_checkpoint:
 * lua/hybridrt/checkpoint.lua over hr.load_safetensors): the safetensors file, the format tag, the
 * model config in the metadata checked against the tensors, the model built from it, every parameter
 * restored (shapes, dtypes, NaN checks) and the tokenizer.json in the metadata. Any error it raises
 * is an answer; a crash, a sanitizer report or a Lua error that is not a string is a finding. */
#include "fuzz_lua.h"

static const char CHUNK[] =
    "return function(path)\n"
    "  local ok, err = pcall(hr.load_checkpoint, path)\n"
    "  if not ok and type(err) ~= 'string' then error('a non-string error: ' .. tostring(err)) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static lua_State *L;
    static int ref;
    if (!L) L = fuzz_lua_open(CHUNK, NULL, &ref);
    const char *path = fuzz_path("ckpt.safetensors");
    fuzz_write(path, data, size);
    lua_pushstring(L, path);
    fuzz_lua_call(L, ref, 1);
    lua_gc(L, LUA_GCCOLLECT); /* the tensors of this input go now, not in some later one */
    return 0;
}
