-- giro rules check / rules list and the REPL's :load (issue 9, item 4): rules are loaded as their
-- command loads them and checked fully; typos are refused with file, line and a suggestion.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

local function giro(words, stdin)
  local dir = H.tmpdir()
  local cmd = { H.sh_quote(H.giro) }
  for _, w in ipairs(words) do cmd[#cmd + 1] = H.sh_quote(w) end
  if stdin then H.write(dir .. "/in", stdin) end
  local p = io.popen("GIRO_HISTORY= " .. table.concat(cmd, " ") .. " >" .. dir
    .. "/out 2>" .. dir .. "/err <" .. (stdin and (dir .. "/in") or "/dev/null") .. "; echo $?")
  local rc = tonumber(p:read("l"))
  p:close()
  local out, err = H.read(dir .. "/out"), H.read(dir .. "/err")
  H.rmdir(dir)
  return rc, out, err
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

describe("giro rules check", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  it("passes the shipped rules and the example biller, each as its command loads it", function()
    local files = { "rules/billers/default.lua", "examples/efaktura/biller.lua", "rules/protocols/samlink.lua" }
    for f in require("lfs").dir("rules/banks") do
      if f:match("%.lua$") then files[#files + 1] = "rules/banks/" .. f end
    end
    local rc, out, err = giro({ "rules", "check", table.unpack(files) })
    assert.equal(0, rc, err)
    assert.truthy(out:find("rules/billers/default.lua: ok (biller)", 1, true), out)
    assert.truthy(out:find("examples/efaktura/biller.lua: ok (biller)", 1, true), out)
    assert.truthy(out:find("rules/banks/danske.lua: ok (bank)", 1, true), out)
    assert.truthy(out:find("rules/protocols/samlink.lua: ok (module)", 1, true), out)
  end)

  -- a copy of danske.lua with line `line` changed by gsub(from, to)
  local function danske_with(name, line, from, to)
    local lines, n = {}, 0
    for l in io.lines("rules/banks/danske.lua") do
      n = n + 1
      if n == line then
        local changed, k = l:gsub(from, to, 1)
        assert(k == 1, "fixture: line " .. line .. " has no " .. from)
        l = changed
      end
      lines[#lines + 1] = l
    end
    return H.write(dir .. "/" .. name .. ".lua", table.concat(lines, "\n") .. "\n")
  end

  it("fails bank definitions that giro pay refuses, at their line", function()
    -- line numbers are those of rules/banks/danske.lua (the fixture asserts what is there)
    local cases = {
      { danske_with("format", 22, '"amount"', '"amuont"'), 22, "unknown format 'amuont'" },
      { danske_with("macin", 37, '"VIITE",', '"VIITE", "NOPE",'), 37, "MAC input 'NOPE' is not one of the message's fields" },
      { danske_with("alg", 35, 'alg = "sha256"', 'alg = "sha255"'), 35, "unknown MAC algorithm 'sha255'" },
      { danske_with("typo", 23, "required = true", "requird = true"), 23,
        "unknown key 'requird' in danske payment field VIITE (did you mean 'required'?" },
    }
    for _, c in ipairs(cases) do
      local rc, out, err = giro({ "rules", "check", c[1] })
      assert.equal(1, rc, out)
      assert.truthy(err:find("^" .. esc(c[1]) .. ":" .. c[2] .. ": "), err)
      assert.truthy(err:find(c[3], 1, true), err)
      -- and giro.pay refuses the same definition with the same message
      local b, perr = require("giro.pay").bank(c[1])
      assert.is_nil(b)
      assert.truthy(perr:find(c[3], 1, true), perr)
    end
  end)

  it("holds biller rules to the contract: validate required, typos refused with a suggestion", function()
    local cases = {
      { 'return { id = "NOR999999999-1" }\n', "lacks a validate(request, customer) function" },
      { 'return {\n  validate = function() return "accept" end,\n  optoins = {},\n}\n',
        ":3: unknown key 'optoins' in the biller rule table (did you mean 'options'?" },
      { 'return {\n  validate = function() return "accept" end,\n  options = {\n    hlod = { "01" },\n  },\n}\n',
        ":4: unknown key 'hlod' in options (did you mean 'hold'?" },
      { 'return {\n  validate = function() return "accept" end,\n  options = { hold = { "1" } },\n}\n',
        'options.hold[1] is "1"' },
      { 'return {\n  validate = function() return "accept" end,\n  options = { name_match = "fuzzy" },\n}\n',
        'options.name_match "fuzzy"' },
    }
    for i, c in ipairs(cases) do
      local f = H.write(dir .. "/biller" .. i .. ".lua", c[1])
      local rc, _, err = giro({ "rules", "check", f })
      assert.equal(1, rc, err)
      assert.truthy(err:find(c[2], 1, true), err)
      assert.truthy(err:find(f, 1, true), err)
    end
  end)

  it("--json prints arrays, failures included; rules list --json too", function()
    local bad = H.write(dir .. "/nv.lua", "return {}\n")
    local rc, out = giro({ "rules", "check", "--json", "rules/billers/default.lua", bad })
    assert.equal(1, rc)
    local list = cjson.decode(out)
    assert.equal(2, #list)
    assert.same({ path = "rules/billers/default.lua", kind = "biller", ok = true, error = cjson.null }, list[1])
    assert.equal(false, list[2].ok)
    assert.truthy(list[2].error:find("lacks a validate", 1, true))
    rc, out = giro({ "rules", "list", "--json" })
    assert.equal(0, rc)
    list = cjson.decode(out)
    assert.is_true(#list >= 7)
    assert.equal("[", out:sub(1, 1))
    for _, r in ipairs(list) do assert.truthy(r.kind and r.name and r.path) end
  end)

  it("the REPL's :load grants a biller rule what process grants, and warns about a broken contract", function()
    local f = H.write(dir .. "/repl_biller.lua",
      'local names = require("giro.efaktura.names")\nreturn { validate = function() return "accept" end, colour = 1 }\n')
    local rc, out, err = giro({ "repl" }, ":load " .. f .. "\n")
    assert.equal(0, rc, err)
    assert.truthy((out .. err):find("loaded rule file " .. f, 1, true), out .. err)
    assert.truthy((out .. err):find("warning: as a biller rule it fails: " .. f .. ":2: unknown key 'colour'", 1, true), out .. err)
  end)
end)

describe("biller rule tables in giro efaktura process", function()
  local dir, db
  setup(function() dir, db = H.setup() end)
  teardown(function() H.rmdir(dir) end)

  it("hold = { \"01\" } (the list form) holds an unknown reference instead of answering it", function()
    local rule = H.write(dir .. "/hold.lua", [[
      return { options = { hold = { "01" } },
               validate = function(request, customer)
                 if not customer then return { reason = "01" } end
                 return { accept = true }
               end }]])
    local req = H.write(dir .. "/r.xml", H.request{ records = { H.add("7777777", "hl==", "Kari", "Nordmann"),
      H.add("1000017", "hm==", "Kari Anne", "Nordmann") } })
    local rc, _, err = H.run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", dir .. "/o.xml" })
    assert.equal(0, rc, err)
    assert.truthy(err:find("1 held for manual decision", 1, true), err)
    assert.equal(1, #H.answers(dir .. "/o.xml"))
    assert.equal("held", H.status_of(db, "hl=="))
  end)
end)
