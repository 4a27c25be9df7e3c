--- giro efaktura ...: Nets eFaktura enrollment (request files in, response files out, the
-- agreement register kept).  See docs/efaktura.md.
local cli = require("giro.cli")
local args = require("giro.cli.args")

local M = {
  summary = "eFaktura enrollment: process Nets request files, answer, keep the agreement register",
  usage = "giro efaktura process|validate|pending|decide|answer|agreements|history ...",
  help = [[
  giro efaktura process REQUEST.xml --biller RULES.lua [--db DB] [-o RESPONSE.xml] [--json] [--strict]
      Answer every EnrollmentAdd/EnrollmentChange P with the biller rule's decision, register
      deletes and receipts, write the response (stdout without -o or with -o -; none when
      nothing needs an answer).  The summary goes to stderr; with --json it is JSON, on
      stdout when -o names a file and on stderr otherwise.  -o may be a new or regular file
      or a symlink to one (its target is written); a directory, device, FIFO or the request
      itself is refused before any work.  A file already processed is not processed again: its
      response is written again from the register.  --strict refuses the whole file when a
      single record cannot be answered (default: skip that record and report it).
  giro efaktura validate FILE.xml
      Check a request or response file against its schema (chosen by the file's content)
      and list every error with its line.
  giro efaktura pending --db DB [--json]
      Held requests: what was received, the rule's proposal, any decision, the closest customers.
  giro efaktura decide --db DB ID accept [--customer N]
  giro efaktura decide --db DB ID reject 01|02|03 [--message TEXT]
      Record a decision on a held request.
  giro efaktura answer --db DB [-o RESPONSE.xml] [--json]
      Write the response for every decided held request.
  giro efaktura agreements --db DB [--status S] [--json]
      The agreement register; S is held, answered, active, rejected or stopped.
      Active agreements are the customers who get their next invoice as eFaktura.
  giro efaktura history --db DB ID [--json]
      Every message and answer for one agreement (the audit trail).

DB is a SQLite file (default $GIRO_DB or giro.db), a postgres:// URL or a libpq
"host=... dbname=..." string; it must exist (giro customers import creates it).  RULES is a path or a name under rules/billers/ (e.g. default).
Exit codes: 0 done (also when single records were skipped: see the summary), 1 the file
was refused (nothing written, register unchanged), 2 usage, 3 environment (database,
rule file, output).]],
  own_help = false,
}

local function default_db(opt)
  return opt.db or os.getenv("GIRO_DB") or "giro.db"
end

-- The files a writing command reads, which its -o must not name: the register's SQLite file
-- (and any given request).
local function inputs_of(opt, ...)
  local list = { ... }
  local dialect, path = require("giro.store").parse_url(default_db(opt))
  if dialect and dialect.name == "sqlite" then list[#list + 1] = path end
  return list
end

local function open_register(opt)
  local register = require("giro.efaktura.register")
  local reg, err, kind = register.open(default_db(opt))
  if not reg then cli.fail_kind(kind, "%s", err) end
  return reg
end

local function json_out(v)
  local cjson = require("cjson")
  return cjson.encode(v)
end

------------------------------------------------------------------------------------------
-- summaries

local function human_summary(s)
  local process = require("giro.efaktura.process")
  local out = {}
  local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  if s.replayed then
    p("%s: already processed at %s (sha256 %s…); response written again from the register, register unchanged",
      s.file, tostring(s.processed_at), s.digest:sub(1, 12))
  end
  p("%s: %d record(s), %d answer(s)%s", s.file, s.records, s.answers,
    s.response and (" written to " .. s.response) or " (no response file: nothing to answer)")
  for _, c in ipairs(process.CASES) do
    local t = s.cases[c]
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    if #keys > 0 then
      table.sort(keys)
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%d %s", t[k], k) end
      p("  %-44s %s", process.CASE_TITLES[c], table.concat(parts, ", "))
    end
  end
  if s.skipped > 0 then
    p("  skipped, no answer and no register change: %d record(s)", s.skipped)
    for i, r in ipairs(s.skipped_records) do
      if i > 20 then break end
      p("    %s:%d: %s", s.file, r.line or 0, r.problem)
    end
    if s.skipped > math.min(20, #s.skipped_records) then
      p("    ... and %d more (up to 100 listed in --json)", s.skipped - math.min(20, #s.skipped_records))
    end
  end
  if s.warnings_count > 0 then
    p("  warnings: %d", s.warnings_count)
    for i, w in ipairs(s.warnings) do
      if i > 10 then p("    ... and %d more (all in --json, up to 100)", s.warnings_count - 10) break end
      p("    %s:%d: %s", s.file, w.line or 0, w.message)
    end
  end
  return table.concat(out, "\n") .. "\n"
end

------------------------------------------------------------------------------------------
-- subcommands

local sub = {}

function sub.process(argv)
  local opt, pos = args.parse(argv, { "--biller=RULES", "--db=DB", "-o, --output=FILE", "--json", "--strict" })
  if #pos ~= 1 then cli.usage("usage: giro efaktura process REQUEST.xml --biller RULES.lua [--db DB] [-o RESPONSE.xml] [--json]") end
  if not opt.biller then cli.usage("--biller RULES.lua is required (e.g. --biller default)") end
  local req = pos[1]
  local output = require("giro.output")
  -- refuse an input or output giro must not touch before any work is done
  cli.check(output.check_input(req, { what = "request file" }))
  local target = cli.check(output.target(opt.output, { inputs = inputs_of(opt, req), what = "response file" }))
  local biller = require("giro.efaktura.biller")
  local b, err = biller.load(opt.biller)
  if not b then cli.env("%s", err) end
  local reg = open_register(opt)
  -- an empty register would reject every request with 01 and mark the file processed
  if not b.has_lookup and reg:customer_count() == 0 then
    reg:close()
    local db = require("giro.store").redact(default_db(opt))
    cli.env("%s: the register has no customers (import them first: giro customers import FILE.csv --db %s; "
      .. "or give the biller rule its own customer lookup)", db, db)
  end
  local process = require("giro.efaktura.process")
  local summary, perr, code = process.run{ request = req, biller = b, reg = reg, output = opt.output,
                                           target = target, strict = opt.strict, name = req }
  reg:close()
  if not summary then cli.fail(code or 1, "%s", perr) end
  if opt.json then
    local target_fh = target.stdout and io.stderr or io.stdout
    target_fh:write(json_out(summary), "\n")
  else
    io.stderr:write(human_summary(summary))
  end
  return 0
end

function sub.validate(argv)
  local opt, pos = args.parse(argv, { "--json" })
  if #pos ~= 1 then cli.usage("usage: giro efaktura validate FILE.xml") end
  local validate = require("giro.efaktura.validate")
  local res = validate.file(pos[1])
  if res.env then cli.env("%s", res.env) end
  if opt.json then
    io.stdout:write(json_out(res), "\n")
  else
    for _, e in ipairs(res.errors) do io.stdout:write(e.text, "\n") end
    if res.ok then
      io.stdout:write(string.format("%s: valid %s file (%s)\n", pos[1], res.kind, res.schema_name))
    else
      io.stdout:write(string.format("%s: %d error(s)%s\n", pos[1], #res.errors,
        res.kind and (" against the " .. res.kind .. " schema") or ""))
    end
  end
  return res.ok and 0 or 1
end

local function show_request(r)
  local name = ((r.FirstName or "") .. " " .. (r.LastName or "")):gsub("^%s+", ""):gsub("%s+$", "")
  local addr = {}
  for _, k in ipairs({ "Address1", "Address2" }) do if r[k] and r[k] ~= "" then addr[#addr + 1] = r[k] end end
  local town = ((r.PostalCode or "") .. " " .. (r.City or "")):gsub("^%s+", ""):gsub("%s+$", "")
  if town ~= "" then addr[#addr + 1] = town end
  return name, table.concat(addr, ", ")
end

function sub.pending(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--json" })
  if #pos ~= 0 then cli.usage("usage: giro efaktura pending --db DB [--json]") end
  local held = require("giro.efaktura.held")
  local reg = open_register(opt)
  local list = held.pending(reg)
  reg:close()
  if opt.json then
    local out = {}
    for i, p in ipairs(list) do
      local sug = {}
      for j, s in ipairs(p.suggestions) do sug[j] = { customer = s.customer, score = s.score, why = s.why } end
      out[i] = { id = p.agreement.id, account = p.agreement.account, provider = p.agreement.provider,
        thor_user_id = p.agreement.thor_user_id, element = p.agreement.element, received = p.request,
        proposal = p.proposal, decision = p.decision, suggestions = sug, since = p.agreement.updated_at }
    end
    io.stdout:write(json_out(out), "\n")
    return 0
  end
  if #list == 0 then io.stdout:write("no held requests\n") return 0 end
  for _, p in ipairs(list) do
    local a = p.agreement
    local name, addr = show_request(p.request)
    io.stdout:write(string.format("#%d  Enrollment%s  reference %q  from %s%s  (ThorUserId %s, since %s)\n",
      a.id, a.element or "?", a.account, name ~= "" and name or "(no name)", addr ~= "" and (", " .. addr) or "",
      a.thor_user_id, a.updated_at))
    if p.proposal then
      io.stdout:write(string.format("     rule proposed: %s%s\n",
        p.proposal.answer == "A" and ("accept as customer " .. tostring(p.proposal.customer)) or ("reject " .. tostring(p.proposal.reason)),
        p.proposal.why and p.proposal.why ~= require("cjson").null and (" — " .. p.proposal.why) or ""))
    end
    if p.decision then
      io.stdout:write(string.format("     decided: %s (written by: giro efaktura answer)\n",
        p.decision.answer == "A" and ("accept as customer " .. tostring(p.decision.customer)) or ("reject " .. p.decision.reason)))
    end
    for _, s in ipairs(p.suggestions) do
      local c = s.customer
      io.stdout:write(string.format("     closest: customer %s  %s %s%s  (%s)\n", c.account_number, c.first_name, c.last_name,
        c.efaktura and "" or " [no eFaktura]", s.why))
    end
    if #p.suggestions == 0 then io.stdout:write("     closest: no customer resembles this request\n") end
  end
  return 0
end

function sub.decide(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--customer=N", "--message=TEXT" })
  local usage = "usage: giro efaktura decide --db DB ID accept [--customer N] | reject 01|02|03 [--message TEXT]"
  if #pos < 2 then cli.usage(usage) end
  local id = math.tointeger(tonumber(pos[1]))
  if not id then cli.usage("ID must be a number (see giro efaktura pending)") end
  local d
  if pos[2] == "accept" and #pos == 2 then
    if opt.message then cli.usage("--message goes with reject") end
    d = { answer = "A", customer = opt.customer }
  elseif pos[2] == "reject" and #pos == 3 then
    if opt.customer then cli.usage("--customer goes with accept") end
    d = { answer = "N", reason = pos[3], message = opt.message }
  else
    cli.usage(usage)
  end
  local held = require("giro.efaktura.held")
  local reg = open_register(opt)
  local ok, res = held.decide(reg, id, d)
  reg:close()
  if not ok then cli.rejected("%s", res) end
  io.stderr:write(string.format("#%d: %s recorded; giro efaktura answer writes the response\n", id,
    res.answer == "A" and ("accept as customer " .. res.customer) or ("reject " .. res.reason)))
  return 0
end

function sub.answer(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "-o, --output=FILE", "--json" })
  if #pos ~= 0 then cli.usage("usage: giro efaktura answer --db DB [-o RESPONSE.xml] [--json]") end
  local held = require("giro.efaktura.held")
  local target = cli.check(require("giro.output").target(opt.output, { inputs = inputs_of(opt), what = "response file" }))
  local reg = open_register(opt)
  local s, err, code = held.answer(reg, { output = opt.output, target = target })
  reg:close()
  if not s then cli.fail(code or 3, "%s", err) end
  if opt.json then
    local target_fh = target.stdout and io.stderr or io.stdout
    target_fh:write(json_out(s), "\n")
  elseif s.rewritten then
    io.stderr:write(string.format("answer batch %d was interrupted after it was recorded: its %d answer(s) written again to %s\n",
      s.batch, s.answers, s.response))
  elseif s.answers == 0 then
    io.stderr:write("no decided held requests: nothing to answer\n")
  else
    io.stderr:write(string.format("%d answer(s) (%d accepted, %d rejected) written to %s%s\n", s.answers, s.accepted,
      s.rejected, s.response, s.remaining > 0 and string.format("; %d more for another receiver: run answer again", s.remaining) or ""))
  end
  return 0
end

function sub.agreements(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--status=S", "--json" })
  if #pos ~= 0 then cli.usage("usage: giro efaktura agreements --db DB [--status S] [--json]") end
  local register = require("giro.efaktura.register")
  if opt.status then
    local okst = false
    for _, s in ipairs(register.STATUSES) do if s == opt.status then okst = true end end
    if not okst then cli.usage("--status must be one of %s", table.concat(register.STATUSES, ", ")) end
  end
  local reg = open_register(opt)
  local list = reg:list(opt.status)
  reg:close()
  if opt.json then
    local out = {}
    for i, a in ipairs(list) do
      out[i] = { id = a.id, status = a.status, account = a.account, provider = a.provider, thor_user_id = a.thor_user_id,
        customer = a.customer, element = a.element, answer = a.answer, reason = a.reason, message = a.message,
        created_at = a.created_at, updated_at = a.updated_at }
    end
    io.stdout:write(json_out(out), "\n")
    return 0
  end
  if #list == 0 then
    io.stdout:write(opt.status and ("no " .. opt.status .. " agreements\n") or "no agreements\n")
    return 0
  end
  io.stdout:write(string.format("%-5s %-9s %-20s %-12s %-15s %-30s %-7s %s\n", "id", "status", "reference", "customer",
    "provider", "ThorUserId", "answer", "updated"))
  for _, a in ipairs(list) do
    io.stdout:write(string.format("%-5d %-9s %-20s %-12s %-15s %-30s %-7s %s\n", a.id, a.status, a.account,
      a.customer or "-", a.provider, a.thor_user_id,
      a.answer and (a.answer .. (a.reason ~= "" and a.reason and (" " .. a.reason) or "")) or "-", a.updated_at))
  end
  return 0
end

function sub.history(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--json" })
  local id = math.tointeger(tonumber(pos[1] or ""))
  if #pos ~= 1 or not id then cli.usage("usage: giro efaktura history --db DB ID [--json]") end
  local reg = open_register(opt)
  local a = reg:agreement(id)
  if not a then reg:close() cli.rejected("no agreement %d", id) end
  local h = reg:history(a.thor_user_id, a.provider, a.account)
  reg:close()
  if opt.json then io.stdout:write(json_out({ agreement = a, history = h }), "\n") return 0 end
  io.stdout:write(string.format("#%d reference %q ThorUserId %s provider %s: %s\n", a.id, a.account, a.thor_user_id,
    a.provider, a.status))
  for _, e in ipairs(h) do
    io.stdout:write(string.format("  %s  %-10s %s -> %s%s%s\n", e.at, e.event, e.status_before or "(new)",
      e.status_after or "(none)", e.answer and ("  answer " .. e.answer .. ((e.reason or "") ~= "" and (" " .. e.reason) or "")) or "",
      e.detail and ("  " .. e.detail) or ""))
  end
  return 0
end

function M.run(argv)
  local name = argv[1]
  if not name then cli.usage("%s", M.usage) end
  local f = sub[name]
  if not f then cli.usage("unknown subcommand %q (%s)", name, M.usage) end
  return f(table.move(argv, 2, #argv, 1, {}))
end

M.human_summary = human_summary

return M
