-- The seeds of the fuzz corpora that the Lua library writes (run by tests/fuzz/make_corpus.sh):
--   hybridrt run make_corpus.lua CORPUS_DIR TOKENIZER.json TOKENS.bin
-- safetensors files of every dtype, tiny checkpoints (a 435-parameter Mamba-2 model, with the bytes
-- tokenizer and with the BPE one), token files of both widths, and for each binary format a
-- truncated copy and one with a byte changed: small valid inputs and slightly invalid ones.
local hr = require "hybridrt"
local out, tokenizer_path, tokens_path = arg[1], arg[2], arg[3]
assert(out and tokenizer_path and tokens_path, "usage: make_corpus.lua CORPUS_DIR TOKENIZER.json TOKENS.bin")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
-- path, plus PATH-truncated (cut at `cut` bytes) and PATH-flipped (byte `at` xor 0x20).
local function variants(path, cut, at)
  local s = read(path)
  write(path .. "-truncated", s:sub(1, cut))
  write(path .. "-flipped", s:sub(1, at - 1) .. string.char(s:byte(at) ~ 0x20) .. s:sub(at + 1))
end

-- safetensors: every dtype, a 0-d and an empty tensor, metadata
local st = out .. "/fuzz_safetensors/"
hr.save_safetensors(st .. "dtypes.safetensors", {
  w = hr.tensor({{1, 2, 3}, {4, 5, 6}}), d = hr.tensor({0.5, -2}):to("f64"), h = hr.tensor({1, 2}):to("bf16"),
  i = hr.tensor({7, -8}):to("i32"), l = hr.tensor({9}):to("i64"), b = hr.tensor({1, 2, 255}):to("u8"),
  s = hr.tensor(3.5), e = hr.zeros({0, 4}),
}, {format = "example", note = "seed"})
hr.save_safetensors(st .. "empty.safetensors", {})
variants(st .. "dtypes.safetensors", 200, 30)

-- checkpoints: sample.lua's loader on a tiny model
local ck = out .. "/fuzz_checkpoint/"
local cfg = {arch = "mamba", d_model = 8, n_layer = 1, vocab_size = 8, d_state = 4, headdim = 8, expand = 1,
             ffn = "none"}
local model = hr.build_model(cfg)
hr.checkpoint.save(ck .. "mamba-bytes.safetensors", model, nil, {step = 3, seed = 1, lr = 3e-4}, {kind = "bytes"})
local bpe = hr.tokenizer.load(tokenizer_path)
cfg.vocab_size = bpe.vocab_size
hr.checkpoint.save(ck .. "mamba-bpe.safetensors", hr.build_model(cfg), nil, {step = 0},
                   hr.checkpoint.tokenizer_meta(bpe, "seed.tokenizer.json"))
variants(ck .. "mamba-bytes.safetensors", 1000, 60)
hr.load_checkpoint(ck .. "mamba-bytes.safetensors") -- the valid seeds load
hr.load_checkpoint(ck .. "mamba-bpe.safetensors")

-- token files: 2-byte ids from `hybridrt tokenize`, 4-byte ids, an empty one, text
local tf = out .. "/fuzz_tokenfile/"
write(tf .. "bpe.bin", read(tokens_path))
local ids = {}
for i = 1, 40 do ids[i] = (i * 7919) % 70000 end
hr.write_tokens(tf .. "wide.bin", ids, 70000)
hr.write_tokens(tf .. "empty.bin", {}, 256)
write(tf .. "text.txt", "First Citizen:\nBefore we proceed any further, hear me speak.\n")
variants(tf .. "wide.bin", 50, 17)
print("wrote the Lua seeds into " .. out)
