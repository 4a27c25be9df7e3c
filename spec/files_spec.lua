-- Issue 9, items 2 and 3: giro never damages, hangs on or silently misses a file, and never
-- answers from an empty or mistyped register.  Every case runs the giro binary as a user
-- would; expectations come from the file system (stat, bytes, hashes), not from giro.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local fs = require("giro.fs")
local output = require("giro.output")
local hash = require("giro.hash")

local q = H.sh_quote

local function sha(path)
  local s = H.read(path)
  return s and hash.hex(hash.sha256(s))
end

local function ls(dir)
  local names = assert(fs.list(dir))
  table.sort(names)
  return names
end

local function is_root()
  local p = io.popen("id -u")
  local id = p:read("l")
  p:close()
  return id == "0"
end

-- giro in the background: its pid to dir/bg.pid, stderr to dir/bg.err, its exit status
-- (128 + N for a signal) to dir/bg.rc when it ends.  Returns the pid.
local function spawn(dir, words)
  local cmd = { q(H.giro) }
  for _, w in ipairs(words) do cmd[#cmd + 1] = q(w) end
  local inner = string.format("cd %s && { %s >/dev/null 2>bg.err </dev/null & echo $! >bg.pid.part; mv bg.pid.part bg.pid; "
    .. "wait $!; echo $? >bg.rc.part; mv bg.rc.part bg.rc; }", q(dir), table.concat(cmd, " "))
  assert(os.execute("sh -c " .. q(inner) .. " >/dev/null 2>&1 &"))
  local pid
  for _ = 1, 500 do
    pid = H.read(dir .. "/bg.pid")
    if pid then break end
    os.execute("sleep 0.02")
  end
  return assert(math.tointeger(tonumber(pid)), "no pid")
end

local function sleep(s) os.execute("sleep " .. s) end

local function wait_for(pred, seconds)
  for _ = 1, math.floor(seconds / 0.02) do
    local v = pred()
    if v then return v end
    sleep(0.02)
  end
  return nil
end

local function temps(dir)
  local out = {}
  for _, n in ipairs(ls(dir)) do if output.temp_pid(n) or n:find("lua_", 1, true) then out[#out + 1] = n end end
  return out
end

-- a request with n EnrollmentAdd P records (accounts not in the register: each answered 01)
local function big_request(path, n)
  local recs = {}
  for i = 1, n do recs[i] = H.add(tostring(2000000 + i), "u" .. i .. "==", "Kari", "Nordmann") end
  return H.write(path, H.request{ records = recs })
end

local REQ = H.request{ records = { H.add("1000017", "a1==", "Kari Anne", "Nordmann"), H.add("5", "a2==", "A", "B") } }

describe("giro writes outputs without damaging anything", function()
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  local function process(req, out, extra)
    local words = { "efaktura", "process", req, "--biller", "default", "--db", db }
    if out then words[#words + 1] = "-o" words[#words + 1] = out end
    for _, w in ipairs(extra or {}) do words[#words + 1] = w end
    return H.run(words)
  end

  it("refuses -o /dev/null (a device) before any work: still a character device, register unchanged", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local before = sha(db)
    local rc, out, err = process(req, "/dev/null")
    assert.equal(2, rc, err)
    assert.equal("", out)
    assert.matches("/dev/null is a character device", err)
    assert.equal("char", fs.lstat("/dev/null").type)
    assert.equal(before, sha(db))
    if is_root() then
      -- as root a rename over /dev/null would succeed: the refusal is what protects it
      assert.equal(0, os.execute("test -c /dev/null") and 0 or 1)
    end
  end)

  it("follows a symlink and writes its target; the link stays a link, no temp files anywhere", function()
    os.execute("mkdir " .. q(dir .. "/upload"))
    local req = H.write(dir .. "/q.xml", REQ)
    assert(os.execute("ln -s upload/response.xml " .. q(dir .. "/link.xml")))
    local rc, _, err = process(req, dir .. "/link.xml")
    assert.equal(0, rc, err)
    assert.equal("link", fs.lstat(dir .. "/link.xml").type)
    assert.equal("file", fs.lstat(dir .. "/upload/response.xml").type)
    assert.equal(2, #H.answers(dir .. "/upload/response.xml"))
    assert.is_true(H.xsd_valid(dir .. "/upload/response.xml"))
    assert.same({}, temps(dir))
    assert.same({ "response.xml" }, ls(dir .. "/upload"))
    -- a second run (replay) writes through the existing link and target the same way
    rc, _, err = process(req, dir .. "/link.xml")
    assert.equal(0, rc, err)
    assert.equal("link", fs.lstat(dir .. "/link.xml").type)
    assert.equal(2, #H.answers(dir .. "/upload/response.xml"))
  end)

  it("refuses -o naming the request itself (also through a link or a hard link); request and register unchanged", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local before_db, before_req = sha(db), sha(req)
    assert(os.execute("ln -s q.xml " .. q(dir .. "/alias.xml") .. " && ln " .. q(req) .. " " .. q(dir .. "/hard.xml")))
    for _, out in ipairs({ req, dir .. "/alias.xml", dir .. "/hard.xml", dir .. "/./q.xml" }) do
      local rc, _, err = process(req, out)
      assert.equal(2, rc, err)
      assert.matches("is the input file", err)
    end
    assert.equal(before_req, sha(req))
    assert.equal(before_db, sha(db))
  end)

  it("refuses -o naming the register's own file (process and answer)", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local before = sha(db)
    local rc, _, err = process(req, db)
    assert.equal(2, rc, err)
    assert.matches("is the register", err)
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", db })
    assert.equal(2, rc, err)
    assert.equal(before, sha(db))
  end)

  it("refuses -o naming the biller rule file; the rule stays as it was", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local rule = H.write(dir .. "/b.lua", H.read("rules/billers/default.lua"))
    local before = sha(rule)
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", rule })
    assert.equal(2, rc, err)
    assert.matches("is the biller rule", err)
    assert.equal(before, sha(rule))
  end)

  it("refuses -o naming a directory or a FIFO before any work; register and directory unchanged", function()
    local req = H.write(dir .. "/q.xml", REQ)
    os.execute("mkdir " .. q(dir .. "/out") .. " && mkfifo " .. q(dir .. "/pipe"))
    local before = sha(db)
    local rc, _, err = process(req, dir .. "/out")
    assert.equal(2, rc, err)
    assert.matches(dir .. "/out is a directory", err, 1, true)
    assert.same({}, ls(dir .. "/out"))
    rc, _, err = process(req, dir .. "/pipe")
    assert.equal(2, rc, err)
    assert.matches("is a FIFO", err)
    assert.equal(before, sha(db))
    assert.same({}, temps(dir))
  end)

  it("refuses -o in a directory that does not exist or takes no new files (exit 3), register unchanged", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local before = sha(db)
    local rc, _, err = process(req, dir .. "/nowhere/r.xml")
    assert.equal(3, rc, err)
    assert.matches("does not exist", err)
    -- /proc/1 refuses new files even to root (chmod would not stop root)
    rc, _, err = process(req, "/proc/1/r.xml")
    assert.equal(3, rc, err)
    assert.matches("cannot create files in /proc/1: ", err, 1, true)
    assert.equal(before, sha(db))
  end)

  it("efaktura answer refuses a directory as -o before touching the register", function()
    local rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir })
    assert.equal(2, rc, err)
    assert.matches("is a directory", err)
  end)

  it("stdout mode leaves no file in TMPDIR, the working directory or /tmp's lua_XXXXXX", function()
    local req = H.write(dir .. "/q.xml", REQ)
    os.execute("mkdir " .. q(dir .. "/tmp") .. " " .. q(dir .. "/cwd"))
    local before = ls(dir)
    local p = io.popen(string.format("cd %s && TMPDIR=%s %s efaktura process %s "
      .. "--biller default --db %s 2>/dev/null", q(dir .. "/cwd"), q(dir .. "/tmp"), q(H.giro), q(req), q(db)))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("<EnrollmentRS>", 1, true))
    assert.same({}, ls(dir .. "/tmp"))
    assert.same({}, ls(dir .. "/cwd"))
    assert.same(before, ls(dir))
    -- and the library has no os.tmpname left (it used /tmp regardless of TMPDIR)
    local g = io.popen("grep -rl 'os%.tmpname\\|os\\.tmpname' lua/giro")
    assert.equal("", g:read("a"))
    g:close()
  end)

  it("a killed run's temporary file is removed by the next run; a live process's is kept", function()
    local req = big_request(dir .. "/big.xml", 600)
    local rc = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" },
      { GIRO_TEST_CRASH_AT = "after-batch" })
    assert.equal(137, rc)
    local left = temps(dir)
    assert.equal(1, #left)
    assert.matches("^%.r%.xml%.giro%-%d+%-0%.tmp$", left[1])
    assert.is_false(fs.alive(output.temp_pid(left[1])))
    -- a temp of a process that is alive (pid 1) and a leftover of the old naming scheme
    H.write(dir .. "/.r.xml.giro-1-0.tmp", "live")
    H.write(dir .. "/.r.xml.giro-0123456789ab.tmp-" .. output.temp_pid(left[1]) .. "-0", "old")
    rc = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
    assert.equal(0, rc)
    assert.same({ ".r.xml.giro-1-0.tmp" }, temps(dir))
    assert.equal(600, #H.answers(dir .. "/r.xml"))
  end)

  it("SIGTERM or SIGINT mid-run removes the temporary file, writes nothing, leaves the register unchanged, exits 128+N", function()
    local req = big_request(dir .. "/big.xml", 20000)
    local before = sha(db)
    for _, s in ipairs({ { "TERM", 143 }, { "INT", 130 } }) do
      os.remove(dir .. "/bg.rc")
      os.remove(dir .. "/bg.pid")
      local pid = spawn(dir, { "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
      local tmp = wait_for(function() return temps(dir)[1] end, 60)
      assert.truthy(tmp, "no temporary file appeared")
      assert.equal(pid, output.temp_pid(tmp))
      assert(os.execute("kill -" .. s[1] .. " " .. pid))
      local rc = wait_for(function() return H.read(dir .. "/bg.rc") end, 60)
      assert.equal(s[2] .. "\n", rc)
      assert.matches("interrupted by SIG" .. s[1], H.read(dir .. "/bg.err"))
      assert.same({}, temps(dir))
      assert.is_nil(fs.lstat(dir .. "/r.xml"))
      assert.equal(before, sha(db))
    end
  end)

  it("SIGKILL mid-run (from outside) leaves a temp that the rerun removes; the rerun answers everything", function()
    local req = big_request(dir .. "/big.xml", 20000)
    local before = sha(db)
    local pid = spawn(dir, { "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
    assert.truthy(wait_for(function() return temps(dir)[1] end, 60), "no temporary file appeared")
    assert(os.execute("kill -KILL " .. pid))
    assert.equal("137\n", wait_for(function() return H.read(dir .. "/bg.rc") end, 60))
    assert.equal(1, #temps(dir))
    assert.is_nil(fs.lstat(dir .. "/r.xml"))
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
    assert.equal(0, rc, err)
    assert.truthy(err:find("20000 answer(s)", 1, true), err)
    assert.same({}, temps(dir))
    assert.is_true(H.xsd_valid(dir .. "/r.xml"))
    assert.are_not.equal(before, sha(db))
  end)

  it("a killed answer run's temporary file is removed by the next answer, which writes the response", function()
    local rule = H.write(dir .. "/hold.lua", [[
      local r = { options = { hold = { ["01"] = true } } }
      function r.validate(request, customer)
        if not customer then return { reason = "01", why = "unknown reference" } end
        return { accept = true }
      end
      return r]])
    local req = H.write(dir .. "/q.xml", H.request{ records = { H.add("1000071", "h1==", "Kari Anne", "Nordmann") } })
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", dir .. "/r1.xml" })
    assert.equal(0, rc, err)
    local _, stdout = H.run({ "efaktura", "pending", "--db", db, "--json" })
    local id = tostring(math.tointeger(require("cjson").decode(stdout)[1].id))
    assert.equal(0, (H.run({ "efaktura", "decide", "--db", db, id, "accept", "--customer", "1000017" })))
    rc = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/a.xml" }, { GIRO_TEST_CRASH_AT = "after-validate" })
    assert.equal(137, rc)
    assert.equal(1, #temps(dir))
    assert.is_nil(fs.lstat(dir .. "/a.xml"))
    rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/a.xml" })
    assert.equal(0, rc, err)
    assert.same({}, temps(dir))
    assert.equal(1, #H.answers(dir .. "/a.xml"))
    assert.equal("A", H.answers(dir .. "/a.xml")[1].BillerEnrollmentStatus)
  end)
end)

describe("giro stopped while blocked in a C call", function()
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  it("SIGTERM while waiting for the register's write lock ends giro by the signal, register unchanged", function()
    local req = H.write(dir .. "/q.xml", REQ)
    -- another writer holds the SQLite write lock for 20 s (giro would wait 10 s, then fail)
    assert(os.execute(string.format("cd %s && { (echo 'BEGIN IMMEDIATE;'; sleep 20) | sqlite3 %s >/dev/null 2>&1 & "
      .. "echo $! >holder.pid; }", q(dir), q(db))))
    os.execute("sleep 0.3")
    local before = sha(db)
    local pid = spawn(dir, { "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
    -- past start-up (the register is open), then into sqlite's busy wait (which lasts 10 s)
    assert.truthy(wait_for(function()
      local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
      local fds = p:read("a")
      p:close()
      return fds:find(db, 1, true)
    end, 30), "giro never opened the register")
    os.execute("sleep 0.5")
    assert(os.execute("kill -TERM " .. pid))
    local rc = wait_for(function() return H.read(dir .. "/bg.rc") end, 30)
    os.execute("pkill -P $(cat " .. q(dir .. "/holder.pid") .. ") 2>/dev/null; kill $(cat " .. q(dir .. "/holder.pid") .. ") 2>/dev/null")
    assert.equal("143\n", rc)
    -- ended from the signal handler after its grace period (3 s), not after the lock wait's
    -- own 10 s: that path would end in Lua, with its "interrupted by SIGTERM" message
    assert.equal("", H.read(dir .. "/bg.err"))
    assert.same({}, temps(dir))
    assert.is_nil(fs.lstat(dir .. "/r.xml"))
    assert.equal(before, sha(db))
  end)
end)

describe("giro refuses inputs that are not regular files, at once", function()
  local dir, db
  before_each(function() dir, db = H.setup() end)
  after_each(function() H.rmdir(dir) end)

  -- giro under `timeout 10`: 124 would mean it hung
  local function run_timed(words)
    local parts = { "timeout 10", q(H.giro) }
    for _, w in ipairs(words) do parts[#parts + 1] = q(w) end
    local p = io.popen("" .. table.concat(parts, " ") .. " </dev/null >/dev/null 2>"
      .. q(dir .. "/t.err") .. "; echo $?")
    local rc = tonumber(p:read("l"))
    p:close()
    return rc, H.read(dir .. "/t.err")
  end

  it("a request that is a FIFO is refused without blocking", function()
    assert(os.execute("mkfifo " .. q(dir .. "/req.xml")))
    local before = sha(db)
    local rc, err = run_timed({ "efaktura", "process", dir .. "/req.xml", "--biller", "default", "--db", db })
    assert.equal(2, rc, err)
    assert.matches("is a FIFO", err)
    assert.equal(before, sha(db))
    rc, err = run_timed({ "efaktura", "validate", dir .. "/req.xml" })
    assert.equal(2, rc, err)    -- not a regular file: usage, as for the request of process
    assert.matches("is a FIFO", err)
    -- a rule file is part of the set-up: one that cannot be loaded, a FIFO too, is exit 3
    rc, err = run_timed({ "rules", "check", dir .. "/req.xml" })
    assert.equal(3, rc, err)
    assert.matches("is a FIFO", err)
    rc, err = run_timed({ "efaktura", "process", H.write(dir .. "/q.xml", REQ), "--biller", dir .. "/req.xml", "--db", db })
    assert.equal(3, rc, err)
    assert.matches("is a FIFO", err)
  end)

  it("a request that is a symlink to /dev/zero is refused without reading it", function()
    assert(os.execute("ln -s /dev/zero " .. q(dir .. "/zero.xml")))
    local rc, err = run_timed({ "efaktura", "process", dir .. "/zero.xml", "--biller", "default", "--db", db })
    assert.equal(2, rc, err)
    assert.matches("is a character device", err)
    rc, err = run_timed({ "customers", "import", dir .. "/zero.xml", "--db", db })
    assert.equal(2, rc, err)
  end)

  it("--key-file /dev/zero and an oversized key file are refused quickly, naming the file", function()
    local form = { "pay", "form", "danske", "--today", "2024-01-01", "SUMMA=100", "VIITE=1232", "KNRO=000000000000",
      "ERAPAIVA=01.01.2024", "OKURL=https://www.kauppa.fi/okpaluu", "VIRHEURL=https://www.kauppa.fi/virhepaluu" }
    local function with_key(path)
      local w = { table.unpack(form) }
      w[#w + 1] = "--key-file"
      w[#w + 1] = path
      return run_timed(w)
    end
    local rc, err = with_key("/dev/zero")
    assert.equal(2, rc, err)    -- not a regular file: usage, as for every input (README)
    assert.equal("giro pay: cannot read the key file /dev/zero (it is a character device; a key file must be a regular file)\n", err)
    H.write(dir .. "/big.key", ("k"):rep(64 * 1024 + 1))
    rc, err = with_key(dir .. "/big.key")
    assert.equal(3, rc, err)
    assert.matches("65537 bytes; a key file has at most 65536", err)
    assert.falsy(err:find("kkkk", 1, true))
  end)
end)

describe("giro never answers from an empty or mistyped register", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  local COMMANDS = {
    { "efaktura", "process", "REQ", "--biller", "default" },
    { "efaktura", "pending" }, { "efaktura", "agreements" }, { "efaktura", "history", "1" },
    { "efaktura", "decide", "1", "accept" }, { "efaktura", "answer" }, { "customers", "list" },
  }

  it("every command but customers import refuses a missing --db (exit 3, naming the path and the command that creates it) and creates nothing", function()
    local req = H.write(dir .. "/q.xml", REQ)
    local db = dir .. "/typo.db"
    for _, c in ipairs(COMMANDS) do
      local words = {}
      for i, w in ipairs(c) do words[i] = (w == "REQ") and req or w end
      words[#words + 1] = "--db"
      words[#words + 1] = db
      local rc, _, err = H.run(words)
      assert.equal(3, rc, table.concat(c, " ") .. ": " .. tostring(err))
      assert.truthy(err:find(db, 1, true), err)
      assert.truthy(err:find("giro customers import", 1, true), err)
      assert.is_nil(fs.lstat(db))
    end
    assert.same({ "q.xml" }, ls(dir))
    -- GIRO_DB and the default giro.db likewise
    local rc, _, err = H.run({ "efaktura", "agreements" }, { GIRO_DB = db })
    assert.equal(3, rc, err)
    assert.is_nil(fs.lstat(db))
  end)

  it("a database that holds no giro register is refused, not filled with tables", function()
    os.execute("sqlite3 " .. q(dir .. "/other.db") .. " 'CREATE TABLE t (x)'")
    local before = sha(dir .. "/other.db")
    local rc, _, err = H.run({ "efaktura", "agreements", "--db", dir .. "/other.db" })
    assert.equal(3, rc, err)
    assert.matches("not a giro register", err)
    assert.equal(before, sha(dir .. "/other.db"))
  end)

  it("a failed first import leaves no register behind; a failed import into an existing one changes nothing", function()
    H.write(dir .. "/bad.csv", "account_number,first_name\n1,Kari\n")
    local db = dir .. "/new.db"
    local rc, _, err = H.run({ "customers", "import", dir .. "/bad.csv", "--db", db })
    assert.equal(1, rc, err)
    assert.is_nil(fs.lstat(db))
    assert.is_nil(fs.lstat(db .. "-journal"))
    H.write(dir .. "/good.csv", "account_number,first_name,last_name,efaktura\n1,Kari,Nordmann,yes\n")
    assert.equal(0, (H.run({ "customers", "import", dir .. "/good.csv", "--db", db })))
    local before = sha(db)
    assert.equal(1, (H.run({ "customers", "import", dir .. "/bad.csv", "--db", db })))
    assert.equal(before, sha(db))
  end)

  it("a register in a directory that does not exist: exit 3 with the directory and the OS reason", function()
    H.write(dir .. "/good.csv", "account_number,first_name,last_name,efaktura\n1,Kari,Nordmann,yes\n")
    local rc, _, err = H.run({ "customers", "import", dir .. "/good.csv", "--db", dir .. "/no/such/r.db" })
    assert.equal(3, rc, err)
    assert.truthy(err:find(dir .. "/no/such: No such file or directory", 1, true), err)
  end)

  it("process refuses a register with no customers (exit 3) and marks nothing processed", function()
    H.write(dir .. "/c.csv", "account_number,first_name,last_name,efaktura,product\n")
    local db = dir .. "/r.db"
    assert.equal(0, (H.run({ "customers", "import", dir .. "/c.csv", "--db", db })))
    local req = H.write(dir .. "/q.xml", REQ)
    local rc, out, err = H.run({ "efaktura", "process", req, "--biller", "default", "--db", db, "-o", dir .. "/r.xml" })
    assert.equal(3, rc, err)
    assert.equal("", out)
    assert.matches("no customers", err)
    assert.is_nil(fs.lstat(dir .. "/r.xml"))
    assert.equal(0, H.count(db, "SELECT count(*) AS n FROM files"))
  end)

  it("a libpq key=value connection string is PostgreSQL: no file created, the password never shown", function()
    local conn = "host=127.0.0.1 port=1 dbname=giro user=giro password=s3cr3tPW connect_timeout=2"
    local p = io.popen("cd " .. q(dir) .. " && " .. q(H.giro) .. " efaktura agreements --db "
      .. q(conn) .. " 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    assert.matches("rc=3", out)
    assert.falsy(out:find("s3cr3tPW", 1, true), out)
    assert.same({}, ls(dir))
    -- quoted password, and a word=... that is no libpq keyword: refused (usage), no file
    local csv_dir = H.tmpdir()
    local csv = H.write(csv_dir .. "/c.csv", H.CUSTOMERS)
    for _, c in ipairs({ "host=127.0.0.1 port=1 password='s3cr3t PW' connect_timeout=2", "hots=db password=s3cr3tPW" }) do
      p = io.popen("cd " .. q(dir) .. " && " .. q(H.giro) .. " customers import " .. q(csv) .. " --db "
        .. q(c) .. " 2>&1; echo rc=$?")
      out = p:read("a")
      p:close()
      assert.falsy(out:find("s3cr3t", 1, true), out)
      assert.same({}, ls(dir))
    end
    H.rmdir(csv_dir)
    assert.matches("rc=2", out)
    assert.matches("not a libpq connection keyword", out)
  end)
end)

describe("giro.output (library)", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("follows a chain of links, also to a file not made yet, and writes the end of it", function()
    os.execute("mkdir " .. q(dir .. "/far"))
    assert(os.execute(string.format("cd %s && ln -s far/new.xml b && ln -s b a", q(dir))))
    local out = assert(output.target(dir .. "/a"))
    assert.equal(dir .. "/far/new.xml", out.final)
    local t = assert(out:open())
    assert(t:write("hello\n"))
    assert.equal(1, #temps(dir .. "/far"))
    assert(out:commit())
    assert.equal("hello\n", H.read(dir .. "/far/new.xml"))
    assert.equal("link", fs.lstat(dir .. "/a").type)
    assert.equal("link", fs.lstat(dir .. "/b").type)
    assert.same({ "new.xml" }, ls(dir .. "/far"))
  end)

  it("a replaced file keeps its permission bits (the temp takes them before any byte)", function()
    local path = H.write(dir .. "/r.xml", "old")
    assert(os.execute("chmod 0640 " .. q(path)))
    local out = assert(output.target(path))
    local t = assert(out:open())
    assert.equal(416, fs.stat(t:path()).mode)     -- 0640
    assert(t:write("new"))
    assert(out:commit())
    assert.equal("new", H.read(path))
    local p = io.popen("stat -c %a " .. q(path))
    assert.equal("640", p:read("l"))
    p:close()
  end)

  it("refuses a link loop and a link to a directory, naming both", function()
    assert(os.execute(string.format("cd %s && ln -s loop2 loop1 && ln -s loop1 loop2 && ln -s /tmp tmplink", q(dir))))
    local t, err, kind = output.target(dir .. "/loop1")
    assert.is_nil(t)
    assert.equal("env", kind)
    assert.matches("Too many levels of symbolic links", err)
    t, err, kind = output.target(dir .. "/tmplink")
    assert.is_nil(t)
    assert.equal("usage", kind)
    assert.truthy(err:find(dir .. "/tmplink (the link's target /tmp) is a directory", 1, true), err)
  end)

  it("an aborted or dropped target leaves no temp; stdout targets never touch the file system", function()
    local out = assert(output.target(dir .. "/x.xml"))
    assert(out:open())
    out:abort()
    do
      local o2 <close> = assert(output.target(dir .. "/y.xml"))
      assert(o2:open())
    end
    assert.same({}, ls(dir))
    local s = assert(output.target("-"))
    local m = assert(s:open())
    assert.matches("^/proc/self/fd/%d+$", m:path())
    s:abort()
    assert.same({}, ls(dir))
  end)

  it("knows its temp names: this version's and the old scheme's carry the PID", function()
    assert.equal(4242, output.temp_pid(".r.xml.giro-4242-0.tmp"))
    assert.equal(77, output.temp_pid(".r.xml.giro-0123456789ab.tmp-77-3"))
    assert.is_nil(output.temp_pid("r.xml"))
    assert.is_nil(output.temp_pid(".r.xml.giro-x-0.tmp"))
  end)
end)

for _, B in ipairs(H.backends()) do
  if B.name == "postgres" then
    describe("a libpq key=value --db on a real PostgreSQL server", function()
      lazy_setup(function() H.use(B) end)
      lazy_teardown(function() H.done(B) end)
      local pg = require("pgserver")

      it("is PostgreSQL: import creates the register, process answers from it, no file appears, no password shown", function()
        local srv = H.backend.server
        local _, name = srv:create_db({ owner = pg.PASSWORD_ROLE })
        local kv = string.format("host=127.0.0.1 port=%d user=%s password='%s' dbname=%s", srv.port, pg.PASSWORD_ROLE,
          pg.PASSWORD, name)
        local dir = H.tmpdir()
        local csv_dir = H.tmpdir()
        local csv = H.write(csv_dir .. "/c.csv", H.CUSTOMERS)
        local req = H.write(csv_dir .. "/q.xml", REQ)
        local function giro_in_dir(args)
          local p = io.popen("cd " .. q(dir) .. " && " .. q(H.giro) .. " " .. args
            .. " 2>&1; echo rc=$?")
          local out = p:read("a")
          p:close()
          return out
        end
        local out = giro_in_dir("customers import " .. q(csv) .. " --db " .. q(kv))
        assert.matches("rc=0", out)
        out = giro_in_dir("efaktura process " .. q(req) .. " --biller default --db " .. q(kv) .. " -o " .. q(csv_dir .. "/r.xml"))
        assert.matches("rc=0", out)
        assert.equal(2, #H.answers(csv_dir .. "/r.xml"))
        out = giro_in_dir("efaktura agreements --json --db " .. q(kv))
        assert.matches("rc=0", out)
        assert.equal(2, select(2, out:gsub('"thor_user_id"', "")))
        out = giro_in_dir("efaktura agreements --db " .. q(kv:gsub("password='", "password='wrong")))
        assert.matches("rc=3", out)
        assert.falsy(out:find(pg.PASSWORD, 1, true), out)
        assert.same({}, ls(dir))
        H.rmdir(dir)
        H.rmdir(csv_dir)
      end)
    end)
  end
end
