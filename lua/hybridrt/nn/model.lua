-- The language models: a stack of blocks over a byte (or token) embedding, final RMSNorm, and an LM
-- head tied to the embedding by default. Blocks:
--   hybrid: n = RMSNorm(x); x = x + fuse(rwkv6(n), mamba2(n)); x = x + FFN(RMSNorm(x))
--   rwkv:   x = x + rwkv6(RMSNorm(x)); x = x + FFN(RMSNorm(x))          (FFN defaults to cmix)
--   mamba:  x = x + mamba2(RMSNorm(x)) [; x = x + FFN(RMSNorm(x)) when ffn is not "none"]
-- M.config(opts) resolves a preset and overrides into a checked config; M.build(cfg) makes the model.
local hr = require "hybridrt.core"
local params = require "hybridrt.nn.params"
local rwkv6 = require "hybridrt.nn.rwkv6"
local mamba2 = require "hybridrt.nn.mamba2"
local fusion = require "hybridrt.nn.fusion"
local ffn = require "hybridrt.nn.ffn"
local init = params.init

local M = {}

M.presets = {
  tiny = {d_model = 128, n_layer = 8},
  small = {d_model = 192, n_layer = 12},
  medium = {d_model = 384, n_layer = 12},
  large = {d_model = 768, n_layer = 12},
  rwkv6 = {d_model = 128, n_layer = 8, arch = "rwkv"},     -- pure stacks at the tiny size
  mamba2 = {d_model = 128, n_layer = 8, arch = "mamba"},
}
M.preset_names = {"tiny", "small", "medium", "large", "rwkv6", "mamba2"}
M.archs = {"hybrid", "rwkv", "mamba"}

local defaults = {
  arch = "hybrid", fusion = "gains", head_size = 32, vocab_size = 256,
  d_state = 64, headdim = 64, expand = 2, ngroups = 1, gate_p = 0.3,
  tie_embeddings = true, norm_eps = 1e-6, mamba_lr_mult = 1,
}
-- Config fields a user (or a checkpoint) may set; everything else is refused by name.
M.fields = {"preset", "arch", "fusion", "ffn", "d_model", "n_layer", "head_size", "vocab_size", "dim_ffn",
            "d_state", "headdim", "expand", "ngroups", "gate_p", "tie_embeddings", "norm_eps", "mamba_lr_mult"}

local function one_of(value, list, what)
  for _, v in ipairs(list) do if v == value then return end end
  error(string.format("unknown %s '%s' (valid: %s)", what, tostring(value), table.concat(list, ", ")), 0)
end

-- Upper bounds far above any model this runtime trains, so that a mistyped or crafted size fails here
-- with its name instead of trying to allocate it.
local MAX = {n_layer = 4096, d_model = 65536, vocab_size = 1 << 30, d_state = 65536, headdim = 65536, expand = 64,
             ngroups = 65536, head_size = 65536}

local function positive_int(cfg, key)
  local v = cfg[key]
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("model config: %s must be a positive integer (got %s)", key, tostring(v)), 0)
  end
  if MAX[key] and v > MAX[key] then
    error(string.format("model config: %s = %d is over its limit of %d", key, v, MAX[key]), 0)
  end
end

-- opts: preset name plus any field of M.fields. Returns a fresh, checked config table.
function M.config(opts)
  opts = opts or {}
  local preset = opts.preset or "tiny"
  one_of(preset, M.preset_names, "preset")
  local cfg = {preset = preset}
  for k, v in pairs(defaults) do cfg[k] = v end
  for k, v in pairs(M.presets[preset]) do cfg[k] = v end
  for _, k in ipairs(M.fields) do
    if opts[k] ~= nil then cfg[k] = opts[k] end
  end
  one_of(cfg.arch, M.archs, "arch")
  one_of(cfg.fusion, fusion.names, "fusion")
  cfg.ffn = cfg.ffn or (cfg.arch == "rwkv" and "cmix" or cfg.arch == "mamba" and "none" or "gelu")
  one_of(cfg.ffn, ffn.names, "ffn")
  for _, k in ipairs({"d_model", "n_layer", "head_size", "vocab_size", "d_state", "headdim", "expand", "ngroups"}) do
    positive_int(cfg, k)
  end
  if cfg.arch ~= "mamba" then
    if cfg.head_size ~= 32 and cfg.head_size ~= 64 and cfg.head_size ~= 128 then
      error(string.format("head_size must be 32, 64 or 128 (the sizes the WKV6 kernels are built for), got %d",
                          cfg.head_size), 0)
    end
    if cfg.d_model % cfg.head_size ~= 0 then
      error(string.format("d_model %d is not a multiple of head_size %d", cfg.d_model, cfg.head_size), 0)
    end
  end
  if cfg.arch ~= "rwkv" and (cfg.expand * cfg.d_model) % cfg.headdim ~= 0 then
    error(string.format("Mamba-2 inner width %d (expand %d x d_model %d) is not a multiple of headdim %d",
                        cfg.expand * cfg.d_model, cfg.expand, cfg.d_model, cfg.headdim), 0)
  end
  if cfg.arch ~= "rwkv" and (cfg.expand * cfg.d_model) % cfg.ngroups ~= 0 then
    error(string.format("Mamba-2 inner width %d is not a multiple of ngroups %d", cfg.expand * cfg.d_model, cfg.ngroups), 0)
  end
  if not (cfg.gate_p > 0 and cfg.gate_p < 1) then error("gate_p must be in (0, 1)", 0) end
  if cfg.ffn == "cmix" then cfg.dim_ffn = cfg.dim_ffn or rwkv6.default_dim_ffn(cfg.d_model) end
  return cfg
end

-- Optimizer groups: weight decay on matrices except RWKV's time_* mixing parameters (RWKV-LM's
-- rule), never on the embedding's tied head twice (one tensor), biases, norms or Mamba's A_log/D/dt.
local function classify(e)
  local decay = #e.shape >= 2 and not e.name:find("time_", 1, true) and not e.no_decay
  local lr_mult = e.lr_mult or 1
  return (decay and "decay" or "no_decay") .. "@" .. lr_mult, decay, lr_mult
end

function M.build(cfg)
  cfg = M.config(cfg)
  local store = params.new("f32")
  local model = {cfg = cfg, store = store, blocks = {}}
  local C, V = cfg.d_model, cfg.vocab_size
  local top = {}
  local function opts(component, lr_mult) return {component = component, lr_mult = lr_mult} end

  -- A tied matrix is also the LM head, and RWKV-LM's +-1e-4 input embedding (meant for an untied
  -- model with a large orthogonal head) would make it a near-zero head that starves every block of
  -- gradient. Tied, it starts as mamba_ssm's tied MambaLMHeadModel (and GPT-2) do: normal, std 0.02.
  local emb_init = cfg.tie_embeddings and init.normal(0.02) or init.uniform(-1e-4, 1e-4)
  store:add(top, "emb", "emb.weight", {V, C}, emb_init, opts("embedding"))
  for l = 0, cfg.n_layer - 1 do
    local pre = "blocks." .. l .. "."
    local blk = {p = {}}
    store:add(blk.p, "ln1", pre .. "ln1.weight", {C}, init.ones(), opts("norms"))
    if cfg.arch ~= "mamba" then blk.att = rwkv6.time_mix(store, pre .. "att.", cfg, l, opts("rwkv6")) end
    if cfg.arch ~= "rwkv" then
      blk.mamba = mamba2.mixer(store, pre .. "mamba.", cfg, l, opts("mamba2", cfg.mamba_lr_mult))
    end
    if cfg.arch == "hybrid" then blk.fuse = fusion[cfg.fusion](store, pre .. "fuse.", cfg, opts("fusion")) end
    if cfg.ffn ~= "none" then
      store:add(blk.p, "ln2", pre .. "ln2.weight", {C}, init.ones(), opts("norms"))
      blk.ffn = ffn[cfg.ffn](store, pre .. "ffn.", cfg, l, opts("ffn"))
    end
    model.blocks[l + 1] = blk
  end
  store:add(top, "ln_out", "ln_out.weight", {C}, init.ones(), opts("norms"))
  if not cfg.tie_embeddings then
    local gain = V > C and 0.5 * math.sqrt(V / C) or 0.5      -- RWKV-LM's head init
    store:add(top, "head", "head.weight", {V, C}, init.orthogonal(gain), opts("head"))
  end
  store:finalize(classify)
  model.top = top

  -- forward(ids (B, T) integer, [state]) -> logits (B, T, V). With a state table (from
  -- model:new_state()), recurrent: it continues from the state and leaves the new state in it.
  function model:forward(ids, state)
    local x = hr.embedding(ids, top.emb)
    local eps = cfg.norm_eps
    for i, blk in ipairs(self.blocks) do
      local st = state and state[i]
      local n = hr.rms_norm(x, blk.p.ln1, eps)
      if cfg.arch == "hybrid" then
        x = x + blk.fuse(blk.att.forward(n, st and st.att), blk.mamba.forward(n, st and st.mamba))
      elseif cfg.arch == "rwkv" then
        x = x + blk.att.forward(n, st and st.att)
      else
        x = x + blk.mamba.forward(n, st and st.mamba)
      end
      if blk.ffn then x = x + blk.ffn.forward(hr.rms_norm(x, blk.p.ln2, eps), st and st.ffn) end
    end
    x = hr.rms_norm(x, top.ln_out, eps)
    if cfg.tie_embeddings then return hr.matmul(x, top.emb, false, true) end
    return hr.linear(x, top.head)
  end

  -- Mean cross-entropy of the next-token predictions.
  function model:loss(ids, targets)
    return hr.cross_entropy(self:forward(ids), targets)
  end

  -- A fresh recurrent state: every block's state starts empty (zeros) and fills in on first use.
  function model:new_state()
    local s = {}
    for i = 1, #self.blocks do s[i] = {att = {}, mamba = {}, ffn = {}} end
    return s
  end

  function model:named_parameters() return store:named_parameters() end
  function model:num_parameters() return store.numel end

  -- {component = count, ...} and the order to print them in.
  function model:parameter_counts()
    local counts, order = {}, {}
    for _, e in ipairs(store.list) do
      if not counts[e.component] then order[#order + 1] = e.component end
      counts[e.component] = (counts[e.component] or 0) + e.numel
    end
    return counts, order
  end

  function model:describe()
    local counts, order = self:parameter_counts()
    local parts = {}
    for _, k in ipairs(order) do parts[#parts + 1] = string.format("%s %s", k, M.human(counts[k])) end
    local shape = string.format("%s %s: d_model %d x %d layers", cfg.preset, cfg.arch, C, cfg.n_layer)
    if cfg.arch == "hybrid" then shape = shape .. ", fusion " .. cfg.fusion end
    if cfg.arch ~= "mamba" then shape = shape .. ", head_size " .. cfg.head_size end
    shape = shape .. ", ffn " .. cfg.ffn
    return string.format("model: %s; %s parameters (%s)", shape, M.human(store.numel), table.concat(parts, ", "))
  end
  return model
end

function M.human(n)
  if n >= 1e6 then return string.format("%.2fM", n / 1e6) end
  if n >= 1e3 then return string.format("%.1fK", n / 1e3) end
  return tostring(n)
end

return M
