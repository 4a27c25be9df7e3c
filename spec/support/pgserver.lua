-- A throw-away PostgreSQL server for the specs: initdb in a temporary directory, listening
-- on 127.0.0.1 at a free port, trust authentication (plus one password-protected role,
-- `secretive`, to test that passwords never show), stopped by stop() — and by a watchdog
-- when the test process dies without stopping it, or after a bounded lifetime.
--
--   local pg = require("pgserver")
--   if pg.available() then
--     local srv = pg.start()          -- raises when the binaries exist but the server fails
--     srv:url("dbname")               -- postgres://giro@127.0.0.1:PORT/dbname
--     srv:create_db()                 -- a fresh database, its URL
--     srv:stop()
--   else io.stderr:write(pg.why(), "\n") end
--
-- Debian's postgresql package puts initdb, pg_ctl and postgres in
-- /usr/lib/postgresql/<version>/bin; the newest version there is used.  initdb and
-- postgres refuse to run as root: as root they run as the `postgres` system user
-- (runuser), which owns the temporary directory.
local pg = {}

pg.PASSWORD_ROLE, pg.PASSWORD = "secretive", "s3cret-Pa55"
pg.LIFETIME = 1200   -- seconds: the watchdog stops the server after this, whatever happens

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function capture(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local bin_cache
--- The directory of the newest installed PostgreSQL's binaries, or nil.
function pg.bindir()
  if bin_cache ~= nil then return bin_cache or nil end
  bin_cache = false
  local _, out = capture("ls -d /usr/lib/postgresql/*/bin")
  local best, best_v
  for dir in out:gmatch("[^\n]+") do
    local v = tonumber(dir:match("/usr/lib/postgresql/([%d.]+)/bin$"))
    if v and exists(dir .. "/initdb") and exists(dir .. "/pg_ctl") and exists(dir .. "/postgres")
        and (not best_v or v > best_v) then
      best, best_v = dir, v
    end
  end
  if best then bin_cache = best end
  return best
end

local function is_root()
  local _, out = capture("id -u")
  return out:match("^0\n") ~= nil
end

function pg.available()
  return pg.bindir() ~= nil and (not is_root() or capture("id -u postgres") == 0)
end

function pg.why()
  if not pg.bindir() then
    return "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)"
  end
  return "running as root and there is no postgres user to run the server as"
end

local function self_pid()
  local f = io.open("/proc/self/stat")
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  return pid
end

local function free_port()
  local socket = require("socket")
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return math.tointeger(tonumber(port))
end

local Server = {}
Server.__index = Server

--- Start a server; raises with the server's log when it cannot.
function pg.start()
  local bin = assert(pg.bindir(), "no PostgreSQL binaries")
  local root = is_root()
  local as = root and "runuser -u postgres -- " or ""
  local _, dir = capture("mktemp -d /tmp/giro-pg.XXXXXX")
  dir = dir:match("^(%S+)")
  assert(dir and dir:match("^/tmp/giro%-pg%."), "mktemp failed")
  if root then assert(capture("chown postgres " .. sh_quote(dir)) == 0, "cannot chown " .. dir) end
  local srv = setmetatable({ dir = dir, data = dir .. "/data", bin = bin, as = as }, Server)
  -- an ICU database whose default collation is not byte order: text columns must still
  -- sort as in SQLite (giro creates them COLLATE "C")
  local rc, out = capture(as .. sh_quote(bin .. "/initdb") .. " -D " .. sh_quote(srv.data)
    .. " -U giro --auth=trust -N -E UTF8 --locale=C.UTF-8 --locale-provider=icu --icu-locale=nb-NO")
  if rc ~= 0 then
    -- an older initdb without ICU options
    rc, out = capture(as .. sh_quote(bin .. "/initdb") .. " -D " .. sh_quote(srv.data) .. " -U giro --auth=trust -N -E UTF8 --locale=C")
  end
  if rc ~= 0 then srv:remove() error("initdb failed:\n" .. out) end
  local hba = assert(io.open(srv.data .. "/pg_hba.conf", "w"))
  hba:write("local all all trust\n",
            "host all " .. pg.PASSWORD_ROLE .. " 127.0.0.1/32 scram-sha-256\n",
            "host all all 127.0.0.1/32 trust\n")
  hba:close()
  local last
  for _ = 1, 5 do   -- the free port can be taken between looking and binding: try another
    srv.port = free_port()
    local opts = string.format("-c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -p %d"
      .. " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40", dir, srv.port)
    rc, out = capture(as .. sh_quote(bin .. "/pg_ctl") .. " -D " .. sh_quote(srv.data) .. " -l " .. sh_quote(dir .. "/log")
      .. " -w -t 60 -o " .. sh_quote(opts) .. " start")
    if rc == 0 then break end
    local f = io.open(dir .. "/log")
    last = out .. (f and f:read("a") or "")
    if f then f:close() end
    srv.port = nil
    if not last:find("already in use", 1, true) then break end
  end
  if not srv.port then srv:remove() error("the PostgreSQL server did not start:\n" .. tostring(last)) end
  -- the watchdog: stops the server when this process is gone or its lifetime is over
  local stop = as .. sh_quote(bin .. "/pg_ctl") .. " -D " .. sh_quote(srv.data) .. " -m immediate stop"
  local watch = string.format("n=0; while kill -0 %s 2>/dev/null && [ $n -lt %d ]; do sleep 1; n=$((n+1)); done; "
    .. "%s; rm -rf %s", self_pid(), pg.LIFETIME, stop, sh_quote(dir))
  local p = io.popen("setsid sh -c " .. sh_quote(watch) .. " </dev/null >/dev/null 2>&1 & echo $!")
  srv.watchdog = p:read("l")
  p:close()
  srv.admin = assert(require("giro.store").open(srv:url("postgres")))
  -- CREATE ROLE takes no bound parameters: the password goes in as one (a setting) and
  -- the server quotes it into the statement (format %L)
  srv.admin:exec("SELECT set_config('giro.password', ?, false)", pg.PASSWORD)
  srv.admin:exec("DO $$ BEGIN EXECUTE format('CREATE ROLE " .. pg.PASSWORD_ROLE
    .. " LOGIN PASSWORD %L', current_setting('giro.password')); END $$")
  srv.n = 0
  return srv
end

function Server:url(dbname, user)
  return string.format("postgres://%s@127.0.0.1:%d/%s", user or "giro", self.port, dbname)
end

--- A fresh, empty database; returns its URL.
function Server:create_db(opts)
  self.n = self.n + 1
  local name = "t" .. self.n
  self.admin:exec("CREATE DATABASE " .. name .. (opts and opts.owner and (" OWNER " .. opts.owner) or ""))
  return self:url(name), name
end

function Server:remove()
  if self.dir and self.dir:match("^/tmp/giro%-pg%.") then os.execute("rm -rf " .. sh_quote(self.dir)) end
end

function Server:stop()
  if self.admin then self.admin:close() self.admin = nil end
  if self.port then
    capture(self.as .. sh_quote(self.bin .. "/pg_ctl") .. " -D " .. sh_quote(self.data) .. " -m fast -w stop")
    self.port = nil
  end
  if self.watchdog and self.watchdog:match("^%d+$") then
    os.execute("kill " .. self.watchdog .. " 2>/dev/null")
    self.watchdog = nil
  end
  self:remove()
end

return pg
