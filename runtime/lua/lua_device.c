/* Devices from Lua: choosing one (hr.use_device), what the GPU backend has done (hr.device_stats),
 * waiting for it (hr.synchronize), and parsing "cpu" / "cuda" / "cuda:N" for tensor methods. */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/backend.h"
#include "lua/binding.h"

int hr_lua_parse_device(const char *spec, hr_device *dev) {
    if (strcmp(spec, "cpu") == 0) {
        *dev = (hr_device){HR_DEVICE_CPU, 0};
        return 0;
    }
    if (strcmp(spec, "cuda") == 0) {
        *dev = (hr_device){HR_DEVICE_CUDA, 0};
        return 0;
    }
    if (strncmp(spec, "cuda:", 5) == 0 && spec[5] >= '0' && spec[5] <= '9') {
        char *end;
        long index = strtol(spec + 5, &end, 10);
        if (*end == '\0' && index < 1024) {
            *dev = (hr_device){HR_DEVICE_CUDA, (int)index};
            return 0;
        }
    }
    return -1;
}

/* The device a tensor method names at arg, opening the GPU backend when it is named first. */
hr_device hr_lua_check_device(lua_State *L, int arg) {
    const char *spec = luaL_checkstring(L, arg);
    hr_device dev;
    if (hr_lua_parse_device(spec, &dev))
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown device '%s' (cpu, cuda, cuda:N)", spec));
    if (dev.kind == HR_DEVICE_CUDA && hr_cuda_open(hr_lua_ctx(L), dev.index, NULL)) hr_lua_raise(L);
    return dev;
}

/* hr.use_device(spec) -> device, note. spec: auto | cpu | cuda | cuda:N. Opens the GPU for cuda
 * (raising with what is missing: driver, GPU, NVRTC, cuBLAS); auto takes the GPU when it opens and
 * otherwise returns "cpu" and the reason as the note. */
static int l_use_device(lua_State *L) {
    const char *spec = luaL_checkstring(L, 1);
    hr_ctx *ctx = hr_lua_ctx(L);
    if (strcmp(spec, "auto") == 0) {
        if (hr_cuda_open(ctx, 0, NULL) == 0) {
            lua_pushliteral(L, "cuda:0");
            return 1;
        }
        lua_pushliteral(L, "cpu");
        lua_pushstring(L, hr_last_error(ctx));
        return 2;
    }
    hr_device dev;
    if (hr_lua_parse_device(spec, &dev))
        return luaL_error(L, "device must be auto, cpu, cuda or cuda:N (got '%s')", spec);
    if (dev.kind == HR_DEVICE_CUDA && hr_cuda_open(ctx, dev.index, NULL))
        return luaL_error(L, "device=%s: %s", spec, hr_last_error(ctx));
    char name[32];
    lua_pushstring(L, hr_device_str(dev, name, sizeof name));
    return 1;
}

/* hr.device_stats() -> nil on the CPU, else {gpu, target, kernels_cached, kernels_compiled,
 * kernels_rebuilt, kernel_load_s, launches, mem_in_use, mem_peak, mem_reserved, mem_peak_reserved,
 * raw_allocs, cache_warning} */
static int l_device_stats(lua_State *L) {
    hr_cuda_stats st;
    if (hr_cuda_get_stats(hr_lua_ctx(L), &st)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 14);
    hr_lua_set_str(L, "gpu", st.gpu);
    hr_lua_set_str(L, "gpu_name", st.gpu_name);
    hr_lua_set_str(L, "driver", st.driver);
    hr_lua_set_str(L, "nvrtc", st.nvrtc);
    hr_lua_set_str(L, "target", st.target);
    hr_lua_set_int(L, "kernels_cached", st.kernels_cached);
    hr_lua_set_int(L, "kernels_compiled", st.kernels_compiled);
    hr_lua_set_int(L, "kernels_rebuilt", st.kernels_rebuilt);
    lua_pushnumber(L, st.kernel_load_s);
    lua_setfield(L, -2, "kernel_load_s");
    hr_lua_set_int(L, "launches", st.launches);
    hr_lua_set_int(L, "mem_in_use", (lua_Integer)st.mem.in_use);
    hr_lua_set_int(L, "mem_peak", (lua_Integer)st.mem.peak_in_use);
    hr_lua_set_int(L, "mem_reserved", (lua_Integer)st.mem.reserved);
    hr_lua_set_int(L, "mem_peak_reserved", (lua_Integer)st.mem.peak_reserved);
    hr_lua_set_int(L, "raw_allocs", (lua_Integer)st.mem.raw_allocs);
    if (st.cache_warning[0]) hr_lua_set_str(L, "cache_warning", st.cache_warning);
    if (st.tuning_file[0]) hr_lua_set_str(L, "tuning_file", st.tuning_file);
    hr_lua_set_int(L, "tuning_records", st.tuning_records);
    if (st.tuning_warning[0]) hr_lua_set_str(L, "tuning_warning", st.tuning_warning);
    return 1;
}

/* hr.gpu_time(fn, ...) -> ms, results of fn: the GPU time of the work fn enqueues, between two events
 * on the stream (waits for it to finish). */
static int l_gpu_time(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    hr_ctx *ctx = hr_lua_ctx(L);
    if (!ctx->devices[HR_DEVICE_CUDA]) return luaL_error(L, "gpu_time: no GPU is open (hr.use_device(\"cuda\"))");
    if (hr_cuda_timer_start(ctx)) return hr_lua_raise(L);
    int base = lua_gettop(L);
    lua_call(L, base - 1, LUA_MULTRET);
    int results = lua_gettop(L);
    double ms;
    if (hr_cuda_timer_stop(ctx, &ms)) return hr_lua_raise(L);
    lua_pushnumber(L, ms);
    lua_insert(L, 1);
    return results + 1;
}

/* hr.tune_force(kernel, value): every launch of kernel uses its knob at value (the tuner's trials);
 * value 0 returns it to the tuning database's choice. */
static int l_tune_force(lua_State *L) {
    const char *kernel = luaL_checkstring(L, 1);
    int value = hr_lua_check_int_range(L, 2, 0, INT_MAX, "tune_force: the knob's value");
    hr_ctx *ctx = hr_lua_ctx(L);
    if (!ctx->devices[HR_DEVICE_CUDA]) return luaL_error(L, "tune_force: no GPU is open (hr.use_device(\"cuda\"))");
    if (hr_cuda_tune_force(ctx, kernel, value)) return hr_lua_raise(L);
    return 0;
}

/* hr.synchronize(): waits for the GPU's queued work, raising the fault of a kernel that failed. */
static int l_synchronize(lua_State *L) {
    hr_ctx *ctx = hr_lua_ctx(L);
    hr_device_mem *mem = ctx->devices[HR_DEVICE_CUDA];
    if (mem && mem->sync(mem->state, ctx->err, sizeof ctx->err)) return hr_lua_raise(L);
    return 0;
}

static const luaL_Reg device_functions[] = {
    {"use_device", l_use_device}, {"device_stats", l_device_stats}, {"synchronize", l_synchronize},
    {"tune_force", l_tune_force}, {"gpu_time", l_gpu_time}, {NULL, NULL}};

void hr_lua_open_device(lua_State *L) { luaL_setfuncs(L, device_functions, 0); }
