-- The run directory's lock: one run at a time writes into a run directory (train.lua's out=).
-- DIR/.lock is locked (flock, hr.lock_file) for the life of the run and holds the run's pid, host
-- and start time; a second run into DIR is refused naming them. The lock is the kernel's, so it
-- ends with its process however that ends: a .lock left behind by a kill -9 holds a record but no
-- lock, and the next run takes it over, saying whose it was, and removes the temporary files that
-- run left half written (NAME.tmp.XXXXXX of the atomic writer: nothing else writes there now).
local hr = require "hybridrt.core"

local M = {}

M.NAME = ".lock"

-- "pid 123 on host h, started 2026-12-01 10:00:00 +0000" from a lock record.
function M.describe(record)
  local pid, host, started = record:match("pid=(%d+)"), record:match("host=([^\n]*)"),
                             record:match("started=([^\n]*)")
  if not pid then return "a run that has not written its pid yet" end
  return string.format("pid %s on host %s, started %s", pid, host or "?", started or "?")
end

-- The atomic writer's temporary files in dir (hr.save_safetensors, hr.write_file: NAME.tmp.XXXXXX).
function M.temp_files(dir)
  local found = {}
  for _, name in ipairs(hr.list_dir(dir)) do
    if name:match("%.tmp%.%w%w%w%w%w%w$") then found[#found + 1] = name end
  end
  table.sort(found)
  return found
end

-- Locks dir for this process: returns the lock (lock:release(); also released on exit, and as a
-- to-be-closed variable) and, when a dead run's lock was taken over, a one-line note saying so
-- (and which of its temporary files were removed). A directory locked by a live run raises an error
-- naming the run (prefix: the caller's name).
function M.acquire(dir, prefix)
  local path = dir .. "/" .. M.NAME
  local lock, other = hr.lock_file(path)
  if not lock then
    error(string.format("%s%s is in use by another run (%s; lock %s): wait for it to end, or pass another out=",
                        prefix or "", dir, M.describe(other), path), 0)
  end
  if not other then return lock, nil end
  local note = string.format("note: took over the lock of %s from %s, which ended without releasing it", dir,
                             M.describe(other))
  local removed = {}
  for _, name in ipairs(M.temp_files(dir)) do
    if os.remove(dir .. "/" .. name) then removed[#removed + 1] = name end
  end
  if #removed > 0 then
    note = string.format("%s; removed the %d temporary file%s it left (%s)", note, #removed, #removed > 1 and "s" or "",
                         table.concat(removed, ", "))
  end
  return lock, note
end

return M
