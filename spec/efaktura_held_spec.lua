-- Holding unmatched requests for a person: pending, decide, answer; and the bundled example.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

-- The same assertions on each backend (SQLite; PostgreSQL where installed).
for _, B in ipairs(H.backends()) do
describe("giro efaktura pending / decide / answer (" .. B.name .. ")", function()
  lazy_setup(function() H.use(B) end)
  lazy_teardown(function() H.done(B) end)
  local dir, db, rule
  before_each(function()
    dir, db = H.setup()
    rule = H.write(dir .. "/hold.lua", [[
      local default = { options = { hold = { ["01"] = true } } }
      local names = require("giro.efaktura.names")
      function default.validate(request, customer)
        if not customer then return { reason = "01", why = "unknown reference" } end
        if not names.match(request, customer) then return { reason = "02" } end
        return { accept = true }
      end
      return default]])
  end)
  after_each(function() H.rmdir(dir) end)

  local function process(records, out)
    return H.run({ "efaktura", "process", H.write(dir .. "/q" .. tostring(#records) .. tostring(out):gsub("%W", "") .. ".xml",
      H.request{ records = records }), "--biller", rule, "--db", db, "-o", out })
  end

  it("holds an unknown reference, suggests the customer, answers after a decision", function()
    local out = dir .. "/r1.xml"
    local rc, _, err = process({ H.add("1000071", "h1==", "Kari Anne", "Nordmann"), H.add("1000017", "h2==", "Kari", "Nordmann") }, out)
    assert.equal(0, rc, err)
    assert.truthy(err:find("1 held for manual decision", 1, true), err)
    assert.equal(1, #H.answers(out))                        -- only the matched one is answered now
    local stdout
    rc, stdout = H.run({ "efaktura", "pending", "--db", db, "--json" })
    assert.equal(0, rc)
    local p = cjson.decode(stdout)
    assert.equal(1, #p)
    assert.equal("1000071", p[1].account)
    assert.equal("Kari Anne", p[1].received.FirstName)
    assert.equal("01", p[1].proposal.reason)
    assert.equal("1000017", p[1].suggestions[1].customer.account_number)   -- one digit swapped, same name
    local id = tostring(math.tointeger(p[1].id))
    -- a reminder for the held request stays held, no answer, no duplicate
    local out2 = dir .. "/r2.xml"
    rc, _, err = process({ H.add("1000071", "h1==", "Kari Anne", "Nordmann") }, out2)
    assert.equal(0, rc)
    assert.truthy(err:find("still held (reminder)", 1, true), err)
    assert.is_false(H.exists(out2))
    rc, stdout = H.run({ "efaktura", "pending", "--db", db, "--json" })
    assert.equal(1, #cjson.decode(stdout))
    -- nothing decided yet: nothing to answer
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/none.xml" })
    assert.equal(0, rc)
    assert.is_false(H.exists(dir .. "/none.xml"))
    -- bad decisions are refused as usage errors (exit 2: a customer, reason or ID that cannot be chosen)
    assert.equal(2, (H.run({ "efaktura", "decide", "--db", db, id, "accept", "--customer", "nobody" })))
    assert.equal(2, (H.run({ "efaktura", "decide", "--db", db, id, "reject", "07" })))
    assert.equal(2, (H.run({ "efaktura", "decide", "--db", db, id, "maybe" })))
    assert.equal(2, (H.run({ "efaktura", "decide", "--db", db, "999", "reject", "01" })))
    rc, _, err = H.run({ "efaktura", "decide", "--db", db, id, "accept", "--customer", "1000017" })
    assert.equal(0, rc, err)
    local ans = dir .. "/answer.xml"
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", ans })
    assert.equal(0, rc, err)
    assert.is_true(H.xsd_valid(ans))
    local a = H.answers(ans)
    assert.equal(1, #a)
    assert.same({ "EnrollmentAdd", "1000071", "A", "h1==" }, { a[1].element, a[1].BillerAccountNumber, a[1].BillerEnrollmentStatus, a[1].ThorUserId })
    rc, stdout = H.run({ "efaktura", "agreements", "--db", db, "--status", "answered", "--json" })
    local list = cjson.decode(stdout)
    local found
    for _, g in ipairs(list) do if g.thor_user_id == "h1==" then found = g end end
    assert.equal("1000017", found.customer)
    rc, stdout = H.run({ "efaktura", "pending", "--db", db, "--json" })
    assert.same({}, cjson.decode(stdout))
    -- answering again has nothing left
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/again.xml" })
    assert.truthy(err:find("nothing to answer", 1, true), err)
  end)

  it("a rejected decision carries the spec's message; an answer run killed after commit is written again", function()
    process({ H.add("555", "r1==", "Per", "Olsen") }, dir .. "/r.xml")
    local _, stdout = H.run({ "efaktura", "pending", "--db", db, "--json" })
    local id = tostring(math.tointeger(cjson.decode(stdout)[1].id))
    assert.equal(0, (H.run({ "efaktura", "decide", "--db", db, id, "reject", "01" })))
    local ans = dir .. "/a.xml"
    local rc = H.run({ "efaktura", "answer", "--db", db, "-o", ans }, { GIRO_TEST_CRASH_AT = "after-commit" })
    assert.is_true(rc ~= 0)
    assert.is_false(H.exists(ans))
    local err
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", ans })
    assert.equal(0, rc, err)
    assert.truthy(err:find("written again", 1, true), err)
    local a = H.answers(ans)
    assert.same({ "N", "01", "Oppgitt efaktura referanse er ugyldig (se papirfaktura)" },
      { a[1].BillerEnrollmentStatus, a[1].BillerReason, a[1].BillerMessage })
    assert.is_true(H.xsd_valid(ans))
  end)
end)
end

describe("the bundled example (examples/efaktura)", function()
  it("make demo's flow runs and every response it writes is valid", function()
    local dir = H.tmpdir()
    local p = io.popen("GIRO=" .. H.sh_quote(H.giro) .. " sh examples/efaktura/demo.sh 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    assert.truthy(out:match("rc=0\n$"), out)
    for _, f in ipairs({ "response-01.xml", "response-held.xml", "response-02.xml", "response-03.xml" }) do
      assert.is_true(H.xsd_valid("build/demo/" .. f), f)
    end
    assert.truthy(out:find("4 accepted, 1 held for manual decision, 1 rejected 02, 1 rejected 03", 1, true), out)
    assert.truthy(out:find("1 answered again (reminder)", 1, true), out)
    -- the business customer got the rule's own message
    local a = H.answers("build/demo/response-01.xml")
    local msgs = {}
    for _, r in ipairs(a) do msgs[r.BillerAccountNumber] = r.BillerMessage end
    assert.equal("Efaktura tilbys bare til privatkunder. Bedrifter kan få faktura som EHF.", msgs["1000041"])
    assert.equal("1000 033", a[3].BillerAccountNumber)     -- echoed as typed, space and all
    H.rmdir(dir)
  end)
end)
