-- giro.xml: what a leaf's value is, its limits, and writer output that reads back exactly.
-- Regression specs for issue 9 items 4c and 9 (found by fuzzing, see docs/fuzzing.md).
-- Expected values are xmllint's string() of the same document (libxml2's own tree, an
-- independent route from giro's SAX reader), or written out by hand from the XML 1.0 rules.
local xml = require("giro.xml")

local function tmpfile(s)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

-- xmllint's string value of an XPath expression over document s
local function xmllint(s, xpath)
  local path = tmpfile(s)
  local p = assert(io.popen("xmllint --encode UTF-8 --xpath 'string(" .. xpath .. ")' " .. path .. " 2>/dev/null"))
  local out = p:read("a"):gsub("\n$", "")   -- xmllint ends its output with a newline
  p:close()
  os.remove(path)
  return out
end

local function record(s)
  local r = assert(xml.from_string(s))
  local ev
  repeat ev = assert(r:next()) until ev == "start"
  return r:read_record()
end

describe("giro.xml leaf values", function()
  it("an empty CDATA section as a leaf's first text reads as empty (was a memcpy into NULL under UBSan)", function()
    local f = assert(record("<R><ServiceProviderName><![CDATA[]]></ServiceProviderName><X><![CDATA[]]>a</X></R>"))
    assert.equal("", f.ServiceProviderName)
    assert.equal("a", f.X)
    assert.equal("", xmllint("<R><S><![CDATA[]]></S></R>", "/R/S"))
  end)

  it("keeps whitespace written between two CDATA sections of one leaf, as xmllint does", function()
    local doc = "<R><FirstName><![CDATA[Kari]]>&#32;<![CDATA[Anne]]></FirstName>"
      .. "<B><![CDATA[a]]> \n <![CDATA[b]]></B></R>"
    assert.equal("Kari Anne", xmllint(doc, "/R/FirstName"))
    local f = assert(record(doc))
    assert.equal("Kari Anne", f.FirstName)
    assert.equal("a \n b", f.B)
  end)

  it("still drops the layout whitespace around CDATA (Nets examples) and keeps text around it", function()
    local f = assert(record("<R><T> <![CDATA[abc==]]> </T><M> a <![CDATA[b]]>c </M></R>"))
    assert.equal("abc==", f.T)
    assert.equal(" a bc ", f.M)
  end)

  it("a whitespace-only leaf without CDATA is its whitespace (xmllint agrees)", function()
    local doc = "<R><A> </A><C>&#13;</C><D>\t</D></R>"
    assert.equal(" ", xmllint(doc, "/R/A"))
    local f = assert(record(doc))
    assert.same({ A = " ", C = "\r", D = "\t" }, f)
  end)

  it("reads a CR or CR LF inside CDATA as LF, as XML's end-of-line rule and xmllint do (found by make fuzz)", function()
    local doc = "<R><a><![CDATA[x\ry]]></a><b><![CDATA[x\r\ny]]></b><c><![CDATA[p\r]]><![CDATA[\nq]]></c>"
      .. "<d>&#13;<![CDATA[z]]></d></R>"
    assert.equal("x\ny", xmllint(doc, "/R/a"))
    assert.equal("p\n\nq", xmllint(doc, "/R/c"))
    local f = assert(record(doc))
    assert.same({ a = "x\ny", b = "x\ny", c = "p\n\nq", d = "z" }, f)
    -- a CR LF pair at every offset around libxml2's 300-byte CDATA pieces and giro's 64 KiB chunks
    for _, n in ipairs({ 297, 298, 299, 300, 301, 598, 599, 65520, 65530, 65535, 65536 }) do
      local v = ("x"):rep(n) .. "\r\n" .. ("y"):rep(700) .. "\r\r\n\n"
      f = assert(record("<R><a><![CDATA[" .. v .. "]]></a></R>"))
      assert.equal(("x"):rep(n) .. "\n" .. ("y"):rep(700) .. "\n\n\n", f.a, "at " .. n)
    end
  end)

  it("limits a leaf's whole value to 10 MB, however it is cut into text and CDATA pieces", function()
    local piece = ("x"):rep(1000000)
    local parts = { "<R><Id>1</Id><FirstName>" }
    for i = 1, 11 do
      parts[#parts + 1] = (i % 2 == 1) and ("<![CDATA[" .. piece .. "]]>") or piece
    end
    parts[#parts + 1] = "</FirstName></R>"
    local f, err = record(table.concat(parts))
    assert.is_nil(f)
    assert.equal("<string>:1: <FirstName> in <R>: text longer than 10000000 bytes", err)
    -- exactly 10 MB in 10 pieces is still a value
    parts[12], parts[13] = "</FirstName></R>", nil
    f = assert(record(table.concat(parts)))
    assert.equal(10000000, #f.FirstName)
  end)

  it("refuses element and attribute names longer than 1000 bytes", function()
    local long = ("N"):rep(1001)
    local r = assert(xml.from_string("<R><" .. long .. ">x</" .. long .. "></R>"))
    assert.equal("start", r:next())
    local ev, err = r:next()
    assert.is_nil(ev)
    assert.matches("^<string>:1: element name longer than 1000 bytes %(1001 bytes, starting \"NNNN", err)
    r = assert(xml.from_string("<R " .. long .. '="1"/>'))
    ev, err = r:next()
    assert.is_nil(ev)
    assert.matches("attribute name longer than 1000 bytes", err)
    local ok = ("N"):rep(1000)
    local f = assert(record("<R><" .. ok .. ">x</" .. ok .. "></R>"))
    assert.equal("x", f[ok])
  end)
end)

describe("giro.xml writer output reads back exactly", function()
  local VALUES = {
    "\r", "a\r", "\rb", "\r\r", "a\r\nb", "\r\n", " ", "  ", "\n", "\t", " x ", "\n x \n",
    "]]>", "]]]>", "a]]>b]]>c", "Ł", "Ł\r", "\rŁ", " Ł ", "æøå", "<&>\"'", "x\ty\nz",
  }

  for _, enc in ipairs({ "UTF-8", "ISO-8859-1" }) do
    for _, cdata in ipairs({ false, true }) do
      it(("for %s %s leaves"):format(enc, cdata and "CDATA" or "text"), function()
        local w = xml.writer{ encoding = enc }
        w:start("R")
        for i, v in ipairs(VALUES) do
          if cdata then w:leaf_cdata("V" .. i, v) else w:leaf("V" .. i, v) end
        end
        w:finish()
        local doc = w:tostring()
        local f = assert(record(doc))
        for i, v in ipairs(VALUES) do
          assert.equal(v, f["V" .. i], ("value %d %q written as %q"):format(i, v, doc))
        end
        -- xmllint reads the lone CR the same way
        assert.equal("\r", xmllint(doc, "/R/V1"))
        assert.equal("a\r", xmllint(doc, "/R/V2"))
      end)
    end
  end

  it("refuses a value XML 1.0 cannot hold, naming the element", function()
    local w = xml.writer{}
    w:start("R")
    assert.has_error(function() w:leaf("FirstName", "Kari\1") end,
      "giro.xml: character U+0001 at byte 5 of the value of <FirstName> is not allowed in XML 1.0"
      .. " (it cannot be written, not even as a character reference)")
    assert.has_error(function() w:leaf_cdata("LastName", "\xEF\xBF\xBE") end)
    assert.has_error(function() w:leaf("X", "\0") end)
  end)
end)
