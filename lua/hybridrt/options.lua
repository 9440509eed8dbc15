-- Script options: a declared table of names, types, defaults and one-line docs, checked against
-- arg.opts (unknown names and wrong types are errors that list the valid choices) and printed as help.
local M = {}

-- spec: array of {name, type ("number" | "integer" | "string" | "boolean"), default, doc}.
-- script_arg: the script's `arg` (key=value pairs in arg.opts; a positional --help or -h sets help).
-- Returns a table of values: given ones checked, the rest defaults (nil defaults stay nil).
function M.parse(spec, script_arg, script)
  local given = script_arg and script_arg.opts or {}
  -- the values as written: a string option keeps its text (out=007 is "007", not the number's "7")
  local text = script_arg and script_arg.opts_text or {}
  for _, a in ipairs(script_arg or {}) do
    if a == "--help" or a == "-h" then return {help = true} end
    error(string.format("%s: unexpected argument '%s' (options are key=value; see --help)", script, tostring(a)), 0)
  end
  local by_name, names = {}, {}
  for _, o in ipairs(spec) do by_name[o[1]] = o; names[#names + 1] = o[1] end
  local out = {}
  for k, v in pairs(given or {}) do
    local o = by_name[k]
    if not o then
      table.sort(names)
      error(string.format("%s: unknown option '%s' (valid: %s)", script, tostring(k), table.concat(names, ", ")), 0)
    end
    local ty = o[2]
    local ok = (ty == "number" and type(v) == "number") or (ty == "integer" and math.type(v) == "integer") or
               (ty == "boolean" and type(v) == "boolean") or (ty == "string" and (type(v) == "string" or type(v) == "number"))
    if not ok then
      error(string.format("%s: option %s=%s must be %s %s", script, k, tostring(v),
                          ty == "integer" and "an" or "a", ty), 0)
    end
    if ty == "string" then v = type(text[k]) == "string" and text[k] or tostring(v) end
    out[k] = v
  end
  for _, o in ipairs(spec) do
    if out[o[1]] == nil then out[o[1]] = o[3] end
  end
  return out
end

function M.help(spec, usage)
  local lines = {usage, "", "options (key=value):"}
  for _, o in ipairs(spec) do
    local default = o[3] == nil and "" or string.format(" (default %s)", tostring(o[3]))
    lines[#lines + 1] = string.format("  %-14s %s%s", o[1], o[4], default)
  end
  return table.concat(lines, "\n")
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end
M.json_string = json_string

-- One JSON object per line with keys in the given order (numbers, strings, booleans).
function M.json_line(keys, values)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = values[k]
    if v ~= nil then
      local s
      if type(v) == "number" then
        if v ~= v or v == math.huge or v == -math.huge then s = "null"
        elseif math.type(v) == "integer" then s = tostring(v)
        else s = string.format("%.7g", v) end
      elseif type(v) == "boolean" then s = tostring(v)
      else s = json_string(tostring(v)) end
      parts[#parts + 1] = json_string(k) .. ":" .. s
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

return M
