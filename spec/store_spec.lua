-- giro.store (bound parameters, transactions), giro.csv and the customer register import.
local store = require("giro.store")
local csv = require("giro.csv")
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("giro.store URLs", function()
  it("chooses the dialect from the URL", function()
    assert.equal("sqlite", store.parse_url("x.db").name)
    assert.equal("sqlite", store.parse_url("sqlite:/tmp/x.db").name)
    assert.equal("postgres", store.parse_url("postgres://u@127.0.0.1/db").name)
    assert.equal("postgres", store.parse_url("postgresql://u@127.0.0.1/db").name)
    assert.is_nil(store.parse_url(""))
  end)

  it("never shows a PostgreSQL password in an error", function()
    local s, err = store.open("postgres://giro:s3cret@127.0.0.1:1/none")
    assert.is_nil(s)
    assert.is_nil(err:find("s3cret", 1, true))
  end)

  it("redacts passwords in URLs, also as a query parameter", function()
    assert.equal("postgres://giro:***@h:5/db", store.redact("postgres://giro:s3cret@h:5/db"))
    assert.equal("postgresql://giro@h/db?sslmode=disable&password=***&x=1",
      store.redact("postgresql://giro@h/db?sslmode=disable&password=s3cret&x=1"))
    assert.equal("postgres://giro@h/db", store.redact("postgres://giro@h/db"))
    assert.equal("my:file@x.db", store.redact("my:file@x.db"))
  end)
end)

-- The same assertions on each backend (SQLite; PostgreSQL where installed), with one
-- PostgreSQL server for the whole file.
for _, B in ipairs(H.backends()) do
describe(B.name, function()
lazy_setup(function() H.use(B) end)
lazy_teardown(function() H.done(B) end)

describe("giro.store", function()
  local dir, db
  before_each(function()
    dir = H.tmpdir()
    db = assert(store.open(H.new_db(dir, "t.db")))
    db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
  end)
  after_each(function() db:close() H.rmdir(dir) end)

  it("stores hostile strings unchanged: quotes, backslashes, SQL, Æøå", function()
    local values = { "O'Brien", "a''b", "back\\slash\\", "'); DROP TABLE t; --", "Åse Ødegård", "?", "" }
    for i, v in ipairs(values) do db:exec("INSERT INTO t (k, v) VALUES (?, ?)", tostring(i), v) end
    for i, v in ipairs(values) do
      assert.equal(v, db:first("SELECT v FROM t WHERE k = ?", tostring(i)).v)
    end
    assert.equal(#values, math.tointeger(db:first("SELECT count(*) AS n FROM t").n))
  end)

  it("binds numbers, booleans and nil; refuses other values and mismatched placeholders", function()
    db:exec("INSERT INTO t (k, v) VALUES (?, ?)", "n", nil)
    assert.is_nil(db:first("SELECT v FROM t WHERE k = ?", "n").v)
    db:exec("INSERT INTO t (k, v) VALUES (?, ?)", "0042", "0042")
    assert.equal("0042", db:first("SELECT v FROM t WHERE k = ?", "0042").v)
    assert.has_error(function() db:exec("INSERT INTO t (k, v) VALUES (?, ?)", "x", {}) end)
    assert.has_error(function() db:exec("SELECT ?, ?", 1) end)
    assert.has_error(function() db:exec("SELECT ?", 1, 2) end)
  end)

  it("looks up IN lists of any length through padded, reused statements", function()
    local rows = {}
    for i = 1, 1200 do rows[i] = { string.format("%04d", i), tostring(i) } end
    db:batch("INSERT INTO t (k, v) VALUES (?, ?)", rows)
    for _, n in ipairs({ 1, 3, 8, 9, 500, 501, 1200 }) do
      local want, keys = {}, {}
      for i = 1, n do keys[i] = string.format("%04d", (i * 7) % 1200 + 1) want[keys[i]] = true end
      keys[#keys + 1] = "none"
      local got, count = {}, 0
      for r in db:rows_in("SELECT k, v FROM t WHERE k IN ({in}) AND v <> ?", keys, "x") do
        got[r.k] = true
        count = count + 1
        assert.equal(tostring(math.tointeger(tonumber(r.k))), r.v)
      end
      assert.same(want, got)
    end
    assert.truthy(db.conn:stats().prepares <= 12)
  end)

  it("rolls a transaction back when its function raises", function()
    assert.has_error(function()
      db:transaction(function()
        db:exec("INSERT INTO t (k, v) VALUES ('a', 'b')")
        error("boom")
      end)
    end, "boom")
    assert.is_nil(db:first("SELECT * FROM t"))
    db:transaction(function() db:exec("INSERT INTO t (k, v) VALUES ('a', 'b')") end)
    assert.equal("b", db:first("SELECT v FROM t").v)
  end)

  it("reports database errors with the statement", function()
    assert.has_error(function() db:exec("INSERT INTO nosuch VALUES (1)") end)
    local ok, err = pcall(db.exec, db, "INSERT INTO nosuch VALUES (1)")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("nosuch", 1, true))
  end)
end)

describe("giro customers import", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local function customers(db)
    local rc, out = H.run({ "customers", "list", "--db", db, "--json" })
    assert.equal(0, rc)
    local list = require("cjson").decode(out)
    local by = {}
    for _, c in ipairs(list) do by[c.account_number] = c end
    return by, #list
  end

  it("loads customers, keeps further columns, updates on re-import instead of duplicating", function()
    local db = H.new_db(dir, "r.db")
    local f = H.write(dir .. "/c.csv", "account_number,first_name,last_name,efaktura,product\n0042,Åse,Østby,yes,strøm\n17,Ola,Nordmann,NO,fiber\n")
    local rc, _, err = H.run({ "customers", "import", f, "--db", db })
    assert.equal(0, rc, err)
    assert.truthy(err:find("2 customer(s) added", 1, true))
    local by, n = customers(db)
    assert.equal(2, n)
    assert.same({ "Åse", "Østby", true, "strøm" }, { by["0042"].first_name, by["0042"].last_name, by["0042"].efaktura, by["0042"].product })
    assert.is_false(by["17"].efaktura)
    H.write(f, "account_number,first_name,last_name,efaktura,product\n0042,Åse,Østby-Berg,yes,strøm\n17,Ola,Nordmann,no,fiber\n99,Kari,Li,yes,x\n")
    rc, _, err = H.run({ "customers", "import", f, "--db", db })
    assert.equal(0, rc)
    assert.truthy(err:find("1 customer(s) added, 1 updated, 1 unchanged", 1, true), err)
    by, n = customers(db)
    assert.equal(3, n)
    assert.equal("Østby-Berg", by["0042"].last_name)
  end)

  it("a first import: spaces trimmed, YES/No, CRLF and BOM; a repeated number names both lines", function()
    local db = H.new_db(dir, "r.db")
    local f = H.write(dir .. "/c.csv", "\239\187\191account_number,first_name,last_name,efaktura,product,region\r\n"
      .. "0042,Åse,Østby,yes,strøm,øst\r\n"
      .. " 17 , Ola ,Nordmann , YES ,fiber,\r\n"
      .. "\r\n"
      .. "99,,Li,No,\"\",x\r\n")
    local rc, _, err = H.run({ "customers", "import", f, "--db", db })
    assert.equal(0, rc, err)
    assert.truthy(err:find("3 customer(s) added", 1, true), err)
    local by, n = customers(db)
    assert.equal(3, n)
    assert.same({ "Åse", "Østby", true, "strøm", "øst" },
      { by["0042"].first_name, by["0042"].last_name, by["0042"].efaktura, by["0042"].product, by["0042"].region })
    assert.same({ "Ola", "Nordmann", true, "fiber", "" },
      { by["17"].first_name, by["17"].last_name, by["17"].efaktura, by["17"].product, by["17"].region })
    assert.same({ "", "Li", false, "", "x" },
      { by["99"].first_name, by["99"].last_name, by["99"].efaktura, by["99"].product, by["99"].region })
    -- a repeated number in a first import (unquoted file: the fast path), nothing imported
    local db2 = H.new_db(dir, "r2.db")
    local lines = { "account_number,first_name,last_name,efaktura" }
    for i = 1, 12000 do lines[#lines + 1] = string.format("%d,A,B,yes", i) end
    lines[#lines + 1] = "7,Again,B,yes"
    local f2 = H.write(dir .. "/dup.csv", table.concat(lines, "\n") .. "\n")
    rc, _, err = H.run({ "customers", "import", f2, "--db", db2 })
    assert.equal(1, rc)
    assert.truthy(err:find(":12002: account_number \"7\" again (first at line 8)", 1, true), err)
    assert.truthy(err:find("no customer imported", 1, true), err)
    if B.name == "sqlite" then
      assert.equal(3, (H.run({ "customers", "list", "--db", db2 })))   -- no register was left behind
    else
      assert.equal(0, select(2, customers(db2)))                        -- the tables, empty
    end
  end)

  it("a first import of a file over 1 MiB: a blank line, CRLF and a bad line past the first MiB", function()
    local db = H.new_db(dir, "big.db")
    local pad = string.rep("x", 100)
    local lines = { "account_number,first_name,last_name,efaktura,product" }
    for i = 1, 12000 do lines[#lines + 1] = string.format("%d,Å%d,B,%s,%s", i, i, i % 2 == 0 and "yes" or "no", pad) end
    lines[11000] = ""                                   -- a blank line (skipped) in the second MiB
    lines[11001] = "10999,Kari , Li,yes," .. pad .. "\r"  -- CRLF and spaces to trim
    local f = H.write(dir .. "/big.csv", table.concat(lines, "\n"))   -- no newline at the end
    local rc, _, err = H.run({ "customers", "import", f, "--db", db })
    assert.equal(0, rc, err)
    assert.truthy(err:find("11999 customer(s) added", 1, true), err)
    assert.equal(11999, H.count(db, "SELECT count(*) FROM customers"))
    assert.equal(6000, H.count(db, "SELECT count(*) FROM customers WHERE efaktura = 1"))
    local by = customers(db)
    assert.same({ "Kari", "Li", true, pad }, { by["10999"].first_name, by["10999"].last_name, by["10999"].efaktura, by["10999"].product })
    assert.same({ "Å12000", "B", true }, { by["12000"].first_name, by["12000"].last_name, by["12000"].efaktura })
    assert.is_nil(by["11000"])                          -- its line is the blank one
    -- a line with one field too many past the first MiB: refused, named, nothing imported
    lines[11500] = "11499,A,B,yes,x,extra"
    local db2 = H.new_db(dir, "big2.db")
    rc, _, err = H.run({ "customers", "import", H.write(dir .. "/big2.csv", table.concat(lines, "\n")), "--db", db2 })
    assert.equal(1, rc)
    assert.truthy(err:find(":11500: 6 fields, the header has 5", 1, true), err)
  end)

  it("refuses a file with bad rows, names every line, changes nothing", function()
    local db = H.new_db(dir, "r.db")
    H.run({ "customers", "import", H.write(dir .. "/ok.csv", "account_number,first_name,last_name,efaktura\n1,A,B,yes\n"), "--db", db })
    local f = H.write(dir .. "/bad.csv", table.concat({
      "account_number,first_name,last_name,efaktura",
      "2,Kari,Li,yes",
      ",No,Number,yes",
      "3,Ola,Hansen,maybe",
      "2,Kari,Again,yes",
      "4,Per",
      "5,,,no",
    }, "\n") .. "\n")
    local rc, _, err = H.run({ "customers", "import", f, "--db", db })
    assert.equal(1, rc)
    for _, l in ipairs({ ":3: account_number is empty", ":4: efaktura is", ":5: account_number \"2\" again", ":6: 2 fields", ":7:" }) do
      assert.truthy(err:find(l, 1, true), l .. " in " .. err)
    end
    local _, n = customers(db)
    assert.equal(1, n)
    -- a header without the required columns
    rc, _, err = H.run({ "customers", "import", H.write(dir .. "/h.csv", "number,name\n1,x\n"), "--db", db })
    assert.equal(1, rc)
    assert.truthy(err:find("lacks account_number, first_name, last_name, efaktura", 1, true), err)
  end)
end)

if B.name == "postgres" then
describe("PostgreSQL specifics", function()
  local pg = require("pgserver")
  local cjson = require("cjson")
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)
  local function server() return H.backend.server end

  it("never prints a password: bad password, bad URI, unknown database, password as parameter", function()
    local srv = server()
    local secret = pg.PASSWORD
    local urls = {
      string.format("postgres://%s:wrong-%s@127.0.0.1:%d/postgres", pg.PASSWORD_ROLE, secret, srv.port),
      string.format("postgres://giro:%s@[::1/register", secret),                      -- libpq quotes the URI
      string.format("postgres://giro:%s@127.0.0.1:%d/nosuch", secret, srv.port),
      string.format("postgres://giro@127.0.0.1:%d/postgres?password=%s&bogus=1", srv.port, secret),
      string.format("postgresql://giro:%s@127.0.0.1:%d/x?bogus=%%zz", secret:gsub("%-", "%%2D"), srv.port),
    }
    for _, url in ipairs(urls) do
      local s, err = store.open(url)
      assert.is_nil(s)
      assert.is_nil(err:find(secret, 1, true), err)
      assert.is_nil(err:find("Pa55", 1, true), err)
      for _, words in ipairs({ { "efaktura", "agreements", "--db", url }, { "customers", "list", "--db", url },
                              { "efaktura", "pending", "--db", url, "--json" } }) do
        local rc, out, e = H.run(words)
        assert.equal(3, rc, e)
        assert.is_nil((out .. e):find("Pa55", 1, true), e)
        assert.truthy(e:find("***", 1, true), e)
      end
    end
  end)

  it("works with a password, and prints none", function()
    local srv = server()
    local _, name = srv:create_db({ owner = pg.PASSWORD_ROLE })
    local url = string.format("postgres://%s:%s@127.0.0.1:%d/%s", pg.PASSWORD_ROLE, pg.PASSWORD, srv.port, name)
    local rc, out, err = H.run({ "customers", "import", H.write(dir .. "/c.csv", H.CUSTOMERS), "--db", url })
    assert.equal(0, rc, err)
    assert.truthy(err:find("5 customer(s) added", 1, true), err)
    rc, out, err = H.run({ "efaktura", "process", H.write(dir .. "/q.xml", H.request{ records = {
      H.add("1000017", "pw==", "Kari", "Nordmann") } }), "--biller", "default", "--db", url, "--json" })
    assert.equal(0, rc, err)
    assert.is_nil((out .. err):find("Pa55", 1, true))
  end)

  it("works for a role with only SELECT, INSERT, UPDATE on the tables and USAGE, UPDATE on the sequences", function()
    local srv = server()
    local db = srv:create_db()                       -- owned by giro, who creates the schema
    assert.equal(0, (H.run({ "customers", "import", H.write(dir .. "/c.csv", H.CUSTOMERS), "--db", db })))
    local owner = assert(store.open(db))
    srv.admin:exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'clerk') THEN CREATE ROLE clerk LOGIN; END IF; END $$")
    owner:exec("GRANT SELECT, INSERT, UPDATE ON giro_meta, customers, agreements, history, files TO clerk")
    owner:exec("GRANT USAGE, UPDATE ON SEQUENCE agreements_id_seq, history_id_seq, files_id_seq TO clerk")
    owner:close()
    local clerk = db:gsub("//giro@", "//clerk@")
    local out = dir .. "/r.xml"
    local rc, _, err = H.run({ "efaktura", "process", H.write(dir .. "/q.xml", H.request{ records = {
      H.add("1000017", "c1==", "Kari", "Nordmann"), H.add("5", "c2==", "A", "B") } }), "--biller", "default",
      "--db", clerk, "-o", out })
    assert.equal(0, rc, err)
    assert.equal(2, #H.answers(out))
    assert.equal(0, (H.run({ "customers", "import", H.write(dir .. "/c2.csv", H.CUSTOMERS .. "77,Per,Li,yes,x\n"), "--db", clerk })))
    local stdout
    rc, stdout = H.run({ "efaktura", "agreements", "--db", clerk, "--json" })
    assert.equal(0, rc)
    assert.equal(2, #cjson.decode(stdout))
    -- but it cannot create a register, and only import tries to
    local empty = (srv:create_db():gsub("//giro@", "//clerk@"))
    rc, _, err = H.run({ "customers", "import", dir .. "/c.csv", "--db", empty })
    assert.equal(3, rc)
    assert.truthy(err:find("permission denied", 1, true), err)
    rc, _, err = H.run({ "customers", "list", "--db", empty })
    assert.equal(3, rc)
    assert.truthy(err:find("not a giro register", 1, true), err)
    assert.truthy(err:find("giro customers import", 1, true), err)
  end)

  it("one writer at a time: a giro transaction holds the advisory write lock until COMMIT", function()
    local url = server():create_db()
    local a, b = assert(store.open(url)), assert(store.open(url))
    local function free()
      return b:first("SELECT pg_try_advisory_xact_lock(?) AS ok", store.WRITE_LOCK).ok == true
    end
    assert.is_true(free())
    a:begin()
    assert.is_false(free())
    a:commit()
    assert.is_true(free())
    a:begin()
    a:rollback()
    assert.is_true(free())
    a:close() b:close()
  end)

  it("refuses to COMMIT a transaction in which a statement failed (PostgreSQL would roll it back quietly)", function()
    local db = assert(store.open(server():create_db()))
    db:exec("CREATE TABLE t (k TEXT PRIMARY KEY)")
    db:begin()
    db:exec("INSERT INTO t VALUES ('a')")
    assert.is_false(pcall(db.exec, db, "INSERT INTO t VALUES ('a')"))   -- duplicate key
    assert.has_error(function() db:commit() end)
    assert.is_nil(db:first("SELECT * FROM t"))
    db:transaction(function() db:exec("INSERT INTO t VALUES ('b')") end)  -- usable again
    assert.equal("b", db:first("SELECT k FROM t").k)
    db:close()
  end)

  it("sorts text byte by byte as SQLite does, whatever the database's collation", function()
    local url = server():create_db()
    local csvf = H.write(dir .. "/c.csv", "account_number,first_name,last_name,efaktura\n"
      .. "a1,A,A,yes\nB2,B,B,yes\n9,C,C,no\n10,D,D,no\nZ,E,E,yes\nb,F,F,yes\nÅ1,G,G,yes\n")
    local lite = dir .. "/r.db"
    local lists = {}
    for i, db in ipairs({ url, lite }) do
      assert.equal(0, (H.run({ "customers", "import", csvf, "--db", db })))
      local rc, out = H.run({ "customers", "list", "--db", db, "--json" })
      assert.equal(0, rc)
      local order = {}
      for _, c in ipairs(cjson.decode(out)) do order[#order + 1] = c.account_number end
      lists[i] = order
    end
    assert.same({ "10", "9", "B2", "Z", "a1", "b", "Å1" }, lists[1])
    assert.same(lists[2], lists[1])
  end)

  it("every command prints the same on PostgreSQL as on SQLite", function()
    H.write(dir .. "/c.csv", H.CUSTOMERS)
    H.write(dir .. "/hold.lua", [[return { options = { hold = { ["01"] = true } },
      validate = function(r, c) if not c then return { reason = "01", why = "unknown" } end return "accept" end }]])
    local req = H.write(dir .. "/q.xml", H.request{ records = { H.add("1000017", "a==", "Kari", "Nordmann"),
      H.add("1000071", "b==", "Kari", "Nordmann"), H.receipt("A", "999", "c=="), H.delete("1", "d==") } })
    -- JSON texts inside JSON (the stored request, proposal, ...) compare decoded: key order varies
    local function deep(v)
      if type(v) == "string" and v:match("^[{%[]") then
        local ok, t = pcall(cjson.decode, v)
        if ok then return deep(t) end
      elseif type(v) == "table" then
        for k, x in pairs(v) do v[k] = deep(x) end
      end
      return v
    end
    local results = {}
    for i, db in ipairs({ dir .. "/r.db", (server():create_db()) }) do
      local lines = {}
      local function run(words)
        local rc, out, err = H.run(words)
        lines[#lines + 1] = rc
        for l in (out .. "\n" .. err):gsub("%d%d%d%d%-%d%d%-%d%dT[%d:]+Z", "TIME"):gmatch("[^\n]+") do
          lines[#lines + 1] = deep(l)
        end
      end
      run({ "customers", "import", dir .. "/c.csv", "--db", db, "--json" })
      run({ "efaktura", "process", req, "--biller", dir .. "/hold.lua", "--db", db, "--json" })
      run({ "efaktura", "process", req, "--biller", dir .. "/hold.lua", "--db", db })
      run({ "efaktura", "pending", "--db", db, "--json" })
      run({ "efaktura", "pending", "--db", db })
      run({ "efaktura", "decide", "--db", db, "2", "accept", "--customer", "1000017" })
      run({ "efaktura", "answer", "--db", db, "--json" })
      for _, json in ipairs({ {}, { "--json" } }) do
        run({ "efaktura", "agreements", "--db", db, table.unpack(json) })
        run({ "efaktura", "agreements", "--db", db, "--status", "active", table.unpack(json) })
        run({ "efaktura", "history", "--db", db, "2", table.unpack(json) })
        run({ "customers", "list", "--db", db, table.unpack(json) })
      end
      results[i] = lines
    end
    assert.equal(2, #results)
    assert.is_true(#results[1] > 40)
    assert.same(results[1], results[2])
  end)

  it("two first runs on an empty database create the schema once", function()
    local url = server():create_db()
    local f = H.write(dir .. "/c.csv", H.CUSTOMERS)
    local cmd = H.sh_quote(H.giro) .. " customers import " .. H.sh_quote(f) .. " --db " .. H.sh_quote(url) .. " 2>&1"
    local p = io.popen("(" .. cmd .. "; echo a=$?) & (" .. cmd .. "; echo b=$?) & wait")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("a=0", 1, true), out)
    assert.truthy(out:find("b=0", 1, true), out)
    assert.equal(5, H.count(url, "SELECT count(*) FROM customers"))
    assert.equal(1, H.count(url, "SELECT count(*) FROM giro_meta"))
  end)
end)
end
end)
end

describe("giro.csv", function()
  it("reads RFC 4180: quotes, doubled quotes, commas and line breaks in fields, CRLF, BOM", function()
    local rows = assert(csv.read_string('\239\187\191a,b,c\r\n1,"x, y","say ""hi"""\r\n\r\n2,"two\nlines",\n'))
    assert.same({ "a", "b", "c" }, rows[1].fields)
    assert.same({ "1", "x, y", 'say "hi"' }, rows[2].fields)
    assert.same({ "2", "two\nlines", "" }, rows[3].fields)
    assert.same({ 1, 2, 4 }, { rows[1].line, rows[2].line, rows[3].line })
  end)

  it("names the line of a broken row", function()
    local rows, err = csv.read_string('a,b\n1,2\n3,"open\n', "c.csv")
    assert.is_nil(rows)
    assert.truthy(err:find("c.csv:3:", 1, true), err)
    rows, err = csv.read_string('a,b\n1,x"y\n', "c.csv")
    assert.truthy(err:find("c.csv:2:", 1, true), err)
    rows, err = csv.read_string('a,b\n\xD8,2\n', "c.csv")
    assert.truthy(err:find("c.csv:2: not UTF-8", 1, true), err)
  end)
end)
