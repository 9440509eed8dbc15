-- Mamba-2 (mamba_ssm's Mamba2 mixer): in_proj to [z, xBC, dt]; causal depthwise conv1d (width 4, with
-- bias) and SiLU on xBC; split into x, B, C (ngroups groups); dt = softplus(dt + dt_bias);
-- A = -exp(A_log) per head; the SSD scan with the D skip; gated RMS norm (norm_before_gate = False);
-- out_proj. Names and shapes are mamba_ssm's (conv1d.weight is (conv_dim, 1, width)); initialisation
-- is Mamba2's own plus MixerModel's residual rescale of out_proj (docs/models.md).
--
-- The optional state table carries the last width-1 conv inputs and the SSM state between calls
-- (recurrent generation); without it both start at zero and nothing is kept.
local hr = require "hybridrt.core"
local init = require("hybridrt.nn.params").init

local M = {}

local D_CONV = 4
local DT_MIN, DT_MAX, DT_FLOOR = 0.001, 0.1, 1e-4
local A_MIN, A_MAX = 1, 16
local NORM_EPS = 1e-5

-- cfg: d_model, n_layer, d_state, headdim, expand, ngroups.
function M.mixer(store, prefix, cfg, layer_id, opts)
  local C = cfg.d_model
  local d_inner = cfg.expand * C
  local P, N, G = cfg.headdim, cfg.d_state, cfg.ngroups
  local nheads = d_inner // P
  local conv_dim = d_inner + 2 * G * N
  local d_in_proj = 2 * d_inner + 2 * G * N + nheads
  local self, p = {d_inner = d_inner, nheads = nheads, conv_dim = conv_dim}, {}
  local function add(key, shape, fn, extra)
    local o = {component = opts.component, lr_mult = opts.lr_mult}
    for k, v in pairs(extra or {}) do o[k] = v end
    store:add(p, key, prefix .. key, shape, fn, o)
  end
  add("in_proj.weight", {d_in_proj, C}, init.torch_default(C))
  add("conv1d.weight", {conv_dim, 1, D_CONV}, init.torch_default(D_CONV))
  add("conv1d.bias", {conv_dim}, init.torch_default(D_CONV))
  -- dt log-uniform in [dt_min, dt_max] (floored), stored through the inverse of softplus.
  add("dt_bias", {nheads}, function(t)
    local u = hr.rand({nheads}, "f64")
    t:copy_(hr.tensor((function()
      local vals = {}
      for h = 1, nheads do
        local dt = math.exp(u:get(h) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN))
        dt = math.max(dt, DT_FLOOR)
        vals[h] = dt + math.log(-(math.exp(-dt) - 1))      -- dt + log(-expm1(-dt))
      end
      return vals
    end)(), t.dtype))
  end, {no_decay = true})
  add("A_log", {nheads}, function(t)
    local a = hr.uniform({nheads}, A_MIN, A_MAX, "f64")
    local vals = {}
    for h = 1, nheads do vals[h] = math.log(a:get(h)) end
    t:copy_(hr.tensor(vals, t.dtype))
  end, {no_decay = true})
  add("D", {nheads}, init.ones(), {no_decay = true})
  add("norm.weight", {d_inner}, init.ones())
  -- MixerModel's _init_weights (rescale_prenorm_residual): out_proj / sqrt(n_layer).
  add("out_proj.weight", {C, d_inner}, init.torch_default(d_inner, 1 / math.sqrt(cfg.n_layer)))

  function self.forward(u, state)
    local B, T = u.shape[1], u.shape[2]
    local parts = hr.split(hr.linear(u, p["in_proj.weight"]), {d_inner, conv_dim, nheads}, 3)
    local z, xBC_in, dt = parts[1], parts[2], parts[3]
    local conv_w = p["conv1d.weight"]:view(conv_dim, D_CONV)
    local xBC = hr.silu(hr.conv1d_causal(xBC_in, conv_w, p["conv1d.bias"], state and state.conv))
    local xs = hr.split(xBC, {d_inner, G * N, G * N}, 3)
    dt = hr.softplus(dt + p.dt_bias)
    local A = -hr.exp(p.A_log)
    local y, h_out = hr.ssd_scan(xs[1]:view(B, T, nheads, P), dt, A, xs[2]:view(B, T, G, N),
                                 xs[3]:view(B, T, G, N), p.D, state and state.ssm)
    y = hr.gated_rms_norm(y:view(B, T, d_inner), z, p["norm.weight"], NORM_EPS, d_inner // G)
    if state then
      -- The conv window: the last width-1 inputs, counting those carried in from before.
      local prev = state.conv or hr.zeros({B, D_CONV - 1, conv_dim}, u.dtype, u.device)
      local window = hr.concat({prev, xBC_in:detach()}, 2)
      state.conv = window:narrow(2, window.shape[2] - (D_CONV - 2), D_CONV - 1):contiguous():detach()
      state.ssm = h_out:detach()
    end
    return hr.linear(y, p["out_proj.weight"])
  end
  return self
end

return M
