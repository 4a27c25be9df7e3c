--- giro.store: the SQL connection behind giro's registers (customers, eFaktura agreements),
-- on giro.sql (giro's own binding over libsqlite3 and libpq: prepared statements, bound
-- parameters, batches in one C call).
--
--   local store = require("giro.store")
--   local db = assert(store.open("register.db"))      -- or "sqlite:PATH", "postgres://..."
--   db:exec("UPDATE customers SET efaktura = ? WHERE account_number = ?", 1, "0042")
--   for row in db:rows("SELECT * FROM customers WHERE last_name = ?", "Ødegård") do ... end
--   for row in db:rows_in("SELECT * FROM customers WHERE account_number IN ({in})", numbers) do ... end
--   db:batch("INSERT INTO t (a, b) VALUES (?, ?)", { { 1, "x" }, { 2, "y" } })
--   db:transaction(function() ... end)                 -- BEGIN ... COMMIT, ROLLBACK on error
--
-- Every value reaches SQL as a bound parameter (`?`, in order); no value is ever written
-- into the statement text, so the text of each statement is fixed and giro.sql prepares it
-- once per connection.  Integers come back as Lua integers on both backends.
--
-- What differs between SQLite and PostgreSQL lives in one dialect table (DDL types,
-- BEGIN flavour, set-up).  The SQL in the registers is written once, in the
-- common subset: `INSERT ... ON CONFLICT (...) DO UPDATE SET x = excluded.x`,
-- `IN (...)`, `RETURNING`, TEXT/INTEGER columns.
--
-- PostgreSQL behaves as SQLite does where the registers can tell:
--  * one writer at a time: SQLite's BEGIN IMMEDIATE takes the database's write lock;
--    on PostgreSQL every transaction takes one transaction-scoped advisory lock
--    (pg_advisory_xact_lock(WRITE_LOCK)), so two giro runs serialise the same way and
--    the second one sees what the first committed (READ COMMITTED: each statement
--    after the lock has a fresh snapshot);
--  * TEXT compares byte by byte (SQLite's BINARY): text columns are created with
--    COLLATE "C", whatever the database's default collation;
--  * a failed statement aborts the transaction (on both backends here): commit() after
--    one rolls back and raises instead of committing part of the work;
--  * the schema is created only where missing (to_regclass), so a role with only
--    SELECT/INSERT/UPDATE rights can use a register its owner created;
--  * the URL's password never appears in a message (store.redact for the URL shown;
--    giro.sql keeps it out of libpq's connection errors).
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
  -- giro.sql reads a plain path as a PostgreSQL key=value string when it looks like one
  target = function(path) return "sqlite:" .. path end,
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
  begin = { "BEGIN", "SELECT pg_advisory_xact_lock(?)", args = { store.WRITE_LOCK } },
  target = function(url) return url end,
  setup = { "SET client_min_messages = warning", "SET standard_conforming_strings = on",
            "SET client_encoding = 'UTF8'" },
  -- The IN-list lookups of db:rows_in are planned for each execution: PostgreSQL's generic
  -- plan for a prepared statement, made while the file's transaction had not yet filled the
  -- tables (a sequential scan of a few pages), would scan them whole for every later batch
  -- (100k records took minutes instead of seconds).  Every other statement keeps its
  -- cached plan (an INSERT per row planned per row would cost more than it runs).
  plan_each = { "SET plan_cache_mode = force_custom_plan", "SET plan_cache_mode = auto" },
  -- TEXT compares byte by byte, as in SQLite (ORDER BY account_number is the same on both)
  ddl = function(stmt) return (stmt:gsub("%f[%w_]TEXT%f[^%w_]", 'TEXT COLLATE "C"')) end,
  -- the object a CREATE ... IF NOT EXISTS statement makes, to skip it when it exists
  -- (PostgreSQL checks the CREATE privilege before IF NOT EXISTS)
  creates = function(stmt) return stmt:match("^%s*CREATE%s+%u+%s+IF%s+NOT%s+EXISTS%s+([%w_]+)") end,
  -- Ids as SQLite assigns them (max + 1): a sequence is not transactional, so a rolled-back
  -- transaction (a crash, a refused file) would leave a gap and the rerun would number its
  -- rows differently.  Under the write lock no other giro inserts, so setting each serial's
  -- sequence to max(id) + 1 at BEGIN gives the ids an uninterrupted run would have.
  locked = function(db)
    if not db.serials or #db.serials == 0 then return end
    local parts, args = {}, {}
    for i, s in ipairs(db.serials) do
      parts[i] = string.format("setval(pg_get_serial_sequence(?, ?), (SELECT coalesce(max(%s), 0) + 1 FROM %s), false)",
        s[2], s[1])
      args[#args + 1] = s[1]
      args[#args + 1] = s[2]
    end
    db:exec("SELECT " .. table.concat(parts, ", "), table.unpack(args))
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
  local conn, why = require("giro.sql").open(dialect.target(target))
  if not conn then
    why = tostring(why):gsub("%s+$", "")
    return nil, string.format("cannot open database %s: %s", store.redact(target), why), "env"
  end
  local db = setmetatable({ conn = conn, dialect = dialect, created = created }, DB)
  for _, s in ipairs(dialect.setup) do
    local ok, err = pcall(conn.exec, conn, s)
    if not ok then
      db:discard()
      return nil, string.format("%s: cannot set up the database: %s", store.redact(target), tostring(err)), "env"
    end
  end
  return db
end

--- Run a statement; returns the number of rows changed (a statement's result rows are
-- discarded).  Database errors raise "SERVER TEXT (in: SQL)": a register that cannot be
-- written is an environment failure, and the caller's transaction must roll back.
function DB:exec(stmt, ...) return self.conn:exec(stmt, ...) end

--- Iterate over the rows of a SELECT as tables keyed by column name (NULL: absent).
function DB:rows(stmt, ...) return self.conn:rows(stmt, ...) end

--- The first row of a SELECT, or nil.
function DB:first(stmt, ...) return self.conn:first(stmt, ...) end

--- Run a statement once per row of `rows` (a list of arrays of values, in the order of the
-- statement's `?`) in one call; returns the rows changed.  A failing row raises
-- "row N: SERVER TEXT (in: SQL)" and nothing of the batch stays: the caller's transaction
-- can no longer commit (outside one, the batch is its own transaction, rolled back).
function DB:batch(stmt, rows) return self.conn:batch(stmt, rows) end

-- IN lists: one statement text per list size, so sizes are padded (with NULL, which
-- matches nothing) to a few fixed ones and each is prepared once.
local IN_SIZES = { 1, 8, 32, 128, 500 }
local IN_MAX = IN_SIZES[#IN_SIZES]
local marks = {}
for _, n in ipairs(IN_SIZES) do marks[n] = string.rep("?,", n - 1) .. "?" end
local function in_size(n)
  for _, s in ipairs(IN_SIZES) do if n <= s then return s end end
  return IN_MAX
end

--- Iterate over the rows of a SELECT whose text holds one `{in}` (inside `IN (...)`), for
-- every value of the list `values`: `{in}` becomes bound placeholders, IN_MAX values per
-- query; `...` are bound after the list's values.
function DB:rows_in(stmt, values, ...)
  local n, start, it = #values, 1, nil
  local extra = table.pack(...)
  local conn = self.conn
  local plan_each = self.dialect.plan_each
  local texts = {}
  return function()
    while true do
      if it then
        local row = it()
        if row then return row end
        it = nil
      end
      if start > n then return nil end
      local count = math.min(IN_MAX, n - start + 1)
      local size = in_size(count)
      local text = texts[size]
      if not text then text = stmt:gsub("{in}", marks[size]) texts[size] = text end
      local args = table.move(values, start, start + count - 1, 1, {})
      for i = 1, extra.n do args[size + i] = extra[i] end
      start = start + count
      if plan_each then conn:exec(plan_each[1]) end
      it = conn:rows(text, table.unpack(args, 1, size + extra.n))
      -- PostgreSQL has run the query (its rows are read from the result); inside a
      -- transaction that fails before this line, ROLLBACK undoes the SET as well
      if plan_each then conn:exec(plan_each[2]) end
    end
  end
end

--- Take the dialect's write lock: SQLite's BEGIN IMMEDIATE, PostgreSQL's BEGIN and the
-- advisory lock (and the serial sequences set to max + 1).
function DB:begin()
  local steps = self.dialect.begin
  self.conn:begin(steps[1])
  local ok, err = pcall(function()
    for i = 2, #steps do self.conn:exec(steps[i], table.unpack(steps.args or {})) end
    if self.dialect.locked then self.dialect.locked(self) end
  end)
  if not ok then self.conn:rollback() error(err, 0) end
end

--- COMMIT; raises (after ROLLBACK) when a statement of the transaction failed, and with
-- the server's text when COMMIT itself fails.
function DB:commit() self.conn:commit() end

function DB:rollback()
  if self.conn then self.conn:rollback() end
end

--- Run fn inside one transaction: COMMIT when it returns (its results are returned),
-- ROLLBACK when it raises (fn's error goes on up unchanged, even if ROLLBACK fails too).
function DB:transaction(fn, ...)
  self:begin()
  local res = table.pack(pcall(fn, ...))
  if not res[1] then
    pcall(self.rollback, self)
    error(res[2], 0)
  end
  self:commit()
  return table.unpack(res, 2, res.n)
end

--- An integer column value (giro.sql hands back integers; a numeric string is converted).
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
end
DB.__close = DB.close

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
