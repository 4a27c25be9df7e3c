-- One exit-code contract for every command (README "Exit codes"): 0 ok, 1 input rejected,
-- 2 usage, 3 environment (missing file, database, network).  Every command of `giro help` is
-- driven through each kind of failure it can meet; the message must name the file or field
-- and, for an OS failure, the operating system's reason (strerror's text, written out here).
-- Under --json the same failure also prints {"error": {kind, message, field, reason, file}}
-- on stdout (giro pay adds "valid": false).
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")
local PH = require("pay_helpers")   -- its run() also feeds stdin

local ENOENT = "No such file or directory"
local KIND = { [1] = "input", [2] = "usage", [3] = "env" }

local dir, db, heldid
local MISSING = "/nonexistent-giro-spec/dir"
local NODB = MISSING .. "/register.db"   -- a database that cannot be opened

local DKEY = "jumCLB4T2ceZWGJ9ztjuhn5FaeZnTm5HpfDXWU2APRqfDcsrBs8mqkFARzm7uXKd"

local function P(name) return dir .. "/" .. name end

setup(function()
  dir, db = H.setup()
  H.write(P("hold.lua"), [[
    return { options = { hold = { ["01"] = true } },
             validate = function(request, customer)
               if not customer then return { reason = "01", why = "unknown reference" } end
               return { accept = true }
             end }]])
  H.write(P("req.xml"), H.request{ records = { H.add("424242", "held==", "Nils", "Nilsen") } })
  local rc, _, err = H.run({ "efaktura", "process", P("req.xml"), "--biller", P("hold.lua"), "--db", db, "-o", P("resp.xml") })
  assert(rc == 0, err)
  local _, out = H.run({ "efaktura", "pending", "--db", db, "--json" })
  heldid = tostring(cjson.decode(out)[1].id)
  H.write(P("bad.csv"), "account_number,first_name,last_name,efaktura\n1,Ola,Nordmann,maybe\n")
  H.write(P("bad.xml"), "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<Message>\n  <Request>\n")
  H.write(P("syntax.lua"), "return {\n")
  H.write(P("boom.lua"), "error('boom')\n")
  H.write(P("danske.key"), DKEY)
end)

teardown(function() H.rmdir(dir) end)

-- Every case: words (P() paths resolved when run), the exit code, texts stderr must hold,
-- and for the JSON error object the field (or false: no field to name) and the reason.
local function cases()
  local c = {}
  local function case(t) c[#c + 1] = t end
  -- top level
  case{ "unknown command", { "nosuchcommand" }, 2, { "nosuchcommand" }, json = false }
  -- customers
  case{ "customers import: no file", { "customers", "import", "--db", db }, 2, { "usage" } }
  case{ "customers import: missing CSV", { "customers", "import", P("none.csv"), "--db", db }, 3,
    { P("none.csv"), ENOENT }, file = P("none.csv"), reason = ENOENT }
  case{ "customers import: bad row", { "customers", "import", P("bad.csv"), "--db", db }, 1,
    { P("bad.csv") .. ":2:", "efaktura" }, file = P("bad.csv"), line = 2, field = "efaktura" }
  case{ "customers import: database", { "customers", "import", P("bad.csv"), "--db", NODB }, 3, { NODB } }
  case{ "customers list: extra word", { "customers", "list", "x", "--db", db }, 2, { "usage" } }
  case{ "customers list: database", { "customers", "list", "--db", NODB }, 3, { NODB } }
  -- efaktura process
  case{ "process: no --biller", { "efaktura", "process", P("req.xml"), "--db", db }, 2, { "--biller" } }
  case{ "process: missing request", { "efaktura", "process", P("none.xml"), "--biller", "default", "--db", db }, 3,
    { P("none.xml"), ENOENT }, file = P("none.xml"), reason = ENOENT }
  case{ "process: malformed request", { "efaktura", "process", P("bad.xml"), "--biller", "default", "--db", db }, 1,
    { P("bad.xml") .. ":" } }
  case{ "process: missing rule file", { "efaktura", "process", P("req.xml"), "--biller", P("none.lua"), "--db", db }, 3,
    { P("none.lua"), ENOENT } }
  case{ "process: rule file with an error", { "efaktura", "process", P("req.xml"), "--biller", P("syntax.lua"), "--db", db },
    3, { P("syntax.lua") .. ":" } }
  case{ "process: database", { "efaktura", "process", P("req.xml"), "--biller", "default", "--db", NODB }, 3, { NODB } }
  -- efaktura validate
  case{ "validate: no file", { "efaktura", "validate" }, 2, { "usage" } }
  case{ "validate: missing file", { "efaktura", "validate", P("none.xml") }, 3, { P("none.xml"), ENOENT },
    file = P("none.xml"), reason = ENOENT }
  -- validate's report is its output (stdout); under --json stderr has the count and the first error
  case{ "validate: invalid file", { "efaktura", "validate", P("bad.xml") }, 1, { P("bad.xml") .. ":" },
    json = "validate", stream = "stdout" }
  -- efaktura pending / decide / answer / agreements / history
  case{ "pending: extra word", { "efaktura", "pending", "x", "--db", db }, 2, { "usage" } }
  case{ "pending: database", { "efaktura", "pending", "--db", NODB }, 3, { NODB } }
  case{ "decide: reason outside 01-03", { "efaktura", "decide", "--db", db, heldid, "reject", "04" }, 2,
    { "reason", "04" }, field = "reason" }
  case{ "decide: unknown ID", { "efaktura", "decide", "--db", db, "999999", "reject", "01" }, 2, { "999999" } }
  case{ "decide: unknown customer", { "efaktura", "decide", "--db", db, heldid, "accept", "--customer", "nobody" }, 2,
    { "--customer", "nobody" } }
  case{ "decide: database", { "efaktura", "decide", "--db", NODB, "1", "reject", "01" }, 3, { NODB } }
  case{ "answer: extra word", { "efaktura", "answer", "x", "--db", db }, 2, { "usage" } }
  case{ "answer: database", { "efaktura", "answer", "--db", NODB }, 3, { NODB } }
  case{ "agreements: unknown status", { "efaktura", "agreements", "--db", db, "--status", "nosuch" }, 2, { "--status" } }
  case{ "agreements: extra word", { "efaktura", "agreements", "x", "--db", db, "--csv" }, 2, { "usage" } }
  case{ "agreements: database", { "efaktura", "agreements", "--db", NODB }, 3, { NODB } }
  case{ "history: no ID", { "efaktura", "history", "--db", db }, 2, { "usage" } }
  case{ "history: unknown ID", { "efaktura", "history", "--db", db, "999999" }, 2, { "999999" } }
  case{ "history: database", { "efaktura", "history", "--db", NODB, "1" }, 3, { NODB } }
  case{ "efaktura: unknown subcommand", { "efaktura", "nosuch" }, 2, { "nosuch" } }
  -- pay
  local FORM = { "SUMMA=100", "VIITE=1232", "KNRO=000000000000", "ERAPAIVA=01.01.2024",
    "OKURL=https://shop.example/ok", "VIRHEURL=https://shop.example/err" }
  local function form(extra, ...)
    local w = { "pay", "form", "danske", "--today", "2024-01-01", ... }
    for _, x in ipairs(FORM) do w[#w + 1] = x end
    for _, x in ipairs(extra) do w[#w + 1] = x end
    return w
  end
  case{ "pay banks: bad --format", { "pay", "banks", "--format", "html" }, 2, { "--format" }, json = false }
  case{ "pay form: unknown bank", { "pay", "form", "nosuchbank", "--key-file", P("danske.key") }, 2, { "nosuchbank" },
    pay = true }
  case{ "pay form: bad field", form({ "VALUUTTA=SEK" }, "--key-file", P("danske.key")), 1, { "VALUUTTA" },
    field = "VALUUTTA", pay = true }
  case{ "pay form: missing key file", form({}, "--key-file", P("none.key")), 3, { P("none.key"), ENOENT }, pay = true,
    file = P("none.key"), reason = ENOENT, field = "--key-file" }
  case{ "pay verify: MAC mismatch", { "pay", "verify", "danske", "return", "--key-file", P("danske.key"),
    "KNRO=000000000000&VALUUTTA=EUR&VIITE=1232&SUMMA=100,00&VERSIO=4&STATUS=0&TARKISTE=" .. ("0"):rep(64)
      .. "&MTAPA=1&ERAPAIVA=01.01.2024" }, 1, { "MAC" }, field = "TARKISTE", pay = true, bank = "danske" }
  case{ "pay verify: missing field", { "pay", "verify", "danske", "return", "--key-file", P("danske.key"), "KNRO=1" },
    1, { "VALUUTTA" }, field = "VALUUTTA", pay = true }
  case{ "pay verify: no message", { "pay", "verify", "danske" }, 2, { "which message" }, pay = true }
  case{ "pay query: network", { "pay", "query", "danske", "--key-file", P("danske.key"), "--url", "https://127.0.0.1:1/",
    "Refno=1232", "MerchantID=000000000000", "gsaftlnr=123456" }, 3, { "127.0.0.1" }, pay = true }
  case{ "pay refund: unknown bank", { "pay", "refund", "nosuchbank" }, 2, { "nosuchbank" }, pay = true }
  -- ref
  case{ "ref: unknown kind", { "ref", "check", "nosuchkind", "1" }, 2, { "nosuchkind" } }
  case{ "ref create: invalid base", { "ref", "create", "fi", "12x" }, 1, { "12x" }, json = "ref" }
  -- check's report ("NUMBER: invalid: reason") is its output, on stdout
  case{ "ref check: invalid number", { "ref", "check", "kid10", "12345675" }, 1, { "12345675: invalid" },
    json = "ref", stream = "stdout" }
  -- rules
  case{ "rules: no subcommand", { "rules" }, 2, { "usage" } }
  case{ "rules check: missing file", { "rules", "check", P("none.lua") }, 3, { P("none.lua"), ENOENT }, json = false }
  case{ "rules check: syntax error", { "rules", "check", P("syntax.lua") }, 1, { P("syntax.lua") .. ":" }, json = false }
  -- run
  case{ "run: no script", { "run" }, 2, { "usage" }, json = false }
  case{ "run: missing script", { "run", P("none.lua") }, 3, { P("none.lua"), ENOENT }, json = false }
  case{ "run: syntax error", { "run", P("syntax.lua") }, 1, { P("syntax.lua") .. ":" }, json = false }
  case{ "run: script raises", { "run", P("boom.lua") }, 1, { P("boom.lua") .. ":1:", "boom" }, json = false }
  -- repl (batch mode: stdin is /dev/null)
  case{ "repl: unknown option", { "repl", "--nosuch" }, 2, { "--nosuch" }, json = false }
  case{ "repl: missing file", { "repl", P("none.lua") }, 3, { P("none.lua"), ENOENT }, json = false }
  case{ "repl: file that raises", { "repl", P("boom.lua") }, 1, { "boom" }, json = false }
  case{ "repl: :run of a missing script", { "repl" }, 3, { P("none.lua"), ENOENT }, json = false,
    stdin = ":run " .. P("none.lua") .. "\n" }
  case{ "repl --biller: missing rule", { "repl", "--biller", P("none.lua") }, 3, { P("none.lua"), ENOENT }, json = false }
  case{ "repl --biller: missing request", { "repl", "--biller", "default", P("none.xml") }, 3, { P("none.xml"), ENOENT },
    json = false }
  case{ "repl --biller: malformed request", { "repl", "--biller", "default", P("bad.xml") }, 1, { P("bad.xml") .. ":" },
    json = false }
  return c
end

describe("the exit-code contract", function()
  it("covers every command giro help lists", function()
    local _, out = H.run({ "help" })
    local listed = {}
    for name in out:gmatch("\n  ([%w%-_]+)%s") do listed[#listed + 1] = name end
    table.sort(listed)
    assert.same({ "customers", "efaktura", "pay", "ref", "repl", "rules", "run" }, listed)
    local driven = {}
    for _, t in ipairs(cases()) do driven[t[2][1]] = true end
    for _, name in ipairs(listed) do assert.truthy(driven[name], "no failure case for " .. name) end
  end)

  it("gives each failure its code, and a message naming the file or field and the OS reason", function()
    for _, t in ipairs(cases()) do
      local rc, out, err
      if t.stdin then rc, out, err = PH.run(t[2], nil, t.stdin) else rc, out, err = H.run(t[2]) end
      assert.equal(t[3], rc, t[1] .. ": exit code; stderr: " .. err)
      local text = t.stream == "stdout" and out or err
      for _, want in ipairs(t[4]) do
        assert.truthy(text:find(want, 1, true), t[1] .. ": the message lacks " .. want .. ": " .. text)
      end
      if t.json == nil then assert.equal("", out, t[1] .. ": nothing on stdout") end
    end
  end)

  it("prints a JSON error object on stdout under --json and --format json", function()
    for _, t in ipairs(cases()) do
      if t.json ~= false then
        for _, spelling in ipairs({ { "--json" }, { "--format", "json" } }) do
          local words = table.move(t[2], 1, #t[2], 1, {})
          for _, w in ipairs(spelling) do words[#words + 1] = w end
          local rc, out, err = H.run(words)
          local label = t[1] .. " " .. table.concat(spelling, " ")
          assert.equal(t[3], rc, label .. ": " .. err)
          assert.truthy(err ~= "", label .. ": the text stays on stderr")
          local lines = {}
          for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
          assert.equal(1, #lines, label .. ": one JSON line on stdout: " .. out)
          local obj = cjson.decode(lines[1])
          if t.json == "ref" then
            -- ref prints its result object; an invalid number is valid = false with the reason
            assert.is_false(obj.valid, label)
            assert.equal("string", type(obj.reason), label)
          end
          do
            local e = obj.error
            assert.equal("table", type(e), label .. ": " .. out)
            assert.equal(KIND[t[3]], e.kind, label)
            assert.equal("string", type(e.message), label)
            for _, k in ipairs({ "field", "reason", "file", "line" }) do
              assert.truthy(e[k] ~= nil, label .. ": key " .. k .. " present (null when unknown)")
            end
            if t.field then assert.equal(t.field, e.field, label) end
            if t.reason then assert.equal(t.reason, e.reason, label) end
            if t.file then assert.equal(t.file, e.file, label) end
            if t.line then assert.equal(t.line, e.line, label) end
            if t.pay then
              assert.is_false(obj.valid, label .. ": pay says valid = false")
              assert.truthy(obj.bank ~= nil and obj.message ~= nil, label .. ": bank and message present")
            end
            if t.bank then assert.equal(t.bank, obj.bank, label) end
            if t.json == "validate" then assert.is_false(obj.ok, label) end
          end
        end
      end
    end
  end)
end)
