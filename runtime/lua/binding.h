/* The Lua binding: the `hybridrt.core` module (tensors, ops, autograd) and the loader of the bundled
 * Lua library. */
#ifndef HR_LUA_BINDING_H
#define HR_LUA_BINDING_H

#include <lua.h>

#include "core/context.h"
#include "core/tensor.h"
#include "io/tokenfile.h"

#define HR_TENSOR_MT "hybridrt.Tensor"
#define HR_GRAPH_MT "hybridrt.Graph"

/* The runtime context of this Lua state (created with the CPU backend on first use). */
hr_ctx *hr_lua_ctx(lua_State *L);
/* Counts the bytes of a tensor about to be handed to Lua; runs a full garbage collection once enough
 * have accumulated (Lua cannot see tensor storage, so it would not collect soon enough on its own). */
void hr_lua_account_tensor(lua_State *L, int64_t nbytes);
/* Raises the context's last error as a Lua error (with the caller's file:line). */
int hr_lua_raise(lua_State *L);

/* Tensors: push takes over the caller's reference; check raises a Lua error naming the argument. */
void hr_lua_push_tensor(lua_State *L, hr_tensor *t);
hr_tensor *hr_lua_check_tensor(lua_State *L, int arg);
hr_tensor *hr_lua_opt_tensor(lua_State *L, int arg); /* nil/none -> NULL */
hr_tensor *hr_lua_to_tensor(lua_State *L, int arg);  /* NULL if not a tensor; raises if closed */
/* Pushes t, or raises the context error when t is NULL. */
int hr_lua_push_result(lua_State *L, hr_tensor *t);
/* Dimension argument: 1-based, negative from the end; returns 0-based. */
int hr_lua_check_dim(lua_State *L, int arg, int ndim);
/* A shape from a table {2, 3} or from the integer arguments first..top (stops at a non-number). */
int hr_lua_check_shape(lua_State *L, int first, int64_t *shape);

void hr_lua_open_tensor(lua_State *L);   /* registers the metatable; methods go into the table on top */
void hr_lua_open_ops(lua_State *L);      /* adds the op functions to the table on top */
void hr_lua_open_autograd(lua_State *L); /* no_grad, capture, graph metatable */
void hr_lua_open_io(lua_State *L);       /* safetensors and token files */
void hr_lua_open_optim(lua_State *L);    /* adamw_, sum_squares */
void hr_lua_open_system(lua_State *L);   /* isatty, mkdir, Ctrl-C, source_dir */
void hr_lua_open_tokenizer(lua_State *L); /* the table hr.tokenizer and the Tokenizer userdata */
void hr_lua_open_device(lua_State *L);   /* use_device, device_stats, synchronize, tune_force */
void hr_lua_open_tune(lua_State *L);     /* tune_spaces, tune_source_hash, tune_record, tune_db */
void hr_lua_open_lock(lua_State *L);     /* lock_file, list_dir (lua_lock.c) */

/* The number of entries of the table at arg, as it holds them (lua_rawlen: never more than memory
 * has), for sizing buffers; a __len metamethod that says otherwise is refused naming `what` (it once
 * sized scratch from a claimed 2^62 entries, which wrapped to nothing). */
lua_Integer hr_lua_array_len(lua_State *L, int arg, const char *what);

/* The integer at arg, which must lie in [lo, hi] (a C int, say): raises naming `what` otherwise, so
 * that 2^32 + 1 is refused rather than truncated to 1 (and 0.5, NaN or inf as not integers at all). */
int hr_lua_check_int_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi, const char *what);

/* The string at index idx (a key or value: no conversion from numbers), which must hold no NUL byte:
 * a C string would silently stop there ("a\0b" saved as "a"). Raises naming `what` otherwise. */
const char *hr_lua_check_c_string(lua_State *L, int idx, const char *what);

/* t[key] = v for the table on top of the stack (result tables of stats and listings). */
void hr_lua_set_int(lua_State *L, const char *key, lua_Integer v);
void hr_lua_set_str(lua_State *L, const char *key, const char *v);

/* "cpu", "cuda", "cuda:N" into *dev; -1 for anything else. */
int hr_lua_parse_device(const char *spec, hr_device *dev);
/* The device named at arg (raising on a bad name or a GPU that does not open). */
hr_device hr_lua_check_device(lua_State *L, int arg);
/* The tensor at arg, readable on the host: itself, or (for a device tensor) a host copy pushed on the
 * stack above everything (the collector owns it). Raises naming `what` if arg is not a tensor. */
hr_tensor *hr_lua_host_tensor(lua_State *L, int arg);

/* Pushes a Tokens userdata (hr.open_tokens) that owns tok. */
void hr_lua_push_tokens(lua_State *L, hr_tokens *tok);

/* `require "hybridrt.core"` */
int luaopen_hybridrt_core(lua_State *L);
/* Makes `require` find the bundled lua/ library (or the folder in HYBRIDRT_LUA_PATH). */
void hr_lua_install_searcher(lua_State *L);
/* The source of a bundled file such as "train.lua" or "hybridrt/init.lua", or NULL. */
const char *hr_lua_bundled(const char *name, size_t *size);

#endif
