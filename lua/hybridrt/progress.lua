-- A progress bar for long loops: redrawn in place on a terminal (stderr), or, when stderr is not a
-- terminal, a plain line every `every` updates so logs stay readable.
local hr = require "hybridrt.core"

local M = {}
local Bar = {}
Bar.__index = Bar

-- total: number of steps; opts: every (plain-line period), stream (io.stderr), label.
function M.new(total, opts)
  opts = opts or {}
  local stream = opts.stream or io.stderr
  return setmetatable({total = total, stream = stream, tty = hr.isatty(stream), every = opts.every or 10,
                       label = opts.label or "", width = hr.terminal_columns() or 100, last_len = 0}, Bar)
end

function M.format_duration(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end

-- done: steps completed; text: what to show after the bar (loss, tokens/s, ETA...).
function Bar:update(done, text, force)
  if self.tty then
    local frac = self.total > 0 and math.min(1, done / self.total) or 1
    local head = string.format("%s%d/%d ", self.label, done, self.total)
    local bar_w = math.max(10, math.min(30, self.width - #head - #text - 4))
    local filled = math.floor(frac * bar_w + 0.5)
    local line = head .. "[" .. string.rep("#", filled) .. string.rep(".", bar_w - filled) .. "] " .. text
    if #line > self.width - 1 then line = line:sub(1, self.width - 1) end
    local pad = self.last_len > #line and string.rep(" ", self.last_len - #line) or ""
    self.stream:write("\r", line, pad)
    self.stream:flush()
    self.last_len = #line
  elseif force or done % self.every == 0 or done == self.total then
    self.stream:write(string.format("%s%d/%d %s\n", self.label, done, self.total, text))
    self.stream:flush()
  end
end

-- Prints a whole line above the bar (the bar is redrawn at the next update).
function Bar:print(line)
  if self.tty and self.last_len > 0 then
    self.stream:write("\r", string.rep(" ", self.last_len), "\r")
    self.last_len = 0
  end
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

function Bar:finish()
  if self.tty and self.last_len > 0 then self.stream:write("\n") end
  self.last_len = 0
end

return M
