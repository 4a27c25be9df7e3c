--- giro repl [OPTIONS] [FILES...]: an interactive Lua session with the giro modules and rule files.
local args = require("giro.cli.args")
local repl = require("giro.repl")

local M = {
  summary = "interactive Lua session for trying rule files and modules",
  usage = "giro repl [OPTIONS] [FILES...]",
  help = [[
Type Lua: an expression prints its value (tables pretty-printed), a statement runs, an
unfinished chunk continues on the next line ("..> ").  Every giro module is available
with require.  FILES are :load-ed first: a rule file is loaded sandboxed (giro.rules)
and bound to a variable named after the file ("rules/banks/danske.lua" -> danske); a
file that does not return a table runs as a script in the session.

Commands: :help, :load FILE|NAME, :run FILE, :reload (re-read changed rule files),
:rules (list bank and biller rule files), :quit (or Ctrl-D).  Ctrl-C cancels the
line being typed (while Lua code runs it stops giro, as usual).  History is kept in
~/.giro_history ($GIRO_HISTORY overrides; empty disables).

When stdin is not a terminal, lines are read from it without prompts (batch mode);
errors go to stderr and the exit status is 1 if any input failed (3 if a file to load
could not be opened).

Extensions: a module giro.repl.<name> (lua/giro/repl/<name>.lua in any giro dir) is
loaded before the options are parsed and may call repl.add_command(name, help, fn)
and repl.add_option("--name=VALUE", help, apply).]],
}

-- Load the REPL plugins: every lua/giro/repl/*.lua in the giro dirs.
local function load_plugins()
  local ok, lfs = pcall(require, "lfs")
  if not ok then return end
  local seen = {}
  for _, dir in ipairs(require("giro.host").dirs) do
    local d = dir .. "/lua/giro/repl"
    if lfs.attributes(d, "mode") == "directory" then
      local names = {}
      for f in lfs.dir(d) do
        local name = f:match("^([%w_]+)%.lua$")
        if name and not seen[name] then seen[name] = true names[#names + 1] = name end
      end
      table.sort(names)
      for _, name in ipairs(names) do
        local pok, err = pcall(require, "giro.repl." .. name)
        if not pok then io.stderr:write("giro repl: plugin giro.repl.", name, " not loaded: ", tostring(err), "\n") end
      end
    end
  end
end

function M.run(argv)
  load_plugins()
  local specs = {}
  for _, o in ipairs(repl.options) do
    specs[#specs + 1] = o.spec
  end
  local opt, files = args.parse(argv, specs)
  local start = { files = files, env = {} }
  for _, o in ipairs(repl.options) do
    local key = o.spec:match("^[^=]+"):match("%-%-([%w%-_]+)") or o.spec:match("^%-(%w)")
    if opt[key] ~= nil then o.apply(opt[key], start, files) end
  end
  return repl.start(start)
end

return M
