-- Review findings in the C core and the CLI: each test is a regression test for a bug found.
local lfs = require("lfs")
local fsutil = require("fsutil")
local tmpdir, write = fsutil.tmpdir, fsutil.write
local checkdigit = require("giro.checkdigit")

local GIRO = lfs.symlinkattributes("/proc/self/exe").target

-- run giro with a shell prefix (cd, env); returns stdout, stderr, exit code
local function giro(prefix, args)
  local err = os.tmpname()
  local p = assert(io.popen(string.format("%s %s %s 2>%s", prefix or "", GIRO, args, err)))
  local out = p:read("a")
  local _, _, code = p:close()
  local f = assert(io.open(err, "rb")); local e = f:read("a"); f:close()
  os.remove(err)
  if code == 23 then  -- engine/sanitizer/options.c: a sanitizer report ended the child
    error("giro died of a sanitizer report (exit 23); stderr:\n" .. e:sub(1, 4000), 2)
  end
  return out, e, code
end



describe("review: giro.checkdigit ranges", function()
  it("takes math.mininteger as a position like string.sub does (no signed overflow)", function()
    -- 1232 is a valid Finnish reference (7-3-1 from the right: 3*7 + 2*3 + 1*1 = 28 -> 2)
    assert.equal(2, checkdigit.fi_check("123", math.mininteger))
    assert.equal(0, checkdigit.fi_check("123", 1, math.mininteger))   -- empty range
    assert.equal(("123"):sub(math.mininteger), "123")
    assert.equal(0, checkdigit.luhn("123", math.mininteger, math.mininteger))
  end)
end)

describe("review: module search path", function()
  it("has no ./ entries, so the working directory cannot supply modules", function()
    -- in a fresh process: busted adds its own ./src entries to this one's path
    local script = os.tmpname()
    write(script, 'io.write(package.path, ";", package.cpath)')
    local out, _, code = giro(nil, "run " .. script)
    os.remove(script)
    assert.equal(0, code)
    assert.truthy(out:find("/lua/?.lua;", 1, true))
    for entry in out:gmatch("[^;]+") do
      assert.is_nil(entry:match("^%./"), entry)
    end
  end)

  it("a mistyped command does not run giro/cli/<name>.lua from the working directory", function()
    local d = tmpdir()
    assert(lfs.mkdir(d .. "/giro")); assert(lfs.mkdir(d .. "/giro/cli"))
    write(d .. "/giro/cli/evilcmd.lua", 'io.stdout:write("PWNED") return { run = function() return 0 end }')
    local out, err, code = giro("cd " .. d .. " &&", "evilcmd")
    os.remove(d .. "/giro/cli/evilcmd.lua"); lfs.rmdir(d .. "/giro/cli"); lfs.rmdir(d .. "/giro"); lfs.rmdir(d)
    assert.equal("", out)
    assert.equal("giro: no command 'evilcmd' (see: giro help)\n", err)
    assert.equal(2, code)
  end)
end)

describe("review: giro's exit codes", function()
  it("a non-string error reaching main is reported, exit 3", function()
    local d = tmpdir()
    assert(lfs.mkdir(d .. "/lua")); assert(lfs.mkdir(d .. "/lua/giro")); assert(lfs.mkdir(d .. "/lua/giro/cli"))
    write(d .. "/lua/giro/cli/boom.lua", "error({})")
    local out, err, code = giro("GIRO_PATH=" .. d, "boom")
    os.remove(d .. "/lua/giro/cli/boom.lua")
    for _, s in ipairs({ "/lua/giro/cli", "/lua/giro", "/lua", "" }) do lfs.rmdir(d .. s) end
    assert.equal("", out)
    assert.equal("giro: internal error: (error object is not a string)\n", err)
    assert.equal(3, code)
  end)

  it("giro rules check on a missing file is an environment error (3), as giro run", function()
    local _, err, code = giro(nil, "rules check /nonexistent/rule.lua")
    assert.equal("/nonexistent/rule.lua: No such file or directory\n", err)
    assert.equal(3, code)
    local _, err2, code2 = giro(nil, "run /nonexistent/script.lua")
    assert.equal("giro run: cannot open /nonexistent/script.lua: No such file or directory\n", err2)
    assert.equal(3, code2)
  end)

  it("usage errors are 2 and name what is missing", function()
    local cases = {
      { "", "usage: giro COMMAND" },
      { "nope", "no command 'nope'" },
      { "run", "usage: giro run FILE.lua" },
      { "ref", "usage: giro ref" },
      { "ref check", "check needs a KIND" },
      { "ref check fi", "check fi needs a NUMBER" },
      { "rules", "usage: giro rules" },
      { "rules check", "no files given" },
      { "repl --nope", "unknown option --nope" },
    }
    for _, c in ipairs(cases) do
      local _, err, code = giro(nil, c[1] .. " </dev/null")
      assert.equal(2, code, c[1])
      assert.truthy(err:find(c[2], 1, true), c[1] .. ": " .. err)
    end
  end)

  it("every command has --help with its usage, exit 0", function()
    for _, name in ipairs({ "run", "ref", "rules", "repl" }) do
      local out, _, code = giro(nil, name .. " --help")
      assert.equal(0, code, name)
      assert.truthy(out:find("usage: giro " .. name, 1, true), name)
    end
  end)
end)
