-- hybridrt run sample.lua ckpt=runs/NAME/latest.safetensors [prompt=...] [tokens=500] [temperature=1.0]
--                         [top_p=1.0] [seed=...]
--
-- Generates text from a checkpoint in recurrent mode: the prompt goes through the model once (in
-- parallel), then each new token costs one step with O(1) state per layer (the token-shift inputs,
-- the RWKV-6 WKV state, the Mamba-2 conv window and SSM state), whatever the length so far.
local hr = require "hybridrt"
local options = require "hybridrt.options"

local SPEC = {
  {"ckpt", "string", nil, "checkpoint to sample from (required), e.g. runs/NAME/latest.safetensors"},
  {"prompt", "string", "", "text to continue (default: start after a newline)"},
  {"tokens", "integer", 500, "tokens to generate"},
  {"temperature", "number", 1.0, "softmax temperature (0: always the most likely token)"},
  {"top_p", "number", 1.0, "nucleus sampling: keep the most likely tokens up to this probability mass"},
  {"seed", "integer", nil, "seed of the sampler (default: from the clock)"},
  {"tokenizer", "string", nil, "a tokenizer.json to decode with (default: the one the checkpoint records)"},
  {"device", "string", nil, "auto | cpu | cuda | cuda:N (default HYBRIDRT_DEVICE, else auto)"},
  {"help", "boolean", false, "print this help"},
}

local o = options.parse(SPEC, arg, "sample.lua")
if o.help then
  print(options.help(SPEC, "usage: hybridrt run sample.lua ckpt=FILE [key=value ...]"))
  return
end
local function fail(msg) error("sample.lua: " .. msg, 0) end
if not o.ckpt then fail("ckpt=FILE is required (a checkpoint written by train.lua)") end
local device
do
  local ok, dev = pcall(hr.use_device, o.device or os.getenv("HYBRIDRT_DEVICE") or "auto")
  if not ok then fail(tostring(dev)) end
  device = dev
end
if o.tokens < 0 then fail("tokens must be >= 0") end
if o.temperature < 0 then fail("temperature must be >= 0") end
if not (o.top_p > 0 and o.top_p <= 1) then fail("top_p must be in (0, 1]") end
do
  local f = io.open(o.ckpt, "rb")
  if not f then fail("no checkpoint at " .. o.ckpt) end
  f:close()
end

local model, cfg, _, tok = hr.load_checkpoint(o.ckpt)
if o.tokenizer then
  local ok, t = pcall(hr.tokenizer.load, o.tokenizer)
  if not ok then fail(tostring(t)) end
  tok = t
end
if not tok then
  fail("the checkpoint records no tokenizer (it was trained on a token file without tokenizer=FILE): " ..
       "pass tokenizer=FILE, the tokenizer.json that made the token file")
end
if tok.vocab_size > cfg.vocab_size then
  fail(string.format("the tokenizer has %d tokens but the model only %d: not the tokenizer it was trained with",
                     tok.vocab_size, cfg.vocab_size))
end
math.randomseed(o.seed or os.time())
io.stderr:write(model:describe(), " on ", device, "\n")
if device ~= "cpu" then model.store:to(device) end

-- Picks the next token id (0-based) from a (V) logits table.
local function pick(logits)
  local V = #logits
  if o.temperature == 0 then
    local best = 1
    for i = 2, V do if logits[i] > logits[best] then best = i end end
    return best - 1
  end
  local maxv = -math.huge
  for i = 1, V do if logits[i] > maxv then maxv = logits[i] end end
  local probs, total = {}, 0
  for i = 1, V do
    local p = math.exp((logits[i] - maxv) / o.temperature)
    probs[i] = {i - 1, p}
    total = total + p
  end
  table.sort(probs, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  local keep, mass = #probs, 0
  for i = 1, #probs do
    mass = mass + probs[i][2] / total
    if mass >= o.top_p then keep = i; break end
  end
  local kept = 0
  for i = 1, keep do kept = kept + probs[i][2] end
  local r = math.random() * kept
  for i = 1, keep do
    r = r - probs[i][2]
    if r <= 0 then return probs[i][1] end
  end
  return probs[keep][1]
end

local prompt = o.prompt ~= "" and o.prompt or "\n"
local ids = tok:encode(prompt)
if o.prompt ~= "" then io.write(o.prompt) end

local t0 = hr.clock()
hr.no_grad(function()
  local state = model:new_state()
  local logits = model:forward(hr.tensor(ids, "i64"):view(1, #ids):to(device), state)
  local last = logits:narrow(2, #ids, 1):reshape(cfg.vocab_size):totable()
  local x = hr.zeros({1, 1}, "i64", device)
  for _ = 1, o.tokens do
    local id = pick(last)
    if id >= tok.vocab_size then fail(string.format("the model produced id %d, beyond the tokenizer's %d tokens", id,
                                                    tok.vocab_size)) end
    io.write(tok:decode({id}))
    io.flush()
    x:set(1, 1, id)
    last = model:forward(x, state):reshape(cfg.vocab_size):totable()
  end
end)
io.write("\n")
io.flush()
local dt = hr.clock() - t0
io.stderr:write(string.format("sampled %d tokens in %.2f s (%.1f tokens/s, recurrent mode)\n", o.tokens, dt,
                              o.tokens / math.max(dt, 1e-9)))
