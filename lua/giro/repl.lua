--- giro.repl — the interactive session behind `giro repl`.
--
--   require("giro.repl").start{ files = { "rules/banks/danske.lua" }, env = { x = 1 } }  -> exit code
--
-- Reading: GNU readline with history (~/.giro_history, or $GIRO_HISTORY) when stdin is a
-- terminal; plain lines from stdin, without prompts, otherwise (batch mode: scripts and tests).
-- Evaluation follows lua.c: a chunk is first tried as `return <chunk>`, then as statements; a
-- chunk that ends early (`<eof>` syntax error) continues on the next line with the "..> " prompt.
-- `=expr` works as in Lua 5.1.  Results are pretty-printed; errors print a traceback and the
-- session goes on.  Lines starting with ":" are commands (repl.commands, extensible with
-- repl.add_command); `giro repl` options are extensible with repl.add_option.
local rules = require("giro.rules")

local M = {}

M.PROMPT = "giro> "
M.PROMPT2 = "..> "
M.HISTORY_MAX = 1000

---------------------------------------------------------------------------
-- Pretty-printing

local ESC = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }

--- A string as a Lua literal: quotes and escapes; UTF-8 text stays readable.
function M.quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or string.format("\\%03d", c:byte())
  end) .. '"'
end

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 9) < (TYPE_ORDER[tb] or 9) or
    ((TYPE_ORDER[ta] or 9) == (TYPE_ORDER[tb] or 9) and ta < tb) end
  if ta == "number" or ta == "string" then return a < b end
  if ta == "boolean" then return (not a) and b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  local tv = type(v)
  if tv == "string" then return M.quote(v) end
  if tv == "number" then
    if math.type(v) == "float" and v == math.floor(v) and v > -1e16 and v < 1e16 then
      return string.format("%.1f", v)
    end
    return tostring(v)
  end
  if tv == "nil" or tv == "boolean" then return tostring(v) end
  if tv == "function" then
    local info = debug.getinfo(rules.unwrap(v) or v, "S")
    if info.what == "C" then return "<function builtin>" end
    return "<function " .. info.short_src .. ":" .. info.linedefined .. ">"
  end
  if tv == "userdata" then
    local mt = getmetatable(v)
    local name = type(mt) == "table" and rawget(mt, "__name")
    return name and ("<userdata " .. tostring(name) .. ">") or "<userdata>"
  end
  return "<" .. tv .. ">"
end

--- A readable rendering of any value: tables with sorted keys, nesting up to opts.depth
-- (default 6), at most opts.items entries per table (default 100), cycles as <cycle>.
function M.pretty(v, opts)
  opts = opts or {}
  local max_depth, max_items = opts.depth or 6, opts.items or 100
  local on_path = {}

  local function fmt(x, depth, indent)
    if type(x) ~= "table" then return scalar(x) end
    if on_path[x] then return "<cycle>" end
    if depth >= max_depth then return "{...}" end
    on_path[x] = true
    local items = {}
    local mt = getmetatable(x)
    local iter = (type(mt) == "table" and rawget(mt, "__pairs")) and pairs or function(t) return next, t, nil end
    local keys, n = {}, 0
    for k in iter(x) do keys[#keys + 1] = k end
    while rawget(x, n + 1) ~= nil do n = n + 1 end
    local others = {}
    for _, k in ipairs(keys) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then others[#others + 1] = k end
    end
    table.sort(others, key_less)
    local inner = indent .. "  "
    local shown = 0
    for i = 1, n do
      shown = shown + 1
      if shown > max_items then break end
      items[#items + 1] = fmt(x[i], depth + 1, inner)
    end
    for _, k in ipairs(others) do
      shown = shown + 1
      if shown > max_items then break end
      local ks
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then
        ks = k
      else
        ks = "[" .. fmt(k, max_depth, inner) .. "]"
      end
      items[#items + 1] = ks .. " = " .. fmt(x[k], depth + 1, inner)
    end
    if shown > max_items then
      items[#items + 1] = string.format("... (%d more)", shown - max_items + (n + #others - shown))
    end
    on_path[x] = nil
    if #items == 0 then return "{}" end
    local one = "{ " .. table.concat(items, ", ") .. " }"
    if #one + #indent <= 78 and not one:find("\n", 1, true) then return one end
    return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
  end

  return fmt(v, 0, "")
end

---------------------------------------------------------------------------
-- Commands and options

--- Commands, by name: { help = "one line", usage = ":name ARGS", fn = function(session, args) }.
M.commands = {}

--- Add (or replace) a command `:name`; fn(session, rest_of_line) may return "quit".
function M.add_command(name, help, fn, usage)
  assert(type(name) == "string" and name:match("^[%w_%-]+$"), "giro.repl: bad command name")
  assert(type(fn) == "function", "giro.repl: command needs a function")
  M.commands[name] = { help = help or "", fn = fn, usage = usage or (":" .. name) }
end

--- Options of `giro repl`, in order: { spec = "--biller=FILE", help = "...", apply = fn }.
-- apply(value, start_opts, positional) adjusts the table given to repl.start.
M.options = {}

--- Add an option to `giro repl` (e.g. from a plugin module giro.repl.<name>).
function M.add_option(spec, help, apply)
  assert(type(spec) == "string" and spec:match("^%-"), "giro.repl: option spec like \"--name=VALUE\"")
  assert(type(apply) == "function", "giro.repl: option needs an apply function")
  M.options[#M.options + 1] = { spec = spec, help = help or "", apply = apply }
end

---------------------------------------------------------------------------
-- The session

local Session = {}
Session.__index = Session

function Session:out(...)
  local w = self.stdout
  w:write(...)
  w:write("\n")
  w:flush()
end

function Session:err(...)
  self.stdout:flush()
  local w = self.stderr
  w:write(...)
  w:write("\n")
  w:flush()
  self.errors = self.errors + 1
end

-- SIGINT/SIGTERM while Lua code runs: giro.fs's hook raises { kind = "interrupted" }.
local function is_interrupt(e) return type(e) == "table" and rawget(e, "kind") == "interrupted" end

local function traceback(msg)
  if is_interrupt(msg) then
    -- keep it a table (the session decides what to do with it), with where it stopped
    local tb = debug.traceback(tostring(msg.message), 2)
    local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
    if cut then tb = tb:sub(1, cut - 1) end
    return { kind = "interrupted", signal = msg.signal, message = msg.message, trace = tb }
  end
  if type(msg) ~= "string" then
    local mt = getmetatable(msg)
    if type(mt) == "table" and rawget(mt, "__tostring") then msg = tostring(msg)
    else msg = "(error object is " .. M.pretty(msg, { depth = 3 }) .. ")" end
  end
  local tb = debug.traceback(msg, 2)
  -- cut the frames that belong to the REPL itself
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  if cut then tb = tb:sub(1, cut - 1) end
  tb = tb:gsub("\nstack traceback:$", "")
  return tb
end

--- Print the results of an evaluation (nothing when there are none).
function Session:show(n, ...)
  if n == 0 then return end
  local parts = {}
  for i = 1, n do parts[i] = M.pretty((select(i, ...)), self.pretty_opts) end
  self:out(table.concat(parts, "\t"))
end

-- Compile a chunk: "return <chunk>" first, then as statements.
-- Returns fn | nil, "incomplete" | nil, message.
function Session:compile(chunk)
  local src = chunk:gsub("^%s*=", "return ", 1)
  local fn, rerr = load("return " .. src, "=stdin", "t", self.env)
  if fn then return fn end
  local err
  fn, err = load(src, "=stdin", "t", self.env)
  if fn then return fn end
  -- unfinished as a statement ("for i = 1, 2 do") or as an expression ("{")
  if err:find("<eof>$") or rerr:find("<eof>$") then return nil, "incomplete" end
  return nil, err
end

-- An error of a chunk or command: Ctrl-C in an interactive session stops only the chunk
-- (the session and its history stay); anywhere else an interruption ends the REPL.
function Session:failed(e)
  if is_interrupt(e) then
    if not self.interactive or e.signal ~= 2 then error(e, 0) end
    require("giro.fs").clear_caught()
    self:err(e.trace or "interrupted")
    return
  end
  self:err(e)
end

--- Run a compiled chunk and print its results or the error with a traceback.
function Session:run(fn, ...)
  local res = table.pack(xpcall(fn, traceback, ...))
  if res[1] then
    self:show(res.n - 1, table.unpack(res, 2, res.n))
    return true
  end
  self:failed(res[2])
  return false
end

--- Evaluate one complete chunk of Lua text (as typed).
function Session:eval(chunk)
  local fn, err = self:compile(chunk)
  if not fn then
    if err == "incomplete" then return "incomplete" end
    self:err(err)
    return false
  end
  return self:run(fn)
end

local function varname(path)
  local base = (path:match("([^/]+)$") or path):gsub("%.lua$", "")
  local name = base:gsub("[^%w_]", "_")
  if name:match("^%d") or KEYWORDS[name] or name == "" then name = "_" .. name end
  return name
end

local function summary(t)
  local kinds = { functions = {}, tables = {}, values = {} }
  for k, v in next, t do
    local kind = type(v) == "function" and "functions" or type(v) == "table" and "tables" or "values"
    kinds[kind][#kinds[kind] + 1] = tostring(k)
  end
  local parts = {}
  for _, kind in ipairs({ "functions", "tables", "values" }) do
    local list = kinds[kind]
    if #list > 0 then
      table.sort(list)
      parts[#parts + 1] = kind .. ": " .. table.concat(list, ", ")
    end
  end
  return #parts > 0 and table.concat(parts, "; ") or "empty"
end

-- FILE as given, or a bank/biller rule name found in the rules dirs.
function Session:locate(arg)
  if arg:find("/", 1, true) or arg:match("%.lua$") then return arg end
  for _, kind in ipairs({ "bank", "biller" }) do
    local p = self.rules:find(kind, arg)
    if p then return p end
  end
  return arg
end

--- :load FILE — a rule file (sandboxed) bound to a variable named after it; a file that does
-- not return a table is run as a script in the session instead.  The file is loaded as its
-- command would (giro.rulecheck: a biller rule with what `process` grants) and checked (a bank
-- definition compiled fully, a biller rule held to its contract): a failed check is reported
-- as a warning, the table is still bound so that it can be looked at.
function Session:load_file(arg)
  local path = self:locate(arg)
  local t, err, problem = require("giro.rulecheck").load(path, { rules = self.rules, lenient = true })
  if t then
    local name = varname(path)
    self.env[name] = t
    self:out("loaded rule file ", path, " as ", name, " (", summary(t), ")")
    if problem then   -- a warning: on stderr, but not an error of the session (exit status)
      self:err("warning: as a ", err, " rule it fails: ", problem)
      self.errors = self.errors - 1
    end
    return true
  end
  if type(err) == "string" and err:find(": a rule file must return a table", 1, true) then
    return self:run_file(path)
  end
  self:err(err)
  self:count_missing(path)
  return false
end

-- A file that is not there is the environment's failure (batch mode exits 3).
function Session:count_missing(path)
  local f = io.open(path, "rb")
  if f then f:close() else self.env_errors = self.env_errors + 1 end
end

--- :run FILE — run a Lua script in the session environment (not sandboxed).
function Session:run_file(path)
  local fn, err = loadfile(path, "t", self.env)
  if not fn then
    self:err(err)
    self:count_missing(path)
    return false
  end
  return self:run(fn)
end

function Session:command(line)
  local name, rest = line:match("^:([%w_%-]*)%s*(.-)%s*$")
  local cmd = name and M.commands[name]
  if not cmd then
    self:err("unknown command :", tostring(name), " (see :help)")
    return
  end
  local ok, res = xpcall(cmd.fn, traceback, self, rest)
  if not ok then self:failed(res) return end
  return res
end

--- The main loop; returns when input ends or :quit.
function Session:loop()
  local buffer
  while true do
    local line = self.read(buffer and M.PROMPT2 or M.PROMPT)
    if line == nil then   -- end of input
      if buffer then
        local _, err = load(buffer, "=stdin", "t", self.env)
        self:err(err or "stdin: incomplete input")
      end
      if self.interactive then self.stdout:write("\n") end
      return
    end
    if line == false then   -- Ctrl-C: drop the line (and any pending chunk)
      buffer = nil
    elseif buffer == nil and line:match("^%s*:") then
      self:remember(line)
      if self:command(line:match("^%s*(.*)$")) == "quit" then return end
    elseif buffer == nil and line:match("^%s*$") then
      -- nothing to do
    else
      buffer = buffer and (buffer .. "\n" .. line) or line
      local r = self:eval(buffer)
      if r ~= "incomplete" then
        self:remember(buffer)
        buffer = nil
      end
    end
  end
end

function Session:remember(chunk)
  if self.history_add then self.history_add(chunk) end
end

---------------------------------------------------------------------------
-- Built-in commands

M.add_command("help", "list the commands", function(s)
  local names = {}
  for name in pairs(M.commands) do names[#names + 1] = name end
  table.sort(names)
  local lines = { "Type Lua: expressions print their values (=expr works too); an unfinished chunk",
    "continues on the next line.  Commands:" }
  for _, name in ipairs(names) do
    lines[#lines + 1] = string.format("  %-22s %s", M.commands[name].usage, M.commands[name].help)
  end
  s:out(table.concat(lines, "\n"))
end)

M.add_command("load", "load a rule file, bound to a variable named after it (or run a script)",
  function(s, arg)
    if arg == "" then s:err("usage: :load FILE") return end
    s:load_file(arg)
  end, ":load FILE|NAME")

M.add_command("run", "run a Lua script in this session (not sandboxed)", function(s, arg)
  if arg == "" then s:err("usage: :run FILE") return end
  s:run_file(arg)
end, ":run FILE")

M.add_command("reload", "re-read every loaded rule file that changed on disk", function(s)
  local reloaded, errors = s.rules:reload()
  for _, p in ipairs(reloaded) do s:out("reloaded ", p) end
  for _, e in ipairs(errors) do s:err("not reloaded (old version kept): ", e) end
  if #reloaded == 0 and #errors == 0 then s:out("nothing changed") end
end)

M.add_command("rules", "list the bank and biller rule files found in the rules dirs", function(s)
  for _, kind in ipairs({ "bank", "biller" }) do
    for _, r in ipairs(s.rules:discover(kind)) do
      s:out(require("giro.text").format("%-7s %-20s %s", kind, r.name, r.path))
    end
  end
end)

local function quit() return "quit" end
M.add_command("quit", "leave the REPL (Ctrl-D works too)", quit)
M.add_command("q", "same as :quit", quit)

---------------------------------------------------------------------------
-- Start

local function history_path()
  local p = os.getenv("GIRO_HISTORY")
  if p then return p ~= "" and p or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.giro_history") or nil
end

--- Start a session.  opts: files (loaded with :load first), env (names added to the session),
-- interactive (default: stdin is a terminal), history (path, or false for none),
-- read (function(prompt) -> line | nil at end | false on Ctrl-C), stdout, stderr, rules
-- (a giro.rules instance; default the module's default instance).  Returns an exit code:
-- 0, or in batch mode 3 when a file to load could not be opened, else 1 when any input
-- raised an error.
function M.start(opts)
  opts = opts or {}
  local rl = require("giro.readline")
  local interactive = opts.interactive
  if interactive == nil then interactive = rl.isatty(0) and opts.read == nil end

  local env = setmetatable({}, { __index = _G })
  for k, v in pairs(opts.env or {}) do env[k] = v end

  local s = setmetatable({
    env = env,
    rules = opts.rules or rules.default(),
    stdout = opts.stdout or io.stdout,
    stderr = opts.stderr or io.stderr,
    interactive = interactive,
    -- failures, and of those the files that could not be opened (batch exit 1, or 3); an
    -- option's set-up (--biller REQUEST.xml) may have counted some already
    errors = (opts.input_errors or 0) + (opts.env_errors or 0),
    env_errors = opts.env_errors or 0,
  }, Session)

  local hist = opts.history
  if hist == nil and interactive then hist = history_path() end
  if opts.read then
    s.read = opts.read
  elseif interactive then
    s.read = rl.readline
    if hist then rl.read_history(hist) end
    s.history_add = rl.add_history
  else
    s.read = function() return io.stdin:read("l") end
  end

  if interactive then
    s:out("giro ", require("giro.host").version, " (", _VERSION, ") — :help for commands, Ctrl-D to leave")
  end
  for _, f in ipairs(opts.files or {}) do s:load_file(f) end
  local ok, e
  repeat
    ok, e = xpcall(s.loop, traceback, s)
    -- a Ctrl-C that landed between two chunks (printing a result, say): keep the session
    local again = not ok and interactive and is_interrupt(e) and e.signal == 2
    if again then require("giro.fs").clear_caught() s.stderr:write("interrupted\n") end
  until not again
  if interactive and hist then
    local wok, werr = rl.write_history(hist, M.HISTORY_MAX)
    if not wok then s.stderr:write("giro repl: history not saved: ", tostring(werr), "\n") end
  end
  if not ok then error(e, 0) end
  if not interactive and s.env_errors > 0 then return 3 end
  if not interactive and s.errors > 0 then return 1 end
  return 0
end

M.Session = Session
return M
