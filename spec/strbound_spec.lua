-- giro's own string.find/match/gmatch/gsub (engine/strbound.c) against Lua 5.4's own (kept by
-- the engine for this comparison: sandbox.lua_string()), on a grid of subjects, patterns, start
-- positions and replacements, errors included; then the budget that stops a backtracking match.
local sandbox = require("giro.sandbox")
local lua = sandbox.lua_string()

local SUBJECTS = { "", "a", "hello world", "  trim me  ", "key=value; k2=v2", "(a(b)c)", "THE (quick) fox",
  "aaa", "abcabc", "x=1,y=22,z=333", "\0a\0b", "äöå ok", "a.b.c", "[x]", "%d", "a-b-c", "f(a,b)", "12ab34",
  "line1\nline2\r\n", "$^" }
local PATTERNS = { "", "a", ".", "%a+", "%s*(.-)%s*$", "^%s*(.-)%s*$", "(%w+)=(%w+)", "%b()", "%f[%w]%w+", "(a)%1",
  "()a()", "[%a_][%w_]*", "[^%s]+", "[a-c]+", "a?b", "a*", "a-", "x$", "^a", "%d+", "[%]x]", "[]]", "[^]]",
  "(%d)(%d)?", "%.", "%%", "%x", "%p+", "%u%l", "[%-a]", "a%-b", ".-c", "(.)(.)%2", "()", "%w*$", "%f[%z]",
  "%f[%Z]", "%z", "\0", "[\0a]+", "c$", "$", "^$", "(h)(e)(l)", "((a)(b))", "[a-]", "[-a]", "%$", "^%^",
  "([^\n]*)\n", "%c", "%G+", "[%w%.]+", "%S+%s*" }
local BAD = { "%", "[a", "(", ")", "%b", "%ba", "%f", "%fx", "%1", "(()", "[%", "(a)%2", ("(a)"):rep(33) }

local function pack(...) return { n = select("#", ...), ... } end
local function same(a, b)
  if a.n ~= b.n then return false end
  for i = 1, a.n do if a[i] ~= b[i] then return false end end
  return true
end
-- the error text without the function name (Lua's names the function it finds in `string`)
local function outcome(f, ...)
  local r = pack(pcall(f, ...))
  if not r[1] then r[2] = tostring(r[2]):gsub("to '[^']*'", "to 'F'") end
  return r
end
local function check(what, ...)
  local want, got = outcome(lua[what], ...), outcome(string[what], ...)
  if not same(want, got) then
    local args = {}
    for i = 1, select("#", ...) do args[i] = string.format("%q", tostring((select(i, ...)))) end
    error(string.format("%s(%s): Lua %s, giro %s", what, table.concat(args, ", "),
      tostring(want[2]) .. "," .. tostring(want[3]), tostring(got[2]) .. "," .. tostring(got[3])), 2)
  end
end
local function gmatch_all(gm, s, p, init)
  local out = {}
  local ok, e = pcall(function()
    for a, b in gm(s, p, init) do out[#out + 1] = tostring(a) .. "|" .. tostring(b) end
  end)
  if not ok then return "error: " .. tostring(e):gsub("to '[^']*'", "to 'F'") end
  return table.concat(out, ";")
end

describe("giro's pattern functions agree with Lua 5.4's", function()
  it("find, match (plain and not, every start position) and gsub on the grid", function()
    local n = 0
    for _, s in ipairs(SUBJECTS) do
      for _, p in ipairs(PATTERNS) do
        for _, init in ipairs({ 1, 2, -1, -3, 0, #s, #s + 1, #s + 2, 100 }) do
          check("find", s, p, init); check("match", s, p, init); check("find", s, p, init, true)
          n = n + 3
        end
        check("gsub", s, p, "<%0>"); check("gsub", s, p, "%1", 2); check("gsub", s, p, "%%")
        check("gsub", s, p, { a = "A", hello = false, ["1"] = 7 })
        check("gsub", s, p, function(x, y) return x and (#tostring(x) .. tostring(y)) end)
        check("gsub", s, p, function() return nil end, 1)
        n = n + 6
      end
    end
    assert.is_true(n > 10000)
  end)

  it("gmatch, with start positions", function()
    for _, s in ipairs(SUBJECTS) do
      for _, p in ipairs(PATTERNS) do
        for _, init in ipairs({ 1, 3, -2, 50 }) do
          assert.equal(gmatch_all(lua.gmatch, s, p, init), gmatch_all(string.gmatch, s, p, init), s .. " / " .. p)
        end
      end
    end
  end)

  it("malformed patterns and replacements fail with Lua's messages", function()
    for _, p in ipairs(BAD) do
      check("find", "abc", p); check("match", "aaa", p); check("gsub", "abc", p, "x")
      assert.equal(gmatch_all(lua.gmatch, "abc", p), gmatch_all(string.gmatch, "abc", p))
    end
    check("gsub", "abc", "b", "%2"); check("gsub", "abc", "b", "%x"); check("gsub", "abc", "b", true)
    check("gsub", "abc", "(b)", { b = {} }); check("gsub", "abc", "b", "x", -1)
    check("find", "abc", 1); check("find", 5, "5"); check("gsub", 123, "2", 9)
  end)

  it("are what string methods and the string table use", function()
    assert.equal(string.find, ("").find)
    assert.are_not.equal(lua.find, string.find)
  end)

  it("a backtracking match is stopped by the budget at the caller's line; without one it runs as Lua's", function()
    local f = assert(load('local s = ("a"):rep(2000)\nreturn s:find(".-.-.-b")', "@rules/bomb.lua", "t"))
    local ok, err = sandbox.pcall(1000000, 0, f)
    assert.is_false(ok)
    assert.equal("rules/bomb.lua:2: instruction budget of 1000000 exceeded", err)
    assert.same({ 1, 4, "a" }, { ("aaab"):find("(a-a)a*b") })   -- a- takes none: the capture is one a
    assert.same({ lua.find("aaab", "(a-a)a*b") }, { ("aaab"):find("(a-a)a*b") })
  end)
end)
