-- Escape attempts against the rule sandbox (giro.rules + giro.sandbox) found in review.
-- Each rule below tries to make the engine run rule code outside the budget; the test
-- passes when that code is stopped by the budget (or never runs).  A regression would
-- hang, so every limit here is small.
local rules = require("giro.rules")
local lfs = require("lfs")

local BUDGET = 200000
local dir

local function load_rule(name, src)
  local p = dir .. "/" .. name .. ".lua"
  local f = assert(io.open(p, "wb")); f:write(src); f:close()
  local r = rules.new{ dirs = { dir }, budget = BUDGET, memory = 8 * 1024 * 1024 }
  return assert(r:load(p)), r, p
end

local function budget_error(err)
  assert.matches("instruction budget of " .. BUDGET .. " exceeded", err)
end

describe("review: rule sandbox escapes", function()
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(lfs.mkdir(dir))
  end)
  teardown(function()
    for f in lfs.dir(dir) do if f ~= "." and f ~= ".." then os.remove(dir .. "/" .. f) end end
    lfs.rmdir(dir)
  end)

  it("functions nested in a table a rule function returns are wrapped too", function()
    local t = load_rule("nested", [[
      return { get = function() return { f = function() while true do end end, deep = { g = function() while true do end end } } end }]])
    local r = t.get()
    local ok, err = pcall(r.f)
    assert.is_false(ok); budget_error(err)
    ok, err = pcall(r.deep.g)
    assert.is_false(ok); budget_error(err)
  end)

  it("functions used as keys of returned tables are wrapped", function()
    local t = load_rule("keys", "return { get = function() return { [function() while true do end end] = 1 } end }")
    local k = next(t.get())
    local ok, err = pcall(k)
    assert.is_false(ok); budget_error(err)
  end)

  it("a metamethod assigned after setmetatable does not reach a returned table", function()
    local t = load_rule("late_index", [[
      local mt = {}
      local x = setmetatable({}, mt)
      mt.__index = function() while true do end end
      return { get = function() return x end }]])
    assert.is_nil(t.get().anything)    -- a plain copy: no metatable, no rule code
  end)

  it("methods reached through a class __index table are not handed out unwrapped", function()
    local t = load_rule("class", [[
      local C = {} C.__index = C
      function C.spin() while true do end end
      return { new = function() return setmetatable({}, C) end }]])
    local obj = t.new()
    assert.is_nil(getmetatable(obj))
    assert.is_nil(obj.spin)
  end)

  it("a metatable set on a table the engine passed in keeps the rule's limits", function()
    local t = load_rule("arg_mt", [[
      return {
        direct = function(fields) setmetatable(fields, { __index = function() while true do end end }) end,
        late = function(fields)
          local mt = {}
          setmetatable(fields, mt)
          mt.__index = function() while true do end end      -- frozen: not installed
        end,
      }]])
    local a, b = {}, {}
    t.direct(a)
    local ok, err = pcall(function() return a.missing end)
    assert.is_false(ok); budget_error(err)
    t.late(b)
    assert.is_nil(b.missing)
  end)

  it("an error object's __tostring runs under the limits, and its text is kept", function()
    local t = load_rule("err_obj", [[
      local mt = {}
      local spin = setmetatable({}, mt)
      mt.__tostring = function() while true do end end
      local nice = setmetatable({}, { __tostring = function() return "nice message" end })
      local evil = setmetatable({}, { __tostring = function() while true do end end })
      return {
        spin = function() error(spin) end,
        nice = function() error(nice) end,
        evil = function() error(evil) end,
        data = function() error({ code = 7, f = function() while true do end end }) end,
      }]])
    local ok, e = pcall(t.spin)
    assert.is_false(ok); assert.equal("string", type(e))
    ok, e = pcall(t.nice)
    assert.is_false(ok); assert.equal("nice message", e)
    ok, e = pcall(t.evil)
    -- the __tostring that loops is stopped; the message names where the rule raised it
    assert.is_false(ok); assert.matches("err_obj%.lua:9: error object is a table value$", e)
    ok, e = pcall(t.data)
    assert.is_false(ok); assert.equal(7, e.code)
    ok, e = pcall(e.f)
    assert.is_false(ok); budget_error(e)
  end)

  it("rules.call settles results and errors the same way", function()
    local _, r = load_rule("call", "return {}")
    local res = r:call(function() return { f = function() while true do end end } end)
    local ok, err = pcall(res.f)
    assert.is_false(ok); budget_error(err)
  end)

  it("getmetatable gives the rule its own metatable back; the class pattern works", function()
    local t = load_rule("identity", [[
      local C = {} C.__index = C
      function C:hi() return "hi " .. self.n end
      local o = setmetatable({ n = 1 }, C)
      return { same = getmetatable(o) == C, hi = o:hi() }]])
    assert.is_true(t.same)
    assert.equal("hi 1", t.hi)
  end)

  it("still refuses __gc, even as a placeholder to fill in later", function()
    local r = rules.new{ dirs = { dir } }
    local p = dir .. "/gc.lua"
    local f = assert(io.open(p, "wb"))
    f:write("local mt = { __gc = false }\nsetmetatable({}, mt)\nreturn {}"); f:close()
    local t, err = r:load(p)
    assert.is_nil(t)
    assert.equal(p .. ":2: __gc metamethods are not allowed in rules", err)
  end)

  it("cannot reach the string metatable or change the shared string table", function()
    local t = load_rule("strings", [[
      local ok1 = pcall(function() local s = "" s.x = 1 end)
      local ok2 = pcall(rawset, string, "upper", print)
      local ok3 = pcall(function() string.upper = print end)
      return { mt = getmetatable(""), ok = ok1 or ok2 or ok3, upper = ("a"):upper() }]])
    assert.is_nil(t.mt)
    assert.is_false(t.ok)
    assert.equal("A", t.upper)
    assert.equal("B", ("b"):upper())
  end)

  it("load with an env table cannot reach the engine's globals", function()
    local t = load_rule("load_env", [[
      local f = load("return os, io, require, debug", "x", "t", {})
      local g = load("return os, io, debug, package", "y", "t")
      return { a = select("#", f()) , n = (f()), m = (g ~= nil) and select(2, pcall(g)) or nil }]])
    assert.is_nil(t.n)
  end)

  it("deep recursion ends in an error, not a crash", function()
    local t = load_rule("deep", [[
      local function f(n) return f(n + 1) + 1 end
      local function g(s) return (s:gsub(".", g)) end
      return { f = function() return f(1) end, g = function() return g("ab") end }]])
    assert.is_false((pcall(t.f)))
    assert.is_false((pcall(t.g)))
  end)
end)
