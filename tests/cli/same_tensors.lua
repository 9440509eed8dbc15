-- hybridrt run same_tensors.lua a=A.safetensors b=B.safetensors
-- Whether two safetensors files hold the same tensors byte for byte: the same names, dtypes and
-- shapes, and every element's bytes equal (so -0 is not 0, and a NaN is not equal to a number).
-- The metadata (a checkpoint's elapsed time, say) is not compared. Prints "same tensors: N (B bytes)";
-- otherwise one line per tensor that differs (how many elements, the first one, the largest
-- difference) and a closing count, and exits 1. Used by cli.train and cli.crash.
local hr = require "hybridrt"

local a_path, b_path = arg.opts.a, arg.opts.b
assert(a_path and b_path, "usage: hybridrt run same_tensors.lua a=A.safetensors b=B.safetensors")
local a, b = hr.load_safetensors(a_path), hr.load_safetensors(b_path)

-- string.pack formats of each dtype's element bytes (bf16 goes through f32, which holds it exactly)
local FORMAT = {f32 = "<f", bf16 = "<f", f64 = "<d", i32 = "<i4", i64 = "<i8", u8 = "B"}
local SIZE = {f32 = 4, bf16 = 2, f64 = 8, i32 = 4, i64 = 8, u8 = 1}

local function elements(t)
  if t:numel() == 0 then return {} end
  local flat = t:contiguous():view(-1)
  if t.dtype == "bf16" then flat = flat:to("f32") end
  return flat:totable()
end

local function shape_str(t) return "(" .. table.concat(t.shape, ", ") .. ")" end

local names = {}
for name in pairs(a) do names[#names + 1] = name end
for name in pairs(b) do if not a[name] then names[#names + 1] = name end end
table.sort(names)

local problems, same, nbytes = {}, 0, 0
for _, name in ipairs(names) do
  local t, u = a[name], b[name]
  if not u then problems[#problems + 1] = name .. ": only in " .. a_path
  elseif not t then problems[#problems + 1] = name .. ": only in " .. b_path
  elseif t.dtype ~= u.dtype or shape_str(t) ~= shape_str(u) then
    problems[#problems + 1] = string.format("%s: %s %s against %s %s", name, t.dtype, shape_str(t), u.dtype, shape_str(u))
  else
    local fmt = assert(FORMAT[t.dtype], "unknown dtype " .. t.dtype)
    local x, y = elements(t), elements(u)
    local differ, first, worst = 0, nil, 0
    for i = 1, #x do
      if string.pack(fmt, x[i]) ~= string.pack(fmt, y[i]) then
        differ = differ + 1
        first = first or i
        local d = math.abs(x[i] - y[i])
        if d > worst or d ~= d then worst = d end
      end
    end
    if differ == 0 then
      same = same + 1
      nbytes = nbytes + #x * SIZE[t.dtype]
    else
      problems[#problems + 1] = string.format(
        "%s: %d of %d elements differ (first: element %d, %.9g against %.9g; largest difference %.3g)", name, differ,
        #x, first, x[first], y[first], worst)
    end
  end
end
if #problems > 0 then
  for _, p in ipairs(problems) do print("differs: " .. p) end
  print(string.format("%d of %d tensors differ", #problems, #names))
  os.exit(1)
end
print(string.format("same tensors: %d (%d bytes)", same, nbytes))
