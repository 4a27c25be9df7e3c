-- The README's payment tour, run as it is written (the commands are read from README.md, so
-- the README and this spec cannot drift apart), with examples/pay/.  Every MAC expected here
-- comes from `openssl dgst`, never from giro.
local P = require("pay_helpers")

local KEYFILE = "examples/pay/merchant.key"
local RETURNFILE = "examples/pay/return.txt"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The shell commands of the README's payment tour: the ```sh block after "A Finnish payment
-- button", continuation lines joined.
local function tour_commands()
  local readme = slurp("README.md")
  local at = assert(readme:find("A Finnish payment button", 1, true), "README: the payment tour is gone")
  local block = assert(readme:match("```sh\n(.-)```", at), "README: no sh block in the payment tour")
  block = block:gsub("\\\n%s*", "")
  local cmds = {}
  for line in block:gmatch("[^\n]+") do cmds[#cmds + 1] = line end
  return cmds
end

-- Run one tour line with sh, ./giro being the binary under test; returns code, stdout, stderr.
local function sh(line)
  assert(line:match("^%./giro "), "a tour line that does not run ./giro: " .. line)
  local cmd = P.quote(P.giro()) .. line:sub(7)
  local out, err = os.tmpname(), os.tmpname()
  -- the newline ends a trailing "# comment" of the line
  local _, _, code = os.execute("( " .. cmd .. "\n) > " .. out .. " 2> " .. err .. " < /dev/null")
  local o, e = slurp(out), slurp(err)
  os.remove(out); os.remove(err)
  return code, o, e
end

describe("the README's payment tour", function()
  local key = slurp(KEYFILE):gsub("\n$", "")

  it("ships the bank's test key and a return signed the way the bank signs it", function()
    assert.equal(64, #key)
    local ret = slurp(RETURNFILE):gsub("\n$", "")
    local f = {}
    for name, value in ret:gmatch("([^&=]+)=([^&]*)") do f[name] = value end
    -- Danske §4.2: upper-case SHA-256 over KEY&VIITE&SUMMA&STATUS&KNRO&VERSIO&VALUUTTA&ERAPAIVA&
    local want = P.sha256(table.concat({ key, f.VIITE, f.SUMMA, f.STATUS, f.KNRO, f.VERSIO, f.VALUUTTA, f.ERAPAIVA }, "&")
      .. "&", "upper")
    assert.equal(want, f.TARKISTE)
  end)

  it("runs every command as written", function()
    local cmds = tour_commands()
    assert.equal(3, #cmds, table.concat(cmds, "\n"))

    local code, out, err = sh(cmds[1])                      -- pay banks
    assert.equal(0, code, err)
    assert.matches("danske%s+Danske Bank", out)

    code, out, err = sh(cmds[2])                            -- pay form ... --format html
    assert.equal(0, code, err)
    local v = {}
    for name, value in out:gmatch('<input type="hidden" name="([^"]+)" value="([^"]*)">') do v[name] = value end
    assert.equal("100,00", v.SUMMA)
    assert.matches("^%d%d%.%d%d%.%d%d%d%d$", v.ERAPAIVA)   -- the shell's $(date), whenever the spec runs
    -- Danske §4.1: lower-case SHA-256 over KEY&SUMMA&VIITE&KNRO&VERSIO&VALUUTTA&OKURL&VIRHEURL&ERAPAIVA&
    assert.equal(P.sha256(table.concat({ key, "100,00", "1232", "000000000000", "4", "EUR", "https://shop.example/ok",
      "https://shop.example/err", v.ERAPAIVA }, "&") .. "&"), v.TARKISTE)

    code, out, err = sh(cmds[3])                            -- pay verify danske return ...
    assert.equal(0, code, err)
    assert.matches("\nSUMMA=100,00\n", out)
    assert.matches("\nSTATUS=0\n", out)
    assert.is_nil(out:find(key, 1, true), "the key is never printed")
    assert.is_nil(err:find(key, 1, true), "the key is never printed")
  end)

  it("refuses a tampered return with exit 1", function()
    local ret = slurp(RETURNFILE):gsub("\n$", ""):gsub("SUMMA=100,00", "SUMMA=1000,00")
    local code, _, err = P.run({ "pay", "verify", "danske", "return", "--key-file", KEYFILE, ret })
    assert.equal(1, code)
    assert.matches("MAC mismatch", err)
  end)
end)
