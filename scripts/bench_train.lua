-- hybridrt run scripts/bench_train.lua [presets=tiny,small,...] [batch=16] [seq=64] [repeat=3] [threads=N]
--                                     [device=cpu|cuda|auto] [fusion=gains|gate|concat|scalar] (--help)
--
-- Tokens per second of a whole training step (forward, backward and the AdamW update, the graph
-- replayed from one capture as train.lua runs it) for each model preset on this machine. Prints the
-- parameter count, milliseconds per step (median of `repeat` steps after one warm-up), tokens/s and
-- the arithmetic rate of the step (6 x parameters x tokens, a lower bound on the FLOPs: it leaves out
-- the recurrences). Synthetic token ids: the speed does not depend on the data. profile=true also
-- prints where each preset's step spends its time, op by op (hr.profile).
local hr = require "hybridrt"
local model_lib = require "hybridrt.nn.model"
local optim = require "hybridrt.optim"
local options = require "hybridrt.options"

local SPEC = {
  {"presets", "string", table.concat(model_lib.preset_names, ","), "comma-separated presets to measure"},
  {"batch", "integer", 16, "sequences per step"},
  {"seq", "integer", 64, "tokens per sequence"},
  {"repeat", "integer", 3, "timed steps per preset (after one warm-up); the median is printed"},
  {"threads", "integer", nil, "CPU threads (default: all cores)"},
  {"device", "string", "cpu", "cpu | cuda | cuda:N | auto"},
  {"fusion", "string", nil, "the hybrid presets' fusion: gains | gate | concat | scalar (default gains)"},
  {"profile", "boolean", false, "also print each preset's step time op by op"},
}
local o = options.parse(SPEC, arg, "bench_train")
if o.help then
  print(options.help(SPEC, "usage: hybridrt run scripts/bench_train.lua [key=value ...]"))
  return
end
local B, T, reps = o.batch, o.seq, o["repeat"]
if B < 1 or T < 1 then error("bench_train: batch and seq must be positive integers", 0) end
if reps < 1 then error("bench_train: repeat must be a positive integer", 0) end
if o.threads then hr.set_num_threads(o.threads) end
local device, why = hr.use_device(o.device)
if why then print("device: cpu (no usable GPU: " .. why .. ")") end
-- A GPU step is timed to its end: the launches are asynchronous.
local function sync() if device ~= "cpu" then hr.synchronize() end end
local presets = {}
for name in o.presets:gmatch("[^,]+") do
  if not model_lib.presets[name] then
    error(string.format("bench_train: unknown preset '%s' (valid: %s)", name,
                        table.concat(model_lib.preset_names, ", ")), 0)
  end
  presets[#presets + 1] = name
end

local function median(xs) table.sort(xs); return xs[(#xs + 1) // 2] end

print(string.format("hybridrt training-step benchmark: batch %d x seq %d = %d tokens/step, %d threads, f32, %s, " ..
                    "median of %d", B, T, B * T, hr.num_threads(),
                    device == "cpu" and "CPU" or device .. " " .. hr.device_stats().gpu, reps))
print(string.format("%-8s %-7s %10s %12s %12s %12s", "preset", "arch", "params", "ms/step", "tokens/s", "GFLOP/s"))
for _, name in ipairs(presets) do
  hr.manual_seed(1)
  -- fusion= applies to the hybrid presets only (the pure stacks have no fusion)
  local arch = model_lib.presets[name].arch or "hybrid"
  local model = hr.build_model({preset = name, fusion = arch == "hybrid" and o.fusion or nil})
  if device ~= "cpu" then model.store:to(device) end
  local opt = optim.adamw(model.store, {weight_decay = 0.1, clip = 1.0})
  local ids = {}
  for i = 1, B * T do ids[i] = (i * 7919 + 13) % 256 end
  local x = hr.tensor(ids, "i64"):view(B, T):to(device)
  local y = x:clone()
  local graph, loss = hr.capture(function() return model:loss(x, y) end)
  local times = {}
  for r = 0, reps do
    local t0 = hr.clock()
    opt:zero_grad()
    graph:step(loss)
    opt:step(1e-4)
    sync()
    if r > 0 then times[#times + 1] = hr.clock() - t0 end
  end
  if o.profile then
    hr.profile(true)
    for _ = 1, reps do
      opt:zero_grad()
      graph:step(loss)
    end
    local prof = hr.profile(false)
    local total = 0
    for _, op in ipairs(prof.ops) do total = total + op.fwd_s + op.bwd_s end
    total = total + prof.grad_zero_s
    print(string.format("  %-18s %9s %9s %7s", "op (per step)", "fwd ms", "bwd ms", "share"))
    for _, op in ipairs(prof.ops) do
      print(string.format("  %-18s %9.1f %9.1f %6.1f%%", op.name, op.fwd_s / reps * 1e3, op.bwd_s / reps * 1e3,
                          100 * (op.fwd_s + op.bwd_s) / total))
    end
    print(string.format("  %-18s %9s %9.1f %6.1f%%", "(zero grads)", "", prof.grad_zero_s / reps * 1e3,
                        100 * prof.grad_zero_s / total))
  end
  graph:close()
  local t = median(times)
  local n = model:num_parameters()
  print(string.format("%-8s %-7s %10s %12.1f %12.0f %12.1f", name, model.cfg.arch, model_lib.human(n), t * 1e3,
                      B * T / t, 6 * n * B * T / t / 1e9))
  model, opt, graph, loss = nil, nil, nil, nil
  collectgarbage()
end
