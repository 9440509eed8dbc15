-- The hybridrt Lua library: the C core (tensors, ops, autograd) plus what is written in Lua.
local hr = require "hybridrt.core"

hr.gradcheck = require "hybridrt.gradcheck"

return hr
