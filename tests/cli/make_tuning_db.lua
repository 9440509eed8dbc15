-- Writes a small tuning database for the CLI tests: hybridrt run make_tuning_db.lua PATH
-- For head size 32 on sm_80: the f32 group-norm forward measured at two shapes choosing BLOCK 128
-- and 512 (both load), the f32 WKV6 backward choosing CHUNK 32, and a record of an edited kernel
-- (another source hash: ignored).
local hr = require "hybridrt"
local path = assert(arg[1], "usage: make_tuning_db.lua PATH")
os.remove(path)
local header = {gpu = "Test GPU", arch = "sm_80", driver = "13.0", nvrtc = "13.0", date = "2026-11-30"}
local norm, wkv = hr.tune_source_hash("norm.cu"), hr.tune_source_hash("wkv6.cu")
hr.tune_record(path, header, {kernel = "hr_group_norm_forward", src = norm, dtype = "f32", head = 0,
  shape = {{"segments", 4096}, {"size", 128}}, knob = "BLOCK", times = {{128, 0.1}, {256, 0.2}}})
hr.tune_record(path, header, {kernel = "hr_group_norm_forward", src = norm, dtype = "f32", head = 0,
  shape = {{"segments", 64}, {"size", 4096}}, knob = "BLOCK", times = {{512, 0.1}, {256, 0.2}}})
hr.tune_record(path, header, {kernel = "hr_wkv6_backward", src = wkv, dtype = "f32", head = 32,
  shape = {{"pairs", 256}, {"T", 64}, {"N", 32}}, knob = "CHUNK", times = {{32, 0.1}, {16, 0.2}}})
hr.tune_record(path, header, {kernel = "hr_gated_rms_norm_forward", src = "0000000000000000", dtype = "f32",
  head = 0, shape = {{"segments", 64}, {"size", 64}}, knob = "BLOCK", times = {{64, 0.1}, {256, 0.2}}})
print("wrote " .. path)
