--- giro's command line: `giro COMMAND [ARGS...]`.
-- Every command is a Lua module `giro.cli.<name>` returning a table
--   { summary = "one line", usage = "giro NAME ...", help = "longer text", run = function(argv) ... end }
-- `run` returns an exit code (or nothing for 0) and reports failures with cli.fail().
-- Adding a command is adding such a file: no C involved.
local host = require("giro.host")

local cli = {}

--- Exit codes (a public contract).
cli.EXIT = { ok = 0, rejected = 1, usage = 2, env = 3 }

--- The one place where the error kinds of library functions (giro.errors) become exit codes.
cli.EXIT_FOR = { input = cli.EXIT.rejected, usage = cli.EXIT.usage, env = cli.EXIT.env }

local FAIL = {}  -- metatable marking errors raised by cli.fail

--- The error kind (giro.errors) of an exit code, for the JSON error object.
local KIND_OF = { [cli.EXIT.rejected] = "input", [cli.EXIT.usage] = "usage", [cli.EXIT.env] = "env" }

--- Stop the running command with an exit code and a message for stderr.
-- code: one of cli.EXIT's numbers; the message is printed as "giro: message".
function cli.fail(code, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
  error(setmetatable({ code = code, message = msg }, FAIL), 0)
end

--- Stop with a library error kind and details for the JSON error object:
-- info = { message = text, field = name|nil, reason = OS reason|nil, file = path|nil }.
function cli.fail_info(kind, info)
  error(setmetatable({ code = cli.EXIT_FOR[kind] or cli.EXIT.env, message = info.message, field = info.field,
                       reason = info.reason, file = info.file }, FAIL), 0)
end

--- Stop with exit 3 for a failed OS call on path: "PATH: WHAT: REASON" (oserr: io.open's
-- second value), the reason and the file also in the JSON error object.
function cli.os_fail(path, what, oserr)
  local errors = require("giro.errors")
  local reason = errors.reason(oserr)
  cli.fail_info("env", { message = string.format("%s: %s: %s", path, what, reason), reason = reason, file = path })
end

--- Under --json (or --format json) a failure also prints a JSON error object on stdout.
-- args.parse turns this on when it sees either spelling; `extra` adds keys beside "error"
-- (giro pay: valid = false).
cli.json = { on = false, extra = nil }

--- True when the words ask for JSON: --json, --format json or --format=json (before any "--").
function cli.wants_json(argv)
  for i, a in ipairs(argv) do
    if a == "--" then return false end
    if a == "--json" or a == "--format=json" or (a == "--format" and argv[i + 1] == "json") then return true end
  end
  return false
end

--- The JSON error object of a failure: {"error": {kind, message, field, reason, file, line}}
-- with every key present (null when unknown).
function cli.error_object(e)
  local json = require("giro.json")
  local function v(x) if x == nil then return json.null end return x end
  -- a message in the house style "FILE:LINE: ..." names its file and line: give them as keys too
  local file, line = e.file, e.line
  if file == nil and type(e.message) == "string" then
    local f, l = e.message:match("^([^%s:]+):(%d+): ")
    if f then file, line = f, math.tointeger(tonumber(l)) end
  end
  local obj = { error = { kind = KIND_OF[e.code] or "env", message = v(e.message), field = v(e.field),
                          reason = v(e.reason), file = v(file), line = v(line) } }
  for k, x in pairs(cli.json.extra or {}) do obj[k] = x end
  return obj
end

--- Shorthands for the common failures.
function cli.usage(fmt, ...) cli.fail(cli.EXIT.usage, fmt, ...) end
function cli.rejected(fmt, ...) cli.fail(cli.EXIT.rejected, fmt, ...) end
function cli.env(fmt, ...) cli.fail(cli.EXIT.env, fmt, ...) end

--- Stop with the exit code of a library error kind (giro.errors): `cli.fail_kind(kind, msg)`.
-- An unknown or missing kind is the environment's failure (exit 3), never "ok".
function cli.fail_kind(kind, fmt, ...)
  cli.fail(cli.EXIT_FOR[kind] or cli.EXIT.env, fmt, ...)
end

--- The value of a library call, or stop with its error: `local reg = cli.check(register.open(db))`.
-- A fourth value { file, reason, field } (errors.os gives one) fills the JSON error's keys.
function cli.check(v, message, kind, detail, ...)
  if v == nil then
    detail = type(detail) == "table" and detail or {}
    cli.fail_info(kind, { message = tostring(message), file = detail.file, reason = detail.reason, field = detail.field })
  end
  return v, message, kind, detail, ...
end

--- Table output padded by characters, not bytes (giro.text): cli.format("%-12s", "Åse").
cli.pad = require("giro.text").pad
cli.format = require("giro.text").format

--- True for an error raised by cli.fail (for code that wants to catch them).
function cli.is_failure(e) return getmetatable(e) == FAIL end

local function command_names()
  local ok, lfs = pcall(require, "lfs")
  local seen, names = {}, {}
  if not ok then return names end
  for _, dir in ipairs(host.dirs) do
    local d = dir .. "/lua/giro/cli"
    if lfs.attributes(d, "mode") == "directory" then
      for f in lfs.dir(d) do
        local name = f:match("^([%w%-_]+)%.lua$")
        if name and name ~= "init" and name ~= "args" and not seen[name] then
          seen[name] = true
          names[#names + 1] = name
        end
      end
    end
  end
  table.sort(names)
  return names
end

local function load_command(name)
  if not name:match("^[%w][%w%-_]*$") then return nil end
  local modname = "giro.cli." .. name:gsub("%-", "_")
  local ok, mod = pcall(require, modname)
  if ok then return mod end
  if type(mod) == "string" and mod:find("module '" .. modname .. "' not found", 1, true) then
    return nil
  end
  error(mod, 0)
end

local function overview()
  local lines = {
    "giro " .. host.version .. " — Nordic bank and biller integrations, scriptable in Lua",
    "",
    "usage: giro COMMAND [ARGS...]",
    "       giro help COMMAND | giro COMMAND --help",
    "       giro --version",
    "",
    "commands:",
  }
  for _, name in ipairs(command_names()) do
    local ok, mod = pcall(load_command, name)
    if ok and mod then
      lines[#lines + 1] = string.format("  %-12s %s", name, mod.summary or "")
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "exit codes: 0 success, 1 input rejected, 2 usage error, 3 environment error"
  return table.concat(lines, "\n")
end

--- The full help text of a command.
function cli.help_text(mod)
  local parts = { "usage: " .. (mod.usage or "") }
  if mod.summary then parts[#parts + 1] = "\n" .. mod.summary end
  if mod.help then parts[#parts + 1] = "\n" .. mod.help:gsub("\n+$", "") end
  return table.concat(parts, "\n")
end

local function wants_help(argv)
  for _, a in ipairs(argv) do
    if a == "--" then return false end
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

local function no_command(name)
  io.stderr:write("giro: no command '", name, "' (see: giro help)\n")
  return cli.EXIT.usage
end

--- Entry point called by the C host with the command-line words; returns the exit code.
function cli.main(argv)
  local name = argv[1]
  if name == nil then
    io.stderr:write(overview(), "\n")
    return cli.EXIT.usage
  end
  if name == "--version" or name == "version" then
    io.stdout:write("giro ", host.version, " (", _VERSION, ")\n")
    return 0
  end
  if name == "--help" or name == "-h" or name == "help" then
    local topic = argv[2]
    if topic == nil then
      io.stdout:write(overview(), "\n")
      return 0
    end
    local mod = load_command(topic)
    if not mod then return no_command(topic) end
    io.stdout:write(cli.help_text(mod), "\n")
    return 0
  end

  local mod = load_command(name)
  if not mod then return no_command(name) end
  local rest = table.move(argv, 2, #argv, 1, {})
  if wants_help(rest) and not mod.own_help then
    io.stdout:write(cli.help_text(mod), "\n")
    return 0
  end
  -- a subcommand refused before its options are parsed still answers in JSON
  cli.json.on = not mod.own_help and cli.wants_json(rest)
  cli.json.extra = nil
  local fs = require("giro.fs")
  fs.catch_signals()
  local ok, res = xpcall(mod.run, function(e)
    if cli.is_failure(e) or (type(e) == "table" and e.kind == "interrupted") then return e end
    return debug.traceback(tostring(e), 2)
  end, rest)
  io.stdout:flush()
  local sig = fs.caught()
  if sig and ok then
    -- the signal came as the command finished: nothing was stopped, its output stands
    io.stderr:write("giro ", name, ": ", sig == 2 and "SIGINT" or "SIGTERM",
      " arrived after the command had finished; its output is complete\n")
  elseif sig then
    -- SIGINT/SIGTERM: the command's own cleanup ran as the error unwound; remove any
    -- temporary file still open, then end by the same signal (exit status 128 + N)
    require("giro.output").cleanup()
    io.stderr:write("giro ", name, ": interrupted by ", sig == 2 and "SIGINT" or "SIGTERM",
      "; no output written, temporary files removed\n")
    fs.die(sig)
  end
  if ok then return math.tointeger(res) or 0 end
  if cli.is_failure(res) then
    io.stderr:write("giro ", name, ": ", res.message, "\n")
    if cli.json.on then io.stdout:write(require("giro.json").encode(cli.error_object(res)), "\n") end
    return res.code
  end
  io.stderr:write("giro ", name, ": internal error: ", tostring(res), "\n")
  if cli.json.on then
    io.stdout:write(require("giro.json").encode(cli.error_object({ code = cli.EXIT.env,
      message = "internal error: " .. tostring(res):match("^[^\n]*") })), "\n")
  end
  return cli.EXIT.env
end

return cli
