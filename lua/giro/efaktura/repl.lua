--- giro.efaktura.repl: try a biller rule on the records of request files in `giro repl`.
--
--   giro repl --biller RULES.lua [--db DB] REQUEST.xml...
--
-- Loads the rule (sandboxed, as `process` does) and every record of the request files, then:
--   :records            list the records (number, line, case, reference, name)
--   :try [N]            run the rule on record N (all requests when N is left out): the
--                       customer number the reference maps to, the customer found, the
--                       decision with its reason and why (which check failed), and whether
--                       the hold policy would keep it
--   :reload             (giro repl's own) re-reads the edited rule; :try again uses it
-- In Lua: `records[N]` is a record's fields, `biller` the loaded rule, `try(N)` the decision.
-- Nothing is written: the register is only read (customers).
local repl = require("giro.repl")

local M = {}

local state = { records = {}, biller = nil, reg = nil }

local function load_records(path)
  local request = require("giro.efaktura.request")
  local rd, err = request.open(path)
  if not rd then return nil, err end
  local n = 0
  while true do
    local rec, rerr = rd:next_record()
    if not rec then
      if rerr then rd:close() return nil, rerr end
      break
    end
    n = n + 1
    rec.file = path
    state.records[#state.records + 1] = rec
    if #state.records >= 100000 then break end
  end
  rd:close()
  return n
end

--- The decision on record i, as a table (never raises: errors come back in .error).
function M.try(i)
  local rec = state.records[i]
  if not rec then return { error = "no record " .. tostring(i) .. " (see :records)" } end
  local out = { record = i, line = rec.line, case = rec.kind or "(cannot be answered)" }
  if rec.problem then out.problem = rec.problem return out end
  if rec.kind ~= "add" and rec.kind ~= "change" then
    out.note = "deletes and receipts are not decided by the rule; they only update the register"
    return out
  end
  local b = state.biller
  b:configure()
  local f = {}
  for k, v in pairs(rec.fields) do f[k] = v end
  f.type, f.line = rec.element, rec.line
  local ok, err = pcall(function()
    out.serves = b:serves(f.ThorContentProviderId)
    local n = b:customer_number(f)
    out.customer_number = n
    f.customer_number = n
    local customer
    if n and state.reg then
      if b.has_lookup then customer = b:lookup(n, f, state.reg) else customer = state.reg:customer(n) end
    end
    out.customer = customer or false
    local d = b:decide(f, customer)
    out.answer = d.answer == "A" and "A (accept)" or ("N, reason " .. d.reason)
    out.message = d.message ~= "" and d.message or nil
    out.why = d.why
    out.held = d.hold
  end)
  if not ok then out.error = tostring(err) end
  return out
end

local function show(s, r)
  if r.error and not r.case then s:err(r.error) return end
  s:out(string.format("#%d (line %s) %s", r.record, tostring(r.line), r.case))
  if r.problem then s:out("  cannot be answered: ", r.problem) return end
  if r.note then s:out("  ", r.note) return end
  if r.serves == false then s:out("  note: the rule's id does not include this ThorContentProviderId: process would skip it") end
  s:out("  customer number: ", tostring(r.customer_number))
  if r.customer then
    s:out(string.format("  customer: %s %s (eFaktura %s)", r.customer.first_name, r.customer.last_name,
      r.customer.efaktura and "yes" or "no"))
  elseif r.customer == false then
    s:out("  customer: not in the register")
  end
  if r.error then s:err("  rule failed: ", r.error) return end
  s:out("  decision: ", r.answer, r.held and "  (held for a person by the hold policy)" or "")
  if r.message then s:out("  message: ", r.message) end
  if r.why then s:out("  why: ", r.why) end
end

function M.setup(biller_path, start, files, db)
  local biller = require("giro.efaktura.biller")
  local b, err = biller.load(biller_path)
  if not b then require("giro.cli").env("%s", err) end   -- the set-up's failure: exit 3, no traceback
  state.biller = b
  local keep = {}
  for _, f in ipairs(files) do
    if f:match("%.[xX][mM][lL]$") then
      local n, lerr = load_records(f)
      if not n then
        io.stderr:write("giro repl: ", lerr, "\n")
        -- batch mode ends with exit 3 (a file that cannot be opened) or 1 (a bad file)
        local fh = io.open(f, "rb")
        if fh then fh:close() start.input_errors = (start.input_errors or 0) + 1
        else start.env_errors = (start.env_errors or 0) + 1 end
      else io.stderr:write(string.format("%s: %d record(s)\n", f, n)) end
    else
      keep[#keep + 1] = f
    end
  end
  for i = #files, 1, -1 do files[i] = nil end
  for i, f in ipairs(keep) do files[i] = f end
  local register = require("giro.efaktura.register")
  local path = db or os.getenv("GIRO_DB") or "giro.db"
  -- an existing register only (never created here, never a FIFO opened)
  if require("giro.store").is_postgres(path) or require("giro.fs").stat(path) then
    local reg, rerr = register.open(path)
    if not reg then error(rerr, 0) end
    state.reg = reg
  end
  start.env = start.env or {}
  start.env.biller = b
  start.env.records = {}
  for i, r in ipairs(state.records) do start.env.records[i] = r.fields end
  start.env.try = M.try
  io.stderr:write(string.format("biller rule %s loaded; %d record(s); customers from %s — :records, :try N, :reload\n",
    b.path, #state.records, state.reg and path or "(no register: every reference is unknown)"))
end

local pending_db
repl.add_option("--db=DB", "the register whose customers :try looks up (with --biller)", function(v) pending_db = v end)
repl.add_option("--biller=RULES", "a biller rule to try on the records of the REQUEST.xml files given", function(v, start, files)
  M.setup(v, start, files, pending_db)
end)

repl.add_command("records", "list the records of the request files (with --biller)", function(s)
  if #state.records == 0 then s:out("no records (giro repl --biller RULES.lua REQUEST.xml)") return end
  for i, r in ipairs(state.records) do
    local f = r.fields
    s:out(require("giro.text").format("#%-4d line %-6d %-10s %-20s %s %s", i, r.line or 0, r.kind or "(bad)", tostring(f.BillerAccountNumber),
      f.FirstName or "", f.LastName or ""))
  end
end)

repl.add_command("try", "run the biller rule on record N (all requests without N)", function(s, rest)
  if not state.biller then s:err("no biller rule (giro repl --biller RULES.lua REQUEST.xml)") return end
  local n = tonumber(rest and rest:match("%d+"))
  if n then show(s, M.try(n)) return end
  for i, r in ipairs(state.records) do
    if r.kind == "add" or r.kind == "change" then show(s, M.try(i)) end
  end
end, ":try [N]")

return M
