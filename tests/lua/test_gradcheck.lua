-- Every op's backward against central finite differences in f64 (lua/hybridrt/opcases.lua).
local t = require "harness"
local opcases = require "hybridrt.opcases"

local TOL = 1e-6
for _, row in ipairs(opcases.run()) do
  print(string.format("  %-30s worst relative error %.2e", row.name, row.worst))
  t.check(row.worst < TOL, row.name .. string.format(": gradient error %.3e exceeds %g", row.worst, TOL))
end
t.finish("gradcheck")
