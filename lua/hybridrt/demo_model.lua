-- A small hybrid RWKV-6 + Mamba-2 language model that uses every op of the runtime. It is the fixture
-- of the gradient-check demo (gradcheck.lua, in f64) and of the whole-step CPU benchmark (in f32): a
-- test of the runtime, not the product's model, which lives in the model library with the reference
-- implementations' exact layers and initialisation.
local hr = require "hybridrt.core"

local M = {}

local defaults = {vocab = 11, channels = 8, layers = 2, batch = 2, time = 5, head_size = 4,
                  mamba_head_dim = 4, mamba_state = 3, groups = 1, dtype = "f64", seed = 1}

-- M.new(cfg) -> model with .params, .names (reference-style names), .ids, .targets (B, T) and
-- :forward() -> scalar loss. cfg fields default as `defaults` above; channels must be divisible by
-- head_size, and 2*channels by mamba_head_dim.
function M.new(cfg)
  cfg = setmetatable(cfg or {}, {__index = defaults})
  local V, C, B, T, dt = cfg.vocab, cfg.channels, cfg.batch, cfg.time, cfg.dtype
  local N = cfg.head_size
  local H = C // N
  local P, S, G = cfg.mamba_head_dim, cfg.mamba_state, cfg.groups
  local d_inner = C                                   -- keeps every branch at the model width
  local MH = d_inner // P
  assert(H * N == C and MH * P == d_inner, "demo_model: channels must be divisible by both head sizes")
  hr.manual_seed(cfg.seed)

  local model = {params = {}, names = {}, cfg = cfg}
  local function keep(name, t)
    model.params[#model.params + 1], model.names[#model.names + 1] = t, name
    return t
  end
  local function param(name, shape) return keep(name, hr.randn(shape, dt):requires_grad_()) end
  -- normal * scale * sqrt(8 / fan_in): at 8 channels plain scale, wider layers stay well conditioned
  local function scaled(name, scale, shape, fan_in)
    local s = scale * math.sqrt(8 / (fan_in or 8))
    return keep(name, hr.affine(hr.randn(shape, dt), s, 0):detach():requires_grad_())
  end

  local emb = scaled("emb.weight", 0.5, {V, C})
  local layers = {}
  for l = 1, cfg.layers do
    local p = "blocks." .. (l - 1) .. "."
    local xbc = d_inner + 2 * G * S
    layers[l] = {
      ln0 = param(p .. "ln0.weight", {C}),
      maa = scaled(p .. "att.time_maa", 0.3, {C}),
      Wr = scaled(p .. "att.receptance.weight", 0.3, {C, C}, C),
      Wk = scaled(p .. "att.key.weight", 0.3, {C, C}, C),
      Wv = scaled(p .. "att.value.weight", 0.3, {C, C}, C),
      Wg = scaled(p .. "att.gate.weight", 0.3, {C, C}, C),
      w1 = scaled(p .. "att.time_decay_w1", 0.3, {C, 4}, C),
      w2 = scaled(p .. "att.time_decay_w2", 0.3, {4, C}, 4 * 2),
      decay = scaled(p .. "att.time_decay", 0.5, {C}),
      u = scaled(p .. "att.time_faaaa", 0.5, {H, N}),
      lnx_w = param(p .. "att.ln_x.weight", {C}),
      lnx_b = param(p .. "att.ln_x.bias", {C}),
      Wo = scaled(p .. "att.output.weight", 0.3, {C, C}, C),
      in_proj = scaled(p .. "mamba.in_proj.weight", 0.3, {d_inner + xbc + MH, C}, C),
      conv_w = scaled(p .. "mamba.conv1d.weight", 0.5, {xbc, 4}),
      conv_b = scaled(p .. "mamba.conv1d.bias", 0.1, {xbc}),
      dt_bias = scaled(p .. "mamba.dt_bias", 0.5, {MH}),
      A_log = scaled(p .. "mamba.A_log", 0.5, {MH}),
      D = param(p .. "mamba.D", {MH}),
      norm_w = param(p .. "mamba.norm.weight", {d_inner}),
      out_proj = scaled(p .. "mamba.out_proj.weight", 0.3, {C, d_inner}, d_inner),
      gate_w = scaled(p .. "fuse.gate.weight", 0.3, {1, 2 * C}, C),
      gate_b = param(p .. "fuse.gate.bias", {1}),
      ln2_w = param(p .. "ln2.weight", {C}),
      ln2_b = param(p .. "ln2.bias", {C}),
      fc1 = scaled(p .. "ffn.fc1.weight", 0.3, {2 * C, C}, C),
      fc1_b = scaled(p .. "ffn.fc1.bias", 0.1, {2 * C}),
      fc2 = scaled(p .. "ffn.fc2.weight", 0.3, {C, 2 * C}, 2 * C),
      ffn_scale = param(p .. "ffn.scale", {C}),
    }
  end
  local ln_out = param("ln_out.weight", {C})

  model.ids, model.targets = hr.zeros({B, T}, "i64"), hr.zeros({B, T}, "i64")
  for b = 1, B do for t = 1, T do
    model.ids:set(b, t, (b * 5 + t * 3) % V)
    model.targets:set(b, t, (b * 5 + (t + 1) * 3) % V)
  end end

  local function rwkv(L, x)                               -- RWKV-6 time-mix, reduced
    local xx = hr.token_shift(x) - x
    local xm = x + xx * L.maa                             -- lerp toward the previous token
    local r = hr.linear(xm, L.Wr):view(B, T, H, N)
    local k = hr.linear(xm, L.Wk):view(B, T, H, N)
    local v = hr.linear(xm, L.Wv):view(B, T, H, N)
    local g = hr.silu(hr.linear(xm, L.Wg))
    local w = (hr.matmul(hr.tanh(hr.matmul(xm, L.w1)), L.w2) + L.decay):view(B, T, H, N)
    local y = hr.wkv6(r, k, v, w, L.u)
    y = hr.group_norm(y:view(B, T, C), H, L.lnx_w, L.lnx_b, 64e-5)
    return hr.linear(y * g, L.Wo)
  end

  local function mamba(L, x)                              -- Mamba-2 mixer
    local zxbcdt = hr.linear(x, L.in_proj)
    local parts = hr.split(zxbcdt, {d_inner, d_inner + 2 * G * S, MH}, 3)
    local z, xBC, dtv = parts[1], parts[2], parts[3]
    xBC = hr.silu(hr.conv1d_causal(xBC, L.conv_w, L.conv_b))
    local xs = hr.split(xBC, {d_inner, G * S, G * S}, 3)
    dtv = hr.softplus(dtv + L.dt_bias)
    local A = -hr.exp(L.A_log)
    local y = hr.ssd_scan(xs[1]:view(B, T, MH, P), dtv, A, xs[2]:view(B, T, G, S), xs[3]:view(B, T, G, S), L.D)
    y = hr.gated_rms_norm(y:view(B, T, d_inner), z, L.norm_w, 1e-5, d_inner // G)
    return hr.linear(y, L.out_proj)
  end

  function model.forward()
    local x = hr.embedding(model.ids, emb)
    for _, L in ipairs(layers) do
      local n = hr.rms_norm(x, L.ln0, 1e-6)
      local r, m = rwkv(L, n), mamba(L, n)
      local g = hr.sigmoid(hr.linear(hr.concat({r, m}, 3), L.gate_w, L.gate_b))
      x = x + g * r + (1 - g) * m                          -- the gated fusion
      local h = hr.layer_norm(x, L.ln2_w, L.ln2_b, 1e-5)
      local f = hr.linear(hr.gelu(hr.linear(h, L.fc1, L.fc1_b)), L.fc2)
      local denom = hr.softplus(L.ffn_scale) + 1             -- a learned per-channel divisor, > 1
      x = x + hr.div(hr.relu_squared(f), denom) - hr.relu(-f) / 4   -- relu, relu², div, sub
    end
    x = hr.rms_norm(x, ln_out, 1e-6)
    local logits = hr.matmul(x, emb, false, true)           -- LM head tied to the embedding
    local loss = hr.cross_entropy(logits, model.targets)
    return loss + hr.mean(hr.sum(logits * logits, 3)) * 1e-3   -- a small logit penalty (sum, mean)
  end

  return model
end

return M
