--- giro.efaktura.register: the customer register and the eFaktura agreement register, in
-- one database (giro.store: SQLite file by default, PostgreSQL by URL).
--
--   local register = require("giro.efaktura.register")
--   local reg = assert(register.open("register.db"))   -- { create = true }: customers import only
--   reg:import_customers("customers.csv")      --> { added = n, updated = n, unchanged = n }
--   reg:customers({"0042", "17"})              --> { ["0042"] = customer, ... }
--   reg:agreements(keys)                        --> { [key] = agreement row, ... }
--   reg:list("active")                          --> list of agreement rows
--
-- Tables (see docs/efaktura.md for the meaning of every column):
--   customers  (account_number PRIMARY KEY, first_name, last_name, efaktura 0/1, extra JSON)
--   agreements one row per (ThorUserId, ThorContentProviderId, BillerAccountNumber), with its
--              lifecycle status held | answered | active | rejected | stopped
--   history    every message received and every answer or decision, per agreement key;
--              the rows of one file that carry an answer, in seq order, are that file's
--              response (so an interrupted run's response can be written again byte for byte)
--   files      every request file processed (keyed by its SHA-256) and every answer batch,
--              with the response header (FromInfo name, ToInfo id and service)
-- All values are strings except counters and flags; BillerAccountNumber and customer
-- numbers are TEXT everywhere (leading zeros matter).
local store = require("giro.store")
local csv = require("giro.csv")
local cjson = require("cjson")
local errors = require("giro.errors")

local register = {}

register.STATUSES = { "held", "answered", "active", "rejected", "stopped" }

local DDL = {
  [[CREATE TABLE IF NOT EXISTS giro_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)]],
  [[CREATE TABLE IF NOT EXISTS customers (
      account_number TEXT PRIMARY KEY,
      first_name TEXT NOT NULL,
      last_name TEXT NOT NULL,
      efaktura INTEGER NOT NULL,
      extra TEXT NOT NULL,
      updated_at TEXT NOT NULL){without_rowid}]],
  [[CREATE TABLE IF NOT EXISTS files (
      id {serial},
      kind TEXT NOT NULL,
      digest TEXT UNIQUE,
      name TEXT,
      from_name TEXT, to_id TEXT, to_service TEXT,
      records INTEGER NOT NULL DEFAULT 0,
      answers INTEGER NOT NULL DEFAULT 0,
      summary TEXT,
      processed_at TEXT NOT NULL,
      delivered_at TEXT)]],
  [[CREATE TABLE IF NOT EXISTS agreements (
      id {serial},
      thor_user_id TEXT NOT NULL,
      provider TEXT NOT NULL,
      account TEXT NOT NULL,
      status TEXT NOT NULL,
      element TEXT,
      answer TEXT, reason TEXT, message TEXT,
      customer TEXT,
      request TEXT,
      fingerprint TEXT,
      proposal TEXT,
      decision TEXT,
      line INTEGER,
      file_id INTEGER,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      UNIQUE (thor_user_id, provider, account))]],
  [[CREATE INDEX IF NOT EXISTS agreements_status ON agreements (status)]],
  [[CREATE TABLE IF NOT EXISTS history (
      id {serial},
      thor_user_id TEXT NOT NULL,
      provider TEXT NOT NULL,
      account TEXT NOT NULL,
      file_id INTEGER,
      seq INTEGER,
      line INTEGER,
      element TEXT,
      event TEXT NOT NULL,
      status_before TEXT,
      status_after TEXT,
      answer TEXT, reason TEXT, message TEXT,
      detail TEXT,
      at TEXT NOT NULL)]],
  [[CREATE INDEX IF NOT EXISTS history_file ON history (file_id, seq)]],
}

local AGREEMENT_COLUMNS = {
  "thor_user_id", "provider", "account", "status", "element", "answer", "reason", "message",
  "customer", "request", "fingerprint", "proposal", "decision", "line", "file_id", "created_at", "updated_at",
}

--- The time stamps giro writes: UTC, ISO 8601, to the second.
function register.now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

--- The agreement key: ThorUserId, ThorContentProviderId, BillerAccountNumber.
function register.key(thor_user_id, provider, account)
  return thor_user_id .. "\0" .. provider .. "\0" .. account
end

local Reg = {}
Reg.__index = Reg

register.SCHEMA = "1"

--- Open the register at url (see giro.store.open): nil, message, kind when there is none.
-- Only opts.create (giro customers import) makes a new one; every other command refuses a
-- register that does not exist (or a database that holds no giro register), so that a
-- mistyped --db never answers from an empty register.
function register.open(url, opts)
  opts = opts or {}
  local db, err, kind = store.open(url, { must_exist = not opts.create })
  local shown = store.redact(tostring(url))
  if not db then
    if kind == "env" and not opts.create and not store.is_postgres(url) and tostring(err):find("No such file", 1, true) then
      return nil, string.format("%s: no such register (it is created by: giro customers import FILE.csv --db %s)",
        shown, shown), "env"
    end
    return nil, err, kind
  end
  if not opts.create then
    local okt, has = pcall(db.has_table, db, "giro_meta")
    if not okt or not has then
      db:close()
      return nil, string.format("%s: not a giro register (no giro_meta table; a register is created by: "
        .. "giro customers import FILE.csv --db %s)", shown, shown), "env"
    end
  end
  local ok, e = pcall(function()
    db:ensure(DDL)
    local v = db:first("SELECT value FROM giro_meta WHERE key = 'schema'")
    if not v then
      db:exec("INSERT INTO giro_meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO NOTHING", register.SCHEMA)
    elseif v.value ~= register.SCHEMA then
      error(string.format("the register has schema version %s; this giro reads version %s", v.value, register.SCHEMA), 0)
    end
  end)
  if not ok then db:discard() return nil, tostring(e), "env" end
  return setmetatable({ db = db }, Reg)
end

function Reg:close() self.db:close() end
Reg.__close = Reg.close

--- Close; a SQLite register this open created is removed again (a failed first import leaves
-- no empty register for the next command to answer from).
function Reg:discard() self.db:discard() end

------------------------------------------------------------------------------------------
-- customers

-- A customer: account_number, first_name, last_name, efaktura (boolean) and the CSV's
-- further columns (stored as a JSON object in `extra`).  Many customers share the same
-- extra columns (a product name, a region): decoded objects of plain values are kept
-- for the next customer with the same text (a bounded memo; each customer still gets
-- its own table).
local EXTRA_MAX = 1024
local extra_memo, extra_n = {}, 0

local function decode_extra(extra)
  local t = extra_memo[extra]
  if t then return t end
  local ok, d = pcall(cjson.decode, extra)
  if not ok or type(d) ~= "table" then d = false end
  if d then
    for _, v in pairs(d) do
      if type(v) == "table" then return d end     -- nested values: not shared between customers
    end
  end
  if extra_n >= EXTRA_MAX then extra_memo, extra_n = {}, 0 end
  extra_memo[extra], extra_n = d, extra_n + 1
  return d
end

local function customer_from_row(row)
  if not row then return nil end
  local c = {
    account_number = row.account_number,
    first_name = row.first_name,
    last_name = row.last_name,
    efaktura = store.int(row.efaktura) == 1,
  }
  local extra = row.extra
  if extra and extra ~= "{}" then
    local t = decode_extra(extra)
    if t then
      for k, v in pairs(t) do if c[k] == nil then c[k] = v end end
    end
  end
  return c
end
register.customer_from_row = customer_from_row

--- How many customers the register holds.
function Reg:customer_count()
  local row = self.db:first("SELECT count(*) AS n FROM customers")
  return store.int(row and row.n) or 0
end

--- Customers by number: returns { [number] = customer } for those that exist.
function Reg:customers(numbers)
  local out = {}
  if #numbers == 0 then return out end
  for row in self.db:rows_in("SELECT account_number, first_name, last_name, efaktura, extra FROM customers"
      .. " WHERE account_number IN ({in})", numbers) do
    out[row.account_number] = customer_from_row(row)
  end
  return out
end

function Reg:customer(number)
  return customer_from_row(self.db:first("SELECT * FROM customers WHERE account_number = ?", number))
end

--- Iterate over every customer (for suggestions when matching by hand).
function Reg:each_customer()
  local it = self.db:rows("SELECT * FROM customers ORDER BY account_number")
  return function() return customer_from_row(it()) end
end

local REQUIRED_COLUMNS = { "account_number", "first_name", "last_name", "efaktura" }

--- The extra columns of a customer as stored: a JSON object with its keys sorted, so that
-- the same columns always give the same text (re-importing an unchanged file changes nothing).
local function canonical_extra(extra)
  local keys = {}
  for k in pairs(extra) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = cjson.encode(k) .. ":" .. cjson.encode(extra[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
register.canonical_extra = canonical_extra

-- Whether stored extra text holds the same columns as canonical text (a register written
-- before the encoding was canonical holds the same object with its keys in another order).
local function same_extra(stored, canonical)
  if stored == canonical then return true end
  local ok, a = pcall(cjson.decode, stored)
  if not ok or type(a) ~= "table" then return false end
  return canonical_extra(a) == canonical
end

local CUSTOMER_SAVE = "INSERT INTO customers (account_number, first_name, last_name, efaktura, extra, updated_at)"
  .. " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_number) DO UPDATE SET first_name = excluded.first_name,"
  .. " last_name = excluded.last_name, efaktura = excluded.efaktura, extra = excluded.extra, updated_at = excluded.updated_at"

-- Does the file hold a double quote anywhere?  (Without one, every record is one line of
-- plain comma-separated fields and the fast reader below applies.)
local function has_quote(path)
  local f = io.open(path, "rb")
  if not f then return true end
  while true do
    local block = f:read(1 << 20)
    if not block then f:close() return false end
    if block:find('"', 1, true) then f:close() return true end
  end
end

-- The lines of a CSV file without quotes: (line, number) per non-blank line, as giro.csv
-- reads them (BOM dropped, CRLF or LF, UTF-8 checked; raises "PATH:LINE: not UTF-8 ..."),
-- at a fraction of the cost: one C line read and one UTF-8 check per line.
local function plain_lines(path)
  local f = assert(io.open(path, "rb"))
  local lines, lineno = f:lines(), 0
  local sub, byte, len = string.sub, string.byte, utf8.len
  return function(what)
    if what == "file" then return f end   -- the rest of the file, for a reader of its own
    while true do
      local l = lines()
      if l == nil then f:close() return nil end
      lineno = lineno + 1
      if lineno == 1 and sub(l, 1, 3) == "\239\187\191" then l = sub(l, 4) end
      if byte(l, -1) == 13 then l = sub(l, 1, -2) end
      if not len(l) then
        f:close()
        error(string.format("%s:%d: not UTF-8 text (save the file as UTF-8)", path, lineno), 0)
      end
      if l ~= "" then return l, lineno end
    end
  end
end

local function split(l)
  local fields = {}
  for v in (l .. ","):gmatch("([^,]*),") do fields[#fields + 1] = v end
  return fields
end

-- (fields, line) per record of a CSV file without quotes, and the lines iterator beneath
-- (the fields of a line with the header's number of columns in one match).
local function plain_rows(path)
  local lines = plain_lines(path)
  local pat, ncols
  local function rows()
    local l, lineno = lines()
    if not l then return nil end
    if not pat then
      local fields = split(l)
      ncols = #fields
      pat = ncols <= 32 and ("^" .. string.rep("([^,]*),", ncols - 1) .. "([^,]*)$") or false
      return fields, lineno
    end
    local fields = pat and { l:match(pat) } or split(l)
    if #fields ~= ncols then fields = split(l) end
    return fields, lineno
  end
  return rows, lines
end

local match, byte = string.match, string.byte
local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }   -- %s
local function trim(v)
  local b = byte(v, 1)
  if b and (SPACE[b] or SPACE[byte(v, -1)]) then return (match(v, "^%s*(.-)%s*$")) end
  return v
end

local CUSTOMER_BATCH = 5000

-- A first import writes with a plain INSERT: a customer number the file repeats is then
-- refused by the primary key (and the file read again to name both lines).
local CUSTOMER_INSERT = "INSERT INTO customers (account_number, first_name, last_name, efaktura, extra, updated_at)"
  .. " VALUES (?, ?, ?, ?, ?, ?)"

-- The header of a customer CSV: { col = { name = index }, names, extra_of(fields) } or
-- nil, message, kind.
local function read_header(header, hline, label)
  local col = {}
  for i, h in ipairs(header) do
    local name = h:gsub("^%s+", ""):gsub("%s+$", ""):lower()
    if name == "" then return errors.input("%s:%d: column %d has no name", label, hline, i) end
    if col[name] then return errors.input("%s:%d: column %s appears twice", label, hline, errors.quote(name)) end
    col[name] = i
    header[i] = name
  end
  local missing = {}
  for _, c in ipairs(REQUIRED_COLUMNS) do if not col[c] then missing[#missing + 1] = c end end
  if #missing > 0 then
    return errors.input("%s:%d: the header lacks %s (needs at least %s)", label, hline,
      table.concat(missing, ", "), table.concat(REQUIRED_COLUMNS, ","))
  end
  -- the extra columns, in the sorted order canonical_extra writes them
  local extras = {}
  for j, name in ipairs(header) do
    if name ~= "account_number" and name ~= "first_name" and name ~= "last_name" and name ~= "efaktura" then
      extras[#extras + 1] = { name = name, col = j }
    end
  end
  table.sort(extras, function(a, b) return a.name < b.name end)
  local encode = cjson.encode
  for i, e in ipairs(extras) do e.key = (i == 1 and "{" or ",") .. encode(e.name) .. ":" end
  local nextra = #extras
  local function extra_of(fl)
    if nextra == 0 then return "{}" end
    if nextra == 1 then local e = extras[1] return e.key .. encode(fl[e.col]) .. "}" end
    local parts = {}
    for i = 1, nextra do local e = extras[i] parts[i] = e.key .. encode(fl[e.col]) end
    return table.concat(parts) .. "}"
  end
  return { col = col, ncol = #header, extra_of = extra_of, extras = extras }
end

-- One record checked: the row to write { number, first, last, 0/1, extra, now }, or nil and
-- the problem (format and arguments for the message).  seen (optional): number -> line.
local function check_customer(h, fl, line, seen, now)
  if #fl ~= h.ncol then return nil, "%d fields, the header has %d", #fl, h.ncol end
  local col = h.col
  local acct, first, last = trim(fl[col.account_number]), trim(fl[col.first_name]), trim(fl[col.last_name])
  local ef = fl[col.efaktura]
  if ef ~= "yes" and ef ~= "no" then ef = trim(ef):lower() end
  if acct == "" then return nil, "account_number is empty" end
  if #acct > 32 and utf8.len(acct) > 32 then
    return nil, "account_number %s is longer than 32 characters", errors.quote(acct)
  end
  if seen then
    if seen[acct] then return nil, "account_number %s again (first at line %d)", errors.quote(acct), seen[acct] end
  end
  if first == "" and last == "" then return nil, "customer %s has neither first_name nor last_name", errors.quote(acct) end
  if ef ~= "yes" and ef ~= "no" then return nil, "efaktura is %s; expected yes or no", errors.quote(fl[col.efaktura]) end
  if seen then seen[acct] = line end
  return { acct, first, last, ef == "yes" and 1 or 0, h.extra_of(fl), now }
end

-- A first import's common case compiled for this header: a record whose fields need no
-- trimming, with efaktura exactly yes or no and a short account number, becomes its row in
-- one match and one table; any other record goes through check_customer.  Returns
--   line(l, now)                  -> row or nil (nil: check l the slow way)
--   block(text, now, rows, slow)  -> how many records text held in its lines; rows[i] = the
--                                    row of each, slow(fields) for those not of the common case
-- (text: "\n" .. lines each ended by "\n", no CR, no blank line; a line with another number of
-- fields is not matched at all, so the count tells the caller to read text line by line).
local function compile_fast(h)
  local n = h.ncol
  if n > 32 then return nil end   -- Lua patterns capture at most 32 values
  local vars = {}
  for i = 1, n do vars[i] = "v" .. i end
  local V = table.concat(vars, ", ")
  local c = h.col
  local extra, keys = {}, {}
  for i, e in ipairs(h.extras) do
    keys[i] = e.key
    extra[#extra + 1] = string.format("K[%d] .. encode(v%d)", i, e.col)
  end
  local extra_expr = #extra == 0 and '"{}"' or (table.concat(extra, " .. ") .. ' .. "}"')
  local line_pat = "^" .. string.rep("([^,]*),", n - 1) .. "([^,]*)$"
  local block_pat = "\n" .. string.rep("([^,\n]*),", n - 1) .. "([^,\n]*)%f[\n]"
  local code = table.concat({
    "local match, gmatch, encode, byte, SPACE, K = ...",
    "local function fast(now, " .. V .. ")",
    "  if v" .. n .. " == nil then return nil end",
    string.format("  local a, f, s, e = v%d, v%d, v%d, v%d", c.account_number, c.first_name, c.last_name, c.efaktura),
    "  local b = byte(a, 1)",
    "  if not b or #a > 32 or SPACE[b] or SPACE[byte(a, -1)] then return nil end",
    "  b = byte(f, 1) if b and (SPACE[b] or SPACE[byte(f, -1)]) then return nil end",
    "  b = byte(s, 1) if b and (SPACE[b] or SPACE[byte(s, -1)]) then return nil end",
    "  if f == '' and s == '' then return nil end",
    "  local ef if e == 'yes' then ef = 1 elseif e == 'no' then ef = 0 else return nil end",
    "  return { a, f, s, ef, " .. extra_expr .. ", now }",
    "end",
    "local function line(l, now) return fast(now, match(l, " .. string.format("%q", line_pat) .. ")) end",
    "local function block(text, now, rows, slow)",
    "  local i = 0",
    "  for " .. V .. " in gmatch(text, " .. string.format("%q", block_pat) .. ") do",
    "    i = i + 1",
    "    rows[i] = fast(now, " .. V .. ") or slow({ " .. V .. " })",
    "  end",
    "  return i",
    "end",
    "return line, block",
  }, "\n")
  return assert(load(code, "=giro.efaktura.register.fast_customer", "t"))(string.match, string.gmatch,
    cjson.encode, string.byte, SPACE, keys)
end

-- A first import of a file without quotes, after its header: the file read in blocks of
-- 1 MiB, each block's records matched in one pass (see compile_fast) and written in one
-- db:batch.  A block with a CR, a blank line, bytes that are not UTF-8 or a line with another
-- number of fields is read line by line instead.  bad() raises for a record that is not
-- good (the caller then lists every bad row).
local function import_blocks(f, h, line_fast, block_fast, now, write, bad)
  local byte, sub, find, gsub, gmatch = string.byte, string.sub, string.find, string.gsub, string.gmatch
  local function slow(fields)
    return check_customer(h, fields, 0, nil, now) or bad()
  end
  local rest = ""
  while rest do
    local data = f:read(1 << 20)
    local text
    if data then
      text = rest .. data
      local i = #text
      while i > 0 and byte(text, i) ~= 10 do i = i - 1 end
      rest = sub(text, i + 1)
      text = sub(text, 1, i)
    else
      text, rest = rest, nil
      if text ~= "" and byte(text, -1) ~= 10 then text = text .. "\n" end
    end
    if text ~= "" then
      local rows = {}
      local lines = select(2, gsub(text, "\n", "\n"))
      local n = -1
      if not find(text, "\r", 1, true) and utf8.len(text) then n = block_fast("\n" .. text, now, rows, slow) end
      if n ~= lines then   -- line by line, as giro.csv reads them
        rows, n = {}, 0
        for l in gmatch(text, "([^\n]*)\n") do
          if byte(l, -1) == 13 then l = sub(l, 1, -2) end
          if not utf8.len(l) then bad() end
          if l ~= "" then
            n = n + 1
            rows[n] = line_fast(l, now) or slow(split(l))
          end
        end
      end
      if n > 0 then write(rows) end
    end
  end
  f:close()
end

--- Load a customer CSV (UTF-8, header row with at least account_number, first_name,
-- last_name, efaktura).  Either every row is good and the register is updated in one
-- transaction, or nothing changes and nil, message, kind (every bad row with its line;
-- "input" for the file's content, "env" for an unreadable file or a database failure; for
-- bad rows a fourth value { field = the column the first one names }) is returned.
-- Unchanged customers are not written (their updated_at stays).
--
-- The file is streamed into the register in batches of CUSTOMER_BATCH rows (one db:batch
-- each) inside one transaction.  At the first bad row that transaction is rolled back and
-- the file read once more, without writing, to list every bad row (the rare path pays).
function Reg:import_customers(path, opts)
  opts = opts or {}
  local label = opts.name or path
  local f, oerr = io.open(path, "rb")
  if not f then return errors.os(label, "cannot open the customer file", oerr) end
  f:close()
  local db = self.db
  local quoted = has_quote(path)
  local function reader()
    if quoted then return csv.rows(path) end
    return plain_rows(path)
  end
  local next_row, next_line = reader()
  local ok0, header, hline = pcall(next_row)
  if not ok0 then return nil, tostring(header), "input" end
  if not header then return nil, label .. ":1: empty file (expected a header row)", "input" end
  local h, herr, hkind = read_header(header, hline, label)
  if not h then return nil, herr, hkind end

  -- every bad row of the file, read again without writing
  local function all_problems()
    local problems, seen, first_field = {}, {}, nil
    local it = reader()
    it()   -- the header
    for fl, line in it do
      local row, fmt, a, b = check_customer(h, fl, line, seen, "")
      if not row then
        if #problems == 0 then
          local name = fmt:match("^([%w_]+) ")
          if name and h.col[name] then first_field = name end
        end
        if #problems < 100 then problems[#problems + 1] = string.format("%s:%d: " .. fmt, label, line, a, b) end
      end
    end
    if #problems == 0 then return nil end
    return table.concat(problems, "\n") .. string.format("\n%s: no customer imported", label), first_field
  end

  local counts = { added = 0, updated = 0, unchanged = 0 }
  local now = register.now()
  local empty, seen   -- set under the write lock: a first import has nothing to compare with,
                      -- and its primary key finds repeated numbers (else a table of them does)
  local pending = {}

  local function flush()
    if #pending == 0 then return end
    local batch = pending
    pending = {}
    if empty then
      counts.added = counts.added + #batch
      db:batch(CUSTOMER_INSERT, batch)
      return
    end
    local numbers, before = {}, {}
    for i = 1, #batch do numbers[i] = batch[i][1] end
    for row in db:rows_in("SELECT account_number, first_name, last_name, efaktura, extra FROM customers"
        .. " WHERE account_number IN ({in})", numbers) do
      before[row.account_number] = row
    end
    local keep = {}
    for i = 1, #batch do
      local g = batch[i]
      local b = before[g[1]]
      if not b then
        counts.added = counts.added + 1
        keep[#keep + 1] = g
      elseif b.first_name == g[2] and b.last_name == g[3] and store.int(b.efaktura) == g[4]
          and same_extra(b.extra, g[5]) then
        counts.unchanged = counts.unchanged + 1   -- not written: its updated_at stays
      else
        counts.updated = counts.updated + 1
        keep[#keep + 1] = g
      end
    end
    if #keep > 0 then db:batch(CUSTOMER_SAVE, keep) end
  end

  local okb, berr = pcall(db.begin, db)
  if not okb then return nil, tostring(berr), "env" end
  local BAD = {}   -- raised for a bad row: the rows are then listed by all_problems
  local ok, err = pcall(function()
    empty = self:customer_count() == 0
    seen = not empty and {} or nil
    local line_fast, block_fast
    if empty and next_line then line_fast, block_fast = compile_fast(h) end
    if line_fast then
      import_blocks(next_line("file"), h, line_fast, block_fast, now, function(rows)
        counts.added = counts.added + #rows
        db:batch(CUSTOMER_INSERT, rows)
      end, function() error(BAD, 0) end)
    else
      for fl, line in next_row do
        local row = check_customer(h, fl, line, seen, now)
        if not row then error(BAD, 0) end
        pending[#pending + 1] = row
        if #pending >= CUSTOMER_BATCH then flush() end
      end
    end
    flush()
  end)
  if ok then ok, err = pcall(db.commit, db) end
  if ok then return counts end
  db:rollback()
  -- a bad row, a CSV error, or (on a first import) a repeated number refused by the key
  local okp, msg, field = pcall(all_problems)
  if not okp then return nil, tostring(msg), "input" end   -- the CSV reader's "FILE:LINE: ..."
  if msg then return nil, msg, "input", { field = field } end
  return nil, tostring(err), "env"
end

------------------------------------------------------------------------------------------
-- agreements

local INT_COLUMNS = { id = true, line = true, file_id = true, seq = true, records = true, answers = true }
local function fix_ints(row)
  for k in pairs(INT_COLUMNS) do if row[k] ~= nil then row[k] = store.int(row[k]) end end
  return row
end

--- Current agreements for a list of keys: { [key] = row }.
-- keys: list of { thor_user_id, provider, account }.
function Reg:agreements(keys)
  local out = {}
  if #keys == 0 then return out end
  local ids, seen = {}, {}
  for _, k in ipairs(keys) do
    if not seen[k[1]] then seen[k[1]] = true ids[#ids + 1] = k[1] end
  end
  for row in self.db:rows_in("SELECT * FROM agreements WHERE thor_user_id IN ({in})", ids) do
    out[register.key(row.thor_user_id, row.provider, row.account)] = fix_ints(row)
  end
  return out
end

function Reg:agreement(id)
  local row = self.db:first("SELECT * FROM agreements WHERE id = ?", id)
  return row and fix_ints(row)
end

local AGREEMENT_UPDATE = {}
for _, c in ipairs(AGREEMENT_COLUMNS) do
  if c ~= "thor_user_id" and c ~= "provider" and c ~= "account" and c ~= "created_at" then
    AGREEMENT_UPDATE[#AGREEMENT_UPDATE + 1] = c .. " = excluded." .. c
  end
end
AGREEMENT_UPDATE = table.concat(AGREEMENT_UPDATE, ", ")

local AGREEMENT_SAVE = "INSERT INTO agreements (" .. table.concat(AGREEMENT_COLUMNS, ",") .. ") VALUES ("
  .. string.rep("?,", #AGREEMENT_COLUMNS - 1) .. "?) ON CONFLICT (thor_user_id, provider, account) DO UPDATE SET "
  .. AGREEMENT_UPDATE

-- rows (tables keyed by column) as arrays in the order of columns, for db:batch
local function arrays(rows, columns)
  local out, n = {}, #columns
  for i = 1, #rows do
    local r, a = rows[i], {}
    for j = 1, n do a[j] = r[columns[j]] end
    out[i] = a
  end
  return out
end

--- Insert or update agreements (each key at most once in the list).
function Reg:save_agreements(rows)
  if #rows == 0 then return end
  self.db:batch(AGREEMENT_SAVE, arrays(rows, AGREEMENT_COLUMNS))
end

local HISTORY_LIST = { "thor_user_id", "provider", "account", "file_id", "seq", "line", "element", "event",
  "status_before", "status_after", "answer", "reason", "message", "detail", "at" }
local HISTORY_ADD = "INSERT INTO history (" .. table.concat(HISTORY_LIST, ",") .. ") VALUES ("
  .. string.rep("?,", #HISTORY_LIST - 1) .. "?)"

function Reg:add_history(rows)
  if #rows == 0 then return end
  self.db:batch(HISTORY_ADD, arrays(rows, HISTORY_LIST))
end

--- The stored answers of a file, in order (an iterator of rows).
function Reg:responses(file_id)
  local it = self.db:rows("SELECT element, account, answer, reason, message, provider, thor_user_id FROM history"
    .. " WHERE file_id = ? AND answer IS NOT NULL ORDER BY seq", file_id)
  return function()
    local r = it()
    if r then r.status = r.answer end
    return r
  end
end

function Reg:history(thor_user_id, provider, account)
  local out = {}
  for row in self.db:rows("SELECT * FROM history WHERE thor_user_id = ? AND provider = ? AND account = ? ORDER BY id",
      thor_user_id, provider, account) do
    out[#out + 1] = fix_ints(row)
  end
  return out
end

--- Agreements, optionally of one status, ordered by id.
function Reg:list(status)
  local out = {}
  local it = status and self.db:rows("SELECT * FROM agreements WHERE status = ? ORDER BY id", status)
    or self.db:rows("SELECT * FROM agreements ORDER BY id")
  for row in it do out[#out + 1] = fix_ints(row) end
  return out
end

--- Agreements matching a filter, ordered by id: { status = S, customer = N, account = R,
-- thor_user_id = T } (every given key must match; none given: all agreements).
function Reg:find(filter)
  local where, vals = {}, {}
  for _, c in ipairs({ "status", "customer", "account", "thor_user_id" }) do
    if filter[c] ~= nil then where[#where + 1] = c .. " = ?" vals[#vals + 1] = filter[c] end
  end
  local sql = "SELECT * FROM agreements" .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. " ORDER BY id"
  local out = {}
  for row in self.db:rows(sql, table.unpack(vals)) do out[#out + 1] = fix_ints(row) end
  return out
end

------------------------------------------------------------------------------------------
-- files

function Reg:file_by_digest(digest)
  local row = self.db:first("SELECT * FROM files WHERE digest = ?", digest)
  return row and fix_ints(row)
end

function Reg:file(id)
  local row = self.db:first("SELECT * FROM files WHERE id = ?", id)
  return row and fix_ints(row)
end

--- Record a file (inside the caller's transaction); returns its id.
function Reg:add_file(f)
  local row = self.db:first("INSERT INTO files (kind, digest, name, from_name, to_id, to_service, records, answers, summary, processed_at)"
    .. " VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id", f.kind, f.digest, f.name, f.from_name, f.to_id, f.to_service,
    f.records or 0, f.answers or 0, f.summary, f.processed_at or register.now())
  return store.int(row.id)
end

function Reg:update_file(id, f)
  self.db:exec("UPDATE files SET from_name = ?, to_id = ?, to_service = ?, records = ?, answers = ?, summary = ? WHERE id = ?",
    f.from_name, f.to_id, f.to_service, f.records or 0, f.answers or 0, f.summary, id)
end

function Reg:mark_delivered(id)
  self.db:exec("UPDATE files SET delivered_at = ? WHERE id = ?", register.now(), id)
end

--- The latest answer batch whose response was never confirmed written, if any.
function Reg:undelivered_batch()
  local row = self.db:first("SELECT * FROM files WHERE kind = 'answer' AND delivered_at IS NULL ORDER BY id DESC")
  return row and fix_ints(row)
end

------------------------------------------------------------------------------------------
-- transactions and the writes of held requests (giro.efaktura.process and .held reach the
-- database only through these; nothing outside this module touches reg.db)

--- Run fn(...) inside one transaction: BEGIN, COMMIT when fn returns (its results are
-- returned), ROLLBACK when it raises (the error goes on up, unchanged).
function Reg:transaction(fn, ...) return self.db:transaction(fn, ...) end

--- Attach a customer (number, text) to agreement id (inside the caller's transaction).
function Reg:set_customer(id, customer, at)
  self.db:exec("UPDATE agreements SET customer = ?, updated_at = ? WHERE id = ?", customer, at or register.now(), id)
end

--- Record a person's decision (JSON text) on held agreement id (inside the caller's transaction).
function Reg:set_decision(id, decision, at)
  self.db:exec("UPDATE agreements SET decision = ?, updated_at = ? WHERE id = ?", decision, at or register.now(), id)
end

return register
