/* The ops as Lua functions: hr.<op>(...) and, for the ones that read naturally so, t:<op>(...).
 * Each converts arguments (1-based dims, optional tensors as nil) and calls core/ops.h. */
#include <lauxlib.h>
#include <lua.h>

#include "core/ops.h"
#include "lua/binding.h"

#define CTX hr_lua_ctx(L)
#define T(i) hr_lua_check_tensor(L, i)
#define OPT_T(i) hr_lua_opt_tensor(L, i)

/* hr.matmul(a, b, [trans_a], [trans_b]) */
static int l_matmul(lua_State *L) {
    return hr_lua_push_result(L, hr_matmul(CTX, T(1), T(2), lua_toboolean(L, 3), lua_toboolean(L, 4)));
}
/* hr.linear(x, weight, [bias]) */
static int l_linear(lua_State *L) { return hr_lua_push_result(L, hr_linear(CTX, T(1), T(2), OPT_T(3))); }
/* hr.scale(x, alpha) and hr.affine(x, alpha, beta) */
static int l_scale(lua_State *L) { return hr_lua_push_result(L, hr_affine(CTX, T(1), luaL_checknumber(L, 2), 0)); }
static int l_affine(lua_State *L) {
    return hr_lua_push_result(L, hr_affine(CTX, T(1), luaL_checknumber(L, 2), luaL_optnumber(L, 3, 0)));
}

#define UNARY(fn, op) \
    static int fn(lua_State *L) { return hr_lua_push_result(L, hr_unary(CTX, op, T(1))); }
UNARY(l_exp, HR_OP_EXP)
UNARY(l_tanh, HR_OP_TANH)
UNARY(l_sigmoid, HR_OP_SIGMOID)
UNARY(l_silu, HR_OP_SILU)
UNARY(l_gelu, HR_OP_GELU)
UNARY(l_softplus, HR_OP_SOFTPLUS)
UNARY(l_relu, HR_OP_RELU)
UNARY(l_relu_squared, HR_OP_RELU_SQUARED)
#undef UNARY

/* hr.sum(x, [dim], [keepdim]): without dim, over every element (a scalar). */
static int reduce(lua_State *L, hr_op_id op) {
    hr_tensor *x = T(1);
    if (!lua_isnoneornil(L, 2))
        return hr_lua_push_result(L, hr_reduce(CTX, op, x, hr_lua_check_dim(L, 2, x->ndim), lua_toboolean(L, 3)));
    int64_t all = -1;
    hr_tensor *flat = hr_reshape(CTX, x, 1, &all);
    if (!flat) return hr_lua_raise(L);
    hr_tensor *r = hr_reduce(CTX, op, flat, 0, 0);
    hr_tensor_release(flat);
    return hr_lua_push_result(L, r);
}
static int l_sum(lua_State *L) { return reduce(L, HR_OP_SUM); }
static int l_mean(lua_State *L) { return reduce(L, HR_OP_MEAN); }

/* hr.layer_norm(x, [w], [b], [eps=1e-5]) */
static int l_layer_norm(lua_State *L) {
    return hr_lua_push_result(L, hr_layer_norm(CTX, T(1), OPT_T(2), OPT_T(3), luaL_optnumber(L, 4, 1e-5)));
}
/* hr.rms_norm(x, [w], [eps=1e-6]) */
static int l_rms_norm(lua_State *L) {
    return hr_lua_push_result(L, hr_rms_norm(CTX, T(1), OPT_T(2), luaL_optnumber(L, 3, 1e-6)));
}
/* hr.group_norm(x, groups, [w], [b], [eps=1e-5]) */
static int l_group_norm(lua_State *L) {
    return hr_lua_push_result(
        L, hr_group_norm(CTX, T(1), luaL_checkinteger(L, 2), OPT_T(3), OPT_T(4), luaL_optnumber(L, 5, 1e-5)));
}
/* hr.gated_rms_norm(y, z, [w], [eps=1e-5], [group_size=all channels]) */
static int l_gated_rms_norm(lua_State *L) {
    return hr_lua_push_result(L, hr_gated_rms_norm(CTX, T(1), T(2), OPT_T(3), luaL_optnumber(L, 4, 1e-5),
                                                   luaL_optinteger(L, 5, 0)));
}

static int l_embedding(lua_State *L) { return hr_lua_push_result(L, hr_embedding(CTX, T(1), T(2))); }
static int l_token_shift(lua_State *L) { return hr_lua_push_result(L, hr_token_shift(CTX, T(1), OPT_T(2))); }
/* hr.conv1d_causal(x, weight, [bias], [state]) */
static int l_conv1d_causal(lua_State *L) {
    return hr_lua_push_result(L, hr_conv1d_causal(CTX, T(1), T(2), OPT_T(3), OPT_T(4)));
}

/* hr.concat({a, b, ...}, dim) */
static int l_concat(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = hr_lua_array_len(L, 1, "concat");
    hr_tensor *xs[8];
    if (n < 1 || n > 8) return luaL_error(L, "concat: takes 1 to 8 tensors, got %d", n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        xs[i] = hr_lua_check_tensor(L, -1);
        lua_pop(L, 1); /* the table keeps it alive */
    }
    return hr_lua_push_result(L, hr_concat(CTX, n, xs, hr_lua_check_dim(L, 2, xs[0]->ndim)));
}

/* hr.split(x, sizes, dim): sizes is a table of lengths or one length (the last piece may be shorter).
 * Returns a table of views. */
static int l_split(lua_State *L) {
    hr_tensor *x = T(1);
    int dim = hr_lua_check_dim(L, 3, x->ndim);
    int64_t total = x->shape[dim], start = 0, size = 0;
    int pieces;
    if (lua_istable(L, 2)) {
        lua_Integer listed = hr_lua_array_len(L, 2, "split: sizes");
        if (listed > total + 1) return luaL_error(L, "split: %I sizes for a dimension of %I", listed, (lua_Integer)total);
        pieces = (int)listed;
    } else {
        size = luaL_checkinteger(L, 2);
        if (size <= 0) return luaL_error(L, "split: size must be positive, got %d", (int)size);
        pieces = (int)((total + size - 1) / size);
    }
    lua_createtable(L, pieces, 0);
    for (int i = 1; i <= pieces; i++) {
        int64_t len = size;
        if (lua_istable(L, 2)) {
            lua_geti(L, 2, i);
            len = luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        } else if (start + len > total) len = total - start;
        hr_tensor *part = hr_narrow(CTX, x, dim, start, len);
        if (!part) return hr_lua_raise(L);
        hr_lua_push_tensor(L, part);
        lua_rawseti(L, -2, i);
        start += len;
    }
    if (start != total)
        return luaL_error(L, "split: sizes add up to %d but dimension %d has %d entries", (int)start, dim + 1, (int)total);
    return 1;
}

/* y, sT = hr.wkv6(r, k, v, w, u, [s0]) */
static int l_wkv6(lua_State *L) {
    hr_tensor *sT = NULL;
    hr_tensor *y = hr_wkv6(CTX, T(1), T(2), T(3), T(4), T(5), OPT_T(6), &sT);
    if (!y) return hr_lua_raise(L);
    hr_lua_push_tensor(L, y);
    hr_lua_push_tensor(L, sT);
    return 2;
}

/* y, hT = hr.ssd_scan(x, dt, A, B, C, [D], [h0]) */
static int l_ssd_scan(lua_State *L) {
    hr_tensor *hT = NULL;
    hr_tensor *y = hr_ssd_scan(CTX, T(1), T(2), T(3), T(4), T(5), OPT_T(6), OPT_T(7), &hT);
    if (!y) return hr_lua_raise(L);
    hr_lua_push_tensor(L, y);
    hr_lua_push_tensor(L, hT);
    return 2;
}

/* hr.cross_entropy(logits, targets, [ignore_index=-100]) or with {ignore_index = n} */
static int l_cross_entropy(lua_State *L) {
    lua_Integer ignore = -100;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "ignore_index");
        ignore = luaL_optinteger(L, -1, -100);
        lua_pop(L, 1);
    } else ignore = luaL_optinteger(L, 3, -100);
    return hr_lua_push_result(L, hr_cross_entropy(CTX, T(1), T(2), ignore));
}

static const luaL_Reg op_functions[] = {
    {"matmul", l_matmul}, {"linear", l_linear},
    {"scale", l_scale}, {"affine", l_affine}, {"exp", l_exp}, {"tanh", l_tanh}, {"sigmoid", l_sigmoid},
    {"silu", l_silu}, {"gelu", l_gelu}, {"softplus", l_softplus}, {"relu", l_relu},
    {"relu_squared", l_relu_squared}, {"sum", l_sum}, {"mean", l_mean}, {"layer_norm", l_layer_norm},
    {"rms_norm", l_rms_norm}, {"group_norm", l_group_norm}, {"gated_rms_norm", l_gated_rms_norm},
    {"embedding", l_embedding}, {"token_shift", l_token_shift}, {"conv1d_causal", l_conv1d_causal},
    {"concat", l_concat}, {"split", l_split}, {"wkv6", l_wkv6}, {"ssd_scan", l_ssd_scan},
    {"cross_entropy", l_cross_entropy}, {NULL, NULL}};

/* Methods of tensors: the ops whose first argument is naturally the tensor itself. */
static const char *const method_names[] = {"add", "sub", "mul", "div", "matmul", "scale", "exp", "tanh",
                                           "sigmoid", "silu", "gelu", "softplus", "relu", "relu_squared",
                                           "sum", "mean", "split", NULL};

void hr_lua_open_ops(lua_State *L) {
    luaL_setfuncs(L, op_functions, 0);
    luaL_getmetatable(L, HR_TENSOR_MT);
    /* hr.add/sub/mul/div are the operators themselves, so a number works on either side */
    static const char *const arith[][2] = {{"add", "__add"}, {"sub", "__sub"}, {"mul", "__mul"}, {"div", "__div"}};
    for (int i = 0; i < 4; i++) {
        lua_getfield(L, -1, arith[i][1]);
        lua_setfield(L, -3, arith[i][0]);
    }
    lua_getfield(L, -1, "methods");
    for (int i = 0; method_names[i]; i++) {
        lua_getfield(L, -3, method_names[i]);
        lua_setfield(L, -2, method_names[i]);
    }
    lua_pop(L, 2);
}
