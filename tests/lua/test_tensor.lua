-- The tensor API: creation, dtypes, views, element access, printing, random streams, errors.
local t = require "harness"
local hr = require "hybridrt"

t.case("creation and properties", function()
  local z = hr.zeros({2, 3})
  t.check(z.shape[1] == 2 and z.shape[2] == 3 and #z.shape == 2, "zeros shape")
  t.check(z.dtype == "f32" and z.device == "cpu" and z.ndim == 2, "defaults: f32 on cpu")
  t.check(hr.zeros(4, 5, "f64").dtype == "f64", "varargs shape with dtype")
  t.check(hr.ones({3}, "i64"):get(2) == 1 and math.type(hr.ones({3}, "i64"):get(2)) == "integer", "ones i64")
  t.check(hr.full({2}, 7.5):get(1) == 7.5, "full")
  t.check(hr.arange(5, "i32"):get(5) == 4, "arange")
  local x = hr.tensor({{1, 2, 3}, {4, 5, 6}})
  t.check(x:get(2, 3) == 6 and x:numel() == 6 and x:dim() == 2 and x:size(2) == 3 and x:size(-1) == 3, "from table")
  local s = hr.tensor(3.5)
  t.check(s.ndim == 0 and s:item() == 3.5, "scalar tensor")
  t.check(#x == 2, "__len is the first dimension")
  local tt = x:totable()
  t.check(tt[2][1] == 4 and #tt == 2 and #tt[1] == 3, "totable")
end)

t.case("dtypes and conversion", function()
  for _, dt in ipairs({"f32", "f64", "bf16", "i32", "i64", "u8"}) do
    local x = hr.full({3}, 2, dt)
    t.check(x.dtype == dt and x:get(3) == 2, "dtype " .. dt)
  end
  local x = hr.tensor({1.0, 1.0 / 3, -2.5e10, 65504}, "f32")
  local b = x:to("bf16")
  t.check(b.dtype == "bf16", "to bf16")
  t.near(b:get(2), 0.333984375, 0, "bf16 rounds 1/3 to nearest even")
  t.near(b:to("f32"):get(3), -2.5e10, 2.5e10 * 2 ^ -8, "bf16 keeps the f32 exponent range")
  t.check(x:to("f64").dtype == "f64" and x:to("cpu") ~= nil, "to f64, to cpu")
  t.check(hr.tensor({1.7, -2.2}):to("i64"):get(2) == -2, "float to integer truncates")
  t.raises(function() return hr.zeros({2}, "f16") end, "unknown dtype 'f16'")
end)

t.case("views share storage", function()
  local x = hr.arange(24, "f32"):view(2, 3, 4)
  t.check(x:is_contiguous(), "view of contiguous is contiguous")
  local y = x:transpose(1, 3)
  t.check(y.shape[1] == 4 and y.shape[3] == 2 and not y:is_contiguous(), "transpose is a strided view")
  t.check(y:get(4, 3, 2) == x:get(2, 3, 4), "transpose reads the same element")
  local n = x:narrow(2, 2, 2)
  t.check(n.shape[2] == 2 and n:get(1, 1, 1) == 4, "narrow starts at the 1-based index")
  n:set(1, 1, 1, 100)
  t.check(x:get(1, 2, 1) == 100, "writing a view writes the base")
  local r = y:reshape(-1)
  t.check(r.shape[1] == 24 and r:get(2) == x:get(2, 1, 1), "reshape of a strided view copies in logical order")
  t.check(x:view(-1, 4).shape[1] == 6, "-1 infers a dimension")
  local s = hr.arange(10):slice(1, 3, -2)
  t.check(s:numel() == 7 and s:get(1) == 2 and s:get(7) == 8, "slice(dim, i, j) is inclusive, negatives from the end")
  t.check(hr.arange(10):slice(1, -3):numel() == 3, "slice to the end")
  t.raises(function() return hr.arange(10):slice(1, 4, 11) end, "slice: 4..11 is not a range of dimension 1")
  local parts = hr.split(hr.arange(10), 4, 1)
  t.check(#parts == 3 and parts[3]:numel() == 2, "split by size keeps a short last piece")
  t.raises(function() return x:view(5, 5) end, "reshape", "(2, 3, 4)")
  t.raises(function() return x:narrow(2, 3, 2) end, "narrow", "outside dimension 2")
  t.raises(function() return x:transpose(1, 4) end, "dimension 4 is out of range")
end)

t.case("element access errors", function()
  local x = hr.zeros({2, 2})
  t.raises(function() return x:get(3, 1) end, "index 3 is out of range for dimension 1")
  t.raises(function() return x:get(1) end, "expected 2 indices")
  t.raises(function() return x:item() end, "item", "(2, 2)")
  t.raises(function() return hr.tensor({{1, 2}, {3}}) end, "ragged")
  t.raises(function() return hr.tensor({1, "a"}) end, "not a number")
end)

t.case("printing", function()
  local s = tostring(hr.arange(10, "f32"):view(2, 5):requires_grad_())
  t.check(s:find("shape=(2, 5)", 1, true) and s:find("dtype=f32", 1, true) and s:find("requires_grad", 1, true),
          "tostring names shape, dtype, requires_grad: " .. s)
  t.check(s:find("9.0000", 1, true) ~= nil, "tostring previews values")
  local long = tostring(hr.arange(100))
  t.check(long:find("...", 1, true) and long:find("99", 1, true), "long tensors are elided")
end)

t.case("random streams are seeded and thread-independent", function()
  hr.manual_seed(42)
  local a = hr.randn({1000})
  hr.manual_seed(42)
  local threads = hr.num_threads()
  hr.set_num_threads(1)
  local b = hr.randn({1000})
  hr.set_num_threads(threads)
  local same = true
  for i = 1, 1000 do same = same and a:get(i) == b:get(i) end
  t.check(same, "same seed, same stream, whatever the thread count")
  hr.manual_seed(5)
  hr.set_num_threads(1)
  local big1 = hr.randn({200000})
  hr.manual_seed(5)
  hr.set_num_threads(math.max(2, threads))
  local big2 = hr.randn({200000})
  local same_big = true
  for i = 1, 200000, 997 do same_big = same_big and big1:get(i) == big2:get(i) end
  t.check(same_big and big1:get(200000) == big2:get(200000), "a parallel fill draws the same values as a serial one")
  hr.manual_seed(42)
  hr.randn({1000})
  local c = hr.randn({1000})
  t.check(c:get(1) ~= a:get(1), "the stream advances")
  local seed, offset = hr.rng_state()
  t.check(seed == 42 and offset == 2000, "rng_state reports seed and offset")
  local mean, sq = 0, 0
  for i = 1, 1000 do mean = mean + c:get(i); sq = sq + c:get(i) ^ 2 end
  mean = mean / 1000
  t.check(math.abs(mean) < 0.15 and math.abs(sq / 1000 - 1) < 0.2, "randn looks standard normal")
  hr.set_rng_state(42, 1000)
  local d = hr.randn({1000})
  t.check(d:get(7) == c:get(7), "set_rng_state resumes the stream exactly")
  local u = hr.uniform({500}, -2, 3)
  local lo, hi = math.huge, -math.huge
  for i = 1, 500 do lo = math.min(lo, u:get(i)); hi = math.max(hi, u:get(i)) end
  t.check(lo >= -2 and hi < 3 and hi - lo > 4, "uniform covers its range")
end)

t.case("op errors name the op and the shapes", function()
  local a, b = hr.zeros({2, 3}), hr.zeros({4, 5})
  t.raises(function() return a + b end, "add", "(2, 3)", "(4, 5)", "cannot broadcast")
  t.raises(function() return hr.matmul(a, b) end, "matmul", "(2, 3)", "(4, 5)")
  t.raises(function() return hr.layer_norm(a, hr.zeros({4})) end, "layer_norm", "weight", "(3)", "(4)")
  t.raises(function() return hr.exp(hr.zeros({2}, "i64")) end, "exp", "float tensor", "i64")
  t.raises(function() return hr.exp(hr.zeros({2}, "bf16")) end, "bf16", ":to(\"f32\")")
  t.raises(function() return a + hr.zeros({2, 3}, "f64") end, "add", "f64", "f32")
  t.raises(function() return hr.embedding(hr.tensor({1, 9}, "i64"), hr.zeros({5, 2})) end,
           "embedding", "id 9 at position 2", "[0, 5)")
  t.raises(function() return hr.cross_entropy(hr.zeros({2, 4}), hr.tensor({1, 4}, "i64")) end,
           "cross_entropy", "target 4")
  t.raises(function() return hr.wkv6(hr.zeros({1, 2, 2, 4}), hr.zeros({1, 2, 2, 4}), hr.zeros({1, 2, 2, 4}),
                                     hr.zeros({1, 2, 2, 4}), hr.zeros({2, 5})) end, "wkv6", "u must have shape (2, 4)")
  t.raises(function() return hr.ssd_scan(hr.zeros({1, 2, 3, 4}), hr.zeros({1, 2, 3}), hr.zeros({3}),
                                         hr.zeros({1, 2, 2, 5}), hr.zeros({1, 2, 2, 5})) end,
           "ssd_scan", "2 groups", "3 heads")
  t.raises(function() return hr.conv1d_causal(hr.zeros({1, 4, 3}), hr.zeros({3, 5})) end, "kernel width W in 2..4")
  t.raises(function() return hr.group_norm(hr.zeros({2, 6}), 4) end, "4 groups do not divide the 6 channels")
  t.raises(function() return hr.zeros({1 << 40, 1 << 20}) end, "too large")
  t.raises(function() return hr.zeros({1 << 24, 1 << 22}) end, "out of memory")
  t.raises(function() return hr.concat({a, b}, 1) end, "concat", "does not match")
end)

t.case("token ids as i64, i32 or u8 give the same results", function()
  hr.manual_seed(9)
  local w = hr.randn({300, 4})
  local logits = hr.randn({2, 3, 300})
  local ref_e, ref_l
  for _, dt in ipairs({"i64", "i32", "u8"}) do
    local ids = hr.tensor({{1, 7, 255}, {0, 3, 9}}, dt)
    local e = hr.embedding(ids, w):totable()
    local l = hr.cross_entropy(logits, ids):item()
    if not ref_e then ref_e, ref_l = e, l
    else
      t.check(e[1][3][2] == ref_e[1][3][2] and e[2][1][4] == ref_e[2][1][4], "embedding rows match for " .. dt)
      t.check(l == ref_l, "cross_entropy matches for " .. dt)
    end
  end
  t.raises(function() return hr.embedding(hr.tensor({1.5}), w) end, "embedding", "ids must be integers")
end)

t.case("close frees deterministically", function()
  local x <close> = hr.zeros({4})
  local y = hr.ones({2})
  y:close()
  t.raises(function() return y + 1 end, "closed")
  t.check(tostring(y) == "tensor(closed)", "closed tensor prints as such")
  t.check(x:numel() == 4, "still open inside its scope")
end)

t.case("dropped tensors are collected in an eager loop", function()
  local function rss_mib()
    for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmRSS:%s+(%d+)")
      if kb then return tonumber(kb) / 1024 end
    end
  end
  local peak = 0
  for _ = 1, 120 do                      -- 120 x 32 MiB created, 32 MiB alive at a time
    local x = hr.ones({1 << 22})
    local y = x * 2
    peak = math.max(peak, rss_mib())
  end
  t.check(peak < 1500, string.format("peak RSS %.0f MiB stays far below the 3840 MiB created", peak))
end)

t.finish("tensor")
