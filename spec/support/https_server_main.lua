-- The test HTTP(S) server process; specs use it through spec/support/https_server.lua.
-- Run as `giro run spec/support/https_server_main.lua CONFIG.json` (CONFIG is written by
-- https_server.start).  One connection at a time, HTTP/1.1 with "Connection: close";
-- each request is appended as one JSON line to config.log_file before it is answered,
-- so a client that got its answer can read the record.  Exits after config.lifetime
-- seconds whatever happens.  Needs the Debian packages lua-socket, lua-sec, lua-cjson.
local socket = require("socket")
local cjson = require("cjson")

local cfgfile = assert(arg[1], "usage: https_server_main.lua CONFIG.json")
local f = assert(io.open(cfgfile))
local cfg = cjson.decode(f:read("a"))
f:close()

local deadline = socket.gettime() + (cfg.lifetime or 60)
local routes = cfg.routes or {}
local log = assert(io.open(cfg.log_file, "a"))

local function record(entry)
  log:write(cjson.encode(entry), "\n")
  log:flush()
end

local tls_params
if cfg.cert then
  tls_params = {
    mode = "server", protocol = "any",
    certificate = cfg.cert, key = cfg.key,
    cafile = cfg.ca,
    verify = cfg.require_client_cert and { "peer", "fail_if_no_peer_cert" } or "none",
    options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
  }
end

local REASONS = {
  [200] = "OK", [201] = "Created", [204] = "No Content", [301] = "Moved Permanently",
  [302] = "Found", [303] = "See Other", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [500] = "Internal Server Error",
  [503] = "Service Unavailable",
}

-- Read one request from conn: method, target, headers (list of {name, value}), body.
local function read_request(conn)
  local line, err = conn:receive("*l")
  if not line then return nil, "request line: " .. tostring(err) end
  local method, target = line:match("^(%u+) (%S+) HTTP/1%.[01]$")
  if not method then return nil, "bad request line" end
  local headers, map = {}, {}
  while true do
    local h, e = conn:receive("*l")
    if not h then return nil, "headers: " .. tostring(e) end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if not name then return nil, "bad header line" end
    headers[#headers + 1] = { name, value }
    map[name:lower()] = value
  end
  if (map["expect"] or ""):lower() == "100-continue" then
    conn:send("HTTP/1.1 100 Continue\r\n\r\n")
  end
  local body = ""
  if (map["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts = {}
    while true do
      local size = tonumber((conn:receive("*l") or ""):match("^(%x+)"), 16)
      if not size then return nil, "bad chunk" end
      if size == 0 then
        repeat local t = conn:receive("*l") until t == nil or t == ""
        break
      end
      parts[#parts + 1] = conn:receive(size)
      conn:receive("*l")
    end
    body = table.concat(parts)
  elseif map["content-length"] then
    local n = tonumber(map["content-length"])
    if n and n > 0 then
      local b, e = conn:receive(n)
      if not b then return nil, "body: " .. tostring(e) end
      body = b
    end
  end
  return { method = method, target = target, headers = headers, body = body }
end

-- close_delimited: no Content-Length, the body ends when the connection closes
local function respond(conn, status, headers, body, close_delimited)
  local out = { string.format("HTTP/1.1 %d %s\r\n", status, REASONS[status] or "Status") }
  for _, h in ipairs(headers or {}) do
    out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n"
  end
  if not close_delimited then out[#out + 1] = "Content-Length: " .. #body .. "\r\n" end
  out[#out + 1] = "Connection: close\r\n\r\n"
  out[#out + 1] = body
  conn:send(table.concat(out))
end

local hanging = {}  -- connections of "hang" routes, kept open (and referenced) until exit

local function serve(conn)
  conn:settimeout(10)
  local peer = nil
  if tls_params then
    local ssl = require("ssl")
    local wrapped, err = ssl.wrap(conn, tls_params)
    if not wrapped then record({ error = "wrap: " .. tostring(err) }) conn:close() return end
    conn = wrapped
    conn:settimeout(10)
    local ok, herr = conn:dohandshake()
    if not ok then
      record({ error = "handshake: " .. tostring(herr) })
      conn:close()
      return
    end
    local cert = conn:getpeercertificate()
    if cert then
      for _, field in ipairs(cert:subject()) do
        if field.oid == "2.5.4.3" then peer = field.value end  -- commonName
      end
    end
  end
  local req, err = read_request(conn)
  if not req then
    record({ error = err })
    conn:close()
    return
  end
  local path, query = req.target:match("^([^?]*)%??(.*)$")
  req.path, req.query, req.client_cn = path, query, peer
  record(req)
  local route = routes[path]
  if route and route.hang then
    hanging[#hanging + 1] = conn
    return
  end
  if route and route.redirect then
    respond(conn, route.status or 302, { { "Location", route.redirect } }, "")
  elseif route then
    respond(conn, route.status or 200, route.headers, route.body or "", route.close_delimited)
  else  -- default: echo what was received, as JSON
    respond(conn, 200, { { "Content-Type", "application/json" } }, cjson.encode(req))
  end
  conn:close()
end

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0.2)
local _, port = server:getsockname()
local tmp = cfg.port_file .. ".tmp"
local pf = assert(io.open(tmp, "w"))
pf:write(port, "\n")
pf:close()
assert(os.rename(tmp, cfg.port_file))

while socket.gettime() < deadline do
  local conn = server:accept()
  if conn then
    local ok, e = pcall(serve, conn)
    if not ok then record({ error = "server: " .. tostring(e) }) pcall(conn.close, conn) end
  end
end
for _, c in ipairs(hanging) do c:close() end
server:close()
log:close()
