/* The tensor userdata: a box holding one reference to an hr_tensor. __gc and __close share one
 * release, so `local t <close> = ...` frees memory deterministically; a closed tensor raises a clean
 * error when used. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/graph.h"
#include "core/init.h"
#include "core/ops.h"
#include "lua/binding.h"

typedef struct {
    hr_tensor *t; /* NULL once closed */
} tensor_box;

void hr_lua_push_tensor(lua_State *L, hr_tensor *t) {
    /* Count only new memory: a fresh tensor with storage of its own (not a view, not t.grad handed
     * out again). Collect before boxing: t is not a Lua object yet, the caller's arguments are. */
    if (t->refcount == 1 && t->storage->refcount == 1) hr_lua_account_tensor(L, t->storage->nbytes);
    tensor_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->t = t; /* the box exists before it owns anything, so a failed allocation leaks nothing */
    luaL_setmetatable(L, HR_TENSOR_MT);
}

int hr_lua_push_result(lua_State *L, hr_tensor *t) {
    if (!t) return hr_lua_raise(L);
    hr_lua_push_tensor(L, t);
    return 1;
}

hr_tensor *hr_lua_to_tensor(lua_State *L, int arg) {
    tensor_box *box = luaL_testudata(L, arg, HR_TENSOR_MT);
    if (box && !box->t) luaL_argerror(L, arg, "tensor has been closed");
    return box ? box->t : NULL;
}

hr_tensor *hr_lua_check_tensor(lua_State *L, int arg) {
    tensor_box *box = luaL_checkudata(L, arg, HR_TENSOR_MT);
    if (!box->t) luaL_argerror(L, arg, "tensor has been closed");
    return box->t;
}

hr_tensor *hr_lua_opt_tensor(lua_State *L, int arg) {
    return lua_isnoneornil(L, arg) ? NULL : hr_lua_check_tensor(L, arg);
}

int hr_lua_check_dim(lua_State *L, int arg, int ndim) {
    lua_Integer d = luaL_checkinteger(L, arg);
    lua_Integer zero_based = d > 0 ? d - 1 : d + ndim;
    if (d == 0 || zero_based < 0 || zero_based >= ndim)
        luaL_error(L, "dimension %d is out of range for a %d-dimensional tensor (dims are 1..%d, or -1 for the last)",
                   (int)d, ndim, ndim);
    return (int)zero_based;
}

int hr_lua_check_shape(lua_State *L, int first, int64_t *shape) {
    int ndim = 0;
    if (lua_istable(L, first)) {
        lua_Integer listed = hr_lua_array_len(L, first, "shape");
        if (listed > HR_MAX_DIMS) luaL_error(L, "a shape has at most %d dimensions, got %I", HR_MAX_DIMS, listed);
        ndim = (int)listed;
        for (int d = 0; d < ndim; d++) {
            lua_geti(L, first, d + 1);
            int is_int;
            shape[d] = lua_tointegerx(L, -1, &is_int); /* also 2.0, as `n / 2` gives in Lua 5.4 */
            if (!is_int) luaL_error(L, "shape entry %d must be an integer, got %s", d + 1, luaL_tolstring(L, -1, NULL));
            lua_pop(L, 1);
        }
        return ndim;
    }
    for (int i = first; i <= lua_gettop(L) && lua_type(L, i) == LUA_TNUMBER; i++) {
        if (ndim == HR_MAX_DIMS) luaL_error(L, "a shape has at most %d dimensions", HR_MAX_DIMS);
        shape[ndim++] = luaL_checkinteger(L, i);
    }
    return ndim;
}

static int tensor_release(lua_State *L) {
    tensor_box *box = luaL_checkudata(L, 1, HR_TENSOR_MT);
    hr_tensor_release(box->t);
    box->t = NULL;
    return 0;
}

hr_tensor *hr_lua_host_tensor(lua_State *L, int arg) {
    hr_tensor *t = hr_lua_check_tensor(L, arg);
    if (hr_tensor_on_host(t)) return t;
    hr_tensor *h = hr_tensor_host(hr_lua_ctx(L), t);
    if (!h) hr_lua_raise(L);
    hr_lua_push_tensor(L, h);
    return h;
}

/* Runs a host-side writer (random fills, set, orthogonal_) on t wherever it lives: directly on the
 * host, else on a host copy written back afterwards. */
static void write_through_host(lua_State *L, hr_tensor *t, void (*write)(lua_State *L, hr_tensor *h, void *arg),
                               void *arg) {
    if (hr_tensor_on_host(t)) {
        write(L, t, arg);
        return;
    }
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_tensor *h = hr_tensor_host(ctx, t);
    if (!h) hr_lua_raise(L);
    hr_lua_push_tensor(L, h); /* collected even if write raises */
    write(L, h, arg);
    if (hr_tensor_copy_into(ctx, t, h)) hr_lua_raise(L);
    lua_pop(L, 1);
}

/* ---- printing ---- */

static void preview(luaL_Buffer *b, const hr_tensor *t, int dim, int64_t flat, int indent) {
    char num[48];
    if (t->ndim == 0) {
        snprintf(num, sizeof num, "%.6g", hr_tensor_get_flat(t, 0));
        luaL_addstring(b, num);
        return;
    }
    int64_t n = t->shape[dim], inner = 1;
    for (int d = dim + 1; d < t->ndim; d++) inner *= t->shape[d];
    luaL_addchar(b, '[');
    for (int64_t i = 0; i < n; i++) {
        if (n > 6 && i == 3) { /* first three, ..., last three */
            luaL_addstring(b, dim == t->ndim - 1 ? "..., " : "...,\n");
            if (dim != t->ndim - 1)
                for (int s = 0; s <= indent; s++) luaL_addchar(b, ' ');
            i = n - 3;
        }
        if (dim == t->ndim - 1) {
            double v = hr_tensor_get_flat(t, flat + i);
            snprintf(num, sizeof num, hr_dtype_is_float(t->dtype) ? "%.4f" : "%.0f", v);
            luaL_addstring(b, num);
        } else {
            preview(b, t, dim + 1, flat + i * inner, indent + 1); /* sub-block i starts at flat + i*inner */
        }
        if (i + 1 < n) {
            luaL_addstring(b, dim == t->ndim - 1 ? ", " : ",\n");
            if (dim != t->ndim - 1)
                for (int s = 0; s <= indent; s++) luaL_addchar(b, ' ');
        }
    }
    luaL_addchar(b, ']');
}

static int tensor_tostring(lua_State *L) {
    tensor_box *box = luaL_checkudata(L, 1, HR_TENSOR_MT);
    if (!box->t) {
        lua_pushliteral(L, "tensor(closed)");
        return 1;
    }
    const hr_tensor *t = hr_lua_host_tensor(L, 1); /* the values, read on the host */
    char shape[96], device[32];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "tensor(shape=%s, dtype=%s, device=%s%s)\n", hr_shape_str(t, shape, sizeof shape),
                    hr_dtype_name(t->dtype), hr_device_str(box->t->storage->device, device, sizeof device),
                    box->t->requires_grad ? ", requires_grad" : "");
    luaL_addvalue(&b);
    preview(&b, t, 0, 0, 0);
    luaL_pushresult(&b);
    return 1;
}

/* ---- creation ---- */

/* Optional dtype name at arg (default f32). */
static hr_dtype opt_dtype(lua_State *L, int arg) {
    const char *name = luaL_optstring(L, arg, "f32");
    hr_dtype dt;
    if (hr_dtype_parse(name, &dt))
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (f32, f64, bf16, i32, i64, u8)", name));
    return dt;
}

/* The shape from arguments first.., and the index of the first argument after it. */
static int shape_args(lua_State *L, int first, int64_t *shape, int *next) {
    int ndim = hr_lua_check_shape(L, first, shape);
    *next = lua_istable(L, first) ? first + 1 : first + ndim;
    return ndim;
}

static hr_tensor *new_tensor(lua_State *L, hr_dtype dt, int ndim, const int64_t *shape) {
    hr_tensor *t = hr_tensor_zeros(hr_lua_ctx(L), dt, ndim, shape);
    if (!t) hr_lua_raise(L);
    return t;
}

/* hr.zeros(shape, [dtype], [device]) / hr.ones / hr.full(shape, value, [dtype], [device]) */
static int fill_constructor(lua_State *L, double value, bool value_arg) {
    int64_t shape[HR_MAX_DIMS];
    int next, ndim = shape_args(L, 1, shape, &next);
    if (value_arg) value = luaL_checknumber(L, next++);
    hr_dtype dt = opt_dtype(L, next);
    hr_device dev = lua_isnoneornil(L, next + 1) ? (hr_device){HR_DEVICE_CPU, 0} : hr_lua_check_device(L, next + 1);
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_tensor *t = hr_tensor_zeros_on(ctx, dev, dt, ndim, shape);
    if (!t) return hr_lua_raise(L);
    hr_lua_push_tensor(L, t);
    if (value != 0 && hr_tensor_fill(ctx, t, value)) return hr_lua_raise(L);
    return 1;
}
static int l_zeros(lua_State *L) { return fill_constructor(L, 0, false); }
static int l_ones(lua_State *L) { return fill_constructor(L, 1, false); }
static int l_full(lua_State *L) { return fill_constructor(L, 0, true); }

/* Fills t from the context generator: normal(mean, std) or uniform(lo, hi). Counter-based: element i
 * gets counter offset + i, so the values are the same however the loop is split across threads. */
static void fill_random(hr_ctx *ctx, hr_tensor *t, bool normal, double a, double b) {
    int64_t n = hr_tensor_numel(t);
    uint64_t seed = ctx->rng.seed, base = ctx->rng.offset;
    bool packed = hr_tensor_is_contiguous(t) && (t->dtype == HR_F32 || t->dtype == HR_F64);
    void *data = hr_tensor_data(t);
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        double v = normal ? a + b * hr_rng_normal(seed, base + (uint64_t)i)
                          : a + (b - a) * hr_rng_uniform01(seed, base + (uint64_t)i);
        if (packed) hr_dtype_set(t->dtype, data, i, v);
        else hr_tensor_set_flat(t, i, v);
    }
    ctx->rng.offset += (uint64_t)n;
    hr_tensor_mark_written(t); /* the packed path writes the data directly */
}

static int l_randn(lua_State *L) {
    int64_t shape[HR_MAX_DIMS];
    int next, ndim = shape_args(L, 1, shape, &next);
    hr_tensor *t = new_tensor(L, opt_dtype(L, next), ndim, shape);
    fill_random(hr_lua_ctx(L), t, true, 0, 1);
    hr_lua_push_tensor(L, t);
    return 1;
}

/* hr.rand(shape, [dtype]) in [0, 1); hr.uniform(shape, lo, hi, [dtype]) */
static int l_uniform(lua_State *L) {
    int64_t shape[HR_MAX_DIMS];
    int next, ndim = shape_args(L, 1, shape, &next);
    double lo = 0, hi = 1;
    if (lua_type(L, next) == LUA_TNUMBER) {
        lo = luaL_checknumber(L, next++);
        hi = luaL_checknumber(L, next++);
    }
    hr_tensor *t = new_tensor(L, opt_dtype(L, next), ndim, shape);
    fill_random(hr_lua_ctx(L), t, false, lo, hi);
    hr_lua_push_tensor(L, t);
    return 1;
}

/* hr.arange(n, [dtype]): 0, 1, ..., n-1 */
static int l_arange(lua_State *L) {
    int64_t n = luaL_checkinteger(L, 1);
    hr_tensor *t = new_tensor(L, opt_dtype(L, 2), 1, &n);
    for (int64_t i = 0; i < n; i++) hr_tensor_set_flat(t, i, (double)i);
    hr_lua_push_tensor(L, t);
    return 1;
}

/* Shape of a nested table: the lengths down the first elements. */
static int table_shape(lua_State *L, int idx, int64_t *shape) {
    int ndim = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (ndim == HR_MAX_DIMS) luaL_error(L, "hr.tensor: nested deeper than %d levels", HR_MAX_DIMS);
        shape[ndim++] = (int64_t)hr_lua_array_len(L, -1, "hr.tensor");
        if (shape[ndim - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return ndim;
}

static void table_fill(lua_State *L, hr_tensor *t, int dim, int64_t *flat) {
    int64_t n = (int64_t)hr_lua_array_len(L, -1, "hr.tensor");
    if (n != t->shape[dim]) luaL_error(L, "hr.tensor: ragged table (dimension %d has %d and %d entries)", dim + 1,
                                       (int)t->shape[dim], (int)n);
    for (int64_t i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        if (dim + 1 < t->ndim && dim + 1 < HR_MAX_DIMS) {
            if (!lua_istable(L, -1)) luaL_error(L, "hr.tensor: ragged table (expected a table at depth %d)", dim + 2);
            table_fill(L, t, dim + 1, flat);
        } else {
            if (!lua_isnumber(L, -1) && !lua_isboolean(L, -1))
                luaL_error(L, "hr.tensor: entry %d is a %s, not a number", (int)(*flat + 1), luaL_typename(L, -1));
            hr_tensor_set_flat(t, (*flat)++, lua_isboolean(L, -1) ? lua_toboolean(L, -1) : lua_tonumber(L, -1));
        }
        lua_pop(L, 1);
    }
}

/* hr.tensor(table, [dtype]) from nested tables, or hr.tensor(number, [dtype]) for a scalar. */
static int l_tensor(lua_State *L) {
    hr_dtype dt = opt_dtype(L, 2);
    if (lua_type(L, 1) == LUA_TNUMBER) {
        hr_tensor *t = new_tensor(L, dt, 0, NULL);
        hr_tensor_set_flat(t, 0, lua_tonumber(L, 1));
        hr_lua_push_tensor(L, t);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[HR_MAX_DIMS], flat = 0;
    int ndim = table_shape(L, 1, shape);
    hr_tensor *t = new_tensor(L, dt, ndim, shape);
    hr_lua_push_tensor(L, t); /* owned by Lua from here, so an error below leaks nothing */
    lua_pushvalue(L, 1);
    table_fill(L, t, 0, &flat);
    lua_pop(L, 1);
    return 1;
}

/* ---- properties ---- */

static void push_shape(lua_State *L, const hr_tensor *t) {
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, t->shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

static int tensor_index(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "shape") == 0) push_shape(L, t);
    else if (key && strcmp(key, "dtype") == 0) lua_pushstring(L, hr_dtype_name(t->dtype));
    else if (key && strcmp(key, "device") == 0) {
        char name[32];
        lua_pushstring(L, hr_device_str(t->storage->device, name, sizeof name));
    }
    else if (key && strcmp(key, "ndim") == 0) lua_pushinteger(L, t->ndim);
    else if (key && strcmp(key, "requires_grad") == 0) lua_pushboolean(L, t->requires_grad);
    else if (key && strcmp(key, "is_leaf") == 0) lua_pushboolean(L, t->grad_fn == NULL);
    else if (key && strcmp(key, "grad") == 0) {
        if (!t->grad) lua_pushnil(L);
        else {
            hr_tensor_retain(t->grad);
            hr_lua_push_tensor(L, t->grad);
        }
    } else { /* methods */
        luaL_getmetatable(L, HR_TENSOR_MT);
        lua_getfield(L, -1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
    }
    return 1;
}

static int set_requires_grad(lua_State *L, hr_tensor *t, bool on) {
    if (on && !hr_dtype_is_float(t->dtype))
        return luaL_error(L, "requires_grad: only float tensors can require grad, this one is %s", hr_dtype_name(t->dtype));
    if (!on && t->grad_fn)
        return luaL_error(L, "requires_grad: cannot turn off on a computed tensor; use :detach()");
    t->requires_grad = on;
    return 0;
}

static int tensor_newindex(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "requires_grad") == 0) return set_requires_grad(L, t, lua_toboolean(L, 3));
    if (strcmp(key, "grad") == 0) {
        /* nil drops the gradient; a tensor becomes the buffer backward accumulates into, e.g. a view
         * of one flat gradient buffer shared by all parameters (llm.c's layout) */
        hr_tensor *g = lua_isnil(L, 3) ? NULL : hr_lua_check_tensor(L, 3);
        char a[96], b[96];
        if (g && (!hr_same_shape(g, t) || g->dtype != t->dtype || !hr_tensor_is_contiguous(g)))
            return luaL_error(L, "grad: must be a contiguous %s tensor of shape %s, got %s %s%s", hr_dtype_name(t->dtype),
                              hr_shape_str(t, a, sizeof a), hr_dtype_name(g->dtype), hr_shape_str(g, b, sizeof b),
                              hr_tensor_is_contiguous(g) ? "" : " (not contiguous)");
        if (g && g->storage == t->storage)
            return luaL_error(L, "grad: a tensor cannot be its own gradient buffer");
        hr_tensor_retain(g);
        hr_tensor_release(t->grad);
        t->grad = g;
        return 0;
    }
    return luaL_error(L, "tensor field '%s' cannot be assigned (settable: requires_grad, grad)", key);
}

/* ---- methods ---- */

static int m_requires_grad_(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    set_requires_grad(L, t, lua_isnone(L, 2) ? true : lua_toboolean(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int m_numel(lua_State *L) {
    lua_pushinteger(L, hr_tensor_numel(hr_lua_check_tensor(L, 1)));
    return 1;
}

static int m_dim(lua_State *L) {
    lua_pushinteger(L, hr_lua_check_tensor(L, 1)->ndim);
    return 1;
}

static int m_size(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        push_shape(L, t);
        return 1;
    }
    lua_pushinteger(L, t->shape[hr_lua_check_dim(L, 2, t->ndim)]);
    return 1;
}

static int m_is_contiguous(lua_State *L) {
    lua_pushboolean(L, hr_tensor_is_contiguous(hr_lua_check_tensor(L, 1)));
    return 1;
}

/* Flat offset of 1-based indices at args first..first+ndim-1. */
static int64_t index_args(lua_State *L, const hr_tensor *t, int first) {
    int64_t flat = 0;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 1 || i > t->shape[d])
            luaL_error(L, "index %d is out of range for dimension %d of size %d", (int)i, d + 1, (int)t->shape[d]);
        flat = flat * t->shape[d] + (i - 1);
    }
    return flat;
}

static void push_number(lua_State *L, const hr_tensor *t, double v) {
    if (hr_dtype_is_float(t->dtype)) lua_pushnumber(L, v);
    else lua_pushinteger(L, (lua_Integer)v);
}

/* t:get(i, j, ...) with one 1-based index per dimension */
static int m_get(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (lua_gettop(L) - 1 != t->ndim) return luaL_error(L, "get: expected %d indices, got %d", t->ndim, lua_gettop(L) - 1);
    int64_t flat = index_args(L, t, 2);
    hr_tensor *h = hr_lua_host_tensor(L, 1);
    push_number(L, h, hr_tensor_get_flat(h, flat));
    return 1;
}

typedef struct {
    int64_t flat;
    double v;
} set_args;

static void set_one(lua_State *L, hr_tensor *h, void *arg) {
    (void)L;
    const set_args *a = arg;
    hr_tensor_set_flat(h, a->flat, a->v);
}

/* t:set(i, j, ..., value) */
static int m_set(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (lua_gettop(L) - 2 != t->ndim)
        return luaL_error(L, "set: expected %d indices and a value, got %d arguments", t->ndim, lua_gettop(L) - 1);
    set_args a = {index_args(L, t, 2), luaL_checknumber(L, t->ndim + 2)};
    write_through_host(L, t, set_one, &a);
    lua_settop(L, 1);
    return 1;
}

static int m_item(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (hr_tensor_numel(t) != 1) {
        char shape[96];
        return luaL_error(L, "item: needs a tensor with one element, got shape %s", hr_shape_str(t, shape, sizeof shape));
    }
    hr_tensor *h = hr_lua_host_tensor(L, 1);
    push_number(L, h, hr_tensor_get_flat(h, 0));
    return 1;
}

static void totable(lua_State *L, const hr_tensor *t, int dim, int64_t flat) {
    if (dim >= HR_MAX_DIMS) return;
    int64_t n = t->shape[dim], inner = 1;
    for (int d = dim + 1; d < t->ndim && d < HR_MAX_DIMS; d++) inner *= t->shape[d];
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (dim + 1 < t->ndim && dim + 1 < HR_MAX_DIMS) totable(L, t, dim + 1, flat + i * inner);
        else push_number(L, t, hr_tensor_get_flat(t, flat + i));
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L) {
    hr_tensor *t = hr_lua_host_tensor(L, 1);
    if (t->ndim == 0) push_number(L, t, hr_tensor_get_flat(t, 0));
    else totable(L, t, 0, 0);
    return 1;
}

/* In-place writes bypass autograd; refusing them on computed tensors keeps gradients honest. */
static hr_tensor *check_writable(lua_State *L, const char *what) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (t->grad_fn) luaL_error(L, "%s: cannot write into a computed tensor (it has a grad_fn); use a leaf or :detach()", what);
    return t;
}

static int m_fill_(lua_State *L) {
    if (hr_tensor_fill(hr_lua_ctx(L), check_writable(L, "fill_"), luaL_checknumber(L, 2))) return hr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

static int m_zero_(lua_State *L) {
    if (hr_tensor_fill(hr_lua_ctx(L), check_writable(L, "zero_"), 0)) return hr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

static int m_copy_(lua_State *L) {
    hr_tensor *t = check_writable(L, "copy_"), *src = hr_lua_check_tensor(L, 2);
    if (hr_tensor_numel(t) != hr_tensor_numel(src) || (!hr_same_shape(t, src) && !hr_tensor_is_contiguous(src))) {
        char a[96], b[96];
        return luaL_error(L, "copy_: source shape %s does not match %s", hr_shape_str(src, b, sizeof b),
                          hr_shape_str(t, a, sizeof a));
    }
    if (hr_tensor_copy_into(hr_lua_ctx(L), t, src)) return hr_lua_raise(L);
    lua_settop(L, 1);
    return 1;
}

/* Random fills draw on the host from the context generator (so a seed gives the same values on
 * every device), then land on the tensor's device. */
typedef struct {
    bool normal;
    double a, b;
} random_args;

static void random_write(lua_State *L, hr_tensor *h, void *arg) {
    const random_args *r = arg;
    fill_random(hr_lua_ctx(L), h, r->normal, r->a, r->b);
}

static int m_normal_(lua_State *L) {
    random_args r = {true, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1)};
    write_through_host(L, check_writable(L, "normal_"), random_write, &r);
    lua_settop(L, 1);
    return 1;
}

static int m_uniform_(lua_State *L) {
    random_args r = {false, luaL_optnumber(L, 2, 0), luaL_optnumber(L, 3, 1)};
    write_through_host(L, check_writable(L, "uniform_"), random_write, &r);
    lua_settop(L, 1);
    return 1;
}

static void orthogonal_write(lua_State *L, hr_tensor *h, void *arg) {
    if (hr_init_orthogonal(hr_lua_ctx(L), h, *(const double *)arg)) hr_lua_raise(L);
}

/* t:orthogonal_([gain = 1]): torch.nn.init.orthogonal_ (RWKV-LM initialises its projections so). */
static int m_orthogonal_(lua_State *L) {
    double gain = luaL_optnumber(L, 2, 1);
    write_through_host(L, check_writable(L, "orthogonal_"), orthogonal_write, &gain);
    lua_settop(L, 1);
    return 1;
}

static int m_view(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    int64_t shape[HR_MAX_DIMS];
    int ndim = hr_lua_check_shape(L, 2, shape);
    return hr_lua_push_result(L, hr_reshape(hr_lua_ctx(L), t, ndim, shape));
}

static int m_transpose(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    int d0 = hr_lua_check_dim(L, 2, t->ndim), d1 = hr_lua_check_dim(L, 3, t->ndim);
    return hr_lua_push_result(L, hr_transpose(hr_lua_ctx(L), t, d0, d1));
}

static int m_t(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (t->ndim != 2) return luaL_error(L, "t: needs a 2-D tensor, got %d dimensions", t->ndim);
    return hr_lua_push_result(L, hr_transpose(hr_lua_ctx(L), t, 0, 1));
}

/* t:narrow(dim, start, length) with a 1-based start */
static int m_narrow(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    int dim = hr_lua_check_dim(L, 2, t->ndim);
    lua_Integer start = luaL_checkinteger(L, 3);
    luaL_argcheck(L, start >= 1, 3, "the start of narrow counts from 1"); /* and start - 1 cannot wrap */
    return hr_lua_push_result(L, hr_narrow(hr_lua_ctx(L), t, dim, start - 1, luaL_checkinteger(L, 4)));
}

/* t:slice(dim, i, j): entries i..j inclusive, negative counting from the end, as string.sub. */
static int m_slice(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    int dim = hr_lua_check_dim(L, 2, t->ndim);
    const int64_t size = t->shape[dim], first = luaL_checkinteger(L, 3), last = luaL_optinteger(L, 4, -1);
    const int64_t i = first < 0 ? first + size + 1 : first, j = last < 0 ? last + size + 1 : last;
    if (i < 1 || j > size || j < i - 1)
        return luaL_error(L, "slice: %I..%I is not a range of dimension %d (size %I)", (lua_Integer)first,
                          (lua_Integer)last, dim + 1, (lua_Integer)size);
    return hr_lua_push_result(L, hr_narrow(hr_lua_ctx(L), t, dim, i - 1, j - i + 1));
}

static int m_contiguous(lua_State *L) {
    return hr_lua_push_result(L, hr_contiguous(hr_lua_ctx(L), hr_lua_check_tensor(L, 1)));
}

static int m_clone(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    return hr_lua_push_result(L, hr_cast(hr_lua_ctx(L), t, t->dtype));
}

/* t:to(dtype) (a cast, recorded by autograd) or t:to(device) ("cpu", "cuda", "cuda:N": a copy on that
 * device outside autograd, or t itself when it is there already). */
static int m_to(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    const char *what = luaL_checkstring(L, 2);
    hr_device dev;
    if (hr_lua_parse_device(what, &dev) == 0) {
        dev = hr_lua_check_device(L, 2);
        if (t->storage->device.kind == dev.kind && t->storage->device.index == dev.index) {
            hr_tensor_retain(t);
            hr_lua_push_tensor(L, t);
            return 1;
        }
        return hr_lua_push_result(L, hr_tensor_to(hr_lua_ctx(L), t, dev));
    }
    hr_dtype dt;
    if (hr_dtype_parse(what, &dt))
        return luaL_error(L, "to: '%s' is neither a dtype (f32, f64, bf16, i32, i64, u8) nor a device (cpu, cuda, "
                             "cuda:N)", what);
    return hr_lua_push_result(L, hr_cast(hr_lua_ctx(L), t, dt));
}

static int m_cpu(lua_State *L) {
    lua_settop(L, 1);
    lua_pushliteral(L, "cpu");
    return m_to(L);
}

static int m_cuda(lua_State *L) {
    lua_settop(L, 1);
    lua_pushliteral(L, "cuda");
    return m_to(L);
}

/* A tensor sharing t's storage and layout, outside the autograd graph. */
static int m_detach(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    hr_tensor *d = hr_tensor_alias(hr_lua_ctx(L), t);
    if (!d) return hr_lua_raise(L);
    hr_lua_push_tensor(L, d);
    return 1;
}

static int m_backward(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    if (hr_backward(ctx, hr_lua_check_tensor(L, 1), lua_toboolean(L, 2))) return hr_lua_raise(L);
    return 0;
}

static int m_zero_grad(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    if (t->grad && hr_tensor_fill(hr_lua_ctx(L), t->grad, 0)) return hr_lua_raise(L);
    return 0;
}

static int tensor_len(lua_State *L) {
    hr_tensor *t = hr_lua_check_tensor(L, 1);
    lua_pushinteger(L, t->ndim ? t->shape[0] : 0);
    return 1;
}

/* ---- arithmetic metamethods: tensor (op) tensor, tensor (op) number, number (op) tensor ---- */

static int arith(lua_State *L, hr_op_id op) {
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_tensor *a = hr_lua_to_tensor(L, 1), *b = hr_lua_to_tensor(L, 2);
    if (a && b) return hr_lua_push_result(L, hr_binary(ctx, op, a, b));
    if (!a && !b) return luaL_error(L, "%s: needs a tensor on at least one side", hr_op_name(op));
    if ((a && lua_type(L, 2) != LUA_TNUMBER) || (b && lua_type(L, 1) != LUA_TNUMBER))
        return luaL_error(L, "%s: operands must be tensors or numbers", hr_op_name(op));
    double s = lua_tonumber(L, a ? 2 : 1);
    hr_tensor *t = a ? a : b;
    switch (op) {
    case HR_OP_ADD: return hr_lua_push_result(L, hr_affine(ctx, t, 1, s));
    case HR_OP_SUB: return hr_lua_push_result(L, a ? hr_affine(ctx, t, 1, -s) : hr_affine(ctx, t, -1, s));
    case HR_OP_MUL: return hr_lua_push_result(L, hr_affine(ctx, t, s, 0));
    default:
        if (!a) return luaL_error(L, "div: number / tensor is not supported; use hr.div(hr.full(shape, n), t)");
        return hr_lua_push_result(L, hr_affine(ctx, t, 1 / s, 0));
    }
}
static int mm_add(lua_State *L) { return arith(L, HR_OP_ADD); }
static int mm_sub(lua_State *L) { return arith(L, HR_OP_SUB); }
static int mm_mul(lua_State *L) { return arith(L, HR_OP_MUL); }
static int mm_div(lua_State *L) { return arith(L, HR_OP_DIV); }
static int mm_unm(lua_State *L) { return hr_lua_push_result(L, hr_affine(hr_lua_ctx(L), hr_lua_check_tensor(L, 1), -1, 0)); }

static const luaL_Reg tensor_methods[] = {
    {"requires_grad_", m_requires_grad_}, {"numel", m_numel}, {"dim", m_dim}, {"size", m_size},
    {"is_contiguous", m_is_contiguous}, {"get", m_get}, {"set", m_set}, {"item", m_item}, {"totable", m_totable},
    {"fill_", m_fill_}, {"zero_", m_zero_}, {"copy_", m_copy_}, {"normal_", m_normal_}, {"uniform_", m_uniform_},
    {"orthogonal_", m_orthogonal_},
    {"view", m_view}, {"reshape", m_view}, {"transpose", m_transpose}, {"t", m_t}, {"narrow", m_narrow}, {"slice", m_slice},
    {"contiguous", m_contiguous}, {"clone", m_clone}, {"to", m_to}, {"cpu", m_cpu}, {"cuda", m_cuda}, {"detach", m_detach},
    {"backward", m_backward}, {"zero_grad", m_zero_grad}, {"close", tensor_release}, {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", tensor_release}, {"__close", tensor_release}, {"__tostring", tensor_tostring},
    {"__index", tensor_index}, {"__newindex", tensor_newindex}, {"__len", tensor_len},
    {"__add", mm_add}, {"__sub", mm_sub}, {"__mul", mm_mul}, {"__div", mm_div}, {"__unm", mm_unm}, {NULL, NULL}};

static const luaL_Reg creation_functions[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"randn", l_randn},
    {"rand", l_uniform}, {"uniform", l_uniform}, {"arange", l_arange}, {NULL, NULL}};

void hr_lua_open_tensor(lua_State *L) {
    luaL_newmetatable(L, HR_TENSOR_MT);
    luaL_setfuncs(L, tensor_meta, 0);
    luaL_newlib(L, tensor_methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_setfuncs(L, creation_functions, 0);
}
