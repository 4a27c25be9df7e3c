--- giro pay: Finnish bank payment buttons (bank definitions in rules/banks/, see docs/banks.md).
local cli = require("giro.cli")
local args = require("giro.cli.args")

local M = {
  summary = "build and verify Finnish bank payment-button messages (Säästöpankki, Danske, ...)",
  usage = [[giro pay banks [--json]
       giro pay form BANK [--version V] (--key-file F | --key-env VAR) [--format lines|json|html] NAME=VALUE...
       giro pay verify BANK MESSAGE (--key-file F | --key-env VAR) [--expect NAME=VALUE]... [--format lines|json] [QUERYSTRING | -]
       giro pay query BANK (--key-file F | --key-env VAR) [--url URL] [--dry-run] [--format lines|json] NAME=VALUE...
       giro pay refund BANK (--key-file F | --key-env VAR) [--url URL] [--dry-run] [--format lines|json] NAME=VALUE...]],
  help = [[
banks    lists the bank definitions found (rules/banks/*.lua), their messages and versions
         (--json: an array of banks, each with its messages, versions and MAC algorithms).
form     prints the payment request: `lines` (default) one NAME=VALUE a line in the bank's order,
         MAC included; `json` an object with the action URL and the ordered fields; `html` a POST
         form with hidden inputs.  Inputs use the bank's own field names (SUMMA, NET_AMOUNT, ...);
         fixed fields (currency, version, algorithm) are filled in.  --message M builds another
         request message; --test uses the bank's test endpoint.
verify   checks an incoming MESSAGE (return, query-response, refund-response): the query string
         or POST body is the argument, or stdin with `-` or no argument.  Exit 0 and the parsed
         fields when formats and MAC hold; exit 1 and the reason (the field, or "MAC mismatch").
         --expect NAME=VALUE also requires a field to equal the shop's value (amounts numerically).
query    builds the query request (--version V as for form), POSTs it (--url overrides the
refund   endpoint; --timeout SECONDS, --ca-file PEM), verifies and prints the answer and its code.
         --dry-run prints the request fields instead and sends nothing.

--json is the same as --format json; under it a failure also prints
{"valid": false, "bank", "message", "error": {"kind", "message", "field", "reason",
"file", "line"}} on stdout (bank and message null until known).

Keys come only from --key-file (content, trailing newlines stripped) or --key-env (a variable's
name); they are never printed.  Values are UTF-8; the bank receives its own charset (ISO-8859-1).
--today DATE (YYYY-MM-DD) sets the date used for "not in the past" checks.

exit: 0 ok, 1 rejected (bad input, bad message, MAC mismatch), 2 usage, 3 environment]],
}

local pay  -- loaded on demand (keeps `giro help` light)

-- A refusal of the input (exit 1): the field it names ("SUMMA: ...") goes into the JSON
-- error object too; "MAC mismatch" names the message's MAC field.
local function rejected(err, m)
  local text = tostring(err)
  local field = text:match("^([%w_%-]+): ") or text:match("^missing field ([%w_%-]+)")
    or text:match("^unknown field ([%w_%-]+)") or text:match("^MAC mismatch %(([%w_%-]+)%)")
  if not field and m and m.def and m.def.mac and text:find("MAC", 1, true) then field = m.def.mac.field end
  cli.fail_info("input", { message = tostring(err), field = field })
end

local function bank_or_fail(name)
  pay = pay or require("giro.pay")
  if not name then cli.usage("which bank? (see: giro pay banks)") end
  local b, err, kind = pay.bank(name, { lazy = true })   -- only the messages this command uses
  if not b then cli.fail_kind(kind, "%s", err) end
  cli.json.extra.bank = b.name
  return b
end

local KEY_CAP = 64 * 1024   -- a MAC key is tens of bytes; a key file this size is a mistake

local function read_key(opt, needed)
  if opt["key-file"] and opt["key-env"] then cli.usage("give either --key-file or --key-env, not both") end
  local key
  -- A missing, unreadable or empty key is a set-up problem (exit 3), not bad input: the same
  -- command works once the key is in place.  Messages name the file or variable, never the key.
  if opt["key-file"] then
    local file = opt["key-file"]
    -- a regular file of at most KEY_CAP bytes: never a device or FIFO read without end
    local data, rerr, rkind = require("giro.output").read_small(file, KEY_CAP, "key file")
    if not data then
      cli.fail_info(rkind, { message = rerr, file = file, field = "--key-file", reason = rerr:match("%(([^()]+)%)$") })
    end
    key = data:gsub("[\r\n]+$", "")  -- editors add a newline (or two, or CRLF); a key has none
    if key == "" then cli.env("the key file %s is empty", file) end
  elseif opt["key-env"] then
    key = os.getenv(opt["key-env"])
    if key == nil then cli.env("environment variable %s is not set", opt["key-env"]) end
    if key == "" then cli.env("environment variable %s is empty", opt["key-env"]) end
  elseif needed then
    cli.usage("the MAC key is needed: give --key-file FILE or --key-env VARIABLE")
  end
  return key
end

local function fields_of(words, from)
  local input = {}
  for i = from, #words do
    local name, value = words[i]:match("^([^=]+)=(.*)$")
    if not name then cli.usage("expected NAME=VALUE, got '%s'", words[i]) end
    if input[name] ~= nil then cli.usage("field %s given twice", name) end
    input[name] = value
  end
  return input
end

local function message_or_fail(bank, name)
  local m, err, kind = bank:message(name)
  if not m then cli.fail_kind(kind, "%s", err) end
  cli.json.extra.message = name
  return m
end

-- verify, query and refund print a result: lines (default) or json; anything else is a usage error
-- rather than silently becoming lines.
local function result_format(opt)
  local fmt = opt.format or "lines"
  if fmt ~= "lines" and fmt ~= "json" then cli.usage("--format must be lines or json here, got '%s'", fmt) end
  return fmt
end

local commands = {}

local function banks_json(list)
  local json = require("giro.json")
  local out = json.array()
  local status = 0
  for i, e in ipairs(list) do
    if not e.bank then
      out[i] = { name = e.name, path = e.path or json.null, title = json.null, error = e.error, messages = json.array() }
      status = cli.EXIT.env
    else
      local c = e.bank.compiled
      local msgs = json.array()
      for j, mname in ipairs(c.order) do
        local m = c.messages[mname]
        local mac = m.def.mac
        local algs = json.array()
        for _, v in ipairs(m.versions) do
          local plan = m.plans[v]
          if plan.mac then algs[#algs + 1] = { version = v, algorithm = plan.mac.alg } end
        end
        if #m.versions == 0 and m.plans[1].mac then algs[1] = { version = json.null, algorithm = m.plans[1].mac.alg } end
        msgs[j] = { name = mname, kind = m.kind, versions = json.array(table.move(m.versions, 1, #m.versions, 1, {})),
                    mac = mac and { field = mac.field, algorithms = algs } or json.null }
      end
      out[i] = { name = e.name, title = c.title or json.null, path = e.path, error = json.null, messages = msgs }
    end
  end
  io.stdout:write(json.encode(out), "\n")
  return status
end

function commands.banks(opt)
  pay = pay or require("giro.pay")
  local list = pay.banks()
  if opt.format ~= nil and opt.format ~= "lines" and opt.format ~= "json" then
    cli.usage("--format must be lines or json here, got '%s'", opt.format)
  end
  if opt.format == "json" then return banks_json(list) end
  if #list == 0 then io.stdout:write("no bank definitions found\n") return 0 end
  local status = 0
  for _, e in ipairs(list) do
    if not e.bank then
      io.stdout:write(cli.format("%-14s ERROR %s\n", e.name, e.error))
      status = cli.EXIT.env
    else
      local c = e.bank.compiled
      io.stdout:write(cli.format("%-14s %s  [%s]\n", e.name, c.title or "", e.path))
      for _, mname in ipairs(c.order) do
        local m = c.messages[mname]
        local mac = m.def.mac
        local macs = {}
        for _, v in ipairs(m.versions) do
          local plan = m.plans[v]
          if plan.mac then macs[#macs + 1] = v .. ":" .. plan.mac.alg end
        end
        if #m.versions == 0 and m.plans[1].mac then macs[1] = m.plans[1].mac.alg end
        local vs = #m.versions > 0 and table.concat(m.versions, ",") or "-"
        io.stdout:write(cli.format("  %-16s %-8s versions %-16s %s\n", mname, m.kind, vs,
          mac and ("MAC " .. mac.field .. " " .. table.concat(macs, " ")) or "no MAC"))
      end
    end
  end
  return status
end

function commands.form(opt, pos)
  local bank = bank_or_fail(pos[2])
  local message = opt.message or "payment"
  local m = message_or_fail(bank, message)
  if m.kind ~= "request" then cli.usage("%s %s is not a request message", bank.name, message) end
  local fmt = opt.format or "lines"
  if fmt ~= "lines" and fmt ~= "json" and fmt ~= "html" then cli.usage("--format must be lines, json or html") end
  local key = read_key(opt, m.def.mac and true or false)
  local req, err = m:build(fields_of(pos, 3), { key = key, version = opt.version, today = opt.today,
                                               env = opt.test and "test" or nil })
  if not req then rejected(err, m) end
  -- http:// is valid (the banks accept it) but a shop should know its customers'
  -- return travels unencrypted: say so on stderr, the form is printed as asked
  for _, f in ipairs(m.fields) do
    local v = f[2] == "url" and req:get(f[1])
    if v and v:sub(1, 7):lower() == "http://" then
      io.stderr:write(string.format("giro: warning: %s is an http:// address; the customer returns to it"
        .. " unencrypted (use https://)\n", f[1]))
    end
  end
  io.stdout:write(pay.render(req, fmt))
  return 0
end

function commands.verify(opt, pos)
  local bank = bank_or_fail(pos[2])
  local message = pos[3]
  if not message then cli.usage("which message? (return, query-response, refund-response)") end
  local m = message_or_fail(bank, message)
  if m.kind ~= "response" then cli.usage("%s %s is not a message the bank sends", bank.name, message) end
  if #pos > 4 then cli.usage("give one query string (or - for stdin)") end
  local fmt = result_format(opt)
  local key = read_key(opt, m.def.mac and true or false)
  local input = pos[4]
  if input == nil or input == "-" then input = io.stdin:read("a") or "" end
  input = input:gsub("^%s+", ""):gsub("%s+$", "")
  local expect
  if opt.expect then
    expect = {}
    for _, e in ipairs(opt.expect) do
      local n, v = e:match("^([^=]+)=(.*)$")
      if not n then cli.usage("--expect wants NAME=VALUE, got '%s'", e) end
      -- a name the message lacks is a mistake in the shop's command, not in the bank's answer
      if not (m.index[n] or m.index_ci[n:upper()]) then
        local names = {}
        for i, f in ipairs(m.fields) do names[i] = f[1] end
        cli.usage("--expect %s: %s %s has no such field (it has: %s)", n, bank.name, message,
          table.concat(names, ", "))
      end
      expect[n] = v
    end
  end
  local res, err = m:verify(input, { key = key, expect = expect })
  if not res then rejected(err, m) end
  io.stdout:write(pay.render_result(res, fmt))
  return 0
end

local function exchange(kind, opt, pos)
  local bank = bank_or_fail(pos[2])
  local m = message_or_fail(bank, kind)
  local fmt = result_format(opt)
  local key = read_key(opt, m.def.mac and true or false)
  local input = fields_of(pos, 3)
  local timeout = opt.timeout and tonumber(opt.timeout)
  if opt.timeout and not (timeout and timeout > 0) then
    cli.usage("--timeout wants a number of seconds, got '%s'", opt.timeout)
  end
  local o = { key = key, version = opt.version, today = opt.today, url = opt.url,
              timeout = timeout, ca_file = opt["ca-file"],
              env = opt.test and "test" or nil }
  if opt["dry-run"] then
    local req, berr = m:build(input, o)
    if not req then rejected(berr, m) end
    io.stdout:write(pay.render(req, fmt))
    return 0
  end
  local res, why, what = bank:send(kind, input, o)
  if not res then
    if what ~= "input" then cli.fail_kind(what, "%s", why) end
    rejected(why, m)
  end
  io.stdout:write(pay.render_result(res, fmt))
  return 0
end

function commands.query(opt, pos) return exchange("query", opt, pos) end
function commands.refund(opt, pos) return exchange("refund", opt, pos) end

function M.run(argv)
  -- a pay failure under --json says "valid": false, and the bank and message (null until known)
  local json = require("giro.json")
  cli.json.extra = { valid = false, bank = json.null, message = json.null }
  local opt, pos = args.parse(argv, {
    "--version=V", "--key-file=F", "--key-env=VAR", "--format=FMT", "--message=M", "--test",
    "--today=DATE", "--expect=NV...", "--url=URL", "--dry-run", "--timeout=S", "--ca-file=F",
  })
  local sub = pos[1]
  if not sub then cli.usage("usage: %s", M.usage) end
  local fn = commands[sub]
  if not fn then cli.usage("unknown subcommand '%s' (banks, form, verify, query, refund)", sub) end
  return fn(opt, pos)
end

return M
