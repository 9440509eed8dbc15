-- hybridrt tune [--budget 10m] [--show] [MODEL.lua] [key=value ...]
--
-- Auto-tuning on the current GPU: for every kernel with a tuning space (the @tune lines of
-- kernel_src/) and the shapes of the models asked for (presets, or a Lua file returning a model
-- config), every variant runs on random inputs; one that disagrees with the default variant is
-- discarded and reported; the others are timed (warm-up, then the median of repeats over rotated
-- input sets, each timed with CUDA events around the op) and every time is written to this GPU's tuning
-- database, one record at a time (an interrupted tune keeps what it measured, and a rerun measures
-- only what is missing). Training runs then use the fastest variant (docs/tuning.md).
local hr = require "hybridrt"
local model_lib = require "hybridrt.nn.model"
local options = require "hybridrt.options"
local progress = require "hybridrt.progress"

local SPEC = {
  {"budget", "string", "10m", "time limit: 90s, 10m, 1h (stops between measurements; rerun to continue)"},
  {"show", "boolean", false, "print what a run on this GPU would use, measure nothing"},
  {"model", "string", nil, "a Lua file returning a model config ({preset=..., d_model=..., batch=, seq=})"},
  {"presets", "string", "tiny,small,medium", "model presets whose shapes are tuned (without model=)"},
  {"batch", "integer", 64, "batch of the tuned shapes"},
  {"seq", "integer", 64, "sequence length of the tuned shapes"},
  {"repeat", "integer", 20, "timed runs per variant (the median is kept)"},
  {"db", "string", nil, "the database file (default: CACHE_DIR/tuned/<gpu>-<arch>.tune)"},
  {"help", "boolean", false, "print this help"},
}
local o = options.parse(SPEC, arg, "tune")
if o.help then
  print(options.help(SPEC, "usage: hybridrt tune [--budget 10m] [--show] [MODEL.lua] [key=value ...]"))
  return
end
local function fail(msg) error("hybridrt tune: " .. msg, 0) end

local function parse_duration(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)([smh]?)$")
  if not n then fail("budget must look like 90s, 10m or 1h (got '" .. tostring(s) .. "')") end
  return tonumber(n) * ({s = 1, m = 60, h = 3600, [""] = 1})[unit]
end
local budget = parse_duration(o.budget)
if o["repeat"] < 3 then fail("repeat must be at least 3") end

-- ---- the GPU and its database ----
local ok, dev = pcall(hr.use_device, "cuda")
if not ok then fail("needs a GPU: " .. tostring(dev)) end
local st = hr.device_stats()
local db_path = o.db or (hr.cache_dir() .. "/tuned/" .. hr.tune_db_filename(st.gpu_name, st.target))
hr.mkdir(db_path:match("^(.*)/[^/]*$") or ".")
local header = {gpu = st.gpu_name, arch = st.target, driver = st.driver, nvrtc = st.nvrtc,
                date = os.date("!%Y-%m-%d")}

-- ---- the shapes to tune: one set per model ----
local models = {}
if o.model then
  local chunk, err = loadfile(o.model)
  if not chunk then fail(err) end
  local cfg_ok, cfg = pcall(chunk)
  if not cfg_ok or type(cfg) ~= "table" then fail(o.model .. " must return a model config table") end
  models[1] = cfg
else
  for name in o.presets:gmatch("[^,]+") do
    if not model_lib.presets[name] then fail("unknown preset '" .. name .. "'") end
    models[#models + 1] = {preset = name}
  end
end

-- Each case: a kernel, its shape class (as the launcher names it), and a function running the op
-- that launches it on a fresh set of inputs (forward, or forward and backward), returning a tensor to
-- compare across variants.
local cases, seen = {}, {}
local function add_case(kernel, head, dims, make)
  local key = kernel .. "|" .. head .. "|" .. table.concat((function()
    local t = {}
    for i, d in ipairs(dims) do t[i] = d[1] .. "=" .. d[2] end
    return t
  end)(), ",")
  if seen[key] then return end
  seen[key] = true
  cases[#cases + 1] = {kernel = kernel, head = head, dims = dims, make = make, key = key}
end
local function randn(shape) return hr.randn(shape):to(dev) end
for _, m in ipairs(models) do
  local cfg = model_lib.config(m)
  local B, T = m.batch or o.batch, m.seq or o.seq
  local rows, C, V = B * T, cfg.d_model, cfg.vocab_size
  add_case("hr_group_norm_forward", 0, {{"segments", rows}, {"size", C}}, function()
    local x, w, b = randn({rows, C}), randn({C}), randn({C})
    return function() return hr.layer_norm(x, w, b, 1e-5) end
  end)
  add_case("hr_group_norm_backward_dx", 0, {{"segments", rows}, {"size", C}}, function()
    local x, w, b = randn({rows, C}):requires_grad_(), randn({C}), randn({C})
    return function()
      x.grad = nil
      hr.sum(hr.layer_norm(x, w, b, 1e-5):view(-1), 1):backward()
      return x.grad
    end
  end)
  add_case("hr_gated_rms_norm_forward", 0, {{"segments", rows}, {"size", C}}, function()
    local x, w = randn({rows, C}), randn({C})
    return function() return hr.rms_norm(x, w, 1e-5) end
  end)
  add_case("hr_gated_rms_norm_backward_dx", 0, {{"segments", rows}, {"size", C}}, function()
    local x, w = randn({rows, C}):requires_grad_(), randn({C})
    return function()
      x.grad = nil
      hr.sum(hr.rms_norm(x, w, 1e-5):view(-1), 1):backward()
      return x.grad
    end
  end)
  add_case("hr_cross_entropy_rows", 0, {{"rows", rows}, {"classes", V}}, function()
    local logits, targets = randn({rows, V}), hr.zeros({rows}, "i64")
    local flat = {}
    for i = 1, rows do flat[i] = (i * 7919) % V end
    targets = hr.tensor(flat, "i64"):to(dev)
    return function() return hr.cross_entropy(logits, targets):view(1) end
  end)
  if cfg.arch ~= "mamba" then
    local N = cfg.head_size
    local H = C // N
    add_case("hr_wkv6_backward", N, {{"pairs", B * H}, {"T", T}, {"N", N}}, function()
      local shape = {B, T, H, N}
      local r, k, v = randn(shape):requires_grad_(), randn(shape):requires_grad_(), randn(shape):requires_grad_()
      local w = hr.uniform(shape, -3, 0.5):to(dev):requires_grad_()
      local u = randn({H, N}):requires_grad_()
      return function()
        r.grad = nil
        hr.sum(hr.wkv6(r, k, v, w, u):view(-1), 1):backward()
        return r.grad
      end
    end)
  end
end

-- ---- what is measured already ----
local spaces = {}
for _, s in ipairs(hr.tune_spaces()) do spaces[s.kernel] = s end
local existing = {}
local function load_db()
  existing = {}
  local f = io.open(db_path, "r")
  if not f then return nil end
  f:close()
  local db_ok, db, warn = pcall(hr.tune_db, db_path)
  if not db_ok then fail(tostring(db) .. " (move it away to start a new database)") end
  if warn then print("warning: " .. warn) end
  for _, r in ipairs(db.records) do
    local dims = {}
    for i, d in ipairs(r.shape) do dims[i] = d[1] .. "=" .. d[2] end
    existing[r.kernel .. "|" .. r.head .. "|" .. table.concat(dims, ",") .. "|" .. r.src .. "|" .. r.dtype] = r
  end
  return db
end
local function record_of(c)
  local s = spaces[c.kernel]
  return existing[c.key .. "|" .. hr.tune_source_hash(s.file) .. "|f32"]
end

-- ---- --show: the variant each case would run ----
if o.show then
  load_db()
  print(string.format("tuning database: %s%s", db_path, io.open(db_path) and "" or " (none yet: defaults everywhere)"))
  print(string.format("%-32s %-34s %8s %8s", "kernel", "shape", "default", "chosen"))
  for _, c in ipairs(cases) do
    local s, r = spaces[c.kernel], record_of(c)
    local dims = c.key:match("|[^|]*|(.*)$")
    print(string.format("%-32s %-34s %8d %8s", c.kernel, dims, s.default, r and tostring(r.best) or "default"))
  end
  return
end

-- ---- measuring ----
local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end
-- max |a - b| / max |b|: variants differ only by floating-point reordering
local function rel_diff(a, b)
  local x, y = a:cpu():view(-1):totable(), b:cpu():view(-1):totable()
  local num, den = 0, 0
  for i = 1, #y do
    num = math.max(num, math.abs(x[i] - y[i]))
    den = math.max(den, math.abs(y[i]))
  end
  return den > 0 and num / den or num
end

load_db()
print(string.format("tuning %s (%s) into %s: %d cases, budget %s", st.gpu_name, st.target, db_path, #cases, o.budget))
local bar = progress.new(#cases)
local t_start, rows_out, discarded = hr.clock(), {}, {}
local stopped = nil
for i, c in ipairs(cases) do
  if hr.clock() - t_start > budget then
    stopped = string.format("budget of %s spent after %d of %d cases (rerun to measure the rest)", o.budget,
                            i - 1, #cases)
    break
  end
  local s = spaces[c.kernel]
  local src = hr.tune_source_hash(s.file)
  local have = record_of(c)
  local measured = {}
  if have then for _, t in ipairs(have.times) do measured[t[1]] = t[2] end end
  local todo = {}
  for _, v in ipairs(s.values) do if not measured[v] then todo[#todo + 1] = v end end
  if #todo > 0 then
    local sets = {c.make(), c.make(), c.make()} -- rotated so no variant times a warm cache alone
    hr.tune_force(c.kernel, s.default)
    local reference = sets[1]():detach()
    local times = {}
    for _, v in ipairs(todo) do
      local run_ok, err = pcall(function()
        hr.tune_force(c.kernel, v)
        local diff = rel_diff(sets[1](), reference)
        if diff > 1e-4 then
          discarded[#discarded + 1] = string.format("%s %s=%d at %s: differs from the default by %.2g", c.kernel,
                                                    s.knob, v, c.key, diff)
          return
        end
        for w = 1, 2 do sets[w % 3 + 1]() end
        hr.synchronize()
        local ts = {}
        for r = 1, o["repeat"] do ts[r] = hr.gpu_time(sets[r % 3 + 1]) end -- CUDA events around the op
        times[#times + 1] = {v, median(ts)}
      end)
      if not run_ok then
        discarded[#discarded + 1] = string.format("%s %s=%d at %s: %s", c.kernel, s.knob, v, c.key, tostring(err))
      end
    end
    hr.tune_force(c.kernel, 0)
    if #times > 0 then
      hr.tune_record(db_path, header, {kernel = c.kernel, src = src, dtype = "f32", head = c.head, shape = c.dims,
                                       knob = s.knob, times = times})
      load_db()
    end
  end
  bar:update(i, c.kernel)
end
bar:finish()

-- ---- the table ----
load_db()
print(string.format("%-30s %-32s %10s %10s %8s %s", "kernel", "shape", "default ms", "best ms", "speed-up", "chosen"))
for _, c in ipairs(cases) do
  local r, s = record_of(c), spaces[c.kernel]
  if r then
    local default_ms, best_ms = nil, math.huge
    for _, t in ipairs(r.times) do
      if t[1] == s.default then default_ms = t[2] end
      if t[2] < best_ms then best_ms = t[2] end
    end
    local dims = c.key:match("|[^|]*|(.*)$")
    print(string.format("%-30s %-32s %10s %10.4f %8s %s=%d", c.kernel, dims,
                        default_ms and string.format("%.4f", default_ms) or "-", best_ms,
                        default_ms and string.format("%.2fx", default_ms / best_ms) or "-", s.knob, r.best))
  end
end
for _, d in ipairs(discarded) do print("discarded: " .. d) end
if stopped then print("stopped: " .. stopped) end
print("database: " .. db_path)
