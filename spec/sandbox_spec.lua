-- giro.sandbox: instruction budget and memory cap around one call, in the engine's own state.
local sandbox = require("giro.sandbox")

-- a function defined in a chunk named like a rule file, so messages can name it
local function rule_fn(src, name)
  return assert(load("return function(...)\n" .. src .. "\nend", "@" .. (name or "rules/x.lua"), "t"))()
end

local MiB = 1024 * 1024

describe("giro.sandbox", function()
  it("returns the function's results, and pcall adds true", function()
    assert.same({ 3, "x" }, { sandbox.call(1000000, 0, function(a, b) return a + b, "x" end, 1, 2) })
    assert.same({ true, 3 }, { sandbox.pcall(1000000, 0, function(a, b) return a + b end, 1, 2) })
    assert.same({ true }, { sandbox.pcall(0, 0, function() end) })
  end)

  it("stops an endless loop at its file and line", function()
    local f = rule_fn("local x = 0\nwhile true do x = x + 1 end", "rules/banks/spin.lua")
    local ok, err = sandbox.pcall(100000, 0, f)
    assert.is_false(ok)
    assert.equal("rules/banks/spin.lua:3: instruction budget of 100000 exceeded", err)
  end)

  it("cannot be swallowed by pcall inside the function", function()
    local f = rule_fn([[
      local n = 0
      for _ = 1, 100 do
        local ok = pcall(function() while true do end end)
        n = n + 1
      end
      return "escaped after " .. n]], "rules/swallow.lua")
    local ok, err = sandbox.pcall(100000, 0, f)
    assert.is_false(ok)
    assert.matches("^rules/swallow%.lua:%d+: instruction budget of 100000 exceeded$", err)
  end)

  it("raises with sandbox.call and the state keeps working", function()
    local f = rule_fn("while true do end", "rules/a.lua")
    local hook_before = table.pack(debug.gethook())   -- giro's SIGINT/SIGTERM hook, if any
    local ok, err = pcall(sandbox.call, 50000, 0, f)
    assert.is_false(ok)
    assert.equal("rules/a.lua:2: instruction budget of 50000 exceeded", err)
    assert.equal(42, sandbox.call(50000, 0, function() return 42 end))
    assert.same(hook_before, table.pack(debug.gethook()))
  end)

  it("stops an allocation storm with the memory cap and frees it", function()
    local f = rule_fn('local t = {}\nfor i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end', "rules/storm.lua")
    local before = sandbox.memory()
    local ok, err = sandbox.pcall(0, 8 * MiB, f)
    assert.is_false(ok)
    assert.matches("^rules/storm%.lua:%d+: memory cap of 8388608 bytes exceeded$", err)
    local used, limit = sandbox.memory()
    assert.equal(0, limit)
    assert.is_true(used < before + 8 * MiB)
  end)

  it("refuses a single huge allocation, naming the function's file", function()
    local f = rule_fn('return ("x"):rep(1e9)', "rules/huge.lua")
    local ok, err = sandbox.pcall(0, 8 * MiB, f)
    assert.is_false(ok)
    assert.equal("rules/huge.lua:1: memory cap of 8388608 bytes exceeded", err)
    -- caught inside the function: still reported
    local g = rule_fn('local ok = pcall(string.rep, "x", 1e9)\nreturn ok', "rules/huge2.lua")
    ok, err = sandbox.pcall(0, 8 * MiB, g)
    assert.is_false(ok)
    assert.matches("^rules/huge2%.lua:%d+: memory cap of 8388608 bytes exceeded$", err)
    assert.equal(("y"):rep(100), sandbox.call(0, 8 * MiB, function() return ("y"):rep(100) end))
  end)

  it("passes other errors through unchanged", function()
    local e = { code = 7 }
    local ok, err = sandbox.pcall(1000, 0, function() error(e) end)
    assert.is_false(ok)
    assert.equal(e, err)
    ok, err = sandbox.pcall(1000, 0, rule_fn('error("bad input")', "rules/e.lua"))
    assert.equal("rules/e.lua:2: bad input", err)
  end)

  it("nests: an inner call never gets more than the outer call has left", function()
    local spin = rule_fn("while true do end", "rules/inner.lua")
    local outer = rule_fn([[
      local spin, sandbox = ...
      -- the inner call asks for far more than the outer budget
      local ok, err = sandbox.pcall(1e9, 0, spin)
      return ok, err]], "rules/outer.lua")
    local ok, err = sandbox.pcall(100000, 0, outer, spin, sandbox)
    assert.is_false(ok)
    -- the outer function stops at its next instruction after the inner call
    assert.equal("rules/outer.lua:5: instruction budget of 100000 exceeded", err)
  end)

  it("restores an existing hook and the allocator limit after the call", function()
    local calls = 0
    local function hook() calls = calls + 1 end
    debug.sethook(hook, "", 1000000)
    sandbox.pcall(1000, 0, function() while true do end end)
    local h, mask, count = debug.gethook()
    debug.sethook()
    assert.equal(hook, h)
    assert.equal("", mask)
    assert.equal(1000000, count)
    local _, limit = sandbox.memory()
    assert.equal(0, limit)
  end)

  it("checks its arguments", function()
    assert.has_error(function() sandbox.call(-1, 0, print) end)
    assert.has_error(function() sandbox.call(10, -5, print) end)
    assert.has_error(function() sandbox.call(10, 0, "not a function") end)
  end)
end)
