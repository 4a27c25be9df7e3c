--- giro ref: create, check, normalize and format reference numbers and identifiers.
local cli = require("giro.cli")
local args = require("giro.cli.args")
local ref = require("giro.ref")

local M = {
  summary = "create, check and format references, KIDs, account numbers, IBANs",
  usage = "giro ref create|check|format|normalize KIND NUMBER|-\n       giro ref kinds",
  help = [[
  create KIND BASE      print BASE with its check digit(s) added
  check KIND NUMBER     print "NUMBER: ok" (exit 0) or "NUMBER: invalid: reason" (exit 1)
  format KIND NUMBER    print the number in its printed form (groups, separators)
  normalize KIND NUMBER print the canonical compact form
  kinds                 list the kinds

KIND is one of: fi, rf, kid10, kid11, no-account, no-org, fi-business, iban
(`giro ref kinds` describes them).  Spaces and the usual separators are
accepted in NUMBER; quote numbers that contain spaces.

With - instead of NUMBER the numbers are read from stdin, one a line, and one
result line is written per input line, in order: for check "NUMBER: ok" or
"NUMBER: invalid: reason"; for the others the result, or
"NUMBER: invalid: reason".  The exit code is 1 if any line was invalid.

create iban takes a domestic account with its country code in front
("NO 8601.11.17947", "FI 123456-785", "DE370400440532013000"); a bare
11-digit Norwegian or BBBBBB-CCC Finnish account is recognised without one.

exit codes: 0 all valid, 1 invalid input, 2 usage error (unknown kind, missing arguments)

examples:
  giro ref create fi 1234                  -> 12344
  giro ref create rf 12344                 -> RF0812344
  giro ref check iban "NO93 8601 1117 947" -> NO93 8601 1117 947: ok
  giro ref format fi 1234567890123456787   -> 1234 56789 01234 56787
  giro ref check kid10 - < kids.txt]],
}

local ACTIONS = {
  create = function(kind, s) return ref.create(kind, s) end,
  format = ref.format,
  normalize = ref.normalize,
}

local function list_kinds()
  local out = {}
  for _, name in ipairs(ref.names()) do
    out[#out + 1] = string.format("%-12s %s", name, ref.kinds[name].summary)
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

-- one result line for one number; returns true when it was valid
local function one(action, kind, s, out)
  if action == "check" then
    local ok, why = ref.check(kind, s)
    out:write(s, ok and ": ok\n" or (": invalid: " .. why .. "\n"))
    return ok
  end
  local res, why = ACTIONS[action](kind, s)
  if res then
    out:write(res, "\n")
    return true
  end
  out:write(s, ": invalid: ", why, "\n")
  return false
end

function M.run(argv)
  local _, pos = args.parse(argv, {})
  local action = pos[1]
  if action == "kinds" then
    if #pos > 1 then cli.usage("kinds takes no arguments") end
    return list_kinds()
  end
  if action == nil then cli.usage("usage: %s", M.usage) end
  if action ~= "check" and not ACTIONS[action] then
    cli.usage("unknown action '%s': expected create, check, format, normalize or kinds", action)
  end
  local kind, value = pos[2], pos[3]
  if kind == nil then cli.usage("%s needs a KIND (see: giro ref kinds)", action) end
  if ref.kinds[kind] == nil then cli.usage("unknown kind '%s' (see: giro ref kinds)", kind) end
  if value == nil then cli.usage("%s %s needs a NUMBER or - for stdin", action, kind) end
  if #pos > 3 then cli.usage("too many arguments: one NUMBER or - expected") end

  if value ~= "-" then
    if action == "check" then
      return one(action, kind, value, io.stdout) and 0 or 1
    end
    local res, why = ACTIONS[action](kind, value)
    if not res then cli.rejected("%s: invalid: %s", value, why) end
    io.stdout:write(res, "\n")
    return 0
  end

  -- stream stdin line by line, never holding more than one line; each result is flushed
  -- at its newline, so that giro can serve as a co-process on a pipe
  io.stdout:setvbuf("line")
  local all_ok = true
  for line in io.stdin:lines() do
    if line:sub(-1) == "\r" then line = line:sub(1, -2) end
    if not one(action, kind, line, io.stdout) then all_ok = false end
  end
  return all_ok and 0 or 1
end

return M
