-- The agreement state machine (giro.efaktura.agreement) driven directly, one transition at a
-- time.  Expected statuses and answers come from the table in docs/efaktura.md ("Messages and
-- the register") and the spec digest (../shared/specs/efaktura-enrollment.md, 4.3, 4.4, 5.4):
-- Add P -> answer A/N and wait for the receipt; Change P on an active agreement -> A without
-- asking (4.1.1); own N on an active agreement stops it (6.1.1 case 4); Delete D stops an
-- agreement, else is ignored, never answered; receipts A/N/D -> active/rejected/stopped,
-- never answered; the same P again -> the same answer.
local agreement = require("giro.efaktura.agreement")

local CLEAR = agreement.CLEAR
local STD01 = "Oppgitt efaktura referanse er ugyldig (se papirfaktura)"

local function fields(account)
  return { BillerAccountNumber = account or "1234", FirstName = "Kari", LastName = "Nordmann",
           ThorContentProviderId = "NOR999999999-1", ThorUserId = "abc==" }
end

-- a request record as giro.efaktura.request reads it (kind, type, status, fields) plus the
-- fingerprint the caller computed
local function P(element, fp)
  local kind = element == "Add" and "add" or "change"
  return { kind = kind, type = element, element = "Enrollment" .. element, status = "P", fields = fields(),
           fingerprint = fp or "fp1" }
end
local function receipt(st, extra)
  local r = { kind = "receipt-" .. st, type = "Change", element = "EnrollmentChange", status = st, fields = fields() }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local DELETE = { kind = "delete", type = "Delete", element = "EnrollmentDelete", status = "D", fields = fields() }

local function row(status, extra)
  local r = { status = status, element = "Add", fingerprint = "fp1", customer = "1234" }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local function without_customer(status)
  local r = row(status)
  r.customer = nil
  return r
end

local ACCEPT = { answer = "A", reason = "", message = "", why = "reference and name match", customer = "1234" }
local REJECT01 = { answer = "N", reason = "01", message = STD01, why = "no such customer" }

describe("giro.efaktura.agreement", function()
  describe("EnrollmentAdd P (case 1)", function()
    it("needs the biller's decision when there is no agreement", function()
      assert.is_true(agreement.needs_decision(P("Add"), nil))
    end)

    it("accepted: answer EnrollmentAdd A, and eFaktura does not start yet (answered, waiting for the receipt)", function()
      local r = agreement.step(P("Add"), nil, ACCEPT)
      assert.is_nil(r.before)
      assert.equal("answered", r.status)
      assert.is_true(r.create)
      assert.same({ answer = "A", reason = "", message = "" }, r.answer)
      assert.equal("answered", r.changes.status)
      assert.equal("1234", r.changes.customer)
      assert.equal("fp1", r.changes.fingerprint)
      assert.equal("Add", r.changes.element)
      assert.equal("add", r.event)
      assert.equal("accepted", r.outcome)
      assert.equal("reference and name match", r.detail)
    end)

    it("rejected: answer N with the reason and message; no eFaktura", function()
      local r = agreement.step(P("Add"), nil, REJECT01)
      assert.equal("answered", r.status)
      assert.same({ answer = "N", reason = "01", message = STD01 }, r.answer)
      assert.equal(CLEAR, r.changes.customer)    -- no customer was found
      assert.equal("rejected 01", r.outcome)
    end)

    it("held: no answer (Nets reminds), the request and the rule's proposal kept for a person", function()
      local d = { answer = "N", reason = "01", message = STD01, why = "typo?", hold = true }
      local rec = P("Add")
      local r = agreement.step(rec, nil, d)
      assert.equal("held", r.status)
      assert.is_nil(r.answer)
      assert.equal(rec.fields, r.changes.request)
      assert.same({ answer = "N", reason = "01", message = STD01, why = "typo?" }, r.changes.proposal)
      assert.equal(CLEAR, r.changes.decision)
      assert.equal("held for manual decision", r.outcome)
      assert.equal("held for a manual decision; the rule proposed reject 01: typo?", r.detail)
    end)

    it("a decision is required where the table says the rule decides", function()
      assert.has_error(function() agreement.step(P("Add"), nil, nil) end)
    end)
  end)

  describe("EnrollmentChange P (case 2)", function()
    it("on an active agreement: accepted without asking the rule (spec 4.1.1), stays active", function()
      local rec = P("Change", "fp2")
      assert.is_false(agreement.needs_decision(rec, row("active")))
      local r = agreement.step(rec, row("active"), nil)
      assert.equal("active", r.before)
      assert.equal("active", r.status)
      assert.same({ answer = "A", reason = "", message = "" }, r.answer)
      assert.equal("change", r.event)
      assert.equal("accepted (already active)", r.outcome)
      assert.equal("Change", r.changes.element)
      assert.equal("fp2", r.changes.fingerprint)
    end)

    it("not active: validated like a new request", function()
      for _, st in ipairs({ "rejected", "stopped" }) do
        assert.is_true(agreement.needs_decision(P("Change"), row(st)), st)
        local r = agreement.step(P("Change"), row(st), ACCEPT)
        assert.equal("answered", r.status, st)
        assert.equal("A", r.answer.answer)
        assert.falsy(r.create)
      end
    end)

    it("our own N on an active agreement stops eFaktura at once (spec 6.1.1 case 4)", function()
      -- an active agreement reaches the rule through an EnrollmentAdd P (a Change P is accepted as above)
      local r = agreement.step(P("Add", "fp9"), row("active"), REJECT01)
      assert.equal("active", r.before)
      assert.equal("stopped", r.status)
      assert.equal("N", r.answer.answer)
    end)

    it("an A on an active agreement keeps it active", function()
      local r = agreement.step(P("Add", "fp9"), row("active"), ACCEPT)
      assert.equal("active", r.status)
    end)
  end)

  describe("reminders (the same P again)", function()
    it("an answered agreement with the same content gets the stored answer again; the row is not written", function()
      local old = row("answered", { answer = "N", reason = "02", message = "own text" })
      local rec = P("Add", "fp1")
      assert.is_false(agreement.needs_decision(rec, old))
      local r = agreement.step(rec, old, nil)
      assert.equal("answered", r.status)
      assert.same({ answer = "N", reason = "02", message = "own text" }, r.answer)
      assert.is_nil(r.changes)
      assert.equal("reminder", r.event)
      assert.equal("answered again (reminder)", r.outcome)
    end)

    it("content changed, or another element: decided afresh", function()
      assert.is_true(agreement.needs_decision(P("Add", "other"), row("answered")))
      assert.is_true(agreement.needs_decision(P("Change", "fp1"), row("answered")))   -- element Add before
    end)

    it("a held request stays held without an answer; changed content replaces the kept request", function()
      local same = agreement.step(P("Add", "fp1"), row("held"), nil)
      assert.equal("held", same.status)
      assert.is_nil(same.answer)
      assert.same({}, same.changes)          -- written (line, time) but nothing of its content changes
      assert.equal("still held (reminder)", same.outcome)
      local rec = P("Change", "fp2")
      local changed = agreement.step(rec, row("held"), nil)
      assert.equal("held", changed.status)
      assert.equal(rec.fields, changed.changes.request)
      assert.equal("fp2", changed.changes.fingerprint)
      assert.equal("Change", changed.changes.element)
    end)
  end)

  describe("EnrollmentDelete D (case 3)", function()
    it("stops an active, answered or held agreement; never answered", function()
      for _, st in ipairs({ "active", "answered", "held" }) do
        assert.is_false(agreement.needs_decision(DELETE, row(st)))
        local r = agreement.step(DELETE, row(st))
        assert.equal(st, r.before)
        assert.equal("stopped", r.status)
        assert.is_nil(r.answer)
        assert.same({ status = "stopped" }, r.changes)
        assert.equal("stopped", r.outcome)
      end
    end)

    it("is ignored for an agreement that is not registered as active ('overse')", function()
      for _, st in ipairs({ "rejected", "stopped" }) do
        local r = agreement.step(DELETE, row(st))
        assert.equal(st, r.status)
        assert.is_nil(r.changes)
        assert.is_nil(r.answer)
        assert.equal("ignored (not active)", r.outcome)
      end
      local r = agreement.step(DELETE, nil)
      assert.is_nil(r.status)
      assert.is_nil(r.changes)
      assert.equal("ignored (not in register)", r.outcome)
    end)
  end)

  describe("receipts (cases 4 and 5): Nets' word, never answered", function()
    it("A starts eFaktura, N records the rejection, D stops it", function()
      local expect = { A = "active", N = "rejected", D = "stopped" }
      local outcome = { A = "eFaktura active", N = "rejection recorded", D = "eFaktura stopped" }
      for st, after in pairs(expect) do
        local rec = receipt(st)
        assert.is_false(agreement.needs_decision(rec, row("answered")))
        local r = agreement.step(rec, row("answered"))
        assert.equal(after, r.status, st)
        assert.equal(after, r.changes.status)
        assert.is_nil(r.answer)
        assert.equal("receipt-" .. st, r.event)
        assert.equal(outcome[st], r.outcome)
        assert.is_nil(r.warnings)
      end
    end)

    it("for an agreement not in the register: created with the receipt's status, and the summary warns", function()
      local r = agreement.step(receipt("A", { customer = { account_number = "1234" } }), nil)
      assert.is_true(r.create)
      assert.equal("active", r.status)
      assert.equal("Change", r.changes.element)
      assert.equal("1234", r.changes.customer)
      assert.equal("customer 1234", r.detail)
      assert.equal(1, #r.warnings)
      assert.truthy(r.warnings[1]:find("not in the register", 1, true))
      local none = agreement.step(receipt("D"), nil)
      assert.equal("stopped", none.status)
      assert.is_nil(none.changes.customer)
      assert.truthy(none.warnings[1]:find("attach one: giro efaktura decide", 1, true))
    end)

    it("receipt A for an agreement this biller rejected warns (Nets has it active)", function()
      local r = agreement.step(receipt("A"), row("answered", { answer = "N" }))
      assert.equal("active", r.status)
      assert.truthy(r.warnings[1]:find("this biller rejected", 1, true))
    end)

    it("a customer is attached only to an agreement without one; a failed lookup is a warning", function()
      assert.is_true(agreement.receipt_wants_customer(nil))
      assert.is_true(agreement.receipt_wants_customer(without_customer("answered")))
      assert.is_false(agreement.receipt_wants_customer(row("answered")))
      local r = agreement.step(receipt("A", { lookup_error = "rule failed" }), without_customer("answered"))
      assert.is_nil(r.changes.customer)
      assert.truthy(r.warnings[1]:find("no customer attached", 1, true))
    end)
  end)

  it("refuses a record kind the table does not define", function()
    assert.has_error(function() agreement.step({ kind = "bogus", fields = fields() }, nil) end)
  end)

  it("apply sets the changes on the caller's row, CLEAR to NULL", function()
    local r0 = row("held", { proposal = "{}", decision = "{}" })
    agreement.apply(r0, agreement.step(P("Add", "fp7"), row("rejected"), ACCEPT))
    assert.equal("answered", r0.status)
    assert.is_nil(r0.proposal)
    assert.is_nil(r0.decision)
    assert.equal("fp7", r0.fingerprint)
  end)

  it("is pure: the record and the row it is given are not changed", function()
    local rec, old = P("Change", "fp2"), row("active")
    local before_rec, before_row = {}, {}
    for k, v in pairs(rec) do before_rec[k] = v end
    for k, v in pairs(old) do before_row[k] = v end
    agreement.step(rec, old, nil)
    assert.same(before_rec, rec)
    assert.same(before_row, old)
  end)
end)
