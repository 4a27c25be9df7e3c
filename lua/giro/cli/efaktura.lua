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
  giro efaktura decide --db DB ID accept [--customer N] [--json]
  giro efaktura decide --db DB ID reject 01|02|03 [--message TEXT] [--json]
      Record a decision on a held request.  `accept --customer N` on an agreement without a
      customer (a receipt for a request giro never answered) attaches the customer to it.
  giro efaktura answer --db DB [-o RESPONSE.xml] [--json]
      Write the response for every decided held request.
  giro efaktura agreements --db DB [--status S] [--customer N] [--reference R] [--thor-user-id T] [--json|--csv]
      The agreement register; S is held, answered, active, rejected or stopped.
      Active agreements are the customers who get their next invoice as eFaktura.
      --customer, --reference (BillerAccountNumber) and --thor-user-id pick agreements;
      --csv exports them (RFC 4180, a header row) for the invoicing system.
  giro efaktura history --db DB ID | --customer N | --reference R | --thor-user-id T [--json]
      Every message and answer for one agreement (the audit trail), or for every agreement
      found by customer number, reference or ThorUserId.

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
  if dialect and dialect.name == "sqlite" then list[#list + 1] = { path = path, what = "the register" } end
  return list
end

local function open_register(opt)
  local register = require("giro.efaktura.register")
  local reg, err, kind = register.open(default_db(opt))
  if not reg then cli.fail_kind(kind, "%s", err) end
  return reg
end

local json = require("giro.json")
local function json_out(v) return json.encode(v) end

-- JSON values: nil as null (keys are present whether or not they have a value)
local function jv(v) if v == nil then return json.null end return v end
-- a text the register keeps as "" when there is none (an accepted answer's reason): null too
local function jtext(v) if v == nil or v == "" then return json.null end return v end

-- The element of an agreement or history row as the file names it: agreements store
-- "Add"/"Change", history the whole "EnrollmentAdd"; JSON always says the latter.
local function element_name(e)
  if e == nil or e == json.null then return json.null end
  if e:sub(1, 10) ~= "Enrollment" then return "Enrollment" .. e end
  return e
end

-- A process summary for JSON: its lists as arrays (also when empty).
local function summary_json(s)
  for _, k in ipairs({ "skipped_records", "warnings" }) do
    if s[k] ~= nil then s[k] = json.array(s[k]) end
  end
  if s.replayed == nil then s.replayed = false end
  s.response = jv(s.response)
  return s
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
  if #pos ~= 1 then cli.usage("usage: giro efaktura process REQUEST.xml --biller RULES.lua [--db DB] [-o RESPONSE.xml] [--json] [--strict]") end
  if not opt.biller then cli.usage("--biller RULES.lua is required (e.g. --biller default)") end
  local req = pos[1]
  local output = require("giro.output")
  -- refuse an input or output giro must not touch before any work is done
  cli.check(output.check_input(req, { what = "request file" }))
  local biller = require("giro.efaktura.biller")
  -- the biller rule is read too: -o must not name it either
  local rule_path = biller.find(opt.biller)
  local target = cli.check(output.target(opt.output, { inputs = inputs_of(opt, req,
    rule_path and { path = rule_path, what = "the biller rule" } or nil), what = "response file" }))
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
  local summary, perr, kind = process.run{ request = req, biller = b, reg = reg, output = opt.output,
                                           target = target, strict = opt.strict, name = req }
  reg:close()
  if not summary then cli.fail_kind(kind, "%s", perr) end
  if opt.json then
    local target_fh = target.stdout and io.stderr or io.stdout
    target_fh:write(json_out(summary_json(summary)), "\n")
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
  if res.env then
    -- under --json the result's keys are there beside the error object, as for an invalid file
    cli.json.extra = { ok = false, errors = json.array(), file = pos[1] }
    cli.fail_info(res.kind or "env", { message = res.env, reason = res.reason, file = pos[1] })
  end
  if opt.json then
    local errs = json.array()
    for i, e in ipairs(res.errors) do errs[i] = { line = jv(e.line), message = jv(e.message), text = jv(e.text) } end
    -- an invalid file is a failure like any other: the "error" object is there (null when valid)
    local e = json.null
    if not res.ok then
      e = { kind = "input", message = string.format("%s: %d error(s)", pos[1], #res.errors),
            field = json.null, reason = json.null, file = pos[1], line = jv(res.errors[1] and res.errors[1].line) }
      io.stderr:write("giro efaktura: ", e.message, res.errors[1] and ("; first: " .. res.errors[1].text) or "", "\n")
    end
    io.stdout:write(json_out({ ok = res.ok, file = res.file, kind = jv(res.kind), schema_name = jv(res.schema_name),
      errors = errs, error = e }), "\n")
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
    local out = json.array()
    for i, p in ipairs(list) do
      local sug = json.array()
      for j, s in ipairs(p.suggestions) do sug[j] = { customer = s.customer, score = s.score, why = s.why } end
      out[i] = { id = p.agreement.id, account = p.agreement.account, provider = p.agreement.provider,
        thor_user_id = p.agreement.thor_user_id, element = element_name(p.agreement.element), received = p.request,
        proposal = jv(p.proposal), decision = jv(p.decision), suggestions = sug, since = p.agreement.updated_at }
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
  local opt, pos = args.parse(argv, { "--db=DB", "--customer=N", "--message=TEXT", "--json" })
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
    -- the decision contract (giro.efaktura.decision) checked before the register is opened
    local decision = require("giro.efaktura.decision")
    local rok, rerr = decision.reason(pos[3])
    if not rok then cli.fail_info("usage", { message = "reject: the " .. rerr, field = "reason" }) end
    local mok, merr = decision.message(opt.message, pos[3])
    if not mok then cli.fail_info("usage", { message = "reject: --" .. merr, field = "message" }) end
    d = { answer = "N", reason = pos[3], message = opt.message }
  else
    cli.usage(usage)
  end
  local held = require("giro.efaktura.held")
  local reg = open_register(opt)
  local ok, res, kind = held.decide(reg, id, d)
  reg:close()
  if not ok then cli.fail_kind(kind, "%s", res) end
  if opt.json then
    io.stdout:write(json_out({ id = id, attached = res.attached or false, answer = res.answer, customer = jv(res.customer),
      reason = jv(res.reason ~= "" and res.reason or nil), message = jv(res.message ~= "" and res.message or nil) }), "\n")
  end
  if res.attached then
    io.stderr:write(string.format("#%d: customer %s attached (no answer is due: Nets has the agreement already)\n",
      id, res.customer))
    return 0
  end
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
  local s, err, kind = held.answer(reg, { output = opt.output, target = target })
  reg:close()
  if not s then cli.fail_kind(kind, "%s", err) end
  if opt.json then
    local target_fh = target.stdout and io.stderr or io.stdout
    -- the same keys whichever way the run went (nothing to answer, a batch written again)
    target_fh:write(json_out({ answers = s.answers, accepted = jv(s.accepted or (s.answers == 0 and 0 or nil)),
      rejected = jv(s.rejected or (s.answers == 0 and 0 or nil)), remaining = s.remaining or 0, batch = jv(s.batch),
      response = jv(s.response), rewritten = s.rewritten or false }), "\n")
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

-- --customer N, --reference R, --thor-user-id T: which agreements (any combination)
local FIND_OPTIONS = { "--customer=N", "--reference=R", "--thor-user-id=T" }
local function filter_of(opt)
  return { status = opt.status, customer = opt.customer, account = opt.reference, thor_user_id = opt["thor-user-id"] }
end

local function agreement_json(a)
  return { id = a.id, status = a.status, account = a.account, provider = a.provider, thor_user_id = a.thor_user_id,
    customer = jv(a.customer), element = element_name(a.element), answer = jv(a.answer), reason = jtext(a.reason),
    message = jtext(a.message), created_at = a.created_at, updated_at = a.updated_at }
end

-- The columns of `agreements --csv`, in order (the header row names them).
local CSV_COLUMNS = { "id", "status", "account", "customer", "provider", "thor_user_id", "element", "answer", "reason",
  "message", "created_at", "updated_at" }

function sub.agreements(argv)
  local specs = { "--db=DB", "--status=S", "--json", "--csv" }
  for _, o in ipairs(FIND_OPTIONS) do specs[#specs + 1] = o end
  local opt, pos = args.parse(argv, specs)
  if #pos ~= 0 then
    cli.usage("usage: giro efaktura agreements --db DB [--status S] [--customer N] [--reference R] [--thor-user-id T] [--json|--csv]")
  end
  if opt.json and opt.csv then cli.usage("give either --json or --csv, not both") end
  local register = require("giro.efaktura.register")
  if opt.status then
    local okst = false
    for _, s in ipairs(register.STATUSES) do if s == opt.status then okst = true end end
    if not okst then cli.usage("--status must be one of %s", table.concat(register.STATUSES, ", ")) end
  end
  local reg = open_register(opt)
  local list = reg:find(filter_of(opt))
  reg:close()
  if opt.json then
    local out = json.array()
    for i, a in ipairs(list) do out[i] = agreement_json(a) end
    io.stdout:write(json_out(out), "\n")
    return 0
  end
  if opt.csv then
    local csv = require("giro.csv")
    local out = { csv.line(CSV_COLUMNS) }
    for _, a in ipairs(list) do
      local row = agreement_json(a)
      local fields = {}
      for i, c in ipairs(CSV_COLUMNS) do
        local v = row[c]
        fields[i] = v == json.null and "" or tostring(v)
      end
      out[#out + 1] = csv.line(fields)
    end
    io.stdout:write(table.concat(out))
    return 0
  end
  if #list == 0 then
    io.stdout:write(opt.status and ("no " .. opt.status .. " agreements\n") or "no agreements\n")
    return 0
  end
  io.stdout:write(cli.format("%-5s %-9s %-20s %-12s %-15s %-30s %-7s %s\n", "id", "status", "reference", "customer",
    "provider", "ThorUserId", "answer", "updated"))
  for _, a in ipairs(list) do
    io.stdout:write(cli.format("%-5d %-9s %-20s %-12s %-15s %-30s %-7s %s\n", a.id, a.status, a.account,
      a.customer or "-", a.provider, a.thor_user_id,
      a.answer and (a.answer .. (a.reason ~= "" and a.reason and (" " .. a.reason) or "")) or "-", a.updated_at))
  end
  return 0
end

function sub.history(argv)
  local specs = { "--db=DB", "--json" }
  for _, o in ipairs(FIND_OPTIONS) do specs[#specs + 1] = o end
  local opt, pos = args.parse(argv, specs)
  local usage = "usage: giro efaktura history --db DB ID | --customer N | --reference R | --thor-user-id T [--json]"
  local by_filter = opt.customer or opt.reference or opt["thor-user-id"]
  local id = math.tointeger(tonumber(pos[1] or ""))
  if by_filter then
    if #pos ~= 0 then cli.usage("%s", usage) end
  elseif #pos ~= 1 or not id then
    cli.usage("%s", usage)
  end
  local reg = open_register(opt)
  local found
  if by_filter then
    found = reg:find(filter_of(opt))
  else
    local a = reg:agreement(id)
    if not a then reg:close() cli.usage("no agreement %d (see: giro efaktura agreements)", id) end
    found = { a }
  end
  local items = {}
  for i, a in ipairs(found) do items[i] = { agreement = a, history = reg:history(a.thor_user_id, a.provider, a.account) } end
  reg:close()
  if opt.json then
    local function events(h)
      local out = json.array()
      for i, e in ipairs(h) do
        out[i] = { id = e.id, at = e.at, event = e.event, element = element_name(e.element), status_before = jv(e.status_before),
          status_after = jv(e.status_after), answer = jv(e.answer), reason = jtext(e.reason), message = jtext(e.message),
          detail = jv(e.detail), line = jv(e.line), file_id = jv(e.file_id) }
      end
      return out
    end
    if not by_filter then
      io.stdout:write(json_out({ agreement = agreement_json(items[1].agreement), history = events(items[1].history) }), "\n")
    else
      local out = json.array()
      for i, it in ipairs(items) do out[i] = { agreement = agreement_json(it.agreement), history = events(it.history) } end
      io.stdout:write(json_out(out), "\n")
    end
    return 0
  end
  if #items == 0 then io.stdout:write("no agreements match\n") return 0 end
  for _, it in ipairs(items) do
    local a = it.agreement
    io.stdout:write(string.format("#%d reference %q ThorUserId %s provider %s: %s%s\n", a.id, a.account, a.thor_user_id,
      a.provider, a.status, a.customer and ("  customer " .. a.customer) or ""))
    for _, e in ipairs(it.history) do
      io.stdout:write(cli.format("  %s  %-10s %s -> %s%s%s\n", e.at, e.event, e.status_before or "(new)",
        e.status_after or "(none)", e.answer and ("  answer " .. e.answer .. ((e.reason or "") ~= "" and (" " .. e.reason) or "")) or "",
        e.detail and ("  " .. e.detail) or ""))
    end
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
