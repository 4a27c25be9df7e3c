-- giro repl in batch mode (stdin not a terminal), driven through io.popen with piped input.
local lfs = require("lfs")
local fsutil = require("fsutil")
local tmpdir, write, rmtree = fsutil.tmpdir, fsutil.write, fsutil.rmtree
local repl = require("giro.repl")

-- the binary running these specs (./giro or build/asan/giro), so the REPL runs under ASan too
local GIRO = lfs.symlinkattributes("/proc/self/exe").target




-- run `giro repl ARGS` with the given input lines; returns stdout+stderr and the exit status
local function run_repl(input, args)
  local dir = tmpdir()
  write(dir .. "/in", table.concat(input, "\n") .. "\n")
  local p = assert(io.popen(string.format("GIRO_HISTORY= %s repl %s < %s/in 2>&1", GIRO, args or "", dir)))
  local out = p:read("a")
  local _, _, code = p:close()
  rmtree(dir)
  return out, code
end

describe("giro repl (batch mode)", function()
  it("prints expression values, =expr, and runs statements", function()
    local out, code = run_repl({ "1 + 41", "=2 * 3", "x = 5", "x * 2", "'a\\tb\\n' .. \"q\\\"\"", "nil, true, 1.5" })
    assert.equal('42\n6\n10\n"a\\tb\\nq\\""\nnil\ttrue\t1.5\n', out)
    assert.equal(0, code)
  end)

  it("continues an incomplete chunk on the next lines", function()
    local out = run_repl({ "function sq(x)", "  return x * x", "end", "sq(12)", "{", "  1,", "  2 }" })
    assert.equal("144\n{ 1, 2 }\n", out)
  end)

  it("prints the error with a traceback and goes on; exit status 1", function()
    local out, code = run_repl({ "error('boom')", "1 + 1", "x = = 1", "'still here'" })
    assert.matches("^stdin:1: boom\nstack traceback:\n.-\n2\nstdin:1: unexpected symbol near '='\n\"still here\"\n$", out)
    assert.equal(1, code)
  end)

  it("pretty-prints nested tables with sorted keys and cycles", function()
    local out = run_repl({
      "t = { b = 2, a = { 1, 2, { deep = true } }, [10] = 'ten', ['two words'] = 0 }",
      "t.self = t",
      "t",
      "{ f = print, s = 'x' }",
    })
    assert.equal('{\n  [10] = "ten",\n  a = { 1, 2, { deep = true } },\n  b = 2,\n  self = <cycle>,\n'
      .. '  ["two words"] = 0\n}\n{ f = <function builtin>, s = "x" }\n', out)
  end)

  it("reports an unfinished chunk at end of input", function()
    local out, code = run_repl({ "for i = 1, 2 do" })
    assert.equal("stdin:1: 'end' expected near <eof>\n", out)
    assert.equal(1, code)
  end)

  -- :load checks a file in rules/billers as `process` would; the fixture is no biller rule
  local ACME_WARNING = "warning: as a biller rule it fails: spec/fixtures/rules/billers/acme.lua:5: unknown key"
    .. " 'check' in the biller rule table (allowed: id, options, customer_number, lookup, validate)\n"

  it(":load binds a rule file to a variable named after it; FILES load at start", function()
    local out = run_repl({ "good.add(2, 3)", ":load spec/fixtures/rules/billers/acme.lua", "acme.check('x')" },
      "spec/fixtures/rules/banks/good.lua")
    assert.equal("loaded rule file spec/fixtures/rules/banks/good.lua as good (functions: add, counter, mac, shout;"
      .. " tables: fields, nested; values: name)\n"
      .. "warning: as a bank rule it fails: spec/fixtures/rules/banks/good.lua: unknown key 'add' in the bank"
      .. " definition (allowed: name, title, charset, endpoints, messages, protocol)\n5\n"
      .. "loaded rule file spec/fixtures/rules/billers/acme.lua as acme (functions: check, decorate, print_something)\n"
      .. ACME_WARNING .. '"X"\n', out)
  end)

  it(":load reports rule errors; rule print goes to stderr with the rule's name", function()
    local out = run_repl({ ":load spec/fixtures/rules/bad/syntax.lua", ":load spec/fixtures/rules/billers/acme.lua",
      "acme.print_something()" })
    assert.equal("spec/fixtures/rules/bad/syntax.lua:5: unexpected symbol near 'end'\n"
      .. "loaded rule file spec/fixtures/rules/billers/acme.lua as acme (functions: check, decorate, print_something)\n"
      .. ACME_WARNING .. "acme: hello\t1\tnil\ntrue\n", out)
  end)

  it(":load runs a file that returns no table as a script; :run runs one", function()
    local dir = tmpdir()
    write(dir .. "/script.lua", "answer = 42\n")
    write(dir .. "/other.lua", "return answer + 1\n")
    local out = run_repl({ ":load " .. dir .. "/script.lua", "answer", ":run " .. dir .. "/other.lua" })
    rmtree(dir)
    assert.equal("42\n43\n", out)
  end)

  it(":reload re-reads changed rule files; a broken change keeps the old version", function()
    local dir = tmpdir()
    local file = dir .. "/r.lua"
    write(file, "return { v = function() return 1 end }\n")
    local out = run_repl({
      ":load " .. file, "r.v()", ":reload",
      string.format("f = io.open(%q, 'w') f:write('return { v = function() return 2 end }') f:close()", file),
      ":reload", "r.v()",
      string.format("f = io.open(%q, 'w') f:write('return { v = ') f:close()", file),
      ":reload", "r.v()",
    })
    rmtree(dir)
    assert.equal("loaded rule file " .. file .. " as r (functions: v)\n1\nnothing changed\n"
      .. "reloaded " .. file .. "\n2\n"
      .. "not reloaded (old version kept): " .. file .. ":1: unexpected symbol near <eof>\n2\n", out)
  end)

  it("stops a runaway rule and keeps the session", function()
    local out = run_repl({ ":load spec/fixtures/rules/bad/loop.lua", "loop.spin()", "loop.fine()" })
    assert.matches("\nspec/fixtures/rules/bad/loop%.lua:6: instruction budget of 10000000 exceeded\n"
      .. "stack traceback:\n.-\n\"still fine\"\n$", out)
  end)

  it("has :help, unknown commands fail, :quit ends the session", function()
    local out, code = run_repl({ ":help", ":nope", ":quit", "'not reached'" })
    assert.matches(":load FILE|NAME", out, 1, true)
    assert.matches(":reload", out, 1, true)
    assert.matches("unknown command :nope (see :help)", out, 1, true)
    assert.not_matches("not reached", out, 1, true)
    assert.equal(1, code)
  end)

  it("rejects unknown options with a usage error", function()
    local out, code = run_repl({}, "--frobnicate")
    assert.equal("giro repl: unknown option --frobnicate\n", out)
    assert.equal(2, code)
  end)
end)

describe("giro.repl (Lua API)", function()
  it("start runs a session from a read function, with extra env and commands", function()
    local lines = { "greeting .. ' world'", ":twice 21", ":quit" }
    local i = 0
    local buf = {}
    local sink = { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
                   flush = function() end }
    repl.add_command("twice", "print twice the number", function(s, arg) s:out(tostring(2 * tonumber(arg))) end)
    local code = repl.start({
      read = function() i = i + 1 return lines[i] end,
      env = { greeting = "hello" },
      stdout = sink, stderr = sink,
    })
    repl.commands.twice = nil
    assert.equal(0, code)
    assert.equal('"hello world"\n42\n', table.concat(buf))
  end)

  it("pretty prints with a depth limit and quotes control characters", function()
    assert.equal("{ { {...} } }", repl.pretty({ { { {} } } }, { depth = 2 }))
    assert.equal('"\\000\\027x\\127"', repl.pretty("\0\27x\127"))
    assert.equal('"Æøå"', repl.pretty("Æøå"))
    assert.equal("{ [1.5] = 2, [true] = 1 }", repl.pretty({ [true] = 1, [1.5] = 2 }))
  end)
end)
