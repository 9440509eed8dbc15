-- RWKV-6 ("x060" of RWKV-LM): the time-mix block (data-dependent token-shift lerp through a LoRA,
-- data-dependent decay, WKV6 with a per-head N x N state, per-head group norm, SiLU gate) and the
-- channel-mix block (token shift, squared ReLU, sigmoid receptance). Parameter names and shapes are
-- RWKV-LM's, so a checkpoint maps one-to-one onto its state dict; initialisation follows its
-- __init__ and generate_init_weight (formulas in docs/models.md).
--
-- Every forward takes an optional state table: absent in training (zero initial state, nothing kept);
-- present for recurrent generation, where it carries the last token's input (token shift) and the
-- WKV state between calls, so feeding T tokens at once or one at a time gives the same outputs.
local hr = require "hybridrt.core"
local init = require("hybridrt.nn.params").init

local M = {}

local D_MIX_LORA, D_DECAY_LORA = 32, 64
local LN_X_EPS = 64e-5            -- 1e-5 * head_size_divisor^2, head_size_divisor = 8

-- The last position of x (B, T, C) as a (B, C) tensor outside autograd: the token-shift state.
local function last_step(x)
  local B, T, C = x.shape[1], x.shape[2], x.shape[3]
  return x:narrow(2, T, 1):reshape(B, C):detach()
end
M.last_step = last_step

-- Layer-position ratios of RWKV-LM's init.
local function ratios(layer_id, n_layer)
  local r01 = n_layer > 1 and layer_id / (n_layer - 1) or 0
  return r01, 1 - layer_id / n_layer
end

-- store, prefix ("blocks.3.att."), cfg {d_model, n_layer, head_size}, layer_id (0-based), opts for
-- the store (component, lr_mult).
function M.time_mix(store, prefix, cfg, layer_id, opts)
  local C, N = cfg.d_model, cfg.head_size
  local H = C // N
  local r01, r10 = ratios(layer_id, cfg.n_layer)
  local self, p = {C = C, H = H, N = N}, {}
  self.p = p
  local function add(key, shape, fn, extra)
    local o = {component = opts.component, lr_mult = opts.lr_mult}
    for k, v in pairs(extra or {}) do o[k] = v end
    store:add(p, key, prefix .. key, shape, fn, o)
  end
  local function ddd(power, plus)        -- 1 - ((i / C)^power + plus), per channel
    return init.values(function(i) return 1 - ((i / C) ^ power + (plus or 0)) end)
  end
  add("time_maa_x", {1, 1, C}, ddd(r10))
  add("time_maa_w", {1, 1, C}, ddd(r10))
  add("time_maa_k", {1, 1, C}, ddd(r10))
  add("time_maa_v", {1, 1, C}, ddd(r10, 0.3 * r01))
  add("time_maa_r", {1, 1, C}, ddd(0.5 * r10))
  add("time_maa_g", {1, 1, C}, ddd(0.5 * r10))
  add("time_maa_w1", {C, D_MIX_LORA * 5}, init.zeros())
  add("time_maa_w2", {5, D_MIX_LORA, C}, init.uniform(-0.01, 0.01))
  add("time_decay", {1, 1, C}, init.values(function(n)
    return -6 + 5 * (n / (C - 1)) ^ (0.7 + 1.3 * r01)
  end), {lr_mult = 2 * (opts.lr_mult or 1)})          -- RWKV-LM's layerwise_lr: decay at 2x
  add("time_decay_w1", {C, D_DECAY_LORA}, init.zeros())
  add("time_decay_w2", {D_DECAY_LORA, C}, init.uniform(-0.01, 0.01))
  add("time_faaaa", {H, N}, init.values(function(n)
    local zigzag = ((n + 1) % 3 - 1) * 0.1
    return r01 * (1 - n / (C - 1)) + zigzag
  end))
  add("receptance.weight", {C, C}, init.orthogonal(1))
  add("key.weight", {C, C}, init.orthogonal(0.1))
  add("value.weight", {C, C}, init.orthogonal(1))
  add("output.weight", {C, C}, init.zeros())
  add("gate.weight", {C, C}, init.orthogonal(0.1))
  add("ln_x.weight", {C}, init.const(((1 + layer_id) / cfg.n_layer) ^ 0.7))
  add("ln_x.bias", {C}, init.zeros())

  function self.forward(x, state)
    local B, T = x.shape[1], x.shape[2]
    local xx = hr.token_shift(x, state and state.shift) - x
    local xxx = x + xx * p.time_maa_x
    local lora = hr.split(hr.tanh(hr.matmul(xxx, p.time_maa_w1)), D_MIX_LORA, 3)
    local mix = {}
    for i = 1, 5 do mix[i] = hr.matmul(lora[i], p.time_maa_w2:narrow(1, i, 1):view(D_MIX_LORA, C)) end
    local xw = x + xx * (p.time_maa_w + mix[1])
    local xk = x + xx * (p.time_maa_k + mix[2])
    local xv = x + xx * (p.time_maa_v + mix[3])
    local xr = x + xx * (p.time_maa_r + mix[4])
    local xg = x + xx * (p.time_maa_g + mix[5])
    local r = hr.linear(xr, p["receptance.weight"]):view(B, T, H, N)
    local k = hr.linear(xk, p["key.weight"]):view(B, T, H, N)
    local v = hr.linear(xv, p["value.weight"]):view(B, T, H, N)
    local g = hr.silu(hr.linear(xg, p["gate.weight"]))
    local w = p.time_decay + hr.matmul(hr.tanh(hr.matmul(xw, p.time_decay_w1)), p.time_decay_w2)
    local y, s_out = hr.wkv6(r, k, v, w:view(B, T, H, N), p.time_faaaa, state and state.wkv)
    y = hr.group_norm(y:view(B, T, C), H, p["ln_x.weight"], p["ln_x.bias"], LN_X_EPS)
    if state then
      state.shift, state.wkv = last_step(x), s_out:detach()
    end
    return hr.linear(y * g, p["output.weight"])
  end
  return self
end

-- RWKV-6 channel mix with hidden width dim_ffn (RWKV-LM: int(3.5 * d_model) // 32 * 32).
function M.channel_mix(store, prefix, cfg, layer_id, opts)
  local C, F = cfg.d_model, cfg.dim_ffn
  local _, r10 = ratios(layer_id, cfg.n_layer)
  local self, p = {}, {}
  local function add(key, shape, fn) store:add(p, key, prefix .. key, shape, fn, opts) end
  add("time_maa_k", {1, 1, C}, init.values(function(i) return 1 - (i / C) ^ r10 end))
  add("time_maa_r", {1, 1, C}, init.values(function(i) return 1 - (i / C) ^ r10 end))
  add("key.weight", {F, C}, init.orthogonal(1))
  add("receptance.weight", {C, C}, init.zeros())
  add("value.weight", {C, F}, init.zeros())

  function self.forward(x, state)
    local xx = hr.token_shift(x, state and state.shift) - x
    local xk = x + xx * p.time_maa_k
    local xr = x + xx * p.time_maa_r
    local kv = hr.linear(hr.relu_squared(hr.linear(xk, p["key.weight"])), p["value.weight"])
    if state then state.shift = last_step(x) end
    return hr.sigmoid(hr.linear(xr, p["receptance.weight"])) * kv
  end
  return self
end

function M.default_dim_ffn(d_model) return math.floor(d_model * 3.5) // 32 * 32 end

return M
