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
