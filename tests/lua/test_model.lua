-- The model library (lua/hybridrt/nn): reference parameter names and shapes, the reference
-- initialisation, recurrent mode equal to parallel mode for every block kind, every fusion training,
-- config errors, the optimizer and its schedule, and checkpoints (round trip, mismatch, corruption).
local hr = require "hybridrt"
local t = require "harness"
local quick = os.getenv("HR_TEST_QUICK") == "1"

-- A small config: two layers, 64 channels (two RWKV heads of 32), Mamba heads of 32 with state 16.
local function small(over)
  local c = {preset = "tiny", d_model = 64, n_layer = 2, headdim = 32, d_state = 16}
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

local function max_abs_diff(a, b)
  local d = hr.no_grad(function() return (a - b):contiguous() end)
  local worst = 0
  for _, v in ipairs(d:reshape(d:numel()):totable()) do worst = math.max(worst, math.abs(v)) end
  return worst
end

local function ids_tensor(B, T, V, seed)
  local vals, s = {}, seed
  for i = 1, B * T do s = (s * 1103515245 + 12345) % 2147483648; vals[i] = s % V end
  return hr.tensor(vals, "i64"):view(B, T)
end

t.case("reference names and shapes", function()
  local m = hr.build_model(small({ffn = "cmix"}))
  local shapes = {}
  for name, p in m:named_parameters() do shapes[name] = table.concat(p.shape, "x") end
  local expect = {
    ["emb.weight"] = "256x64", ["blocks.0.ln1.weight"] = "64", ["blocks.0.att.time_maa_x"] = "1x1x64",
    ["blocks.0.att.time_maa_w1"] = "64x160", ["blocks.0.att.time_maa_w2"] = "5x32x64",
    ["blocks.0.att.time_decay"] = "1x1x64", ["blocks.0.att.time_decay_w1"] = "64x64",
    ["blocks.0.att.time_decay_w2"] = "64x64", ["blocks.0.att.time_faaaa"] = "2x32",
    ["blocks.0.att.receptance.weight"] = "64x64", ["blocks.0.att.output.weight"] = "64x64",
    ["blocks.0.att.ln_x.weight"] = "64", ["blocks.0.att.ln_x.bias"] = "64",
    ["blocks.1.mamba.in_proj.weight"] = tostring(2 * 128 + 2 * 16 + 4) .. "x64",
    ["blocks.1.mamba.conv1d.weight"] = "160x1x4", ["blocks.1.mamba.conv1d.bias"] = "160",
    ["blocks.1.mamba.dt_bias"] = "4", ["blocks.1.mamba.A_log"] = "4", ["blocks.1.mamba.D"] = "4",
    ["blocks.1.mamba.norm.weight"] = "128", ["blocks.1.mamba.out_proj.weight"] = "64x128",
    ["blocks.1.fuse.gain_rwkv"] = "64", ["blocks.1.fuse.gain_mamba"] = "64",
    ["blocks.1.ffn.time_maa_k"] = "1x1x64", ["blocks.1.ffn.key.weight"] = "224x64",
    ["blocks.1.ffn.value.weight"] = "64x224", ["blocks.1.ffn.receptance.weight"] = "64x64",
    ["ln_out.weight"] = "64",
  }
  for name, shape in pairs(expect) do
    t.check(shapes[name] == shape, string.format("%s: %s, expected %s", name, tostring(shapes[name]), shape))
  end
  t.check(shapes["head.weight"] == nil, "the head is tied to the embedding by default")
  local gated = {}
  for name, p in hr.build_model(small({fusion = "gate"})):named_parameters() do gated[name] = table.concat(p.shape, "x") end
  t.check(gated["blocks.1.fuse.gate.weight"] == "1x128" and gated["blocks.1.fuse.gate.bias"] == "1"
          and gated["blocks.1.fuse.gain_rwkv"] == nil, "fusion=gate: gate.weight (1x128), gate.bias (1)")
  local untied = hr.build_model(small({tie_embeddings = false}))
  local found = false
  for name in untied:named_parameters() do found = found or name == "head.weight" end
  t.check(found, "tie_embeddings=false adds head.weight")
end)

t.case("reference initialisation", function()
  hr.manual_seed(5)
  local m = hr.build_model(small({n_layer = 3}))
  local p = {}
  for name, v in m:named_parameters() do p[name] = v end
  local C = 64
  -- time_decay[n] = -6 + 5 (n / (C-1))^(0.7 + 1.3 r01), r01 = layer / (n_layer - 1)
  local r01 = 1 / 2
  for _, n in ipairs({0, 17, 63}) do
    t.near(p["blocks.1.att.time_decay"]:get(1, 1, n + 1), -6 + 5 * (n / (C - 1)) ^ (0.7 + 1.3 * r01), 1e-5,
           "time_decay " .. n)
  end
  -- time_maa_v = 1 - ((i/C)^r10 + 0.3 r01), r10 = 1 - layer / n_layer
  local r10 = 1 - 1 / 3
  t.near(p["blocks.1.att.time_maa_v"]:get(1, 1, 11), 1 - ((10 / C) ^ r10 + 0.3 * r01), 1e-6, "time_maa_v")
  t.near(p["blocks.2.att.ln_x.weight"]:get(7), (3 / 3) ^ 0.7, 1e-6, "ln_x weight of the last layer")
  t.near(p["blocks.0.att.ln_x.weight"]:get(7), (1 / 3) ^ 0.7, 1e-6, "ln_x weight of layer 0")
  t.check(hr.sum_squares(p["blocks.0.att.output.weight"]) == 0, "att.output starts at zero")
  t.check(hr.sum_squares(p["blocks.0.att.time_maa_w1"]) == 0, "time_maa_w1 starts at zero")
  -- orthogonal receptance: W W^T = I
  local W = p["blocks.0.att.receptance.weight"]:detach()
  local g = hr.matmul(W, W, false, true)
  local worst = 0
  for i = 1, C, 7 do for j = 1, C, 5 do worst = math.max(worst, math.abs(g:get(i, j) - (i == j and 1 or 0))) end end
  t.check(worst < 1e-5, "receptance is orthogonal: |W W^T - I| = " .. worst)
  local key = p["blocks.0.att.key.weight"]:detach()
  t.near(hr.sum_squares(key), 0.01 * C, 1e-4, "key is orthogonal with gain 0.1")
  -- tied emb (also the head): normal, std 0.02; untied: uniform in +-1e-4 and an orthogonal head
  local std = math.sqrt(hr.sum_squares(p["emb.weight"]) / (256 * C))
  t.check(std > 0.019 and std < 0.021, "tied emb std 0.02: " .. std)
  hr.manual_seed(5)
  local untied = {}
  for name, v in hr.build_model(small({n_layer = 3, tie_embeddings = false})):named_parameters() do untied[name] = v end
  local emax = 0
  for _, v in ipairs(untied["emb.weight"]:reshape(256 * C):totable()) do emax = math.max(emax, math.abs(v)) end
  t.check(emax <= 1e-4 and emax > 5e-5, "untied emb within 1e-4: " .. emax)
  -- head gain 0.5 sqrt(V / C) = 1 here: orthogonal rows (V > C), so H^T H = I and |H|^2 = C
  t.near(hr.sum_squares(untied["head.weight"]), C, 1e-3 * C, "untied head orthogonal, gain 0.5 sqrt(V/C)")
  -- Mamba: A = exp(A_log) in [1, 16]; dt = softplus(dt_bias) in [0.001, 0.1]; D = 1
  for h = 1, 4 do
    local A = math.exp(p["blocks.0.mamba.A_log"]:get(h))
    t.check(A >= 1 and A <= 16, "A in [1, 16]: " .. A)
    local dt = math.log(1 + math.exp(p["blocks.0.mamba.dt_bias"]:get(h)))
    t.check(dt >= 0.001 * (1 - 1e-5) and dt <= 0.1 * (1 + 1e-5), "dt in [0.001, 0.1]: " .. dt)
    t.near(p["blocks.0.mamba.D"]:get(h), 1, 0, "D = 1")
  end
  -- the default fusion's gains start at 0.7 (RWKV) and 0.3 (Mamba); the gate fusion's gate at exactly gate_p
  t.near(p["blocks.2.fuse.gain_rwkv"]:get(17), 0.7, 1e-7, "gain_rwkv starts at 0.7")
  t.near(p["blocks.2.fuse.gain_mamba"]:get(64), 0.3, 1e-7, "gain_mamba starts at 0.3")
  local gp = {}
  for name, q in hr.build_model(small({fusion = "gate", gate_p = 0.25})):named_parameters() do gp[name] = q end
  t.near(1 / (1 + math.exp(-gp["blocks.0.fuse.gate.bias"]:get(1))), 0.25, 1e-6, "gate bias = logit(gate_p)")
  t.check(hr.sum_squares(gp["blocks.0.fuse.gate.weight"]) == 0, "gate weight starts at zero")
  -- the same seed gives the same model
  hr.manual_seed(5)
  local m2 = hr.build_model(small({n_layer = 3}))
  t.check(hr.sum_squares(m.store.flat - m2.store.flat) == 0, "same seed, same parameters")
end)

-- Recurrent mode: T tokens at once, in two chunks, and one by one give the same logits.
local function check_recurrent(over, label)
  hr.manual_seed(11)
  local m = hr.build_model(small(over))
  -- perturb the zero-initialised projections so every path carries signal
  hr.no_grad(function()
    for name, p in m:named_parameters() do
      if name:find("output.weight") or name:find("ffn.value") or name:find("ffn.receptance") or name:find("_w1") then
        p:copy_(hr.randn(p.shape) * 0.05)
      end
    end
  end)
  local B, T = 2, quick and 6 or 11
  local ids = ids_tensor(B, T, 256, 7)
  hr.no_grad(function()
    local full = m:forward(ids)
    local st = m:new_state()
    local k = T // 2
    local a = m:forward(ids:narrow(2, 1, k):contiguous(), st)
    local b = m:forward(ids:narrow(2, k + 1, T - k):contiguous(), st)
    local chunked = hr.concat({a, b}, 2)
    t.check(max_abs_diff(chunked, full) < 2e-5, label .. ": two chunks vs parallel " .. max_abs_diff(chunked, full))
    local st1, steps = m:new_state(), {}
    for i = 1, T do steps[i] = m:forward(ids:narrow(2, i, 1):contiguous(), st1) end
    local worst = 0
    for i = 1, T do worst = math.max(worst, max_abs_diff(steps[i], full:narrow(2, i, 1))) end
    t.check(worst < 2e-5, label .. ": token by token vs parallel " .. worst)
  end)
end

t.case("recurrent equals parallel", function()
  check_recurrent({fusion = "gate"}, "hybrid gate gelu")
  check_recurrent({ffn = "cmix", fusion = "gains"}, "hybrid gains cmix")
  check_recurrent({arch = "rwkv"}, "rwkv cmix")
  check_recurrent({arch = "mamba"}, "mamba")
end)

t.case("every fusion and arch trains", function()
  local x, y = ids_tensor(2, 16, 256, 3), ids_tensor(2, 16, 256, 4)
  local cases = {{fusion = "gate"}, {fusion = "gains"}, {fusion = "concat"}, {fusion = "scalar"},
                 {arch = "rwkv"}, {arch = "mamba"}, {arch = "mamba", ffn = "gelu"}, {ffn = "cmix"}}
  for _, c in ipairs(cases) do
    hr.manual_seed(1)
    local m = hr.build_model(small(c))
    local opt = hr.optim.adamw(m.store, {weight_decay = 0.1})
    local first, last
    for step = 1, quick and 3 or 6 do
      opt:zero_grad()
      local loss = m:loss(x, y)
      loss:backward()
      opt:step(3e-3)
      first = first or loss:item()
      last = loss:item()
    end
    local label = (c.arch or "hybrid") .. "/" .. (c.fusion or "-") .. "/" .. (c.ffn or "-")
    t.check(last < first, string.format("%s: loss %.4f -> %.4f", label, first, last))
  end
end)

t.case("config errors name the problem", function()
  t.raises(function() hr.build_model({preset = "huge"}) end, "unknown preset 'huge'", "tiny, small")
  t.raises(function() hr.build_model({fusion = "sum"}) end, "unknown fusion 'sum'", "gains, gate, concat, scalar")
  t.raises(function() hr.build_model({arch = "gpt"}) end, "unknown arch 'gpt'")
  t.raises(function() hr.build_model({head_size = 48}) end, "head_size must be 32, 64 or 128")
  t.raises(function() hr.build_model({d_model = 96, head_size = 64}) end, "not a multiple of head_size")
  t.raises(function() hr.build_model({d_model = 0}) end, "d_model must be a positive integer")
  t.raises(function() hr.build_model({gate_p = 1}) end, "gate_p")
  t.raises(function() hr.build_model({n_layer = 1 << 31}) end, "n_layer = 2147483648 is over its limit of 4096")
  t.raises(function() hr.build_model({vocab_size = 1 << 40}) end, "vocab_size", "over its limit")
end)

t.case("optimizer and schedule", function()
  local lr_at = hr.optim.lr_at
  t.near(lr_at(1, 100, 1e-3, 1e-4, 10), 1e-4, 1e-12, "warmup starts at lr / warmup")
  t.near(lr_at(10, 100, 1e-3, 1e-4, 10), 1e-3, 1e-12, "warmup ends at lr")
  t.near(lr_at(100, 100, 1e-3, 1e-4, 10), 1e-4, 1e-12, "cosine ends at min_lr")
  t.near(lr_at(55, 100, 1e-3, 1e-4, 10), 1e-4 + 0.5 * 9e-4, 1e-12, "cosine midpoint")
  -- weight decay only on matrices outside time_*; Mamba's A_log, D, dt_bias never decay
  local m = hr.build_model(small({mamba_lr_mult = 2}))
  local decayed = {}
  for _, g in ipairs(m.store.groups) do
    for _, e in ipairs(g.entries) do decayed[e.name] = g.weight_decay and g.lr_mult or false end
  end
  t.check(decayed["blocks.0.att.receptance.weight"] == 1, "receptance decays")
  t.check(decayed["blocks.0.att.time_maa_w1"] == false, "time_maa_w1 does not decay")
  t.check(decayed["blocks.0.mamba.A_log"] == false and decayed["blocks.0.mamba.D"] == false, "A_log, D do not decay")
  t.check(decayed["blocks.0.mamba.in_proj.weight"] == 2, "mamba_lr_mult applies to Mamba matrices")
  t.check(decayed["ln_out.weight"] == false, "norms do not decay")
  -- clipping: a huge gradient moves parameters by about lr, and the norm is reported unclipped
  local opt = hr.optim.adamw(m.store, {clip = 1.0})
  m.store.grad:fill_(100)
  local before = m.store.flat:clone()
  local norm = opt:step(1e-3)
  t.near(norm, 100 * math.sqrt(m.store.numel), 1e-3 * norm, "grad norm before clipping")
  local moved = math.sqrt(hr.sum_squares(m.store.flat - before) / m.store.numel)
  t.check(moved > 0.5e-3 and moved < 1.5e-3, "first Adam step moves ~lr: " .. moved)
  m.store.grad:fill_(0 / 0)
  t.raises(function() opt:step(1e-3) end, "gradient norm is", "stopping before the parameters are damaged")
end)

t.case("checkpoints", function()
  local dir = os.tmpname()
  os.remove(dir)
  hr.mkdir(dir)
  local path = dir .. "/m.safetensors"
  hr.manual_seed(3)
  local m = hr.build_model(small({fusion = "gains"}))
  local opt = hr.optim.adamw(m.store)
  local ids = ids_tensor(1, 8, 256, 9)
  opt:zero_grad(); m:loss(ids, ids):backward(); opt:step(1e-3)
  hr.checkpoint.save(path, m, opt, {step = 1, seed = 3})
  local m2, cfg, train = hr.load_checkpoint(path)
  t.check(cfg.fusion == "gains" and cfg.d_model == 64 and train.step == 1, "config and train state round trip")
  local same = hr.no_grad(function() return max_abs_diff(m:forward(ids), m2:forward(ids)) end)
  t.check(same == 0, "loaded model gives identical logits: " .. same)
  local tensors, meta = hr.load_safetensors(path)
  t.check(tensors["optimizer.exp_avg.blocks.0.mamba.A_log"] ~= nil, "optimizer moments saved per parameter")
  t.check(meta["model.preset"] == "tiny" and meta.format == "hybridrt-checkpoint-1", "metadata strings")
  -- another config: the error lists the differing tensors
  local other = hr.build_model(small({fusion = "gains", n_layer = 3}))
  t.raises(function() hr.checkpoint.restore(path, tensors, other, nil) end, "does not match", "missing blocks.2.")
  local wide = hr.build_model(small({fusion = "gains", d_model = 96}))
  t.raises(function() hr.checkpoint.restore(path, tensors, wide, nil) end, "tensors differ", "blocks.0.att.gate.weight is (64, 64) in the checkpoint, (96, 96) in the model", "... and")
  -- a truncated file
  local f = assert(io.open(path, "rb")); local bytes = f:read("a"); f:close()
  local cut = dir .. "/cut.safetensors"
  f = assert(io.open(cut, "wb")); f:write(bytes:sub(1, #bytes // 2)); f:close()
  t.raises(function() hr.load_checkpoint(cut) end, "truncated")
  -- a safetensors file that is not ours
  local foreign = dir .. "/foreign.safetensors"
  hr.save_safetensors(foreign, {w = hr.zeros({2})}, {})
  t.raises(function() hr.load_checkpoint(foreign) end, "not a hybridrt checkpoint")
  -- metadata that lies about the model is refused before anything is built from it
  local lying = dir .. "/lying.safetensors"
  local function resave(key, value)
    local tens, md = hr.load_safetensors(path)
    md[key] = value
    hr.save_safetensors(lying, tens, md)
  end
  resave("model.n_layer", "2147483648")
  local t0 = hr.clock()
  t.raises(function() hr.load_checkpoint(lying) end, "metadata says n_layer = 2147483648", "tensors hold 2 layers")
  t.check(hr.clock() - t0 < 5, "a checkpoint claiming 2^31 layers fails fast")
  resave("model.d_model", "96")
  t.raises(function() hr.load_checkpoint(lying) end, "metadata says d_model = 96 but emb.weight is (256, 64)")
  -- an all-NaN checkpoint is refused by name, not loaded into garbage
  local tens, md = hr.load_safetensors(path)
  tens["blocks.1.ln1.weight"]:fill_(0 / 0)
  hr.save_safetensors(lying, tens, md)
  t.raises(function() hr.load_checkpoint(lying) end, "blocks.1.ln1.weight holds NaN or infinite values")
  for _, p in ipairs({path, cut, foreign, lying}) do os.remove(p) end
  os.remove(dir)
end)

t.finish("lua.model")
