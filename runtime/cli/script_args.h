/* The arguments of `hybridrt run SCRIPT.lua key=value ...` as the script sees them (cmd_run.c; fuzzed
 * by tests/fuzz/fuzz_options.c). */
#ifndef HR_CLI_SCRIPT_ARGS_H
#define HR_CLI_SCRIPT_ARGS_H

#include <lua.h>

/* Sets the global arg = {[0] = script, positional..., opts = {key = typed value},
 * opts_text = {key = the value as written}}: an argument with an '=' after its first character is an
 * option (its value typed: integer, float, true/false, else the string), any other a positional
 * argument. opts_text keeps what typing loses (out=007 is the number 7 in opts, "007" there). */
void hr_push_script_args(lua_State *L, const char *script, int argc, char **argv);

#endif
