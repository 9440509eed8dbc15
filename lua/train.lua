-- hybridrt run train.lua [key=value ...]
--
-- Trains a language model (by default the tiny hybrid RWKV-6 + Mamba-2 model on the bundled
-- tinyshakespeare, bytes as tokens) with AdamW, warmup + cosine learning rate, gradient clipping and
-- accumulation. Writes out/metrics.jsonl, out/ckpt-stepNNNNNN.safetensors and out/latest.safetensors;
-- resume=latest (or a checkpoint path) continues a run exactly. Ctrl-C saves a checkpoint and stops.
local hr = require "hybridrt"
local options = require "hybridrt.options"
local progress = require "hybridrt.progress"
local model_lib = require "hybridrt.nn.model"
local optim = require "hybridrt.optim"
local data_lib = require "hybridrt.data"
local ckpt = require "hybridrt.checkpoint"
local runlock = require "hybridrt.runlock"

local SPEC = {
  {"preset", "string", "tiny", "model size: tiny, small, medium, large, rwkv6, mamba2"},
  {"arch", "string", nil, "hybrid | rwkv | mamba (default: the preset's)"},
  {"fusion", "string", nil, "hybrid fusion: gains | gate | concat | scalar (default gains)"},
  {"ffn", "string", nil, "gelu | cmix | none (default gelu; cmix for rwkv, none for mamba)"},
  {"head_size", "integer", nil, "RWKV-6 head size: 32, 64 or 128 (default 32)"},
  {"d_model", "integer", nil, "override the preset's width"},
  {"n_layer", "integer", nil, "override the preset's depth"},
  {"gate_p", "number", nil, "initial gate value of the gate fusion (default 0.3)"},
  {"mamba_lr_mult", "number", nil, "learning-rate multiplier of the Mamba-2 parameters (default 1)"},
  {"data", "string", nil, "a text file or a token file (default: bundled tinyshakespeare)"},
  {"tokenizer", "string", nil, "bytes, or a byte-level BPE tokenizer.json (text is encoded with it; default bytes)"},
  {"batch", "integer", 64, "sequences per micro-batch"},
  {"seq", "integer", 64, "tokens per sequence"},
  {"steps", "integer", 2000, "optimizer steps"},
  {"minutes", "number", nil, "stop after this much wall time (a checkpoint is saved first)"},
  {"accum", "integer", 1, "micro-batches accumulated per optimizer step"},
  {"lr", "number", 3e-4, "peak learning rate"},
  {"min_lr", "number", nil, "final learning rate of the cosine (default lr / 10)"},
  {"warmup", "number", 0.1, "warmup, as a fraction of steps"},
  {"wd", "number", 0.1, "AdamW weight decay (matrices only)"},
  {"clip", "number", 1.0, "global gradient-norm clip (0: off)"},
  {"seed", "integer", 1337, "seed of the initialisation and of the data windows"},
  {"device", "string", nil, "auto | cpu | cuda | cuda:N (default HYBRIDRT_DEVICE, else auto)"},
  {"dtype", "string", "f32", "f32 | bf16"},
  {"eval_every", "integer", 250, "steps between validation losses (0: only at the end)"},
  {"eval_batches", "integer", 16, "batches per validation loss"},
  {"save_every", "integer", 500, "steps between checkpoints (0: only at the end)"},
  {"log_every", "integer", 10, "steps between metrics lines (and plain progress lines)"},
  {"out", "string", nil, "run directory (default runs/PRESET-ARCH-DATE-TIME)"},
  {"resume", "string", nil, "a checkpoint path, or latest (out/latest.safetensors)"},
  {"threads", "integer", nil, "CPU threads (default: all cores)"},
  {"help", "boolean", false, "print this help"},
}
-- Options that shape the model; on resume they come from the checkpoint.
local MODEL_KEYS = {"preset", "arch", "fusion", "ffn", "head_size", "d_model", "n_layer", "gate_p", "mamba_lr_mult"}
-- Options whose change makes a resumed run differ from the uninterrupted one.
local RUN_KEYS = {"data", "tokenizer", "batch", "seq", "steps", "accum", "lr", "min_lr", "warmup", "wd", "clip", "seed"}
-- Options a resumed run also takes from the checkpoint unless given again.
local CADENCE_KEYS = {"eval_every", "eval_batches", "save_every", "log_every"}

local given = arg and arg.opts or {}
local o = options.parse(SPEC, arg, "train.lua")
if o.help then
  print(options.help(SPEC, "usage: hybridrt run train.lua [key=value ...]"))
  return
end

local function fail(msg) error("train.lua: " .. msg, 0) end
local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- ---- device and precision ------------------------------------------------------------------------
local device
do
  local want = o.device or os.getenv("HYBRIDRT_DEVICE") or "auto"
  local ok, dev, why = pcall(hr.use_device, want)
  if not ok then fail(tostring(dev)) end
  device = dev
  if why then print("device: cpu (no usable GPU: " .. why .. ")")
  elseif device == "cpu" then print("device: cpu")
  else
    local st = hr.device_stats()
    print(string.format("device: %s, %s, kernels built for %s", device, st.gpu, st.target))
    if st.tuning_file then print(string.format("tuning: %s (%d records)", st.tuning_file, st.tuning_records))
    else print("tuning: no database for this GPU, kernel defaults (hybridrt tune measures one)") end
    if st.tuning_warning then print("warning: " .. st.tuning_warning) end
  end
end
if o.dtype ~= "f32" then
  if o.dtype == "bf16" then fail("dtype=bf16 is not supported yet: every backend trains in f32") end
  fail("dtype must be f32 or bf16 (got '" .. o.dtype .. "')")
end
if o.threads then hr.set_num_threads(o.threads) end

-- ---- resume: the checkpoint supplies the model and any option not given now -------------------------
local resume_path, resume_tensors, resume_train, resume_meta
if o.resume then
  if o.resume == "latest" then
    if not o.out then fail("resume=latest needs out=DIR (the run directory holding latest.safetensors)") end
    resume_path = o.out .. "/latest.safetensors"
  else
    resume_path = o.resume
  end
  if not file_exists(resume_path) then fail("resume: no checkpoint at " .. resume_path) end
  local cfg
  resume_tensors, cfg, resume_train, resume_meta = ckpt.read(resume_path)
  for _, k in ipairs(MODEL_KEYS) do
    if given[k] ~= nil and cfg[k] ~= nil and given[k] ~= cfg[k] then
      fail(string.format("resume: %s=%s differs from the checkpoint's %s=%s (the model cannot change)", k,
                         tostring(given[k]), k, tostring(cfg[k])))
    end
    o[k] = cfg[k]
  end
  o.model_cfg = cfg
  for _, k in ipairs(RUN_KEYS) do
    if given[k] == nil then o[k] = resume_train[k]
    elseif given[k] ~= resume_train[k] then
      print(string.format("note: %s=%s overrides the checkpoint's %s; the run will not repeat the original",
                          k, tostring(given[k]), tostring(resume_train[k])))
    end
  end
  for _, k in ipairs(CADENCE_KEYS) do
    if given[k] == nil and resume_train[k] ~= nil then o[k] = resume_train[k] end
  end
  if not o.out then o.out = resume_path:match("^(.*)/[^/]*$") or "." end
end

for _, k in ipairs({"batch", "seq", "steps", "accum", "eval_batches"}) do
  if o[k] < 1 then fail(string.format("%s must be at least 1 (got %d)", k, o[k])) end
end
for _, k in ipairs({"eval_every", "save_every", "log_every"}) do
  if o[k] < 0 then fail(string.format("%s must be >= 0 (got %d)", k, o[k])) end
end
if o.log_every == 0 then o.log_every = 1 end
if not (o.lr > 0) then fail("lr must be > 0") end
o.min_lr = o.min_lr or o.lr / 10
if o.min_lr < 0 or o.min_lr > o.lr then fail("min_lr must be in [0, lr]") end
if o.warmup < 0 or o.warmup >= 1 then fail("warmup is a fraction of steps in [0, 1)") end
if o.minutes and not (o.minutes > 0) then fail("minutes must be > 0") end

-- ---- tokenizer, model, data, optimizer ------------------------------------------------------------
-- The tokenizer: bytes, a tokenizer.json, or (resuming without tokenizer=) the one the checkpoint holds.
local tok
if resume_meta and given.tokenizer == nil and resume_meta.tokenizer ~= "unknown" then
  local t, why = ckpt.tokenizer(resume_meta)
  if not t then fail("resume: " .. why) end
  tok = t
elseif o.tokenizer == nil or o.tokenizer == "bytes" then
  tok = hr.tokenizer.bytes()
else
  local ok, t = pcall(hr.tokenizer.load, o.tokenizer)
  if not ok then fail(tostring(t)) end
  tok = t
end
o.tokenizer = o.tokenizer or "bytes"
local data_path = o.data or data_lib.default_path()
o.data = data_path
local data
do
  local ok, d = pcall(data_lib.open, data_path, {seq = o.seq, tokenizer = tok})
  if not ok then fail(tostring(d)) end
  data = d
end
-- A token file says nothing of the tokenizer that made it: without tokenizer=, sampling cannot decode.
local tok_meta = ckpt.tokenizer_meta(tok, o.tokenizer ~= "bytes" and o.tokenizer or nil)
if data.kind == "tokens" and tok.kind == "bytes" and data.vocab > 256 then
  tok_meta = ckpt.tokenizer_meta(nil)
  print(string.format("note: %s has a vocab of %d: pass tokenizer=FILE (the tokenizer.json that made it) so the " ..
                      "checkpoints can be sampled as text", data_path, data.vocab))
end
hr.manual_seed(o.seed)
local model
do
  local mopts = o.model_cfg or {}
  if not o.model_cfg then
    for _, k in ipairs(MODEL_KEYS) do mopts[k] = o[k] end
    mopts.vocab_size = tok.kind == "bpe" and tok.vocab_size or (data.kind == "tokens" and data.vocab or 256)
  end
  local ok, m = pcall(model_lib.build, mopts)
  if not ok then fail(tostring(m)) end
  model = m
end
if data.vocab > model.cfg.vocab_size then
  fail(string.format("%s has token ids up to vocab %d but the model's vocab_size is %d", data_path, data.vocab,
                     model.cfg.vocab_size))
end
print(model:describe())
if device ~= "cpu" then model.store:to(device) end -- initialised on the host: the same values everywhere
local data_kind = data.kind == "tokens" and "token file" or tok.kind == "bytes" and "text as bytes" or
                  string.format("text through %s, BPE vocab %d", o.tokenizer, tok.vocab_size)
print(string.format("data: %s (%s, %d tokens: %d train, %d validation)", data_path, data_kind, data.n, data.n_train,
                    data.n_val))
local opt = optim.adamw(model.store, {weight_decay = o.wd, clip = o.clip})

local start_step, elapsed_before, tokens_before = 0, 0, 0
if resume_path then
  ckpt.restore(resume_path, resume_tensors, model, opt)
  resume_tensors = nil
  start_step = resume_train.step or 0
  opt.step_count = resume_train.optimizer_step or start_step
  elapsed_before = resume_train.elapsed_s or 0
  tokens_before = resume_train.tokens or 0
  if resume_train.rng_seed then hr.set_rng_state(resume_train.rng_seed, resume_train.rng_offset) end
  print(string.format("resumed from %s at step %d", resume_path, start_step))
  collectgarbage()
end
if start_step >= o.steps then
  print(string.format("nothing to do: the checkpoint is at step %d of %d (pass steps=N to train longer)",
                      start_step, o.steps))
  return
end

-- ---- the run directory -------------------------------------------------------------------------------
o.out = o.out or string.format("runs/%s-%s-%s", model.cfg.preset, model.cfg.arch, os.date("%Y%m%d-%H%M%S"))
hr.mkdir(o.out)
-- One run at a time in a run directory: OUT/.lock is held until this script ends, however it ends.
local run_lock <close>, lock_note = runlock.acquire(o.out, "train.lua: ")
if lock_note then print(lock_note) end
local metrics_path = o.out .. "/metrics.jsonl"
if not resume_path and file_exists(o.out .. "/latest.safetensors") then
  fail(o.out .. " already holds a run (latest.safetensors): pass resume=latest to continue it, or another out=")
end
-- On resume, metrics after the checkpoint's step are dropped: the continued run writes them again.
if resume_path and file_exists(metrics_path) then
  -- read up to the file's size only: a device there (/dev/full) reads zeros forever, and is refused below
  local f = assert(io.open(metrics_path, "rb"))
  local size = f:seek("end") or 0
  f:seek("set")
  local history = size > 0 and f:read(size) or ""
  f:close()
  local kept = {}
  for line in history:gmatch("[^\n]+") do
    -- only whole lines: a run killed mid-append may have left a cut one (`{"step":12` of step 123)
    local s = tonumber(line:match('^{"step":(%d+),.*}$'))
    if s and s <= start_step then kept[#kept + 1] = line end
  end
  -- all or nothing: on a full disk the history stays as it was (the rewrite once emptied it)
  local ok, err = pcall(hr.write_file, metrics_path, #kept > 0 and table.concat(kept, "\n") .. "\n" or "")
  if not ok then fail(string.format("cannot rewrite %s for the resume (left as it was): %s", metrics_path, err)) end
end
local metrics, open_err = io.open(metrics_path, resume_path and "a" or "w")
if not metrics then fail("cannot write " .. tostring(open_err)) end
-- One metrics line, checked: a failed write (ENOSPC) stops the run naming the file.
local function write_metrics(text)
  local ok, err = metrics:write(text, "\n")
  if ok then ok, err = metrics:flush() end
  if not ok then error(string.format("writing %s failed: %s", metrics_path, tostring(err)), 0) end
end
print(string.format("run: %s (batch %d x seq %d x accum %d = %d tokens/step, %d steps, lr %g -> %g, warmup %d%%)",
                    o.out, o.batch, o.seq, o.accum, o.batch * o.seq * o.accum, o.steps, o.lr, o.min_lr,
                    math.floor(o.warmup * 100 + 0.5)))

-- ---- the step graph: recorded once, replayed in C every micro-batch ------------------------------------
local B, T = o.batch, o.seq
local x, y = hr.zeros({B, T}, "i64", device), hr.zeros({B, T}, "i64", device)
data:train_batch(x, y, o.seed, 1, 1)
local graph, loss = hr.capture(function()
  local l = model:loss(x, y)
  if o.accum > 1 then l = hr.scale(l, 1 / o.accum) end
  return l
end)

local function evaluate()
  local vx, vy = hr.zeros({B, T}, "i64", device), hr.zeros({B, T}, "i64", device)
  local total = 0
  hr.no_grad(function()
    for i = 1, o.eval_batches do
      data:val_batch(vx, vy, o.seed, i)
      total = total + model:loss(vx, vy):item()
    end
  end)
  return total / o.eval_batches
end

local warmup_steps = math.floor(o.warmup * o.steps + 0.5)
local function train_state(step, elapsed, tokens)
  local seed, offset = hr.rng_state()
  local t = {step = step, elapsed_s = elapsed, tokens = tokens, rng_seed = seed, rng_offset = offset}
  for _, k in ipairs(RUN_KEYS) do t[k] = o[k] end
  for _, k in ipairs(CADENCE_KEYS) do t[k] = o[k] end
  return t
end
-- What the run directory holds, for the messages of a run that stops on an error: the step of the
-- last ckpt-step file written and of latest.safetensors (which may lag it when its write failed).
local saved = {step_file = nil, latest = resume_path == o.out .. "/latest.safetensors" and start_step or nil}
local function save(step, elapsed, tokens)
  local path = string.format("%s/ckpt-step%06d.safetensors", o.out, step)
  local state = train_state(step, elapsed, tokens)
  ckpt.save(path, model, opt, state, tok_meta)
  saved.step_file = step
  ckpt.save(o.out .. "/latest.safetensors", model, opt, state, tok_meta)
  saved.latest = step
  return path
end
-- "no checkpoint was written for step 12; runs/a/latest.safetensors (step 10) is intact", or what was.
local function saved_note(step)
  local latest = o.out .. "/latest.safetensors"
  if saved.step_file ~= step then
    return string.format("no checkpoint was written for step %d%s", step,
                         saved.latest and string.format("; %s (step %d) is intact", latest, saved.latest) or "")
  end
  return string.format("%s/ckpt-step%06d.safetensors was written for step %d, %s was not: it %s", o.out, step, step,
                       latest, saved.latest and "still holds step " .. saved.latest or "holds what it held before")
end

local METRIC_KEYS = {"step", "loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "tokens", "elapsed_s",
                     "gpu_mem_mb", "gpu_mem_peak_mb"}
-- On a GPU: the caching allocator's bytes in use, now and at their peak, in MiB.
local function gpu_memory(line)
  local st = device ~= "cpu" and hr.device_stats()
  if st then
    line.gpu_mem_mb = st.mem_in_use / 2 ^ 20
    line.gpu_mem_peak_mb = st.mem_peak / 2 ^ 20
  end
  return line
end
local bar = progress.new(o.steps, {every = o.log_every})
local t_start = hr.clock()
local t_window, tokens_window = t_start, 0
local tokens_per_step = B * T * o.accum
local step, last_loss, last_val, stop_reason = start_step, nil, nil, nil
hr.catch_interrupt(true)
local ok, err = pcall(function()
  while step < o.steps do
    step = step + 1
    local lr = optim.lr_at(step, o.steps, o.lr, o.min_lr, warmup_steps)
    opt:zero_grad()
    local loss_sum = 0
    for micro = 1, o.accum do
      data:train_batch(x, y, o.seed, step, micro)
      graph:step(loss)
      loss_sum = loss_sum + loss:item()
    end
    local gnorm = opt:step(lr)
    if device ~= "cpu" and step == start_step + 1 then -- every kernel of a step is loaded by now
      local st = hr.device_stats()
      bar:print(string.format("kernels: %d cached, %d compiled (%.2f s)", st.kernels_cached,
                              st.kernels_compiled + st.kernels_rebuilt, st.kernel_load_s))
      if st.cache_warning then bar:print("warning: " .. st.cache_warning) end
    end
    tokens_window = tokens_window + tokens_per_step
    last_loss = loss_sum
    local now = hr.clock()
    local elapsed = elapsed_before + (now - t_start)
    local line = nil
    if step % o.log_every == 0 or step == o.steps then
      line = {step = step, loss = loss_sum, lr = lr, grad_norm = gnorm,
              tokens_per_s = tokens_window / math.max(now - t_window, 1e-9),
              tokens = tokens_before + (step - start_step) * tokens_per_step, elapsed_s = elapsed}
      t_window, tokens_window = now, 0
    end
    if (o.eval_every > 0 and step % o.eval_every == 0) or step == o.steps then
      last_val = evaluate()
      line = line or {step = step, loss = loss_sum, lr = lr, grad_norm = gnorm, elapsed_s = elapsed}
      line.val_loss = last_val
      bar:print(string.format("step %d: val_loss %.4f (train %.4f)", step, last_val, loss_sum))
    end
    if line then
      write_metrics(options.json_line(METRIC_KEYS, gpu_memory(line)))
      bar.tps = line.tokens_per_s or bar.tps
    end
    local rate = (step - start_step) / math.max(now - t_start, 1e-9)
    bar:update(step, string.format("loss %.4f | %s tok/s | ETA %s", loss_sum,
                                   bar.tps and string.format("%.0f", bar.tps) or "?",
                                   progress.format_duration((o.steps - step) / rate)))
    if o.save_every > 0 and step % o.save_every == 0 and step < o.steps then
      bar:print("saved " .. save(step, elapsed, tokens_before + (step - start_step) * tokens_per_step))
    end
    if hr.interrupted() then stop_reason = "interrupted (Ctrl-C)"; break end
    if o.minutes and elapsed - elapsed_before >= o.minutes * 60 then
      stop_reason = string.format("time limit of %g minutes reached", o.minutes)
      break
    end
  end
end)
hr.catch_interrupt(false)
bar:finish()
metrics:close()
graph:close()
if not ok then error(string.format("training stopped at step %d: %s (%s)", step, tostring(err), saved_note(step)), 0) end
local elapsed = elapsed_before + (hr.clock() - t_start)
local saved_ok, path = pcall(save, step, elapsed, tokens_before + (step - start_step) * tokens_per_step)
if not saved_ok then error(string.format("saving step %d failed: %s (%s)", step, tostring(path), saved_note(step)), 0) end
if stop_reason then print(string.format("stopped at step %d: %s", step, stop_reason)) end
print(string.format("done: step %d, train loss %.4f, val_loss %s, %.1f s; saved %s (and latest.safetensors)",
                    step, last_loss or 0 / 0, last_val and string.format("%.4f", last_val) or "-",
                    elapsed, path))
data:close()
if stop_reason and stop_reason:find("interrupted") then
  run_lock:release() -- os.exit skips closing it
  os.exit(130)
end
