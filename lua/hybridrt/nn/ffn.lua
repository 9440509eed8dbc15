-- The feed-forward half of a block: `gelu` (the source project's C -> 4C -> C MLP, tanh GELU, with
-- biases, PyTorch's default init) or RWKV-6's channel mix (`cmix`, in rwkv6.lua).
local hr = require "hybridrt.core"
local init = require("hybridrt.nn.params").init
local rwkv6 = require "hybridrt.nn.rwkv6"

local M = {}

function M.gelu(store, prefix, cfg, layer_id, opts)
  local p, C = {}, cfg.d_model
  local F = 4 * C
  store:add(p, "fc1_w", prefix .. "fc1.weight", {F, C}, init.torch_default(C), opts)
  store:add(p, "fc1_b", prefix .. "fc1.bias", {F}, init.torch_default(C), opts)
  store:add(p, "fc2_w", prefix .. "fc2.weight", {C, F}, init.torch_default(F), opts)
  store:add(p, "fc2_b", prefix .. "fc2.bias", {C}, init.torch_default(F), opts)
  return {forward = function(x)
    return hr.linear(hr.gelu(hr.linear(x, p.fc1_w, p.fc1_b)), p.fc2_w, p.fc2_b)
  end}
end

M.cmix = rwkv6.channel_mix

M.names = {"gelu", "cmix", "none"}

return M
