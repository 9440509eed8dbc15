-- AdamW over a model's flat parameter buffer, one call per parameter group (each group a contiguous
-- range with its own weight decay and learning-rate multiplier), global-norm gradient clipping folded
-- into the update, and the learning-rate schedule (linear warmup, cosine decay to a floor).
local hr = require "hybridrt.core"

local M = {}
local AdamW = {}
AdamW.__index = AdamW

-- store: a finalized parameter store (hybridrt.nn.params); opts: beta1 (0.9), beta2 (0.95),
-- eps (1e-8), weight_decay (0.1), clip (1.0; 0 turns clipping off).
function M.adamw(store, opts)
  opts = opts or {}
  local self = setmetatable({
    store = store, beta1 = opts.beta1 or 0.9, beta2 = opts.beta2 or 0.95, eps = opts.eps or 1e-8,
    weight_decay = opts.weight_decay or 0.1, clip = opts.clip or 1.0, step_count = 0,
    m = hr.zeros({store.numel}, store.dtype, store.flat.device),
    v = hr.zeros({store.numel}, store.dtype, store.flat.device),
  }, AdamW)
  return self
end

-- The global L2 norm of all gradients (accumulated in double, thread-count independent).
function AdamW:grad_norm() return math.sqrt(hr.sum_squares(self.store.grad)) end

-- One update at learning rate lr. Returns the gradient norm before clipping; refuses a non-finite
-- norm (the parameters are left untouched so the last checkpoint stays the last good state).
function AdamW:step(lr)
  local norm = self:grad_norm()
  if norm ~= norm or norm == math.huge then
    error(string.format("gradient norm is %s at step %d: stopping before the parameters are damaged " ..
                        "(try a lower lr, or HYBRIDRT_CHECK_NAN=1 to find the op)", tostring(norm),
                        self.step_count + 1), 0)
  end
  local scale = (self.clip > 0 and norm > self.clip) and self.clip / norm or 1
  self.step_count = self.step_count + 1
  for _, g in ipairs(self.store.groups) do
    local lo, n = g.offset + 1, g.numel
    hr.adamw_(g.param, g.grad, self.m:narrow(1, lo, n), self.v:narrow(1, lo, n), {
      lr = lr * g.lr_mult, step = self.step_count, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps,
      weight_decay = g.weight_decay and self.weight_decay or 0, grad_scale = scale})
  end
  return norm
end

function AdamW:zero_grad() self.store.grad:zero_() end

-- Learning rate at step s (1-based) of total: linear warmup over `warmup` steps from lr/warmup to
-- lr, then cosine from lr down to min_lr at the last step.
function M.lr_at(s, total, lr, min_lr, warmup)
  if warmup > 0 and s <= warmup then return lr * s / warmup end
  if total <= warmup then return lr end
  local progress = (s - warmup) / math.max(1, total - warmup)
  if progress > 1 then progress = 1 end
  return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))
end

return M
