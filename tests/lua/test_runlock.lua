-- Run directory locks: hr.lock_file (flock; a second open of the file is refused while it is held,
-- even in this process), its record, release, taking over a dead holder's record, hr.list_dir, and
-- hybridrt.runlock's messages and clean-up of a dead run's temporary files.
local t = require "harness"
local hr = require "hybridrt"
local runlock = require "hybridrt.runlock"

local tmp, cleanup = t.tmpfiles()
local write_file, read_file = t.write_file, t.read_file

t.case("lock, refuse, release", function()
  local path = tmp("a.lock")
  local lock, stale = hr.lock_file(path)
  t.check(lock ~= nil and stale == nil, "a new lock file is taken, nothing stale")
  t.check(lock:held(), "held")
  local record = read_file(path)
  t.check(record:match("^pid=%d+\nhost=[^\n]+\nstarted=%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d [+-]%d%d%d%d\n$") ~= nil,
          "the record names pid, host and start time: " .. record)
  local again, holder = hr.lock_file(path)
  t.check(again == nil and holder == record, "a second lock is refused with the holder's record")
  lock:release()
  t.check(not lock:held() and read_file(path) == "", "release empties the file (it stays)")
  lock:release() -- twice is harmless
  local third, stale3 = hr.lock_file(path)
  t.check(third ~= nil and stale3 == nil, "taken again after a release, nothing stale")
  third:release()
end)

t.case("a dead holder's record is taken over", function()
  local path = tmp("b.lock")
  write_file(path, "pid=999999\nhost=elsewhere\nstarted=2026-01-01 00:00:00 +0000\n") -- no lock behind it
  local lock, stale = hr.lock_file(path)
  t.check(lock ~= nil and stale:find("pid=999999", 1, true) ~= nil, "taken over, returning the old record")
  t.check(runlock.describe(stale) == "pid 999999 on host elsewhere, started 2026-01-01 00:00:00 +0000",
          "describe: " .. runlock.describe(stale))
  t.check(not read_file(path):find("999999", 1, true), "the old record is replaced")
  lock:release()
  do
    local scoped <close> = hr.lock_file(path)
    t.check(hr.lock_file(path) == nil, "held inside the scope")
  end
  t.check(hr.lock_file(path) ~= nil, "a to-be-closed lock is released at the end of its scope")
end)

t.case("not a regular file", function()
  local dir = tmp("dir.lock")
  hr.mkdir(dir)
  t.raises(function() hr.lock_file(dir) end, dir, "cannot open the lock file")
  os.remove(dir)
  t.raises(function() hr.lock_file(tmp("missing") .. "/x/.lock") end, "cannot open the lock file", "No such file")
end)

t.case("runlock.acquire and hr.list_dir", function()
  local dir = tmp("run")
  hr.mkdir(dir)
  local lock, note = runlock.acquire(dir, "test: ")
  t.check(lock ~= nil and note == nil, "a fresh directory: locked, no note")
  t.raises(function() runlock.acquire(dir, "test: ") end, "test: " .. dir .. " is in use by another run (pid ",
           "wait for it to end, or pass another out=")
  lock:release()
  -- a dead run: its record, a half-written checkpoint and a cut metrics rewrite; other files stay
  write_file(dir .. "/.lock", "pid=999999\nhost=h\nstarted=2026-01-01 00:00:00 +0000\n")
  write_file(dir .. "/latest.safetensors.tmp.Ab12Cd", "partial")
  write_file(dir .. "/metrics.jsonl.tmp.xY9zQ0", "{")
  write_file(dir .. "/latest.safetensors", "kept")
  local names = hr.list_dir(dir)
  table.sort(names)
  t.check(table.concat(names, " ") == ".lock latest.safetensors latest.safetensors.tmp.Ab12Cd metrics.jsonl.tmp.xY9zQ0",
          "list_dir: " .. table.concat(names, " "))
  lock, note = runlock.acquire(dir, "test: ")
  t.check(note == "note: took over the lock of " .. dir .. " from pid 999999 on host h, started 2026-01-01 00:00:00 " ..
                  "+0000, which ended without releasing it; removed the 2 temporary files it left " ..
                  "(latest.safetensors.tmp.Ab12Cd, metrics.jsonl.tmp.xY9zQ0)", "the takeover note: " .. tostring(note))
  names = hr.list_dir(dir)
  table.sort(names)
  t.check(table.concat(names, " ") == ".lock latest.safetensors", "only the temporary files went: " ..
          table.concat(names, " "))
  lock:release()
  t.raises(function() hr.list_dir(dir .. "/nothing") end, "cannot list " .. dir .. "/nothing", "No such file")
  for _, name in ipairs(hr.list_dir(dir)) do os.remove(dir .. "/" .. name) end
  os.remove(dir)
end)

cleanup()
t.finish("lua.runlock")
