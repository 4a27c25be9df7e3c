--- giro ref: create, check, normalize and format reference numbers and identifiers.
local cli = require("giro.cli")
local args = require("giro.cli.args")
local ref = require("giro.ref")

local M = {
  summary = "create, check and format references, KIDs, account numbers, IBANs",
  usage = "giro ref create|check|format|normalize KIND NUMBER|- [--json]\n       giro ref create kid10|kid11 BASE|- --length N [--json]\n       giro ref kinds [--json]",
  help = [[
  create KIND BASE      print BASE with its check digit(s) added
    --length N          (kid10, kid11) a KID of exactly N digits, check digit
                        included: BASE zero-padded on the left; refused (exit 1)
                        when BASE has more than N-1 digits
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

--json prints one JSON object per number instead: {"input", "kind", "action",
"valid" (true/false), "result" (null for check and when invalid), "reason"
and "error" (null when valid; else the reason and an error object as every
command's)}; `kinds --json` an array of {"name", "summary"}.

exit codes: 0 all valid, 1 invalid input, 2 usage error (unknown kind, missing arguments)

examples:
  giro ref create fi 1234                  -> 12344
  giro ref create rf 12344                 -> RF0812344
  giro ref create kid10 1234 --length 10   -> 0000012344
  giro ref check iban "NO93 8601 1117 947" -> NO93 8601 1117 947: ok
  giro ref format fi 1234567890123456787   -> 1234 56789 01234 56787
  giro ref check kid10 - < kids.txt]],
}

-- each takes (kind, number, opts); opts is { length = N } from --length (create only)
local ACTIONS = {
  create = ref.create,
  format = function(kind, s) return ref.format(kind, s) end,
  normalize = function(kind, s) return ref.normalize(kind, s) end,
}

local json = require("giro.json")

-- --json: one object per number, {"input", "kind", "action", "valid", "result", "reason"}
-- (every key present; a line of its own per input line with -).
local function json_result(action, kind, s, ok, res, why)
  local e = json.null
  if not ok then
    e = { kind = "input", message = s .. ": invalid: " .. tostring(why), field = json.null, reason = json.null,
          file = json.null, line = json.null }
  end
  return json.encode({ input = s, kind = kind, action = action, valid = ok and true or false,
    result = ok and action ~= "check" and res or json.null, reason = (not ok) and why or json.null, error = e }) .. "\n"
end

local function list_kinds(as_json)
  if as_json then
    local out = json.array()
    for i, name in ipairs(ref.names()) do out[i] = { name = name, summary = ref.kinds[name].summary } end
    io.stdout:write(json.encode(out), "\n")
    return 0
  end
  local out = {}
  for _, name in ipairs(ref.names()) do
    out[#out + 1] = cli.format("%-12s %s", name, ref.kinds[name].summary)
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

-- one result line for one number; returns true when it was valid
local function one(action, kind, s, out, as_json, opts)
  if as_json then
    local res, why
    if action == "check" then res, why = ref.check(kind, s) else res, why = ACTIONS[action](kind, s, opts) end
    out:write(json_result(action, kind, s, res, res, why))
    return res and true or false
  end
  if action == "check" then
    local ok, why = ref.check(kind, s)
    out:write(s, ok and ": ok\n" or (": invalid: " .. why .. "\n"))
    return ok
  end
  local res, why = ACTIONS[action](kind, s, opts)
  if res then
    out:write(res, "\n")
    return true
  end
  out:write(s, ": invalid: ", why, "\n")
  return false
end

function M.run(argv)
  local opt, pos = args.parse(argv, { "--json", "--length=N" })
  local action = pos[1]
  local create_opts   -- { length = N } from --length, for kid10/kid11
  if opt.length ~= nil then
    if action ~= "create" or (pos[2] ~= "kid10" and pos[2] ~= "kid11") then
      cli.usage("--length is for create kid10 and create kid11")
    end
    local n = opt.length:match("^%d+$") and tonumber(opt.length)
    if not n or n < 2 or n > 25 then cli.usage("--length %s: expected a number of digits 2 to 25", opt.length) end
    create_opts = { length = n }
  end
  if action == "kinds" then
    if #pos > 1 then cli.usage("kinds takes no arguments") end
    return list_kinds(opt.json)
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
    if action == "check" or opt.json then
      local ok = one(action, kind, value, io.stdout, opt.json, create_opts)
      if not ok and opt.json then
        -- the text on stderr too, as for any failure under --json
        local _, why
        if action == "check" then _, why = ref.check(kind, value) else _, why = ACTIONS[action](kind, value, create_opts) end
        io.stderr:write("giro ref: ", value, ": invalid: ", tostring(why), "\n")
      end
      return ok and 0 or 1
    end
    local res, why = ACTIONS[action](kind, value, create_opts)
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
    if not one(action, kind, line, io.stdout, opt.json, create_opts) then all_ok = false end
  end
  return all_ok and 0 or 1
end

return M
