-- Finding and exporting agreements, receipts for agreements giro never answered, customer
-- re-imports that change nothing, and JSON whose lists stay lists.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

local function json_of(rc, out, err)
  assert(rc == 0, err)
  return cjson.decode(out)
end

local function sql(db, q, ...)
  local s = assert(require("giro.store").open(db))
  s:exec(q, ...)
  s:close()
end

local function first(db, q, ...)
  local s = assert(require("giro.store").open(db))
  local row = s:first(q, ...)
  s:close()
  return row
end

describe("giro.csv.line", function()
  it("writes RFC 4180 records that giro.csv reads back", function()
    local csv = require("giro.csv")
    local fields = { "a", "b,c", 'say "hi"', "x\ny", "", "Åse" }
    local line = csv.line(fields)
    assert.equal('a,"b,c","say ""hi""","x\ny",,Åse\r\n', line)
    local back = assert(csv.read_string(line))
    assert.same(fields, back[1].fields)
  end)
end)

for _, B in ipairs(H.backends()) do
describe("eFaktura agreements, receipts and customers (" .. B.name .. ")", function()
  lazy_setup(function() H.use(B) end)
  lazy_teardown(function() H.done(B) end)
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  it("gives a receipt for an agreement giro never answered its customer, by the default lookup", function()
    -- H.CUSTOMERS has customer 1000017; nothing was ever answered for it
    local rc, _, err = H.process(dir, db, H.request{ records = { H.receipt("A", "1000017", "rcpt1==") } })
    assert.equal(0, rc, err)
    assert.truthy(err:find("recorded as active, customer 1000017", 1, true), err)
    local list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    assert.equal(1, #list)
    assert.equal("active", list[1].status)
    assert.equal("1000017", list[1].customer)
    assert.equal("EnrollmentChange", list[1].element)
  end)

  it("applies the rule's own customer lookup to receipts", function()
    local rule = H.write(dir .. "/lookup.lua", [[
      return {
        customer_number = function(account) return (account:gsub("^REF%-", "")) end,
        lookup = function(number, request, api) return api.customer(number == "42" and "1000025" or number) end,
        validate = function(request, customer) return customer and { accept = true } or { reason = "01" } end,
      }]])
    local req = H.write(dir .. "/r.xml", H.request{ records = { H.receipt("A", "REF-42", "rcpt2==") } })
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", rule, "--db", db })
    assert.equal(0, rc, err)
    local list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    assert.equal("1000025", list[1].customer)
    assert.equal("REF-42", list[1].account)
  end)

  it("records a receipt without a customer when the rule's lookup fails on it, and warns", function()
    local rule = H.write(dir .. "/fails.lua", [[
      return {
        customer_number = function(account, request)
          if request.FirstName == "" then error("this rule needs a name") end
          return account
        end,
        validate = function(request, customer) return { accept = true } end,
      }]])
    local req = H.write(dir .. "/r.xml", H.request{ records = { H.receipt("A", "1000017", "rcpt4==") } })
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", rule, "--db", db })
    assert.equal(0, rc, err)
    assert.truthy(err:find("no customer attached", 1, true), err)
    assert.truthy(err:find("this rule needs a name", 1, true), err)
    local list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    assert.equal("active", list[1].status)
    assert.equal(cjson.null, list[1].customer)
  end)

  it("lets decide attach a customer to an agreement that has none, once", function()
    local rc, _, err = H.process(dir, db, H.request{ records = { H.receipt("A", "7777777", "rcpt3==") } })
    assert.equal(0, rc, err)
    assert.truthy(err:find("no customer found", 1, true), err)
    local list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    assert.equal(cjson.null, list[1].customer)
    local id = tostring(list[1].id)
    local res = json_of(H.run({ "efaktura", "decide", "--db", db, id, "accept", "--customer", "0001234", "--json" }))
    assert.is_true(res.attached)
    assert.equal("0001234", res.customer)
    list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    assert.equal("0001234", list[1].customer)
    assert.equal("active", list[1].status)          -- nothing to answer: Nets has it active
    local h = json_of(H.run({ "efaktura", "history", "--db", db, id, "--json" }))
    assert.equal("attach", h.history[#h.history].event)
    -- it has a customer now: another one is refused (usage), and nothing needs answering
    rc, _, err = H.run({ "efaktura", "decide", "--db", db, id, "accept", "--customer", "1000017" })
    assert.equal(2, rc, err)
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/none.xml" })
    assert.equal(0, rc, err)
    assert.is_false(H.exists(dir .. "/none.xml"))
  end)

  it("finds agreements by customer number, reference or ThorUserId, in agreements and history", function()
    local rc, _, err = H.process(dir, db, H.request{ records = {
      H.add("1000017", "u1==", "Kari Anne", "Nordmann"), H.add("1000025", "u2==", "Åse-Marie", "Østby"),
      H.add("0001234", "u3==", "Ola", "Hansen") } })
    assert.equal(0, rc, err)
    local function ids(words)
      local w = { "efaktura", "agreements", "--db", db, "--json" }
      for _, x in ipairs(words) do w[#w + 1] = x end
      local out = {}
      for _, a in ipairs(json_of(H.run(w))) do out[#out + 1] = a.thor_user_id end
      return out
    end
    assert.same({ "u2==" }, ids({ "--customer", "1000025" }))
    assert.same({ "u3==" }, ids({ "--reference", "0001234" }))
    assert.same({ "u1==" }, ids({ "--thor-user-id", "u1==" }))
    assert.same({}, ids({ "--customer", "1000025", "--thor-user-id", "u1==" }))
    local h = json_of(H.run({ "efaktura", "history", "--db", db, "--customer", "1000017", "--json" }))
    assert.equal(1, #h)
    assert.equal("u1==", h[1].agreement.thor_user_id)
    assert.equal("EnrollmentAdd", h[1].history[1].element)
    assert.equal("add", h[1].history[1].event)
    local out
    rc, out = H.run({ "efaktura", "history", "--db", db, "--thor-user-id", "nobody==" , "--json" })
    assert.equal(0, rc)
    assert.equal("[]\n", out)
  end)

  it("exports agreements as CSV with a header row", function()
    local rc, _, err = H.process(dir, db, H.request{ records = {
      H.add("1000017", "u1==", "Kari Anne", "Nordmann"), H.add("55,5", "u9==", "Nils", "Nilsen") } })
    assert.equal(0, rc, err)
    local out
    rc, out, err = H.run({ "efaktura", "agreements", "--db", db, "--csv" })
    assert.equal(0, rc, err)
    local lines = {}
    for l in out:gmatch("([^\r\n]*)\r\n") do lines[#lines + 1] = l end
    assert.equal(3, #lines, out)
    assert.equal("id,status,account,customer,provider,thor_user_id,element,answer,reason,message,created_at,updated_at",
      lines[1])
    assert.matches("^1,answered,1000017,1000017,NOR999999999%-1,u1==,EnrollmentAdd,A,,,%d%d%d%d%-", lines[2])
    -- a reference with a comma is quoted (RFC 4180); the rule rejected it 01 with the spec's text
    assert.matches('^2,answered,"55,5",,NOR999999999%-1,u9==,EnrollmentAdd,N,01,', lines[3])
    assert.equal(out:gsub("\r\n", ""):find("\n"), nil, "CRLF line ends only")
  end)

  it("re-imports an unchanged customer file as 0 updated and keeps the time stamps", function()
    local many = "account_number,first_name,last_name,efaktura,zeta,alpha,mid,beta,omega,kappa,delta\n"
      .. "500,Ola,Nordmann,yes,z,a,m,b,o,k,d\n"
    local csv = H.write(dir .. "/many.csv", many)
    local rc, out, err = H.run({ "customers", "import", csv, "--db", db, "--json" })
    assert.equal(0, rc, err)
    assert.same({ added = 1, updated = 0, unchanged = 0 }, cjson.decode(out))
    -- the extra columns are stored with their keys sorted
    assert.equal('{"alpha":"a","beta":"b","delta":"d","kappa":"k","mid":"m","omega":"o","zeta":"z"}',
      first(db, "SELECT extra FROM customers WHERE account_number = '500'").extra)
    sql(db, "UPDATE customers SET updated_at = '2000-01-01T00:00:00Z'")
    -- a register written before: the same object in another key order is unchanged too
    sql(db, [[UPDATE customers SET extra = '{"zeta":"z","omega":"o","mid":"m","kappa":"k","delta":"d","beta":"b","alpha":"a"}'
      WHERE account_number = '500']])
    for _ = 1, 3 do
      rc, out, err = H.run({ "customers", "import", csv, "--db", db, "--json" })
      assert.equal(0, rc, err)
      assert.same({ added = 0, updated = 0, unchanged = 1 }, cjson.decode(out))
    end
    rc, out, err = H.run({ "customers", "import", dir .. "/customers.csv", "--db", db, "--json" })
    assert.same({ added = 0, updated = 0, unchanged = 5 }, cjson.decode(out))
    assert.equal(0, H.count(db, "SELECT count(*) FROM customers WHERE updated_at <> '2000-01-01T00:00:00Z'"))
    -- a real change is an update, with a new time stamp
    H.write(csv, (many:gsub(",z,", ",Z,")))
    rc, out = H.run({ "customers", "import", csv, "--db", db, "--json" })
    assert.same({ added = 0, updated = 1, unchanged = 0 }, cjson.decode(out))
    assert.equal(1, H.count(db, "SELECT count(*) FROM customers WHERE updated_at <> '2000-01-01T00:00:00Z'"))
  end)

  it("prints every list as a JSON array, empty or not, and keeps its keys", function()
    local empty = H.new_db(dir, "empty.db")
    -- a register with no customers and no agreements (schema created by an import of a header-only file)
    H.write(dir .. "/header.csv", "account_number,first_name,last_name,efaktura\n")
    local rc, _, err = H.run({ "customers", "import", dir .. "/header.csv", "--db", empty })
    assert.equal(0, rc, err)
    for _, words in ipairs({
      { "efaktura", "agreements", "--db", empty, "--json" },
      { "efaktura", "agreements", "--db", empty, "--format", "json" },
      { "efaktura", "pending", "--db", empty, "--json" },
      { "customers", "list", "--db", empty, "--json" },
      { "efaktura", "history", "--db", empty, "--customer", "1", "--json" },
    }) do
      local out
      rc, out, err = H.run(words)
      assert.equal(0, rc, err)
      assert.equal("[]\n", out, table.concat(words, " "))
    end
    -- a process summary with nothing skipped and no warnings: [] for both; booleans present
    local req = H.write(dir .. "/one.xml", H.request{ records = { H.add("1000017", "j1==", "Kari Anne", "Nordmann") } })
    local out
    rc, out, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/one-resp.xml",
      "--json" })
    assert.equal(0, rc, err)
    assert.truthy(out:find('"skipped_records":[]', 1, true), out)
    assert.truthy(out:find('"warnings":[]', 1, true), out)
    assert.truthy(out:find('"replayed":false', 1, true), out)
    -- a valid file: errors [] and error null
    rc, out, err = H.run({ "efaktura", "validate", dir .. "/one-resp.xml", "--json" })
    assert.equal(0, rc, err)
    assert.truthy(out:find('"errors":[]', 1, true), out)
    assert.truthy(out:find('"error":null', 1, true), out)
    -- agreements: every key present (null when empty); no JSON inside strings
    local list = json_of(H.run({ "efaktura", "agreements", "--db", db, "--json" }))
    local keys = {}
    for k in pairs(list[1]) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({ "account", "answer", "created_at", "customer", "element", "id", "message", "provider", "reason",
      "status", "thor_user_id", "updated_at" }, keys)
    local h = json_of(H.run({ "efaktura", "history", "--db", db, tostring(list[1].id), "--json" }))
    for _, v in pairs(h.agreement) do
      if type(v) == "string" then assert.is_nil(v:match("^%s*[%[{]"), "JSON inside a string: " .. v) end
    end
  end)
end)
end
