/* The hybridrt.core module: the context of this Lua state, autograd controls, graph capture and
 * build information. */
#include <cblas.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/graph.h"
#include "cpu/backend.h"
#include "lua/binding.h"

#ifndef HR_VERSION
#define HR_VERSION "0.0.0"
#endif

static const char state_key = 's'; /* its address keys this Lua state's binding_state in the registry */

/* What the binding keeps per Lua state: the runtime context, and the bytes of tensors handed to Lua
 * since the last full collection. Lua's collector sees only each tensor's small box, not its storage,
 * so without this count an eager loop could pile up gigabytes of unreachable tensors before the
 * collector felt any pressure (cutorch had the same problem and the same answer). */
typedef struct {
    hr_ctx *ctx;
    int64_t bytes_since_gc;
} binding_state;

#define HR_GC_BYTES (INT64_C(256) << 20) /* a full collection after this many new tensor bytes */

static int state_gc(lua_State *L) {
    binding_state *st = lua_touserdata(L, 1);
    hr_ctx_destroy(st->ctx);
    st->ctx = NULL;
    return 0;
}

static binding_state *get_state(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TUSERDATA) {
        binding_state *st = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return st;
    }
    lua_pop(L, 1);
    binding_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    *st = (binding_state){0};
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    st->ctx = hr_ctx_create();
    if (!st->ctx) luaL_error(L, "hybridrt: out of memory creating the runtime context");
    hr_cpu_register(st->ctx);
    const char *check = getenv("HYBRIDRT_CHECK_NAN");
    st->ctx->check_nan = check && *check && strcmp(check, "0") != 0;
    lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
    return st;
}

hr_ctx *hr_lua_ctx(lua_State *L) { return get_state(L)->ctx; }

void hr_lua_account_tensor(lua_State *L, int64_t nbytes) {
    binding_state *st = get_state(L);
    st->bytes_since_gc += nbytes;
    if (st->bytes_since_gc > HR_GC_BYTES) {
        st->bytes_since_gc = 0;
        lua_gc(L, LUA_GCCOLLECT);
    }
}

int hr_lua_raise(lua_State *L) { return luaL_error(L, "%s", hr_last_error(hr_lua_ctx(L))); }

int hr_lua_check_int_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi, const char *what) {
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < lo || v > hi) luaL_error(L, "%s must be in %I..%I, got %I", what, lo, hi, v);
    return (int)v;
}

lua_Integer hr_lua_array_len(lua_State *L, int arg, const char *what) {
    arg = lua_absindex(L, arg);
    lua_Integer n = (lua_Integer)lua_rawlen(L, arg);
    if (luaL_getmetafield(L, arg, "__len") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_Integer claimed = luaL_len(L, arg);
        if (claimed != n)
            luaL_error(L, "%s: a table whose __len says %I entries holds %I: give a plain table", what, claimed, n);
    }
    return n;
}

const char *hr_lua_check_c_string(lua_State *L, int idx, const char *what) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    size_t cut = s ? strlen(s) : 0;
    if (s && cut != len) {
        char shown[64]; /* lua_pushfstring has no precision: cut a long value here */
        snprintf(shown, sizeof shown, "%.60s", s);
        luaL_error(L, "%s '%s' holds a NUL byte (at byte %d): C strings stop there", what, shown, (int)cut);
    }
    return s;
}

void hr_lua_set_int(lua_State *L, const char *key, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

void hr_lua_set_str(lua_State *L, const char *key, const char *v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

/* ---- autograd controls ---- */

/* hr.no_grad(fn, ...): calls fn with gradient recording off, restoring the mode even on error. */
static int l_no_grad(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    hr_ctx *ctx = hr_lua_ctx(L);
    bool was = ctx->grad_enabled;
    ctx->grad_enabled = false;
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    ctx->grad_enabled = was;
    if (status != LUA_OK) return lua_error(L);
    return lua_gettop(L);
}

/* hr.set_grad_enabled(on) -> previous */
static int l_set_grad_enabled(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    lua_pushboolean(L, ctx->grad_enabled);
    ctx->grad_enabled = lua_toboolean(L, 1);
    return 1;
}

static int l_is_grad_enabled(lua_State *L) {
    lua_pushboolean(L, hr_lua_ctx(L)->grad_enabled);
    return 1;
}

/* hr.set_check_nan(on) -> previous: check every op's outputs and gradients for NaN/Inf. */
static int l_set_check_nan(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    lua_pushboolean(L, ctx->check_nan);
    ctx->check_nan = lua_toboolean(L, 1);
    return 1;
}

/* hr.manual_seed(seed): restarts the generator's stream. */
static int l_manual_seed(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    ctx->rng.seed = (uint64_t)luaL_checkinteger(L, 1);
    ctx->rng.offset = 0;
    return 0;
}

/* hr.rng_state() -> seed, offset ; hr.set_rng_state(seed, offset): for exact resume. */
static int l_rng_state(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    lua_pushinteger(L, (lua_Integer)ctx->rng.seed);
    lua_pushinteger(L, (lua_Integer)ctx->rng.offset);
    return 2;
}

static int l_set_rng_state(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    ctx->rng.seed = (uint64_t)luaL_checkinteger(L, 1);
    ctx->rng.offset = (uint64_t)luaL_checkinteger(L, 2);
    return 0;
}

/* ---- graph capture ---- */

typedef struct {
    hr_graph *g; /* NULL once closed */
} graph_box;

static hr_graph *check_graph(lua_State *L) {
    graph_box *box = luaL_checkudata(L, 1, HR_GRAPH_MT);
    if (!box->g) luaL_argerror(L, 1, "graph has been closed");
    return box->g;
}

/* graph, results... = hr.capture(fn, ...): runs fn once, recording every op it launches. */
static int l_capture(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    hr_ctx *ctx = hr_lua_ctx(L);
    graph_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->g = NULL;
    luaL_setmetatable(L, HR_GRAPH_MT);
    lua_insert(L, 1);
    if (hr_capture_begin(ctx)) return hr_lua_raise(L);
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    if (status != LUA_OK) {
        hr_capture_abort(ctx);
        return lua_error(L);
    }
    box->g = hr_capture_end(ctx);
    if (!box->g) return hr_lua_raise(L);
    return lua_gettop(L);
}

/* graph:forward(): replays every recorded op in order, reading the current input values. */
static int g_forward(lua_State *L) {
    if (hr_graph_forward(hr_lua_ctx(L), check_graph(L))) return hr_lua_raise(L);
    return 0;
}

/* graph:backward(loss): like loss:backward(), keeping the graph's gradient buffers for reuse. */
static int g_backward(lua_State *L) {
    check_graph(L);
    if (hr_backward(hr_lua_ctx(L), hr_lua_check_tensor(L, 2), true)) return hr_lua_raise(L);
    return 0;
}

/* graph:step(loss): forward then backward, one C call per training step. */
static int g_step(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_graph *g = check_graph(L);
    hr_tensor *loss = hr_lua_check_tensor(L, 2);
    if (hr_graph_forward(ctx, g) || hr_backward(ctx, loss, true)) return hr_lua_raise(L);
    return 0;
}

static int g_size(lua_State *L) {
    lua_pushinteger(L, check_graph(L)->n_nodes);
    return 1;
}

static int g_close(lua_State *L) {
    graph_box *box = luaL_checkudata(L, 1, HR_GRAPH_MT);
    hr_graph_free(box->g);
    box->g = NULL;
    return 0;
}

static int g_tostring(lua_State *L) {
    graph_box *box = luaL_checkudata(L, 1, HR_GRAPH_MT);
    if (box->g) lua_pushfstring(L, "graph(%d ops)", box->g->n_nodes);
    else lua_pushliteral(L, "graph(closed)");
    return 1;
}

/* hr.clock() -> seconds on a monotonic wall clock (for timing; os.clock counts CPU time of all threads). */
static int l_clock(lua_State *L) {
    lua_pushnumber(L, (lua_Number)hr_now());
    return 1;
}

/* hr.profile(true) clears the per-op times and starts accumulating them; hr.profile(false) stops.
 * Returns the times so far: {ops = {{name, fwd_s, bwd_s, fwd_calls, bwd_calls}, ...} (ops that ran,
 * slowest first), grad_zero_s = backward's zeroing of intermediate gradients}. */
static int l_profile(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TBOOLEAN);
        bool on = lua_toboolean(L, 1);
        if (on) {
            memset(ctx->op_time, 0, sizeof ctx->op_time);
            ctx->grad_zero_s = 0;
        }
        ctx->profiling = on;
    }
    int order[HR_OP_COUNT], n = 0;
    for (int i = 0; i < HR_OP_COUNT; i++)
        if (ctx->op_time[i].fwd_calls || ctx->op_time[i].bwd_calls) order[n++] = i;
    for (int a = 1; a < n; a++) /* insertion sort by total time, slowest first */
        for (int b = a; b > 0; b--) {
            const hr_op_time *x = &ctx->op_time[order[b]], *y = &ctx->op_time[order[b - 1]];
            if (x->fwd_s + x->bwd_s <= y->fwd_s + y->bwd_s) break;
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    lua_createtable(L, 0, 2);
    lua_createtable(L, n, 0);
    for (int k = 0; k < n; k++) {
        const hr_op_time *t = &ctx->op_time[order[k]];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, hr_op_name((hr_op_id)order[k]));
        lua_setfield(L, -2, "name");
        lua_pushnumber(L, t->fwd_s);
        lua_setfield(L, -2, "fwd_s");
        lua_pushnumber(L, t->bwd_s);
        lua_setfield(L, -2, "bwd_s");
        lua_pushinteger(L, t->fwd_calls);
        lua_setfield(L, -2, "fwd_calls");
        lua_pushinteger(L, t->bwd_calls);
        lua_setfield(L, -2, "bwd_calls");
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "ops");
    lua_pushnumber(L, ctx->grad_zero_s);
    lua_setfield(L, -2, "grad_zero_s");
    return 1;
}

/* ---- build information ---- */

static int l_set_num_threads(lua_State *L) {
    int n = hr_lua_check_int_range(L, 1, 1, 4096, "set_num_threads: the thread count");
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return 0;
}

static int l_num_threads(lua_State *L) {
    lua_pushinteger(L, omp_get_max_threads());
    return 1;
}

/* hr.build_info() -> {version, lua, blas, threads} */
static int l_build_info(lua_State *L) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, HR_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, LUA_RELEASE);
    lua_setfield(L, -2, "lua");
    lua_pushstring(L, openblas_get_config());
    lua_setfield(L, -2, "blas");
    lua_pushinteger(L, omp_get_max_threads());
    lua_setfield(L, -2, "threads");
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"no_grad", l_no_grad}, {"set_grad_enabled", l_set_grad_enabled}, {"is_grad_enabled", l_is_grad_enabled},
    {"set_check_nan", l_set_check_nan}, {"manual_seed", l_manual_seed}, {"rng_state", l_rng_state},
    {"set_rng_state", l_set_rng_state}, {"capture", l_capture}, {"set_num_threads", l_set_num_threads},
    {"num_threads", l_num_threads}, {"build_info", l_build_info}, {"clock", l_clock}, {"profile", l_profile},
    {NULL, NULL}};

static const luaL_Reg graph_methods[] = {
    {"forward", g_forward}, {"backward", g_backward}, {"step", g_step}, {"size", g_size}, {"close", g_close},
    {NULL, NULL}};

int luaopen_hybridrt_core(lua_State *L) {
    hr_lua_ctx(L);
    if (luaL_newmetatable(L, HR_GRAPH_MT)) {
        lua_pushcfunction(L, g_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, g_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, g_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, graph_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, module_functions);
    hr_lua_open_tensor(L);
    hr_lua_open_ops(L);
    hr_lua_open_io(L);
    hr_lua_open_optim(L);
    hr_lua_open_system(L);
    hr_lua_open_tokenizer(L);
    hr_lua_open_device(L);
    hr_lua_open_tune(L);
    hr_lua_open_lock(L);
    lua_pushstring(L, HR_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
