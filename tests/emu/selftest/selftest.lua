-- emu.selftest: the emulated GPU (tests/emu) must catch seeded kernel bugs. kernel_src/ is copied to
-- a temporary folder; each bug below is seeded into the copy alone (an exact text replacement that
-- must match once: a template edit that moves the text fails here, it never disables a bug), the
-- mutated template's kernel library is rebuilt into an overlay folder (gen_emu_kernels, then the C++
-- compiler with the build's flags), and op_check.lua runs the op on the emulated GPU against the CPU
-- with HYBRIDRT_KERNEL_SRC=the copy (NVRTC builds the same mutant) and HYBRIDRT_EMU_KERNELS=overlay
-- before the build's libraries. It must fail with the message of the check named. The same cases
-- must pass on the unmutated copy, through the same rebuild, so a catch is the bug's, not noise.
--   hybridrt run selftest.lua build=BUILD_DIR [cxx=g++] [cache=DIR] [only=ID] [keep=true]
-- Environment: the emulator's (HR_EMU_ENV in CMakeLists.txt), HYBRIDRT_CUDA_NO_CACHING=1 included
-- (every device buffer exactly sized, so an overrun faults).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local src = here .. "/../../.."
package.path = src .. "/tests/lua/?.lua;" .. package.path
local t = require "harness"

local opts = arg.opts or {}
local build = assert(opts.build, "selftest: give build=BUILD_DIR (the CMake build tree)")
local cxx = opts.cxx or "g++"
local cache = opts.cache or (build .. "/emu-selftest-cache")

-- ---- the seeded bugs: where, the text replaced, the cases that meet it, the check that must catch it ----
local CE = "cross_entropy (ignore_index)"
local KERNEL = "<[%w ,]+>" -- a name expression's template arguments, in the patterns
local FAULT = KERNEL .. ", block %d+, thread %d+: an access to 0x%x+, "
local BUGS = {
  {id = "barrier-norm", what = "removed the __syncthreads() of the block-sum tree (hr_norm_block_sum)",
   file = "norm.cu", cases = "layer_norm", by = "the schedule comparison",
   find = "stride /= 2) {\n        __syncthreads();\n        if (threadIdx.x < stride) buf",
   replace = "stride /= 2) {\n        if (threadIdx.x < stride) buf",
   expect = {"hr_group_norm_forward" .. KERNEL .. " writes different results with its threads and blocks in order"}},
  {id = "barrier-wkv6", what = "removed the __syncthreads() after the forward loads sr/sk/sd (hr_wkv6_forward)",
   file = "wkv6.cu", cases = "wkv6 N=32", by = "the schedule comparison",
   find = "        sd[j] = hr_wkv_decay<T>(w[o + j]);\n        __syncthreads();\n",
   replace = "        sd[j] = hr_wkv_decay<T>(w[o + j]);\n",
   expect = {"hr_wkv6_forward" .. KERNEL .. " writes different results with its threads and blocks in order"}},
  {id = "unloaded-shared", what = "the shared array su never loaded (hr_wkv6_forward)",
   file = "wkv6.cu", cases = "wkv6 N=32", by = "NaN-filled shared memory, then the CPU comparison",
   find = "    su[j] = u[h * N + j];\n", replace = "",
   expect = {"forward: beyond tolerance at element %d+: gpu %-?nan"}},
  {id = "reduction-overread", what = "the block-sum tree starts at stride BLOCK, reading buf[BLOCK, 2 BLOCK) " ..
                                     "(hr_norm_block_sum)",
   file = "norm.cu", cases = "layer_norm", by = "NaN-filled shared memory, then the CPU comparison",
   find = "for (int stride = BLOCK / 2; stride > 0;", replace = "for (int stride = BLOCK; stride > 0;",
   expect = {"beyond tolerance at element %d+: gpu %-?nan"}},
  {id = "shared-overwrite", what = "one element written past the block-sum's shared array (hr_norm_block_sum)",
   file = "norm.cu", cases = "layer_norm", by = "the guard bytes after each shared array",
   find = "    buf[threadIdx.x] = v;\n", replace = "    buf[threadIdx.x] = v;\n    if (threadIdx.x == 0) buf[BLOCK] = v;\n",
   expect = {"hr_group_norm_forward" .. KERNEL .. ", block %d+: a write past the end of __shared__ array buf"}},
  {id = "divergent-barrier", what = "a barrier reached by the first warp only (hr_cross_entropy_rows, 256 threads)",
   file = "loss.cu", cases = CE, by = "the barrier check",
   find = "    const T mx = buf[0];\n    __syncthreads();\n",
   replace = "    const T mx = buf[0];\n    if (threadIdx.x < 32) __syncthreads();\n",
   expect = {"divergent barrier in hr_cross_entropy_rows" .. KERNEL ..
             ", block %d+: thread %d+ waits at __syncthreads%(%) %(loss%.cu:%d+%)"}},
  {id = "scratch-overrun", what = "the backward's scratch offset one (b, h) pair too far (hr_wkv6_backward)",
   file = "wkv6.cu", cases = "wkv6 N=32", by = "the guard page past the scratch buffer",
   find = "T *ckpt = scratch + bh * (nchunk + CHUNK) * NN;",
   replace = "T *ckpt = scratch + (bh + 1) * (nchunk + CHUNK) * NN;",
   expect = {"CUDA_ERROR_ILLEGAL_ADDRESS", "hr_wkv6_backward" .. FAULT .. "%d+ bytes past the end of device buffer"}},
  {id = "output-overrun", what = "dx written one element further on (hr_group_norm_backward_dx)",
   file = "norm.cu", cases = "layer_norm", by = "the guard page past the gradient buffer",
   find = "dx[off + i] += (wdy - xhat * c1 - c2) * r;", replace = "dx[off + i + 1] += (wdy - xhat * c1 - c2) * r;",
   expect = {"CUDA_ERROR_ILLEGAL_ADDRESS",
             "hr_group_norm_backward_dx" .. FAULT .. "0 bytes past the end of device buffer"}},
  {id = "param-double", what = "float eps declared double (hr_group_norm_forward)",
   file = "norm.cu", cases = "layer_norm", dtypes = "f32", by = "the backend's argument-size check",
   find = "hr_group_norm_forward(hr_i64 rows, hr_i64 G, hr_i64 S, T eps,",
   replace = "hr_group_norm_forward(hr_i64 rows, hr_i64 G, hr_i64 S, double eps,",
   expect = {"hr_group_norm_forward<float, %d+>: argument 3 is 4 bytes, the kernel's parameter 8 bytes"}},
  {id = "param-int", what = "hr_i64 B declared int (hr_wkv6_forward)",
   file = "wkv6.cu", cases = "wkv6 N=32", by = "the backend's argument-size check",
   find = "hr_wkv6_forward(hr_i64 B,", replace = "hr_wkv6_forward(int B,",
   expect = {"hr_wkv6_forward" .. KERNEL .. ": argument 0 is 8 bytes, the kernel's parameter 4 bytes"}},
  {id = "wrong-math", what = "the sign of the target term flipped (hr_cross_entropy_backward)",
   file = "loss.cu", cases = CE, by = "the CPU comparison",
   find = "dlogits[e] += scale * (p - (v == target", replace = "dlogits[e] += scale * (p + (v == target",
   expect = {"backward, input 1: beyond tolerance at element %d+: gpu"}},
}

-- ---- helpers ----
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its output (stdout and stderr) and whether it exited 0.
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

local function first_line_matching(out, pattern)
  for line in out:gmatch("[^\n]+") do
    if line:find(pattern) then return line end
  end
end

local env_driver = os.getenv("HYBRIDRT_CUDA_DRIVER_LIBRARY") or ""
if not env_driver:find("emucuda", 1, true) or os.getenv("HYBRIDRT_CUDA_NO_CACHING") ~= "1" then
  t.check(false, "selftest: run with the emulator's environment (HR_EMU_ENV: HYBRIDRT_CUDA_DRIVER_LIBRARY=" ..
                 "libhybridrt_emucuda.so, HYBRIDRT_CUDA_NO_CACHING=1 ...); HYBRIDRT_CUDA_DRIVER_LIBRARY=" .. env_driver)
  return t.finish("emu.selftest")
end

local work = assert(io.popen("mktemp -d"):read("l"), "selftest: mktemp -d failed")
local copy = work .. "/kernel_src"
local _, copied = sh("cp -R " .. q(src .. "/kernel_src") .. " " .. q(copy))
assert(copied, "selftest: cannot copy kernel_src to " .. copy)
local flags = (t.read_file(build .. "/emu-kernel-flags.txt") or error("selftest: no emu-kernel-flags.txt in " .. build))
  :gsub(";", " ")
local originals = {}
local function template(file)
  originals[file] = originals[file] or t.read_file(copy .. "/" .. file) or error("selftest: no template " .. file)
  return originals[file]
end

-- Builds the copy's `file` into a kernel library in folder `dir`; nil, or the failure's text.
local function build_library(file, dir)
  local name = file:gsub("%.cu$", "")
  local cpp, so = dir .. "/emu_" .. name .. ".cpp", dir .. "/emu_" .. name .. ".so"
  local out, ok = sh(string.format("mkdir -p %s && HYBRIDRT_KERNEL_SRC=%s %s %s %s && %s %s -std=c++17 -O2 -fPIC " ..
                                   "-shared -I %s -I %s %s %s -o %s", q(dir), q(copy), q(build .. "/gen_emu_kernels"),
                                   q(file), q(cpp), q(cxx), flags, q(src .. "/tests/emu"), q(copy),
                                   q(src .. "/tests/emu/emu_guard.cpp"), q(cpp), q(so)))
  if not ok then return "building " .. so .. " failed:\n" .. out end
end

-- op_check.lua on the copy with the libraries of `overlay` first; its output and whether it passed.
local function op_check(overlay, cases, dtypes)
  return sh(string.format("HYBRIDRT_KERNEL_SRC=%s HYBRIDRT_EMU_KERNELS=%s HYBRIDRT_CACHE_DIR=%s %s run %s cases=%s " ..
                          "dtypes=%s", q(copy), q(overlay .. ":" .. build .. "/emu-kernels"), q(cache),
                          q(build .. "/hybridrt"), q(here .. "/op_check.lua"), q(cases), q(dtypes or "f64,f32")))
end

local function selected(bug) return not opts.only or opts.only == bug.id end

-- Where `find` stands in text (plain) and how many times.
local function occurrences(text, find)
  local first, count, from = nil, 0, 1
  while true do
    local s, e = text:find(find, from, true)
    if not s then return first, count end
    first, count, from = first or s, count + 1, e + 1
  end
end

-- ---- the unmutated templates pass, through the same rebuild ----
local clock = os.time()
local files, cases, file_seen, case_seen = {}, {}, {}, {}
for _, bug in ipairs(BUGS) do
  if selected(bug) then
    if not file_seen[bug.file] then files[#files + 1], file_seen[bug.file] = bug.file, true end
    if not case_seen[bug.cases] then cases[#cases + 1], case_seen[bug.cases] = bug.cases, true end
  end
end
if #files == 0 then
  t.check(false, "selftest: no bug named " .. tostring(opts.only))
  return t.finish("emu.selftest")
end
local base_dir = work .. "/overlay-unmutated"
for _, file in ipairs(files) do
  local err = build_library(file, base_dir)
  t.check(not err, "selftest: unmutated " .. file .. ": " .. tostring(err))
end
local out, passed = op_check(base_dir, table.concat(cases, ";"))
passed = passed and out:find("op_check: PASS", 1, true) ~= nil
t.check(passed, "selftest: the unmutated templates must pass (" .. table.concat(cases, "; ") .. "):\n" .. out)
print(string.format("selftest: unmutated %s: %s (%s)", table.concat(files, ", "), passed and "pass" or "FAIL",
                    table.concat(cases, "; ")))

-- ---- each bug alone ----
for n, bug in ipairs(BUGS) do
  local text = selected(bug) and template(bug.file)
  local at, count = occurrences(text or "", bug.find)
  if text and count ~= 1 then
    t.check(false, string.format("selftest: bug %s: the text to replace occurs %d times in %s (want once): %q",
                                 bug.id, count, bug.file, bug.find))
  elseif text then
    -- the mutant stays in the copy while its library builds and NVRTC compiles it, then goes
    t.write_file(copy .. "/" .. bug.file, text:sub(1, at - 1) .. bug.replace .. text:sub(at + #bug.find))
    local err = build_library(bug.file, work .. "/overlay-" .. bug.id)
    local out_b, passed_b
    if not err then out_b, passed_b = op_check(work .. "/overlay-" .. bug.id, bug.cases, bug.dtypes) end
    t.write_file(copy .. "/" .. bug.file, text)
    if err then
      t.check(false, "selftest: bug " .. bug.id .. ": " .. err)
    else
      local caught, missing = not passed_b, nil
      for _, pattern in ipairs(bug.expect) do
        if not first_line_matching(out_b, pattern) then caught, missing = false, missing or pattern end
      end
      t.check(caught, string.format("selftest: bug %s (%s, %s) not caught by %s (no line matching %q; op_check %s):" ..
                                    "\n%s", bug.id, bug.what, bug.file, bug.by, tostring(missing),
                                    passed_b and "passed" or "failed", out_b))
      local line = first_line_matching(out_b, bug.expect[#bug.expect]) or "(no such line)"
      print(string.format("selftest: bug %d %s: %s, in %s; %s by %s: %s", n, bug.id, bug.what, bug.file,
                          caught and "caught" or "NOT CAUGHT", bug.by, line:sub(1, 400)))
    end
  end
end

print(string.format("selftest: %d s", os.time() - clock))
if opts.keep then print("selftest: kept " .. work) else sh("rm -rf " .. q(work)) end
return t.finish("emu.selftest")
