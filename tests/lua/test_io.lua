-- Files: safetensors save/load, token files and text as bytes, batches, and the error messages.
local t = require "harness"
local hr = require "hybridrt"

-- Temporary files share one os.tmpname() prefix and are removed at the end.
local tmp, cleanup = t.tmpfiles()
local write_file, read_file = t.write_file, t.read_file

local function same(a, b)
  if a.dtype ~= b.dtype or a:numel() ~= b:numel() or #a.shape ~= #b.shape then return false end
  for d = 1, #a.shape do if a.shape[d] ~= b.shape[d] then return false end end
  local fa, fb = a:contiguous():view(-1), b:contiguous():view(-1)
  for i = 1, a:numel() do if fa:get(i) ~= fb:get(i) then return false end end
  return true
end

-- A token file header (little-endian) followed by raw id bytes.
local function token_file(version, width, vocab, n, ids)
  return "HRTOKENS" .. string.pack("<I4I4I4I4I8", version, width, vocab, 0, n) .. (ids or "")
end

t.case("safetensors round trip", function()
  local tensors = {
    w = hr.randn({3, 4}),
    wt = hr.randn({4, 3}):t(),                      -- strided: saved in logical order
    d = hr.randn({5}, "f64"),
    h = hr.tensor({1.5, -2, 3.25}, "bf16"),
    ids = hr.tensor({{1, 2}, {3, 4}}, "i64"),
    n = hr.tensor({7, -8}, "i32"),
    b = hr.tensor({0, 255}, "u8"),
    s = hr.tensor(2.5),                              -- 0-d
    e = hr.zeros({0, 2}),                            -- empty
  }
  local p = tmp("round.safetensors")
  t.check(hr.save_safetensors(p, tensors, {step = 120, lr = 0.5, name = "run a"}) == true, "save returns true")
  local back, meta = hr.load_safetensors(p)
  local count = 0
  for name, x in pairs(back) do
    count = count + 1
    t.check(same(x, tensors[name]), "tensor " .. name .. " round-trips")
    t.check(x:is_contiguous(), name .. " comes back contiguous")
  end
  t.check(count == 9, "every tensor comes back")
  t.check(meta.step == "120" and meta.lr == "0.5" and meta.name == "run a", "metadata: numbers become strings")
  local p2 = tmp("nometa.safetensors")
  hr.save_safetensors(p2, {x = hr.zeros({1})})
  local _, none = hr.load_safetensors(p2)
  t.check(type(none) == "table" and next(none) == nil, "no metadata: an empty table")
end)

t.case("safetensors bytes are deterministic", function()
  local a, b = tmp("det1.safetensors"), tmp("det2.safetensors")
  local x, y, z = hr.arange(6):view(2, 3), hr.ones({4}, "f64"), hr.tensor({1, 2}, "i32")
  hr.save_safetensors(a, {x = x, y = y, z = z}, {k1 = "a", k2 = "b"})
  hr.save_safetensors(b, {z = z, y = y, x = x}, {k2 = "b", k1 = "a"})
  t.check(read_file(a) == read_file(b), "the same tensors give the same bytes")
end)

t.case("safetensors errors", function()
  local p = tmp("err.safetensors")
  t.raises(function() hr.save_safetensors(p, {w = "x"}) end, "save_safetensors: 'w' is a string, not a tensor")
  t.raises(function() hr.save_safetensors(p, {hr.zeros({1})}) end, "tensor names must be strings")
  t.raises(function() hr.save_safetensors(p, {w = hr.zeros({1})}, {k = true}) end,
           "metadata 'k' must be a string or a number, got a boolean")
  t.raises(function() hr.save_safetensors(p, {__metadata__ = hr.zeros({1})}) end, "reserved")
  t.raises(function() hr.save_safetensors(p, {[""] = hr.zeros({1})}) end, "empty name")
  -- a NUL byte cut names, keys and paths short without a word ("a\0b" was saved as "a")
  t.raises(function() hr.save_safetensors(p, {["a\0b"] = hr.zeros({1})}) end,
           "tensor name 'a' holds a NUL byte (at byte 1)")
  t.raises(function() hr.save_safetensors(p, {w = hr.zeros({1})}, {["k\0"] = "v"}) end, "metadata key 'k' holds a NUL")
  t.raises(function() hr.save_safetensors(p, {w = hr.zeros({1})}, {k = "v\0w"}) end,
           "the value of a metadata key 'v' holds a NUL")
  t.raises(function() hr.save_safetensors(p .. "\0.x", {w = hr.zeros({1})}) end, "the path '" .. p)
  t.check(io.open(p, "rb") == nil, "nothing was written")
  for _, header in ipairs({'{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
                           '{"a":{"dtype":"U8\\u0000","shape":[1],"data_offsets":[0,1]}}',
                           '{"__metadata__":{"k\\u0000":"v"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
                           '{"a\0":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'}) do
    write_file(p, string.pack("<I8", #header) .. header .. "x")
    t.raises(function() hr.load_safetensors(p) end, "the header holds a NUL character at byte")
  end
  -- an escaped backslash before u0000 is text, not a NUL
  local text = '{"__metadata__":{"k":"\\\\u0000"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
  write_file(p, string.pack("<I8", #text) .. text .. "x")
  local _, meta = hr.load_safetensors(p)
  t.check(meta.k == "\\u0000", "an escaped backslash then u0000 is the text \\u0000: " .. tostring(meta.k))
  os.remove(p)
  t.raises(function() hr.save_safetensors(tmp("nodir") .. "/x.safetensors", {w = hr.zeros({1})}) end,
           "cannot write", "No such file")
  t.raises(function() hr.load_safetensors(tmp("missing.safetensors")) end, "missing.safetensors", "No such file")
  write_file(p, string.pack("<I8", 5) .. "{bad}")
  t.raises(function() hr.load_safetensors(p) end, "err.safetensors", "not valid JSON")
  write_file(p, string.pack("<I8", 500) .. "{}")
  t.raises(function() hr.load_safetensors(p) end, "truncated")
  local h = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
  write_file(p, string.pack("<I8", #h) .. h .. "1234")
  t.raises(function() hr.load_safetensors(p) end, "truncated", "'a'")
  h = '{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}'
  write_file(p, string.pack("<I8", #h) .. h .. "12345678")
  t.raises(function() hr.load_safetensors(p) end, "unknown dtype 'C64'")
end)

t.case("a failed save keeps the old file", function()
  local p = tmp("keep.safetensors")
  hr.save_safetensors(p, {w = hr.arange(4)})
  local before = read_file(p)
  local closed = hr.zeros({1})
  closed:close()
  t.raises(function() hr.save_safetensors(p, {w = hr.zeros({1}), v = closed}) end, "closed")
  t.raises(function() hr.save_safetensors(p, {__metadata__ = hr.zeros({1})}) end, "reserved")
  t.check(read_file(p) == before, "the old file is untouched")
end)

t.case("token files", function()
  local p = tmp("tok.bin")
  local ids = {}
  for i = 1, 50 do ids[i] = (i * 37) % 256 end
  t.check(hr.write_tokens(p, ids, 256) == true, "write_tokens returns true")
  t.check(#read_file(p) == 32 + 2 * 50, "vocab 256: 2-byte ids")
  local ds <close> = hr.open_tokens(p)
  t.check(ds:len() == 50 and #ds == 50 and ds.vocab == 256 and ds.kind == "tokens" and ds.path == p, "fields")
  t.check(ds:get(0) == ids[1] and ds:get(49) == ids[50], "get is 0-based")
  t.raises(function() return ds:get(50) end, "index 50 is out of range for 50 tokens")
  t.check(tostring(ds):find("50 tokens", 1, true) ~= nil and ds[1] == nil and ds.other == nil, "tostring, other keys")

  local x, y = hr.zeros({2, 5}, "i64"), hr.zeros({2, 5}, "i32")
  ds:fill(x, y, {0, 44})
  local ok = true
  for b, s in ipairs({0, 44}) do
    for j = 1, 5 do ok = ok and x:get(b, j) == ids[s + j] and y:get(b, j) == ids[s + j + 1] end
  end
  t.check(ok, "fill: x = tokens s..s+T-1, y shifted by one, i64 and i32")
  t.raises(function() ds:fill(x, y, {0, 45}) end, "start 45 of row 2 is out of range", "51", "50 tokens")
  t.raises(function() ds:fill(x, y, {0}) end, "1 starts for the 2 rows of x")
  t.raises(function() ds:fill(x, y, {0, 1.5}) end, "starts[2] must be an integer")
  t.raises(function() ds:fill(hr.zeros({2, 5}), y, {0, 1}) end, "x must be an i64 or i32 tensor")
  t.raises(function() ds:fill(x, hr.zeros({2, 4}, "i64"), {0, 1}) end, "y must have shape (B, T) = (2, 5)")

  local p4 = tmp("tok4.bin")
  hr.write_tokens(p4, {0, 69999, 12345}, 70000)
  t.check(#read_file(p4) == 32 + 4 * 3, "vocab 70000: 4-byte ids")
  local ds4 = hr.open_tokens(p4)
  t.check(ds4:get(1) == 69999 and ds4.vocab == 70000, "wide ids read back")
  ds4:close()
  ds4:close()
  t.raises(function() return ds4:len() end, "token file has been closed")
  t.raises(function() return ds4.vocab end, "token file has been closed")
  t.check(tostring(ds4) == "tokens(closed)", "tostring of a closed file")
end)

t.case("write_tokens from tensors, and its errors", function()
  local p = tmp("fromtensor.bin")
  for _, dt in ipairs({"i64", "i32", "u8"}) do
    hr.write_tokens(p, hr.tensor({{3, 1}, {4, 1}}, dt), 10)
    local ds = hr.open_tokens(p)
    t.check(ds:len() == 4 and ds:get(2) == 4, "ids from an " .. dt .. " tensor, row-major")
    ds:close()
  end
  t.raises(function() hr.write_tokens(p, hr.zeros({3}), 10) end, "integer tensor (i32, i64 or u8), got f32")
  t.raises(function() hr.write_tokens(p, hr.tensor({1, 2, 30}, "i64"), 10) end, "id 30 at position 2", "vocab size 10")
  t.raises(function() hr.write_tokens(p, {1, 2, 300}, 256) end, "ids[3] = 300 is not below the vocab size 256")
  t.raises(function() hr.write_tokens(p, {1, -1}, 256) end, "ids[2] = -1")
  t.raises(function() hr.write_tokens(p, {1, "a"}, 256) end, "ids[2] must be an integer")
  t.raises(function() hr.write_tokens(p, {1}, 0) end, "vocab size must be in 1..4294967295")
  t.raises(function() hr.write_tokens(tmp("nodir") .. "/x.bin", {1}, 2) end, "cannot write")
end)

t.case("text files are bytes", function()
  local p = tmp("text.txt")
  write_file(p, "hello\n")
  local ds = hr.open_tokens(p)
  t.check(ds.kind == "text" and ds.vocab == 256 and ds:len() == 6 and ds:get(0) == 104, "text: vocab 256, one byte each")
  local x, y = hr.zeros({1, 5}, "i64"), hr.zeros({1, 5}, "i64")
  ds:fill(x, y, {0})
  t.check(x:get(1, 5) == string.byte("o") and y:get(1, 5) == 10, "fill reads bytes")
  ds:close()
  write_file(p, "")
  t.raises(function() hr.open_tokens(p) end, "text.txt: empty data file")
  t.raises(function() hr.open_tokens(tmp("absent.txt")) end, "absent.txt", "No such file")
end)

t.case("bad token files", function()
  local p = tmp("bad.bin")
  write_file(p, token_file(1, 2, 256, 10, string.rep("\0", 16)))
  t.raises(function() hr.open_tokens(p) end, "truncated")
  write_file(p, token_file(1, 2, 256, 2, string.rep("\0", 5)))
  t.raises(function() hr.open_tokens(p) end, "trailing bytes")
  write_file(p, token_file(7, 2, 256, 0))
  t.raises(function() hr.open_tokens(p) end, "version 7")
  write_file(p, token_file(1, 2, 70000, 1, string.pack("<I2", 5)))
  t.raises(function() hr.open_tokens(p) end, "vocab size 70000 does not fit ids 2 bytes wide (at most 65536)")
  write_file(p, token_file(1, 2, 10, 4, string.pack("<I2I2I2I2", 1, 2, 12, 3)))
  local ds = hr.open_tokens(p)
  local x, y = hr.zeros({1, 1}, "i64"), hr.zeros({1, 1}, "i64")
  ds:fill(x, y, {0})
  t.raises(function() ds:fill(x, y, {1}) end, "token id 12 at position 2", "vocab size 10")
  ds:close()
end)

t.case("fill records its writes for autograd", function()
  local p = tmp("grad.bin")
  hr.write_tokens(p, {0, 1, 2, 3, 4, 0, 1, 2}, 5)
  local ds = hr.open_tokens(p)
  local x, y = hr.zeros({1, 3}, "i64"), hr.zeros({1, 3}, "i64")
  ds:fill(x, y, {0})
  local w = hr.randn({5, 4}, "f64"):requires_grad_()
  local loss = hr.sum(hr.embedding(x, w):view(-1))
  ds:fill(x, y, {2})
  t.raises(function() loss:backward() end, "written in place")
  ds:close()
end)

t.case("a target that is not a regular file is refused, never replaced; a link is written through", function()
  local function kind(path)
    local p = io.popen("stat -c %F " .. path .. " 2>/dev/null")
    local k = p:read("l")
    p:close()
    return k
  end
  local fifo, dir, file, link, dangling = tmp("fifo"), tmp("dir"), tmp("real.st"), tmp("link.st"), tmp("nowhere")
  os.execute("mkfifo " .. fifo .. " && mkdir " .. dir)
  t.check(kind(fifo) == "fifo" and kind(dir) == "directory", "made a FIFO and a directory")
  local x = {x = hr.zeros({2})}
  for _, target in ipairs({fifo, dir, "/dev/null"}) do
    t.raises(function() hr.save_safetensors(target, x) end, "cannot write", "not a regular file: not replaced")
    t.raises(function() hr.write_tokens(target, {1, 2}, 4) end, "cannot write", "not replaced")
    t.raises(function() hr.tokenizer.bytes():save(target) end, "cannot write", "not replaced")
  end
  t.check(kind(fifo) == "fifo" and kind(dir) == "directory" and kind("/dev/null") == "character special file",
          "the FIFO, the directory and /dev/null are still what they were")
  hr.save_safetensors(file, x)
  os.execute("ln -s " .. file .. " " .. link .. " && ln -s " .. dangling .. ".missing " .. dangling)
  hr.save_safetensors(link, {y = hr.ones({3})})
  t.check(kind(link) == "symbolic link" and hr.load_safetensors(file).y ~= nil,
          "saving through a symbolic link writes the file it leads to and keeps the link")
  t.raises(function() hr.save_safetensors(dangling, x) end, "symbolic link that leads nowhere")
  os.remove(fifo)
  os.execute("rmdir " .. dir)
  os.remove(link)
  os.remove(dangling)
end)

cleanup()
t.finish("lua.io")
