-- giro.sql, giro's own binding over libsqlite3 and libpq: the same assertions on SQLite
-- and on a throw-away PostgreSQL (spec/support/pgserver.lua).  Expected values are written
-- here (Lua literals, SQL standard behaviour), never read back from giro.
local sql = require("giro.sql")
local H = dofile("spec/fixtures/efaktura/helper.lua")

local BIG = 9007199254740993          -- 2^53 + 1: not a double
local INTS = { 0, 1, -1, BIG, -BIG, math.maxinteger, math.mininteger, 2147483648, -2147483649 }
local FLOATS = { 0.1, -1.5e300, 1 / 3, 2.5, -0.0 }
local TEXTS = { "", "O'Brien", "a''b", 'say "hi"', "?", "'?'", "why?", "back\\slash\\",
  "'); DROP TABLE v; --", "Åse Ødegård", "$1", "line\nbreak" }

-- schema per backend: the column types each one has
local SCHEMA = {
  sqlite = "CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, flag INTEGER)",
  postgres = "CREATE TABLE v (id INTEGER PRIMARY KEY, i BIGINT, f DOUBLE PRECISION, t TEXT, b BYTEA, "
    .. "flag BOOLEAN, n NUMERIC, s SMALLINT, r REAL)",
}

describe("giro.sql.open", function()
  it("keeps the password out of every connection error", function()
    local secret = "Sekr3t-pw"
    local urls = {
      "postgres://giro:" .. secret .. "@127.0.0.1:1/none",                 -- nothing listens
      "postgres://giro:" .. secret .. "@[::1/none",                        -- libpq quotes the URI back
      "postgresql://giro@127.0.0.1:1/x?password=" .. secret .. "&bogus=1",
      "postgresql://giro:" .. secret:gsub("%-", "%%2D") .. "@127.0.0.1:1/x?bogus=%zz",
      "host=127.0.0.1 port=1 dbname=x password='" .. secret .. "' bogus=1",
      "host=127.0.0.1 port=1 password=" .. secret .. " dbname=x",
      "postgres://giro:" .. secret .. "@no-such-host.invalid/none",
    }
    for _, url in ipairs(urls) do
      local conn, err, kind = sql.open(url)
      assert.is_nil(conn)
      assert.equal("env", kind)
      assert.is_string(err)
      assert.truthy(#err > 0)
      assert.is_nil(err:find(secret, 1, true), err)
      assert.is_nil(err:find("Sekr3t", 1, true), err)
    end
  end)

  it("keeps the password out of an error longer than giro's message buffer (2048 bytes)", function()
    -- libpq quotes the whole URI back; a long user name moves the password across byte 2048
    -- for some length in this range, whatever the wording around the URI
    local secret = "Sekr3t-pw"
    for n = 1900, 2060 do
      local conn, err, kind = sql.open("postgres://" .. string.rep("u", n) .. ":" .. secret .. "@[::1/none")
      assert.is_nil(conn)
      assert.equal("env", kind)
      assert.is_nil(err:find("Sekr", 1, true), err:sub(-40))
    end
  end)

  it("returns nil, the reason and 'env' for a SQLite file it cannot open", function()
    local conn, err, kind = sql.open("/nonexistent-dir-giro/x.db")
    assert.is_nil(conn)
    assert.equal("env", kind)
    assert.truthy(err:find("unable to open", 1, true), err)
  end)
end)

for _, B in ipairs(H.backends()) do
describe("giro.sql on " .. B.name, function()
  lazy_setup(function() H.use(B) end)
  lazy_teardown(function() H.done(B) end)
  local dir, conn
  before_each(function()
    dir = H.tmpdir()
    conn = assert(sql.open(H.new_db(dir, "s.db")))
    assert.equal(B.name, conn:backend())
    conn:exec(SCHEMA[B.name])
  end)
  after_each(function() conn:close() H.rmdir(dir) end)

  local function count()
    return conn:first("SELECT count(*) AS n FROM v").n
  end

  it("round-trips integers exactly, beyond 2^53 and at both ends of 64 bits", function()
    for id, v in ipairs(INTS) do assert.equal(1, conn:exec("INSERT INTO v (id, i) VALUES (?, ?)", id, v)) end
    for id, v in ipairs(INTS) do
      local got = conn:first("SELECT i FROM v WHERE id = ?", id).i
      assert.equal("integer", math.type(got))
      assert.equal(v, got)
    end
    -- and as a bound value compared on the server
    assert.equal(3, conn:first("SELECT id FROM v WHERE i = ?", -1).id)
    assert.equal(4, conn:first("SELECT id FROM v WHERE i = ?", BIG).id)
    assert.is_nil(conn:first("SELECT id FROM v WHERE i = ?", BIG - 1))
    assert.equal("integer", math.type(count()))
    assert.equal(#INTS, count())
  end)

  it("round-trips floats, text with quotes and ?, empty strings and NULL", function()
    for id, v in ipairs(FLOATS) do conn:exec("INSERT INTO v (id, f) VALUES (?, ?)", id, v) end
    for id, v in ipairs(FLOATS) do
      local got = conn:first("SELECT f FROM v WHERE id = ?", id).f
      assert.equal("float", math.type(got))
      assert.equal(v, got)
    end
    for id, v in ipairs(TEXTS) do conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 100 + id, v) end
    for id, v in ipairs(TEXTS) do assert.equal(v, conn:first("SELECT t FROM v WHERE id = ?", 100 + id).t) end
    assert.equal(1, conn:first("SELECT count(*) AS n FROM v WHERE t = ?", "").n)   -- "" is not NULL
    conn:exec("INSERT INTO v (id, t, i) VALUES (?, ?, ?)", 200, nil, nil)
    local row = conn:first("SELECT t, i FROM v WHERE id = ?", 200)
    assert.is_nil(row.t)
    assert.is_nil(row.i)
    assert.equal(1, conn:first("SELECT count(*) AS n FROM v WHERE id = ? AND t IS NULL", 200).n)
  end)

  it("keeps a ? inside a quoted literal as text, not a parameter", function()
    local row = conn:first("SELECT '?' AS q, 'it''s ?' AS r, ? AS v, \"t\" AS c FROM v WHERE id = ?", "x", 7)
    assert.is_nil(row)
    conn:exec("INSERT INTO v (id, t) VALUES (?, '?')", 7)
    row = conn:first("SELECT '?' AS q, 'it''s ?' AS r, t AS c FROM v WHERE id = ? -- a comment?", 7)
    assert.same({ q = "?", r = "it's ?", c = "?" }, row)
  end)

  it("binds strings with NUL bytes by length", function()
    local bytes = "a\0b\255\0"
    conn:exec("INSERT INTO v (id, b) VALUES (?, ?)", 1, bytes)
    assert.equal(bytes, conn:first("SELECT b FROM v WHERE id = ?", 1).b)
    if B.name == "sqlite" then
      conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 2, "x\0y")
      local row = conn:first("SELECT t, length(CAST(t AS BLOB)) AS n FROM v WHERE id = ?", 2)
      assert.equal("x\0y", row.t)
      assert.equal(3, row.n)
    else
      -- PostgreSQL's text cannot hold a NUL: refused with the server's reason, not cut short
      local ok, err = pcall(conn.exec, conn, "INSERT INTO v (id, t) VALUES (?, ?)", 2, "x\0y")
      assert.is_false(ok)
      assert.truthy(err:find("0x00", 1, true), err)
      assert.is_nil(conn:first("SELECT t FROM v WHERE id = ?", 2))
    end
  end)

  it("binds booleans as the dialect stores them", function()
    conn:exec("INSERT INTO v (id, flag) VALUES (?, ?)", 1, true)
    conn:exec("INSERT INTO v (id, flag) VALUES (?, ?)", 2, false)
    if B.name == "sqlite" then
      assert.equal(1, conn:first("SELECT flag FROM v WHERE id = 1").flag)
      assert.equal(0, conn:first("SELECT flag FROM v WHERE id = 2").flag)
    else
      assert.equal(true, conn:first("SELECT flag FROM v WHERE id = 1").flag)
      assert.equal(false, conn:first("SELECT flag FROM v WHERE id = 2").flag)
      assert.equal(2, conn:first("SELECT id FROM v WHERE flag = ?", false).id)
    end
  end)

  if B.name == "postgres" then
    it("reads NUMERIC as its exact text, SMALLINT as integer, REAL as number", function()
      local n = "12345678901234567890.123456789012"
      conn:exec("INSERT INTO v (id, n, s, r) VALUES (?, ?, ?, ?)", 1, n, -32768, 0.5)
      local row = conn:first("SELECT n, s, r, n + 1 AS m FROM v WHERE id = 1")
      assert.equal(n, row.n)
      assert.equal("12345678901234567891.123456789012", row.m)
      assert.equal(-32768, row.s)
      assert.equal("integer", math.type(row.s))
      assert.equal(0.5, row.r)
      assert.equal("0.1", conn:first("SELECT 0.1::numeric AS x").x)
    end)

    it("a failed statement aborts the transaction: the next one fails, COMMIT raises", function()
      conn:begin()
      conn:exec("INSERT INTO v (id) VALUES (?)", 1)
      assert.is_false(pcall(conn.exec, conn, "INSERT INTO v (id) VALUES (?)", 1))
      local ok, err = pcall(conn.exec, conn, "INSERT INTO v (id) VALUES (?)", 2)
      assert.is_false(ok)
      assert.truthy(err:find("current transaction is aborted", 1, true), err)
      ok, err = pcall(conn.commit, conn)
      assert.is_false(ok)
      assert.truthy(err:find("nothing committed", 1, true), err)
      assert.is_false(conn:in_transaction())
      assert.equal(0, count())
    end)

    it("a wrong password is refused without the password in the message", function()
      local pg = require("pgserver")
      local url = H.backend.server:url("postgres"):gsub("//giro@", "//" .. pg.PASSWORD_ROLE .. ":wrong-" .. pg.PASSWORD .. "@")
      local c, err, kind = sql.open(url)
      assert.is_nil(c)
      assert.equal("env", kind)
      assert.truthy(err:find("password authentication failed", 1, true), err)
      assert.is_nil(err:find(pg.PASSWORD, 1, true), err)
      local good = assert(sql.open((url:gsub("wrong%-", ""))))
      assert.equal(1, good:first("SELECT 1 AS one").one)
      good:close()
    end)
  end

  it("an error inside a transaction carries the server's text and nothing of it is committed", function()
    conn:begin()
    assert.is_true(conn:in_transaction())
    conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 1, "a")
    local ok, err = pcall(conn.exec, conn, "INSERT INTO v (id, t) VALUES (?, ?)", 1, "again")
    assert.is_false(ok)
    assert.truthy(err:find(B.name == "sqlite" and "UNIQUE constraint failed" or "duplicate key", 1, true), err)
    assert.truthy(err:find("(in: INSERT INTO v", 1, true), err)
    ok, err = pcall(conn.commit, conn)
    assert.is_false(ok)
    assert.truthy(err:find("nothing committed", 1, true), err)
    assert.equal(0, count())
    -- the connection is usable again
    conn:begin()
    conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 2, "b")
    conn:commit()
    assert.equal(1, count())
  end)

  it("rolls back on request, and reports rows changed", function()
    for id = 1, 3 do conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", id, "x") end
    conn:begin()
    assert.equal(3, conn:exec("UPDATE v SET t = ? WHERE t = ?", "y", "x"))
    assert.equal(1, conn:exec("DELETE FROM v WHERE id = ?", 2))
    conn:rollback()
    assert.is_false(conn:in_transaction())
    assert.equal(3, conn:first("SELECT count(*) AS n FROM v WHERE t = ?", "x").n)
    assert.equal(0, conn:exec("UPDATE v SET t = ? WHERE id = ?", "z", 99))
    assert.has_error(function() conn:commit() end, "giro.sql: commit: no transaction is open")
  end)

  if B.name == "postgres" then
    it("a batch whose connection dies mid-pipeline raises, and so does every later call", function()
      -- row 2 ends this very session (the server's own function): the pipeline cannot finish
      local q = "SELECT CASE WHEN ?::int = 2 THEN pg_terminate_backend(pg_backend_pid()) END"
      local ok, err = pcall(conn.batch, conn, q, { { 1 }, { 2 }, { 3 } })
      assert.is_false(ok)
      assert.truthy(err:find("row 2: ", 1, true), err)
      for _, q2 in ipairs({ "SELECT 1", "SELECT 2" }) do   -- the connection's loss, not libpq's pipeline mode
        local ok2, err2 = pcall(conn.exec, conn, q2)
        assert.is_false(ok2)
        assert.is_nil(err2:find("pipeline mode", 1, true), err2)
      end
      conn:close()
    end)
  end

  it("frees the second statement of a busy text when its arguments are wrong", function()
    conn:exec("INSERT INTO v (id) VALUES (?)", 1)
    local q = "SELECT id FROM v WHERE id <= ?"
    for _ in conn:rows(q, 1) do   -- q's cached statement is busy: each exec makes a second one
      for _ = 1, 5 do assert.has_error(function() conn:exec(q) end, "giro.sql: 0 argument(s) for 1 parameter(s) in: " .. q) end
    end
    if B.name == "postgres" then   -- the server's own list: only the cached statement is left
      local n = conn:first("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = ?",
        "SELECT id FROM v WHERE id <= $1").n
      assert.equal(1, n)
    end
  end)

  it("prepares each SQL text once and reuses it", function()
    local before = conn:stats()
    for id = 1, 50 do conn:exec("INSERT INTO v (id, i) VALUES (?, ?)", id, id * 2) end
    for id = 1, 50 do assert.equal(id * 2, conn:first("SELECT i FROM v WHERE id = ?", id).i) end
    local after = conn:stats()
    assert.equal(before.prepares + 2, after.prepares)
    assert.equal(before.hits + 98, after.hits)
    -- the same text while a cursor of it is open: a second statement, results intact
    local seen = 0
    for a in conn:rows("SELECT id FROM v WHERE id <= ? ORDER BY id", 3) do
      for b in conn:rows("SELECT id FROM v WHERE id <= ? ORDER BY id", 2) do seen = seen + a.id * 10 + b.id end
    end
    assert.equal((11 + 12) + (21 + 22) + (31 + 32), seen)
    -- a loop left early releases its statement
    for _ in conn:rows("SELECT id FROM v ORDER BY id") do break end
    assert.equal(50, count())
  end)

  it("iterates rows as tables by column name, or as arrays", function()
    conn:batch("INSERT INTO v (id, t) VALUES (?, ?)", { { 1, "a" }, { 2, nil }, { 3, "c" } })
    local named, arrays = {}, {}
    for r in conn:rows("SELECT id, t FROM v ORDER BY id") do named[#named + 1] = r end
    for r in conn:arrays("SELECT id, t FROM v ORDER BY id") do arrays[#arrays + 1] = r end
    assert.same({ { id = 1, t = "a" }, { id = 2 }, { id = 3, t = "c" } }, named)
    assert.same({ { 1, "a" }, { 2 }, { 3, "c" } }, arrays)
  end)

  it("a batch runs one statement for every row; a bad row in the middle leaves nothing, names the row", function()
    local rows = {}
    for i = 1, 1200 do rows[i] = { i, i * 3, "r" .. i } end
    assert.equal(1200, conn:batch("INSERT INTO v (id, i, t) VALUES (?, ?, ?)", rows))
    assert.equal(1200, count())
    assert.equal(3600, conn:first("SELECT i FROM v WHERE id = ?", 1200).i)
    conn:exec("DELETE FROM v")
    -- in the caller's transaction: row 700 repeats row 10's key
    rows[700] = { 10, 0, "dup" }
    conn:begin()
    conn:exec("INSERT INTO v (id) VALUES (?)", 5000)
    local ok, err = pcall(conn.batch, conn, "INSERT INTO v (id, i, t) VALUES (?, ?, ?)", rows)
    assert.is_false(ok)
    assert.truthy(err:find("row 700: ", 1, true), err)
    assert.truthy(err:find(B.name == "sqlite" and "UNIQUE constraint failed" or "duplicate key", 1, true), err)
    assert.is_false(pcall(conn.commit, conn))
    assert.equal(0, count())
    -- on its own (no transaction open): the batch is one transaction
    ok, err = pcall(conn.batch, conn, "INSERT INTO v (id, i, t) VALUES (?, ?, ?)", rows)
    assert.is_false(ok)
    assert.truthy(err:find("row 700: ", 1, true), err)
    assert.equal(0, count())
    assert.is_false(conn:in_transaction())
    -- a value that cannot be bound names its row too
    rows[700] = { 700, {}, "x" }
    ok, err = pcall(conn.batch, conn, "INSERT INTO v (id, i, t) VALUES (?, ?, ?)", rows)
    assert.is_false(ok)
    assert.truthy(err:find("row 700: parameter 2 is a table", 1, true), err)
    assert.equal(0, count())
    -- and the connection is still good
    rows[700] = { 700, 2100, "r700" }
    assert.equal(1200, conn:batch("INSERT INTO v (id, i, t) VALUES (?, ?, ?)", rows))
    assert.equal(1200, count())
  end)

  it("refuses mismatched arguments and unbindable values as programmer errors", function()
    assert.has_error(function() conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 1) end)
    assert.has_error(function() conn:exec("INSERT INTO v (id) VALUES (?)", 1, 2) end)
    assert.has_error(function() conn:exec("INSERT INTO v (id, t) VALUES (?, ?)", 1, print) end)
    assert.equal(0, count())
  end)

  it("closes: statements finalised, a closed connection refuses use", function()
    local it = conn:rows("SELECT id FROM v")
    conn:close()
    assert.has_error(function() it() end)
    assert.has_error(function() conn:exec("SELECT 1") end)
    conn:close()   -- twice is fine
    conn = assert(sql.open(H.new_db(dir, "s2.db")))
  end)
end)
end
