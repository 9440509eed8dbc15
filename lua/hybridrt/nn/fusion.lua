-- How the hybrid block merges its RWKV-6 branch r and its Mamba-2 branch m (both (B, T, C)). Each
-- fusion is a constructor (store, prefix, cfg, opts) -> function(r, m); select one by name.
local hr = require "hybridrt.core"
local init = require("hybridrt.nn.params").init

local M = {}

-- gains: RMSNorm each branch, per-channel gains starting at 0.7 (RWKV) and 0.3 (Mamba).
function M.gains(store, prefix, cfg, opts)
  local p = {}
  store:add(p, "gain_rwkv", prefix .. "gain_rwkv", {cfg.d_model}, init.const(0.7), opts)
  store:add(p, "gain_mamba", prefix .. "gain_mamba", {cfg.d_model}, init.const(0.3), opts)
  return function(r, m)
    return hr.rms_norm(r, p.gain_rwkv, cfg.norm_eps) + hr.rms_norm(m, p.gain_mamba, cfg.norm_eps)
  end
end

-- gate: per position g = sigmoid(Linear(2C -> 1)([r; m])), out = g r + (1 - g) m. The weight starts
-- at zero and the bias at logit(p), so every position starts at exactly g = p (gate_p, 0.3).
function M.gate(store, prefix, cfg, opts)
  local p, gp = {}, cfg.gate_p
  store:add(p, "weight", prefix .. "gate.weight", {1, 2 * cfg.d_model}, init.zeros(), opts)
  store:add(p, "bias", prefix .. "gate.bias", {1}, init.const(math.log(gp / (1 - gp))), opts)
  return function(r, m)
    local g = hr.sigmoid(hr.linear(hr.concat({r, m}, 3), p.weight, p.bias))
    return m + g * (r - m)
  end
end

-- concat: Linear(2C -> C) over [r; m] (PyTorch's default init).
function M.concat(store, prefix, cfg, opts)
  local p, C = {}, cfg.d_model
  store:add(p, "weight", prefix .. "proj.weight", {C, 2 * C}, init.torch_default(2 * C), opts)
  store:add(p, "bias", prefix .. "proj.bias", {C}, init.torch_default(2 * C), opts)
  return function(r, m) return hr.linear(hr.concat({r, m}, 3), p.weight, p.bias) end
end

-- scalar: one learned alpha starting at 0.5, out = alpha r + (1 - alpha) m.
function M.scalar(store, prefix, cfg, opts)
  local p = {}
  store:add(p, "alpha", prefix .. "alpha", {1}, init.const(0.5), opts)
  return function(r, m) return m + p.alpha * (r - m) end
end

M.names = {"gains", "gate", "concat", "scalar"}   -- the default first

return M
