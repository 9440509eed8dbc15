-- hybridrt run scripts/bench_cpu.lua [B=64] [T=64] [C=128] [layers=2] [repeat=5] [threads=N]
--
-- Times each op's forward and backward on the CPU at the default model's training sizes (the `tiny`
-- hybrid: batch 64, sequence 64, 128 channels, RWKV head size 32, Mamba-2 head dim 64 and state 64),
-- and prints milliseconds, bytes moved per second and, for products, GFLOP/s. Then times a whole
-- training step (forward + backward) of a `layers`-layer hybrid model (lua/hybridrt/demo_model.lua)
-- run eagerly (the graph rebuilt from Lua every step) and replayed from one capture, in tokens/s.
-- Median of `repeat` runs after one warm-up. The figures are for comparing changes on one machine.
local hr = require "hybridrt"
local o = arg.opts
local B, T, C, reps = o.B or 64, o.T or 64, o.C or 128, o["repeat"] or 5
if o.threads then hr.set_num_threads(o.threads) end
local H, N = C // 32, 32                        -- RWKV heads of size 32
local d_inner, MP, MN = 2 * C, 64, 64           -- Mamba-2: expand 2, head dim 64, state 64
local MH = d_inner // MP
local rows, V = B * T, 256
hr.manual_seed(1)

local function median(xs) table.sort(xs); return xs[(#xs + 1) // 2] end

-- Times graph:forward() and graph:backward(loss) of sum(f(inputs) * c); returns ms.
local function time_op(f, inputs)
  local g, loss = hr.capture(function()
    local y = f(table.unpack(inputs))
    return hr.sum(y * hr.no_grad(function() return hr.randn(y.shape) end))
  end)
  local fwd, bwd = {}, {}
  for r = 0, reps do
    local t0 = hr.clock()
    g:forward()
    local t1 = hr.clock()
    for _, x in ipairs(inputs) do if x.requires_grad then x:zero_grad() end end
    g:backward(loss)
    local t2 = hr.clock()
    if r > 0 then fwd[#fwd + 1], bwd[#bwd + 1] = (t1 - t0) * 1e3, (t2 - t1) * 1e3 end
  end
  g:close()
  return median(fwd), median(bwd)
end

local function p(shape) return hr.randn(shape):requires_grad_() end
local function numel(shapes) local n = 0 for _, s in ipairs(shapes) do local k = 1 for _, d in ipairs(s) do k = k * d end n = n + k end return n end

local cases = {
  {"linear (x·Wᵀ, C→4C)", {{rows, C}, {4 * C, C}}, function(x, w) return hr.linear(x, w) end,
    2 * rows * C * 4 * C},
  {"layer_norm", {{rows, C}, {C}, {C}}, function(x, w, b) return hr.layer_norm(x, w, b) end},
  {"rms_norm", {{rows, C}, {C}}, function(x, w) return hr.rms_norm(x, w) end},
  {"group_norm (heads)", {{rows, C}, {C}, {C}}, function(x, w, b) return hr.group_norm(x, H, w, b, 64e-5) end},
  {"gated_rms_norm", {{rows, d_inner}, {rows, d_inner}, {d_inner}},
    function(y, z, w) return hr.gated_rms_norm(y, z, w) end},
  {"gelu", {{rows, 4 * C}}, hr.gelu},
  {"silu", {{rows, 4 * C}}, hr.silu},
  {"add (bias broadcast)", {{rows, 4 * C}, {4 * C}}, hr.add},
  {"mul (same shape)", {{rows, 4 * C}, {rows, 4 * C}}, hr.mul},
  {"token_shift", {{B, T, C}}, hr.token_shift},
  {"conv1d_causal W=4", {{B, T, d_inner + 2 * MN}, {d_inner + 2 * MN, 4}, {d_inner + 2 * MN}}, hr.conv1d_causal},
  {"wkv6 N=32", {{B, T, H, N}, {B, T, H, N}, {B, T, H, N}, {B, T, H, N}, {H, N}},
    function(r, k, v, w, u) return (hr.wkv6(r, k, v, hr.affine(w, 0.5, -1.5), u)) end, 4 * B * T * H * N * N},
  {"ssd_scan P=64 N=64", {{B, T, MH, MP}, {B, T, MH}, {MH}, {B, T, 1, MN}, {B, T, 1, MN}, {MH}},
    function(x, dt, A, Bm, Cm, D)
      return (hr.ssd_scan(x, hr.softplus(dt), -hr.exp(A), Bm, Cm, D))
    end, 4 * B * T * MH * MP * MN},
  {"cross_entropy V=256", {{rows, V}}, function(l) return hr.cross_entropy(l, hr.zeros({rows}, "i64")) end},
}

print(string.format("hybridrt CPU op benchmark: B=%d T=%d C=%d, %d threads, f32, median of %d", B, T, C,
                    hr.num_threads(), reps))
print(string.format("%-22s %10s %10s %12s %10s", "op", "fwd ms", "bwd ms", "fwd GB/s", "fwd GFLOP/s"))
for _, c in ipairs(cases) do
  local name, shapes, f, flops = c[1], c[2], c[3], c[4]
  local inputs = {}
  for i, s in ipairs(shapes) do inputs[i] = p(s) end
  local fwd, bwd = time_op(f, inputs)
  local bytes = 4 * 2 * numel(shapes)              -- read the inputs, write an output of similar size
  print(string.format("%-22s %10.3f %10.3f %12.2f %10s", name, fwd, bwd, bytes / fwd / 1e6,
                      flops and string.format("%.2f", flops / fwd / 1e6) or "-"))
end

-- A whole step: eager (Lua builds the graph every step) against one capture replayed.
local model = require("hybridrt.demo_model").new({vocab = V, channels = C, layers = o.layers or 2, batch = B,
  time = T, head_size = N, mamba_head_dim = MP, mamba_state = MN, dtype = "f32"})
local function zero_grads() for _, p in ipairs(model.params) do p:zero_grad() end end
local eager, replay = {}, {}
for r = 0, reps do
  zero_grads()
  local t0 = hr.clock()
  model.forward():backward()
  if r > 0 then eager[#eager + 1] = hr.clock() - t0 end
end
local graph, loss = hr.capture(model.forward)
for r = 0, reps do
  zero_grads()
  local t0 = hr.clock()
  graph:step(loss)
  if r > 0 then replay[#replay + 1] = hr.clock() - t0 end
end
local te, tr = median(eager), median(replay)
print(string.format("\nwhole step, %d-layer hybrid (%d parameter tensors, %d ops recorded), %d tokens:",
                    model.cfg.layers, #model.params, graph:size(), rows))
print(string.format("  eager     %8.1f ms  %9.0f tokens/s", te * 1e3, rows / te))
print(string.format("  replayed  %8.1f ms  %9.0f tokens/s", tr * 1e3, rows / tr))
