--- giro.efaktura.agreement: the agreement state machine, pure.
--
-- One received record and the agreement it is for (the register's row, or nil) give the new
-- status, the row's changes, the answer to send (or none), the history event and the summary's
-- outcome.  No I/O, no register, no rule calls: when a record needs the biller's decision the
-- caller asks the rule and passes the decision in.
--
--   local agreement = require("giro.efaktura.agreement")
--   if agreement.needs_decision(rec, row) then
--     d = biller:decide(...)               -- { answer, reason, message, why, customer, hold }
--   end
--   local r = agreement.step(rec, row, d)
--   r.before, r.status     --> status before and after (nil: no agreement)
--   r.create               --> true: a new agreement row is made (there was none)
--   r.changes              --> nil (the row is not written) or { column = value } to set;
--                              agreement.CLEAR sets a column to NULL; `request` is the record's
--                              fields (the caller stores what a person deciding needs of them)
--                              and `proposal` a table (the caller encodes both)
--   r.answer               --> nil or { answer = "A"|"N", reason, message } (the response's)
--   r.event, r.detail      --> the history row's event and detail (status_before/after above)
--   r.outcome              --> the summary's outcome for case rec.kind
--   r.warnings             --> nil or a list of messages for the summary
--   agreement.apply(row, r)  --> row with r.changes applied (the caller's copy)
--
-- rec is what giro.efaktura.request reads: kind ("add" | "change" | "delete" | "receipt-A" |
-- "receipt-N" | "receipt-D"), type ("Add" | "Change"), status (a receipt's A/N/D), fields (the
-- request's leaves), plus what the caller worked out: fingerprint (of a P request's content),
-- and for a receipt customer (the customer found, or nil) and lookup_error (why none was).
--
-- The table (docs/efaktura.md, "Messages and the register"; spec 4.4 and 6.1.1):
--   Add/Change P, agreement held          reminder: stays held, no answer
--   Add/Change P, answered, same content  reminder: the stored answer again, row unchanged
--   Change P, agreement active            accepted without the rule (spec 4.1.1): active, A
--   Add/Change P otherwise                the rule decides: held (hold) | answered, or for an
--                                         active agreement active (A) / stopped (N, spec 6.1.1 case 4)
--   Delete D, active/answered/held        stopped, no answer; otherwise ignored
--   receipt A / N / D                     active / rejected / stopped, never answered; an
--                                         unknown agreement is created (Nets is the authority)
local errors = require("giro.errors")

local agreement = {}

--- Sets a column to NULL in r.changes.
agreement.CLEAR = setmetatable({}, { __tostring = function() return "agreement.CLEAR" end })
local CLEAR = agreement.CLEAR

local RECEIPT_STATUS = { ["receipt-A"] = "active", ["receipt-N"] = "rejected", ["receipt-D"] = "stopped" }
local RECEIPT_OUTCOME = { ["receipt-A"] = "eFaktura active", ["receipt-N"] = "rejection recorded",
                          ["receipt-D"] = "eFaktura stopped" }
local STOPPABLE = { active = true, answered = true, held = true }

agreement.RECEIPT_STATUS = RECEIPT_STATUS

-- Which P case a request is, without a decision: "held", "again", "active" or "decide".
local function p_case(rec, row)
  if not row then return "decide" end
  local st = row.status
  if st == "held" then return "held" end
  if st == "answered" and row.fingerprint == rec.fingerprint and row.element == rec.type then return "again" end
  if rec.kind == "change" and st == "active" then return "active" end
  return "decide"
end

--- Does this record need the biller's decision (a rule call) before step?
function agreement.needs_decision(rec, row)
  local kind = rec.kind
  return (kind == "add" or kind == "change") and p_case(rec, row) == "decide"
end

--- Does a receipt for this agreement look for a customer (one it has none for)?
function agreement.receipt_wants_customer(row)
  return not row or row.customer == nil
end

local function p_request(rec, row, d)
  local kind, before = rec.kind, row and row.status
  local case = p_case(rec, row)
  if case == "held" then
    local ch = {}
    if row.fingerprint ~= rec.fingerprint then
      ch.request, ch.fingerprint, ch.element = rec.fields, rec.fingerprint, rec.type
    end
    return { before = before, status = "held", changes = ch, event = "reminder",
             detail = "request is held for a manual decision", outcome = "still held (reminder)" }
  elseif case == "again" then
    return { before = before, status = before,
             answer = { answer = row.answer, reason = row.reason, message = row.message },
             event = "reminder", detail = "the same request again: same answer", outcome = "answered again (reminder)" }
  elseif case == "active" then
    return { before = before, status = "active",
             changes = { fingerprint = rec.fingerprint, element = rec.type, answer = "A", reason = "", message = "" },
             answer = { answer = "A", reason = "", message = "" },
             event = "change", detail = "already an active eFaktura agreement: change accepted",
             outcome = "accepted (already active)" }
  end
  if type(d) ~= "table" then
    error("giro.efaktura.agreement: a " .. kind .. " request needs the biller's decision (see needs_decision)", 3)
  end
  local ch = { fingerprint = rec.fingerprint, element = rec.type, customer = d.customer == nil and CLEAR or d.customer }
  if d.hold then
    ch.status, ch.request, ch.decision = "held", rec.fields, CLEAR
    ch.proposal = { answer = d.answer, reason = d.reason, message = d.message, why = d.why, customer = d.customer }
    return { before = before, status = "held", create = not row, changes = ch, event = kind,
             detail = "held for a manual decision; the rule proposed "
               .. (d.answer == "A" and "accept" or "reject " .. tostring(d.reason)) .. (d.why and ": " .. d.why or ""),
             outcome = "held for manual decision" }
  end
  local after = (d.answer == "N" and before == "active") and "stopped" or (before == "active" and "active" or "answered")
  ch.status, ch.answer, ch.reason, ch.message = after, d.answer, d.reason, d.message
  ch.proposal, ch.decision = CLEAR, CLEAR
  return { before = before, status = after, create = not row, changes = ch,
           answer = { answer = d.answer, reason = d.reason, message = d.message },
           event = kind, detail = d.why, outcome = d.answer == "A" and "accepted" or "rejected " .. tostring(d.reason) }
end

local function delete(row)
  local before = row and row.status
  if row and STOPPABLE[before] then
    return { before = before, status = "stopped", changes = { status = "stopped" }, event = "delete",
             detail = "deleted by the consumer: eFaktura stopped", outcome = "stopped" }
  end
  return { before = before, status = before, event = "delete",
           detail = row and "agreement not active: nothing to stop" or "not in the register: ignored",
           outcome = row and "ignored (not active)" or "ignored (not in register)" }
end

local function receipt(rec, row)
  local kind, st = rec.kind, rec.status
  local before = row and row.status
  local after = RECEIPT_STATUS[kind]
  local account = rec.fields.BillerAccountNumber
  local customer = rec.customer
  local warnings
  local function warn(fmt, ...)
    warnings = warnings or {}
    warnings[#warnings + 1] = string.format(fmt, ...)
  end
  if rec.lookup_error then
    warn("receipt %s (account %s): no customer attached: %s", st, account, errors.quote(rec.lookup_error, 200))
  end
  local ch = { status = after }
  if not row then
    ch.element = "Change"
    warn("receipt %s for an agreement not in the register (account %s): recorded as %s, %s",
      st, errors.quote(account), after, customer and ("customer " .. tostring(customer.account_number))
        or "no customer found (attach one: giro efaktura decide --db DB ID accept --customer N)")
  elseif st == "A" and before == "answered" and row.answer == "N" then
    warn("receipt A for an agreement this biller rejected (account %s): Nets has it active", errors.quote(account))
  end
  local detail
  if customer and (not row or row.customer == nil) then
    ch.customer = tostring(customer.account_number)
    detail = "customer " .. ch.customer
  elseif customer then
    detail = "customer " .. row.customer
  end
  return { before = before, status = after, create = not row, changes = ch, event = kind,
           detail = detail, outcome = RECEIPT_OUTCOME[kind], warnings = warnings }
end

--- The transition for record rec on agreement row (nil: none); d: the biller's decision when
-- needs_decision(rec, row) said so.  Raises for a record kind the table does not know.
function agreement.step(rec, row, d)
  local kind = rec.kind
  if kind == "add" or kind == "change" then return p_request(rec, row, d) end
  if kind == "delete" then return delete(row) end
  if RECEIPT_STATUS[kind] then return receipt(rec, row) end
  error("giro.efaktura.agreement: no transition for a record of kind " .. tostring(kind), 2)
end

--- Apply r.changes to row (in place; returns row).
function agreement.apply(row, r)
  local ch = r.changes
  if ch then
    for k, v in next, ch do
      if v == CLEAR then row[k] = nil else row[k] = v end
    end
  end
  return row
end

return agreement
