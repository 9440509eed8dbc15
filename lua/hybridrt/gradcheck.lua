-- Finite-difference gradient checks: compares what backward() computes with central differences.
-- Run them on f64 tensors: the differences are then accurate to ~1e-9 and any real bug stands out.
local hr = require "hybridrt.core"

-- gradcheck(fn, inputs, opts) -> worst, errors
--   fn(inputs...) returns a tensor; if it has more than one element it is reduced as sum(out * c)
--   with a fixed random cotangent c, so every output element matters.
--   inputs: tensors with requires_grad set (the leaves to check).
--   opts.h (1e-4): the finite-difference step; opts.max_probe (64): elements probed per input,
--   spread evenly over it.
-- The derivative uses the fourth-order central stencil
--   (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h
-- whose truncation error (~h^4) and rounding error (~1e-16 |f| / h) both stay far below the
-- tolerance at h = 1e-4, so a failing check means a wrong gradient rather than noisy differences
-- (near a kink such as relu's the step shrinks: see derivative()).
-- errors[i] is max |analytic - numeric| / max(max |numeric|, 1e-12) over input i's probed elements,
-- worst the largest of them.
-- d/dx at the current point from f = at(delta), with the fourth-order stencil, and how far it disagrees
-- with the second-order one (f(h) - f(-h)) / 2h. Smooth functions make the two agree to ~h^2; a kink
-- (relu at 0) inside the stencil's span makes them disagree grossly. When they disagree, steps 10x and
-- 100x smaller are tried and the estimate whose two stencils agree best is kept. This only sharpens the
-- numeric side: a wrong analytic gradient still fails.
local function estimate(at, h)
  local fm2, fm1, fp1, fp2 = at(-2 * h), at(-h), at(h), at(2 * h)
  local d4 = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
  return d4, math.abs(d4 - (fp1 - fm1) / (2 * h))
end

local function derivative(at, h)
  local best, gap = estimate(at, h)
  for _ = 1, 2 do
    if gap <= 1e-5 * math.max(math.abs(best), 1e-8) then break end
    h = h / 10
    local d, g = estimate(at, h)
    if g < gap then best, gap = d, g end
  end
  return best
end

local function gradcheck(fn, inputs, opts)
  opts = opts or {}
  local h, max_probe = opts.h or 1e-4, opts.max_probe or 64
  local cotangent
  local function loss()
    local out = fn(table.unpack(inputs))
    if out:numel() == 1 then return out end
    if not cotangent then
      cotangent = hr.no_grad(function() return hr.randn(out.shape, out.dtype) end)
    end
    return hr.sum(out * cotangent)
  end

  for _, x in ipairs(inputs) do x.grad = nil end
  loss():backward()

  local worst, errors = 0, {}
  for i, x in ipairs(inputs) do
    local n = x:numel()
    local flat = hr.no_grad(function() return x:view(n) end)
    local grad = x.grad and x.grad:view(n)
    local step = math.max(1, n // max_probe)
    local max_err, scale = 0, 1e-12
    for j = 1, n, step do
      local keep = flat:get(j)
      local function at(delta)
        flat:set(j, keep + delta)
        return hr.no_grad(loss):item()
      end
      local numeric = derivative(at, h)
      flat:set(j, keep)
      local analytic = grad and grad:get(j) or 0
      max_err = math.max(max_err, math.abs(numeric - analytic))
      scale = math.max(scale, math.abs(numeric))
    end
    errors[i] = max_err / scale
    worst = math.max(worst, errors[i])
  end
  return worst, errors
end

return gradcheck
