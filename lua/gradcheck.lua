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

-- The model (lua/hybridrt/demo_model.lua): sizes kept tiny so that finite differences over every
-- parameter stay quick.
local model = require("hybridrt.demo_model").new({dtype = "f64", seed = seed})
local params, names, forward = model.params, model.names, model.forward

local loss = forward()
print(string.format("\ntwo-layer hybrid model: %d parameter tensors, loss %.6f", #params, loss:item()))
print("gradients of every parameter against finite differences:")
local worst, errors = hr.gradcheck(forward, params, {max_probe = max_probe, h = opts.h})
for i, name in ipairs(names) do report(name, errors[i]) end
print(string.format("\nworst relative error %.2e over %d parameters (tolerance %g)", worst, #params, TOL))
if failures > 0 then
  error(string.format("%d gradient checks exceeded %g", failures, TOL))
end
