-- Issue 9, 4c: a problem message quotes a short prefix and the length of an offending value,
-- never the value: hostile 9 MiB fields must not reach stderr or the register's summary whole.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local errors = require("giro.errors")

describe("giro.errors.quote and clip", function()
  it("quote keeps short values, cuts long ones to a prefix and the length", function()
    assert.equal('"abc"', errors.quote("abc"))
    assert.equal('"' .. ("a"):rep(40) .. '"… (9437184 bytes)', errors.quote(("a"):rep(9437184)))
  end)
  it("clip cuts text at a byte count, never inside a UTF-8 sequence", function()
    assert.equal("short", errors.clip("short", 10))
    assert.equal("ab… (7 bytes)", errors.clip("ab" .. "ææ" .. "x", 3))   -- æ is 2 bytes
    assert.equal("abæ… (7 bytes)", errors.clip("ab" .. "ææ" .. "x", 4))
  end)
end)

describe("problem messages on hostile request files", function()
  local dir, db
  setup(function() dir, db = H.setup() end)
  teardown(function() H.rmdir(dir) end)

  it("quote 9 MiB values by a prefix and their length, in stderr and the register summary", function()
    local big = ("X"):rep(9 * 1024 * 1024)
    local recs = {}
    for i = 1, 3 do
      local r = H.add("1000017", "q" .. i .. "==", "Kari", "Nordmann")
      r.status = big
      recs[i] = r
    end
    local r = H.add("1000017", "qq==", "Kari", "Nordmann")
    r.provider = big
    recs[4] = r
    local req = H.write(dir .. "/big.xml", H.request{ records = recs })
    local _, _, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/out.xml" })
    assert.is_true(#err < 5000, #err .. " bytes on stderr")
    local prefix = '"' .. ("X"):rep(40) .. '"… (9437184 bytes)'
    assert.truthy(err:find("BillerEnrollmentStatus " .. prefix, 1, true), err)
    assert.truthy(err:find("ThorContentProviderId " .. prefix, 1, true), err)
    assert.is_true(H.count(db, "SELECT max(length(summary)) FROM files") < 5000)
  end)
end)

describe("consumer data longer than the spec's field table allows", function()
  local dir, db
  setup(function() dir, db = H.setup() end)
  teardown(function() H.rmdir(dir) end)

  it("skips the record (FirstName AN 50, a 9 MiB name) before the rule sees it; the others are answered", function()
    local recs = {
      H.add("1000017", "a1==", ("K"):rep(9 * 1024 * 1024), "Nordmann"),
      H.add("1000017", "a2==", ("K"):rep(51), "Nordmann"),        -- one character too many
      H.add("1000017", "a3==", ("K"):rep(50), "Nordmann"),        -- exactly the spec's length
      H.add("1000017", "a4==", "Kari", "Nordmann"),
    }
    local req = H.write(dir .. "/long.xml", H.request{ records = recs })
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/out.xml" })
    assert.equal(0, rc, err)
    assert.truthy(err:find("FirstName has 9437184 characters (at most 50)", 1, true), err)
    assert.truthy(err:find("FirstName has 51 characters (at most 50)", 1, true), err)
    assert.is_true(#err < 5000, #err .. " bytes on stderr")
    -- two answers: the 50-character name (rejected 02 by the default rule's name match) and Kari
    assert.equal(2, #H.answers(dir .. "/out.xml"))
  end)
end)

describe("payment messages on hostile values", function()
  local pay = require("giro.pay")
  local danske = assert(pay.bank("danske"))
  local KEY = ("k"):rep(64)
  local FIELDS = { SUMMA = "12,50", VIITE = "1232", KNRO = "000000000000", ERAPAIVA = "01.01.2030",
                   OKURL = "https://shop.example/ok", VIRHEURL = "https://shop.example/err" }
  local function with(k, v)
    local t = {}
    for name, x in pairs(FIELDS) do t[name] = x end
    t[k] = v
    return t
  end
  it("show a prefix and the length of a 1 MB value or field name", function()
    local big = ("x"):rep(1e6)
    for _, f in ipairs({ "SUMMA", "ERAPAIVA", "OKURL", "KNRO" }) do
      local res, why = danske:build("payment", with(f, big), { key = KEY, today = "20260101" })
      assert.is_nil(res)
      assert.is_true(#why < 300, f .. ": " .. #why .. " bytes")
      -- the value itself is quoted by a prefix and its length (OKURL: its length is the problem)
      if f ~= "OKURL" then assert.truthy(why:find("xxxx… (1000000 bytes)", 1, true), why) end
    end
    local res, why = danske:build("payment", with(big, "1"), { key = KEY, today = "20260101" })
    assert.is_nil(res)
    assert.is_true(#why < 300, #why .. " bytes")
    res, why = danske:verify("return", "VALUUTTA=" .. big, { key = KEY })
    assert.is_nil(res)
    assert.is_true(#why < 300, #why .. " bytes")
  end)
end)
