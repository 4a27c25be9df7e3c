-- A real HTTP(S) server on 127.0.0.1 for specs, run as a separate giro process
-- (spec/support/https_server_main.lua, on the Debian packages lua-socket + lua-sec).
--
--   local https_server = require("https_server")      -- spec/support is on busted's lpath
--   local srv = https_server.start{
--     cert = pki.server_cert, key = pki.server_key,   -- omit both for plain HTTP
--     ca = pki.ca_cert, require_client_cert = true,   -- mTLS: refuse clients without a CA cert
--     lifetime = 60,                                  -- seconds; the process exits by itself
--     routes = {                                      -- exact path (query ignored) -> answer
--       ["/pay"]  = { status = 200, body = "OK", headers = { {"Content-Type", "text/plain"} } },
--       ["/gone"] = { redirect = "https://example.invalid/there" },  -- 302 + Location
--       ["/slow"] = { hang = true },                  -- read the request, never answer
--       ["/eof"]  = { body = "...", close_delimited = true },  -- no Content-Length header
--     },
--   }
--   srv.port, srv.scheme                  -- the port picked by the kernel, "https" or "http"
--   srv:url("/pay?x=1")                   -- "https://127.0.0.1:PORT/pay?x=1"
--   srv:requests()                        -- every request received so far, in order:
--     { method, target, path, query, headers = { {name, value}, ... }, body,
--       client_cn = CN of the client certificate (mTLS) or nil }
--   srv:errors()                          -- failed handshakes / bad requests (strings)
--   srv:stop()                            -- kill the process, delete its temporary directory
--
-- Any path without a route answers 200 with the received request (the table above, minus
-- client_cn if absent) as JSON, so specs can assert exactly what was sent.  A request is
-- recorded before it is answered: once a client has its answer, requests() shows it.
-- One connection at a time; every answer carries "Connection: close".
-- start() waits (up to 20 s) for the port file the server writes once it listens, and
-- raises with the server's output if it dies first.  The server uses the giro binary that
-- runs the spec (./giro or build/asan/giro).
local cjson = require("cjson")

local M = {}
local Server = {}
Server.__index = Server

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function running(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

function M.start(opts)
  opts = opts or {}
  assert(type(opts) == "table", "https_server.start: expected a table of options")
  assert((opts.cert == nil) == (opts.key == nil), "https_server.start: give cert and key together")
  local p = assert(io.popen("mktemp -d /tmp/giro-https.XXXXXX"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir:match("^/tmp/giro%-https%.[%w]+$"), "https_server: mktemp failed")
  local cfg = {
    cert = opts.cert, key = opts.key, ca = opts.ca,
    require_client_cert = opts.require_client_cert and true or false,
    routes = opts.routes or {},
    lifetime = opts.lifetime or 60,
    port_file = dir .. "/port",
    log_file = dir .. "/requests.jsonl",
  }
  if next(cfg.routes) == nil then cfg.routes = nil end   -- cjson: {} would be an array
  local f = assert(io.open(dir .. "/config.json", "w"))
  f:write(cjson.encode(cfg))
  f:close()
  -- $PPID of the shell is this giro process: start the server with the same binary
  local cmd = string.format("\"$(readlink /proc/$PPID/exe)\" run %s/https_server_main.lua "
    .. "%s/config.json >%s/server.out 2>&1 </dev/null & echo $!", here, dir, dir)
  p = assert(io.popen(cmd))
  local pid = p:read("l")
  p:close()
  assert(pid and pid:match("^%d+$"), "https_server: could not start the server process")
  local srv = setmetatable({ pid = pid, dir = dir, scheme = opts.cert and "https" or "http" }, Server)
  for _ = 1, 400 do                                        -- up to 20 s for the port file
    local port = readfile(dir .. "/port")
    if port then
      srv.port = tonumber(port:match("%d+"))
      return srv
    end
    if not running(pid) then break end
    os.execute("sleep 0.05")
  end
  local out = readfile(dir .. "/server.out") or ""
  srv:stop()
  error("https_server: the server did not start:\n" .. out, 2)
end

function Server:url(path)
  return string.format("%s://127.0.0.1:%d%s", self.scheme, self.port, path or "/")
end

local function entries(self)
  local list = {}
  for line in (readfile(self.dir .. "/requests.jsonl") or ""):gmatch("[^\n]+") do
    list[#list + 1] = cjson.decode(line)
  end
  return list
end

function Server:requests()
  local out = {}
  for _, e in ipairs(entries(self)) do
    if not e.error then out[#out + 1] = e end
  end
  return out
end

function Server:errors()
  local out = {}
  for _, e in ipairs(entries(self)) do
    if e.error then out[#out + 1] = e.error end
  end
  return out
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  if self.dir then
    os.execute("rm -rf " .. self.dir)
    self.dir = nil
  end
end

return M
