-- One small random case per op (and per interesting variant), in f64, for the gradient checks:
-- each case makes its inputs (the float ones require grad) and applies the op.
-- Used by tests/lua/test_gradcheck.lua and the bundled gradcheck.lua script.
local hr = require "hybridrt.core"

local function p(...) return hr.randn(...):requires_grad_() end                -- f64 parameter
local function pos(shape, lo, hi) return hr.uniform(shape, lo, hi, "f64"):requires_grad_() end
local function ids(shape, vocab, dtype)
  local t = hr.zeros(shape, dtype or "i64")
  local n = t:numel()
  local flat = t:view(n)
  for i = 1, n do flat:set(i, (i * 7 + 3) % vocab) end
  return t
end

local D = "f64"
local cases = {
  {"matmul", function() return {p({2, 3, 4}, D), p({2, 4, 5}, D)} end, function(a, b) return hr.matmul(a, b) end},
  {"matmul a^T b^T", function() return {p({2, 4, 3}, D), p({2, 5, 4}, D)} end,
    function(a, b) return hr.matmul(a, b, true, true) end},
  {"matmul a^T, shared b", function() return {p({2, 4, 3}, D), p({4, 5}, D)} end,
    function(a, b) return hr.matmul(a, b, true, false) end},
  {"linear", function() return {p({2, 3, 4}, D), p({5, 4}, D), p({5}, D)} end, hr.linear},
  {"add (broadcast)", function() return {p({2, 3, 4}, D), p({4}, D)} end, hr.add},
  {"sub (broadcast both)", function() return {p({2, 1, 4}, D), p({3, 1}, D)} end, hr.sub},
  {"mul (broadcast)", function() return {p({2, 3, 4}, D), p({3, 1}, D)} end, hr.mul},
  {"div", function() return {p({2, 3}, D), pos({2, 3}, 0.5, 2)} end, hr.div},
  {"scale", function() return {p({3, 4}, D)} end, function(x) return hr.scale(x, -1.5) end},
  {"affine", function() return {p({3, 4}, D)} end, function(x) return hr.affine(x, 0.5, 2) end},
  {"exp", function() return {p({3, 4}, D)} end, hr.exp},
  {"tanh", function() return {p({3, 4}, D)} end, hr.tanh},
  {"sigmoid", function() return {p({3, 4}, D)} end, hr.sigmoid},
  {"silu", function() return {p({3, 4}, D)} end, hr.silu},
  {"gelu", function() return {p({3, 4}, D)} end, hr.gelu},
  {"softplus", function() return {hr.affine(p({3, 4}, D), 10, 0):detach():requires_grad_()} end, hr.softplus},
  {"relu", function() return {p({3, 4}, D)} end, hr.relu},
  {"relu_squared", function() return {p({3, 4}, D)} end, hr.relu_squared},
  {"sum (dim 2)", function() return {p({2, 3, 4}, D)} end, function(x) return hr.sum(x, 2) end},
  {"mean (last, keepdim)", function() return {p({2, 3, 4}, D)} end, function(x) return hr.mean(x, -1, true) end},
  {"layer_norm", function() return {p({2, 3, 8}, D), p({8}, D), p({8}, D)} end,
    function(x, w, b) return hr.layer_norm(x, w, b, 1e-5) end},
  {"rms_norm", function() return {p({2, 3, 8}, D), p({8}, D)} end,
    function(x, w) return hr.rms_norm(x, w, 1e-6) end},
  {"group_norm (per head)", function() return {p({2, 3, 8}, D), p({8}, D), p({8}, D)} end,
    function(x, w, b) return hr.group_norm(x, 2, w, b, 64e-5) end},
  {"gated_rms_norm", function() return {p({2, 3, 8}, D), p({2, 3, 8}, D), p({8}, D)} end,
    function(y, z, w) return hr.gated_rms_norm(y, z, w, 1e-5, 4) end},
  {"embedding", function() return {ids({2, 5}, 7), p({7, 4}, D)} end, hr.embedding},
  {"token_shift", function() return {p({2, 5, 3}, D)} end, hr.token_shift},
  {"token_shift (state)", function() return {p({2, 5, 3}, D), p({2, 3}, D)} end, hr.token_shift},
  {"conv1d_causal W=4", function() return {p({2, 6, 3}, D), p({3, 4}, D), p({3}, D)} end, hr.conv1d_causal},
  {"conv1d_causal W=2 (state)", function() return {p({2, 5, 3}, D), p({3, 2}, D), p({3}, D), p({2, 1, 3}, D)} end,
    hr.conv1d_causal},
  {"concat", function() return {p({2, 3}, D), p({2, 2}, D)} end, function(a, b) return hr.concat({a, b}, 2) end},
  {"split", function() return {p({2, 5}, D)} end, function(x)
    local parts = hr.split(x, {2, 3}, 2)
    return parts[1] * parts[1]:sum() + parts[2]:sum(2, true)
  end},
  {"view + transpose + narrow", function() return {p({2, 3, 4}, D)} end, function(x)
    return x:transpose(1, 3):narrow(2, 2, 2):contiguous():view(-1) * 3
  end},
  {"clone", function() return {p({2, 3}, D)} end, function(x) return x:t():clone() end},
  {"wkv6", function()
    return {p({2, 5, 2, 4}, D), p({2, 5, 2, 4}, D), p({2, 5, 2, 4}, D), pos({2, 5, 2, 4}, -3, 0.5), p({2, 4}, D)}
  end, function(r, k, v, w, u) return hr.wkv6(r, k, v, w, u) end},
  {"wkv6 (state in and out)", function()
    return {p({1, 4, 2, 4}, D), p({1, 4, 2, 4}, D), p({1, 4, 2, 4}, D), pos({1, 4, 2, 4}, -3, 0.5), p({2, 4}, D),
            p({1, 2, 4, 4}, D)}
  end, function(r, k, v, w, u, s0)
    local y, sT = hr.wkv6(r, k, v, w, u, s0)
    return y:sum() + (sT * sT):sum()
  end},
  {"wkv6 N=32", function()
    return {p({1, 3, 1, 32}, D), p({1, 3, 1, 32}, D), p({1, 3, 1, 32}, D), pos({1, 3, 1, 32}, -3, 0.5), p({1, 32}, D)}
  end, function(r, k, v, w, u) return hr.wkv6(r, k, v, w, u) end},
  {"ssd_scan", function()
    return {p({2, 5, 4, 3}, D), pos({2, 5, 4}, 0.01, 0.5), pos({4}, -4, -1), p({2, 5, 2, 3}, D), p({2, 5, 2, 3}, D),
            p({4}, D), p({2, 4, 3, 3}, D)}
  end, function(x, dt, A, B, C, Dk, h0)
    local y, hT = hr.ssd_scan(x, dt, A, B, C, Dk, h0)
    return y:sum() + (hT * hT):sum()
  end},
  {"ssd_scan P=32", function()
    return {p({1, 3, 2, 32}, D), pos({1, 3, 2}, 0.01, 0.5), pos({2}, -4, -1), p({1, 3, 1, 8}, D), p({1, 3, 1, 8}, D)}
  end, function(x, dt, A, B, C) return hr.ssd_scan(x, dt, A, B, C) end},
  {"cross_entropy (ignore_index)", function()
    local t = ids({2, 4}, 6)
    t:set(1, 2, -100)
    return {p({2, 4, 6}, D), t}
  end, function(logits, targets) return hr.cross_entropy(logits, targets) end},
}

-- Each case as {name = ..., inputs = {...} (fresh), fn = ...}; differentiable inputs first-class.
local M = {}
function M.list()
  local out = {}
  for _, c in ipairs(cases) do out[#out + 1] = {name = c[1], make = c[2], fn = c[3]} end
  return out
end

-- Cases at the sizes the GPU kernels are specialized for, for the GPU-vs-CPU suites (tests/gpu,
-- tests/cuda/fake_gpu.lua): WKV6 and the SSD scan at every head size with T = 37 (no multiple of a
-- chunk) and B*H > 1, an SSD scan whose dt gradient sums P*N*T = 262,144 cancelling terms, and a
-- cross-entropy over 300 classes (more than a block of 256) with an ignored target. Too large for
-- finite differences; same form as M.list(), plus sum_len: the length of the longest sum behind an
-- output or gradient element (an f32 result may differ from exact by about that many roundings).
function M.gpu_list()
  local out = {}
  for _, N in ipairs({32, 64, 128}) do
    local B, T, H = 2, 37, 2
    out[#out + 1] = {name = "wkv6 N=" .. N .. " T=37", sum_len = N * T, make = function()
      return {p({B, T, H, N}, D), p({B, T, H, N}, D), p({B, T, H, N}, D), pos({B, T, H, N}, -3, 0.5), p({H, N}, D),
              p({B, H, N, N}, D)}
    end, fn = function(r, k, v, w, u, s0)
      local y, sT = hr.wkv6(r, k, v, w, u, s0)
      return hr.concat({y:view(-1), sT:view(-1)}, 1)
    end}
    out[#out + 1] = {name = "ssd_scan P=" .. N .. " T=37", sum_len = N * 16 * T, make = function()
      return {p({B, T, H, N}, D), pos({B, T, H}, 0.01, 0.5), pos({H}, -4, -1), p({B, T, 1, 16}, D),
              p({B, T, 1, 16}, D), p({H}, D), p({B, H, N, 16}, D)}
    end, fn = function(x, dt, A, Bm, C, Dk, h0)
      local y, hT = hr.ssd_scan(x, dt, A, Bm, C, Dk, h0)
      return hr.concat({y:view(-1), hT:view(-1)}, 1)
    end}
  end
  out[#out + 1] = {name = "ssd_scan P=64 N=64 T=64 (dt gradient: long cancelling sums)", sum_len = 64 * 64 * 64,
    make = function()
      return {p({2, 64, 2, 64}, D), pos({2, 64, 2}, 0.01, 0.5), pos({2}, -4, -1), p({2, 64, 1, 64}, D),
              p({2, 64, 1, 64}, D), p({2}, D)}
    end, fn = function(x, dt, A, Bm, C, Dk) return hr.ssd_scan(x, dt, A, Bm, C, Dk) end}
  out[#out + 1] = {name = "cross_entropy V=300 (rows of 256 threads, ragged)", sum_len = 300, make = function()
    local tg = hr.zeros({3, 7}, "i64")
    for i = 1, 3 do for j = 1, 7 do tg:set(i, j, (i * 37 + j * 11) % 300) end end
    tg:set(2, 3, -100)
    return {p({3, 7, 300}, D), tg}
  end, fn = function(logits, targets) return hr.cross_entropy(logits, targets):view(1) end}
  return out
end

-- Runs every case through hr.gradcheck; returns rows {name, worst, errors}.
function M.run(opts)
  local rows = {}
  for _, c in ipairs(M.list()) do
    local inputs = c.make()
    local checked = {}
    for _, x in ipairs(inputs) do if x.requires_grad then checked[#checked + 1] = x end end
    local function fn(...)
      local args, k = {}, 0
      for i, x in ipairs(inputs) do
        if x.requires_grad then k = k + 1; args[i] = select(k, ...) else args[i] = x end
      end
      return c.fn(table.unpack(args, 1, #inputs))
    end
    local worst, errors = hr.gradcheck(fn, checked, opts)
    rows[#rows + 1] = {name = c.name, worst = worst, errors = errors}
  end
  return rows
end

return M
