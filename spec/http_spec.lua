-- giro.http against real HTTP(S) servers on 127.0.0.1 (spec/support/https_server.lua)
-- with a test PKI made by `openssl` in this run (spec/support/testca.lua).
-- Encoding vectors follow RFC 3986 section 2 (unreserved: ALPHA DIGIT - . _ ~) and the
-- WHATWG application/x-www-form-urlencoded rules (space as '+'); UTF-8 bytes of "ø" are
-- C3 B8, of "€" E2 82 AC.
local http = require("giro.http")
local testca = require("testca")
local https_server = require("https_server")
local cjson = require("cjson")
local socket = require("socket")

describe("giro.http encoding helpers", function()
  it("urlencode keeps only unreserved characters, upper-case hex", function()
    assert.equal("AZaz09-._~", http.urlencode("AZaz09-._~"))
    assert.equal("a%20b%2Bc%26d%3De%2Ff%3Fg%25", http.urlencode("a b+c&d=e/f?g%"))
    assert.equal("%C3%B8%E2%82%AC", http.urlencode("ø€"))
    assert.equal("%00%0A%FF", http.urlencode("\0\n\255"))
    assert.equal("", http.urlencode(""))
    assert.has_error(function() http.urlencode({}) end)
  end)

  it("urlencode/urldecode round-trip every byte", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    local enc = http.urlencode(all)
    assert.is_nil(enc:find("[^%w%-%._~%%]"))
    assert.is_nil(enc:find("%%%x?[a-f]"))          -- hex digits are upper case
    assert.equal(all, http.urldecode(enc))
  end)

  it("urldecode decodes %XX in either case and '+' as a space", function()
    assert.equal("a b+c", http.urldecode("a+b%2Bc"))
    assert.equal("ø", http.urldecode("%c3%B8"))
    assert.equal("100% sure", http.urldecode("100%25+sure"))
    assert.equal("", http.urldecode(""))
  end)

  it("urldecode refuses malformed percent escapes with nil, message", function()
    for _, bad in ipairs({ "%", "abc%", "%4", "%zz", "%4g", "a%%20" }) do
      local v, err = http.urldecode(bad)
      assert.is_nil(v, bad)
      assert.matches("malformed percent escape", err)
    end
    local _, err = http.urldecode("ab%zz")
    assert.matches("at byte 3", err)
  end)

  it("form_encode keeps order and duplicates, spaces as '+'", function()
    assert.equal("b=2&a=1&b=3", http.form_encode({ { "b", "2" }, { "a", "1" }, { "b", "3" } }))
    assert.equal("first+name=J%C3%B8rgen+%C3%98&sum=1%2B1%3D2&amt=12.50&n=7",
      http.form_encode({ { "first name", "Jørgen Ø" }, { "sum", "1+1=2" }, { "amt", "12.50" },
                         { "n", 7 } }))
    assert.equal("empty=", http.form_encode({ { "empty", "" } }))
    assert.equal("", http.form_encode({}))
  end)

  it("form_encode raises on wrong types and on a map", function()
    assert.has_error(function() http.form_encode("a=1") end)
    assert.has_error(function() http.form_encode({ { "a" } }) end)
    assert.has_error(function() http.form_encode({ { "a", {} } }) end)
    assert.has_error(function() http.form_encode({ "a", "b" }) end)
    assert.has_error(function() http.form_encode({ a = "1" }) end,
      "giro.http.form_encode: expected a list of {name, value} pairs")
  end)

  it("parse_query returns an ordered list of decoded pairs, duplicates kept", function()
    assert.same({ { "a", "1" }, { "b", "x y" }, { "a", "2" } }, http.parse_query("?a=1&b=x+y&a=2"))
    assert.same({ { "navn", "Søren" }, { "k y", "=" } }, http.parse_query("navn=S%C3%B8ren&k+y=%3D"))
    assert.same({ { "flag", "" }, { "e", "" } }, http.parse_query("flag&&e="))
    assert.same({ { "a", "b=c" } }, http.parse_query("a=b=c"))
    assert.same({}, http.parse_query(""))
    assert.same({}, http.parse_query("?"))
  end)

  it("parse_query refuses malformed escapes with nil, message", function()
    local v, err = http.parse_query("a=1&b=%G1")
    assert.is_nil(v)
    assert.matches("malformed percent escape at byte 7", err)
    v, err = http.parse_query("x%=1")
    assert.is_nil(v)
    assert.matches("malformed", err)
    assert.has_error(function() http.parse_query(nil) end)
  end)

  it("form_encode and parse_query are inverses", function()
    local pairs_ = { { "a b", "1&2" }, { "ø", "€ +%" }, { "a b", "" }, { "~x", "y.z" } }
    assert.same(pairs_, http.parse_query(http.form_encode(pairs_)))
  end)
end)

describe("giro.http.request", function()
  local pki, srv, mtls, untrusted, wronghost, plain

  local big = string.rep("0123456789", 100)   -- 1000 bytes

  setup(function()
    pki = testca.create()
    local routes = {
      ["/created"] = { status = 201, body = "made", headers = {
        { "Content-Type", "text/plain" }, { "X-Multi", "one" }, { "Set-Cookie", "a=1" },
        { "X-Multi", "two" }, { "Set-Cookie", "b=2" } } },
      ["/missing"] = { status = 404, body = "no such thing" },
      ["/broken"] = { status = 500, body = "oops" },
      ["/redirect"] = { redirect = "/target" },
      ["/hang"] = { hang = true },
      ["/big"] = { body = big },
      ["/big-eof"] = { body = big, close_delimited = true },
    }
    srv = https_server.start({ cert = pki.server_cert, key = pki.server_key, routes = routes })
    plain = https_server.start({ routes = routes })
    mtls = https_server.start({ cert = pki.server_cert, key = pki.server_key, ca = pki.ca_cert,
                                require_client_cert = true })
    untrusted = https_server.start({ cert = pki.untrusted_cert, key = pki.untrusted_key })
    wronghost = https_server.start({ cert = pki.wrong_host_cert, key = pki.wrong_host_key })
  end)

  teardown(function()
    for _, s in ipairs({ srv, plain, mtls, untrusted, wronghost }) do s:stop() end
    testca.remove(pki)
  end)

  local function get(url, extra)
    local req = { url = url, ca_file = pki.ca_cert }
    for k, v in pairs(extra or {}) do req[k] = v end
    return http.request(req)
  end

  it("GET over HTTPS with the test CA sends the headers in order", function()
    local status, headers, body = get(srv:url("/echo?q=1&q=2"), {
      headers = { { "X-First", "1" }, { "X-Second", "two words" }, { "Accept", "text/plain" } } })
    assert.equal(200, status)
    assert.equal("application/json", headers["content-type"])
    local seen = cjson.decode(body)
    assert.equal("GET", seen.method)
    assert.equal("/echo", seen.path)
    assert.equal("q=1&q=2", seen.query)
    local names = {}
    for _, h in ipairs(seen.headers) do names[#names + 1] = h[1] .. "=" .. h[2] end
    local joined = table.concat(names, ";")
    assert.matches("X%-First=1;X%-Second=two words;Accept=text/plain", joined)
    assert.equal("", seen.body)
  end)

  it("accepts headers as a map name -> value", function()
    local status, _, body = get(srv:url("/echo"), { headers = { ["X-Api-Key"] = "k1" } })
    assert.equal(200, status)
    local found
    for _, h in ipairs(cjson.decode(body).headers) do
      if h[1] == "X-Api-Key" then found = h[2] end
    end
    assert.equal("k1", found)
  end)

  it("POSTs a form body in order and the server records it", function()
    local form = { { "NET_VERSION", "002" }, { "NET_STAMP", "2024 01" }, { "NET_AMOUNT", "12,50" },
                   { "NET_MSG", "Søren & Co" }, { "NET_VERSION", "dup" } }
    local status, _, body = get(srv:url("/pay"), { form = form })
    assert.equal(200, status)
    local seen = cjson.decode(body)
    assert.equal("POST", seen.method)
    assert.equal("NET_VERSION=002&NET_STAMP=2024+01&NET_AMOUNT=12%2C50&NET_MSG=S%C3%B8ren+%26+Co"
      .. "&NET_VERSION=dup", seen.body)
    assert.same(form, http.parse_query(seen.body))
    local ct
    for _, h in ipairs(seen.headers) do if h[1]:lower() == "content-type" then ct = h[2] end end
    assert.equal("application/x-www-form-urlencoded", ct)
    local last = srv:requests()[#srv:requests()]
    assert.equal("/pay", last.path)
    assert.equal(seen.body, last.body)
  end)

  it("sends a raw body with other methods and the caller's content type", function()
    local payload = '{"amount":"12.50","text":"ø\\u0000"}'
    local status, _, body = get(srv:url("/doc"), { method = "PUT", body = payload,
      headers = { { "Content-Type", "application/json" } } })
    assert.equal(200, status)
    local seen = cjson.decode(body)
    assert.equal("PUT", seen.method)
    assert.equal(payload, seen.body)
    status, _, body = get(srv:url("/doc"), { method = "DELETE" })
    assert.equal(200, status)
    assert.equal("DELETE", cjson.decode(body).method)
  end)

  it("POSTs a large body intact (Expect: 100-continue path) and answers HEAD", function()
    local chunk = {}
    for i = 0, 255 do chunk[#chunk + 1] = string.char(i) end
    local payload = string.rep(table.concat(chunk), 6000)      -- 1.5 MiB, every byte value
    local status = get(srv:url("/upload"), { body = payload,
      headers = { { "Content-Type", "application/octet-stream" } } })
    assert.equal(200, status)
    local reqs = srv:requests()
    assert.equal("/upload", reqs[#reqs].path)
    assert.equal(#payload, #reqs[#reqs].body)
    assert.equal(payload, reqs[#reqs].body)
    local headers, body
    status, headers, body = get(srv:url("/created"), { method = "HEAD" })
    assert.equal(201, status)
    assert.equal("text/plain", headers["content-type"])
    assert.equal("", body)
  end)

  it("returns status codes and headers: lower-case map, repeats joined, list in order", function()
    local status, headers, body = get(srv:url("/created"))
    assert.equal(201, status)
    assert.equal("made", body)
    assert.equal("text/plain", headers["content-type"])
    assert.equal("one, two", headers["x-multi"])
    assert.equal("a=1, b=2", headers["set-cookie"])
    local list = {}
    for _, h in ipairs(headers) do list[#list + 1] = h[1] end
    assert.same({ "Content-Type", "X-Multi", "Set-Cookie", "X-Multi", "Set-Cookie",
                  "Content-Length", "Connection" }, list)
    assert.same({ "X-Multi", "two" }, headers[4])
    status, _, body = get(srv:url("/missing"))
    assert.equal(404, status)
    assert.equal("no such thing", body)
    status = get(srv:url("/broken"))
    assert.equal(500, status)
  end)

  it("does not follow redirects", function()
    local before = #srv:requests()
    local status, headers, body = get(srv:url("/redirect"))
    assert.equal(302, status)
    assert.equal("/target", headers.location)
    assert.equal("", body)
    local after = srv:requests()
    assert.equal(before + 1, #after)
    assert.equal("/redirect", after[#after].path)
  end)

  it("works over plain HTTP too", function()
    local status, _, body = http.request({ url = plain:url("/missing") })
    assert.equal(404, status)
    assert.equal("no such thing", body)
  end)

  it("times out on a server that never answers", function()
    local status, err = get(srv:url("/hang"), { timeout = 1 })
    assert.is_nil(status)
    assert.matches("giro.http: GET " .. srv:url("/hang"):gsub("%p", "%%%0") .. " failed: Timeout", err)
  end)

  it("reports a refused connection with the URL", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local status, err = http.request({ url = "http://127.0.0.1:" .. port .. "/x" })
    assert.is_nil(status)
    assert.matches("http://127.0.0.1:" .. port .. "/x failed: Couldn't connect", err, 1, true)
  end)

  it("refuses a self-signed server certificate", function()
    local status, err = get(untrusted:url("/echo"))
    assert.is_nil(status)
    assert.matches("SSL certificate problem: self[- ]signed certificate", err)
    assert.matches(untrusted:url("/echo"), err, 1, true)
    assert.equal(0, #untrusted:requests())
  end)

  it("refuses a certificate for another host name", function()
    local status, err = get(wronghost:url("/echo"))
    assert.is_nil(status)
    assert.matches("no alternative certificate subject name matches target host name '127.0.0.1'",
      err, 1, true)
    assert.equal(0, #wronghost:requests())
  end)

  it("does not trust the test CA without ca_file (system store only)", function()
    local status, err = http.request({ url = srv:url("/echo") })
    assert.is_nil(status)
    assert.matches("SSL certificate problem", err, 1, true)
  end)

  it("never puts userinfo or the query string in messages", function()
    local port = untrusted.port
    local status, err = http.request({ url = "https://alice:s3cr3t@127.0.0.1:" .. port
      .. "/p?token=t0ps3cret", ca_file = pki.ca_cert })
    assert.is_nil(status)
    assert.matches("https://127.0.0.1:" .. port .. "/p?... failed", err, 1, true)
    assert.is_nil(err:find("s3cr3t", 1, true))
    assert.is_nil(err:find("alice", 1, true))
  end)

  it("mTLS: fails without a client certificate", function()
    local status, err = get(mtls:url("/echo"))
    assert.is_nil(status)
    assert.matches("giro.http: GET " .. mtls:url("/echo"), err, 1, true)
    assert.equal(0, #mtls:requests())
  end)

  it("mTLS: succeeds with the client certificate and key", function()
    local status, _, body = get(mtls:url("/echo"),
      { client_cert = pki.client_cert, client_key = pki.client_key })
    assert.equal(200, status)
    assert.equal("/echo", cjson.decode(body).path)
    local reqs = mtls:requests()
    assert.equal("giro test client", reqs[#reqs].client_cn)
  end)

  it("mTLS: succeeds with an encrypted key and key_password, fails with a wrong one", function()
    local status = get(mtls:url("/enc"), { client_cert = pki.client_cert,
      client_key = pki.client_key_encrypted, key_password = pki.client_key_password })
    assert.equal(200, status)
    local err
    status, err = get(mtls:url("/enc"), { client_cert = pki.client_cert,
      client_key = pki.client_key_encrypted, key_password = "wrong-pass-XYZ" })
    assert.is_nil(status)
    assert.matches("giro.http: GET " .. mtls:url("/enc") .. " failed:", err, 1, true)
    assert.is_nil(err:find("wrong-pass-XYZ", 1, true))
    assert.is_nil(err:find(pki.client_key_password, 1, true))
  end)

  it("refuses unknown request fields, so TLS verification cannot be turned off", function()
    for _, field in ipairs({ "insecure", "verify", "ssl_verifypeer", "follow_redirects" }) do
      local ok, err = pcall(http.request, { url = srv:url("/echo"), [field] = false })
      assert.is_false(ok)
      assert.matches("unknown field '" .. field .. "'", err, 1, true)
    end
    assert.has_error(function() http.request({ url = srv:url("/"), [1] = "x" }) end)
  end)

  it("raises on wrong argument types and contradictory fields", function()
    local url = srv:url("/echo")
    assert.has_error(function() http.request(url) end)
    assert.has_error(function() http.request({}) end, "giro.http.request: field 'url' is required")
    assert.has_error(function() http.request({ url = url, timeout = "5" }) end)
    assert.has_error(function() http.request({ url = url, timeout = 0 }) end)
    assert.has_error(function() http.request({ url = url, headers = "X: y" }) end)
    assert.has_error(function() http.request({ url = url, headers = { { "X", {} } } }) end)
    assert.has_error(function() http.request({ url = url, headers = { { "Bad Name", "v" } } }) end)
    assert.has_error(function() http.request({ url = url, headers = { X = "a\r\nInjected: 1" } }) end)
    assert.has_error(function() http.request({ url = url, body = "a", form = {} }) end)
    assert.has_error(function() http.request({ url = url, method = "GET", body = "a" }) end)
    assert.has_error(function() http.request({ url = url, method = "get" }) end)
    assert.has_error(function() http.request({ url = url, form = { x = "1" } }) end)
    assert.has_error(function() http.request({ url = url, max_body = -1 }) end)
    assert.has_error(function() http.request({ url = url, client_key = pki.client_key }) end)
  end)

  it("refuses protocols other than http and https", function()
    local status, err = http.request({ url = "file:///etc/passwd" })
    assert.is_nil(status)
    assert.matches("file:///etc/passwd failed", err, 1, true)
  end)

  it("max_body: a larger response is nil, message; an equal one passes", function()
    for _, path in ipairs({ "/big", "/big-eof" }) do
      local status, err = get(srv:url(path), { max_body = 999 })
      assert.is_nil(status, path)
      assert.matches("response body larger than max_body (999 bytes)", err, 1, true)
      local body
      status, _, body = get(srv:url(path), { max_body = 1000 })
      assert.equal(200, status, path)
      assert.equal(big, body)
    end
    local status, err = http.request({ url = plain:url("/big-eof"), max_body = 10 })
    assert.is_nil(status)
    assert.matches("larger than max_body", err, 1, true)
  end)
end)
