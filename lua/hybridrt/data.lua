-- Training data: a text file read as bytes (vocab 256) or a token file (docs/data.md), split into a
-- training part (the first 90%) and a validation part (the rest), served as batches of windows. The
-- window starts are a pure function of (seed, step, micro-batch, row), so a resumed run sees exactly
-- the batches the uninterrupted run would have, and validation always uses the same windows.
local hr = require "hybridrt.core"

local M = {}
local Data = {}
Data.__index = Data

M.DEFAULT_CORPUS = "tinyshakespeare.txt"

-- The bundled corpus: data/ under the current directory, else under the checkout the binary came from.
function M.default_path()
  for _, dir in ipairs({"data", hr.source_dir .. "/data"}) do
    local path = dir .. "/" .. M.DEFAULT_CORPUS
    local f = io.open(path, "rb")
    if f then f:close(); return path end
  end
  error("the bundled corpus data/" .. M.DEFAULT_CORPUS .. " was not found (looked in ./data and " ..
        hr.source_dir .. "/data); pass data=FILE", 0)
end

-- splitmix64 finaliser: a 64-bit mixing bijection (Lua integers wrap, >> is a logical shift).
local function mix(z)
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end
local function hash(seed, a, b, c)
  return mix(mix(mix(mix(seed + 0x9E3779B97F4A7C15) + a) + b) + c)
end

-- opts: seq (window length), val_fraction (0.1), vocab_size (the model's; ids must fit), tokenizer (a
-- BPE tokenizer: text is encoded with it when opened, a token file must fit its vocab; nil: text is bytes).
function M.open(path, opts)
  local ds = opts.tokenizer and opts.tokenizer.kind ~= "bytes" and opts.tokenizer:open_tokens(path) or
             hr.open_tokens(path)
  local n, seq = ds:len(), opts.seq
  local n_val = math.floor(n * (opts.val_fraction or 0.1))
  local n_train = n - n_val
  local self = setmetatable({ds = ds, path = path, n = n, n_train = n_train, n_val = n_val, seq = seq,
                             vocab = ds.vocab, kind = ds.kind}, Data)
  if opts.vocab_size and ds.vocab > opts.vocab_size then
    error(string.format("%s: token ids go up to vocab %d but the model's vocab_size is %d", path, ds.vocab,
                        opts.vocab_size), 0)
  end
  if n_train < seq + 1 then
    error(string.format("%s: the training split has %d tokens, fewer than one window of seq+1 = %d", path,
                        n_train, seq + 1), 0)
  end
  if n_val > 0 and n_val < seq + 1 then
    error(string.format("%s: the validation split has %d tokens, fewer than one window of seq+1 = %d " ..
                        "(use a longer file or a shorter seq)", path, n_val, seq + 1), 0)
  end
  return self
end

-- Fills x, y from the token windows at starts: directly on the CPU, through host staging buffers
-- (kept between calls) for tensors on a GPU.
function Data:fill(x, y, starts)
  if x.device == "cpu" and y.device == "cpu" then return self.ds:fill(x, y, starts) end
  local hx, hy = self.stage_x, self.stage_y
  if not hx or hx:numel() ~= x:numel() or hx.dtype ~= x.dtype or hy.dtype ~= y.dtype then
    hx, hy = hr.zeros(x.shape, x.dtype), hr.zeros(y.shape, y.dtype)
    self.stage_x, self.stage_y = hx, hy
  end
  self.ds:fill(hx, hy, starts)
  x:copy_(hx)
  y:copy_(hy)
end

-- Fills x, y (B, T) with the training windows of (seed, step, micro).
function Data:train_batch(x, y, seed, step, micro)
  local B, starts, span = x.shape[1], {}, self.n_train - self.seq - 1 + 1
  for b = 1, B do starts[b] = (hash(seed, step, micro, b) >> 1) % span end
  self:fill(x, y, starts)
end

-- Fills x, y with validation batch i (the same windows at every evaluation of a run).
function Data:val_batch(x, y, seed, i)
  local B, starts, span = x.shape[1], {}, self.n_val - self.seq - 1 + 1
  for b = 1, B do starts[b] = self.n_train + (hash(seed, -1, i, b) >> 1) % span end
  self:fill(x, y, starts)
end

function Data:close() self.ds:close() end

return M
