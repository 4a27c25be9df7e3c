-- giro.store (SQL quoting, transactions), giro.csv and the customer register import.
local store = require("giro.store")
local csv = require("giro.csv")
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("giro.store", function()
  local dir, db
  before_each(function()
    dir = H.tmpdir()
    db = assert(store.open(dir .. "/t.db"))
    db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
  end)
  after_each(function() db:close() H.rmdir(dir) end)

  it("chooses the dialect from the URL", function()
    assert.equal("sqlite", store.parse_url("x.db").name)
    assert.equal("sqlite", store.parse_url("sqlite:/tmp/x.db").name)
    assert.equal("postgres", store.parse_url("postgres://u@127.0.0.1/db").name)
    assert.equal("postgres", store.parse_url("postgresql://u@127.0.0.1/db").name)
    assert.is_nil(store.parse_url(""))
  end)

  it("stores hostile strings unchanged: quotes, backslashes, SQL, Æøå", function()
    local values = { "O'Brien", "a''b", "back\\slash\\", "'); DROP TABLE t; --", "Åse Ødegård", "?", "" }
    for i, v in ipairs(values) do db:exec("INSERT INTO t (k, v) VALUES (?, ?)", tostring(i), v) end
    for i, v in ipairs(values) do
      assert.equal(v, db:first("SELECT v FROM t WHERE k = ?", tostring(i)).v)
    end
    assert.equal(#values, math.tointeger(db:first("SELECT count(*) AS n FROM t").n))
  end)

  it("quotes numbers, booleans and nil; refuses NUL bytes and mismatched placeholders", function()
    assert.equal("NULL", db:quote(nil))
    assert.equal("42", db:quote(42))
    assert.equal("1", db:quote(true))
    assert.equal("'0042'", db:quote("0042"))
    assert.has_error(function() db:quote("a\0b") end)
    assert.has_error(function() db:quote({}) end)
    assert.has_error(function() db:sql("SELECT ?, ?", 1) end)
    assert.has_error(function() db:sql("SELECT ?", 1, 2) end)
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

  it("never shows a PostgreSQL password in an error", function()
    local s, err = store.open("postgres://giro:s3cret@127.0.0.1:1/none")
    assert.is_nil(s)
    assert.is_nil(err:find("s3cret", 1, true))
  end)
end)

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
    local db = dir .. "/r.db"
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

  it("refuses a file with bad rows, names every line, changes nothing", function()
    local db = dir .. "/r.db"
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
