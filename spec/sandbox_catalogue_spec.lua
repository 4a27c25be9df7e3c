-- The catalogue of hostile rules (issue 9, 4b): each must be stopped by its budget or caps,
-- and fail with the rule's file:line and the record that triggered it; nothing is answered.
-- Biller rules run through `giro efaktura process` as a biller would run them; bank
-- definitions' hooks through giro.pay.  The bounds are budgets, not clocks: every command
-- runs under `timeout 120` only so that a regression fails instead of hanging the suite.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local pay = require("giro.pay")
local rules = require("giro.rules")

local function sh(s) return H.sh_quote(s) end

-- giro with words under a generous timeout: rc, stdout, stderr
local function run(words)
  local dir = H.tmpdir()
  local cmd = { "timeout", "120", sh(H.giro) }
  for _, w in ipairs(words) do cmd[#cmd + 1] = sh(w) end
  local p = io.popen("" .. table.concat(cmd, " ") .. " >" .. dir .. "/out 2>"
    .. dir .. "/err </dev/null; echo $?")
  local rc = tonumber(p:read("l"))
  p:close()
  local out, err = H.read(dir .. "/out"), H.read(dir .. "/err")
  H.rmdir(dir)
  return rc, out, err
end

-- A biller rule whose validate runs BODY at line 3 of the file.
local function rule_text(body)
  return "local rule = { options = {} }\nfunction rule.validate(request, customer)\ndo " .. body
    .. " end\n  return { accept = true }\nend\nreturn rule\n"
end

describe("hostile biller rules are stopped (giro efaktura process)", function()
  local dir, db
  setup(function() dir, db = H.setup() end)
  teardown(function() H.rmdir(dir) end)

  local n = 0
  -- process one request (one record, account 1000017, line 19 of the file) with the rule
  local function process(body)
    n = n + 1
    local rule = H.write(dir .. "/rule" .. n .. ".lua", rule_text(body))
    local req = H.write(dir .. "/req" .. n .. ".xml",
      H.request{ records = { H.add("1000017", "cat" .. n .. "==", "Kari Anne", "Nordmann") } })
    local out = dir .. "/resp" .. n .. ".xml"
    local rc, _, err = run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", out })
    return rc, err, rule, req, out
  end

  -- the run failed, named the rule's file and a line, and the record; the message is short
  local function stopped(body, what)
    local rc, err, rule, req, out = process(body)
    assert.are_not.equal(0, rc, err)
    assert.are_not.equal(124, rc, "timed out: " .. tostring(err))
    assert.is_true(#err < 100000, "stderr of " .. #err .. " bytes")
    -- the rule's FILE:LINE, as the place or as "called from FILE:LINE)" when giro's own
    -- wrapper (a metamethod's guard) was running when the budget ran out
    assert.truthy(err:find(rule:gsub("%p", "%%%0") .. ":%d+[:)]"), err)
    assert.truthy(err:find("(record " .. req .. ":", 1, true), err)
    assert.truthy(err:find('BillerAccountNumber "1000017"', 1, true), err)
    if what then assert.truthy(err:find(what, 1, true), err) end
    assert.is_false(H.exists(out), "a response was written")
    return err
  end

  local BUDGET = "instruction budget of"
  it("an endless loop", function() stopped("while true do end", BUDGET) end)
  it("an endless loop whose every round calls a metamethod (a nested sandboxed call)", function()
    stopped("local t = setmetatable({}, { __index = function() return 1 end }) "
      .. "while true do local x = t.a for i = 1, 300 do x = x + i end end", BUDGET)
  end)
  -- what stops these first (the memory cap, the budget charged per byte, Lua's own size
  -- check) may differ; that they stop and name the rule and record is the point
  it("table growth", function() stopped("local t = {} for i = 1, 1e15 do t[i] = i end") end)
  it("table growth with big values", function()
    stopped('local t = {} for i = 1, 1e15 do t[i] = ("x"):rep(1e5) .. i end')
  end)
  it("a string.rep bomb", function()
    stopped('local s = ("x"):rep(1e10)')
    stopped('local s = ("x"):rep(1e8)', "memory cap")
  end)
  it("doubling concatenation", function() stopped('local s = "x" while true do s = s .. s end', "memory cap") end)
  it("linear concatenation", function() stopped('local s = "" while true do s = s .. "xxxxxxxx" end', BUDGET) end)
  it("deep recursion", function()
    stopped("local function f(n) return 1 + f(n + 1) end return f(1)", "stack overflow")
  end)
  it("deep recursion under pcall, again and again", function()
    stopped("local function f(n) return 1 + f(n + 1) end for i = 1, 1e9 do pcall(f, 1) end")
  end)
  it("a backtracking find", function() stopped('return ("a"):rep(2000):find(".-.-.-b")', BUDGET) end)
  it("a backtracking match, gsub and gmatch", function()
    stopped('return ("a"):rep(3000):match("(.-)(.-)(.-)b")', BUDGET)
    stopped('return (("a"):rep(3000):gsub(".-.-.-b", "x"))', BUDGET)
    stopped('for x in ("a"):rep(3000):gmatch(".-.-.-b") do end', BUDGET)
  end)
  it("a plain find in a loop over a 30 MB string", function()
    stopped('local s = ("a"):rep(30e6) for i = 1, 1e12 do s:find("b", 1, true) end', BUDGET)
  end)
  it("appending with table.insert costs what t[#t + 1] = v costs (a list of 50000 fits the budget)", function()
    local rc, err = process("local t = {} for i = 1, 50000 do table.insert(t, i) end "
      .. "while #t > 0 do table.remove(t) end")
    assert.equal(0, rc, err)
  end)
  it("C work that does not allocate: utf8.len, tonumber, table.insert over big arguments", function()
    stopped('local s = ("a"):rep(30e6) for i = 1, 1e12 do utf8.len(s) end', BUDGET)
    stopped('local s = ("1"):rep(30e6) for i = 1, 1e12 do tonumber(s) end', BUDGET)
    stopped("local t = {} for i = 1, 2e6 do t[i] = i end for i = 1, 1e12 do table.insert(t, 1, 0) end", BUDGET)
  end)
  it("comparing two 20 MB strings in a loop is stopped by the CPU-time deadline", function()
    stopped('local a, b = ("a"):rep(2e7), ("a"):rep(2e7) for i = 1, 1e12 do local _ = a == b end',
      "CPU time limit of 3.0 s exceeded")
  end)
  it("an xpcall whose handler loops (budget raised in the hook, and a plain error)", function()
    stopped("xpcall(function() while true do end end, function() while true do end end)", BUDGET)
    stopped('xpcall(function() error("x") end, function() while true do end end)', BUDGET)
  end)
  it("an output flood: print is capped, then the budget stops it", function()
    local err = stopped('for i = 1, 1e12 do print(("x"):rep(1e6)) end', BUDGET)
    assert.truthy(err:find("rules may print 65536 bytes", 1, true), err:sub(1, 300))
  end)
  it("a 30 MB error text and a 30 MB __tostring are cut", function()
    local err = stopped('error(("e"):rep(30e6))')
    assert.truthy(err:find("eeee… %(300000%d%d bytes%)"), err)
    err = stopped('error(setmetatable({}, { __tostring = function() return ("t"):rep(30e6) end }))')
    assert.truthy(err:find("tttt… (30000000 bytes)", 1, true), err)
  end)
  it("an error object that is a table names its file and line", function()
    local err = stopped("error({ code = 7 })", "error object is a table value")
    assert.truthy(err:find("rule%d+%.lua:3: error object is a table value"), err)
  end)
  it("a decision field of the wrong type", function()
    stopped('return { accept = true, customer = {} }', "decision field customer is a table")
    stopped('return { accept = true, hold = "yes" }', "decision field hold is a string")
    stopped('return { accept = true, requird = true }', "unknown key 'requird'")
  end)
  it("escape attempts fail at their line", function()
    stopped("os.exit(0)", "undefined global 'os'")
    stopped('io.open("/etc/passwd")', "undefined global 'io'")
    stopped("debug.sethook()", "undefined global 'debug'")
    stopped("coroutine.wrap(function() end)()", "undefined global 'coroutine'")
    stopped('collectgarbage("stop")', 'only "count"')
    stopped('load("\\27Lua", "x", "b")', 'only text chunks')
    stopped('assert(load("\\27LuaT\\0"))', "attempt to load a binary chunk")
    stopped('string.dump(print)', "attempt to call a nil value")
    stopped('getmetatable("").__index.find = nil', "attempt to index a nil value")
    stopped('string.find = nil', "read-only")
  end)

  it("a rule that rewrites the request changes neither the answer nor the register", function()
    local rule = H.write(dir .. "/mutate.lua", [[
      return { validate = function(request)
        local before = request.BillerAccountNumber
        request.BillerAccountNumber = "X"
        request.ThorUserId = "Y"
        request.ThorContentProviderId = "Z"
        request.mine = 1
        -- the rule sees its own changes, and pairs() walks every leaf once
        assert(request.BillerAccountNumber == "X" and before ~= "X")
        local n, seen = 0, {}
        for k, v in pairs(request) do
          assert(not seen[k]); seen[k] = true; n = n + 1
          if k == "ThorUserId" then assert(v == "Y") end
        end
        assert(n >= 15 and seen.mine and seen.FirstName, "pairs saw " .. n)
        return { accept = true }
      end }]])
    local records, accounts = {}, {}
    for i = 1, 8 do
      accounts[i] = tostring(5000 + i)
      records[i] = H.add(accounts[i], "mut" .. i .. "==", "Kari", "Nordmann")
    end
    local req = H.write(dir .. "/mutate.xml", H.request{ records = records })
    local out = dir .. "/mutate-resp.xml"
    local rc, _, err = run({ "efaktura", "process", req, "--biller", rule, "--db", db, "-o", out })
    assert.equal(0, rc, err)
    local got = {}
    for _, a in ipairs(H.answers(out)) do got[#got + 1] = a.BillerAccountNumber end
    table.sort(got)
    assert.same(accounts, got)
    assert.equal(8, H.count(db, "SELECT count(*) FROM agreements WHERE thor_user_id LIKE 'mut%'"))
    assert.equal(0, H.count(db, "SELECT count(*) FROM agreements WHERE account = 'X' OR thor_user_id = 'Y'"))
  end)
end)

describe("hostile bank definition hooks are stopped (giro.pay)", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmdir(dir) end)

  local n = 0
  local function bank_with(hook)
    n = n + 1
    local src = assert(H.read("rules/banks/danske.lua"))
    local path = dir .. "/evil" .. n .. ".lua"
    -- the payment message gets a validate hook whose body is HOOK
    src = src:gsub('(kind = "request", endpoint = "payment",)', "%1\n      validate = function(fields, version)\n" .. hook:gsub("%%", "%%%%")
      .. "\n        return true\n      end,", 1)
    H.write(path, src)
    return assert(pay.bank(path)), path
  end

  local FIELDS = { SUMMA = "12,50", VIITE = "1232", KNRO = "000000000000", ERAPAIVA = "01.01.2030",
                   OKURL = "https://shop.example/ok", VIRHEURL = "https://shop.example/err" }
  local KEY = ("k"):rep(64)

  it("a 30 MB reason and a table raised as an error come back short, with file and line", function()
    local b = bank_with('do return nil, ("r"):rep(3e7) end')
    local res, why = b:build("payment", FIELDS, { key = KEY, today = "20260101" })
    assert.is_nil(res)
    assert.truthy(why:find("rrrr… (30000000 bytes)", 1, true), why:sub(1, 200))
    assert.is_true(#why < 1000)
    local path
    b, path = bank_with("error({ code = 7 })")
    res, why = b:build("payment", FIELDS, { key = KEY, today = "20260101" })
    assert.is_nil(res)
    assert.truthy(why:find(path:gsub("%p", "%%%0") .. ":%d+: error object is a table value"), why)
  end)

  for _, c in ipairs({
    { "an endless loop", "while true do end" },
    { "a backtracking find", 'local x = ("a"):rep(2000):find(".-.-.-b")' },
    { "linear concatenation", 'local s = "" while true do s = s .. "xxxxxxxx" end' },
    { "an xpcall whose handler loops", "xpcall(function() while true do end end, function() while true do end end)" },
  }) do
    it(c[1], function()
      local b, path = bank_with(c[2])
      local ok, res, why = pcall(b.build, b, "payment", FIELDS, { key = KEY, today = "20260101" })
      assert.is_true(ok, tostring(res))
      assert.is_nil(res)
      assert.truthy(tostring(why):find(path:gsub("%p", "%%%0") .. ":%d+: instruction budget of "
        .. rules.DEFAULT_BUDGET .. " exceeded"), why)
    end)
  end
end)
