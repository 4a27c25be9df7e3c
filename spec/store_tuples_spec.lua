-- giro.store.tuples: the compiled multi-row VALUES writer used for every record of a file.
-- Values go into SQLite through it and must come back unchanged.
local store = require("giro.store")
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("giro.store.tuples", function()
  local dir, db
  local tuples = store.tuples({ "k", "a", "b", "n" }, { n = true })
  before_each(function()
    dir = H.tmpdir()
    db = assert(store.open(dir .. "/t.db"))
    db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, a TEXT, b TEXT, n INTEGER)")
  end)
  after_each(function() db:close() H.rmdir(dir) end)

  local function stored(k)
    local r = db:first("SELECT a, b, n, typeof(a) AS ta, typeof(b) AS tb, typeof(n) AS tn FROM t WHERE k = ?", k)
    return r
  end

  it("writes hostile strings, NULLs and integers that come back unchanged", function()
    local hostile = { "O'Brien", "a''b", "back\\slash\\", "'); DROP TABLE t; --", "Åse Ødegård", "?", "", "%s %d %%",
                      string.rep("x", 300) .. "'" }
    local rows = {}
    for i, v in ipairs(hostile) do
      rows[#rows + 1] = { k = "h" .. i, a = v, b = (i % 2 == 0) and v or nil, n = (i % 3 ~= 0) and i or nil }
    end
    rows[#rows + 1] = { k = "plain", a = "x", b = "y", n = "42" }      -- integer given as text (PostgreSQL)
    rows[#rows + 1] = { k = "nulls" }
    db:exec("INSERT INTO t (k, a, b, n) VALUES " .. tuples(db, rows))
    for i, v in ipairs(hostile) do
      local r = stored("h" .. i)
      assert.equal(v, r.a)
      if i % 2 == 0 then assert.equal(v, r.b) else assert.equal("null", r.tb) end
      if i % 3 ~= 0 then assert.equal(i, math.tointeger(r.n)) else assert.equal("null", r.tn) end
    end
    local p = stored("plain")
    assert.same({ "x", "y", 42, "integer" }, { p.a, p.b, math.tointeger(p.n), p.tn })
    local z = stored("nulls")
    assert.same({ "null", "null", "null" }, { z.ta, z.tb, z.tn })
  end)

  it("produces the same literals as db:quote", function()
    local rows = { { k = "1", a = "it's", b = nil, n = 7 }, { k = "2", a = "plain", b = "b\\s", n = nil } }
    local expect = {}
    for i, r in ipairs(rows) do
      expect[i] = "(" .. db:quote(r.k) .. "," .. db:quote(r.a) .. "," .. db:quote(r.b) .. "," .. db:quote(r.n) .. ")"
    end
    assert.equal(table.concat(expect, ","), tuples(db, rows))
  end)

  it("refuses a NUL byte, as db:quote does", function()
    assert.has_error(function() tuples(db, { { k = "1", a = "nu\0l" } }) end)
    assert.has_error(function() tuples(db, { { k = "1", n = 1.5 } }) end)
  end)

  it("checks its column names", function()
    assert.has_error(function() store.tuples({ "ok", "bad name" }) end)
  end)
end)
