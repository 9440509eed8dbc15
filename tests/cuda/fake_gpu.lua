-- The Lua half of tests/cuda/test_fake_gpu.c: run inside its Lua state, where the CUDA backend is
-- already open on a fake driver that keeps device memory on the host and does not run kernels (every
-- launch is checked against the kernel's PTX instead) and a fake cuBLAS that really multiplies.
-- So values are garbage except through matmul; what counts is that everything runs, launches
-- correctly, and gives its memory back. Returns {checks = n, failures = {...}, refused = n}.
local hr = require "hybridrt"
local opcases = require "hybridrt.opcases"
local nn = require "hybridrt.nn.model"
local optim = require "hybridrt.optim"

local quick = os.getenv("HR_TEST_QUICK") == "1" -- under valgrind: a one-layer model
local checks, failures, refused = 0, {}, 0
local function check(cond, msg)
  checks = checks + 1
  if not cond then failures[#failures + 1] = msg end
end

local dev = hr.use_device("cuda")
check(dev == "cuda:0", "use_device('cuda') on the open fake GPU gave " .. tostring(dev))

-- The same inputs on either device: made on the CPU in f64 (seeded), cast, copied, and the float ones
-- made to require grad again (as tests/gpu/test_gpu_ops.lua does).
local function inputs_for(c, dtype, device, seed)
  hr.manual_seed(seed)
  local xs = {}
  for i, x in ipairs(c.make()) do
    local y = x:detach()
    if x.dtype == "f64" and dtype ~= "f64" then y = y:to(dtype) end
    y = y:to(device)
    if x.requires_grad then y:requires_grad_() end
    xs[i] = y
  end
  return xs
end

-- The op, a fixed random weighting of its output summed to a scalar, and its backward.
local function run_case(c, xs, seed)
  local out = c.fn(table.unpack(xs, 1, #xs))
  hr.manual_seed(seed)
  local w = hr.randn(out.shape, out.dtype):to(out.device)
  hr.sum(hr.mul(out, w):view(-1), 1):backward()
  return out
end

local function try_case(c, dtype, seed)
  local label = c.name .. " " .. dtype
  local xs = inputs_for(c, dtype, dev, seed)
  local ok, out = pcall(run_case, c, xs, seed + 1)
  if not ok then
    -- the sequence kernels exist for head sizes 32, 64, 128 only: smaller ones are refused up front
    if tostring(out):find("is not one of 32, 64, 128", 1, true) then
      refused = refused + 1
    else
      check(false, label .. ": " .. tostring(out))
    end
    return
  end
  check(out.device == dev, label .. ": output on " .. out.device)
  for i, x in ipairs(xs) do
    if x.requires_grad then
      check(x.grad ~= nil and x.grad.device == dev, label .. ": no gradient on the GPU for input " .. i)
    end
  end
end

-- |a - b| <= tol * max(1, |b|) elementwise; returns the first element beyond it, or nil.
local function beyond(a, b, tol)
  a, b = a:cpu():to("f64"):contiguous():view(-1):totable(), b:cpu():to("f64"):contiguous():view(-1):totable()
  if #a ~= #b then return "sizes differ" end
  for i = 1, #a do
    if not (math.abs(a[i] - b[i]) <= tol * math.max(1, math.abs(b[i]))) then
      return string.format("element %d: gpu %.17g cpu %.17g", i, a[i], b[i])
    end
  end
end

-- Matmul runs for real on the fake cuBLAS: its forward, and the input gradients of a loss that is
-- itself a matmul (out viewed as a row times a column w), match the CPU. No kernel is on that path
-- (the reshapes share storage, the seed gradient is an upload), so every number is computed.
local TOL = {f64 = 1e-12, f32 = 1e-5}
local function check_matmul(c, dtype, seed)
  local function through(device)
    local xs = inputs_for(c, dtype, device, seed)
    local out = c.fn(table.unpack(xs, 1, #xs))
    local forward = out:cpu()
    hr.manual_seed(seed + 1)
    local w = hr.randn({out:numel(), 1}, dtype):to(device)
    hr.matmul(out:view(1, -1), w):backward()
    return forward, xs
  end
  local label = c.name .. " " .. dtype
  local ok, gpu_out, gpu_in = pcall(through, dev)
  if not ok then return check(false, label .. ": " .. tostring(gpu_out)) end
  local cpu_out, cpu_in = through("cpu")
  local bad = beyond(gpu_out, cpu_out, TOL[dtype])
  check(not bad, label .. " forward differs from the CPU at " .. tostring(bad))
  for i, x in ipairs(cpu_in) do
    if x.requires_grad then
      local g = gpu_in[i].grad
      if g then bad = beyond(g, x.grad, TOL[dtype]) else bad = "no gradient" end
      check(not bad, string.format("%s gradient of input %d differs from the CPU at %s", label, i, tostring(bad)))
    end
  end
end

-- ---- every op case, f64 and f32 ----
for k, c in ipairs(opcases.list()) do
  try_case(c, "f64", 1000 + k)
  try_case(c, "f32", 2000 + k)
  if c.name:find("^matmul") then
    check_matmul(c, "f64", 1000 + k)
    check_matmul(c, "f32", 2000 + k)
  end
end
-- a batch over one shared B, stored either way (linear's product): core folds it into one 2-D product
local function p(shape) return hr.randn(shape, "f64"):requires_grad_() end
local shared = {
  {name = "matmul, shared b", make = function() return {p({2, 3, 4}), p({4, 5})} end, fn = hr.matmul},
  {name = "matmul, shared b^T", make = function() return {p({2, 3, 4}), p({5, 4})} end,
    fn = function(a, b) return hr.matmul(a, b, false, true) end},
}
for k, c in ipairs(shared) do
  check_matmul(c, "f64", 1500 + k)
  check_matmul(c, "f32", 2500 + k)
end

-- ---- the sequence kernels at every head size, T = 37 (no multiple of a chunk), B*H > 1; a ragged CE ----
local big = opcases.gpu_list()
-- casts on the device: each direction's backward takes its own path through scratch
big[#big + 1] = {name = "cast to the other float type and back", make = function() return {p({3, 5})} end,
  fn = function(x) return x:to(x.dtype == "f64" and "f32" or "f64"):t():to(x.dtype) end}
for k, c in ipairs(big) do
  try_case(c, "f64", 3000 + k)
  try_case(c, "f32", 4000 + k)
end
-- copies of the integer dtypes and casts through bf16, forward only (bf16 has no GPU gradient)
for _, dtype in ipairs({"i64", "i32", "u8", "f32", "f64"}) do
  local ok, err = pcall(function()
    local t = hr.zeros({3, 4}, dtype):to(dev):t():contiguous()
    if dtype:find("^f") then t = t:to("bf16"):t():contiguous():to(dtype) end
    return t.device == dev and t.dtype == dtype and t:cpu():numel() == 12
  end)
  check(ok and err, "a transposed " .. dtype .. " copy on the GPU: " .. tostring(err))
end

-- the optimizer primitives in f64 (the model below trains in f32)
do
  local ok, err = pcall(function()
    local n = 3000 -- over one block of the sum of squares
    local pm, g = hr.randn({n}, "f64"):to(dev), hr.randn({n}, "f64"):to(dev)
    local m, v = hr.zeros({n}, "f64", dev), hr.zeros({n}, "f64", dev)
    hr.adamw_(pm, g, m, v, {lr = 1e-3, step = 1, weight_decay = 0.1})
    return hr.sum_squares(g)
  end)
  check(ok, "adamw_ and sum_squares in f64 on the GPU: " .. tostring(err))
end

-- ---- a bad id is refused on the GPU with the CPU's message ----
local function bad_embedding(device)
  local ok, err = pcall(hr.embedding, hr.tensor({{1, 9}}, "i64"):to(device), hr.randn({4, 3}):to(device))
  return not ok and tostring(err):match("embedding: .*$")
end
local cpu_msg, gpu_msg = bad_embedding("cpu"), bad_embedding(dev)
check(cpu_msg and cpu_msg:find("outside [0, 4)", 1, true), "the CPU's bad-id message: " .. tostring(cpu_msg))
check(gpu_msg == cpu_msg, string.format("a bad id on the GPU: '%s', on the CPU: '%s'", tostring(gpu_msg),
                                        tostring(cpu_msg)))

-- ---- tuning: a forced knob value launches that variant (the C side counts its launches) ----
do
  local ok1, err1 = pcall(hr.tune_force, "hr_group_norm_forward", 64)
  check(ok1, "tune_force: " .. tostring(err1))
  local x, w, bias = hr.randn({3, 40}):to(dev), hr.randn({40}):to(dev), hr.randn({40}):to(dev)
  check(pcall(hr.layer_norm, x, w, bias, 1e-5), "layer_norm with a forced BLOCK")
  hr.tune_force("hr_group_norm_forward", 0)
  local ok2, err2 = pcall(hr.tune_force, "hr_no_such_kernel", 64)
  check(not ok2 and tostring(err2):find("no tuning space", 1, true), "an unknown kernel: " .. tostring(err2))
  local ok3, err3 = pcall(hr.tune_force, "hr_group_norm_forward", 100)
  check(not ok3 and tostring(err3):find("not in", 1, true), "a value outside the space: " .. tostring(err3))
end

-- ---- training steps of the tiny model as train.lua runs them: a captured step graph replayed ----
-- After the first steps the caching allocator serves every request: no cuMemAlloc in a step.
local ok, err = pcall(function()
  hr.manual_seed(7)
  local model = nn.build({preset = "tiny", vocab_size = 256, n_layer = quick and 1 or nil})
  model.store:to(dev)
  local opt = optim.adamw(model.store, {weight_decay = 0.1, clip = 1.0})
  local x, y = hr.zeros({2, 32}, "i64", dev), hr.zeros({2, 32}, "i64", dev)
  local hx, hy = hr.zeros({2, 32}, "i64"), hr.zeros({2, 32}, "i64")
  local graph, loss = hr.capture(function() return model:loss(x, y) end)
  local raw = {}
  for step = 1, 4 do
    for b = 1, 2 do
      for i = 1, 32 do
        hx:set(b, i, (b * 31 + i * 7 + step) % 256)
        hy:set(b, i, (b * 17 + i * 5 + step) % 256)
      end
    end
    x:copy_(hx)
    y:copy_(hy)
    opt:zero_grad()
    graph:step(loss)
    loss:item() -- garbage: kernels do not run
    opt:step(optim.lr_at(step, 4, 3e-3, 3e-4, 1))
    raw[step] = hr.device_stats().raw_allocs
  end
  graph:close()
  check(raw[3] == raw[2] and raw[4] == raw[3],
        string.format("raw allocations after each step: %d, %d, %d, %d (steady state: no growth after step 2)",
                      raw[1], raw[2], raw[3], raw[4]))
end)
check(ok, "tiny model training steps: " .. tostring(err))

-- ---- hybridrt tune end to end on the fake GPU: kernels do not run, so outputs are stale bytes and
-- many variants are discarded as disagreeing; what is checked is the bookkeeping ----
do
  local db = os.tmpname()
  os.remove(db)
  local function tune(extra)
    local script = assert(loadfile(hr.source_dir .. "/lua/tune.lua"))
    local opts = {presets = "tiny", batch = 2, seq = 8, ["repeat"] = 3, db = db, budget = "5m"}
    for k, v in pairs(extra or {}) do opts[k] = v end
    local saved = arg
    arg = {opts = opts}
    local ok_tune, err_tune = pcall(script)
    arg = saved
    return ok_tune, err_tune
  end
  local ok1, err1 = tune()
  check(ok1, "hybridrt tune on the fake GPU: " .. tostring(err1))
  local ok2, tdb = pcall(hr.tune_db, db)
  check(ok2 and #tdb.records >= 1 and #tdb.records <= 6, "records written, one per case at most: " ..
        tostring(ok2 and #tdb.records or tdb))
  if ok2 then
    check(tdb.gpu == "fake GPU" and tdb.arch == "compute_80", "the header names the GPU: " .. tostring(tdb.gpu))
    local spaces = {}
    for _, sp in ipairs(hr.tune_spaces()) do spaces[sp.kernel] = sp end
    for _, r in ipairs(tdb.records) do
      local sp = spaces[r.kernel]
      check(sp and r.src == hr.tune_source_hash(sp.file) and r.knob == sp.knob and r.dtype == "f32",
            "a record keyed by its kernel's source, knob and dtype: " .. r.kernel)
    end
  end
  check(tune(), "a second tune over the same database")
  check(tune({show = true}), "tune --show")
  os.remove(db)
end

return {checks = checks, failures = failures, refused = refused}
