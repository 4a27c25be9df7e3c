-- giro.rules: sandboxed rule files (fixtures in spec/fixtures/rules).
local rules = require("giro.rules")
local lfs = require("lfs")

local FIX = "spec/fixtures/rules"
local MiB = 1024 * 1024

local function fixtures(opts)
  opts = opts or {}
  opts.dirs = { FIX }
  return rules.new(opts)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(lfs.mkdir(p))
  return p
end

local function rmtree(p)
  for f in lfs.dir(p) do
    if f ~= "." and f ~= ".." then
      local q = p .. "/" .. f
      if lfs.attributes(q, "mode") == "directory" then rmtree(q) else os.remove(q) end
    end
  end
  lfs.rmdir(p)
end

describe("giro.rules", function()
  describe("load", function()
    it("returns the rule table with working, wrapped functions", function()
      local r = fixtures()
      local good = assert(r:load(FIX .. "/banks/good.lua"))
      assert.equal("good", good.name)
      assert.same({ "a", "b" }, good.fields)
      assert.equal(5, good.add(2, 3))
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", good.mac("abc"))
      assert.equal("HI", good.shout("hi"))           -- uses require("lib.util")
      assert.equal(8, good.nested.deeper.twice(4))   -- nested tables are wrapped too
      assert.equal(good, good.nested.self)           -- cycles kept
      assert.is_function(rules.unwrap(good.add))
      local counter = good.counter()                 -- returned functions are wrapped as well
      assert.is_function(rules.unwrap(counter))
      assert.equal(1, counter())
      assert.equal(2, counter())
    end)

    it("reports a syntax error with file and line", function()
      local t, err = fixtures():load(FIX .. "/bad/syntax.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/syntax.lua:5: unexpected symbol near 'end'", err)
    end)

    it("reports an error raised while loading, and a missing file", function()
      local r = fixtures()
      local t, err = r:load(FIX .. "/bad/runtime_at_load.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/runtime_at_load.lua:3: cannot start", err)
      t, err = r:load(FIX .. "/bad/nope.lua")
      assert.is_nil(t)
      assert.matches("nope%.lua: No such file", err)
    end)

    it("requires the file to return a table", function()
      local t, err = fixtures():load(FIX .. "/bad/not_table.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/not_table.lua: a rule file must return a table (it returned string)", err)
    end)

    it("reports reads of undefined globals with their line, at load and in calls", function()
      local r = fixtures()
      local t, err = r:load(FIX .. "/bad/typo_at_load.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/typo_at_load.lua:2: undefined global 'undefined_thing'", err)
      local typo = assert(r:load(FIX .. "/bad/typo.lua"))
      local ok, e = pcall(typo.f)
      assert.is_false(ok)
      assert.equal(FIX .. "/bad/typo.lua:5: undefined global 'stirng'", e)
    end)

    it("refuses bytecode files", function()
      local dir = tmpdir()
      local f = assert(io.open(dir .. "/bc.lua", "wb"))
      f:write(string.dump(function() return {} end))
      f:close()
      local t, err = fixtures():load(dir .. "/bc.lua")
      rmtree(dir)
      assert.is_nil(t)
      assert.matches("attempt to load a binary chunk", err)
    end)
  end)

  describe("limits", function()
    it("stops an endless loop in a rule function at its line, and the engine carries on", function()
      local loop = assert(fixtures():load(FIX .. "/bad/loop.lua"))
      local ok, err = pcall(loop.spin)
      assert.is_false(ok)
      assert.equal(FIX .. "/bad/loop.lua:6: instruction budget of 10000000 exceeded", err)
      assert.equal("still fine", loop.fine())
    end)

    it("a pcall inside the rule cannot swallow the budget error", function()
      local loop = assert(fixtures({ budget = 200000 }):load(FIX .. "/bad/loop.lua"))
      local ok, err = pcall(loop.swallow)
      assert.is_false(ok)
      assert.equal(FIX .. "/bad/loop.lua:11: instruction budget of 200000 exceeded", err)
      assert.equal("still fine", loop.fine())
    end)

    it("stops an endless loop while loading", function()
      local t, err = fixtures({ budget = 100000 }):load(FIX .. "/bad/loop_at_load.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/loop_at_load.lua:3: instruction budget of 100000 exceeded", err)
    end)

    it("stops an allocation storm and a huge string.rep with the memory cap", function()
      local r = fixtures({ memory = 16 * MiB })
      local m = assert(r:load(FIX .. "/bad/memory.lua"))
      local ok, err = pcall(m.storm)
      assert.is_false(ok)
      assert.equal(FIX .. "/bad/memory.lua:6: memory cap of 16777216 bytes exceeded", err)
      assert.equal("still fine", m.fine())
      ok, err = pcall(m.huge)
      assert.is_false(ok)
      assert.equal(FIX .. "/bad/memory.lua:10: memory cap of 16777216 bytes exceeded", err)
      ok, err = pcall(m.caught)
      assert.is_false(ok)
      assert.matches("^" .. FIX:gsub("%p", "%%%0") .. "/bad/memory%.lua:%d+: memory cap of 16777216 bytes exceeded$", err)
      assert.equal("still fine", m.fine())
      local good = assert(r:load(FIX .. "/banks/good.lua"))
      assert.equal(3, good.add(1, 2))
    end)

    it("stops an allocation storm while loading", function()
      local t, err = fixtures({ memory = 16 * MiB }):load(FIX .. "/bad/memory_at_load.lua")
      assert.is_nil(t)
      assert.equal(FIX .. "/bad/memory_at_load.lua:3: memory cap of 16777216 bytes exceeded", err)
    end)

    it("rules.call runs an unwrapped function under the limits", function()
      local f = load("return function() while true do end end", "@rules/raw.lua", "t")()
      local ok, err = pcall(rules.call, f)
      assert.is_false(ok)
      assert.equal("rules/raw.lua:1: instruction budget of 10000000 exceeded", err)
      assert.equal(7, rules.call(function(x) return x + 1 end, 6))
    end)
  end)

  describe("environment", function()
    local esc
    setup(function() esc = assert(fixtures():load(FIX .. "/bad/escape.lua")) end)
    local F = FIX .. "/bad/escape.lua"

    local function fails(name, message, ...)
      local ok, err = pcall(esc[name], ...)
      assert.is_false(ok, name .. " should fail")
      assert.equal(message, err)
    end

    it("has no os, io, debug, package, dofile, loadfile or coroutine", function()
      fails("os", F .. ":4: undefined global 'os'")
      fails("io", F .. ":5: undefined global 'io'")
      fails("debug", F .. ":6: undefined global 'debug'")
      fails("package", F .. ":7: undefined global 'package'")
      fails("dofile", F .. ":8: undefined global 'dofile'")
      fails("loadfile", F .. ":9: undefined global 'loadfile'")
      fails("coroutine", F .. ":33: undefined global 'coroutine'")
    end)

    it("loads text chunks only", function()
      fails("load_binary", F .. ":15: load: only text chunks can be loaded in rules (mode \"t\")")
      fails("load_bytecode_text_mode", "attempt to load a binary chunk (mode is 't')")
    end)

    it("refuses modules that are not granted", function()
      local granted = "not a granted module (giro.checkdigit, giro.hash, giro.ref)"
      fails("require_os", F .. ":10: require 'os' refused: " .. granted .. " and no rule file os.lua in " .. FIX)
      fails("require_io", F .. ":11: require 'io' refused: " .. granted .. " and no rule file io.lua in " .. FIX)
      fails("require_http", F .. ":12: require 'giro.http' refused: " .. granted
        .. " and no rule file giro/http.lua in " .. FIX)
      fails("require_traversal", F .. ":13: require '..banks.good' refused: " .. granted
        .. " and no rule file (not a valid rule name)")
    end)

    it("keeps string, table, math and granted modules read-only; no string.dump", function()
      fails("string_dump", F .. ":23: attempt to call a nil value (field 'dump')")
      fails("string_write", F .. ":24: 'string' is read-only in rules (cannot set 'upper')")
      fails("string_rawset", F .. ":25: rawset on a read-only table is not allowed in rules")
      fails("string_setmetatable", F .. ":27: cannot change a protected metatable")
      fails("table_write", F .. ":28: 'table' is read-only in rules (cannot set 'insert')")
      fails("math_write", F .. ":29: 'math' is read-only in rules (cannot set 'pi')")
      fails("hash_write", F .. ":36: 'giro.hash' is read-only in rules (cannot set 'equal')")
      assert.equal("X", string.upper("x"))
      assert.is_function(table.insert)
      assert.equal(math.pi, 4 * math.atan(1))
      assert.is_true(require("giro.hash").equal("a", "a"))
    end)

    it("never hands out the string metatable or an engine metatable", function()
      assert.is_nil(esc.string_metatable())
      assert.is_nil(esc.engine_metatable(io.stdout))
      assert.is_nil(esc.engine_metatable(setmetatable({}, { __index = {} })))
      local engine_mt = { __index = {} }
      local t = setmetatable({}, engine_mt)
      local ok, err = pcall(esc.engine_setmetatable, t)
      assert.is_false(ok)
      assert.equal(F .. ":39: cannot change a protected metatable", err)
      assert.equal(engine_mt, getmetatable(t))
    end)

    it("allows only collectgarbage(\"count\") and no __gc", function()
      fails("collectgarbage", F .. ":30: collectgarbage: only \"count\" is available in rules")
      fails("gc_metamethod", F .. ":31: __gc metamethods are not allowed in rules")
    end)

    it("keeps global assignments in the rule's own environment", function()
      assert.equal("x", esc.global_write())
      assert.is_nil(rawget(_G, "leaked_global"))
    end)

    it("adds opts.env names and extra grants; a granted module may be absent", function()
      local r = fixtures({ env = { helper = function(s) return "<" .. s .. ">" end } })
      local acme = assert(r:load(FIX .. "/billers/acme.lua"))
      assert.equal("<ABC>", acme.decorate("abc"))
      local dir = tmpdir()
      write(dir .. "/g.lua", [[
        local M = {}
        function M.http() return type(require("giro.http")) end
        function M.absent() return (require("giro.not_built_yet")) end
        return M]])
      local g = assert(r:load(dir .. "/g.lua", { grant = { "giro.http", "giro.not_built_yet" } }))
      rmtree(dir)
      assert.equal("table", g.http())
      local ok, err = pcall(g.absent)
      assert.is_false(ok)
      assert.matches("g%.lua:3: granted module 'giro.not_built_yet' is not available: module 'giro.not_built_yet' not found:", err)
    end)

    it("reports circular requires of rule files", function()
      local t, err = fixtures():load(FIX .. "/bad/circular.lua")
      assert.is_nil(t)
      assert.matches("circular_b%.lua:1: circular require of rule file 'lib.circular_a'", err)
    end)
  end)

  describe("directories", function()
    it("discovers bank and biller rule files, sorted", function()
      local r = fixtures()
      assert.same({ { name = "good", path = FIX .. "/banks/good.lua" } }, r:discover("bank"))
      assert.same({ { name = "acme", path = FIX .. "/billers/acme.lua" } }, r:discover("biller"))
      assert.has_error(function() r:discover("planet") end)
    end)

    it("finds a rule by name, and takes paths as they are", function()
      local r = fixtures()
      assert.equal(FIX .. "/banks/good.lua", r:find("bank", "good"))
      assert.equal("x/y.lua", r:find("bank", "x/y.lua"))
      assert.equal("other.lua", r:find("biller", "other.lua"))
      local p, err = r:find("bank", "nordea")
      assert.is_nil(p)
      assert.equal("no bank rule 'nordea' (looked for banks/nordea.lua in: " .. FIX .. ")", err)
    end)

    it("takes the host's rules directories by default", function()
      local host = require("giro.host")
      local expect = {}
      for _, d in ipairs(host.dirs) do
        if lfs.attributes(d .. "/rules", "mode") == "directory" then expect[#expect + 1] = d .. "/rules" end
      end
      assert.same(expect, rules.dirs())
    end)

    it("finds required rule files in the nearest enclosing rules directory", function()
      local dir = tmpdir()
      lfs.mkdir(dir .. "/rules")
      lfs.mkdir(dir .. "/rules/banks")
      lfs.mkdir(dir .. "/rules/protocols")
      write(dir .. "/rules/protocols/samlink.lua", "return { version = 3 }")
      write(dir .. "/rules/banks/b.lua", "local s = require('protocols.samlink') return { v = s.version }")
      local t = rules.new({ dirs = {} }):load(dir .. "/rules/banks/b.lua")
      rmtree(dir)
      assert.equal(3, t.v)
    end)
  end)

  describe("reload", function()
    local dir, r
    before_each(function()
      dir = tmpdir()
      lfs.mkdir(dir .. "/banks")
      lfs.mkdir(dir .. "/lib")
      write(dir .. "/lib/dep.lua", "return { factor = 10 }")
      write(dir .. "/banks/x.lua", "local dep = require('lib.dep')\nreturn { f = function(a) return a * dep.factor end }")
      r = rules.new({ dirs = { dir } })
    end)
    after_each(function() rmtree(dir) end)

    it("lists loaded files with path and mtime", function()
      assert(r:load(dir .. "/banks/x.lua"))
      local l = r:loaded()
      assert.equal(1, #l)
      assert.equal(dir .. "/banks/x.lua", l[1].path)
      assert.equal(lfs.attributes(dir .. "/banks/x.lua", "modification"), l[1].mtime)
    end)

    it("reloads a changed file into the same table", function()
      local x = assert(r:load(dir .. "/banks/x.lua"))
      assert.equal(20, x.f(2))
      local got, errs = r:reload()
      assert.same({}, got)
      assert.same({}, errs)
      write(dir .. "/banks/x.lua", "return { f = function(a) return a + 1 end, g = true }")
      got, errs = r:reload()
      assert.same({ dir .. "/banks/x.lua" }, got)
      assert.same({}, errs)
      assert.equal(3, x.f(2))
      assert.is_true(x.g)
    end)

    it("keeps the old version when the change is broken, and reports it", function()
      local x = assert(r:load(dir .. "/banks/x.lua"))
      write(dir .. "/banks/x.lua", "return { f = function(a) return a +  end }")
      local got, errs = r:reload()
      assert.same({}, got)
      assert.equal(1, #errs)
      assert.equal(dir .. "/banks/x.lua:1: unexpected symbol near 'end'", errs[1])
      assert.equal(20, x.f(2))
      write(dir .. "/banks/x.lua", "while true do end")
      got, errs = r:reload()
      assert.equal(dir .. "/banks/x.lua:1: instruction budget of 10000000 exceeded", errs[1])
      assert.equal(20, x.f(2))
    end)

    it("reloads a file when a rule file it requires changed", function()
      local x = assert(r:load(dir .. "/banks/x.lua"))
      write(dir .. "/lib/dep.lua", "return { factor = 100 }")
      local got = r:reload()
      assert.same({ dir .. "/banks/x.lua" }, got)
      assert.equal(200, x.f(2))
    end)
  end)

  describe("giro rules check", function()
    it("reports ok or FILE:LINE: message, exit 1 on any error", function()
      local giro = lfs.symlinkattributes("/proc/self/exe").target
      local p = assert(io.popen(giro .. " rules check " .. FIX .. "/banks/good.lua " .. FIX
        .. "/bad/syntax.lua 2>&1"))
      local out = p:read("a")
      local _, _, code = p:close()
      assert.equal(FIX .. "/banks/good.lua: ok\n" .. FIX .. "/bad/syntax.lua:5: unexpected symbol near 'end'\n", out)
      assert.equal(1, code)
    end)
  end)
end)
