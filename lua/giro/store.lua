--- giro.store: the SQL connection behind giro's registers (customers, eFaktura agreements).
--
--   local store = require("giro.store")
--   local db = assert(store.open("register.db"))      -- or "sqlite:PATH", "postgres://..."
--   db:exec("UPDATE customers SET efaktura = ? WHERE account_number = ?", 1, "0042")
--   for row in db:rows("SELECT * FROM customers WHERE last_name = ?", "Ødegård") do ... end
--   db:transaction(function() ... end)                 -- BEGIN ... COMMIT, ROLLBACK on error
--
-- LuaSQL has no bind parameters, so every value reaches SQL through one function,
-- `db:quote(v)` (strings via the driver's own escape, numbers via %d / %.17g, nil as
-- NULL, booleans as 1/0).  `?` in the statement text is replaced by the quoted
-- arguments in order; statements written here never contain a literal `?`.
--
-- What differs between SQLite and PostgreSQL lives in one dialect table (DDL types,
-- BEGIN flavour, how to open).  The SQL in the registers is written once, in the
-- common subset: `INSERT ... ON CONFLICT (...) DO UPDATE SET x = excluded.x`,
-- multi-row VALUES, `IN (...)`, TEXT/INTEGER columns.
--
-- PostgreSQL behaves as SQLite does where the registers can tell:
--  * one writer at a time: SQLite's BEGIN IMMEDIATE takes the database's write lock;
--    on PostgreSQL every transaction takes one transaction-scoped advisory lock
--    (pg_advisory_xact_lock(WRITE_LOCK)), so two giro runs serialise the same way and
--    the second one sees what the first committed (READ COMMITTED: each statement
--    after the lock has a fresh snapshot);
--  * TEXT compares byte by byte (SQLite's BINARY): text columns are created with
--    COLLATE "C", whatever the database's default collation;
--  * a failed statement aborts a PostgreSQL transaction: COMMIT after one would quietly
--    roll back, so commit() raises instead;
--  * the schema is created only where missing (to_regclass), so a role with only
--    SELECT/INSERT/UPDATE rights can use a register its owner created;
--  * the URL's password never appears in a message (store.redact, and every error
--    text of the driver is scrubbed of it).
local store = {}

--- The transaction-scoped advisory lock every PostgreSQL write transaction takes
-- ("giro" in ASCII); documented in docs/efaktura.md for other writers to the register.
store.WRITE_LOCK = 0x6769726f

local dialects = {}

dialects.sqlite = {
  name = "sqlite",
  serial = "INTEGER PRIMARY KEY",          -- rowid alias: assigned on insert
  -- a table looked up only by its TEXT primary key: one B-tree instead of a table and its
  -- index (half the page reads per lookup)
  without_rowid = " WITHOUT ROWID",
  begin = { "BEGIN IMMEDIATE" },           -- take the write lock up front
  open = function(target)
    local ok, driver = pcall(require, "luasql.sqlite3")
    if not ok then return nil, "SQLite driver missing (Debian package lua-sql-sqlite3)" end
    local env = driver.sqlite3()
    local conn, err = env:connect(target)
    if not conn then env:close() return nil, err end
    return conn, env
  end,
  setup = {
    "PRAGMA busy_timeout = 10000",  -- a second giro waits for the first, not fails
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
    -- A multi-row INSERT ... ON CONFLICT inside the file's transaction keeps a statement
    -- journal (to undo just that statement); in a temporary file that was ~170,000 page
    -- writes for 100k records.  In memory it costs at most one batch's pages.
    "PRAGMA temp_store = MEMORY",
    -- 4 MiB of page cache (default 2 MiB): halves the page re-reads of a 100k-record
    -- file, and is filled by a 10k-record file too, so peak memory stays flat.
    "PRAGMA cache_size = -4096",
  },
}

dialects.postgres = {
  name = "postgres",
  serial = "BIGSERIAL PRIMARY KEY",
  -- the equivalent of BEGIN IMMEDIATE: one writer at a time, waiting for the other
  begin = { "BEGIN", string.format("SELECT pg_advisory_xact_lock(%d)", store.WRITE_LOCK) },
  open = function(url)
    local ok, driver = pcall(require, "luasql.postgres")
    if not ok then return nil, "PostgreSQL driver missing (Debian package lua-sql-postgres)" end
    local env = driver.postgres()
    local conn, err = env:connect(url)   -- libpq accepts the URL as a connection string
    if not conn then env:close() return nil, err end
    return conn, env
  end,
  setup = { "SET client_min_messages = warning", "SET standard_conforming_strings = on",
            "SET client_encoding = 'UTF8'" },
  -- TEXT compares byte by byte, as in SQLite (ORDER BY account_number is the same on both)
  ddl = function(stmt) return (stmt:gsub("%f[%w_]TEXT%f[^%w_]", 'TEXT COLLATE "C"')) end,
  -- the object a CREATE ... IF NOT EXISTS statement makes, to skip it when it exists
  -- (PostgreSQL checks the CREATE privilege before IF NOT EXISTS)
  creates = function(stmt) return stmt:match("^%s*CREATE%s+%u+%s+IF%s+NOT%s+EXISTS%s+([%w_]+)") end,
  aborts_on_error = true,
  -- Ids as SQLite assigns them (max + 1): a sequence is not transactional, so a rolled-back
  -- transaction (a crash, a refused file) would leave a gap and the rerun would number its
  -- rows differently.  Under the write lock no other giro inserts, so setting each serial's
  -- sequence to max(id) + 1 at BEGIN gives the ids an uninterrupted run would have.
  locked = function(db)
    if not db.serials or #db.serials == 0 then return end
    local parts = {}
    for i, s in ipairs(db.serials) do
      parts[i] = string.format("setval(pg_get_serial_sequence('%s', '%s'), (SELECT coalesce(max(%s), 0) + 1 FROM %s), false)",
        s[1], s[2], s[2], s[1])
    end
    db:exec("SELECT " .. table.concat(parts, ", "))
  end,
}

store.dialects = dialects

-- libpq's connection keywords (PostgreSQL 15, "Parameter Key Words"): a --db value that
-- starts with one of them and "=" is a key=value connection string, not a file name.
local LIBPQ_KEYWORDS = {}
for k in ([[host hostaddr port dbname user password passfile channel_binding connect_timeout
  client_encoding options application_name fallback_application_name keepalives keepalives_idle
  keepalives_interval keepalives_count tcp_user_timeout replication gssencmode sslmode requiressl
  sslcompression sslcert sslkey sslpassword sslrootcert sslcrl sslcrldir sslsni requirepeer
  ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib service
  target_session_attrs load_balance_hosts]]):gmatch("%S+") do LIBPQ_KEYWORDS[k] = true end

local function is_pg_url(url)
  return type(url) == "string" and (url:match("^postgres://") or url:match("^postgresql://")) ~= nil
end

-- "host=db dbname=giro ..." (libpq's key=value form): the first word's keyword, or nil.
local function kv_keyword(url)
  return type(url) == "string" and url:match("^%s*([%a_][%w_]*)%s*=") or nil
end

local function is_pg(url)
  return is_pg_url(url) or (kv_keyword(url) ~= nil and LIBPQ_KEYWORDS[kv_keyword(url)] == true)
end
store.is_postgres = is_pg

--- Which dialect and target a --db value names.
-- "postgres://..." / "postgresql://..." or libpq's "host=... dbname=..." → postgres;
-- "sqlite:PATH" or a plain path → sqlite.  Anything else of the form "word=..." is refused
-- rather than taken for a file name (a mistyped keyword would create a file named after
-- the whole string, password included).
function store.parse_url(url)
  if type(url) ~= "string" or url == "" then return nil, "no database given", "usage" end
  if is_pg(url) then return dialects.postgres, url end
  local path = url:match("^sqlite:(.+)$")
  if path then return dialects.sqlite, path end
  local kw = kv_keyword(url)
  if kw then
    return nil, string.format("--db: %q is not a libpq connection keyword; a key=value connection string "
      .. "starts with one (host=, dbname=, ...), a SQLite file name with = in it is written sqlite:PATH", kw), "usage"
  end
  return dialects.sqlite, url
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A key=value string's password value as written (quoted or bare) and unquoted.
local function kv_passwords(url)
  local out = {}
  for q in url:gmatch("password%s*=%s*'(.-[^\\])'") do out[#out + 1] = q out[#out + 1] = (q:gsub("\\(.)", "%1")) end
  for b in url:gmatch("password%s*=%s*([^%s']%S*)") do out[#out + 1] = b end
  return out
end

--- The URL as it may be shown: a password (user:PASSWORD@ or ?password= or password=...)
-- becomes ***.
function store.redact(url)
  if is_pg(url) and not is_pg_url(url) then
    local shown = url:gsub("(password%s*=%s*)'.-[^\\]'", "%1***"):gsub("(password%s*=%s*)[^%s'*]%S*", "%1***")
    return shown
  end
  if not is_pg_url(url) then return url end
  local shown = url:gsub("^(%a+://[^:/@?#]*):[^@/?#]*@", "%1:***@")
  shown = shown:gsub("([?&]password=)[^&#]*", "%1***")
  return shown
end

-- The secrets in a PostgreSQL URL, as written and percent-decoded (longest first).
local function secrets(url)
  local out = {}
  if is_pg(url) and not is_pg_url(url) then
    for _, p in ipairs(kv_passwords(url)) do if p ~= "" then out[#out + 1] = p end end
    table.sort(out, function(a, b) return #a > #b end)
    return out
  end
  if not is_pg_url(url) then return out end
  local function add(p)
    if p and p ~= "" then
      out[#out + 1] = p
      local d = unescape(p)
      if d ~= p then out[#out + 1] = d end
    end
  end
  add(url:match("^%a+://[^:/@?#]*:([^@/?#]*)@"))
  for p in url:gmatch("[?&]password=([^&#]*)") do add(p) end
  table.sort(out, function(a, b) return #a > #b end)
  return out
end

-- A message with every secret of the URL replaced by ***: libpq quotes the whole
-- connection string in some of its errors ("invalid URI query parameter", ...).
local function scrub(text, list)
  text = tostring(text)
  for _, p in ipairs(list) do
    local i = 1
    while true do
      local a, b = text:find(p, i, true)
      if not a then break end
      text = text:sub(1, a - 1) .. "***" .. text:sub(b + 1)
      i = a + 3
    end
  end
  return text
end
store.scrub = function(text, url) return scrub(text, secrets(url)) end

local DB = {}
DB.__index = DB

--- Open a store. Returns the store or nil, message, kind (never prints the URL's password).
-- opts.must_exist: a SQLite file that does not exist is refused (kind "env") instead of
-- created, and so is anything at that path that is not a regular file.
function store.open(url, opts)
  opts = opts or {}
  local created   -- the SQLite file this open creates (DB:discard removes it again)
  local dialect, target, kind = store.parse_url(url)
  if not dialect then return nil, target, kind end
  if dialect.name == "sqlite" and target ~= ":memory:" then
    local fs = require("giro.fs")
    local st, serr = fs.stat(target)
    if st and st.type ~= "file" then
      return nil, string.format("%s: the database is not a regular file (it is a %s)", target, st.type), "usage"
    end
    if not st and opts.must_exist then return nil, string.format("%s: %s", target, serr), "env" end
    if not st then
      -- SQLite's own message for a missing directory is "unable to open database file": say why
      local dir = target:match("^(.*)/[^/]*$") or "."
      local dst, derr = fs.stat(dir == "" and "/" or dir)
      if not dst then return nil, string.format("%s: cannot create the database: %s: %s", target, dir, derr), "env" end
      if dst.type ~= "dir" then
        return nil, string.format("%s: cannot create the database: %s is not a directory", target, dir), "env"
      end
      created = target
    end
  end
  local hidden = secrets(target)
  local conn, env = dialect.open(target)
  if not conn then
    local why = tostring(env):gsub("%s+$", "")   -- libpq ends its messages with a newline
    return nil, scrub(string.format("cannot open database %s: %s", store.redact(target), why), hidden), "env"
  end
  local db = setmetatable({ conn = conn, env = env, dialect = dialect, depth = 0, secrets = hidden, created = created }, DB)
  for _, s in ipairs(dialect.setup) do
    local ok, err = conn:execute(s)
    if not ok then
      db:discard()
      return nil, scrub(string.format("%s: cannot set up the database: %s", store.redact(target), tostring(err)), hidden), "env"
    end
    if type(ok) == "userdata" then ok:close() end  -- a PRAGMA answers with a row
  end
  return db
end

local find = string.find

--- A SQL literal for a Lua value.  The one place values become SQL: strings go through
-- the driver's escape (SQLite and PostgreSQL both double the single quote; PostgreSQL runs
-- with standard_conforming_strings on, so a backslash is an ordinary character); a string
-- with neither quote nor backslash needs no escaping and skips the call (the common case,
-- and this function runs for every value of every row).  NUL cannot be stored: it raises.
function DB:quote(v)
  local t = type(v)
  if v == nil then return "NULL" end
  if t == "string" then
    if find(v, "'", 1, true) or find(v, "\\", 1, true) or find(v, "\0", 1, true) then
      if find(v, "\0", 1, true) then error("giro.store: a NUL byte cannot be stored", 2) end
      return "'" .. self.conn:escape(v) .. "'"
    end
    return "'" .. v .. "'"
  end
  if t == "boolean" then return v and "1" or "0" end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then error("giro.store: cannot store " .. tostring(v), 2) end
    return string.format("%.17g", v)
  end
  error("giro.store: cannot quote a " .. t, 2)
end

--- DB:quote as a plain function bound to this connection (for loops over many rows).
function DB:quoter()
  local conn = self.conn
  return function(v)
    if v == nil then return "NULL" end
    if type(v) == "string" then
      if find(v, "'", 1, true) or find(v, "\\", 1, true) or find(v, "\0", 1, true) then
        if find(v, "\0", 1, true) then error("giro.store: a NUL byte cannot be stored", 2) end
        return "'" .. conn:escape(v) .. "'"
      end
      return "'" .. v .. "'"
    end
    return self:quote(v)
  end
end

--- A compiled writer of multi-row VALUES text for one fixed list of columns:
--   local tuples = store.tuples({ "name", "city", "n" }, { n = true })   -- n: an integer column
--   db:exec("INSERT INTO t (name, city, n) VALUES " .. tuples(db, rows))  --> "('a',NULL,3),(...)"
-- The literals are DB:quote's (nil -> NULL, strings through the driver's escape when they
-- hold a quote or backslash, NUL raises, integer columns as %d); text columns take strings
-- or nil (a number is written as text), integer columns integers or numeric strings.
-- Built for the loops that write every record of a file: per row one concatenation and a
-- few plain searches decide whether any value needs escaping (then only those values are
-- escaped), and the row is one string.format, with a format chosen by which columns are
-- nil ("NULL%.0s" consumes the nil argument and prints nothing).
function store.tuples(columns, ints)
  ints = ints or {}
  local vars, gets, masks, texts, escapes, quoted = {}, {}, {}, {}, {}, {}
  assert(#columns <= 62, "giro.store.tuples: too many columns")
  for i, c in ipairs(columns) do
    assert(type(c) == "string" and c:match("^[%a_][%w_]*$"), "giro.store.tuples: bad column name")
    vars[i] = "v" .. i
    gets[i] = "r." .. c
    masks[i] = string.format("if v%d == nil then m = m + %d end", i, 1 << (i - 1))
    if ints[c] then
      quoted[i] = string.format("(v%d == nil and 'NULL' or fmt('%%d', v%d))", i, i)
    else
      texts[#texts + 1] = string.format("(v%d or '')", i)
      escapes[#escapes + 1] = string.format(
        "if v%d ~= nil and (find(v%d, Q, 1, true) or find(v%d, BS, 1, true)) then v%d = esc(v%d) end", i, i, i, i, i)
      quoted[i] = string.format("q(v%d)", i)
    end
  end
  local V = table.concat(vars, ", ")
  local code = table.concat({
    "local find, fmt, FMT, format_for, concat = ...",
    "local Q, BS, NUL = \"'\", '\\\\', '\\0'",
    "return function(db, rows)",
    "  local q, conn, out = db:quoter(), db.conn, {}",
    "  local function esc(v) return conn:escape(v) end",
    "  for i = 1, #rows do",
    "    local r = rows[i]",
    "    local " .. V .. " = " .. table.concat(gets, ", "),
    "    local s = " .. (#texts > 0 and table.concat(texts, " .. ") or "''"),
    "    if find(s, NUL, 1, true) then",
    "      out[i] = '(' .. " .. table.concat(quoted, " .. ',' .. ") .. " .. ')'   -- raises",
    "    else",
    "      if find(s, Q, 1, true) or find(s, BS, 1, true) then",
    "        " .. table.concat(escapes, "\n        "),
    "      end",
    "      local m = 0",
    "      " .. table.concat(masks, " "),
    "      out[i] = fmt(FMT[m] or format_for(m), " .. V .. ")",
    "    end",
    "  end",
    "  return concat(out, ',')",
    "end",
  }, "\n")
  local FMT = {}
  local function format_for(m)
    local parts = {}
    for i, c in ipairs(columns) do
      if m & (1 << (i - 1)) ~= 0 then parts[i] = "NULL%.0s"
      elseif ints[c] then parts[i] = "%d"
      else parts[i] = "'%s'" end
    end
    local f = "(" .. table.concat(parts, ",") .. ")"
    FMT[m] = f
    return f
  end
  return assert(load(code, "=giro.store.tuples", "t"))(string.find, string.format, FMT, format_for, table.concat)
end

--- Replace each `?` with the next argument, quoted.
function DB:sql(stmt, ...)
  local n, args = select("#", ...), { ... }
  if n == 0 then return stmt end
  local i = 0
  local out = stmt:gsub("%?", function()
    i = i + 1
    if i > n then error("giro.store: more ? than arguments in: " .. stmt, 3) end
    return self:quote(args[i])
  end)
  if i ~= n then error("giro.store: " .. n .. " arguments for " .. i .. " ? in: " .. stmt, 3) end
  return out
end

--- A list of quoted values joined by commas, for `IN (...)`.
function DB:list(values)
  local q = {}
  for i, v in ipairs(values) do q[i] = self:quote(v) end
  return table.concat(q, ",")
end

local function raise(self, err, stmt)
  if self.depth > 0 then self.failed = true end
  error(scrub(string.format("giro.store: %s (in: %s)", tostring(err), stmt:sub(1, 200)), self.secrets), 3)
end

--- Run a statement; returns the number of rows affected (a statement's result rows are discarded).
-- Database errors raise: a register that cannot be written is an environment failure,
-- and the caller's transaction must roll back.
function DB:exec(stmt, ...)
  local s = self:sql(stmt, ...)
  local res, err = self.conn:execute(s)
  if res == nil then raise(self, err, s) end
  if type(res) == "userdata" then res:close() return 0 end  -- use rows() for results
  return res
end

--- Iterate over the rows of a SELECT as tables keyed by column name.
function DB:rows(stmt, ...)
  local s = self:sql(stmt, ...)
  local cur, err = self.conn:execute(s)
  if cur == nil then raise(self, err, s) end
  if type(cur) ~= "userdata" then error("giro.store: not a query: " .. s, 2) end
  return function()
    local row = cur:fetch({}, "a")
    if row == nil then cur:close() end
    return row
  end
end

--- The first row of a SELECT, or nil.
function DB:first(stmt, ...)
  local s = self:sql(stmt, ...)
  local cur, err = self.conn:execute(s)
  if cur == nil then raise(self, err, s) end
  local row = cur:fetch({}, "a")
  cur:close()
  return row
end

function DB:begin()
  local steps = self.dialect.begin
  self:exec(steps[1])
  self.depth, self.failed = 1, false
  for i = 2, #steps do self:exec(steps[i]) end
  if self.dialect.locked then self.dialect.locked(self) end
end

function DB:commit()
  if self.failed and self.dialect.aborts_on_error then
    -- PostgreSQL answers COMMIT of an aborted transaction with a quiet ROLLBACK
    self:rollback()
    error("giro.store: a statement of this transaction failed: rolled back, nothing committed", 2)
  end
  self:exec("COMMIT")
  self.depth, self.failed = 0, false
end

function DB:rollback()
  if self.depth > 0 then
    self.depth, self.failed = 0, false
    self.conn:execute("ROLLBACK")
  end
end

--- Run fn inside one transaction: COMMIT when it returns, ROLLBACK when it raises.
function DB:transaction(fn, ...)
  self:begin()
  local res = table.pack(pcall(fn, ...))
  if not res[1] then
    self:rollback()
    error(res[2], 0)
  end
  self:commit()
  return table.unpack(res, 2, res.n)
end

--- An integer column value (PostgreSQL's driver hands back strings).
function store.int(v)
  if v == nil then return nil end
  return math.tointeger(tonumber(v))
end

--- Does the table exist?
function DB:has_table(name)
  if self.dialect.creates then return self:first("SELECT to_regclass(?) AS t", name).t ~= nil end
  return self:first("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", name) ~= nil
end

--- Create the tables named in `ddl` (a list of statements with {serial} placeholders).
-- On PostgreSQL only what is missing is created, in one transaction under the write
-- lock (two first runs at once must not race on CREATE TABLE).
function DB:ensure(ddl)
  local d = self.dialect
  local serials = {}   -- (table, column) of each {serial}: see the dialect's locked()
  for _, stmt in ipairs(ddl) do
    local t, c = stmt:match("^%s*CREATE%s+TABLE%s+IF%s+NOT%s+EXISTS%s+([%w_]+)%s*%(%s*([%w_]+)%s+{serial}")
    if t then serials[#serials + 1] = { t, c } end
  end
  local function create()
    for _, stmt in ipairs(ddl) do
      stmt = stmt:gsub("{serial}", d.serial):gsub("{without_rowid}", d.without_rowid or "")
      if d.ddl then stmt = d.ddl(stmt) end
      local name = d.creates and d.creates(stmt)
      if not (name and self:first("SELECT to_regclass(?) AS t", name).t) then self:exec(stmt) end
    end
  end
  if d.creates then
    local missing = false
    for _, stmt in ipairs(ddl) do
      local name = d.creates(stmt)
      if not name or not self:first("SELECT to_regclass(?) AS t", name).t then missing = true break end
    end
    if missing then self:transaction(create) end
  else
    create()
  end
  self.serials = serials
end

function DB:close()
  if self.conn then self.conn:close() self.conn = nil end
  if self.env then self.env:close() self.env = nil end
end
DB.__close = DB.close
DB.__gc = DB.close

--- Close, and remove again the SQLite file this open created (with its journal): a command
-- that fails before its first commit then leaves no database behind.  A database that
-- existed before, and PostgreSQL's, are only closed.
function DB:discard()
  self:close()
  if self.created then
    for _, suffix in ipairs({ "", "-journal", "-wal", "-shm" }) do os.remove(self.created .. suffix) end
    self.created = nil
  end
end

return store
