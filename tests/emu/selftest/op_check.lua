-- One op case of hybridrt.opcases on the GPU against the CPU, forward and backward, for the seeded-bug
-- self-test (selftest.lua runs it on mutated templates and on the unmutated ones):
--   hybridrt run op_check.lua 'cases=layer_norm;wkv6 N=32' [dtypes=f64,f32]
-- cases: ';'-separated names from opcases.list() or opcases.gpu_list(). Prints one line per failure
-- ("FAIL <case> <dtype> ...": the GPU's error, or the first element beyond tolerance) and a closing
-- "op_check: PASS" or "op_check: N failures"; exits non-zero on any failure.
local hr = require "hybridrt"
local opcases = require "hybridrt.opcases"

local opts = arg.opts or {}
local TOL = {f64 = {rtol = 1e-9, atol = 1e-11}, f32 = {rtol = 1e-4, atol = 1e-5}}

local by_name = {}
for _, list in ipairs({opcases.list(), opcases.gpu_list()}) do
  for _, c in ipairs(list) do by_name[c.name] = c end
end

local dev = hr.use_device("cuda")
assert(dev ~= "cpu", "op_check: no GPU opened")

-- The first element where got and want (tensors, any device) differ beyond tol, as text, or nil.
local function first_excess(got, want, tol)
  local g = got:cpu():to("f64"):contiguous():view(-1):totable()
  local w = want:to("f64"):contiguous():view(-1):totable()
  if #g ~= #w then return string.format("%d elements, the CPU %d", #g, #w) end
  for i, wi in ipairs(w) do
    local gi = g[i]
    if not (math.abs(gi - wi) <= tol.atol + tol.rtol * math.abs(wi)) then
      return string.format("element %d: gpu %.10g cpu %.10g", i, gi, wi)
    end
  end
end

-- The case's output and the gradients of its differentiable inputs (false for the others) on one
-- device: inputs made on the CPU from the seed, cast and moved; the loss a seeded weighting of the output.
local function forward_backward(c, dtype, device, seed)
  hr.manual_seed(seed)
  local xs = {}
  for i, x in ipairs(c.make()) do
    local y = x:detach()
    if y.dtype == "f64" then y = y:to(dtype) end
    y = y:to(device)
    if x.requires_grad then y:requires_grad_() end
    xs[i] = y
  end
  local out = c.fn(table.unpack(xs, 1, #xs))
  hr.manual_seed(seed + 1)
  local weight = hr.randn(out.shape, out.dtype):to(out.device)
  hr.sum(hr.mul(out, weight):view(-1), 1):backward()
  local grads = {}
  for i, x in ipairs(xs) do grads[i] = x.requires_grad and x.grad or false end
  return out, grads
end

local failures = 0
local function fail(c, dtype, what)
  failures = failures + 1
  print(string.format("FAIL %s %s: %s", c.name, dtype, what))
end

local dtypes = tostring(opts.dtypes or "f64,f32")
for name in tostring(opts.cases or ""):gmatch("[^;]+") do
  local c = by_name[name] or error("op_check: no op case named '" .. name .. "'")
  for dtype in dtypes:gmatch("[^,]+") do
    local cpu_out, cpu_grads = forward_backward(c, dtype, "cpu", 77)
    local ok, out, grads = pcall(forward_backward, c, dtype, dev, 77)
    if not ok then
      fail(c, dtype, "the GPU failed: " .. tostring(out))
    else
      local bad = first_excess(out, cpu_out, TOL[dtype])
      if bad then fail(c, dtype, "forward: beyond tolerance at " .. bad) end
      for i, want in ipairs(cpu_grads) do
        if want and not grads[i] then fail(c, dtype, string.format("backward, input %d: no GPU gradient", i))
        elseif want then
          bad = first_excess(grads[i], want, TOL[dtype])
          if bad then fail(c, dtype, string.format("backward, input %d: beyond tolerance at %s", i, bad)) end
        end
      end
    end
  end
end
print(failures == 0 and "op_check: PASS" or string.format("op_check: %d failures", failures))
if failures > 0 then os.exit(1) end
