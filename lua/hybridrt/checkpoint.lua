-- Checkpoints: one safetensors file holding the parameters under their reference names, the AdamW
-- moments (optimizer.exp_avg.NAME, optimizer.exp_avg_sq.NAME), and string metadata: the format tag,
-- the model config (model.*), the training state (train.*: step, seed, data position, RNG, options)
-- and the tokenizer. hr.save_safetensors writes it atomically (temp file + rename), so a crash or a
-- failed save never leaves a broken file under the real name. docs/checkpoints.md lists the names.
local hr = require "hybridrt.core"
local model_lib = require "hybridrt.nn.model"

local M = {}

M.FORMAT = "hybridrt-checkpoint-1"

local function encode(v)
  if math.type(v) == "float" then return string.format("%.17g", v) end
  return tostring(v)
end

local function decode(s)
  if s == "true" then return true elseif s == "false" then return false end
  return tonumber(s) or s
end

-- The tokenizer metadata of a run: {kind = "bytes"} or {kind = "bpe", json = tokenizer.json text, path =
-- where it came from}; kind "unknown" for a token file made by a tokenizer the run was not told about.
function M.tokenizer_meta(tok, path)
  if not tok then return {kind = "unknown"} end
  if tok.kind == "bytes" then return {kind = "bytes"} end
  return {kind = "bpe", json = tok:to_json(), path = path}
end

-- The tokenizer recorded in a checkpoint's metadata: a Tokenizer, or nil and why not.
function M.tokenizer(meta)
  local kind = meta.tokenizer
  if kind == nil or kind == "bytes" then return hr.tokenizer.bytes() end
  if kind == "bpe" and meta["tokenizer.json"] then return hr.tokenizer.from_json(meta["tokenizer.json"]) end
  return nil, "the checkpoint records no tokenizer (it was trained on a token file without tokenizer=FILE)"
end

-- Writes model (and optimizer, when given) with the train table as train.* metadata and the
-- tokenizer (M.tokenizer_meta; bytes when nil).
function M.save(path, model, optimizer, train, tokenizer)
  tokenizer = tokenizer or {kind = "bytes"}
  local tensors, meta = {}, {format = M.FORMAT, tokenizer = tokenizer.kind}
  if tokenizer.json then meta["tokenizer.json"] = tokenizer.json end
  if tokenizer.path then meta["tokenizer.path"] = tokenizer.path end
  for _, e in ipairs(model.store.list) do
    tensors[e.name] = e.tensor
    if optimizer then
      tensors["optimizer.exp_avg." .. e.name] = optimizer.m:narrow(1, e.offset + 1, e.numel):view(e.shape)
      tensors["optimizer.exp_avg_sq." .. e.name] = optimizer.v:narrow(1, e.offset + 1, e.numel):view(e.shape)
    end
  end
  for _, k in ipairs(model_lib.fields) do
    if model.cfg[k] ~= nil then meta["model." .. k] = encode(model.cfg[k]) end
  end
  for k, v in pairs(train or {}) do meta["train." .. k] = encode(v) end
  if optimizer then meta["train.optimizer_step"] = encode(optimizer.step_count) end
  hr.save_safetensors(path, tensors, meta)
end

-- The model config in a checkpoint's metadata against the tensors it holds, before anything is built
-- from it: a config claiming 2^31 layers must fail here, naming the mismatch, not allocate them.
local function check_config(path, cfg, tensors)
  local layers = 0
  for name in pairs(tensors) do
    local i = tonumber(name:match("^blocks%.(%d+)%."))
    if i and i + 1 > layers then layers = i + 1 end
  end
  if cfg.n_layer ~= nil and cfg.n_layer ~= layers then
    error(string.format("%s: its metadata says n_layer = %s but its tensors hold %d layers (blocks.0 .. blocks.%d)",
                        path, tostring(cfg.n_layer), layers, layers - 1), 0)
  end
  local emb = tensors["emb.weight"]
  if emb and #emb.shape == 2 then
    for _, f in ipairs({{"vocab_size", 1}, {"d_model", 2}}) do
      if cfg[f[1]] ~= nil and cfg[f[1]] ~= emb.shape[f[2]] then
        error(string.format("%s: its metadata says %s = %s but emb.weight is (%d, %d)", path, f[1],
                            tostring(cfg[f[1]]), emb.shape[1], emb.shape[2]), 0)
      end
    end
  end
end

-- Reads a checkpoint: tensors, the model config, the train table and the raw metadata.
function M.read(path)
  local tensors, meta = hr.load_safetensors(path)
  if meta.format ~= M.FORMAT then
    error(string.format("%s: not a hybridrt checkpoint (metadata format is %s, expected %s)", path,
                        tostring(meta.format), M.FORMAT), 0)
  end
  local cfg, train = {}, {}
  for k, v in pairs(meta) do
    local field = k:match("^model%.(.+)$")
    if field then cfg[field] = decode(v) end
    local tkey = k:match("^train%.(.+)$")
    if tkey then train[tkey] = decode(v) end
  end
  check_config(path, cfg, tensors)
  return tensors, cfg, train, meta
end

-- Copies the checkpoint's tensors into model (and optimizer). Every parameter must be present with
-- the same shape; the error lists what differs (missing, unexpected, other shape).
function M.restore(path, tensors, model, optimizer)
  local problems, seen = {}, {}
  local function shape_str(s) return "(" .. table.concat(s, ", ") .. ")" end
  local function want(name, shape)
    seen[name] = true
    local t = tensors[name]
    if not t then problems[#problems + 1] = "missing " .. name; return nil end
    local ts = t.shape
    local same = #ts == #shape
    for i = 1, #shape do same = same and ts[i] == shape[i] end
    if not same then
      problems[#problems + 1] = string.format("%s is %s in the checkpoint, %s in the model", name, shape_str(ts),
                                              shape_str(shape))
      return nil
    end
    return t
  end
  local copies = {}
  for _, e in ipairs(model.store.list) do
    local t = want(e.name, e.shape)
    if t then copies[#copies + 1] = {e.tensor:detach(), t} end
    if optimizer then
      local m = want("optimizer.exp_avg." .. e.name, e.shape)
      local v = want("optimizer.exp_avg_sq." .. e.name, e.shape)
      if m then copies[#copies + 1] = {optimizer.m:narrow(1, e.offset + 1, e.numel):view(e.shape), m} end
      if v then copies[#copies + 1] = {optimizer.v:narrow(1, e.offset + 1, e.numel):view(e.shape), v} end
    end
  end
  for name in pairs(tensors) do
    if not seen[name] and not (not optimizer and name:find("^optimizer%.")) then
      problems[#problems + 1] = "unexpected " .. name
    end
  end
  if #problems > 0 then
    table.sort(problems)
    local shown = {}
    for i = 1, math.min(#problems, 12) do shown[i] = "  " .. problems[i] end
    if #problems > 12 then shown[#shown + 1] = string.format("  ... and %d more", #problems - 12) end
    error(string.format("%s does not match this model's config (%d tensors differ):\n%s", path, #problems,
                        table.concat(shown, "\n")), 0)
  end
  for _, c in ipairs(copies) do
    if c[2].dtype ~= "f32" then c[2] = c[2]:to("f32") end
    c[1]:copy_(c[2])
  end
  -- a NaN or an infinity anywhere would make every later step (and every sample) garbage: say so now
  for name, t in pairs(tensors) do
    if seen[name] and t:numel() > 0 then
      local ss = hr.sum_squares((t.dtype == "f32" or t.dtype == "f64") and t or t:to("f32"))
      if ss ~= ss or ss == math.huge then
        error(string.format("%s: %s holds NaN or infinite values: the checkpoint is corrupt or its run diverged " ..
                            "(resume from an earlier one)", path, name), 0)
      end
    end
  end
end

-- hr.load_checkpoint(path) -> model, cfg, train, tokenizer: the model rebuilt from the checkpoint's config,
-- with its weights, and its tokenizer (nil when the checkpoint records none).
function M.load_model(path)
  local tensors, cfg, train, meta = M.read(path)
  local ok, model = pcall(model_lib.build, cfg)
  if not ok then error(string.format("%s: its model config is invalid: %s", path, tostring(model)), 0) end
  M.restore(path, tensors, model, nil)
  local tok_ok, tok = pcall(M.tokenizer, meta)
  if not tok_ok then error(string.format("%s: its tokenizer cannot be read: %s", path, tostring(tok)), 0) end
  return model, model.cfg, train, tok
end

return M
