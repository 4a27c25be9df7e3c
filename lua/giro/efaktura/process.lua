--- giro.efaktura.process: one request file in, one response file out, the register updated —
-- all as one unit.
--
--   local process = require("giro.efaktura.process")
--   local summary, err, code = process.run{
--     request = "in.xml", biller = b, reg = reg,
--     output = "out.xml" | nil (stdout), strict = false, name = "label for messages",
--     target = giro.output target (optional: made from output when absent) }
--
-- How a file stays one unit (see docs/efaktura.md, "Atomicity"):
--  1. The request's SHA-256 is computed first.  A file already in the register is not
--     processed again: its stored answers are written out again, byte for byte, and the
--     register is left as it is.
--  2. Otherwise one database transaction covers the whole file.  Records are read one at a
--     time (giro.efaktura.request on giro.xml's next_record) and handled in batches of
--     BATCH: one query fetches the batch's customers, one its agreements, then one db:batch
--     call each (a prepared statement run for every row) writes the agreements and the
--     history (which holds the answers).  Memory holds one batch, never the file.
--  3. Answers stream into the outbox (giro.efaktura.outbox: a temporary response next to the
--     output, or an anonymous memory file for stdout), which is validated against the
--     response XSD and fsynced.  Only then is the transaction committed (it also records the
--     file and its answers), and only then is the response renamed into place (or copied to
--     stdout) and the directory fsynced.
-- What a record does to its agreement is giro.efaktura.agreement's (a pure state machine);
-- this module reads, asks the biller rule when the machine says a decision is needed, and
-- writes the register and the outbox.
--  A crash before COMMIT leaves the register as it was (the next run starts over); a crash
--  after COMMIT leaves the answers in the register, and the next run of the same file
--  writes the identical response from them.
local hash = require("giro.hash")
local cjson = require("cjson")
local errors = require("giro.errors")
local request_reader = require("giro.efaktura.request")
local register = require("giro.efaktura.register")
local agreement = require("giro.efaktura.agreement")
local outbox = require("giro.efaktura.outbox")
local output = require("giro.output")

local process = {}

process.BATCH = 256

-- Test hook (documented as test-only): GIRO_TEST_CRASH_AT=<point> kills the process
-- with SIGKILL at that point, to prove that a crash anywhere leaves a consistent state.
-- Points: after-batch, after-validate, after-commit, after-deliver.
local crash_point = os.getenv("GIRO_TEST_CRASH_AT")
function process.crash(point)
  if crash_point ~= point then return end
  io.stdout:flush()
  io.stderr:flush()
  local f = io.open("/proc/self/stat", "r")
  local pid = f and f:read("l"):match("^(%d+)")
  if f then f:close() end
  if pid then os.execute("kill -KILL " .. pid) end
  os.exit(137, false)
end

--- SHA-256 (hex) of a file, streaming.
function process.digest(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local ctx = hash.new("sha256")
  while true do
    local chunk = f:read(1 << 16)
    if not chunk then break end
    ctx:update(chunk)
  end
  f:close()
  return hash.hex(ctx:final())
end

-- What a case/outcome is called in summaries.
process.CASES = { "add", "change", "delete", "receipt-A", "receipt-N", "receipt-D" }
process.CASE_TITLES = {
  add = "EnrollmentAdd P (new agreement)",
  change = "EnrollmentChange P (change)",
  delete = "EnrollmentDelete D (deleted by consumer)",
  ["receipt-A"] = "receipt EnrollmentChange A (approved)",
  ["receipt-N"] = "receipt EnrollmentChange N (rejected new)",
  ["receipt-D"] = "receipt EnrollmentChange D (rejected change)",
}

local function new_summary(name, digest)
  local s = { file = name, digest = digest, records = 0, answers = 0, skipped = 0, skipped_records = {},
              warnings = {}, warnings_count = 0, cases = {} }
  for _, c in ipairs(process.CASES) do s.cases[c] = {} end
  return s
end

local function count(s, case, outcome)
  local t = s.cases[case]
  t[outcome] = (t[outcome] or 0) + 1
end

local function warn(s, line, fmt, ...)
  s.warnings_count = s.warnings_count + 1
  if #s.warnings < 100 then
    s.warnings[#s.warnings + 1] = { line = line, message = errors.clip(string.format(fmt, ...), 1000) }
  end
end

local function skip(s, rec, problem)
  s.skipped = s.skipped + 1
  if #s.skipped_records < 100 then
    -- problems quote values short (errors.quote); the clip only guards the register's summary
    s.skipped_records[#s.skipped_records + 1] = { line = rec.line, problem = errors.clip(problem, 1000) }
  end
end

-- The fields of a P request that identify "the same request sent again": the element and
-- FirstName, LastName, DayPhone, Email, Address1, Address2, City, State, PostalCode, Country
-- joined by \31, SHA-1 in hex (the register keeps it; one concatenation, no table per record).
local sha1, hex = hash.sha1, hash.hex
local function fingerprint(rec)
  local f = rec.fields
  return hex(sha1(rec.element .. "\31" .. f.FirstName .. "\31" .. f.LastName .. "\31" .. f.DayPhone .. "\31" .. f.Email
    .. "\31" .. f.Address1 .. "\31" .. f.Address2 .. "\31" .. f.City .. "\31" .. f.State .. "\31" .. f.PostalCode
    .. "\31" .. f.Country))
end

local REQUEST_FIELDS = { "FirstName", "LastName", "Address1", "Address2", "City", "State", "PostalCode", "Country" }
local function request_json(f)
  local t = {}
  for _, k in ipairs(REQUEST_FIELDS) do t[k] = f[k] end
  return cjson.encode(t)
end

-- Where the response goes: a giro.output target (checked by the CLI before any work; made
-- here for callers that pass a path).
local function target_of(opts)
  if opts.target then return opts.target end
  local t, err, kind = output.target(opts.output, { inputs = { opts.request }, what = "response file" })
  if not t then return nil, err, kind end
  opts.target = t
  return t
end

-- The text of a caught error (an interruption's message, a table's env/rejected text).
local function errtext(e)
  if type(e) == "table" then return tostring(e.message or e.env or e.rejected or e[1]) end
  return tostring(e)
end
process.errtext = errtext

-- A failure inside the file's transaction: raised as { fail = message, kind = kind }, caught
-- by run (the transaction rolls back first).
local function fail(message, kind) error({ fail = message, kind = kind }, 0) end

-- Replay a file that is already in the register.
local function replay(opts, file)
  local summary = file.summary and cjson.decode(file.summary) or new_summary(opts.name, file.digest)
  summary.replayed = true
  summary.processed_at = file.processed_at
  local n, err, kind = outbox.replay(opts.reg, file, opts.target)
  if not n then return nil, "cannot write the response again: " .. tostring(err), kind or "env" end
  summary.response = n > 0 and opts.target.name or nil
  return summary
end

-- A receipt's failed customer lookup is noted and the receipt recorded without a customer;
-- an interruption (SIGINT/SIGTERM) is not a lookup failure and goes on up.
local function lookup_failed(e)
  if type(e) == "table" and e.kind == "interrupted" then error(e, 0) end
  return tostring(e)
end

--- One batch of records of file `file` (its id, the time stamp, the biller, the outbox):
-- the agreements and customers fetched in one query each, every record stepped through
-- the state machine, then the changed agreements and the history written in one statement each.
local function handle_batch(file, batch)
  local reg, b, summary, now = file.reg, file.biller, file.summary, file.now
  local keys = {}
  for i, rec in ipairs(batch) do
    local f = rec.fields
    keys[i] = { f.ThorUserId, f.ThorContentProviderId, f.BillerAccountNumber }
    rec.key = register.key(f.ThorUserId, f.ThorContentProviderId, f.BillerAccountNumber)
  end
  local rows = reg:agreements(keys)

  -- customer numbers, for the requests that need a decision and the receipts for an
  -- agreement without a customer (a rule that fails on a receipt leaves it without one and
  -- warns: receipts are Nets' word and are recorded whatever the rule makes of them)
  local numbers, seen_n = {}, {}
  for _, rec in ipairs(batch) do
    local kind, row = rec.kind, rows[rec.key]
    local n
    if kind == "add" or kind == "change" then
      rec.fingerprint = fingerprint(rec)
      if agreement.needs_decision(rec, row) then
        n = b:customer_number(rec.fields, rec.line)
        rec.numbered = true
      end
    elseif agreement.receipt_wants_customer(row) and agreement.RECEIPT_STATUS[kind] then
      local ok, v = pcall(b.customer_number, b, rec.fields, rec.line)
      if ok then n = v else rec.lookup_error = lookup_failed(v) end
      rec.numbered = true
    end
    if n then
      rec.number = n
      if not seen_n[n] then seen_n[n] = true numbers[#numbers + 1] = n end
    end
  end
  local customers = b.has_lookup and {} or reg:customers(numbers)

  local function customer_of(rec, ann, protected)
    if not rec.numbered then   -- an earlier record of this batch changed the agreement
      rec.numbered = true
      rec.number = b:customer_number(rec.fields, rec.line)
      if rec.number and not b.has_lookup then customers[rec.number] = reg:customer(rec.number) end
    end
    local n = rec.number
    if not n then return nil end
    if not b.has_lookup then return customers[n] end
    if not protected then return b:lookup(n, rec.fields, reg, ann) end
    local ok, c = pcall(b.lookup, b, n, rec.fields, reg, ann)
    if ok then return c end
    rec.lookup_error = lookup_failed(c)
    return nil
  end

  local dirty, dirty_list, hist = {}, {}, {}
  for _, rec in ipairs(batch) do
    local f, kind = rec.fields, rec.kind
    local row = rows[rec.key]
    if not b:serves(f.ThorContentProviderId) then
      -- a record for another biller: not ours to answer or to register
      skip(summary, rec, string.format("ThorContentProviderId %s is not served by %s (it serves %s)",
        errors.quote(f.ThorContentProviderId), b.path, b:ids_text()))
    else
      local before = row and row.status
      local d
      if agreement.needs_decision(rec, row) then
        -- the engine's annotations, beside the request's fields (docs/efaktura.md, "Biller rules")
        local ann = { customer_number = rec.number, type = rec.element, line = rec.line, agreement = before }
        local customer = customer_of(rec, ann, false)
        ann.customer_number = rec.number
        d = b:decide(f, customer, ann)
      elseif agreement.RECEIPT_STATUS[kind] and agreement.receipt_wants_customer(row) then
        local ann = { customer_number = rec.number, type = rec.element, line = rec.line, agreement = before }
        rec.customer = customer_of(rec, ann, true)
      end
      local r = agreement.step(rec, row, d)
      local ch = r.changes
      if ch then
        if not row then
          row = { thor_user_id = f.ThorUserId, provider = f.ThorContentProviderId, account = f.BillerAccountNumber,
                  created_at = now }
          rows[rec.key] = row
        end
        if ch.request then ch.request = request_json(ch.request) end   -- what a person deciding gets to see
        if ch.proposal and ch.proposal ~= agreement.CLEAR then ch.proposal = cjson.encode(ch.proposal) end
        agreement.apply(row, r)
        row.line, row.file_id, row.updated_at = rec.line, file.id, now
        if not dirty[rec.key] then dirty[rec.key] = true dirty_list[#dirty_list + 1] = row end
      end
      local a = r.answer
      if a then
        local ok, err, ekind = file.box:answer{ element = rec.element, account = f.BillerAccountNumber,
          status = a.answer, reason = a.reason or "", message = a.message or "",
          provider = f.ThorContentProviderId, thor_user_id = f.ThorUserId }
        if not ok then fail(err, ekind) end
        summary.answers = summary.answers + 1
      end
      hist[#hist + 1] = { thor_user_id = f.ThorUserId, provider = f.ThorContentProviderId, account = f.BillerAccountNumber,
        file_id = file.id, seq = rec.seq, line = rec.line, element = rec.element, event = r.event,
        status_before = r.before, status_after = r.status,
        answer = a and a.answer, reason = a and a.reason, message = a and a.message, detail = r.detail, at = now }
      if r.warnings then
        for _, w in ipairs(r.warnings) do warn(summary, rec.line, "%s", w) end
      end
      count(summary, kind, r.outcome)
    end
  end
  reg:save_agreements(dirty_list)
  reg:add_history(hist)
end

-- Read every record of rd into batches of process.BATCH and handle them.
local function read_all(file, rd)
  local summary = file.summary
  local batch = {}
  while true do
    local rec, rerr = rd:next_record()
    if not rec then
      if rerr then fail(rerr, "input") end
      break
    end
    summary.records = summary.records + 1
    if rec.problem then
      skip(summary, rec, rec.problem)
    else
      batch[#batch + 1] = rec
      if #batch >= process.BATCH then
        handle_batch(file, batch)
        batch = {}
        process.crash("after-batch")
      end
    end
  end
  if #batch > 0 then handle_batch(file, batch) end
end

--- Process one request file; returns summary or nil, message, kind (giro.errors).
function process.run(opts)
  local reg, b = opts.reg, opts.biller
  local name = opts.name or opts.request
  b.request_name = name     -- rule errors name the record: NAME:LINE
  local target, terr, tkind = target_of(opts)
  if not target then return nil, terr, tkind end
  local ist, ierr, ikind = output.check_input(opts.request, { what = "request file" })
  if not ist then return nil, ierr, ikind end
  local digest, derr = process.digest(opts.request)
  if not digest then return nil, derr, "env" end
  local done = reg:file_by_digest(digest)
  if done then return replay(opts, done) end

  local rd, err = request_reader.open(opts.request, { name = name })
  if not rd then return nil, err, "input" end
  local header = { from_name = b.service_provider_name, to_id = rd.header.to_id, to_service = rd.header.to_service }
  local summary = new_summary(name, digest)
  summary.to = rd.header.to_id
  local file = { reg = reg, biller = b, summary = summary, now = register.now(), box = outbox.new(target, header) }

  -- one transaction: the file recorded, every record handled, the response validated
  local ok, perr = pcall(reg.transaction, reg, function()
    -- a second giro may have processed the same file while this one waited for the lock
    done = reg:file_by_digest(digest)
    if done then error({ replay = true }, 0) end
    file.id = reg:add_file{ kind = "request", digest = digest, name = name, from_name = header.from_name,
                            to_id = header.to_id, to_service = header.to_service, processed_at = file.now }
    read_all(file, rd)
    rd:close()
    if opts.strict and summary.skipped > 0 then
      local first = summary.skipped_records[1]
      fail(string.format("%s:%d: %s (--strict: %d record(s) cannot be answered; nothing written)",
        name, first.line, first.problem, summary.skipped), "input")
    end
    summary.response = file.box.count > 0 and target.name or nil
    summary.processed_at = file.now
    reg:update_file(file.id, { from_name = header.from_name, to_id = header.to_id, to_service = header.to_service,
      records = summary.records, answers = summary.answers, summary = cjson.encode(summary) })
    local vok, verr, vkind = file.box:validate()
    if not vok then fail(verr, vkind) end
    process.crash("after-validate")
  end)
  if not ok then
    file.box:abort()
    rd:close()
    if type(perr) == "table" and perr.replay then return replay(opts, done) end
    if type(perr) == "table" and perr.fail then return nil, perr.fail, perr.kind or "env" end
    return nil, errtext(perr), "env"
  end
  process.crash("after-commit")
  local dok, derr2 = file.box:deliver(reg, file.id)
  if not dok then return nil, derr2 .. " (the register has the answers: run the same command again)", "env" end
  process.crash("after-deliver")
  return summary
end

return process
