-- hybridrt check [key=value ...]   (or: hybridrt run gates.lua ...)
--
-- The source project's validation gates on a freshly initialised model (or, with ckpt=FILE, on a
-- trained one), each printed as PASS / WARN / FAIL with its number:
--   G1 forward: logits have shape (B, T, V) and are all finite
--   G2 initial last-position entropy / ln(V): >= 0.90 PASS, >= 0.50 WARN, else FAIL
--   G3 a short training run lowers the loss, with mean gradient norm 0.5-1.5 PASS, 1.5-5 (or below
--      0.5) WARN, > 5 FAIL; a loss that does not go down FAILs
--   G4 (hybrid only) RWKV-6 / Mamba-2 gradient-norm ratio over that run: 0.3-3 PASS, 0.1-0.3 or 3-10
--      WARN, else FAIL
-- G3's gradient norm and G4's ratio are means over the run's second half: the first steps of a fresh
-- model are a transient (the tied embedding's gradient while the byte frequencies are learned, and
-- RWKV-6's zero-initialised output projection) that says nothing about the run's health.
-- Exits non-zero when a gate fails.
local hr = require "hybridrt"
local options = require "hybridrt.options"
local optim = require "hybridrt.optim"
local data_lib = require "hybridrt.data"
local progress = require "hybridrt.progress"

local SPEC = {
  {"preset", "string", "tiny", "model size: tiny, small, medium, large, rwkv6, mamba2"},
  {"arch", "string", nil, "hybrid | rwkv | mamba"},
  {"fusion", "string", nil, "gains | gate | concat | scalar (default gains)"},
  {"ffn", "string", nil, "gelu | cmix | none"},
  {"head_size", "integer", nil, "RWKV-6 head size: 32, 64 or 128"},
  {"d_model", "integer", nil, "override the preset's width"},
  {"n_layer", "integer", nil, "override the preset's depth"},
  {"data", "string", nil, "training text or token file for G3/G4 (default: bundled tinyshakespeare)"},
  {"batch", "integer", 16, "batch of the gate runs"},
  {"seq", "integer", 64, "sequence length of the gate runs"},
  {"steps", "integer", 100, "steps of the G3/G4 training run"},
  {"lr", "number", 2e-3, "learning rate of that run (constant after a warmup of a tenth of the steps)"},
  {"seed", "integer", 1337, "seed"},
  {"ckpt", "string", nil, "gate a trained model from this checkpoint instead of a fresh one (G2, an " ..
                          "initialisation gate, is skipped; the G3/G4 run continues its training)"},
  {"help", "boolean", false, "print this help"},
}
-- Options that shape the model: with ckpt= the checkpoint decides them.
local MODEL_KEYS = {"preset", "arch", "fusion", "ffn", "head_size", "d_model", "n_layer"}
local o = options.parse(SPEC, arg, "gates")
if o.help then
  print(options.help(SPEC, "usage: hybridrt check [key=value ...]"))
  return
end
if o.steps < 2 then error("gates: steps must be at least 2", 0) end
if not (o.lr > 0) then error("gates: lr must be > 0", 0) end

hr.manual_seed(o.seed)
local model
if o.ckpt then
  local given = arg and arg.opts or {}
  for _, k in ipairs(MODEL_KEYS) do
    if given[k] ~= nil then
      error(string.format("gates: %s= cannot be combined with ckpt= (the checkpoint holds the model's config)", k), 0)
    end
  end
  local f = io.open(o.ckpt, "rb")
  if not f then error("gates: no checkpoint at " .. o.ckpt, 0) end
  f:close()
  model = hr.load_checkpoint(o.ckpt)
  print("checkpoint: " .. o.ckpt)
else
  model = hr.build_model({preset = o.preset, arch = o.arch, fusion = o.fusion, ffn = o.ffn,
                          head_size = o.head_size, d_model = o.d_model, n_layer = o.n_layer})
end
print(model:describe())
local cfg, V, B, T = model.cfg, model.cfg.vocab_size, o.batch, o.seq
local data = data_lib.open(o.data or data_lib.default_path(), {seq = T, vocab_size = V})
local results = {}
local function gate(name, verdict, text)
  results[#results + 1] = verdict
  print(string.format("%s %-4s %s", name, verdict, text))
end

local x, y = hr.zeros({B, T}, "i64"), hr.zeros({B, T}, "i64")
data:train_batch(x, y, o.seed, 0, 1)

-- G1 and G2 on the initial model.
hr.no_grad(function()
  local logits = model:forward(x)
  local s = logits.shape
  local finite = hr.sum_squares(logits)
  finite = finite == finite and finite < math.huge
  local shape_ok = #s == 3 and s[1] == B and s[2] == T and s[3] == V
  gate("G1", (shape_ok and finite) and "PASS" or "FAIL",
       string.format("forward logits shape (%s), expected (%d, %d, %d); %s", table.concat(s, ", "), B, T, V,
                     finite and "all finite" or "NaN or Inf present"))
  -- entropy of softmax at the last position, averaged over the batch
  local last = logits:narrow(2, T, 1):reshape(B, V):totable()
  local total = 0
  for b = 1, B do
    local row, m = last[b], -math.huge
    for v = 1, V do if row[v] > m then m = row[v] end end
    local z = 0
    for v = 1, V do z = z + math.exp(row[v] - m) end
    local h = 0
    for v = 1, V do
      local p = math.exp(row[v] - m) / z
      if p > 0 then h = h - p * math.log(p) end
    end
    total = total + h
  end
  local ratio = total / B / math.log(V)
  if o.ckpt then
    print(string.format("G2 SKIP gates a fresh model's initialisation (this trained model's last-position " ..
                        "entropy / ln(V) is %.4f)", ratio))
  else
    gate("G2", ratio >= 0.9 and "PASS" or ratio >= 0.5 and "WARN" or "FAIL",
         string.format("initial last-position entropy / ln(V) = %.4f (PASS >= 0.90, WARN >= 0.50)", ratio))
  end
end)

-- G3 and G4: a short run with the training loop's optimizer.
local opt = optim.adamw(model.store, {weight_decay = 0.1, clip = 1.0})
local function component_norm(component)
  local s = 0
  for _, e in ipairs(model.store.list) do
    if e.component == component then s = s + hr.sum_squares(e.tensor.grad) end
  end
  return math.sqrt(s)
end
local first_losses, last_losses, norms, ratios = {}, {}, {}, {}
local window = math.max(1, o.steps // 5)
local half = o.steps // 2
local graph, loss = hr.capture(function() return model:loss(x, y) end)
-- the run takes about a minute for the default model: a bar on a terminal, else a line every 25 steps
local bar = progress.new(o.steps, {every = 25, label = "short run "})
local t0 = hr.clock()
for step = 1, o.steps do
  data:train_batch(x, y, o.seed, step, 1)
  opt:zero_grad()
  graph:step(loss)
  local l = loss:item()
  if step <= window then first_losses[#first_losses + 1] = l end
  if step > o.steps - window then last_losses[#last_losses + 1] = l end
  local late = step > half
  if cfg.arch == "hybrid" and late then
    ratios[#ratios + 1] = {component_norm("rwkv6"), component_norm("mamba2")}
  end
  local norm = opt:step(optim.lr_at(step, o.steps, o.lr, o.lr, math.max(1, o.steps // 10)))
  if late then norms[#norms + 1] = norm end
  local per_step = (hr.clock() - t0) / step
  bar:update(step, string.format("loss %.4f | ETA %s", l, progress.format_duration((o.steps - step) * per_step)))
end
bar:finish()
graph:close()
local function mean(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s / #t end
local l0, l1, gn = mean(first_losses), mean(last_losses), mean(norms)
local verdict
if not (l1 < l0) or gn ~= gn or gn > 5 then verdict = "FAIL"
elseif gn >= 0.5 and gn <= 1.5 then verdict = "PASS"
else verdict = "WARN" end
gate("G3", verdict, string.format("%d steps at lr %g: loss %.4f -> %.4f (mean of first/last %d), mean grad norm " ..
                                  "%.3f over the last %d steps (PASS 0.5-1.5, WARN 1.5-5, FAIL > 5 or no decrease)",
                                  o.steps, o.lr, l0, l1, window, gn, #norms))
if cfg.arch == "hybrid" then
  local r, m = 0, 0
  for _, p in ipairs(ratios) do r, m = r + p[1], m + p[2] end
  local ratio = m > 0 and r / m or math.huge
  local v = (ratio >= 0.3 and ratio <= 3) and "PASS" or ((ratio >= 0.1 and ratio < 0.3) or (ratio > 3 and ratio <= 10))
            and "WARN" or "FAIL"
  gate("G4", v, string.format("RWKV-6 / Mamba-2 gradient-norm ratio %.3f over the last %d steps (|g_rwkv| %.4f, " ..
                              "|g_mamba| %.4f; PASS 0.3-3, WARN 0.1-0.3 or 3-10)", ratio, #ratios, r / #ratios,
                              m / #ratios))
else
  print("G4 SKIP only a hybrid model has two branches to compare")
end
data:close()

local counts = {PASS = 0, WARN = 0, FAIL = 0}
for _, v in ipairs(results) do counts[v] = counts[v] + 1 end
print(string.format("gates: %d PASS, %d WARN, %d FAIL", counts.PASS, counts.WARN, counts.FAIL))
if counts.FAIL > 0 then os.exit(1) end
