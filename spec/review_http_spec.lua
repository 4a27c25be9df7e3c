-- giro.http.request: lifetime of the strings it reads from the request table (review findings).
-- No server is needed: every request goes to a port nothing listens on.
local http = require("giro.http")
local socket = require("socket")

-- a 127.0.0.1 port that refuses connections: bind, note it, close
local function closed_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("giro.http.request (review)", function()
  it("keeps the strings it read alive when Lua code later changes the request table", function()
    -- luaL_len on `headers` runs its __len, after url and client_cert were read: the
    -- request must not hold pointers to strings only the table kept alive
    local url = "http://127.0.0.1:" .. closed_port() .. "/x"
    local req
    req = {
      url = url .. "?" .. ("q"):rep(40),
      client_cert = "/nonexistent/" .. ("c"):rep(40) .. ".pem",
      headers = setmetatable({}, { __len = function()
        req.url, req.client_cert = nil, nil
        for _ = 1, 3 do collectgarbage("collect") end
        for i = 1, 200 do local _ = ("z"):rep(100) .. i end   -- reuse freed memory
        return 0
      end }),
    }
    local ok, err = http.request(req)
    assert.is_nil(ok)
    assert.matches("GET http://127%.0%.0%.1:%d+/x%?%.%.%. failed", err)
  end)

  it("reads the request table raw: fields only an __index supplies are not used", function()
    local req = setmetatable({ url = "http://127.0.0.1:" .. closed_port() .. "/" },
      { __index = function(_, k) if k == "method" then return "PUT" end end })
    local ok, err = http.request(req)
    assert.is_nil(ok)
    assert.matches("^giro.http: GET ", err)
  end)

  it("a bad client certificate path is nil, message and leaks nothing", function()
    local ok, err = http.request{ url = "https://127.0.0.1:" .. closed_port() .. "/",
                                  client_cert = "/nonexistent/cert.pem", timeout = 5 }
    assert.is_nil(ok)
    assert.matches("failed", err)
  end)
end)
