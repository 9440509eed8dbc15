-- hr.tokenizer: bytes, training, encode/decode round trips, save/load/from_json, ids and tokens,
-- open_tokens (text encoded in memory, token files checked), and the error messages.
local t = require "harness"
local hr = require "hybridrt"

local tmp, cleanup = t.tmpfiles()
local write_file, read_file = t.write_file, t.read_file

local corpus = string.rep("The quick brown fox jumps over the lazy dog.\nA lazy dog, a quick fox; caf\u{e9} na\u{ef}ve.\n", 40)

t.case("bytes", function()
  local b = hr.tokenizer.bytes()
  t.check(b.kind == "bytes" and b.vocab_size == 256 and b.eos == nil, "bytes: kind, vocab 256, no eos")
  local ids = b:encode("A\0\255")
  t.check(#ids == 3 and ids[1] == 65 and ids[2] == 0 and ids[3] == 255, "bytes: one id per byte")
  t.check(b:decode(ids) == "A\0\255", "bytes: decode")
  t.check(tostring(b) == "tokenizer(bytes, vocab 256)", "bytes: tostring")
end)

t.case("train, encode, decode", function()
  local tok = hr.tokenizer.train_bpe{text = corpus, vocab_size = 300}
  t.check(tok.kind == "bpe" and tok.vocab_size == 300, "trained to vocab 300, got " .. tok.vocab_size)
  t.check(tok:id("<pad>") == 0 and tok:id("<eos>") == 3 and tok.eos == 3, "default special tokens first")
  t.check(tok:token(3) == "<eos>" and tok:token(100000) == nil, "token(id)")
  t.check(tok:id("\u{120}the") ~= nil, "a merged token in byte-level form: " .. tostring(tok:id("\u{120}the")))
  local ids = tok:encode(" the lazy dog")
  t.check(#ids < 13, "merges shorten the text: " .. #ids .. " ids")
  -- round trips on random byte strings, valid UTF-8 or not
  math.randomseed(5)
  local bad = 0
  for _ = 1, 300 do
    local parts = {}
    for i = 1, math.random(0, 60) do
      local r = math.random()
      parts[i] = r < 0.3 and string.char(math.random(0, 255)) or r < 0.5 and " the" or r < 0.6 and "<eos>" or
                 r < 0.7 and "\u{e9}\n" or "fox"
    end
    local s = table.concat(parts)
    if tok:decode(tok:encode(s)) ~= s then bad = bad + 1 end
  end
  t.check(bad == 0, "decode(encode(s)) == s for random strings: " .. bad .. " differ")
  t.check(tok:decode(tok:encode("a<eos>b"), {skip_special = true}) == "ab", "skip_special")
  t.check(#tok:encode("") == 0, "empty text")
  local x = hr.tensor(ids, "i64")
  t.check(tok:decode(x) == " the lazy dog", "decode an integer tensor")
end)

t.case("save, load, from_json", function()
  local tok = hr.tokenizer.train_bpe{text = corpus, vocab_size = 290, special_tokens = {"<s>"}, min_frequency = 3}
  local path = tmp("tok.json")
  tok:save(path)
  local back = hr.tokenizer.load(path)
  local s = "The quick fox <s> na\u{ef}ve"
  local a, b = tok:encode(s), back:encode(s)
  t.check(#a == #b and table.concat(a, ",") == table.concat(b, ","), "same ids after save/load")
  t.check(back:to_json() == tok:to_json(), "same JSON")
  t.check(hr.tokenizer.from_json(tok:to_json(true)).vocab_size == 290, "from_json")
  t.check(back.eos == nil, "no eos among the special tokens")
end)

t.case("open_tokens", function()
  local tok = hr.tokenizer.train_bpe{text = corpus, vocab_size = 300}
  local txt = tmp("corpus.txt")
  write_file(txt, corpus)
  local ds = tok:open_tokens(txt)
  local ids = tok:encode(corpus)
  t.check(ds:len() == #ids and ds.vocab == 300 and ds.kind == "text", "text encoded in memory: " .. tostring(ds))
  local same = true
  for i = 1, #ids, 97 do same = same and ds:get(i - 1) == ids[i] end
  t.check(same, "the same ids as encode")
  local x, y = hr.zeros({2, 8}, "i64"), hr.zeros({2, 8}, "i64")
  ds:fill(x, y, {0, 10})
  t.check(x:totable()[2][1] == ids[11] and y:totable()[1][8] == ids[9], "batches from encoded text")
  ds:close()
  local bin = tmp("ids.bin")
  hr.write_tokens(bin, {1, 2, 299}, 300)
  t.check(tok:open_tokens(bin):len() == 3, "a token file that fits the tokenizer")
  hr.write_tokens(bin, {1, 2, 3}, 400)
  t.raises(function() tok:open_tokens(bin) end, "ids go up to vocab 400 but the tokenizer has 300 tokens")
  local empty = tmp("empty.txt")
  write_file(empty, "")
  t.raises(function() tok:open_tokens(empty) end, "empty data file")
  t.raises(function() tok:open_tokens(tmp("missing.txt")) end, "missing.txt")
end)

t.case("errors", function()
  t.raises(function() hr.tokenizer.load(tmp("nope.json")) end, "tokenizer.load", "nope.json: No such file")
  t.raises(function() hr.tokenizer.from_json("{") end, "not valid JSON")
  t.raises(function() hr.tokenizer.from_json('{"model": {"type": "Unigram", "vocab": []}}') end, "unsupported: Unigram model")
  t.raises(function()
    hr.tokenizer.from_json('{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, ' ..
                           '"merges": [], "byte_fallback": true}}')
  end, "unsupported: model.byte_fallback")
  t.raises(function()
    hr.tokenizer.from_json('{"pre_tokenizer": {"type": "ByteLevel"}, "normalizer": {"type": "NFC"}, ' ..
                           '"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}')
  end, "unsupported: normalizer NFC")
  t.raises(function()
    hr.tokenizer.from_json('{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, ' ..
                           '"merges": []}}')
  end, "model.vocab", "id 0")
  t.raises(function()
    hr.tokenizer.from_json('{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, ' ..
                           '"merges": ["a"]}}')
  end, "model.merges[0]", "not two tokens")
  t.raises(function() hr.tokenizer.train_bpe{text = corpus} end, "vocab_size must be an integer")
  t.raises(function() hr.tokenizer.train_bpe{vocab_size = 300} end, "give text = STRING or files")
  t.raises(function() hr.tokenizer.train_bpe{text = "", vocab_size = 300} end, "training text is empty")
  t.raises(function() hr.tokenizer.train_bpe{files = {tmp("none.txt")}, vocab_size = 300} end, "cannot read", "none.txt")
  local tok = hr.tokenizer.train_bpe{text = corpus, vocab_size = 280}
  t.raises(function() tok:decode({280}) end, "ids[1] = 280 is not below the vocab size 280")
  t.raises(function() tok:decode({1.5}) end, "must be an integer")
  t.raises(function() tok:save(tmp("no/dir/x.json")) end, "cannot write")
end)

cleanup()
t.finish("lua.tokenizer")
