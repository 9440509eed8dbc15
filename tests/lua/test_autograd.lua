-- Autograd: accumulation, zeroing, no_grad, views, errors, capture/replay, determinism.
local t = require "harness"
local hr = require "hybridrt"

local function same(a, b)
  if a:numel() ~= b:numel() then return false end
  local fa, fb = a:contiguous():view(-1), b:contiguous():view(-1)
  for i = 1, a:numel() do if fa:get(i) ~= fb:get(i) then return false end end
  return true
end

t.case("accumulation and zeroing", function()
  local w = hr.tensor({1, 2, 3}, "f64"):requires_grad_()
  t.check(w.grad == nil and w.is_leaf and w.requires_grad, "a fresh leaf has no grad")
  local loss = hr.sum(w * w)
  loss:backward()
  t.check(w.grad:get(3) == 6, "d(sum w^2)/dw = 2w")
  hr.sum(w * 3):backward()
  t.check(w.grad:get(3) == 9, "gradients accumulate across backward calls")
  w:zero_grad()
  t.check(w.grad:get(3) == 0, "zero_grad clears")
  w.grad = nil
  t.check(w.grad == nil, "grad can be dropped")
  local y = w * 2
  t.check(not y.is_leaf and y.requires_grad, "computed tensors are not leaves")
  t.raises(function() y.requires_grad = false end, "cannot turn off")
  t.raises(function() y:fill_(0) end, "computed tensor")
  t.raises(function() return hr.zeros({2}, "i64"):requires_grad_() end, "only float tensors")
end)

t.case("parameters and gradients as views of flat buffers", function()
  local flat, gflat = hr.randn({20}, "f64"), hr.zeros({20}, "f64")
  local W = flat:narrow(1, 1, 12):view(3, 4):requires_grad_()
  local b = flat:narrow(1, 13, 3):requires_grad_()
  W.grad = gflat:narrow(1, 1, 12):view(3, 4)
  b.grad = gflat:narrow(1, 13, 3)
  local x = hr.randn({2, 4}, "f64")
  hr.sum(hr.linear(x, W, b)):backward()
  t.check(gflat:get(13) == 2 and gflat:get(15) == 2 and gflat:get(20) == 0, "bias gradient lands in the flat buffer")
  t.near(gflat:get(1), x:get(1, 1) + x:get(2, 1), 1e-12, "weight gradient lands in the flat buffer")
  flat:fill_(0.5)                       -- an optimizer step over the one buffer updates every parameter
  t.check(W:get(2, 3) == 0.5 and b:get(1) == 0.5, "parameters read the flat buffer")
  t.raises(function() W.grad = hr.zeros({4, 3}, "f64") end, "grad: must be a contiguous f64 tensor of shape (3, 4)")
  t.raises(function() W.grad = hr.zeros({4, 3}, "f64"):t() end, "not contiguous")
  t.raises(function() b.grad = b end, "its own gradient buffer")
end)

t.case("intermediate gradients are not kept", function()
  local w = hr.randn({3}, "f64"):requires_grad_()
  local h = hr.tanh(w)
  hr.sum(h):backward()
  t.check(h.grad == nil and w.grad ~= nil, "only leaves keep .grad after an eager backward")
end)

t.case("backward errors", function()
  t.raises(function() hr.zeros({2}):requires_grad_():backward() end, "needs a scalar", "(2)")
  t.raises(function() hr.sum(hr.zeros({2})):backward() end, "does not require grad")
end)

t.case("no_grad", function()
  local w = hr.randn({3}):requires_grad_()
  local y, extra = hr.no_grad(function(scale) return w * scale, "x" end, 2)
  t.check(not y.requires_grad and extra == "x", "no_grad records nothing and returns fn's results")
  t.check(hr.is_grad_enabled(), "mode restored")
  pcall(hr.no_grad, function() error("inside") end)
  t.check(hr.is_grad_enabled(), "mode restored after an error")
  local prev = hr.set_grad_enabled(false)
  t.check(prev == true and not (w + 1).requires_grad, "set_grad_enabled")
  hr.set_grad_enabled(true)
end)

t.case("gradients through views reach the base", function()
  local x = hr.arange(6, "f64"):view(2, 3):detach():requires_grad_()
  local loss = hr.sum(x:transpose(1, 2):narrow(1, 2, 2) * hr.tensor({{1, 10}, {100, 1000}}, "f64"))
  loss:backward()
  -- x^T rows 2..3 are x columns 2..3: weights land at x[1][2]=1, x[2][2]=10, x[1][3]=100, x[2][3]=1000
  local g = x.grad
  t.check(g:get(1, 1) == 0 and g:get(1, 2) == 1 and g:get(2, 2) == 10 and g:get(1, 3) == 100 and g:get(2, 3) == 1000,
          "view backward scatters into the right elements")
end)

t.case("two outputs: wkv6 final state carries gradient", function()
  hr.manual_seed(3)
  local function mk(...) return hr.randn(...):requires_grad_() end
  local r, k, v = mk({1, 3, 1, 4}, "f64"), mk({1, 3, 1, 4}, "f64"), mk({1, 3, 1, 4}, "f64")
  local w, u = mk({1, 3, 1, 4}, "f64"), mk({1, 4}, "f64")
  local y, sT = hr.wkv6(r, k, v, w, u)
  y = nil
  collectgarbage()
  hr.sum(sT):backward() -- y was freed: its gradient counts as zero
  t.check(r.grad ~= nil and k.grad ~= nil, "gradient flows from the state alone")
  local rsum = 0
  for i = 1, 12 do rsum = rsum + math.abs(r.grad:view(12):get(i)) end
  t.check(rsum == 0, "r does not affect the state, so its gradient is zero")
end)

-- A small model step: embedding -> rms_norm -> linear -> gelu -> tied head -> cross-entropy.
local function build(seed, dtype)
  hr.manual_seed(seed)
  local m = {
    emb = hr.randn({13, 8}, dtype):requires_grad_(),
    nw = hr.ones({8}, dtype):requires_grad_(),
    W = hr.randn({8, 8}, dtype):requires_grad_(),
  }
  m.ids = hr.zeros({2, 6}, "i64")
  m.targets = hr.zeros({2, 6}, "i64")
  function m.forward()
    local x = hr.embedding(m.ids, m.emb)
    x = hr.gelu(hr.linear(hr.rms_norm(x, m.nw), m.W))
    return hr.cross_entropy(hr.matmul(x, m.emb, false, true), m.targets)
  end
  function m.load(step)
    for b = 1, 2 do for i = 1, 6 do
      m.ids:set(b, i, (step * 7 + b * 3 + i) % 13)
      m.targets:set(b, i, (step * 5 + b + i * 2) % 13)
    end end
  end
  return m
end

-- Reshapes and slices of leading rows share their input's gradient (graph.c): check that sharing
-- keeps accumulation, replay and reassigned gradient buffers right.
t.case("views that share their base's gradient", function()
  local c = hr.tensor({{1, 2, 3}, {4, 5, 6}}, "f64")
  local p = hr.arange(6, "f64"):detach():requires_grad_()            -- a leaf
  local function loss_of(x) return hr.sum(x:view(2, 3) * c) end
  loss_of(p):backward()
  loss_of(p):backward()
  t.check(same(p.grad, (c * 2):view(6)), "a leaf's gradient accumulates through a shared view")
  -- a slice of leading rows of an intermediate, with another consumer of that intermediate
  local q = hr.arange(12, "f64"):view(4, 3):detach():requires_grad_()
  local y = q * 3                                                    -- intermediate
  local l2 = hr.sum(y:narrow(1, 2, 2) * c) + hr.sum(y)
  l2:backward()
  local want = {{3, 3, 3}, {6, 9, 12}, {15, 18, 21}, {3, 3, 3}}
  t.check(same(q.grad, hr.tensor(want, "f64")), "rows 2-3 get the slice's gradient plus the sum's")
  -- the loss itself a view of a leaf: +1 per backward, never overwriting what accumulated
  local s = hr.tensor({5}, "f64"):requires_grad_()
  s:view():backward()
  s:view():backward()
  t.check(s.grad:get(1) == 2, "a loss that is a view of a leaf accumulates: " .. s.grad:get(1))
  -- replayed: a gradient buffer reassigned between steps receives the next step's gradient
  local r = hr.arange(6, "f64"):detach():requires_grad_()
  local graph, l3 = hr.capture(function() return loss_of(r) end)
  graph:step(l3)
  t.check(same(r.grad, c:view(6)), "replay: first step")
  local fresh = hr.zeros({6}, "f64")
  r.grad = fresh
  graph:step(l3)
  t.check(same(fresh, c:view(6)), "replay: the new buffer received the gradient")
  graph:close()
end)

t.case("capture once, replay every step = eager", function()
  local eager, replay = build(7, "f32"), build(7, "f32")
  replay.load(1)
  local graph, loss = hr.capture(replay.forward)
  t.check(graph:size() > 5, "the graph recorded the ops: " .. tostring(graph))
  for step = 1, 3 do
    eager.load(step)
    eager.emb.grad, eager.nw.grad, eager.W.grad = nil, nil, nil
    local le = eager.forward()
    le:backward()
    replay.load(step)
    for _, p in ipairs({replay.emb, replay.nw, replay.W}) do p:zero_grad() end
    graph:step(loss)
    t.check(loss:item() == le:item(), "step " .. step .. ": replayed loss equals eager loss bitwise")
    t.check(same(replay.W.grad, eager.W.grad) and same(replay.emb.grad, eager.emb.grad),
            "step " .. step .. ": replayed gradients equal eager gradients bitwise")
  end
  graph:close()
  t.raises(function() graph:forward() end, "closed")
  t.raises(function() hr.capture(function() hr.capture(function() end) end) end, "do not nest")
  local ok = pcall(hr.capture, function() error("fail inside") end)
  t.check(not ok, "an error inside capture propagates")
  local g2 = hr.capture(function() return hr.zeros({1}) + 1 end)
  t.check(g2:size() == 1, "a failed capture leaves no capture running")
end)

t.case("same seed, same results, whatever the thread count", function()
  local threads = hr.num_threads()
  local function run(n)
    hr.set_num_threads(n)
    local m = build(11, "f32")
    m.load(2)
    local loss = m.forward()
    loss:backward()
    return loss:item(), m.W.grad, m.emb.grad
  end
  local l1, w1, e1 = run(1)
  local l2, w2, e2 = run(math.max(2, threads))
  hr.set_num_threads(threads)
  t.check(l1 == l2 and same(w1, w2) and same(e1, e2), "bitwise identical across thread counts")
end)

t.case("writing an input after the forward is caught at backward", function()
  local x = hr.randn({3}, "f64"):requires_grad_()
  local w = hr.randn({3}, "f64"):requires_grad_()
  local loss = hr.sum(hr.tanh(x * w))
  x:fill_(0.5)
  t.raises(function() loss:backward() end, "input 1 of op 'mul' was written in place after the forward")
  local g, l2 = hr.capture(function() return hr.sum(hr.tanh(x * w)) end)
  x:copy_(hr.randn({3}, "f64"))
  t.raises(function() g:backward(l2) end, "run the forward again")
  g:forward()
  g:backward(l2)
  t.check(w.grad ~= nil, "after the forward runs again, backward works")
end)

t.case("a graph deeper than the C stack runs backward and frees", function()
  local w = hr.ones({4}, "f64"):requires_grad_()
  local x = w
  for _ = 1, 200000 do x = x * 1.0000001 end   -- a chain of 200000 nodes, as a loop over time steps makes
  hr.sum(x):backward()
  t.near(w.grad:get(1), 1.0000001 ^ 200000, 1e-9, "gradient through 200000 ops")
  x = nil
  collectgarbage()                                -- freeing the chain must not recurse
  t.check(true, "freed")
end)

t.finish("autograd")
