-- hybridrt run load_checkpoints.lua dir=DIR
-- Every checkpoint in a run directory loads: each *.safetensors file reads as a hybridrt checkpoint
-- (hybridrt.checkpoint.read: the safetensors reader refuses a truncated or malformed file, then the
-- format tag and the model config are checked) holding the tensors of latest.safetensors with
-- their shapes, and a ckpt-stepNNNNNN file's metadata names its step. The atomic writer's
-- temporary files (*.safetensors.tmp.XXXXXX, left by a process killed while writing) are read too
-- and counted whole or refused: they are not checkpoints. Prints
--   checkpoints: N load, latest at step S; temporary files: T (W whole, R refused: first reason)
-- or one line per checkpoint that does not load, then exits 1. Used by cli.crash.
local hr = require "hybridrt"
local ckpt = require "hybridrt.checkpoint"

local dir = assert(arg.opts.dir, "usage: hybridrt run load_checkpoints.lua dir=DIR")
local names = hr.list_dir(dir)
table.sort(names)

local function shapes(tensors)
  local s = {}
  for name, t in pairs(tensors) do s[name] = table.concat(t.shape, "x") end
  return s
end

local bad, loaded = {}, 0
local ok, latest_tensors, _, latest_train = pcall(ckpt.read, dir .. "/latest.safetensors")
if not ok then
  print("bad: latest.safetensors: " .. tostring(latest_tensors))
  os.exit(1)
end
local want = shapes(latest_tensors)
latest_tensors = nil
for _, name in ipairs(names) do
  if name:match("%.safetensors$") then
    local path = dir .. "/" .. name
    local read_ok, tensors, _, train = pcall(ckpt.read, path)
    if not read_ok then bad[#bad + 1] = name .. ": " .. tostring(tensors)
    else
      local have, problem = shapes(tensors), nil
      for k, s in pairs(want) do
        if have[k] ~= s then problem = problem or string.format("%s is %s, %s in latest", k, tostring(have[k]), s) end
      end
      for k in pairs(have) do if not want[k] then problem = problem or "unexpected " .. k end end
      local step = tonumber(name:match("^ckpt%-step(%d+)%.safetensors$"))
      if step and train.step ~= step then
        problem = problem or string.format("its metadata says step %s", tostring(train.step))
      end
      if problem then bad[#bad + 1] = name .. ": " .. problem else loaded = loaded + 1 end
    end
    collectgarbage()
  end
end

local temps, whole, refused, reason = 0, 0, 0, nil
for _, name in ipairs(names) do
  if name:match("%.safetensors%.tmp%.%w+$") then
    temps = temps + 1
    local read_ok, err = pcall(hr.load_safetensors, dir .. "/" .. name)
    if read_ok then whole = whole + 1
    else
      refused = refused + 1
      reason = reason or tostring(err):gsub("^.-%.tmp%.%w+:? ?", "")
    end
  end
end

for _, b in ipairs(bad) do print("bad: " .. b) end
print(string.format("checkpoints: %d load, latest at step %d; temporary files: %d (%d whole, %d refused%s)", loaded,
                    latest_train.step, temps, whole, refused, reason and ": " .. reason or ""))
if #bad > 0 then os.exit(1) end
