-- The generic primitives the payment engine runs on: giro.hash.hex_join / joiner (against
-- `openssl dgst` over the joined string and the FIPS/RFC vectors), giro.url (WHATWG form
-- encoding, RFC 3986 escapes) and giro.record (shapes checked against Lua's own patterns).
local hash = require("giro.hash")
local url = require("giro.url")
local record = require("giro.record")

local function openssl(alg, data)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb")); f:write(data); f:close()
  local p = assert(io.popen("openssl dgst -" .. alg .. " -r < " .. tmp))
  local out = p:read("a"); p:close(); os.remove(tmp)
  return (out:match("^(%x+)"))
end

describe("giro.hash.hex_join and joiner", function()
  it("digest the joined parts: FIPS 180-2 / RFC 1321 vectors", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      hash.hex_join("sha256", "lower", "", false, { "a", "b", "c" }))
    assert.equal("900150983CD24FB0D6963F7D28E17F72", hash.hex_join("md5", "upper", "b", false, { "a", "c" }))
    assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hash.hex_join("sha1", "lower", "", false, { "abc" }))
    assert.equal("d41d8cd98f00b204e9800998ecf8427e", hash.hex_join("md5", "lower", "&", false, {}))
  end)

  it("agree with openssl dgst on separators, a trailing separator, holes and the extra part", function()
    local t = { "100,00", nil, "000000000000", "EUR", "\xE4\xF6 x" }
    local key = string.rep("k", 64)
    for _, alg in ipairs({ "md5", "sha1", "sha256", "sha512" }) do
      assert.equal(openssl(alg, key .. "&100,00&000000000000&EUR&\xE4\xF6 x&"),
        hash.hex_join(alg, "lower", "&", true, t, { 0, 1, 2, 3, 4, 5 }, key))
      assert.equal(openssl(alg, "EUR|100,00|" .. key):upper(),
        hash.hex_join(alg, "upper", "|", false, t, { 4, 1, 0 }, key))
      local j = hash.joiner(alg, "lower", "&", true, { 0, 1, 2, 3, 4, 5 })
      assert.equal(openssl(alg, key .. "&100,00&000000000000&EUR&\xE4\xF6 x&"), j:hex(t, key))
    end
    assert.equal(openssl("sha256", "a&b"), hash.hex_join("sha256", "lower", "&", false, { "a", "b", nil, "c" }))
  end)

  it("joiner:hex agrees with openssl dgst past its 1024-byte buffer and by name", function()
    -- parts that fill the buffer exactly, overflow it, and one longer than it; a long separator
    local big, t = string.rep("x", 3000), {}
    for i = 1, 40 do t[i] = string.rep(string.char(64 + i % 26), 10 * i) end
    local idx, parts = {}, {}
    for i = 1, 40 do idx[i] = i; parts[i] = t[i] end
    assert.equal(openssl("sha256", table.concat(parts, "<->") .. "<->"),
      hash.joiner("sha256", "lower", "<->", true, idx):hex(t))
    assert.equal(openssl("sha512", "k;" .. big .. ";" .. string.rep("y", 1023)),
      hash.joiner("sha512", "lower", ";", false, { 0, 1, 2 }):hex({ big, string.rep("y", 1023) }, "k"))
    assert.equal(openssl("md5", string.rep("z", 1024) .. "&"),
      hash.joiner("md5", "lower", "&", true, { 1 }):hex({ string.rep("z", 1024) }))
    assert.equal(openssl("sha256", "&"), hash.joiner("sha256", "lower", "&", true, { 1 }):hex({}))
    -- separators as long as the buffer or longer (a definition's mac.sep may be anything)
    for _, n in ipairs({ 1023, 1024, 1025, 3000 }) do
      local sep = string.rep("-", n)
      assert.equal(openssl("sha256", "k" .. sep .. "a" .. sep .. string.rep("b", 700) .. sep),
        hash.joiner("sha256", "lower", sep, true, { 0, 1, 2 }):hex({ "a", string.rep("b", 700) }, "k"))
    end
    local m = { VIITE = "1232", SUMMA = "100,00" }
    assert.equal(openssl("sha256", "key&1232&100,00&"):upper(),
      hash.joiner("sha256", "upper", "&", true, { 0, "VIITE", "MISSING", "SUMMA" }):hex(m, "key"))
  end)

  it("joiner:equal compares a given hex MAC with the one it computes, in either case on request", function()
    local key = string.rep("k", 64)
    local want = openssl("sha256", key .. "&1232&100,00&")
    local j = hash.joiner("sha256", "upper", "&", true, { 0, "VIITE", "SUMMA" })
    local m = { VIITE = "1232", SUMMA = "100,00" }
    assert.is_true(j:equal(m, key, want:upper()))
    assert.is_false(j:equal(m, key, want))                     -- lower case: the recipe says upper
    assert.is_true(j:equal(m, key, want, true))                -- any_case
    assert.is_true(j:equal(m, key, want:sub(1, 10):upper() .. want:sub(11), true))
    assert.is_false(j:equal(m, key, want:upper():sub(1, 63)))  -- one digit short
    assert.is_false(j:equal(m, key, want:upper():sub(1, 63) .. "G", true))
    assert.is_false(j:equal(m, "other", want:upper()))
    assert.is_false(j:equal({ VIITE = "1232", SUMMA = "100,01" }, key, want:upper(), true))
    assert.has_error(function() j:equal(m, key, nil) end)
    assert.has_error(function() j:equal({ VIITE = 1232 }, key, want) end,
      "giro.hash.joiner: part 2 is a number, expected a string")
  end)

  it("joiner: a part that is not a string leaves nothing behind for the next digest", function()
    -- the key goes in first, then a bad part stops the digest: the next call starts clean
    local j = hash.joiner("sha256", "lower", "&", true, { 0, 1, 2 })
    assert.has_error(function() j:hex({ "a", {} }, "secret") end,
      "giro.hash.joiner: part 3 is a table, expected a string")
    assert.equal(openssl("sha256", "k&a&b&"), j:hex({ "a", "b" }, "k"))
    assert.has_error(function() j:equal({ 1 }, "secret", "00") end)
    assert.is_true(j:equal({ "a", "b" }, "k", openssl("sha256", "k&a&b&")))
  end)

  it("joiner and layout methods refuse anything but their own userdata as self", function()
    local j = hash.joiner("sha256", "lower", "&", true, { 1 })
    local lay = record.new({ { name = "A", shape = "%d" } })
    local ctx = hash.new("sha256")
    for _, self in ipairs({ {}, "x", 1, lay, ctx, io.stdout }) do
      assert.has_error(function() j.hex(self, { "a" }) end)
      assert.has_error(function() j.equal(self, { "a" }, nil, "00") end)
    end
    for _, self in ipairs({ {}, "A=1", 1, j, ctx, io.stdout }) do
      assert.has_error(function() lay.parse(self, "A=1") end)
      assert.has_error(function() lay.take(self, { A = "1" }) end)
      assert.has_error(function() lay.collect(self, { A = "1" }) end)
      assert.has_error(function() lay.check(self, 1, "1") end)
    end
  end)

  it("raise on wrong arguments and parts that are not strings", function()
    assert.has_error(function() hash.hex_join("sha3", "lower", "&", true, {}) end)
    assert.has_error(function() hash.hex_join("sha256", "mixed", "&", true, {}) end)
    assert.has_error(function() hash.hex_join("sha256", "lower", "&", true, { "a", 1 }) end,
      "giro.hash.hex_join: part 2 is a number, expected a string")
    assert.has_error(function() hash.hex_join("sha256", "lower", "&", true, { "a" }, { "x" }) end,
      "giro.hash.hex_join: idx[1] must be an integer")
    assert.has_error(function() hash.joiner("sha256", "lower", "&", true, { 1.5 }) end)
    assert.has_error(function() hash.joiner("sha256", "lower", "&", true, { 1 }):hex({ {} }) end,
      "giro.hash.joiner: part 1 is a table, expected a string")
  end)
end)

describe("giro.url", function()
  it("encodes and decodes as giro.http does (the same functions)", function()
    assert.equal("a%20b%2Bc%26d%3De%2Ff%3Fg%25", url.urlencode("a b+c&d=e/f?g%"))
    assert.equal("a b+c", url.urldecode("a+b%2Bc"))
    assert.equal("b=2&a=1+1", url.form_encode({ { "b", "2" }, { "a", "1 1" } }))
    assert.same({ { "a", "1" }, { "a", "x y" } }, url.parse_query("?a=1&a=x+y"))
    local v, err = url.urldecode("ab%zz")
    assert.is_nil(v)
    assert.equal("giro.url.urldecode: malformed percent escape at byte 3 (expected %XX with two hex digits)", err)
    assert.has_error(function() url.form_encode({ a = "1" }) end,
      "giro.url.form_encode: expected a list of {name, value} pairs")
  end)

  it("parse_query_map decodes into a map and counts the pairs", function()
    local m, n = url.parse_query_map("?KNRO=1&VIITE=12%2034&flag&&e=&x=a=b&n%C3%A4=%E4")
    assert.same({ KNRO = "1", VIITE = "12 34", flag = "", e = "", x = "a=b", ["n\xC3\xA4"] = "\xE4" }, m)
    assert.equal(6, n)
    assert.same({ {}, 0 }, { url.parse_query_map("") })
  end)

  it("parse_query_map refuses a name given twice, after decoding, and malformed escapes", function()
    assert.same({ nil, "duplicate parameter a", "a" }, { url.parse_query_map("a=1&b=2&a=1") })
    assert.same({ nil, "duplicate parameter a b", "a b" }, { url.parse_query_map("a+b=1&a%20b=2") })
    local m, err = url.parse_query_map("a=1&b=%4")
    assert.is_nil(m)
    assert.matches("malformed percent escape at byte 7", err, 1, true)
  end)
end)

describe("giro.record", function()
  it("checks shapes as the equivalent anchored Lua pattern does", function()
    local shapes = { "%d+,%d%d", "[1-9]%d*", "%a+", "[hH][tT][tT][pP][sS]?://[!-~]+", "[0-9A-F]+",
                     "%d%d%.%d%d%.%d%d%d%d", "[ -~]*", "[^%s,]+", "x?y*z", "%x+", "[%a_][%w_]*", "%%d" }
    local samples = { "", "1", "12,50", "012,5", "100,00", "abc", "ABC1", "http://x", "HTTPS://a.b/c?d=e",
                      "http:// x", "DEADbeef", "31.12.2026", "1.2.2026", "a b", "tab\there", "xyz", "yyz",
                      "z", "xz", "_a1", "1a", "%d", "\xE4", "a,b" }
    for _, shape in ipairs(shapes) do
      local layout = record.new({ { name = "F", shape = shape } })
      for _, s in ipairs(samples) do
        local want = string.find(s, "^" .. shape .. "$") ~= nil
        assert.equal(want, (layout:check(1, s)), shape .. " on '" .. s .. "'")
      end
    end
  end)

  it("never gives back what an item matched (possessive, linear time)", function()
    local layout = record.new({ { name = "F", shape = "%d+1" } })
    assert.is_true(string.find("1231", "^%d+1$") ~= nil)
    assert.is_false((layout:check(1, "1231")))
    local long = record.new({ { name = "F", shape = "a*a*a*a*a*b" } })
    assert.is_false((long:check(1, string.rep("a", 100000))))
  end)

  it("collects a map: values, fixed values, defaults, lengths, and stops where Lua must look", function()
    local layout = record.new({
      { name = "SUMMA", shape = "[1-9]%d*,%d%d", max = 8, required = true, suffix = ",00" },
      { name = "VALUUTTA", fixed = "EUR", value = "EUR" },
      { name = "lng", shape = "%d", values = { "1", "2", "3" } },
      { name = "MAC" },
      { name = "NOTE", shape = "[ -~]*", min = 2, max = 5 },
    })
    local out, k, seen = layout:collect({ SUMMA = "12,50", lng = "2" })
    assert.same({ { "12,50", "EUR", "2" }, nil, 2 }, { out, k, seen })
    out, k, seen = layout:collect({ SUMMA = "100", NOTE = "ok" })
    assert.same({ { "100,00", "EUR", nil, nil, "ok" }, nil, 2 }, { out, k, seen })
    assert.same({ 1, 0 }, { select(2, layout:collect({})) })                 -- required
    assert.same({ 1, 0 }, { select(2, layout:collect({ SUMMA = "0,50" })) }) -- shape
    assert.same({ 1, 0 }, { select(2, layout:collect({ SUMMA = 100 })) })   -- not a string
    assert.same({ 2, 1 }, { select(2, layout:collect({ SUMMA = "1,00", VALUUTTA = "SEK" })) })
    assert.same({ 3, 2 }, { select(2, layout:collect({ SUMMA = "1,00", VALUUTTA = "EUR", lng = "4" })) })
    assert.same({ 4, 1 }, { select(2, layout:collect({ SUMMA = "1,00", MAC = "x" })) })
    assert.same({ 5, 1 }, { select(2, layout:collect({ SUMMA = "1,00", NOTE = "toolong" })) })
    -- resume after the field Lua handled
    local t = { 99 }
    out, k, seen = layout:collect({ SUMMA = "0,50", NOTE = "hey" }, t, 2)
    assert.same({ { 99, "EUR", nil, nil, "hey" }, nil, 1 }, { out, k, seen })
  end)

  it("check digits (7-3-1 from the right, as the Finnish reference number) and dates", function()
    local layout = record.new({
      { name = "REF", shape = "[1-9]%d*", min = 4, max = 20, check_digit = "731" },
      { name = "DUE", shape = "%d%d%.%d%d%.%d%d%d%d", date = "DD.MM.YYYY", not_past = true },
      { name = "DAY", shape = "%d+", date = "YYYYMMDD" },
    })
    -- 1232: Danske's test reference; 12344: giro.ref's documented example; 1234561 by hand
    for _, good in ipairs({ "1232", "12344", "1234561" }) do
      assert.is_true((layout:check(1, good)), good)
    end
    for _, bad in ipairs({ "1233", "12345", "123", "0001232" }) do
      assert.is_false((layout:check(1, bad)), bad)
    end
    assert.is_true((layout:check(2, "29.02.2024", 20240101)))
    assert.is_false((layout:check(2, "29.02.2023", 20230101)))    -- no such day
    assert.is_false((layout:check(2, "31.12.2023", 20240101)))    -- in the past
    assert.is_false((layout:check(2, "31.12.2026")))              -- no today given: stop
    assert.is_true((layout:check(3, "20000229")))
    assert.is_false((layout:check(3, "19000229")))
    assert.is_false((layout:check(3, "20241301")))
  end)

  it("accepts exactly the canonical Finnish references giro.ref accepts (pay's fast path)", function()
    local ref = require("giro.ref")
    local layout = record.new({ { name = "REF", shape = "[1-9]%d*", min = 4, max = 20, check_digit = "731" } })
    local seed = 12345
    for len = 1, 22 do
      for _ = 1, 200 do
        local digits = {}
        for i = 1, len do
          seed = (seed * 1103515245 + 12345) % 2147483648
          digits[i] = tostring(i == 1 and 1 + seed % 9 or seed % 10)
        end
        local s = table.concat(digits)
        assert.equal(ref.check("fi", s) == true, (layout:check(1, s)), s)
      end
    end
  end)

  it("parses a query string that is plainly a record of the layout, false for anything else", function()
    local layout = record.new({
      { name = "SUMMA", shape = "%d+,%d%d", max = 8, required = true },
      { name = "VALUUTTA", fixed = "EUR" },
      { name = "lng", shape = "%d", values = { "1", "2", "3" } },
      { name = "REF", shape = "[1-9]%d*", min = 4, check_digit = "731" },
      { name = "DUE", shape = "%d%d%.%d%d%.%d%d%d%d", date = "DD.MM.YYYY", not_past = true },
      { name = "NOTE", shape = "[ -~]*", max = 5 },
      { name = "AMT", shape = "[1-9]%d*,%d%d", suffix = ",00" },
    })
    local map, n = layout:parse("lng=2&SUMMA=12,50&&VALUUTTA=EUR&REF=1232")
    assert.same({ SUMMA = "12,50", VALUUTTA = "EUR", lng = "2", REF = "1232" }, map)
    assert.equal(4, n)
    assert.same({ { SUMMA = "1,00", NOTE = "" }, 2 }, { layout:parse("?SUMMA=1,00&NOTE") })
    assert.same({ { SUMMA = "1,00", NOTE = "a=b" }, 2 }, { layout:parse("SUMMA=1,00&NOTE=a=b") })
    assert.same({ { SUMMA = "1,00", DUE = "31.12.2024" }, 2 },
      { layout:parse("SUMMA=1,00&DUE=31.12.2024", 20241231) })
    assert.same({ { SUMMA = "1,00", AMT = "7,50" }, 2 }, { layout:parse("SUMMA=1,00&AMT=7,50") })
    for _, q in ipairs({
      "", "lng=2",                                   -- required SUMMA absent
      "SUMMA=1,00&lng=2&lng=2",                      -- given twice
      "SUMMA=1,00&summa=1,00", "SUMMA=1,00&X=1",     -- another spelling, an unknown name
      "SUMMA=1%2C00", "SUMMA=1,00&NOTE=a+b",         -- escapes: url.parse_query_map's work
      "SUMMA=1,00&NOTE=a?b", "SUMMA=1,00&NOTE=a#b",  -- a URL's query, a fragment: the caller's
      "??SUMMA=1,00", "SUMMA=1,00#",
      "SUMMA=1,0", "SUMMA=1,00&VALUUTTA=SEK",        -- shape, fixed value
      "SUMMA=1,00&lng=4", "SUMMA=1,00&REF=1233",     -- values, check digit
      "SUMMA=1,00&NOTE=toolong",                     -- max
      "SUMMA=1,00&DUE=31.12.2024",                   -- not_past without today
      "SUMMA=1,00&DUE=30.12.2024",                   -- in the past
      "SUMMA=1,00&AMT=7",                            -- would need the suffix: collect's business
    }) do
      assert.is_false(layout:parse(q, q:find("DUE=30") and 20241231 or nil), q)
    end
    assert.is_false(layout:parse({ SUMMA = "1,00" }))          -- not a query string
    assert.is_false(layout:parse(12))
    local wide = {}
    for i = 1, 65 do wide[i] = { name = "F" .. i, shape = "%d" } end
    assert.is_false(record.new(wide):parse("F1=1"))
    -- names matched whatever order they come in, and only whole
    local abc = record.new({ { name = "A", shape = "%d" }, { name = "AB", shape = "%d" }, { name = "B", shape = "%d" } })
    assert.same({ { B = "3", AB = "2", A = "1" }, 3 }, { abc:parse("B=3&AB=2&A=1") })
    assert.is_false(abc:parse("ABC=1"))
    assert.is_false(abc:parse("=1"))
  end)

  it("takes a whole map when every key is a field and every value is taken, false otherwise", function()
    local layout = record.new({
      { name = "SUMMA", shape = "[1-9]%d*,%d%d", max = 8, required = true, suffix = ",00" },
      { name = "VALUUTTA", fixed = "EUR", value = "EUR" },
      { name = "lng", shape = "%d", values = { "1", "2", "3" } },
      { name = "MAC" },
      { name = "DUE", shape = "%d%d%.%d%d%.%d%d%d%d", date = "DD.MM.YYYY", not_past = true },
    }, 2)
    assert.same({ { "12,50", "EUR", "2" }, 2 }, { layout:take({ lng = "2", SUMMA = "12,50" }) })
    assert.same({ { "100,00", "EUR" }, 2 }, { layout:take({ SUMMA = "100", VALUUTTA = "EUR" }) })
    assert.same({ { "1,00", "EUR", nil, nil, "31.12.2024" }, 2 },
      { layout:take({ SUMMA = "1,00", DUE = "31.12.2024" }, 20241231) })
    local out = layout:take({ SUMMA = "1,00" })
    out.plan, out.mac = 1, 2                                   -- the room nhash made
    assert.same({ "1,00", "EUR", plan = 1, mac = 2 }, out)
    for _, m in ipairs({
      {}, { lng = "2" },                                       -- required SUMMA absent
      { SUMMA = "1,00", X = "1" }, { SUMMA = "1,00", summa = "1,00" }, { SUMMA = "1,00", [1] = "x" },
      { SUMMA = 100 }, { SUMMA = "0,50" }, { SUMMA = "1,00", VALUUTTA = "SEK" },
      { SUMMA = "1,00", lng = "4" }, { SUMMA = "1,00", MAC = "x" },
      { SUMMA = "1,00", DUE = "31.12.2024" },                  -- not_past without today
    }) do
      assert.is_false(layout:take(m))
    end
    assert.is_false(layout:take({ SUMMA = "1,00", DUE = "30.12.2024" }, 20241231))
    assert.has_error(function() record.new({}, 65) end)
    -- take is collect run over the whole map with nothing left over, or false
    local choices = {
      SUMMA = { "12,50", "100", "0,50", "x" }, VALUUTTA = { "EUR", "SEK" }, lng = { "1", "4" },
      MAC = { "ab" }, DUE = { "31.12.2024", "30.12.2024", "31.02.2025" }, other = { "1" },
    }
    local names = { "SUMMA", "VALUUTTA", "lng", "MAC", "DUE", "other" }
    local seed = 7
    for _ = 1, 400 do
      local m = {}
      for _, name in ipairs(names) do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local c = choices[name]
        local pick = seed % (#c + 2)               -- absent more often than any one value
        if pick < #c then m[name] = c[pick + 1] end
      end
      local cout, k, seen = layout:collect(m, nil, 1, 20241231)
      local tout, n = layout:take(m, 20241231)
      if k == nil and seen == record.count(m) then
        assert.same(cout, tout)
        assert.equal(seen, n)
      else
        assert.is_false(tout)
      end
    end
  end)

  it("counts the keys of any table, and refuses bad layouts", function()
    assert.equal(3, record.count({ 1, 2, x = 3 }))
    assert.equal(0, record.count({}))
    assert.has_error(function() record.new({ { shape = "%d" } }) end)
    assert.has_error(function() record.new({ { name = "A", shape = "(%d)" } }) end)
    assert.has_error(function() record.new({ { name = "A", shape = "%d-" } }) end)
    assert.has_error(function() record.new({ { name = "A", shape = "[a" } }) end)
    assert.has_error(function() record.new({ { name = "A", date = "MM/DD/YYYY" } }) end)
    assert.has_error(function() record.new({ { name = "A", check_digit = "7x1" } }) end)
    assert.has_error(function() record.new({ { name = "A", values = { 1 } } }) end)
  end)

  it("refuses a field spec that reads differently the second time (no write past the layout)", function()
    -- new reads every spec twice (to size the layout, then to fill it in): a spec whose fields
    -- are metamethods must not make the second reading overrun what the first one sized
    local function changing(first, later)
      local reads = {}
      return setmetatable({}, { __index = function(_, key)
        reads[key] = (reads[key] or 0) + 1
        return (reads[key] == 1 and first or later)[key]
      end })
    end
    local changed = "giro.record.new: field 1 changed while the layout was made"
    assert.has_error(function()
      record.new({ changing({ name = "A" }, { name = string.rep("N", 5000) }) })
    end, changed)
    assert.has_error(function()
      record.new({ changing({ name = "A", shape = "%d" }, { name = "A", shape = string.rep("%d", 3000) }) })
    end, changed)
    assert.has_error(function()
      record.new({ changing({ name = "A", shape = "%d" }, { name = "A", shape = "(%d)" }) })
    end, changed)
    assert.has_error(function() record.new({ changing({ name = "A" }, { name = {} }) }) end, changed)
    -- the same spec read the same both times is fine
    local same = record.new({ changing({ name = "A", shape = "%d" }, { name = "A", shape = "%d" }) })
    assert.same({ { A = "1" }, 1 }, { same:parse("A=1") })
  end)
end)
