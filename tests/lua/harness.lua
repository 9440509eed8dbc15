-- A small test harness for the Lua tests: named cases, checks that count, an error matcher and a
-- closing line with the counts; exits non-zero when anything failed.
local M = {passed = 0, failed = 0}

function M.check(cond, msg)
  if cond then M.passed = M.passed + 1
  else
    M.failed = M.failed + 1
    io.stderr:write("FAIL: ", msg or "check failed", "\n", debug.traceback("", 2), "\n")
  end
end

function M.near(a, b, tol, msg)
  M.check(math.abs(a - b) <= tol, string.format("%s: %.10g vs %.10g (tol %g)", msg or "near", a, b, tol))
end

-- Checks that fn raises an error whose message contains every given fragment (plain text).
function M.raises(fn, ...)
  local ok, err = pcall(fn)
  if ok then return M.check(false, "expected an error, got none") end
  for _, fragment in ipairs({...}) do
    M.check(tostring(err):find(fragment, 1, true) ~= nil,
            string.format("error %q lacks %q", tostring(err), fragment))
  end
end

-- Temporary files sharing one os.tmpname() prefix: tmp(name) -> a path; cleanup() removes them all.
function M.tmpfiles()
  local base = os.tmpname()
  local made = {base}
  local function tmp(name)
    local p = base .. "." .. name
    made[#made + 1] = p
    return p
  end
  local function cleanup() for _, p in ipairs(made) do os.remove(p) end end
  return tmp, cleanup
end

function M.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.case(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    M.failed = M.failed + 1
    io.stderr:write("FAIL (error) in ", name, ": ", tostring(err), "\n")
  end
end

function M.finish(name)
  print(string.format("%s: %d checks passed, %d failed", name, M.passed, M.failed))
  if M.failed > 0 then os.exit(1) end
end

return M
