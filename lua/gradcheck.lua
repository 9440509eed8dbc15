-- hybridrt run gradcheck.lua [seed=1] [max_probe=64] [ops=true] [h=1e-4]
--
-- Builds a small two-layer hybrid RWKV-6 + Mamba-2 language model in f64 that uses every op of the
-- runtime, runs forward and backward, and compares every parameter's gradient with central finite
-- differences (hr.gradcheck: fourth-order stencil, step h). With ops=true (the default) it first
-- checks each op on its own. Exits non-zero when any relative error exceeds 1e-6.
local hr = require "hybridrt"
local opts = arg and arg.opts or {}
local seed, max_probe = opts.seed or 1, opts.max_probe or 64
local TOL = 1e-6
local failures = 0

local function report(name, err)
  local ok = err < TOL
  if not ok then failures = failures + 1 end
  print(string.format("  %-34s %.2e  %s", name, err, ok and "ok" or "FAIL"))
end

if opts.ops ~= false then
  print("per-op gradient checks (f64, fourth-order central differences, error relative to the gradient's scale):")
  for _, row in ipairs(require("hybridrt.opcases").run({max_probe = max_probe, h = opts.h})) do
    report(row.name, row.worst)
  end
end

-- The model: sizes kept tiny so that finite differences over every parameter stay quick.
hr.manual_seed(seed)
local V, C, B, T = 11, 8, 2, 5          -- vocab, channels, batch, time
local H, N = 2, 4                       -- RWKV heads and head size (C = H * N)
local MH, P, G, S = 2, 4, 1, 3          -- Mamba heads, head dim, groups, state size
local d_inner = MH * P
local params, names = {}, {}
local function param(name, ...)
  local t = hr.randn(...):requires_grad_()
  params[#params + 1], names[#names + 1] = t, name
  return t
end
local function scaled(name, scale, ...)
  local t = hr.affine(hr.randn(...), scale, 0):detach():requires_grad_()
  params[#params + 1], names[#names + 1] = t, name
  return t
end

local emb = scaled("emb.weight", 0.5, {V, C}, "f64")
local layers = {}
for l = 1, 2 do
  local p = "blocks." .. (l - 1) .. "."
  layers[l] = {
    ln0 = param(p .. "ln0.weight", {C}, "f64"),
    maa = scaled(p .. "att.time_maa", 0.3, {C}, "f64"),
    Wr = scaled(p .. "att.receptance.weight", 0.3, {C, C}, "f64"),
    Wk = scaled(p .. "att.key.weight", 0.3, {C, C}, "f64"),
    Wv = scaled(p .. "att.value.weight", 0.3, {C, C}, "f64"),
    Wg = scaled(p .. "att.gate.weight", 0.3, {C, C}, "f64"),
    w1 = scaled(p .. "att.time_decay_w1", 0.3, {C, 4}, "f64"),
    w2 = scaled(p .. "att.time_decay_w2", 0.3, {4, C}, "f64"),
    decay = scaled(p .. "att.time_decay", 0.5, {C}, "f64"),
    u = scaled(p .. "att.time_faaaa", 0.5, {H, N}, "f64"),
    lnx_w = param(p .. "att.ln_x.weight", {C}, "f64"),
    lnx_b = param(p .. "att.ln_x.bias", {C}, "f64"),
    Wo = scaled(p .. "att.output.weight", 0.3, {C, C}, "f64"),
    in_proj = scaled(p .. "mamba.in_proj.weight", 0.3, {2 * d_inner + 2 * G * S + MH, C}, "f64"),
    conv_w = scaled(p .. "mamba.conv1d.weight", 0.5, {d_inner + 2 * G * S, 4}, "f64"),
    conv_b = scaled(p .. "mamba.conv1d.bias", 0.1, {d_inner + 2 * G * S}, "f64"),
    dt_bias = scaled(p .. "mamba.dt_bias", 0.5, {MH}, "f64"),
    A_log = scaled(p .. "mamba.A_log", 0.5, {MH}, "f64"),
    D = param(p .. "mamba.D", {MH}, "f64"),
    norm_w = param(p .. "mamba.norm.weight", {d_inner}, "f64"),
    out_proj = scaled(p .. "mamba.out_proj.weight", 0.3, {C, d_inner}, "f64"),
    gate_w = scaled(p .. "fuse.gate.weight", 0.3, {1, 2 * C}, "f64"),
    gate_b = param(p .. "fuse.gate.bias", {1}, "f64"),
    ln2_w = param(p .. "ln2.weight", {C}, "f64"),
    ln2_b = param(p .. "ln2.bias", {C}, "f64"),
    fc1 = scaled(p .. "ffn.fc1.weight", 0.3, {2 * C, C}, "f64"),
    fc1_b = scaled(p .. "ffn.fc1.bias", 0.1, {2 * C}, "f64"),
    fc2 = scaled(p .. "ffn.fc2.weight", 0.3, {C, 2 * C}, "f64"),
    ffn_scale = param(p .. "ffn.scale", {C}, "f64"),
  }
end
local ln_out = param("ln_out.weight", {C}, "f64")

local ids, targets = hr.zeros({B, T}, "i64"), hr.zeros({B, T}, "i64")
for b = 1, B do for t = 1, T do
  ids:set(b, t, (b * 5 + t * 3) % V)
  targets:set(b, t, (b * 5 + (t + 1) * 3) % V)
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
  local z, xBC, dt = parts[1], parts[2], parts[3]
  xBC = hr.silu(hr.conv1d_causal(xBC, L.conv_w, L.conv_b))
  local xs = hr.split(xBC, {d_inner, G * S, G * S}, 3)
  dt = hr.softplus(dt + L.dt_bias)
  local A = -hr.exp(L.A_log)
  local y = hr.ssd_scan(xs[1]:view(B, T, MH, P), dt, A, xs[2]:view(B, T, G, S), xs[3]:view(B, T, G, S), L.D)
  y = hr.gated_rms_norm(y:view(B, T, d_inner), z, L.norm_w, 1e-5, d_inner // G)
  return hr.linear(y, L.out_proj)
end

local function forward()
  local x = hr.embedding(ids, emb)
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
  local loss = hr.cross_entropy(logits, targets)
  return loss + hr.mean(hr.sum(logits * logits, 3)) * 1e-3   -- a small logit penalty (sum, mean)
end

local loss = forward()
print(string.format("\ntwo-layer hybrid model: %d parameter tensors, loss %.6f", #params, loss:item()))
print("gradients of every parameter against finite differences:")
local worst, errors = hr.gradcheck(forward, params, {max_probe = max_probe, h = opts.h})
for i, name in ipairs(names) do report(name, errors[i]) end
print(string.format("\nworst relative error %.2e over %d parameters (tolerance %g)", worst, #params, TOL))
if failures > 0 then
  error(string.format("%d gradient checks exceeded %g", failures, TOL))
end
