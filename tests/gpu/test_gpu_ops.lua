-- The GPU against the CPU reference, op by op: every case of hybridrt.opcases (each op and its
-- variants, forward and backward) on random inputs in f64 and f32, the sequence kernels at every head
-- size with T not a multiple of any chunk, and a training step of the tiny preset. Skips, saying why,
-- where no GPU opens (CI); HYBRIDRT_REQUIRE_GPU=1 turns the skip into a failure.
--   cd tests/lua && hybridrt run ../gpu/test_gpu_ops.lua      (tests/lua holds the harness)
local t = require "harness"
local hr = require "hybridrt"
local opcases = require "hybridrt.opcases"

local ok, dev, why = pcall(hr.use_device, "auto")
if not ok or dev == "cpu" then
  local reason = ok and why or tostring(dev)
  if os.getenv("HYBRIDRT_REQUIRE_GPU") == "1" then
    t.check(false, "HYBRIDRT_REQUIRE_GPU=1 but no GPU opened: " .. tostring(reason))
    return t.finish("gpu.ops")
  end
  print("gpu.ops: SKIPPED: no usable GPU (" .. tostring(reason) .. ")")
  return t.finish("gpu.ops")
end
print("gpu.ops on " .. dev .. ": " .. hr.device_stats().gpu)

-- Stated tolerances, elementwise against a reference r:
--   f64: |gpu - r| <= atol + rtol |r|, r the CPU's f64 result (sums in another order differ by a few
--        roundings of 1e-16);
--   f32: |x - r| <= atol + rtol |r| + eps32 * L * rms(r), r the CPU's f64 result on the same (f32)
--        inputs, L the length of the longest sum behind the element (the case's sum_len, else 64):
--        a sum of L terms rounded in f32 in any order may be off by about L roundings of its scale,
--        and the CPU's f32 result must meet the same bound as the GPU's (a check of the bound).
--        Comparing f32 with f32 would fail a kernel for summing in a better order than the CPU.
local TOL = {f64 = {rtol = 1e-9, atol = 1e-11}, f32 = {rtol = 1e-4, atol = 1e-5}}
local EPS32 = 2 ^ -24

local function values(x) return x:cpu():to("f64"):contiguous():view(-1):totable() end

-- Largest violation of the tolerance of `got` against the reference `ref` (any devices), 0 when within
-- it, and where. sum_len: nil for the f64 bound, else the f32 bound with that sum length.
local function compare(got, ref, tol, sum_len)
  local a, b = values(got), values(ref)
  if #a ~= #b then return math.huge, "sizes differ" end
  local slack = 0
  if sum_len then
    local sq = 0
    for i = 1, #b do sq = sq + b[i] * b[i] end
    slack = EPS32 * sum_len * math.sqrt(sq / math.max(#b, 1))
  end
  local worst, at = 0, nil
  for i = 1, #a do
    local excess = math.abs(a[i] - b[i]) - (tol.atol + tol.rtol * math.abs(b[i]) + slack)
    if excess ~= excess then excess = math.huge end
    if excess > worst then worst, at = excess, string.format("element %d: %.10g, reference %.10g", i, a[i], b[i]) end
  end
  return worst, at
end

-- Runs case c on inputs `xs` (already on their device): the output, a fixed random weighting of it
-- reduced to a scalar, its backward; returns the output and the input gradients.
local function run_case(c, xs, weight_seed)
  for _, x in ipairs(xs) do if x.requires_grad then x.grad = nil end end
  local out = c.fn(table.unpack(xs, 1, #xs))
  hr.manual_seed(weight_seed)
  local w = hr.randn(out.shape, out.dtype):to(out.device)
  local loss = hr.sum(hr.mul(out, w):view(-1), 1)
  loss:backward()
  local grads = {}
  for i, x in ipairs(xs) do grads[i] = x.requires_grad and x.grad or false end
  return out, grads
end

-- The same inputs for both devices: made once on the CPU (in f64), cast, then copied.
local function inputs_for(c, dtype, device)
  local made = c.make()
  local xs = {}
  for i, x in ipairs(made) do
    local y = x
    if x.dtype == "f64" and dtype ~= "f64" then y = x:detach():to(dtype) end
    y = y:detach():to(device)
    if x.requires_grad then y:requires_grad_() end
    xs[i] = y
  end
  return xs
end

-- The f64 reference of an f32 case: the same f32 inputs, widened, on the CPU.
local function reference_inputs(xs)
  local out = {}
  for i, x in ipairs(xs) do
    local y = x:detach()
    if y.dtype == "f32" then y = y:to("f64") end
    if x.requires_grad then y:requires_grad_() end
    out[i] = y
  end
  return out
end

local refused = 0 -- cases the GPU refuses by design (head sizes without kernels)
local function check_case(c, dtype, seed)
  local tol = TOL[dtype]
  local sum_len = dtype == "f32" and (c.sum_len or 64) or nil
  hr.manual_seed(seed)
  local cpu_in = inputs_for(c, dtype, "cpu")
  hr.manual_seed(seed)
  local gpu_in = inputs_for(c, dtype, dev)
  local okc, cpu_out, cpu_grads = pcall(run_case, c, cpu_in, seed + 1)
  local okg, gpu_out, gpu_grads = pcall(run_case, c, gpu_in, seed + 1)
  if not okc then return t.check(false, c.name .. " " .. dtype .. ": the CPU failed: " .. tostring(cpu_out)) end
  local ref_out, ref_grads = cpu_out, cpu_grads
  if sum_len then
    local okr, r_out, r_grads = pcall(run_case, c, reference_inputs(cpu_in), seed + 1)
    if not okr then return t.check(false, c.name .. ": the f64 reference failed: " .. tostring(r_out)) end
    ref_out, ref_grads = r_out, r_grads
    local w, at = compare(cpu_out, ref_out, tol, sum_len)
    t.check(w == 0, string.format("%s f32: the CPU's own forward misses the f32 bound at %s", c.name, tostring(at)))
    for i, g in ipairs(cpu_grads) do
      if g then
        local w2, at2 = compare(g, ref_grads[i], tol, sum_len)
        t.check(w2 == 0, string.format("%s f32: the CPU's own gradient %d misses the f32 bound at %s", c.name, i,
                                       tostring(at2)))
      end
    end
  end
  if not okg then
    -- the sequence kernels exist for head sizes 32, 64, 128 only: smaller ones are refused up front
    if tostring(gpu_out):find("is not one of 32, 64, 128", 1, true) then
      refused = refused + 1
      return
    end
    return t.check(false, c.name .. " " .. dtype .. ": the GPU failed: " .. tostring(gpu_out))
  end
  t.check(gpu_out.device == dev, c.name .. ": output on " .. gpu_out.device)
  local worst, at = compare(gpu_out, ref_out, tol, sum_len)
  t.check(worst == 0, string.format("%s %s forward: beyond tolerance at %s", c.name, dtype, tostring(at)))
  for i, g in ipairs(ref_grads) do
    if g then
      local gg = gpu_grads[i]
      if not gg then t.check(false, string.format("%s %s: no GPU gradient for input %d", c.name, dtype, i))
      else
        local w2, at2 = compare(gg, g, tol, sum_len)
        t.check(w2 == 0, string.format("%s %s backward, input %d: beyond tolerance at %s", c.name, dtype, i,
                                       tostring(at2)))
      end
    end
  end
end

-- ---- every op case, f64 and f32 ----
for k, c in ipairs(opcases.list()) do
  check_case(c, "f64", 1000 + k)
  check_case(c, "f32", 2000 + k)
end

-- ---- the sequence kernels at every head size, T = 37 (not a multiple of 16 or 32), B*H > 1 ----
local big = opcases.gpu_list()
for k, c in ipairs(big) do
  check_case(c, "f64", 3000 + k)
  check_case(c, "f32", 4000 + k)
end

-- ---- casts, the sum of squares and AdamW: the ops outside the autograd cases ----
-- Casts between the float dtypes round alike on both devices: equal bit for bit (bf16 rounds to
-- nearest even, NaN stays NaN).
local function same_bits(a, b)
  local x, y = a:cpu():contiguous():view(-1):totable(), b:cpu():contiguous():view(-1):totable()
  if #x ~= #y then return false, "sizes differ" end
  for i = 1, #x do
    if x[i] ~= y[i] and not (x[i] ~= x[i] and y[i] ~= y[i]) then
      return false, string.format("element %d: %.17g vs %.17g", i, x[i], y[i])
    end
  end
  return true
end
hr.manual_seed(5)
local src = hr.randn({3, 129}, "f64")
src:set(1, 1, 0 / 0)
src:set(1, 2, 1e300)
src:set(1, 3, -1e-300)
for _, path in ipairs({{"f64", "f32"}, {"f64", "bf16"}, {"f32", "bf16"}, {"bf16", "f32"}, {"bf16", "f64"},
                       {"f32", "f64"}}) do
  local from = src:to(path[1])
  local okb, at = same_bits(from:to(dev):to(path[2]), from:to(path[2]))
  t.check(okb, string.format("cast %s -> %s: the GPU's bits differ from the CPU's at %s", path[1], path[2],
                             tostring(at)))
end
-- The sum of squares behind the gradient norm: the same bits on both devices (each product and sum
-- rounded on its own on either side: kernel_src/optim.cu, runtime/cpu/optim.c), at sizes spanning
-- one and many of its blocks.
for _, n in ipairs({1, 1000, 70001}) do
  for _, dt in ipairs({"f32", "f64"}) do
    local x = hr.randn({n}, dt)
    local c, g = hr.sum_squares(x), hr.sum_squares(x:to(dev))
    t.check(c == g, string.format("sum_squares of %d %s: GPU %.17g, CPU %.17g", n, dt, g, c))
  end
end
-- One AdamW update in place, with weight decay and a gradient scale: the parameters and both
-- moments against the CPU's (rel 1e-6 in f32: the GPU may fuse a multiply-add the CPU rounds twice).
for _, dt in ipairs({"f32", "f64"}) do
  local tol = dt == "f64" and {rtol = 1e-12, atol = 1e-15} or {rtol = 1e-6, atol = 1e-9}
  local function state() return {hr.randn({1000}, dt), hr.randn({1000}, dt), hr.randn({1000}, dt),
                                 hr.uniform({1000}, 0, 1, dt)} end
  hr.manual_seed(6)
  local cpu_s = state()
  hr.manual_seed(6)
  local gpu_s = state()
  for i = 1, 4 do gpu_s[i] = gpu_s[i]:to(dev) end
  local opts = {lr = 3e-3, step = 7, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, grad_scale = 0.5}
  hr.adamw_(cpu_s[1], cpu_s[2], cpu_s[3], cpu_s[4], opts)
  hr.adamw_(gpu_s[1], gpu_s[2], gpu_s[3], gpu_s[4], opts)
  for i, what in ipairs({"parameters", "gradient (unchanged)", "first moment", "second moment"}) do
    local w, at = compare(gpu_s[i], cpu_s[i], tol)
    t.check(w == 0, string.format("adamw_ %s: %s beyond tolerance at %s", dt, what, tostring(at)))
  end
end

-- ---- a bad id on the GPU is refused like on the CPU ----
t.raises(function()
  hr.embedding(hr.tensor({{1, 9}}, "i64"):to(dev), hr.randn({4, 3}):to(dev))
end, "embedding", "outside [0, 4)")
t.raises(function()
  hr.embedding(hr.tensor({{1, -1}}, "i64"):to(dev), hr.randn({4, 3}):to(dev))
end, "embedding", "id -1 at position 2 is outside [0, 4)")

-- ---- one training step of the tiny preset: the same loss on both devices ----
local nn = require "hybridrt.nn.model"
local function step_loss(device)
  hr.manual_seed(7)
  local model = nn.build({preset = "tiny", arch = "hybrid", vocab_size = 256})
  if device ~= "cpu" then model.store:to(device) end
  local x, y = hr.zeros({2, 32}, "i64"), hr.zeros({2, 32}, "i64")
  for b = 1, 2 do for i = 1, 32 do x:set(b, i, (b * 31 + i * 7) % 256); y:set(b, i, (b * 17 + i * 5) % 256) end end
  local loss = model:loss(x:to(device), y:to(device))
  loss:backward()
  return loss:item(), math.sqrt(hr.sum_squares(model.store.grad))
end
local okc, cpu_loss, cpu_gn = pcall(step_loss, "cpu")
local okg, gpu_loss, gpu_gn = pcall(step_loss, dev)
t.check(okc, "tiny step on the CPU: " .. tostring(cpu_loss))
t.check(okg, "tiny step on the GPU: " .. tostring(gpu_loss))
if okc and okg then
  t.near(gpu_loss, cpu_loss, 1e-4 * math.abs(cpu_loss), "tiny preset: loss GPU vs CPU")
  t.near(gpu_gn, cpu_gn, 1e-3 * cpu_gn, "tiny preset: gradient norm GPU vs CPU")
end

-- ---- 100 steps lower the loss on the GPU as on the CPU ----
local optim = require "hybridrt.optim"
local data_lib = require "hybridrt.data"
local function train_100(device)
  hr.manual_seed(11)
  local model = nn.build({preset = "tiny", arch = "hybrid", vocab_size = 256, n_layer = 2})
  if device ~= "cpu" then model.store:to(device) end
  local opt = optim.adamw(model.store, {weight_decay = 0.1, clip = 1.0})
  local data = data_lib.open(data_lib.default_path(), {seq = 32})
  local x, y = hr.zeros({4, 32}, "i64", device), hr.zeros({4, 32}, "i64", device)
  local first, last
  for step = 1, 100 do
    opt:zero_grad()
    data:train_batch(x, y, 5, step, 1)
    local loss = model:loss(x, y)
    loss:backward()
    opt:step(optim.lr_at(step, 100, 3e-3, 3e-4, 10))
    last = loss:item()
    first = first or last
  end
  data:close()
  return first, last
end
local ok1, c_first, c_last = pcall(train_100, "cpu")
local ok2, g_first, g_last = pcall(train_100, dev)
t.check(ok1 and ok2, "100 steps: " .. tostring(ok1 and g_first or c_first))
if ok1 and ok2 then
  print(string.format("gpu.ops: 100 steps: CPU loss %.4f -> %.4f, GPU %.4f -> %.4f", c_first, c_last, g_first, g_last))
  t.near(g_first, c_first, 1e-4 * c_first, "100 steps: the first loss matches")
  t.check(g_last < g_first - 0.5, "100 steps lower the GPU loss")
  t.near(g_last, c_last, 0.05 * c_last, "100 steps: the GPU ends where the CPU does (within 5%)")
end

local st = hr.device_stats()
print(string.format("gpu.ops: %d kernels cached, %d compiled (%.1f s loading), %d launches, peak %.1f MiB; " ..
                    "%d cases refused as designed (head sizes without kernels)", st.kernels_cached,
                    st.kernels_compiled, st.kernel_load_s, st.launches, st.mem_peak / 2 ^ 20, refused))
return t.finish("gpu.ops")
