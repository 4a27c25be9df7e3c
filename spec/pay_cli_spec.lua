-- `giro pay` from the command line: banks, form, verify, and query/refund against a real local
-- HTTP server (spec/support/https_server.lua).  MACs come from `openssl dgst` in the test.
local H = require("pay_helpers")
local https_server = require("https_server")
local cjson = require("cjson")
local sha256, md5 = H.sha256, H.md5

local DKEY = "jumCLB4T2ceZWGJ9ztjuhn5FaeZnTm5HpfDXWU2APRqfDcsrBs8mqkFARzm7uXKd"
local SKEY = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tXYZW"
local MKEY = "Md5KeyMd5KeyMd5Key20"

local keyfile, skeyfile, mkeyfile
local run = H.run

-- every run's output must be free of the keys
local function clean(code, out, err)
  for _, k in ipairs({ DKEY, SKEY, MKEY }) do
    assert.is_nil(out:find(k, 1, true), "key in stdout")
    assert.is_nil(err:find(k, 1, true), "key in stderr")
  end
  return code, out, err
end
local function giro(words, env, stdin) return clean(run(words, env, stdin)) end

local DANSKE_FORM = { "SUMMA=100", "VIITE=1232", "KNRO=000000000000", "ERAPAIVA=01.01.2024",
  "OKURL=https://www.kauppa.fi/okpaluu", "VIRHEURL=https://www.kauppa.fi/virhepaluu" }
local function words(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    if type(list) == "table" then for _, w in ipairs(list) do out[#out + 1] = w end else out[#out + 1] = list end
  end
  return out
end

setup(function()
  keyfile = H.tmpfile(DKEY .. "\n")
  skeyfile = H.tmpfile(SKEY .. "\r\n")
  mkeyfile = H.tmpfile(MKEY)
end)
teardown(function()
  os.remove(keyfile); os.remove(skeyfile); os.remove(mkeyfile)
end)

describe("giro pay banks", function()
  it("lists the definitions with their messages and versions", function()
    local code, out = giro({ "pay", "banks" })
    assert.equal(0, code)
    assert.matches("danske%s+Danske Bank", out)
    assert.matches("\n  payment%s+request%s+versions 4%s+MAC TARKISTE 4:sha256", out)
    assert.matches("\n  query%-response%s+response%s+versions %-%s+no MAC", out)
    assert.matches("saastopankki%s+Säästöpankin verkkomaksu", out)
    assert.matches("payment%s+request%s+versions 001,002,003%s+MAC NET_MAC 001:md5 002:md5 003:sha256", out)
    assert.matches("refund%-response%s+response%s+versions 001,003", out)
  end)
end)

describe("giro pay form", function()
  it("prints NAME=VALUE lines in spec order with the MAC (key from a file)", function()
    local code, out, err = giro(words("pay", "form", "danske", "--key-file", keyfile, "--today", "2024-01-01", DANSKE_FORM))
    assert.equal("", err)
    assert.equal(0, code)
    local mac = sha256(DKEY .. "&100,00&1232&000000000000&4&EUR&https://www.kauppa.fi/okpaluu&https://www.kauppa.fi/virhepaluu&01.01.2024&")
    assert.equal("SUMMA=100,00\nVIITE=1232\nKNRO=000000000000\nVALUUTTA=EUR\nVERSIO=4\nERAPAIVA=01.01.2024\n"
      .. "OKURL=https://www.kauppa.fi/okpaluu\nVIRHEURL=https://www.kauppa.fi/virhepaluu\nTARKISTE=" .. mac .. "\nALG=03\n", out)
  end)

  it("warns on stderr about an http:// return address and still prints the form", function()
    local form = { "SUMMA=100", "VIITE=1232", "KNRO=000000000000", "ERAPAIVA=01.01.2024",
      "OKURL=http://www.kauppa.fi/okpaluu", "VIRHEURL=https://www.kauppa.fi/virhepaluu" }
    local code, out, err = giro(words("pay", "form", "danske", "--key-file", keyfile, "--today", "2024-01-01", form))
    assert.equal(0, code)
    assert.matches("warning: OKURL is an http:// address", err, 1, true)
    assert.is_nil(err:find("VIRHEURL", 1, true))
    local mac = sha256(DKEY .. "&100,00&1232&000000000000&4&EUR&http://www.kauppa.fi/okpaluu&https://www.kauppa.fi/virhepaluu&01.01.2024&")
    assert.matches("\nOKURL=http://www.kauppa.fi/okpaluu\n", out, 1, true)
    assert.matches("\nTARKISTE=" .. mac .. "\n", out, 1, true)
  end)

  it("json: the action URL and the ordered fields; key from the environment", function()
    local code, out = giro(words("pay", "form", "danske", "--key-env", "SHOP_KEY", "--format", "json", "--today", "2024-01-01",
      DANSKE_FORM, "lng=2"), { SHOP_KEY = DKEY })
    assert.equal(0, code)
    local j = cjson.decode(out)
    assert.equal("https://verkkopankki.danskebank.fi/SP/vemaha/VemahaApp", j.action)
    assert.equal("4", j.version)
    assert.equal("lng", j.fields[10].name)
    assert.equal("2", j.fields[10].value)
  end)

  it("html: a POST form with hidden inputs sent as ISO-8859-1", function()
    local code, out = giro(words("pay", "form", "saastopankki", "--key-file", skeyfile, "--format", "html",
      "NET_STAMP=ORDER42", "NET_SELLER_ID=0000000000123", "NET_AMOUNT=12.5", "NET_REF=1232", "NET_MSG=Kiitos äö <3",
      "NET_RETURN=https://shop.example/ok", "NET_CANCEL=https://shop.example/cancel", "NET_REJECT=https://shop.example/reject"))
    assert.equal(0, code)
    assert.matches('^<form method="POST" action="https://verkkomaksu.saastopankki.fi/vm/login.html" accept%-charset="ISO%-8859%-1">\n', out)
    local mac = sha256("003&ORDER42&0000000000123&12,50&1232&EXPRESS&EUR&https://shop.example/ok&https://shop.example/cancel&"
      .. "https://shop.example/reject&03&" .. SKEY .. "&", "upper")
    assert.matches('<input type="hidden" name="NET_MAC" value="' .. mac .. '">', out, 1, true)
    assert.matches('<input type="hidden" name="NET_MSG" value="Kiitos äö &lt;3">', out, 1, true)
    assert.matches("</form>\n$", out)
  end)

  it("--version picks the version; MD5 keys of any length", function()
    local code, out = giro(words("pay", "form", "saastopankki", "--version", "001", "--key-file", mkeyfile,
      "NET_STAMP=ORDER42", "NET_SELLER_ID=0000000000123", "NET_AMOUNT=12,50", "NET_REF=1232",
      "NET_RETURN=https://shop.example/ok", "NET_CANCEL=https://shop.example/cancel", "NET_REJECT=https://shop.example/reject"))
    assert.equal(0, code)
    assert.matches("\nNET_MAC=" .. md5("001&ORDER42&0000000000123&12,50&1232&EXPRESS&EUR&" .. MKEY .. "&", "upper") .. "\n", out, 1, true)
  end)

  it("rejects bad input with exit 1 and the field, usage errors with 2, and never shows the key", function()
    local code, out, err = giro(words("pay", "form", "danske", "--key-file", keyfile, "--today", "2024-01-01",
      DANSKE_FORM, "VALUUTTA=SEK"))
    assert.equal(1, code); assert.equal("", out)
    assert.equal("giro pay: VALUUTTA: must be EUR, got SEK\n", err)
    code, out, err = giro(words("pay", "form", "danske", "--key-file", keyfile, DANSKE_FORM))   -- 2024 is past
    assert.equal(1, code)
    assert.matches("ERAPAIVA: must be today or later", err, 1, true)
    code, _, err = giro(words("pay", "form", "danske", DANSKE_FORM))
    assert.equal(2, code); assert.matches("--key-file FILE or --key-env", err, 1, true)
    code, _, err = giro(words("pay", "form", "danske", "--key-env", "SHOP_KEY", DANSKE_FORM), { SHOP_KEY = "x" .. DKEY })
    assert.equal(1, code); assert.equal("giro pay: key: expected 64 characters for sha256, got 65\n", err)
    code, _, err = giro(words("pay", "form", "danske", "--key-env", "NO_SUCH_VARIABLE_X", DANSKE_FORM))
    assert.equal(3, code); assert.matches("NO_SUCH_VARIABLE_X is not set", err, 1, true)
    code, _, err = giro(words("pay", "form", "nosuchbank", "--key-file", keyfile))
    assert.equal(2, code); assert.matches("no bank definition 'nosuchbank'", err, 1, true)
    code, _, err = giro(words("pay", "form", "danske", "--key-file", keyfile, "SUMMA"))
    assert.equal(2, code); assert.matches("expected NAME=VALUE", err, 1, true)
    code, _, err = giro(words("pay", "form", "danske", "--key-file", keyfile, "--format", "xml", DANSKE_FORM))
    assert.equal(2, code)
  end)
end)

describe("giro pay key sources", function()
  -- TARKISTE for DANSKE_FORM with --today 2024-01-01, from openssl over the spec's layout
  local mac = function()
    return sha256(DKEY .. "&100,00&1232&000000000000&4&EUR&https://www.kauppa.fi/okpaluu&"
      .. "https://www.kauppa.fi/virhepaluu&01.01.2024&", "lower")
  end
  local function form(file)
    return giro(words("pay", "form", "danske", "--today", "2024-01-01", "--key-file", file, DANSKE_FORM))
  end

  it("strips every trailing newline of a key file (LF, CRLF, an editor's blank line)", function()
    for _, tail in ipairs({ "\n", "\r\n", "\n\n" }) do
      local f = H.tmpfile(DKEY .. tail)
      local code, out = form(f)
      os.remove(f)
      assert.equal(0, code); assert.matches("\nTARKISTE=" .. mac() .. "\n", out, 1, true)
    end
  end)

  it("a missing, unreadable or empty key is an environment error (exit 3) naming its source", function()
    local empty = H.tmpfile("")
    local code, out, err = form(empty)
    os.remove(empty)
    assert.equal(3, code); assert.equal("", out)
    assert.matches("the key file .* is empty", err)
    code, _, err = form("/nonexistent/danske.key")
    assert.equal(3, code)
    assert.equal("giro pay: cannot read the key file /nonexistent/danske.key (No such file or directory)\n", err)
    code, _, err = form("/tmp")   -- not a regular file: usage (README), like a device or a FIFO
    assert.equal(2, code); assert.equal("giro pay: cannot read the key file /tmp (Is a directory)\n", err)
    code, _, err = giro(words("pay", "form", "danske", "--key-env", "SHOP_KEY", DANSKE_FORM), { SHOP_KEY = "" })
    assert.equal(3, code); assert.equal("giro pay: environment variable SHOP_KEY is empty\n", err)
  end)

  it("a key with a trailing blank is not trimmed: its length is reported, never its content", function()
    local f = H.tmpfile(DKEY .. " ")
    local code, _, err = form(f)
    os.remove(f)
    assert.equal(1, code); assert.equal("giro pay: key: expected 64 characters for sha256, got 65\n", err)
  end)
end)

describe("giro pay verify", function()
  local q = "KNRO=000000000000&VALUUTTA=EUR&VIITE=1232&SUMMA=100,00&VERSIO=4&STATUS=0&TARKISTE="
    .. sha256(DKEY .. "&1232&100,00&0&000000000000&4&EUR&01.01.2024&", "upper") .. "&MTAPA=1&ERAPAIVA=01.01.2024"

  it("exit 0 and the parsed fields when MAC and formats hold", function()
    local code, out, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, q })
    assert.equal("", err); assert.equal(0, code)
    assert.matches("^KNRO=000000000000\nVALUUTTA=EUR\nVIITE=1232\nSUMMA=100,00\n", out)
    assert.matches("\nMTAPA=1\nERAPAIVA=01.01.2024\n$", out)
  end)

  it("reads the message from stdin with - or no argument", function()
    local code, out = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, "-" }, nil, q .. "\n")
    assert.equal(0, code); assert.matches("VIITE=1232", out, 1, true)
    code = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile }, nil, q)
    assert.equal(0, code)
  end)

  it("exit 1 and the reason: MAC mismatch, the field, --expect", function()
    local code, out, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, (q:gsub("VIITE=1232", "VIITE=12344")) })
    assert.equal(1, code); assert.equal("", out)
    assert.equal("giro pay: MAC mismatch (TARKISTE)\n", err)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, (q:gsub("STATUS=0", "STATUS=x")) })
    assert.equal(1, code); assert.equal("giro pay: STATUS: expected '0', got 'x'\n", err)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, "--expect", "SUMMA=100", "--expect", "VIITE=1232", q })
    assert.equal(0, code)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, "--expect", "SUMMA=100.01", q })
    assert.equal(1, code); assert.equal("giro pay: SUMMA: expected 100.01, got 100,00\n", err)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, q .. "&SUMMA=1,00" })
    assert.equal(1, code); assert.equal("giro pay: duplicate parameter SUMMA\n", err)
    code, _, err = giro({ "pay", "verify", "danske", "payment", "--key-file", keyfile, q })
    assert.equal(2, code)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, "--expect", "SUMA=100", q })
    assert.equal(2, code)
    assert.equal("giro pay: --expect SUMA: danske return has no such field (it has: KNRO, VALUUTTA, VIITE, SUMMA, "
      .. "VERSIO, STATUS, TARKISTE, MTAPA, ERAPAIVA)\n", err)
    code, _, err = giro({ "pay", "verify", "danske", "return", "--key-file", keyfile, "--format", "html", q })
    assert.equal(2, code); assert.equal("giro pay: --format must be lines or json here, got 'html'\n", err)
  end)

  it("verifies the Samlink return and prints the answer code of a query response", function()
    local r = "NET_RETURN_VERSION=003&NET_RETURN_STAMP=ORDER42&NET_RETURN_REF=1232&NET_RETURN_PAID=ARCH1&NET_ALG=03"
      .. "&NET_RETURN_MAC=" .. sha256("003&ORDER42&1232&ARCH1&03&" .. SKEY .. "&", "upper")
    local code, out = giro({ "pay", "verify", "saastopankki", "return", "--key-file", skeyfile, r })
    assert.equal(0, code); assert.matches("NET_RETURN_PAID=ARCH1", out, 1, true)
    local qr = "NET_VERSION=001&NET_SELLER_ID=0000000000123&NET_RESPCODE=OK&NET_REF=1232&NET_RETURN_MAC="
      .. md5("001&0000000000123&OK&1232&" .. MKEY .. "&", "upper")
    code, out = giro({ "pay", "verify", "saastopankki", "query-response", "--key-file", mkeyfile, "--format", "json", qr })
    assert.equal(0, code)
    local j = cjson.decode(out)
    assert.equal("OK", j.code); assert.equal("ok", j.status); assert.equal("payment found and approved", j.meaning)
  end)

  it("json carries the definition's notes too (a PayStatus other than Settled is not paid)", function()
    local qr = "ReturnCode=000&ReturnText=OK&Refno=1232&MerchantID=Test Shop&Amount=456,23&Currency=EUR"
      .. "&Total=400,00&PayType=KT&PayStatus=Pending"
    local code, out = giro({ "pay", "verify", "danske", "query-response", "--format", "json", qr })
    assert.equal(0, code)
    assert.same({ "not confirmed as paid: PayStatus Pending is not documented; treat as unpaid",
      "refunded: Total 400,00 is below Amount 456,23" }, cjson.decode(out).notes)
    code, out = giro({ "pay", "verify", "danske", "query-response", "--format", "json",
      "ReturnCode=001&ReturnText=No&Refno=1232" })
    assert.equal(0, code); assert.equal("[]", out:match('"notes":(%b[])'))
  end)
end)

describe("giro pay query and refund against a local HTTP server", function()
  local srv
  local danske_answer = "ReturnCode=000&ReturnText=OK&Refno=1232&MerchantID=Test Shop&Amount=456,23&Currency=EUR"
    .. "&Total=456,23&PayType=KT&PayStatus=Settled"
  local refund_mac = sha256("003&0000000000123&REFUND1&12344&PAID9&03&" .. SKEY .. "&", "upper")
  local refund_answer = "NET_VERSION=003&NET_SELLER_ID=0000000000123&NET_STAMP=REFUND1&NET_REF=12344&NET_RESPCODE=OK"
    .. "&NET_PAID=PAID9&NET_ALG=03&NET_MAC=" .. refund_mac
  local query_mac = md5("001&0000000000123&NOTFOUND&ORDER42&" .. MKEY .. "&", "upper")

  setup(function()
    srv = https_server.start({ lifetime = 120, routes = {
      ["/HB"] = { status = 200, body = danske_answer .. "\r\n", headers = { { "Content-Type", "text/plain" } } },
      ["/palautus"] = { status = 200, body = refund_answer },
      ["/palautus-bad"] = { status = 200, body = refund_answer:gsub("PAID9", "PAID8") },
      ["/kysely"] = { redirect = "https://shop.example/q?NET_VERSION=001&NET_SELLER_ID=0000000000123"
        .. "&NET_RESPCODE=NOTFOUND&NET_STAMP=ORDER42&NET_RETURN_MAC=" .. query_mac },
      ["/down"] = { status = 503, body = "maintenance" },
    } })
  end)
  teardown(function() if srv then srv:stop() end end)

  local function last_request()
    local all = srv:requests()
    return all[#all], #all
  end

  it("danske query: POSTs the eleven parameters with VerifyCode and prints the mapped answer", function()
    local code, out, err = giro({ "pay", "query", "danske", "--key-file", keyfile, "--url", srv:url("/HB"),
      "Refno=1232", "MerchantID=000000000000", "gsaftlnr=123123" })
    assert.equal("", err); assert.equal(0, code)
    assert.matches("^ReturnCode=000\nReturnText=OK\nRefno=1232\nMerchantID=Test Shop\n", out)
    assert.matches("\n# 000: OK: the reference exists %(found%)\n# paid: PayStatus Settled\n$", out)
    local req = last_request()
    assert.equal("POST", req.method); assert.equal("/HB", req.path)
    local vc = sha256(DKEY .. "&000000000000&1232&")
    assert.equal("Refno=1232&MerchantID=000000000000&gsaftlnr=123123&gsSprog=FI&gsProdukt=IBV&gsNextObj=InetPayV"
      .. "&gsNextAkt=InetPaySt&Version=0001&gsresp=S&VerifyCode=" .. vc .. "&algorithm=03", req.body)
  end)

  it("--dry-run prints the request fields and sends nothing", function()
    local _, before = last_request()
    local code, out = giro({ "pay", "query", "danske", "--key-file", keyfile, "--dry-run", "--url", srv:url("/HB"),
      "Refno=1232", "MerchantID=000000000000", "gsaftlnr=123123" })
    assert.equal(0, code)
    assert.matches("^Refno=1232\nMerchantID=000000000000\n", out)
    assert.matches("\nVerifyCode=" .. sha256(DKEY .. "&000000000000&1232&") .. "\nalgorithm=03\n$", out)
    local _, after = last_request()
    assert.equal(before, after)
  end)

  it("saastopankki refund: sends the NET_ fields, verifies the answer's MAC", function()
    local refund = { "NET_SELLER_ID=0000000000123", "NET_STAMP=REFUND1", "NET_REF=12344", "NET_AMOUNT=1,20",
      "NET_STAMP_ORG=ORDER42", "NET_REF_ORG=1232", "NET_RETURN=https://shop.example/r", "NET_MSG=Palautus ä" }
    local code, out, err = giro(words("pay", "refund", "saastopankki", "--key-file", skeyfile, "--url", srv:url("/palautus"), refund))
    assert.equal("", err); assert.equal(0, code)
    assert.matches("NET_PAID=PAID9\n", out, 1, true)
    assert.matches("\n# OK: refund done %(ok%)\n$", out)
    local req = last_request()
    local mac = sha256("003&0000000000123&REFUND1&12344&1,20&EUR&ORDER42&1232&https://shop.example/r&03&" .. SKEY .. "&", "upper")
    assert.matches("&NET_MSG=Palautus%20%E4&", req.body, 1, true)      -- ISO-8859-1 on the wire
    assert.equal(mac, req.body:match("&NET_MAC=(%x+)$"))
    code, out, err = giro(words("pay", "refund", "saastopankki", "--key-file", skeyfile, "--url", srv:url("/palautus-bad"), refund))
    assert.equal(1, code); assert.equal("", out)
    assert.equal("giro pay: the answer was rejected: MAC mismatch (NET_MAC)\n", err)
  end)

  it("saastopankki query: the answer may come as a redirect to NET_RETURN", function()
    local code, out = giro({ "pay", "query", "saastopankki", "--version", "001", "--key-file", mkeyfile,
      "--url", srv:url("/kysely"), "NET_SELLER_ID=0000000000123", "NET_STAMP=ORDER42", "NET_RETURN=https://shop.example/q" })
    assert.equal(0, code)
    assert.matches("NET_RESPCODE=NOTFOUND\n", out, 1, true)
    assert.matches("# NOTFOUND: payment not found (not-found)\n", out, 1, true)
    local req = last_request()
    assert.equal("NET_VERSION=001&NET_SELLER_ID=0000000000123&NET_STAMP=ORDER42&NET_RETURN=https%3A%2F%2Fshop.example%2Fq"
      .. "&NET_MAC=" .. md5("001&0000000000123&ORDER42&" .. MKEY .. "&", "upper"), req.body)
  end)

  it("an HTTP error or an unreachable bank is an environment error (exit 3)", function()
    local code, _, err = giro({ "pay", "query", "danske", "--key-file", keyfile, "--url", srv:url("/down"),
      "Refno=1232", "MerchantID=000000000000", "gsaftlnr=123123" })
    assert.equal(3, code); assert.equal("giro pay: the bank answered HTTP 503\n", err)
    code = giro({ "pay", "query", "danske", "--key-file", keyfile, "--url", "http://127.0.0.1:1/HB", "--timeout", "5",
      "Refno=1232", "MerchantID=000000000000", "gsaftlnr=123123" })
    assert.equal(3, code)
    code, _, err = giro({ "pay", "refund", "danske", "--key-file", keyfile, "Refno=1232" })
    assert.equal(2, code); assert.matches("danske has no message 'refund' (it has: payment, return, query, query-response)", err, 1, true)
  end)
end)
