-- giro efaktura process: the spec's cases, the response format, reminders, reruns,
-- crashes, encodings, bad files and bad records.  Expected texts and shapes come from the
-- seed (Nets "Påmelding i XML-format" v2.9) and its examples in spec/fixtures/efaktura;
-- schema validity is judged by xmllint, not by giro.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

local MSG = {  -- spec section 6.1, exact
  ["01"] = "Oppgitt efaktura referanse er ugyldig (se papirfaktura)",
  ["02"] = "Oppgitte personopplysninger er ikke i samsvar med Kunderegister (se papirfaktura)",
  ["03"] = "Det tilbys ikke efaktura for dette produktet",
}
local DECL = '<?xml version="1.0" encoding="iso-8859-1"?>'

local status_of, count_rows = H.status_of, H.count

-- The same assertions on each backend (SQLite; PostgreSQL where installed).
for _, B in ipairs(H.backends()) do
describe("giro efaktura process (" .. B.name .. ")", function()
  lazy_setup(function() H.use(B) end)
  lazy_teardown(function() H.done(B) end)
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  it("answers the spec's request example (3.3.1.1) in the shape of response example 5.3.1.1", function()
    local out = dir .. "/r.xml"
    local rc, stdout, err = H.run({ "efaktura", "process", H.FIXTURES .. "/spec_3.3.1.1_add.xml", "--biller", "default",
                                    "--db", db, "-o", out })
    assert.equal(0, rc, err)
    assert.equal("", stdout)
    local bytes = H.read(out)
    assert.equal(DECL, bytes:sub(1, #DECL))
    assert.is_true(H.xsd_valid(out))
    assert.equal(H.shape(H.FIXTURES .. "/spec_5.3.1.1_add_a.xml"), H.shape(out))
    local a = H.answers(out)
    assert.equal(1, #a)
    assert.same({ element = "EnrollmentAdd", BillerAccountNumber = "999", BillerEnrollmentStatus = "A", BillerReason = "",
      BillerMessage = "", ThorContentProviderId = "NOR999999999-1", ThorUserId = "defg876dfg876df68==",
      ThorUserSignature = "" }, a[1])
    -- empty elements written as the examples do; values in CDATA
    assert.truthy(bytes:find("<BillerReason/>", 1, true))
    assert.truthy(bytes:find("<BillerMessage/>", 1, true))
    assert.truthy(bytes:find("<ThorUserSignature/>", 1, true))
    assert.truthy(bytes:find("<Status/>", 1, true))
    assert.truthy(bytes:find("<ThorUserId><![CDATA[defg876dfg876df68==]]></ThorUserId>", 1, true))
    assert.truthy(bytes:find("<ServiceProviderName><![CDATA[8080]]></ServiceProviderName>", 1, true))
    assert.truthy(bytes:find("<ServiceProviderID><![CDATA[NOR999999999-1]]></ServiceProviderID>", 1, true))
  end)

  it("rejects with reasons 01, 02, 03 and the spec's exact messages (shape of 5.3.1.2)", function()
    local out = dir .. "/r.xml"
    local rc, _, err = H.process(dir, db, H.request{ records = {
      H.add("12345", "u1==", "Kari", "Nordmann"),                 -- no such customer
      H.add("1000017", "u2==", "Per", "Olsen"),                   -- wrong person
      H.add("1000033", "u3==", "Bjørn", "Sæther-Ødegård"),        -- product without eFaktura
      H.add("1000017", "u4==", "Kari", "Nordmann"),               -- fine
    } }, { "-o", out })
    assert.equal(0, rc, err)
    assert.is_true(H.xsd_valid(out))
    local a = H.answers(out)
    assert.equal(4, #a)
    assert.same({ "N", "01", MSG["01"], "12345" }, { a[1].BillerEnrollmentStatus, a[1].BillerReason, a[1].BillerMessage, a[1].BillerAccountNumber })
    assert.same({ "N", "02", MSG["02"] }, { a[2].BillerEnrollmentStatus, a[2].BillerReason, a[2].BillerMessage })
    assert.same({ "N", "03", MSG["03"] }, { a[3].BillerEnrollmentStatus, a[3].BillerReason, a[3].BillerMessage })
    assert.same({ "A", "", "" }, { a[4].BillerEnrollmentStatus, a[4].BillerReason, a[4].BillerMessage })
    -- one transaction per EnrollmentRS, each shaped like the spec's rejection example
    local one = dir .. "/one.xml"
    H.process(dir, db, H.request{ records = { H.add("12345", "u9==", "Kari", "Nordmann") } }, { "-o", one })
    assert.equal(H.shape(H.FIXTURES .. "/spec_5.3.1.2_add_n.xml"), H.shape(one))
    assert.equal("answered", status_of(db, "u1=="))
  end)

  it("case 2: a change for an active agreement is accepted, otherwise validated like a new one", function()
    local rc = H.process(dir, db, H.request{ records = { H.add("1000017", "act==", "Kari", "Nordmann") } }, { "-o", dir .. "/1.xml" })
    assert.equal(0, rc)
    H.process(dir, db, H.request{ records = { H.receipt("A", "1000017", "act==") } })
    assert.equal("active", status_of(db, "act=="))
    local out = dir .. "/2.xml"
    rc = H.process(dir, db, H.request{ records = {
      H.change("1000017", "act==", "Someone", "Else"),   -- active: accepted whatever the name
      H.change("1000017", "new==", "Someone", "Else"),   -- not active: validated -> 02
      H.change("1000025", "new2==", "Åse", "Østby"),     -- not active: validated -> A
    } }, { "-o", out })
    assert.equal(0, rc)
    assert.is_true(H.xsd_valid(out))
    local a = H.answers(out)
    assert.same({ "EnrollmentChange", "A" }, { a[1].element, a[1].BillerEnrollmentStatus })
    assert.same({ "EnrollmentChange", "N", "02" }, { a[2].element, a[2].BillerEnrollmentStatus, a[2].BillerReason })
    assert.same({ "EnrollmentChange", "A" }, { a[3].element, a[3].BillerEnrollmentStatus })
    assert.equal("active", status_of(db, "act=="))
    assert.equal("answered", status_of(db, "new2=="))
    local single = dir .. "/3.xml"
    H.process(dir, db, H.request{ records = { H.change("1000017", "x==", "No", "Body") } }, { "-o", single })
    assert.equal(H.shape(H.FIXTURES .. "/spec_5.3.2.2_change_n.xml"), H.shape(single))
  end)

  it("deletes and receipts update the register and get no response (4.1.3, 4.1.4)", function()
    H.process(dir, db, H.request{ records = {
      H.add("1000017", "a==", "Kari", "Nordmann"), H.add("1000025", "b==", "Åse", "Østby"),
      H.add("12345", "c==", "X", "Y"), H.add("1000017", "d==", "Kari", "Nordmann"),
    } }, { "-o", dir .. "/1.xml" })
    local out = dir .. "/2.xml"
    local rc, stdout, err = H.process(dir, db, H.request{ records = {
      H.receipt("A", "1000017", "a=="), H.receipt("A", "1000025", "b=="), H.receipt("N", "12345", "c=="),
      H.receipt("A", "1000017", "d=="),
    } }, { "-o", out })
    assert.equal(0, rc, err)
    assert.equal("", stdout)
    assert.is_false(H.exists(out))
    assert.truthy(err:find("no response file", 1, true))
    assert.equal("active", status_of(db, "a=="))
    assert.equal("rejected", status_of(db, "c=="))
    rc, stdout = H.process(dir, db, H.request{ records = {
      H.delete("1000017", "a=="), H.receipt("D", "1000017", "d=="), H.delete("777", "unknown=="),
    } })
    assert.equal(0, rc)
    assert.equal("", stdout)                      -- nothing on stdout either
    assert.equal("stopped", status_of(db, "a=="))
    assert.equal("stopped", status_of(db, "d=="))
    assert.equal("active", status_of(db, "b=="))
    assert.is_nil(status_of(db, "unknown=="))       -- a delete for an unknown agreement is ignored
    assert.equal(1, count_rows(db, "SELECT count(*) FROM history WHERE thor_user_id = 'unknown=='"))  -- but logged
  end)

  it("a reminder gets the same answer again and creates no duplicate state", function()
    local req = { records = { H.add("12345", "rem==", "Kari", "Nordmann"), H.add("1000017", "rem2==", "Kari", "Nordmann") } }
    H.process(dir, db, H.request(req), { "-o", dir .. "/1.xml" })
    -- the reminder arrives in a later file, with other records around it
    local out = dir .. "/2.xml"
    local rc = H.process(dir, db, H.request{ records = { H.add("1000025", "other==", "Åse", "Østby"), req.records[2],
      req.records[1] } }, { "-o", out })
    assert.equal(0, rc)
    local first, again = H.answers(dir .. "/1.xml"), H.answers(out)
    assert.same(first[1], again[3])
    assert.same(first[2], again[2])
    assert.equal(3, count_rows(db, "SELECT count(*) FROM agreements"))
    assert.equal(2, count_rows(db, "SELECT count(*) FROM history WHERE thor_user_id = 'rem==' "))
    assert.equal(1, count_rows(db, "SELECT count(*) FROM history WHERE thor_user_id = 'rem==' AND event = 'reminder'"))
  end)

  it("running the same file again writes the identical response and leaves the register as it was", function()
    local text = H.request{ records = { H.add("1000017", "i1==", "Kari", "Nordmann"), H.add("5", "i2==", "A", "B"),
      H.receipt("A", "1000025", "i3==") } }
    local req = H.write(dir .. "/req.xml", text)
    local rc1, out1 = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db })
    local before = H.dump(db)
    local rc2, out2, err2 = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db })
    assert.equal(0, rc1)
    assert.equal(0, rc2)
    assert.equal(out1, out2)
    assert.truthy(err2:find("already processed", 1, true))
    assert.equal(before, H.dump(db))
  end)

  for _, point in ipairs({ "after-batch", "after-validate", "after-commit", "after-deliver" }) do
    it("killed at " .. point .. " and run again: same response, same register", function()
      -- more records than one batch, so "after-batch" falls in the middle of the file
      local recs = {}
      for i = 1, 300 do
        recs[#recs + 1] = (i % 3 == 0) and H.receipt("A", "1000025", "k" .. i .. "==")
          or H.add(i % 2 == 0 and "1000017" or tostring(50000 + i), "k" .. i .. "==", "Kari", "Nordmann")
      end
      local text = H.request{ records = recs, per_rq = 40 }
      -- the reference run, never interrupted
      local ref_dir, ref_db = H.setup()
      local ref_out = ref_dir .. "/r.xml"
      local rc = H.run({ "efaktura", "process", H.write(ref_dir .. "/req.xml", text), "--biller", "default", "--db", ref_db,
                         "-o", ref_out })
      assert.equal(0, rc)
      -- the crashed run
      local req, out = H.write(dir .. "/req.xml", text), dir .. "/r.xml"
      local words = { "efaktura", "process", req, "--biller", "default", "--db", db, "-o", out }
      local crc = H.run(words, { GIRO_TEST_CRASH_AT = point })
      assert.is_true(crc ~= 0, "the crash hook did not fire")
      if point ~= "after-deliver" then assert.is_false(H.exists(out)) end
      rc = H.run(words)
      assert.equal(0, rc)
      assert.equal(H.read(ref_out), H.read(out))
      assert.equal(H.dump(ref_db), H.dump(db))
      assert.is_true(H.xsd_valid(out))
      H.rmdir(ref_dir)
    end)
  end

  it("reads ISO-8859-1, matches Æ/Ø/Å against the UTF-8 register and writes ISO-8859-1", function()
    local out = dir .. "/r.xml"
    local text = H.request{ records = { H.add("1000025", "enc==", "ÅSE MARIE", "ØSTBY") } }
    assert.truthy(text:find("\xC5SE MARIE", 1, true))     -- the request really is Latin-1
    local rc, _, err = H.process(dir, db, text, { "-o", out })
    assert.equal(0, rc, err)
    assert.equal("A", H.answers(out)[1].BillerEnrollmentStatus)
    -- a rule's own message with Latin-1 letters and a character outside Latin-1
    H.write(dir .. "/rule.lua", [[
      return { validate = function(request, customer)
        return { reason = "02", message = "Navnet må stå som på fakturaen – se kundenummer ø€" }
      end }]])
    local out2 = dir .. "/r2.xml"
    rc, _, err = H.run({ "efaktura", "process", H.write(dir .. "/q.xml", H.request{ records = { H.add("1000025", "enc2==", "X", "Y") } }),
                         "--biller", dir .. "/rule.lua", "--db", db, "-o", out2 })
    assert.equal(0, rc, err)
    local bytes = H.read(out2)
    assert.truthy(bytes:find("Navnet m\xE5 st\xE5 som p\xE5 fakturaen &#8211; se kundenummer \xF8&#8364;", 1, true)
      or bytes:find("Navnet m\xE5 st\xE5 som p\xE5 fakturaen ]]>&#8211;<![CDATA[ se kundenummer \xF8]]>&#8364;", 1, true), bytes)
    assert.is_nil(bytes:find("\xC3", 1, true))              -- no UTF-8 bytes
    assert.is_true(H.xsd_valid(out2))
    assert.equal("Navnet må stå som på fakturaen – se kundenummer ø€", H.answers(out2)[1].BillerMessage)
  end)

  it("echoes a 32-character BillerAccountNumber and a 35-character ThorUserId exactly, leading zeros and padding kept", function()
    local ban = "00000000000000000000000000001234"
    local uid = "abcdefghijklmnopqrstuvwxyz012345=="
    uid = uid .. "x"
    assert.equal(32, #ban)
    assert.equal(35, #uid)
    local out = dir .. "/r.xml"
    local rc = H.process(dir, db, H.request{ records = { H.add(ban, uid, "Ola", "Hansen"), H.add("0001234", "z==", "Ola", "Hansen") } },
      { "-o", out })
    assert.equal(0, rc)
    local a = H.answers(out)
    assert.equal(ban, a[1].BillerAccountNumber)
    assert.equal(uid, a[1].ThorUserId)
    assert.equal("01", a[1].BillerReason)              -- 000...1234 is not customer 0001234
    assert.equal("A", a[2].BillerEnrollmentStatus)     -- 0001234 is
  end)

  it("accepts request files shaped like the DTD and with several EnrollmentRQ", function()
    local out = dir .. "/r.xml"
    local text = H.request{ dtd_shape = true, per_rq = 1, records = { H.add("999", "d1==", "Fornavn", "Etternavn"),
      H.add("999", "d2==", "Fornavn", "Etternavn") } }
    assert.is_true(H.xsd_valid(H.write(dir .. "/in.xml", text), H.REQUEST_XSD))
    local rc, _, err = H.process(dir, db, text, { "-o", out })
    assert.equal(0, rc, err)
    assert.equal(2, #H.answers(out))
    assert.is_true(H.xsd_valid(out))
  end)

  it("skips a record that cannot be answered, reports its line, answers the rest", function()
    local bad1 = H.add("1000017", "m1==", "Kari", "Nordmann")
    bad1.omit = { ThorUserId = true }
    local bad2 = H.add(string.rep("1", 33), "m2==", "Kari", "Nordmann")
    local bad3 = { element = "EnrollmentAdd", status = "A", account = "1000017", user = "m3==" }
    local text = H.request{ records = { bad1, H.add("1000017", "ok==", "Kari", "Nordmann"), bad2, bad3 } }
    local out = dir .. "/r.xml"
    local rc, stdout, err = H.process(dir, db, text, { "-o", out, "--json" })
    assert.equal(0, rc, err)
    local s = cjson.decode(stdout)                    -- with -o the JSON summary is on stdout
    assert.equal(4, s.records)
    assert.equal(3, s.skipped)
    assert.equal(1, s.answers)
    assert.truthy(s.skipped_records[1].problem:find("ThorUserId", 1, true))
    assert.truthy(s.skipped_records[2].problem:find("33 characters", 1, true))
    assert.truthy(s.skipped_records[3].problem:find("BillerEnrollmentStatus", 1, true))
    -- the line is where that record's AccountInfoRecord starts in the file
    local line = 0
    local n = 0
    for l in text:gmatch("([^\n]*)\n") do
      n = n + 1
      if l:find("<AccountInfoRecord>", 1, true) and line == 0 then line = n end
    end
    assert.equal(line, math.tointeger(s.skipped_records[1].line))
    assert.equal(1, #H.answers(out))
    assert.is_nil(status_of(db, "m2=="))
    -- --strict refuses the whole file instead
    local before = H.dump(db)
    local out2 = dir .. "/r2.xml"
    rc, _, err = H.process(dir, db, H.request{ records = { bad2, H.add("1000017", "ok2==", "Kari", "Nordmann") } },
      { "-o", out2, "--strict" })
    assert.equal(1, rc)
    assert.truthy(err:find("%d+: BillerAccountNumber has 33 characters"))
    assert.is_false(H.exists(out2))
    assert.equal(before, H.dump(db))
  end)

  it("without -o writes the response to stdout and the JSON summary to stderr", function()
    local rc, stdout, err = H.process(dir, db, H.request{ records = { H.add("999", "s==", "Fornavn", "Etternavn") } }, { "--json" })
    assert.equal(0, rc)
    assert.equal(DECL, stdout:sub(1, #DECL))
    local s = cjson.decode(err)
    assert.equal("stdout", s.response)
    assert.equal(1, s.cases.add.accepted)
  end)

  local bad_files = {
    { "malformed XML", function(t) return (t:gsub("</Message>", "")) end, "" },
    { "wrong root", function(t) return (t:gsub("<Message>", "<Messages>"):gsub("</Message>", "</Messages>")) end, "expected <Message>" },
    { "a response file given as request", function() return H.read(H.FIXTURES .. "/spec_5.3.1.1_add_a.xml") end, "expected <Request>" },
    { "unknown sender", function(t) return (t:gsub("CDATA%[8080%]", "CDATA[9999]")) end, "expected THOR, 8080 or Thor" },
    { "a 13-character ServiceProviderID", function(t) return (t:gsub("CDATA%[NOR999999999%-1%]%]> </ServiceProviderID>", "CDATA[NOR99999999-1]]> </ServiceProviderID>")) end, "14 characters" },
    { "an unexpected element between records", function(t) return (t:gsub("<EnrollmentRQ>", "<EnrollmentRQ>\n<Surprise/>", 1)) end, "found <Surprise>" },
  }
  for _, case in ipairs(bad_files) do
    it("refuses a bad file (" .. case[1] .. ") with file:line, exit 1, no output, register unchanged", function()
      H.process(dir, db, H.request{ records = { H.add("999", "pre==", "Fornavn", "Etternavn") } }, { "-o", dir .. "/pre.xml" })
      local before = H.dump(db)
      local text = case[2](H.request{ records = { H.add("999", "b1==", "Fornavn", "Etternavn"), H.receipt("A", "999", "pre==") } })
      local req = H.write(dir .. "/bad.xml", text)
      local out = dir .. "/r.xml"
      local rc, stdout, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", out })
      assert.equal(1, rc, err)
      assert.equal("", stdout)
      assert.truthy(err:find(req:gsub("%p", "%%%0") .. ":%d+:"), err)
      assert.truthy(err:find(case[3], 1, true), err)
      assert.is_false(H.exists(out))
      assert.equal(before, H.dump(db))
    end)
  end

  it("a failing rule stops the whole file: exit 3, nothing written, register unchanged", function()
    H.write(dir .. "/rule.lua", [[
      return { validate = function(request, customer)
        if request.FirstName == "Boom" then error("cannot decide") end
        return { accept = true }
      end }]])
    local before = H.dump(db)
    local out = dir .. "/r.xml"
    local rc, _, err = H.run({ "efaktura", "process", H.write(dir .. "/q.xml", H.request{ records = {
      H.add("999", "f1==", "Ok", "Ok"), H.add("999", "f2==", "Boom", "X") } }),
      "--biller", dir .. "/rule.lua", "--db", db, "-o", out })
    assert.equal(3, rc)
    assert.truthy(err:find("rule.lua:%d+: cannot decide") or err:find("cannot decide", 1, true), err)
    assert.is_false(H.exists(out))
    assert.equal(before, H.dump(db))
  end)

  it("takes ServiceProviderName and the biller id from the rule; records for another biller are skipped", function()
    H.write(dir .. "/rule.lua", [[
      local default = { }
      return { id = "NOR999999999-1", options = { service_provider_name = "THOR" },
               validate = function(request, customer) return customer and "accept" or "01" end }]])
    local out = dir .. "/r.xml"
    local other = H.add("999", "o2==", "A", "B")
    other.provider = "NOR888888888-1"
    local rc, _, err = H.run({ "efaktura", "process", H.write(dir .. "/q.xml", H.request{ records = {
      H.add("999", "o1==", "A", "B"), other } }), "--biller", dir .. "/rule.lua", "--db", db, "-o", out })
    assert.equal(0, rc, err)
    assert.truthy(H.read(out):find("<ServiceProviderName><![CDATA[THOR]]></ServiceProviderName>", 1, true))
    assert.equal(1, #H.answers(out))
    assert.truthy(err:find('"NOR888888888-1" is not served', 1, true), err)
    assert.is_nil(status_of(db, "o2=="))
    assert.is_true(H.xsd_valid(out))
  end)

  it("request -> response -> receipt: the agreement becomes active and is listed", function()
    local out = dir .. "/r.xml"
    assert.equal(0, (H.process(dir, db, H.request{ records = { H.add("1000017", "flow==", "Kari", "Nordmann") } }, { "-o", out })))
    local a = H.answers(out)[1]
    assert.equal("A", a.BillerEnrollmentStatus)
    local rc, stdout = H.run({ "efaktura", "agreements", "--db", db, "--status", "active", "--json" })
    assert.equal(0, rc)
    assert.same({}, cjson.decode(stdout))
    -- Nets' receipt for exactly what we answered
    assert.equal(0, (H.process(dir, db, H.request{ records = { H.receipt("A", a.BillerAccountNumber, a.ThorUserId) } })))
    rc, stdout = H.run({ "efaktura", "agreements", "--db", db, "--status", "active", "--json" })
    local list = cjson.decode(stdout)
    assert.equal(1, #list)
    assert.same({ "flow==", "1000017", "1000017", "active" }, { list[1].thor_user_id, list[1].account, list[1].customer, list[1].status })
    rc, stdout = H.run({ "efaktura", "history", "--db", db, tostring(math.tointeger(list[1].id)), "--json" })
    assert.equal(0, rc)
    local h = cjson.decode(stdout).history
    assert.same({ "add", "receipt-A" }, { h[1].event, h[2].event })
    assert.same({ "answered", "active" }, { h[1].status_after, h[2].status_after })
  end)
  it("never writes a response that fails the response XSD (nothing written, register unchanged)", function()
    -- in-process, with a schema no answer can satisfy standing in for response.xsd
    local schemas = require("giro.efaktura.schemas")
    local strict = H.write(dir .. "/strict.xsd", (H.read(H.XSD):gsub('<xs:element name="BillerAccountNumber" type="xs:string"/>',
      '<xs:element name="BillerAccountNumber"><xs:simpleType><xs:restriction base="xs:string"><xs:pattern value="X"/></xs:restriction></xs:simpleType></xs:element>')))
    local real = schemas.path
    schemas.path = function(name) return name == "response.xsd" and strict or real(name) end
    local register = require("giro.efaktura.register")
    local reg = assert(register.open(db))
    local before = H.dump(db)
    local out = dir .. "/r.xml"
    local ok, s, err, code = pcall(require("giro.efaktura.process").run, {
      request = H.write(dir .. "/q.xml", H.request{ records = { H.add("999", "x==", "Fornavn", "Etternavn") } }),
      biller = assert(require("giro.efaktura.biller").load("default")), reg = reg, output = out })
    schemas.path = real
    reg:close()
    assert.is_true(ok, s)
    assert.is_nil(s)
    assert.equal("env", code)
    assert.truthy(err:find("failed validation", 1, true), err)
    assert.is_false(H.exists(out))
    assert.equal(before, H.dump(db))
    local leftovers = io.popen("ls -a " .. H.sh_quote(dir) .. " | grep -c giro-"):read("l")
    assert.equal("0", leftovers)
  end)

  it("the bench generator's files are valid requests, and their responses valid responses", function()
    local req, csvf = dir .. "/gen.xml", dir .. "/gen.csv"
    local p = io.popen(H.sh_quote(H.giro) .. " run bench/gen_efaktura.lua 600 " .. H.sh_quote(req) .. " --customers "
      .. H.sh_quote(csvf) .. " --seed 7 2>&1")
    p:read("a")
    p:close()
    assert.is_true(H.xsd_valid(req, H.REQUEST_XSD))
    local gdb = H.new_db(dir, "gen.db")
    assert.equal(0, (H.run({ "customers", "import", csvf, "--db", gdb })))
    local out = dir .. "/gen-r.xml"
    local rc, stdout, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", gdb, "-o", out, "--json" })
    assert.equal(0, rc, err)
    assert.is_true(H.xsd_valid(out))
    local s = cjson.decode(stdout)
    assert.equal(600, s.records)
    assert.equal(0, s.skipped)
    for _, case in ipairs({ "add", "change", "delete", "receipt-A" }) do assert.is_not_nil(next(s.cases[case]), case) end
    assert.is_not_nil(s.cases.add["answered again (reminder)"])
    assert.is_not_nil(s.cases.add["rejected 01"])
    assert.is_not_nil(s.cases.add["rejected 02"])
    assert.is_not_nil(s.cases.add.accepted)
  end)
  it("two giro processes on the same file and register: both succeed, the file is processed once", function()
    local recs = {}
    for i = 1, 400 do recs[i] = H.add(i % 2 == 0 and "1000017" or tostring(70000 + i), "c" .. i .. "==", "Kari", "Nordmann") end
    local req = H.write(dir .. "/req.xml", H.request{ records = recs })
    local cmd = H.sh_quote(H.giro) .. " efaktura process " .. H.sh_quote(req) .. " --biller default --db " .. H.sh_quote(db)
    local p = io.popen("(" .. cmd .. " -o " .. H.sh_quote(dir .. "/a.xml") .. " 2>/dev/null; echo a=$?) & ("
      .. cmd .. " -o " .. H.sh_quote(dir .. "/b.xml") .. " 2>/dev/null; echo b=$?) & wait")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("a=0", 1, true), out)
    assert.truthy(out:find("b=0", 1, true), out)
    assert.equal(H.read(dir .. "/a.xml"), H.read(dir .. "/b.xml"))
    assert.equal(1, count_rows(db, "SELECT count(*) FROM files"))
    assert.equal(400, count_rows(db, "SELECT count(*) FROM history"))
  end)
end)
end
