-- The parameter store of a model. Layers declare their parameters (reference name, shape, initialiser,
-- optimizer hints); `finalize` lays them out in one flat f32 buffer (and one flat gradient buffer),
-- grouped by optimizer settings so that each group is one contiguous range, creates every parameter
-- as a view of it and runs the initialisers in declaration order (so a seed fixes every value).
local hr = require "hybridrt.core"

local M = {}
local Store = {}
Store.__index = Store

function M.new(dtype)
  return setmetatable({list = {}, by_name = {}, dtype = dtype or "f32"}, Store)
end

-- store:add(owner, key, name, shape, init, [opts]): after finalize, owner[key] is the parameter.
-- init(t) fills the tensor t in place. opts: component (for the parameter count table),
-- no_decay (never weight-decayed), lr_mult (learning-rate multiplier).
function Store:add(owner, key, name, shape, init, opts)
  assert(not self.flat, "parameter store already finalized")
  if self.by_name[name] then error("duplicate parameter name " .. name, 2) end
  local numel = 1
  for _, s in ipairs(shape) do numel = numel * s end
  local entry = {owner = owner, key = key, name = name, shape = shape, numel = numel, init = init,
                 component = opts and opts.component or "other", no_decay = opts and opts.no_decay,
                 lr_mult = opts and opts.lr_mult}
  self.list[#self.list + 1] = entry
  self.by_name[name] = entry
  return entry
end

-- Assigns each parameter its optimizer group with classify(entry) -> key, weight_decay, lr_mult,
-- then builds the buffers. Groups come out in order of first appearance.
function Store:finalize(classify)
  local groups, by_key = {}, {}
  for _, e in ipairs(self.list) do
    local key, wd, lr_mult = classify(e)
    local g = by_key[key]
    if not g then
      g = {key = key, weight_decay = wd, lr_mult = lr_mult, entries = {}, numel = 0}
      by_key[key] = g
      groups[#groups + 1] = g
    end
    g.entries[#g.entries + 1] = e
    g.numel = g.numel + e.numel
  end
  local total, offset = 0, 0
  for _, g in ipairs(groups) do total = total + g.numel end
  self.numel = total
  self.flat = hr.zeros({total}, self.dtype)
  self.grad = hr.zeros({total}, self.dtype)
  for _, g in ipairs(groups) do
    g.offset = offset
    for _, e in ipairs(g.entries) do
      e.offset = offset
      offset = offset + e.numel
    end
  end
  self.groups = groups
  self:bind_views()
  -- Initial values in declaration order: the random stream does not depend on grouping.
  for _, e in ipairs(self.list) do
    if e.init then e.init(e.tensor, e) end
  end
  return self
end

-- Makes every parameter, its gradient and each group's ranges views of the flat buffers.
function Store:bind_views()
  for _, e in ipairs(self.list) do
    local t = self.flat:narrow(1, e.offset + 1, e.numel):view(e.shape)
    t:requires_grad_()
    t.grad = self.grad:narrow(1, e.offset + 1, e.numel):view(e.shape)
    e.tensor = t
    e.owner[e.key] = t
  end
  for _, g in ipairs(self.groups) do
    g.param = self.flat:narrow(1, g.offset + 1, g.numel)
    g.grad = self.grad:narrow(1, g.offset + 1, g.numel)
  end
end

-- Moves the parameters to device ("cpu", "cuda:0", ...): the values are copied, the gradients start
-- at zero, and every parameter becomes a view of the new buffers (modules read them through their
-- owner tables, so they follow).
function Store:to(device)
  if self.flat.device == device then return self end
  self.flat = self.flat:to(device)
  self.grad = hr.zeros({self.numel}, self.dtype, self.flat.device)
  self:bind_views()
  return self
end

-- Iterator over (name, tensor) in declaration order.
function Store:named_parameters()
  local i = 0
  return function()
    i = i + 1
    local e = self.list[i]
    if e then return e.name, e.tensor end
  end
end

-- Initialisers: functions of the tensor to fill.
local init = {}
M.init = init

function init.const(v) return function(t) t:fill_(v) end end
function init.zeros() return init.const(0) end
function init.ones() return init.const(1) end
function init.uniform(a, b) return function(t) t:uniform_(a, b) end end
function init.normal(std) return function(t) t:normal_(0, std) end end
function init.orthogonal(gain)
  return function(t)
    if gain == 0 then t:zero_() else t:orthogonal_(gain) end
  end
end
-- PyTorch's default for nn.Linear / nn.Conv1d (kaiming_uniform with a = sqrt(5)) and their biases:
-- uniform in +-1/sqrt(fan_in), optionally scaled.
function init.torch_default(fan_in, scale)
  local bound = (scale or 1) / math.sqrt(fan_in)
  return init.uniform(-bound, bound)
end
-- Values from a Lua function of the flat 0-based index.
function init.values(fn)
  return function(t)
    local n, vals = t:numel(), {}
    for i = 0, n - 1 do vals[i + 1] = fn(i) end
    t:copy_(hr.tensor(vals, t.dtype):view(t.shape))
  end
end

return M
