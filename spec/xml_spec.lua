-- giro.xml: streaming reader, record reading, validation and the writer.
-- Expected values come from the Nets eFaktura examples (seeds/002, spec digest §3-§5),
-- from the bytes of ISO-8859-1 / UTF-8 themselves, and from xmllint where noted.
local xml = require("giro.xml")

local FIX = "spec/fixtures/xml/"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

local function ls(dir)
  local p = assert(io.popen("ls -A " .. dir))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

local function rmdir(dir) os.execute("rm -rf " .. dir) end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- All events of a document as "event:name-or-value" strings.
-- xmllint's verdict (independent of giro): true, or false and its output
local function xmllint_valid(path, xsd)
  local p = assert(io.popen("xmllint --noout --schema '" .. xsd .. "' '" .. path .. "' 2>&1; echo rc=$?"))
  local out = p:read("a")
  p:close()
  return out:match("rc=0\n$") ~= nil, out
end

local function events(r)
  local out = {}
  while true do
    local ev, err = r:next()
    if not ev then
      assert(err == nil, err)
      return out
    end
    out[#out + 1] = ev .. ":" .. ((ev == "start" or ev == "end") and r:name() or r:value())
  end
end

-- An eFaktura request transaction as in the spec's example 3.3.1.1 (seed 002),
-- pretty-printed like the examples, with whitespace between tags and CDATA.
local REQUEST = table.concat({
  '<?xml version="1.0" encoding="iso-8859-1"?>',                               -- 1
  '<Message>',                                                                  -- 2
  '  <Request>',                                                                -- 3
  '    <FromInfo><ServiceProvider><ServiceProviderName> <![CDATA[8080]]> </ServiceProviderName></ServiceProvider></FromInfo>', -- 4
  '    <ToInfo><ServiceProvider><ServiceProviderID> <![CDATA[NOR999999999-1]]> </ServiceProviderID>', -- 5
  '      <ServiceID> <![CDATA[1]]> </ServiceID></ServiceProvider></ToInfo>',    -- 6
  '  </Request>',                                                               -- 7
  '  <EnrollmentRQ>',                                                           -- 8
  '    <EnrollmentAdd>',                                                        -- 9
  '      <AccountInfoRecord>',                                                  -- 10
  '        <PortalInfo> <PortalEnrollmentStatus> <![CDATA[A]]> </PortalEnrollmentStatus> </PortalInfo>', -- 11
  '        <BillerInfo>',                                                       -- 12
  '          <BillerAccountNumber> <![CDATA[999]]> </BillerAccountNumber>',     -- 13
  '          <BillerUserName />',                                               -- 14
  '          <BillerPassword />',                                               -- 15
  '          <BillerEnrollmentStatus> <![CDATA[P]]> </BillerEnrollmentStatus>', -- 16
  '        </BillerInfo>',                                                      -- 17
  '        <UserInfo>',                                                         -- 18
  '          <FirstName> <![CDATA[Fornavn]]> </FirstName>',                     -- 19
  '          <LastName> <![CDATA[Etternavn]]> </LastName>',                     -- 20
  '          <DayPhone />',                                                     -- 21
  '          <Email />',                                                        -- 22
  '          <UserAddress>',                                                    -- 23
  '            <Address1> <![CDATA[adr1]]> </Address1>',                        -- 24
  '            <Address2> <![CDATA[]]> </Address2>',                            -- 25
  '            <City> <![CDATA[Oslo]]> </City>',                                -- 26
  '            <State />',                                                      -- 27
  '            <PostalCode> <![CDATA[0045]]> </PostalCode>',                    -- 28
  '            <Country> <![CDATA[NO]]> </Country>',                            -- 29
  '          </UserAddress>',                                                   -- 30
  '        </UserInfo>',                                                        -- 31
  '        <ThorInfo>',                                                         -- 32
  '          <ThorContentProviderId> <![CDATA[NOR999999999-1]]> </ThorContentProviderId>', -- 33
  '          <ThorUserId> <![CDATA[defg876dfg876df68==]]> </ThorUserId>',       -- 34
  '        </ThorInfo>',                                                        -- 35
  '        <ThorUserKey/>',                                                     -- 36
  '      </AccountInfoRecord>',                                                 -- 37
  '    </EnrollmentAdd>',                                                       -- 38
  '  </EnrollmentRQ>',                                                          -- 39
  '</Message>',                                                                 -- 40
  '' }, "\n")

-- Move r to the next start of element `name`.
local function seek(r, name)
  while true do
    local ev, err = r:next()
    assert(ev, err or ("no <" .. name .. ">"))
    if ev == "start" and r:name() == name then return end
  end
end

describe("giro.xml reader", function()
  it("reports start/end/text/cdata, skips whitespace-only text, <X/> gives start and end", function()
    local r = assert(xml.from_string("<a>\n  <b> hi </b>\n  <c/>\n  <d><![CDATA[  x  ]]></d>\n</a>"))
    assert.same({ "start:a", "start:b", "text: hi ", "end:b", "start:c", "end:c",
                  "start:d", "cdata:  x  ", "end:d", "end:a" }, events(r))
    assert.is_nil(r:next())
  end)

  it("gives names, lines, depths, attributes and the declared encoding", function()
    local r = assert(xml.from_string('<?xml version="1.0" encoding="UTF-8"?>\n<a x="1 &amp; 2" y=\'&lt;&#65;\'>\n  <b/>\n</a>'))
    assert.equal("UTF-8", r:encoding())
    assert.equal("start", r:next())
    assert.equal("a", r:name())
    assert.equal(2, r:line())
    assert.equal(0, r:depth())
    assert.same({ x = "1 & 2", y = "<A" }, r:attributes())
    assert.equal("start", r:next())
    assert.equal("b", r:name())
    assert.equal(3, r:line())
    assert.equal(1, r:depth())
    assert.same({}, r:attributes())
  end)

  it("turns an ISO-8859-1 document into UTF-8 (æøå written as Latin-1 bytes)", function()
    local doc = '<?xml version="1.0" encoding="iso-8859-1"?>\n<r><n>Bl\xE6b\xE6r \xF8l p\xE5 \xC6r\xF8</n>'
      .. '<c><![CDATA[\xE6\xF8\xE5]]></c></r>'
    local dir = tmpdir()
    spit(dir .. "/latin1.xml", doc)
    local r = assert(xml.open(dir .. "/latin1.xml"))
    assert.equal("iso-8859-1", r:encoding())
    seek(r, "r")
    local fields = assert(r:read_record())
    assert.equal("Blæbær øl på Ærø", fields.n)
    assert.equal("\xC3\xA6\xC3\xB8\xC3\xA5", fields.c)
    r:close()
    rmdir(dir)
  end)

  it("keeps CDATA byte-exact and drops the whitespace around it (Nets examples)", function()
    local r = assert(xml.from_string("<R><ThorUserId> <![CDATA[abc==]]> </ThorUserId>"
      .. "<Name> <![CDATA[  x  ]]>\n</Name><Mixed>a<![CDATA[b]]>c</Mixed><E><![CDATA[]]></E></R>"))
    seek(r, "R")
    local f = assert(r:read_record())
    assert.equal("abc==", f.ThorUserId)
    assert.equal("  x  ", f.Name)
    assert.equal("abc", f.Mixed)
    assert.equal("", f.E)
  end)

  it("read_record returns the leaves of an AccountInfoRecord with their lines", function()
    local r = assert(xml.from_string(REQUEST, { name = "request.xml" }))
    seek(r, "Request")
    local header, hl, hn = assert(r:read_record())
    assert.same({ ServiceProviderName = "8080", ServiceProviderID = "NOR999999999-1", ServiceID = "1" }, header)
    assert.equal(3, hn)
    assert.equal(3, hl[0])
    assert.equal(6, hl.ServiceID)
    seek(r, "EnrollmentAdd")
    assert.equal(2, r:depth())
    seek(r, "AccountInfoRecord")
    local f, lines, n = assert(r:read_record())
    assert.equal(18, n)
    assert.same({
      PortalEnrollmentStatus = "A",
      BillerAccountNumber = "999", BillerUserName = "", BillerPassword = "", BillerEnrollmentStatus = "P",
      FirstName = "Fornavn", LastName = "Etternavn", DayPhone = "", Email = "",
      Address1 = "adr1", Address2 = "", City = "Oslo", State = "", PostalCode = "0045", Country = "NO",
      ThorContentProviderId = "NOR999999999-1", ThorUserId = "defg876dfg876df68==", ThorUserKey = "",
    }, f)
    for _, group in ipairs({ "PortalInfo", "BillerInfo", "UserInfo", "UserAddress", "ThorInfo", "AccountInfoRecord" }) do
      assert.is_nil(f[group])
    end
    assert.equal(10, lines[0])
    assert.equal(11, lines.PortalEnrollmentStatus)
    assert.equal(13, lines.BillerAccountNumber)
    assert.equal(14, lines.BillerUserName)
    assert.equal(28, lines.PostalCode)
    assert.equal(34, lines.ThorUserId)
    assert.equal(36, lines.ThorUserKey)
    -- positioned on the record's end tag; the stream continues after it
    assert.equal("AccountInfoRecord", r:name())
    assert.same({ "end:EnrollmentAdd", "end:EnrollmentRQ", "end:Message" }, events(r))
  end)

  it("reads many records from a file, one call each", function()
    local dir = tmpdir()
    local parts = { '<?xml version="1.0" encoding="iso-8859-1"?>\n<Message>\n' }
    for i = 1, 500 do
      parts[#parts + 1] = ("<Rec><No><![CDATA[%d]]></No><Name>N\xE6vn %d</Name></Rec>\n"):format(i, i)
    end
    parts[#parts + 1] = "</Message>\n"
    spit(dir .. "/many.xml", table.concat(parts))
    local r = assert(xml.open(dir .. "/many.xml"))
    local n = 0
    while true do
      local ev, err = r:next()
      assert.is_nil(err)
      if not ev then break end
      if ev == "start" and r:name() == "Rec" then
        local f, lines = assert(r:read_record())
        n = n + 1
        assert.equal(tostring(n), f.No)
        assert.equal("Nævn " .. n, f.Name)
        assert.equal(n + 2, lines[0])
      end
    end
    assert.equal(500, n)
    rmdir(dir)
  end)

  it("refuses a leaf repeated inside one record", function()
    local r = assert(xml.from_string("<R>\n<A>1</A>\n<G><A>2</A></G>\n</R>", { name = "dup.xml" }))
    seek(r, "R")
    local f, err = r:read_record()
    assert.is_nil(f)
    assert.equal("dup.xml:3: element <A> repeated in <R>", err)
  end)

  describe("next_record with a record_spec", function()
    -- Character counts are those of the characters written in the documents below (æ, ø, é
    -- are one character, two bytes of UTF-8 each).
    local SPEC = xml.record_spec{
      record = "Rec", wrappers = { "Add", "Del" }, leaves = { "Id", "Name", "Note" }, required = true,
      chars = { { "Id", min = 1, max = 3 }, { "Name", max = 4, trim = true }, { "Name", min = 1 } },
    }
    local function reader(body)
      local r = assert(xml.from_string("<M>\n" .. body .. "\n</M>", { name = "s.xml" }))
      assert.equal("start", r:next())
      return r
    end

    it("reads a wrapped record in one call and says which wrapper held it", function()
      local r = reader("<Add>\n <Rec>\n  <Id>1</Id><Name> Blåb </Name>\n  <Note/>\n </Rec>\n</Add>\n<Del><Rec><Id>22</Id><Name>x</Name><Note>n</Note></Rec></Del>")
      assert.same({ { Id = "1", Name = " Blåb ", Note = "" }, 3, 1 }, { r:next_record(SPEC) })
      assert.equal("Add", r:name())   -- the reader sits on the wrapper's end tag
      assert.same({ { Id = "22", Name = "x", Note = "n" }, 8, 2 }, { r:next_record(SPEC) })
      -- then the next event is not a record: false, the event, stage 0; the reader sits on it
      assert.same({ false, "end", 0, 0 }, { r:next_record(SPEC) })
      assert.equal("M", r:name())
      assert.same({ false, "eof", 0, 0 }, { r:next_record(SPEC) })
    end)

    it("reports the first problem: a missing leaf, an unknown one, a count outside a rule", function()
      local r = reader("<Add><Rec><Id>1</Id><Note/></Rec></Add>\n"
        .. "<Add><Rec><Id>1</Id><Name>n</Name><X>?</X><Note/></Rec></Add>\n"
        .. "<Add><Rec>\n<Id>1234</Id><Name>n</Name><Note/></Rec></Add>\n"
        .. "<Add><Rec><Id>é</Id><Name> øøøøø </Name><Note/></Rec></Add>\n"
        .. "<Add><Rec><Id>é</Id><Name>  øøøø  </Name><Note/></Rec></Add>\n"
        .. "<Add><Rec><Id>1</Id><Name></Name><Note/></Rec></Add>")
      local f, line, w, p = r:next_record(SPEC)
      assert.same({ { Id = "1", Note = "" }, 2, 1, { kind = "missing", leaf = "Name" } }, { f, line, w, p })
      f, line, w, p = r:next_record(SPEC)
      assert.same({ kind = "unknown", leaf = "X", line = 3 }, p)
      assert.equal("?", f.X)
      f, line, w, p = r:next_record(SPEC)
      assert.same({ kind = "chars", rule = 1, leaf = "Id", line = 5, count = 4 }, p)
      f, line, w, p = r:next_record(SPEC)
      assert.same({ kind = "chars", rule = 2, leaf = "Name", line = 6, count = 5 }, p)
      f, line, w, p = r:next_record(SPEC)
      assert.is_nil(p)            -- four characters once trimmed; é is one character
      assert.equal("  øøøø  ", f.Name)
      f, line, w, p = r:next_record(SPEC)
      assert.same({ kind = "chars", rule = 3, leaf = "Name", line = 8, count = 0 }, p)
    end)

    it("stops where the wrapping breaks: stage 1 inside a wrapper, stage 2 after its record", function()
      local r = reader("<Add>\n<Other/></Add>")
      assert.same({ false, "start", 1, 1 }, { r:next_record(SPEC) })
      assert.equal("Other", r:name())
      assert.equal(3, r:line())
      r = reader("<Del>text<Rec/></Del>")
      assert.same({ false, "text", 1, 2 }, { r:next_record(SPEC) })
      assert.equal("text", r:value())
      r = reader("<Add><Rec><Id>1</Id><Name>n</Name><Note/></Rec><Rec/></Add>")
      assert.same({ false, "start", 2, 1 }, { r:next_record(SPEC) })
      assert.equal("Rec", r:name())
      r = reader("<Rec/>")
      assert.same({ false, "start", 0, 0 }, { r:next_record(SPEC) })
      assert.equal("Rec", r:name())
    end)

    it("without wrappers reads the record element itself; errors as read_record", function()
      local bare = xml.record_spec{ record = "Rec" }
      local r = reader("<Rec><A>1</A><B><C>2</C></B></Rec>\n<Rec><A>1</A>\n<A>2</A></Rec>")
      assert.same({ { A = "1", C = "2" }, 2, 0 }, { r:next_record(bare) })
      assert.same({ nil, "s.xml:4: element <A> repeated in <Rec>" }, { r:next_record(bare) })
      r = assert(xml.from_string("<M>\n<Rec><A>1</B></Rec></M>", { name = "b.xml" }))
      r:next()
      local f, msg = r:next_record(bare)
      assert.is_nil(f)
      assert.matches("^b.xml:2: Opening and ending tag mismatch: A line 2 and B", msg)
    end)

    it("refuses a malformed spec", function()
      assert.has_error(function() xml.record_spec{} end)
      assert.has_error(function() xml.record_spec{ record = "R", required = true } end)
      assert.has_error(function() xml.record_spec{ record = "R", leaves = { "A", "A" } } end,
        "giro.xml: record_spec: leaf A listed twice")
      -- a wrapper listed twice could never be reported by its second index
      assert.has_error(function() xml.record_spec{ record = "R", wrappers = { "W", "W" } } end,
        "giro.xml: record_spec: wrapper W listed twice")
      assert.has_error(function() xml.record_spec{ record = "R", leaves = { "A" }, chars = { { "B", max = 1 } } } end)
      assert.has_error(function() xml.from_string("<a/>"):next_record({}) end)
    end)
  end)

  it("read_record must follow a start event", function()
    local r = assert(xml.from_string("<a>x</a>"))
    assert.has_error(function() r:read_record() end)
  end)

  it("reports malformed XML as FILE:LINE: message, also inside a record", function()
    local r = assert(xml.from_string("<a>\n<b>\n</a>\n", { name = "bad.xml" }))
    local ev, err
    repeat ev, err = r:next() until not ev
    assert.equal("bad.xml:3: Opening and ending tag mismatch: b line 2 and a", err)
    -- the error is sticky
    assert.same({ nil, err }, { r:next() })

    r = assert(xml.from_string("<M>\n<R>\n<A>1</A>\n<B>2</C>\n</R></M>", { name = "rec.xml" }))
    seek(r, "R")
    local f, msg = r:read_record()
    assert.is_nil(f)
    assert.matches("^rec.xml:4: Opening and ending tag mismatch: B line 4 and C", msg)

    r = assert(xml.from_string("<a>\n<b>x", { name = "cut.xml" }))
    repeat ev, err = r:next() until not ev
    assert.equal("cut.xml:2: premature end of document: <b> is not closed", err)

    r = assert(xml.from_string("", { name = "empty.xml" }))
    assert.same({ nil, "empty.xml:1: document is empty" }, { r:next() })
  end)

  it("names a missing file", function()
    local r, err = xml.open("/nonexistent/dir/in.xml")
    assert.is_nil(r)
    assert.equal("/nonexistent/dir/in.xml: cannot open: No such file or directory", err)
    r, err = xml.open("/nonexistent/dir/in.xml", { name = "upload 7" })
    assert.equal("upload 7: cannot open: No such file or directory", err)
  end)

  it("refuses XXE: the entity is never expanded and /etc/passwd never shows up", function()
    local passwd = slurp("/etc/passwd")
    local first = passwd:match("^[^:\n]+")      -- e.g. "root"
    local doc = '<?xml version="1.0"?>\n<!DOCTYPE r [\n  <!ENTITY x SYSTEM "file:///etc/passwd">\n]>\n<r><v>&x;</v></r>\n'
    local seen = {}
    local r = assert(xml.from_string(doc, { name = "xxe.xml" }))
    local ev, err
    repeat
      ev, err = r:next()
      if ev == "text" or ev == "cdata" then seen[#seen + 1] = r:value() end
    until not ev
    assert.equal("xxe.xml:3: entity declarations are not allowed (<!ENTITY x>)", err)
    assert.same({}, seen)
    assert.is_nil(err:find(first, 1, true))
    -- validation and a file source take the same path
    local ok, errors = xml.validate({ string = doc, name = "xxe.xml" }, { xsd = FIX .. "record.xsd" })
    assert.is_nil(ok)
    assert.equal(err, errors.text)
    local dir = tmpdir()
    spit(dir .. "/xxe.xml", doc)
    r = assert(xml.open(dir .. "/xxe.xml", { name = "xxe.xml" }))
    assert.same({ nil, err }, { r:next() })
    rmdir(dir)
  end)

  it("refuses an external DTD subset and parameter entities", function()
    local r = assert(xml.from_string('<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd">\n<r/>', { name = "ext.xml" }))
    assert.same({ nil, "ext.xml:1: external DTD subsets are not allowed (<!DOCTYPE r http://127.0.0.1:9/x.dtd>)" },
      { r:next() })
    r = assert(xml.from_string('<!DOCTYPE r [\n<!ENTITY % p SYSTEM "file:///etc/passwd">\n%p;\n]><r/>', { name = "pe.xml" }))
    assert.same({ nil, "pe.xml:2: entity declarations are not allowed (<!ENTITY p>)" }, { r:next() })
    -- a DOCTYPE with element declarations only is fine; undeclared entities are errors
    r = assert(xml.from_string('<!DOCTYPE r [<!ELEMENT r (#PCDATA)>]><r>ok</r>'))
    assert.same({ "start:r", "text:ok", "end:r" }, events(r))
    r = assert(xml.from_string('<r>&nbsp;</r>', { name = "u.xml" }))
    assert.equal("start", r:next())
    assert.same({ nil, "u.xml:1: Entity 'nbsp' not defined" }, { r:next() })
  end)

  it("refuses billion laughs at the first declaration", function()
    local lines = { '<?xml version="1.0"?>', "<!DOCTYPE lolz [", ' <!ENTITY lol "lol">' }
    for i = 1, 9 do
      lines[#lines + 1] = (' <!ENTITY lol%d "%s">'):format(i, string.rep(i == 1 and "&lol;" or ("&lol" .. (i - 1) .. ";"), 10))
    end
    lines[#lines + 1] = "]>"
    lines[#lines + 1] = "<lolz>&lol9;</lolz>"
    local r = assert(xml.from_string(table.concat(lines, "\n"), { name = "lol.xml" }))
    local seen = 0
    local ev, err
    repeat
      ev, err = r:next()
      if ev == "text" then seen = seen + #r:value() end
    until not ev
    assert.equal("lol.xml:3: entity declarations are not allowed (<!ENTITY lol>)", err)
    assert.equal(0, seen)
  end)

  it("reports bytes that are not valid in the declared encoding", function()
    local r = assert(xml.from_string('<r>\xFF</r>', { name = "u8.xml" }))
    assert.equal("start", r:next())
    local _, err = r:next()
    assert.matches("^u8.xml:1: Input is not proper UTF%-8", err)
    r = assert(xml.from_string('<?xml version="1.0" encoding="windows-1252"?><r>\x81</r>', { name = "cp.xml" }))
    local ev
    repeat ev, err = r:next() until not ev
    assert.equal("cp.xml: input is not valid windows-1252", err)
  end)

  it("close is idempotent; a closed reader raises; to-be-closed works", function()
    local r = assert(xml.from_string("<a/>"))
    r:close()
    r:close()
    assert.has_error(function() r:next() end)
    do
      local r2 <close> = assert(xml.from_string("<a/>"))
      assert.equal("start", r2:next())
    end
  end)
end)

describe("giro.xml.validate", function()
  it("accepts a valid document against our XSD", function()
    assert.is_true(xml.validate({ path = FIX .. "valid.xml" }, { xsd = FIX .. "record.xsd" }))
    assert.is_true(xml.validate({ string = slurp(FIX .. "valid.xml") }, { xsd_string = slurp(FIX .. "record.xsd") }))
  end)

  -- Lines and findings as reported by `xmllint --schema` on invalid.xml.
  it("XSD: every error with its line", function()
    local ok, errors = xml.validate({ path = FIX .. "invalid.xml" }, { xsd = FIX .. "record.xsd" })
    assert.is_nil(ok)
    local lines = {}
    for i, e in ipairs(errors) do lines[i] = e.line end
    assert.same({ 2, 5, 7, 8, 13 }, lines)
    assert.matches("attribute 'version' is required", errors[1].message)
    assert.matches("The value 'P' is not accepted by the pattern 'A|N'", errors[2].message, 1, true)
    assert.matches("'delete' is not an element of the set", errors[3].message)
    assert.matches("Element 'Surprise': This element is not expected", errors[5].message)
    local text = {}
    for l in errors.text:gmatch("[^\n]+") do text[#text + 1] = l end
    assert.equal(5, #text)
    assert.equal(FIX .. "invalid.xml:2: " .. errors[1].message, text[1])
  end)

  it("reports a malformed document, a missing file and a broken schema", function()
    local ok, errors = xml.validate({ string = "<Message version='1'>\n<Record>\n</Message>", name = "m.xml" },
      { xsd = FIX .. "record.xsd" })
    assert.is_nil(ok)
    assert.equal("m.xml:3: Opening and ending tag mismatch: Record line 2 and Message", errors[#errors].message
      and ("m.xml:" .. errors[#errors].line .. ": " .. errors[#errors].message))
    ok, errors = xml.validate({ path = "/nonexistent.xml" }, { xsd = FIX .. "record.xsd" })
    assert.is_nil(ok)
    assert.equal("/nonexistent.xml: cannot open: No such file or directory", errors.text)
    ok, errors = xml.validate({ path = FIX .. "valid.xml" },
      { xsd_string = "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element name='x' type='nope'/></xs:schema>" })
    assert.is_nil(ok)
    assert.matches("^<xsd>:1: .*'nope' does not resolve", errors.text)
    assert.has_error(function() xml.validate({ path = "x" }, {}) end)
    assert.has_error(function() xml.validate({}, { xsd = "x" }) end)
    -- DTD validation is gone: a DTD schema is a programmer error
    assert.has_error(function() xml.validate({ path = FIX .. "valid.xml" }, { dtd = FIX .. "valid.xml" }) end)
  end)
end)

describe("giro.xml.writer", function()
  it("writes ISO-8859-1 bytes with the Nets declaration", function()
    local w = xml.writer{ encoding = "ISO-8859-1" }
    w:start("Message"):leaf("Name", "Blæbær øl på Ærø & <Co>"):leaf_cdata("Id", "abc=="):finish()
    local s = w:tostring()
    assert.equal('<?xml version="1.0" encoding="iso-8859-1"?>\n<Message><Name>Bl\xE6b\xE6r \xF8l p\xE5 \xC6r\xF8'
      .. ' &amp; &lt;Co&gt;</Name><Id><![CDATA[abc==]]></Id></Message>\n', s)
    assert.equal(s, w:tostring())
  end)

  it("writes UTF-8 unchanged, escapes attributes, sorts them, indents", function()
    local w = xml.writer{ encoding = "UTF-8", indent = true }
    w:start("a", { z = "1", b = 'x"<&\n' }):start("b"):leaf("c", "æ"):empty("d", { k = 2 }):finish()
     :leaf("e"):leaf_cdata("f", ""):finish()
    assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<a b="x&quot;&lt;&amp;&#10;" z="1">\n  <b>\n'
      .. '    <c>æ</c>\n    <d k="2"/>\n  </b>\n  <e/>\n  <f/>\n</a>\n', w:tostring())
  end)

  it("moves a character ISO-8859-1 cannot hold out of the CDATA section and splits ]]>", function()
    local w = xml.writer{ encoding = "ISO-8859-1" }
    w:start("r"):leaf_cdata("Name", "Zoë Łukasz"):leaf_cdata("T", "a]]>b"):leaf("P", "Łódź"):finish()
    local s = w:tostring()
    assert.equal('<?xml version="1.0" encoding="iso-8859-1"?>\n<r><Name><![CDATA[Zo\xEB ]]>&#321;<![CDATA[ukasz]]></Name>'
      .. '<T><![CDATA[a]]]]><![CDATA[>b]]></T><P>&#321;\xF3d&#378;</P></r>\n', s)
    -- and the reader gives the original text back
    local r = assert(xml.from_string(s))
    seek(r, "r")
    local f = assert(r:read_record())
    assert.same({ Name = "Zoë Łukasz", T = "a]]>b", P = "Łódź" }, f)
    -- xmllint agrees that the document is well-formed and means the same
    local dir = tmpdir()
    spit(dir .. "/w.xml", s)
    local p = assert(io.popen("xmllint --encode UTF-8 --xpath 'string(/r/Name)' " .. dir .. "/w.xml"))
    assert.equal("Zoë Łukasz", (p:read("a"):gsub("\n$", "")))
    p:close()
    rmdir(dir)
  end)

  it("raises on misuse and on bad text", function()
    local w = xml.writer{}
    assert.has_error(function() w:finish() end)
    assert.has_error(function() w:text("outside") end)
    assert.has_error(function() w:start("bad name") end)
    w:start("a")
    assert.has_error(function() w:text("bad \xFF utf8") end, "giro.xml: invalid UTF-8 in text at byte 5")
    assert.has_error(function() w:leaf_cdata("x", "\xC3") end)
    assert.has_error(function() w:text("bell \7") end, "giro.xml: character U+0007 at byte 6 of text is not allowed in XML 1.0 (it cannot be written, not even as a character reference)")
    assert.has_error(function() w:start("b", { ["1x"] = "v" }) end)
    w:finish()
    assert.has_error(function() w:start("second") end)
    assert.has_error(function() w:commit() end)
    assert.has_error(function() xml.writer{ encoding = "KOI8-R" } end)
    w:tostring()
    assert.has_error(function() w:leaf("late", "x") end)
    assert.has_error(function() xml.writer{}:tostring() end)
  end)

  it("escape", function()
    assert.equal("a &amp; &lt;b&gt; &quot;c&quot; æ", xml.escape('a & <b> "c" æ'))
  end)
end)

describe("giro.xml.writer on a giro.output temporary file", function()
  local output = require("giro.output")
  local function write_doc(w, status)
    w:start("Message", { version = "1" }):start("Record")
      :leaf_cdata("BillerAccountNumber", "999"):leaf_cdata("BillerEnrollmentStatus", status)
      :finish():finish()
  end
  local function open_writer(path, opts)
    local target = assert(output.target(path))
    local t = assert(target:open())
    local o = { fd = t:fd(), path = t:path(), name = path }
    for k, v in pairs(opts or {}) do o[k] = v end
    return assert(xml.writer(o)), target, t
  end

  it("shows nothing at path until the target commits, then the whole file", function()
    local dir = tmpdir()
    local path = dir .. "/out.xml"
    local w, target = open_writer(path, { encoding = "ISO-8859-1" })
    write_doc(w, "A")
    assert.is_nil(io.open(path, "rb"))
    assert.is_true(w:commit({ xsd = FIX .. "record.xsd" }))
    assert.is_nil(io.open(path, "rb"))
    assert.is_true(target:commit())
    assert.same({ "out.xml" }, ls(dir))
    assert.equal('<?xml version="1.0" encoding="iso-8859-1"?>\n<Message version="1"><Record>'
      .. '<BillerAccountNumber><![CDATA[999]]></BillerAccountNumber>'
      .. '<BillerEnrollmentStatus><![CDATA[A]]></BillerEnrollmentStatus></Record></Message>\n', slurp(path))
    assert.has_error(function() w:commit() end)
    rmdir(dir)
  end)

  it("failed validation names the output path; aborting leaves no temp and an existing file untouched", function()
    local dir = tmpdir()
    local path = dir .. "/out.xml"
    local w, target = open_writer(path)
    write_doc(w, "P")
    local ok, errors = w:commit({ xsd = FIX .. "record.xsd" })
    assert.is_nil(ok)
    assert.equal(1, #errors)
    assert.equal(2, errors[1].line)
    assert.matches("^" .. path:gsub("%p", "%%%0") .. ":2: Element 'BillerEnrollmentStatus'", errors.text)
    target:abort()
    assert.same({}, ls(dir))

    spit(path, "previous")
    w, target = open_writer(path)
    write_doc(w, "P")
    assert.is_nil((w:commit({ xsd = FIX .. "record.xsd" })))
    target:abort()
    assert.same({ "out.xml" }, ls(dir))
    assert.equal("previous", slurp(path))
    rmdir(dir)
  end)

  it("abort, close and garbage collection leave nothing behind", function()
    local dir = tmpdir()
    local w, target = open_writer(dir .. "/a.xml")
    write_doc(w, "A")
    assert.equal(1, #ls(dir))           -- the temp file, while writing
    assert.is_true(w:abort())
    target:abort()
    assert.same({}, ls(dir))
    assert.has_error(function() w:leaf("x", "y") end)
    do
      local w2_, t2_ = open_writer(dir .. "/b.xml")
      local t2 <close> = t2_
      local w2 <close> = w2_
      write_doc(w2, "A")
    end
    assert.same({}, ls(dir))
    do
      local w3 = open_writer(dir .. "/c.xml")
      w3:start("x")
    end
    collectgarbage()
    collectgarbage()
    assert.same({}, ls(dir))
    rmdir(dir)
  end)

  it("refuses a path without a file descriptor (files are giro.output's)", function()
    assert.has_error(function() xml.writer{ path = "/tmp/out.xml" } end,
      "giro.xml: writer: a path needs fd (files are opened by giro.output)")
  end)

  describe("with the schema given to xml.writer (the XSD check on a second thread)", function()
    -- indent = true puts every element on a line of its own: line 1 is the declaration, line
    -- 2 <Message>, and record i (five lines) starts at line 3 + 5 (i - 1), its status two
    -- lines further down.
    local function write_records(w, n, bad)
      w:start("Message", { version = "1" })
      for i = 1, n do
        w:start("Record"):leaf_cdata("BillerAccountNumber", tostring(i))
          :leaf_cdata("BillerEnrollmentStatus", bad[i] or "N"):leaf("BillerReason", "Øre " .. i):finish()
      end
    end

    it("accepts a valid document of many queue-fulls and commits it", function()
      local dir = tmpdir()
      local path = dir .. "/big.xml"
      local w, target = open_writer(path, { encoding = "ISO-8859-1", indent = true, schema = { xsd = FIX .. "record.xsd" } })
      write_records(w, 20000, {})
      assert.is_true(w:commit())
      assert.is_true(target:commit())
      assert.is_true(#slurp(path) > 2 * 1024 * 1024)      -- more than the check's queue holds
      assert.is_true(xmllint_valid(path, FIX .. "record.xsd"))   -- judged by xmllint, not giro
      rmdir(dir)
    end)

    it("reports every finding with its line, as validating the file read back does", function()
      local dir = tmpdir()
      local path = dir .. "/bad.xml"
      local w, target, tmp = open_writer(path, { indent = true, schema = { xsd = FIX .. "record.xsd" } })
      write_records(w, 20000, { [2] = "P", [19999] = "x" })
      local ok, errors = w:commit()
      assert.is_nil(ok)
      assert.same({ 10, 99995 }, { errors[1].line, errors[2].line })
      assert.equal(2, #errors)
      assert.matches("The value 'P' is not accepted by the pattern 'A|N'", errors[1].message, 1, true)
      assert.matches("The value 'x' is not accepted by the pattern 'A|N'", errors[2].message, 1, true)
      assert.equal(path .. ":10: " .. errors[1].message .. "\n" .. path .. ":99995: " .. errors[2].message, errors.text)
      -- the same as xml.validate on the bytes written
      local _, again = xml.validate({ path = tmp:path(), name = path }, { xsd = FIX .. "record.xsd" })
      assert.equal(errors.text, again.text)
      -- and xmllint finds the same two (its own line numbers stop at 65535, libxml2's
      -- short line field without XML_PARSE_BIG_LINES: the second line is by hand above)
      local valid, out = xmllint_valid(tmp:path(), FIX .. "record.xsd")
      assert.is_false(valid)
      local _, nerr = out:gsub("Schemas validity error", "")
      assert.equal(2, nerr)
      assert.matches(":10: .*The value 'P' is not accepted by the pattern 'A|N'", out)
      assert.matches("The value 'x' is not accepted by the pattern 'A|N'", out)
      target:abort()
      assert.same({}, ls(dir))
      rmdir(dir)
    end)

    it("a schema that does not load is reported by commit, named after the schema", function()
      local dir = tmpdir()
      local w, target = open_writer(dir .. "/x.xml", { schema = { xsd_string = "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element name='x' type='nope'/></xs:schema>" } })
      write_doc(w, "A")
      local ok, errors = w:commit()
      assert.is_nil(ok)
      assert.matches("^<xsd>:1: .*'nope' does not resolve", errors.text)
      target:abort()
      rmdir(dir)
    end)

    it("abort, close and garbage collection stop the check at any point", function()
      local dir = tmpdir()
      for _, stop in ipairs({ "abort", "close", "gc" }) do
        local w, target = open_writer(dir .. "/a.xml", { schema = { xsd = FIX .. "record.xsd" } })
        write_records(w, 30000, {})         -- the check is behind: the queue is full
        if stop == "abort" then
          assert.is_true(w:abort())
          assert.has_error(function() w:commit() end)
        elseif stop == "close" then
          local wc <close> = w
        else
          w = nil
          collectgarbage()
          collectgarbage()
        end
        target:abort()
        assert.same({}, ls(dir))
      end
      rmdir(dir)
    end)

    it("refuses a second schema at commit and a schema without a file", function()
      local dir = tmpdir()
      local w, target = open_writer(dir .. "/x.xml", { schema = { xsd = FIX .. "record.xsd" } })
      write_doc(w, "A")
      assert.has_error(function() w:commit({ xsd = FIX .. "record.xsd" }) end,
        "giro.xml: commit: this writer checks against the schema given to xml.writer")
      assert.is_true(w:commit())
      target:abort()
      assert.has_error(function() xml.writer{ schema = { xsd = FIX .. "record.xsd" } } end,
        "giro.xml: writer: a schema needs fd (the check runs beside the file's writing)")
      assert.has_error(function() open_writer(dir .. "/y.xml", { schema = {} }) end)
      rmdir(dir)
    end)
  end)

  it("streams a large document to disk and validates it on commit", function()
    local dir = tmpdir()
    local path = dir .. "/big.xml"
    local w, target = open_writer(path, { encoding = "ISO-8859-1", indent = true })
    w:start("Message", { version = "1" })
    for i = 1, 20000 do
      w:start("Record"):leaf_cdata("BillerAccountNumber", tostring(i)):leaf_cdata("BillerEnrollmentStatus", "N")
        :leaf("BillerReason", "Øre " .. i):finish()
    end
    assert.is_true(w:commit({ xsd = FIX .. "record.xsd" }))
    assert.is_true(target:commit())
    local r = assert(xml.open(path))
    local n = 0
    while true do
      local ev, err = r:next()
      assert.is_nil(err)
      if not ev then break end
      if ev == "start" and r:name() == "Record" then
        local f = assert(r:read_record())
        n = n + 1
        assert.equal("Øre " .. n, f.BillerReason)
      end
    end
    assert.equal(20000, n)
    assert.same({ "big.xml" }, ls(dir))
    rmdir(dir)
  end)
end)
