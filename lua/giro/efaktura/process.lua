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
--     time (giro.xml read_record) and handled in batches of BATCH: one query fetches the
--     batch's customers, one its agreements, then one multi-row statement each writes the
--     agreements, the history and the answers.  Memory holds one batch, never the file.
--  3. Answers stream into a temporary response file (giro.output: next to the output, or an
--     anonymous memory file for stdout), which is validated against the response XSD and
--     fsynced.  Only then is the transaction committed (it also records the file and its
--     answers), and only then is the response renamed into place (or copied to stdout).
--  A crash before COMMIT leaves the register as it was (the next run starts over); a crash
--  after COMMIT leaves the answers in the register, and the next run of the same file
--  writes the identical response from them.
local hash = require("giro.hash")
local cjson = require("cjson")
local errors = require("giro.errors")
local request_reader = require("giro.efaktura.request")
local response = require("giro.efaktura.response")
local register = require("giro.efaktura.register")
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

-- The fields of a P request that identify "the same request sent again".
local FP_FIELDS = { "FirstName", "LastName", "DayPhone", "Email", "Address1", "Address2", "City", "State",
                    "PostalCode", "Country" }
local function fingerprint(rec)
  local parts = { rec.element }
  for i, k in ipairs(FP_FIELDS) do parts[i + 1] = rec.fields[k] end
  return hash.hex(hash.sha1(table.concat(parts, "\31")))
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

-- A response writer on the target's temporary file (nil, message, kind on failure).
local function open_response(target, header)
  local t, err, kind = target:open()
  if not t then return nil, err, kind end
  local w, werr = response.new({ fd = t:fd(), path = t:path(), name = target.name }, header)
  if not w then target:abort() return nil, werr, "env" end
  return w
end
process.open_response = open_response

-- The text of a caught error (an interruption's message, a table's env/rejected text).
local function errtext(e)
  if type(e) == "table" then return tostring(e.message or e.env or e.rejected or e[1]) end
  return tostring(e)
end
process.errtext = errtext

--- Write a response from stored answers (an iterator of response rows) to target's temp file;
-- returns the number of answers (0: nothing opened) or nil, message, kind.
function process.rewrite(header, rows, target)
  local w, err, kind
  local n = 0
  for row in rows do
    if not w then
      w, err, kind = open_response(target, header)
      if not w then return nil, err, kind end
    end
    w:answer(row)
    n = n + 1
  end
  if not w then return 0 end
  local ok, e = w:commit()
  if not ok then target:abort() return nil, errtext(type(e) == "table" and (e.text or e) or e), "env" end
  return n
end

-- Replay a file that is already in the register.
local function replay(opts, file)
  local reg = opts.reg
  local summary = file.summary and cjson.decode(file.summary) or new_summary(opts.name, file.digest)
  summary.replayed = true
  summary.processed_at = file.processed_at
  local target = opts.target
  local header = { from_name = file.from_name, to_id = file.to_id, to_service = file.to_service }
  local n, err, kind = process.rewrite(header, reg:responses(file.id), target)
  if not n then return nil, "cannot write the response again: " .. tostring(err), kind or "env" end
  if n > 0 then
    local ok, e = target:commit()
    if not ok then return nil, e, "env" end
    reg:mark_delivered(file.id)
    summary.response = target.name
  else
    summary.response = nil
  end
  return summary
end

--- Process one request file; returns summary or nil, message, kind (giro.errors).
-- A receipt's failed customer lookup is noted and the receipt recorded without a customer;
-- an interruption (SIGINT/SIGTERM) is not a lookup failure and goes on up.
local function lookup_failed(e)
  if type(e) == "table" and e.kind == "interrupted" then error(e, 0) end
  return tostring(e)
end

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
  local db = reg.db
  local writer
  local now = register.now()

  local function abort(msg, kind)
    db:rollback()
    if writer then writer:abort() end
    target:abort()
    rd:close()
    return nil, msg, kind
  end

  local ok, perr = pcall(db.begin, db)
  if not ok then return abort(errtext(perr), "env") end
  -- a second giro may have processed the same file while this one waited for the lock
  local file_id
  ok, perr = pcall(function()
    done = reg:file_by_digest(digest)
    if not done then
      file_id = reg:add_file{ kind = "request", digest = digest, name = name, from_name = header.from_name,
                              to_id = header.to_id, to_service = header.to_service, processed_at = now }
    end
  end)
  if not ok then return abort(errtext(perr), "env") end
  if done then
    abort()
    return replay(opts, done)
  end

  -- one batch: records -> register changes, answers
  local function handle_batch(batch)
    local keys, numbers, seen_n = {}, {}, {}
    for i, rec in ipairs(batch) do
      local f = rec.fields
      keys[i] = { f.ThorUserId, f.ThorContentProviderId, f.BillerAccountNumber }
      rec.key = register.key(f.ThorUserId, f.ThorContentProviderId, f.BillerAccountNumber)
    end
    local rows = reg:agreements(keys)
    -- customer numbers for the requests that may need a decision
    for _, rec in ipairs(batch) do
      -- a receipt for an agreement giro never answered gets its customer the same way
      -- (a rule that fails on a receipt leaves it without a customer and warns: receipts
      -- are Nets' word and are recorded whatever the rule makes of them)
      local row = rows[rec.key]
      local n
      if rec.kind == "add" or rec.kind == "change" then
        n = b:customer_number(rec.fields, rec.line)
      elseif rec.kind:sub(1, 8) == "receipt-" and (not row or row.customer == nil) then
        local ok, v = pcall(b.customer_number, b, rec.fields, rec.line)
        if ok then n = v else rec.lookup_error = lookup_failed(v) end
      end
      if n then
        rec.number = n
        if not seen_n[n] then seen_n[n] = true numbers[#numbers + 1] = n end
      end
    end
    local customers = b.has_lookup and {} or reg:customers(numbers)
    local dirty, dirty_list, hist = {}, {}, {}

    local function touch(rec, row)
      if not dirty[rec.key] then dirty[rec.key] = true dirty_list[#dirty_list + 1] = row end
      rows[rec.key] = row
    end
    local function new_row(rec)
      local f = rec.fields
      return { thor_user_id = f.ThorUserId, provider = f.ThorContentProviderId, account = f.BillerAccountNumber,
               created_at = now }
    end
    local function history(rec, event, before, after, a, detail)
      local f = rec.fields
      hist[#hist + 1] = { thor_user_id = f.ThorUserId, provider = f.ThorContentProviderId, account = f.BillerAccountNumber,
        file_id = file_id, seq = rec.seq, line = rec.line, element = rec.element, event = event,
        status_before = before, status_after = after,
        answer = a and a.answer, reason = a and a.reason, message = a and a.message, detail = detail, at = now }
    end
    local function respond(rec, a)
      local f = rec.fields
      local ans = { element = rec.element, account = f.BillerAccountNumber, status = a.answer, reason = a.reason or "",
                    message = a.message or "", provider = f.ThorContentProviderId, thor_user_id = f.ThorUserId }
      if not writer then
        local w, werr = open_response(target, header)
        if not w then error({ env = "cannot write the response: " .. tostring(werr) }) end
        writer = w
      end
      writer:answer(ans)
      summary.answers = summary.answers + 1
    end

    for _, rec in ipairs(batch) do
      local f, kind = rec.fields, rec.kind
      local row = rows[rec.key]
      local before = row and row.status
      if not b:serves(f.ThorContentProviderId) then
        -- a record for another biller: not ours to answer or to register
        skip(summary, rec, string.format("ThorContentProviderId %s is not served by %s (it serves %s)",
          errors.quote(f.ThorContentProviderId), b.path, b:ids_text()))
      elseif kind == "add" or kind == "change" then
        local fp = fingerprint(rec)
        if row and before == "held" then
          if row.fingerprint ~= fp then
            row.request, row.fingerprint, row.element = request_json(f), fp, rec.type
          end
          row.line, row.file_id, row.updated_at = rec.line, file_id, now
          touch(rec, row)
          history(rec, "reminder", before, "held", nil, "request is held for a manual decision")
          count(summary, kind, "still held (reminder)")
        elseif row and before == "answered" and row.fingerprint == fp and row.element == rec.type then
          local a = { answer = row.answer, reason = row.reason, message = row.message }
          respond(rec, a)
          history(rec, "reminder", before, before, a, "the same request again: same answer")
          count(summary, kind, "answered again (reminder)")
        elseif kind == "change" and row and before == "active" then
          local a = { answer = "A", reason = "", message = "" }
          row.fingerprint, row.element = fp, rec.type
          row.answer, row.reason, row.message, row.updated_at = "A", "", "", now
          row.line, row.file_id = rec.line, file_id
          touch(rec, row)
          respond(rec, a)
          history(rec, "change", before, "active", a, "already an active eFaktura agreement: change accepted")
          count(summary, kind, "accepted (already active)")
        else
          f.customer_number = rec.number
          f.type, f.line, f.agreement = rec.element, rec.line, before
          local customer
          if rec.number then
            if b.has_lookup then customer = b:lookup(rec.number, f, reg) else customer = customers[rec.number] end
          end
          local d = b:decide(f, customer)
          row = row or new_row(rec)
          row.fingerprint, row.element = fp, rec.type
          row.customer = d.customer
          row.line, row.file_id, row.updated_at = rec.line, file_id, now
          if d.hold then
            row.status = "held"
            row.request = request_json(f)   -- what a person deciding by hand gets to see
            row.proposal = cjson.encode({ answer = d.answer, reason = d.reason, message = d.message, why = d.why,
                                          customer = d.customer })
            row.decision = nil
            touch(rec, row)
            history(rec, kind, before, "held", nil, "held for a manual decision; the rule proposed "
              .. (d.answer == "A" and "accept" or "reject " .. d.reason) .. (d.why and ": " .. d.why or ""))
            count(summary, kind, "held for manual decision")
          else
            local after = (d.answer == "N" and before == "active") and "stopped" or
                          (before == "active" and "active" or "answered")
            row.status = after
            row.answer, row.reason, row.message = d.answer, d.reason, d.message
            row.proposal, row.decision = nil, nil
            touch(rec, row)
            respond(rec, d)
            history(rec, kind, before, after, d, d.why)
            count(summary, kind, d.answer == "A" and "accepted" or "rejected " .. d.reason)
          end
        end
      elseif kind == "delete" then
        if row and (before == "active" or before == "answered" or before == "held") then
          row.status, row.updated_at, row.line, row.file_id = "stopped", now, rec.line, file_id
          touch(rec, row)
          history(rec, "delete", before, "stopped", nil, "deleted by the consumer: eFaktura stopped")
          count(summary, kind, "stopped")
        else
          history(rec, "delete", before, before, nil, row and "agreement not active: nothing to stop"
            or "not in the register: ignored")
          count(summary, kind, row and "ignored (not active)" or "ignored (not in register)")
        end
      else -- receipts
        local st = rec.status
        local after = st == "A" and "active" or st == "N" and "rejected" or "stopped"
        local customer
        if (not row or row.customer == nil) and rec.number then
          if b.has_lookup then
            local ok, c = pcall(b.lookup, b, rec.number, f, reg)
            if ok then customer = c else rec.lookup_error = lookup_failed(c) end
          else
            customer = customers[rec.number]
          end
        end
        if rec.lookup_error then
          warn(summary, rec.line, "receipt %s (account %s): no customer attached: %s", st, f.BillerAccountNumber,
            require("giro.errors").quote(rec.lookup_error, 200))
        end
        if not row then
          row = new_row(rec)
          row.element = "Change"
          warn(summary, rec.line, "receipt %s for an agreement not in the register (account %s): recorded as %s, %s",
            st, errors.quote(f.BillerAccountNumber), after, customer and ("customer " .. tostring(customer.account_number))
              or "no customer found (attach one: giro efaktura decide --db DB ID accept --customer N)")
        elseif st == "A" and before == "answered" and row.answer == "N" then
          warn(summary, rec.line, "receipt A for an agreement this biller rejected (account %s): Nets has it active",
            errors.quote(f.BillerAccountNumber))
        end
        if customer and row.customer == nil then row.customer = tostring(customer.account_number) end
        row.status, row.updated_at, row.line, row.file_id = after, now, rec.line, file_id
        touch(rec, row)
        history(rec, "receipt-" .. st, before, after, nil, customer and ("customer " .. row.customer) or nil)
        count(summary, kind, st == "A" and "eFaktura active" or st == "N" and "rejection recorded" or "eFaktura stopped")
      end
    end
    reg:save_agreements(dirty_list)
    reg:add_history(hist)
  end

  local batch = {}
  local function run_all()
    while true do
      local rec, rerr = rd:next_record()
      if not rec then
        if rerr then error({ rejected = rerr }) end
        break
      end
      summary.records = summary.records + 1
      if rec.problem then
        skip(summary, rec, rec.problem)
      else
        batch[#batch + 1] = rec
        if #batch >= process.BATCH then
          handle_batch(batch)
          batch = {}
          process.crash("after-batch")
        end
      end
    end
    if #batch > 0 then handle_batch(batch) end
    batch = nil
  end

  ok, perr = pcall(run_all)
  if not ok then
    if type(perr) == "table" and perr.rejected then return abort(perr.rejected, "input") end
    if type(perr) == "table" and perr.env then return abort(perr.env, "env") end
    return abort(errtext(perr), "env")
  end
  rd:close()
  if opts.strict and summary.skipped > 0 then
    local first = summary.skipped_records[1]
    return abort(string.format("%s:%d: %s (--strict: %d record(s) cannot be answered; nothing written)",
      name, first.line, first.problem, summary.skipped), "input")
  end

  summary.response = writer and target.name or nil
  summary.processed_at = now
  ok, perr = pcall(reg.update_file, reg, file_id, { from_name = header.from_name, to_id = header.to_id,
    to_service = header.to_service, records = summary.records, answers = summary.answers, summary = cjson.encode(summary) })
  if not ok then return abort(errtext(perr), "env") end

  if writer then
    local vok, verr = writer:commit()
    writer = nil
    if not vok then
      local detail = type(verr) == "table" and (verr.text or tostring(verr[1] and verr[1].message)) or tostring(verr)
      return abort("the response failed validation against the response XSD (nothing written): " .. detail, "env")
    end
  end
  process.crash("after-validate")
  ok, perr = pcall(db.commit, db)
  if not ok then return abort(errtext(perr), "env") end
  process.crash("after-commit")
  if summary.response then
    local dok, derr2 = target:commit()
    if not dok then return nil, derr2 .. " (the register has the answers: run the same command again)", "env" end
    reg:mark_delivered(file_id)
  end
  process.crash("after-deliver")
  return summary
end

return process
