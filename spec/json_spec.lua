-- --json on every command that prints data, one spelling (--format json is the same), lists
-- as arrays, flags present as false.  (The eFaktura lists: efaktura_lookup_spec; failures:
-- exitcodes_spec.)
local P = require("pay_helpers")
local cjson = require("cjson")

local function run_json(words, stdin)
  local code, out, err = P.run(words, nil, stdin)
  assert(code == 0, table.concat(words, " ") .. ": " .. err)
  return cjson.decode(out), out
end

describe("--json", function()
  it("efaktura validate on a missing file: the result's keys beside the error object", function()
    local code, out = P.run({ "efaktura", "validate", "/nonexistent/r.xml", "--json" })
    assert.equal(3, code)
    assert.equal('"errors":[]', out:match('"errors":%[%]'), out)
    local r = cjson.decode(out)
    assert.equal(false, r.ok)
    assert.equal("/nonexistent/r.xml", r.file)
    assert.equal("env", r.error.kind)
    assert.equal("No such file or directory", r.error.reason)
  end)

  it("giro pay banks: an array of banks, each with an array of messages and versions", function()
    local list, text = run_json({ "pay", "banks", "--json" })
    assert.equal("[", text:sub(1, 1))
    local danske
    for _, b in ipairs(list) do if b.name == "danske" then danske = b end end
    assert.truthy(danske, text)
    assert.equal(cjson.null, danske.error)
    local byname = {}
    for _, m in ipairs(danske.messages) do byname[m.name] = m end
    -- rules/banks/danske.lua: payment v4 with TARKISTE sha256; query-response has no MAC
    assert.same({ "4" }, byname.payment.versions)
    assert.equal("TARKISTE", byname.payment.mac.field)
    assert.same({ { version = "4", algorithm = "sha256" } }, byname.payment.mac.algorithms)
    assert.equal(cjson.null, byname["query-response"].mac)
    -- a message without versions still has an array ([]), not an object
    assert.truthy(text:find('"name":"query-response","versions":[]', 1, true), text)
    -- the alias
    local _, same = run_json({ "pay", "banks", "--format", "json" })
    assert.equal(text, same)
  end)

  it("giro rules list: an array of { kind, name, path }", function()
    local list = run_json({ "rules", "list", "--json" })
    local seen = {}
    for _, r in ipairs(list) do seen[r.kind .. ":" .. r.name] = r.path end
    assert.matches("rules/banks/danske%.lua$", seen["bank:danske"])
    assert.matches("rules/billers/default%.lua$", seen["biller:default"])
    local _, a = run_json({ "rules", "list", "--json" })
    local _, b = run_json({ "rules", "list", "--format", "json" })
    assert.equal(a, b)
  end)

  it("giro ref: one object per number, valid true or false, every key present", function()
    -- Finnish reference 123: weights 7,3,1 from the right: 3*7 + 2*3 + 1*1 = 28, check 30 - 28 = 2
    local r = run_json({ "ref", "create", "fi", "123", "--json" })
    assert.same({ action = "create", input = "123", kind = "fi", valid = true, result = "1232",
      reason = cjson.null, error = cjson.null }, r)
    -- KID MOD10 (Luhn) of 1234567: 5+6+1+4+6+2+2 = 26, check 4
    r = run_json({ "ref", "check", "kid10", "12345674", "--format", "json" })
    assert.is_true(r.valid)
    assert.equal(cjson.null, r.result)
    -- stdin: one JSON line per input line, in order; exit 1 because one was invalid
    local code, out = P.run({ "ref", "check", "kid10", "-", "--json" }, nil, "12345674\n12345675\n")
    assert.equal(1, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
    assert.equal(2, #lines)
    assert.is_true(lines[1].valid)
    assert.is_false(lines[2].valid)
    assert.equal("string", type(lines[2].reason))
    assert.equal("input", lines[2].error.kind)
    local kinds, text = run_json({ "ref", "kinds", "--json" })
    assert.equal("[", text:sub(1, 1))
    local names = {}
    for _, k in ipairs(kinds) do names[k.name] = k.summary end
    assert.equal("string", type(names.kid10))
    assert.equal("string", type(names.iban))
  end)

  it("giro pay verify: --json and --format json print the same result", function()
    local ret = assert(io.open("examples/pay/return.txt")):read("l")
    local words = { "pay", "verify", "danske", "return", "--key-file", "examples/pay/merchant.key", ret }
    local a_words = table.move(words, 1, #words, 1, {}); a_words[#a_words + 1] = "--json"
    local b_words = table.move(words, 1, #words, 1, {}); b_words[#b_words + 1] = "--format=json"
    local a, at = run_json(a_words)
    local _, bt = run_json(b_words)
    assert.equal(at, bt)
    assert.is_true(a.valid)
    assert.equal("table", type(a.notes))
    assert.truthy(at:find('"notes":[]', 1, true), at)
  end)

  it("refuses --format values other than json on commands that only print JSON", function()
    local code, _, err = P.run({ "rules", "list", "--format", "yaml" })
    assert.equal(2, code)
    assert.matches("--format must be json", err, 1, true)
  end)
end)
