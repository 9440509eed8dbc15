-- Every function and method with wrong arguments: each call must return or raise a Lua error, never
-- crash the process (a crash fails this test by killing it).
local t = require "harness"
local hr = require "hybridrt"

local skip = {set_num_threads = true, manual_seed = true, set_rng_state = true, set_check_nan = true,
              set_grad_enabled = true, capture = true, no_grad = true, gradcheck = true,
              -- these write files or change process state (tested in test_io / test_model / cli.train)
              mkdir = true, save_safetensors = true, write_tokens = true, catch_interrupt = true,
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
