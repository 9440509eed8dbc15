/* Optimizer primitives for the Lua optimizers (lua/hybridrt/optim): hr.adamw_ and hr.sum_squares. */
#include <lauxlib.h>

#include "core/optim.h"
#include "lua/binding.h"

static double opt_number(lua_State *L, int t, const char *key, double def) {
    lua_getfield(L, t, key);
    double v = lua_isnil(L, -1) ? def : 0;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "adamw_: option '%s' must be a number", key);
    }
    lua_pop(L, 1);
    return v;
}

/* hr.adamw_(p, g, m, v, {lr =, step =, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0,
 * grad_scale = 1}): one AdamW update in place on p, m and v. */
static int l_adamw(lua_State *L) {
    hr_tensor *p = hr_lua_check_tensor(L, 1), *g = hr_lua_check_tensor(L, 2);
    hr_tensor *m = hr_lua_check_tensor(L, 3), *v = hr_lua_check_tensor(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    lua_getfield(L, 5, "lr");
    if (!lua_isnumber(L, -1)) return luaL_error(L, "adamw_: option 'lr' (a number) is required");
    lua_getfield(L, 5, "step");
    if (!lua_isinteger(L, -1)) return luaL_error(L, "adamw_: option 'step' (an integer >= 1) is required");
    lua_pop(L, 2);
    hr_adamw_params hp = {
        .lr = opt_number(L, 5, "lr", 0), .beta1 = opt_number(L, 5, "beta1", 0.9),
        .beta2 = opt_number(L, 5, "beta2", 0.95), .eps = opt_number(L, 5, "eps", 1e-8),
        .weight_decay = opt_number(L, 5, "weight_decay", 0), .grad_scale = opt_number(L, 5, "grad_scale", 1),
        .step = (int64_t)opt_number(L, 5, "step", 0)};
    if (hr_adamw_update(hr_lua_ctx(L), p, g, m, v, &hp)) return hr_lua_raise(L);
    return 0;
}

/* hr.sum_squares(t) -> sum of t^2 as a Lua number (accumulated in double, thread-count independent). */
static int l_sum_squares(lua_State *L) {
    double s;
    if (hr_sum_squares(hr_lua_ctx(L), hr_lua_check_tensor(L, 1), &s)) return hr_lua_raise(L);
    lua_pushnumber(L, s);
    return 1;
}

static const luaL_Reg optim_functions[] = {{"adamw_", l_adamw}, {"sum_squares", l_sum_squares}, {NULL, NULL}};

void hr_lua_open_optim(lua_State *L) { luaL_setfuncs(L, optim_functions, 0); }
