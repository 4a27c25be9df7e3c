-- The straight path of `giro efaktura process` (giro.efaktura.process over the pure
-- agreement machine): what the rule is handed, and a batch whose records change the same
-- agreement one after another.  Expected outcomes from docs/efaktura.md ("What happens to
-- each record", "Biller rules").
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

for _, B in ipairs(H.backends()) do
describe("giro efaktura process, the path (" .. B.name .. ")", function()
  lazy_setup(function() H.use(B) end)
  lazy_teardown(function() H.done(B) end)
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  local function run(rule, records, out)
    local req = H.write(dir .. "/req-" .. tostring(out):gsub("%W", "") .. ".xml", H.request{ records = records })
    return H.run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", out })
  end
  local function history(user)
    local rc, stdout, err = H.run({ "efaktura", "history", "--db", db, "--thor-user-id", user, "--json" })
    assert.equal(0, rc, err)
    return cjson.decode(stdout)[1].history
  end

  it("the rule sees the request's leaves and giro's annotations beside them, never written into the leaves", function()
    -- the rule reports what it sees in `why` (kept in the history): the annotations read
    -- through the view, rawget finds none of them (they are not in the request's fields), and
    -- pairs walks the leaves and then the annotations
    local rule = H.write(dir .. "/seeing.lua", [[
      local r = {}
      function r.validate(request, customer)
        local keys = {}
        for k in pairs(request) do keys[#keys + 1] = k end
        table.sort(keys)
        local raw = {}
        for _, k in ipairs({ "customer_number", "type", "line", "agreement" }) do
          raw[#raw + 1] = tostring(rawget(request, k))
        end
        return { accept = true, customer = customer and customer.account_number or "none",
          why = string.format("number=%s type=%s line=%s agreement=%s raw=%s keys=%s",
            tostring(request.customer_number), tostring(request.type), tostring(request.line),
            tostring(request.agreement), table.concat(raw, ","), table.concat(keys, ",")) }
      end
      return r]])
    local rc, _, err = run(rule, { H.add("0001234", "see==", "Ola", "Hansen") }, dir .. "/1.xml")
    assert.equal(0, rc, err)
    local h = history("see==")
    assert.equal(1, #h)
    local why = h[1].detail
    assert.truthy(why:find("number=0001234 type=EnrollmentAdd line=", 1, true), why)
    assert.truthy(why:find("agreement=nil raw=nil,nil,nil,nil", 1, true), why)
    -- every leaf of an AccountInfoRecord (the request DTD's 18) and the annotations that have a
    -- value (no agreement yet: `agreement` is nil, so pairs has no such key), once each
    local keys = why:match("keys=(.*)$")
    local list = {}
    for k in keys:gmatch("[^,]+") do list[#list + 1] = k end
    assert.equal(18 + 3, #list, keys)
    for _, k in ipairs({ "BillerAccountNumber", "FirstName", "ThorUserId", "ThorUserKey", "customer_number", "type",
                         "line" }) do
      assert.truthy(("," .. keys .. ","):find("," .. k .. ",", 1, true), k .. " in " .. keys)
    end
    -- the line annotation is where the record starts: a number
    assert.truthy(why:match("line=(%d+) "), why)
    -- a second request for the same agreement sees its status
    rc, _, err = run(rule, { H.add("0001234", "see==", "Ola", "Hansen-Berg") }, dir .. "/2.xml")
    assert.equal(0, rc, err)
    h = history("see==")
    assert.truthy(h[2].detail:find("agreement=answered", 1, true), h[2].detail)
  end)

  it("decide checks the decision contract before the register is opened", function()
    -- a 101-character message is refused (BillerMessage holds 100) as a usage error, even with a
    -- register that does not exist (which would be exit 3)
    local missing = dir .. "/no-such-register.db"
    local rc, _, err = H.run({ "efaktura", "decide", "--db", missing, "1", "reject", "02", "--message", string.rep("x", 101) })
    assert.equal(2, rc, err)
    assert.truthy(err:find("at most 100", 1, true), err)
    rc, _, err = H.run({ "efaktura", "decide", "--db", missing, "1", "reject", "04" })
    assert.equal(2, rc, err)
    assert.truthy(err:find("01, 02 or 03", 1, true), err)
    assert.is_false(H.exists(missing))
  end)

  it("a record whose agreement an earlier record of the same batch changed is decided on its own customer", function()
    -- hold name mismatches (02) for a person; then one file stops the held agreement (delete)
    -- and asks again with the right name: the second request is decided afresh (the agreement
    -- is stopped, so it is validated like a new one) and accepted for customer 1000017
    local rule = H.write(dir .. "/hold02.lua", [[
      local names = require("giro.efaktura.names")
      local r = { options = { hold = { "02" } } }
      function r.validate(request, customer)
        if not customer then return { reason = "01" } end
        if not names.match(request, customer) then return { reason = "02" } end
        return { accept = true }
      end
      return r]])
    local rc, _, err = run(rule, { H.add("1000017", "again==", "Per", "Olsen") }, dir .. "/1.xml")
    assert.equal(0, rc, err)
    assert.truthy(err:find("1 held for manual decision", 1, true), err)
    assert.equal("held", H.status_of(db, "again=="))
    local out = dir .. "/2.xml"
    rc, _, err = run(rule, { H.delete("1000017", "again=="), H.add("1000017", "again==", "Kari", "Nordmann") }, out)
    assert.equal(0, rc, err)
    local a = H.answers(out)
    assert.equal(1, #a)
    assert.equal("A", a[1].BillerEnrollmentStatus)
    assert.equal("1000017", a[1].BillerAccountNumber)
    assert.equal("answered", H.status_of(db, "again=="))
    local h = history("again==")
    assert.same({ "add", "delete", "add" }, { h[1].event, h[2].event, h[3].event })
    assert.same({ "held", "stopped", "answered" }, { h[1].status_after, h[2].status_after, h[3].status_after })
    local rc2, stdout = H.run({ "efaktura", "agreements", "--db", db, "--json" })
    assert.equal(0, rc2)
    local ag = cjson.decode(stdout)
    assert.equal(1, #ag)
    assert.equal("1000017", ag[1].customer)
  end)
end)
end
