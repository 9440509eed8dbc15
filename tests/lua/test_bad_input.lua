-- Every function and method with wrong arguments: each call must return or raise a Lua error, never
-- crash the process (a crash fails this test by killing it).
local t = require "harness"
local hr = require "hybridrt"

local skip = {set_num_threads = true, manual_seed = true, set_rng_state = true, set_check_nan = true,
              set_grad_enabled = true, capture = true, no_grad = true, gradcheck = true,
              -- these write files or change process state (tested in test_io / test_model / cli.train)
              mkdir = true, save_safetensors = true, write_tokens = true, catch_interrupt = true, lock_file = true,
              -- Lua-level builders: a default argument builds a whole model per call
              build_model = true, load_checkpoint = true}
local closed = hr.zeros({2})
closed:close()
local function arg_sets()
  return {
    {}, {nil}, {1}, {-1}, {0}, {1e300}, {"x"}, {{}}, {{1, 2}}, {{-1}}, {true}, {closed},
    {hr.zeros({2, 3})}, {hr.zeros({2, 3}, "i64")}, {hr.zeros({2, 3}, "bf16")}, {hr.zeros({})},
    {hr.zeros({2, 3}), hr.zeros({3, 2})}, {hr.zeros({2, 3}), 1, 2, 3}, {hr.zeros({2, 3}), -5},
    {hr.zeros({2, 3}), {}}, {hr.zeros({2, 3}), closed}, {hr.zeros({0, 3})}, {hr.zeros({1, 1, 1, 1})},
    {hr.zeros({2, 3}), hr.zeros({2, 3}), hr.zeros({2, 3}), hr.zeros({2, 3}), hr.zeros({2, 3})},
    {hr.zeros({1, 2, 1, 4}), hr.zeros({1, 2, 1, 4}), hr.zeros({1, 2, 1, 4}), hr.zeros({1, 2, 1, 4}), hr.zeros({4})},
  }
end

local calls, errors = 0, 0
local names = {}
for name, f in pairs(hr) do
  if type(f) == "function" and not skip[name] then names[#names + 1] = name end
end
table.sort(names)
for _, name in ipairs(names) do
  for _, args in ipairs(arg_sets()) do
    local ok = pcall(hr[name], table.unpack(args, 1, 6))
    calls = calls + 1
    if not ok then errors = errors + 1 end
  end
end

local method_names = {}
for name in pairs(getmetatable(hr.zeros({1})).methods) do method_names[#method_names + 1] = name end
table.sort(method_names)
for _, name in ipairs(method_names) do
  for _, args in ipairs(arg_sets()) do
    for _, self in ipairs({hr.zeros({2, 3}), hr.zeros({2, 3}, "i64"), hr.zeros({}), hr.zeros({0})}) do
      local ok = pcall(self[name], self, table.unpack(args, 1, 6))
      calls = calls + 1
      if not ok then errors = errors + 1 end
    end
  end
end
print(string.format("  %d calls with wrong or odd arguments, %d raised errors, none crashed", calls, errors))
t.check(calls > 1000 and errors > calls / 3, "the sweep ran and most calls were refused")

-- metamethods on odd operands
for _, op in ipairs({function(a, b) return a + b end, function(a, b) return a - b end,
                     function(a, b) return a * b end, function(a, b) return a / b end}) do
  for _, pair in ipairs({{hr.zeros({2}), "s"}, {{}, hr.zeros({2})}, {hr.zeros({2}), closed}, {2, hr.zeros({2})}}) do
    pcall(op, pair[1], pair[2])
  end
end
t.raises(function() return hr.zeros({2}) + "s" end, "operands must be tensors or numbers")

-- an empty normalized dim or class dim is refused (it once divided by zero in the row count)
t.raises(function() return hr.layer_norm(hr.zeros({5, 0}), hr.zeros({0}), hr.zeros({0}), 1e-5) end,
         "layer_norm", "has no elements")
t.raises(function() return hr.rms_norm(hr.zeros({5, 0}), hr.zeros({0}), 1e-5) end, "rms_norm", "has no elements")
t.raises(function() return hr.group_norm(hr.zeros({5, 0}), 1, hr.zeros({0}), hr.zeros({0}), 1e-5) end,
         "group_norm", "has no elements")
t.raises(function() return hr.cross_entropy(hr.zeros({5, 0}), hr.zeros({5}, "i64")) end, "no classes")

-- an embedding id of -1 is refused like any other outside [0, V) (cross-entropy's ignore index once
-- let it through: the forward read the row before the weights, the backward wrote there)
t.raises(function() return hr.embedding(hr.tensor({{1, -1}}, "i64"), hr.randn({4, 3})) end, "embedding",
         "id -1 at position 2 is outside [0, 4)")
t.raises(function() return hr.embedding(hr.tensor({-100}, "i64"), hr.randn({4, 3})) end, "id -100", "outside [0, 4)")
t.check(hr.cross_entropy(hr.randn({2, 3}), hr.tensor({1, -100}, "i64")):item() > 0,
        "cross-entropy still ignores its ignore index")

-- narrow's range is checked without overflow (start + length once wrapped past 2^63 into a view
-- outside its storage)
t.raises(function() return hr.zeros({4}):narrow(1, 2 ^ 62 + 33, 2 ^ 62) end, "narrow", "outside dimension 1 of size 4")
t.raises(function() return hr.zeros({4}):narrow(1, 3, math.maxinteger) end, "narrow", "outside dimension 1")
t.raises(function() return hr.zeros({4}):narrow(1, math.mininteger, 1) end, "counts from 1")
t.check(hr.zeros({4}):narrow(1, 5, 0):numel() == 0, "an empty narrow at the end is allowed")

-- a table whose __len claims more than it holds is refused: its length once sized scratch as
-- n * elem_size, which wrapped to nothing for 2^62 entries, before n entries were written
local function liar(n) return setmetatable({1, 2}, {__len = function() return n end}) end
local tmp = os.tmpname()
for _, n in ipairs({2 ^ 62, 2 ^ 61, -1}) do
  n = math.tointeger(n)
  t.raises(function() return hr.write_tokens(tmp, liar(n), 256) end, "write_tokens: ids", "__len says")
  t.raises(function() return hr.tokenizer.bytes():decode(liar(n)) end, "decode: ids", "__len says")
  t.raises(function() return hr.tensor(liar(n)) end, "hr.tensor", "__len says")
  t.raises(function() return hr.concat(liar(n), 1) end, "concat", "__len says")
end
hr.write_tokens(tmp, {1, 2, 3, 4, 5, 6, 7, 8}, 256)
local ds <close> = hr.open_tokens(tmp)
t.raises(function() ds:fill(hr.zeros({2, 3}, "i64"), hr.zeros({2, 3}, "i64"), liar(math.tointeger(2 ^ 62))) end,
         "fill: starts", "__len says")
t.check(hr.write_tokens(tmp, setmetatable({1, 2}, {__len = function() return 2 end}), 256) == true,
        "a __len that tells the truth is fine")
os.remove(tmp)

-- numbers that are not C integers where one is expected: NaN, infinities, 2^63, and integers past
-- an int (which casts once truncated: 2^32 + 1 threads became 1)
for _, v in ipairs({0 / 0, math.huge, -math.huge, 2 ^ 63, 0.5}) do
  t.raises(function() hr.set_num_threads(v) end, "number")
  t.raises(function() return hr.zeros({v}) end, "shape entry 1 must be an integer")
  t.raises(function() return hr.zeros({2}):narrow(1, v, 1) end, "number")
end
t.raises(function() hr.set_num_threads((1 << 32) + 1) end, "thread count must be in 1..4096, got 4294967297")
t.raises(function() return hr.isatty((1 << 32) + 1) end, "descriptor must be in")

-- sizes whose products overflow int64 are refused (a view of an empty tensor as (2^62, 4) once
-- passed, its product wrapped to 0, and read outside its storage)
for _, sh in ipairs({{1 << 62, 4}, {1 << 32, 1 << 32}, {-1, 1 << 62, 8}, {0, 1 << 62, 1 << 62}}) do
  t.raises(function() return hr.zeros({0}):view(sh) end, "reshape: cannot view shape (0)")
end
t.raises(function() return hr.zeros({0, 1 << 62, 1 << 62}) end, "tensor too large")
t.check(hr.zeros({0}):view({0, 5}):numel() == 0, "an empty view of an empty tensor is fine")

-- devices: unknown names, and a GPU where none opens, are errors naming the problem
t.raises(function() return hr.zeros({2}):to("gpu") end, "'gpu' is neither a dtype", "nor a device")
t.raises(function() return hr.zeros({2}, "f32", "cuda:x") end, "unknown device 'cuda:x'")
t.raises(function() return hr.use_device("tpu") end, "device must be auto, cpu, cuda or cuda:N")
t.check(hr.zeros({2}).device == "cpu", "host tensors say cpu")
local dev, why = hr.use_device("auto")
if dev == "cpu" then
  t.check(type(why) == "string" and #why > 0, "auto on a machine without a GPU says why: " .. tostring(why))
  t.raises(function() return hr.use_device("cuda") end, "device=cuda", "cuda:0")
  t.raises(function() return hr.zeros({2}):to("cuda:1") end, "cuda:1")
  t.check(hr.device_stats() == nil, "no device stats without a GPU")
end
t.finish("bad_input")
