-- The hybridrt Lua library: the C core (tensors, ops, autograd) plus what is written in Lua.
local hr = require "hybridrt.core"

hr.gradcheck = require "hybridrt.gradcheck"
hr.nn = {model = require "hybridrt.nn.model"}
hr.optim = require "hybridrt.optim"
hr.data = require "hybridrt.data"
hr.checkpoint = require "hybridrt.checkpoint"

-- model, cfg, train, tokenizer = hr.load_checkpoint(path): the model of a checkpoint, ready for forward,
-- and the tokenizer it was trained with (nil when it records none).
function hr.load_checkpoint(path) return hr.checkpoint.load_model(path) end
-- model = hr.build_model{preset = "tiny", arch = "hybrid", ...}
function hr.build_model(opts) return hr.nn.model.build(opts) end

return hr
