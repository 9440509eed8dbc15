-- Every op's backward against central finite differences in f64 (lua/hybridrt/opcases.lua).
local t = require "harness"
local opcases = require "hybridrt.opcases"

local TOL = 1e-6
for _, row in ipairs(opcases.run()) do
  print(string.format("  %-30s worst relative error %.2e", row.name, row.worst))
  t.check(row.worst < TOL, row.name .. string.format(": gradient error %.3e exceeds %g", row.worst, TOL))
end
-- The checker itself: it must catch a wrong gradient, and not be fooled by a kink near the point.
local hr = require "hybridrt"
local x = hr.tensor({0.5, -1.5, 2.0}, "f64"):requires_grad_()
local wrong = hr.gradcheck(function(a) return hr.sum(a * a:detach()) end, {x})  -- backward sees x, truth is 2x
t.check(wrong > 0.1, string.format("a gradient missing half its terms is caught (error %.3g)", wrong))
local near_kink = hr.tensor({3e-5, -2e-5, 1.0}, "f64"):requires_grad_()
local kink_err = hr.gradcheck(function(a) return hr.sum(hr.relu(a) * hr.tensor({1, 2, 3}, "f64")) end, {near_kink})
t.check(kink_err < TOL, string.format("relu next to its kink checks clean (error %.3g)", kink_err))

t.finish("gradcheck")
