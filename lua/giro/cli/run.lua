--- giro run FILE.lua [ARGS...]: run a script like `lua` does, with every engine module.
local cli = require("giro.cli")

local M = {
  summary = "run a Lua script with the giro modules",
  usage = "giro run FILE.lua [ARGS...]",
  help = [[
The script gets the global `arg` table as with `lua`: arg[0] is the script,
arg[1..n] the words after it.  Every giro module is available with require
("giro.hash", "giro.xml", "giro.http", "giro.ref", "giro.pay", ...), and so are
the Lua modules installed by Debian packages (cjson, lfs).
The script's exit status is 0 unless it raises an error (status 1) or calls os.exit.]],
  own_help = true,  -- options after FILE belong to the script
}

function M.run(argv)
  local file = argv[1]
  if file == nil or (file == "--help" or file == "-h") then
    if file then io.stdout:write(cli.help_text(M), "\n") return 0 end
    cli.usage("usage: %s", M.usage)
  end
  local chunk, err = loadfile(file ~= "-" and file or nil)
  if not chunk then
    if err:find("cannot open", 1, true) then cli.env("%s", err) end
    cli.rejected("%s", err)
  end
  local script_arg = { [0] = file }
  for i = 2, #argv do script_arg[i - 1] = argv[i] end
  _G.arg = script_arg
  local ok, e = xpcall(chunk, function(m) return debug.traceback(tostring(m), 2) end,
                       table.unpack(script_arg, 1, #script_arg))
  if not ok then
    io.stderr:write("giro run: ", tostring(e), "\n")
    return 1
  end
  return 0
end

return M
