--- giro.output: the one way giro writes an output file (and reads an input path safely).
--
--   local output = require("giro.output")
--   -- before any work: refuse what cannot be written, naming the path and why
--   local out, err, kind = output.target(opt.output, { inputs = { request_path } })
--   local tmp, err, kind = out:open()       -- temp file (or anonymous file for stdout)
--   ... a writer writes tmp:fd() (xml.writer{ fd = tmp:fd(), path = tmp:path(), name = out.name }) ...
--   local ok, err, kind = out:commit()     -- rename into place + fsync the directory, or copy to stdout
--   out:abort()                            -- throw the temp away (also on __close and __gc)
--
-- The rules (issue 9, item 2):
--  * nil or "-" is stdout: the bytes are staged in an anonymous memory file (memfd), so no
--    temporary file exists anywhere, and copied to stdout on commit.
--  * a missing path or a regular file is written through a temporary file in the same
--    directory (".NAME.giro-PID-N.tmp", O_EXCL), fsynced, renamed over the path, and the
--    directory fsynced; a file replaced keeps its permission bits.
--  * a symlink is followed (to the end of its chain) and its target written the same way:
--    the link stays a link.
--  * anything else (a directory, a device, a FIFO, a socket) and the input file itself are
--    refused before any work is done (kind "usage"); a directory that does not exist or
--    cannot be written is the environment's (kind "env").
--  * stale temporary files: a temp name carries its writer's PID; opening a target removes
--    the giro temporaries in its directory whose process is gone (a killed run's).
--  * SIGINT/SIGTERM: every open temp is registered here; output.cleanup() (run by the CLI
--    when a signal stopped the command) removes them all.
local fs = require("giro.fs")
local errors = require("giro.errors")

local output = {}

local REFUSED = {
  dir = "is a directory", char = "is a character device", block = "is a block device",
  fifo = "is a FIFO (named pipe)", socket = "is a socket", other = "is not a regular file",
}

-- giro temporaries: this module's, and those of earlier versions (".NAME.giro-DIGEST.tmp-PID-N")
local function temp_pid(name)
  local pid = name:match("^%..+%.giro%-(%d+)%-%d+%.tmp$") or name:match("^%..+%.giro%-%x+%.tmp%-(%d+)%-%d+$")
  return pid and math.tointeger(tonumber(pid))
end
output.temp_pid = temp_pid

--- Remove the giro temporaries in dir whose writing process no longer exists; returns their names.
function output.remove_stale(dir)
  local names = fs.list(dir)
  local removed = {}
  if not names then return removed end
  local me = fs.pid()
  for _, name in ipairs(names) do
    local pid = temp_pid(name)
    if pid and pid ~= me and pid > 0 and not fs.alive(pid) then
      local st = fs.lstat(dir .. "/" .. name)
      if st and st.type == "file" and fs.unlink(dir .. "/" .. name) then removed[#removed + 1] = name end
    end
  end
  return removed
end

local live = setmetatable({}, { __mode = "k" })   -- open temps (weak: a dropped one is __gc'd)

--- Remove every temporary file still open (after a signal stopped the command).
function output.cleanup()
  for t in pairs(live) do t:discard() live[t] = nil end
end

local T = {}
T.__index = T

local function split(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then return ".", path end
  return dir == "" and "/" or dir, base
end

--- Is this path the same file as another (dev and inode, links followed)?
local function same_file(a, b)
  local sa, sb = fs.stat(a), fs.stat(b)
  return sa and sb and sa.dev == sb.dev and sa.ino == sb.ino
end

--- Check an output path before any work; returns a target or nil, message, kind.
-- opts.inputs: paths the command reads (the output may not be one of them).
-- opts.what: what the file is, for messages ("response file").
function output.target(path, opts)
  opts = opts or {}
  local self = setmetatable({ given = path, what = opts.what or "output file" }, T)
  if path == nil or path == "-" then
    self.stdout, self.name = true, "stdout"
    return self
  end
  if path == "" then return errors.usage("the %s path is empty", self.what) end
  self.name = path
  local final, rerr = fs.resolve(path)
  if not final then return errors.env("%s: cannot follow the link: %s", path, rerr) end
  local shown = final == path and path or string.format("%s (the link's target %s)", path, final)
  local st, serr = fs.lstat(final)
  if st then
    if st.type ~= "file" then
      return errors.usage("%s %s: giro writes only regular files (or - for stdout)", shown, REFUSED[st.type] or REFUSED.other)
    end
    for _, input in ipairs(opts.inputs or {}) do
      -- an input is a path, or { path = PATH, what = "the register" } for a clearer message
      local ipath = type(input) == "table" and input.path or input
      local iwhat = type(input) == "table" and input.what or "the input file"
      if ipath ~= "-" and same_file(final, ipath) then
        return errors.usage("%s is %s %s: giro does not overwrite what it reads", shown, iwhat, ipath)
      end
    end
  elseif not serr:find("No such file", 1, true) then
    return errors.env("%s: %s", shown, serr)
  end
  local dir, base = split(final)
  local dst = fs.stat(dir)
  if not dst then return errors.env("%s: the directory %s does not exist", shown, dir) end
  if dst.type ~= "dir" then return errors.env("%s: %s is not a directory", shown, dir) end
  local wok, werr = fs.writable(dir)
  if not wok then return errors.env("%s: cannot create files in %s: %s", shown, dir, werr) end
  self.final, self.dir, self.base = final, dir, base
  self.mode = st and st.mode   -- a file replaced keeps its permissions
  return self
end

--- Create the temporary file (stale ones in the directory removed first).
function T:open()
  assert(not self.temp, "giro.output: target already open")
  local t, err
  if self.stdout then
    t, err = fs.memtemp()
    if not t then return errors.env("cannot stage the output for stdout: %s", err) end
  else
    output.remove_stale(self.dir)
    t, err = fs.temp(self.dir, self.base)
    if not t then return errors.env("%s: cannot create a temporary file in %s: %s", self.name, self.dir, err) end
    if self.mode then
      local ok, cerr = t:chmod(self.mode)
      if not ok then t:discard() return errors.env("%s: cannot give the new file its permissions: %s", self.name, cerr) end
    end
  end
  self.temp = t
  live[t] = true
  return t
end

--- Put the finished temp in place (rename + fsync dir) or copy it to stdout.
function T:commit()
  local t = assert(self.temp, "giro.output: commit without open")
  self.temp = nil
  live[t] = nil
  local ok, err
  if self.stdout then
    ok, err = t:copy_to(io.stdout)
    t:discard()
    if not ok then return errors.env("cannot write to stdout: %s", err) end
  else
    ok, err = t:commit(self.final)
    if not ok then return errors.env("%s: cannot move the %s into place: %s", self.name, self.what, err) end
  end
  self.committed = true
  return true
end

function T:abort()
  local t = self.temp
  if t then
    self.temp = nil
    live[t] = nil
    t:discard()
  end
end
T.__close = T.abort
T.__gc = T.abort

--- nil, message, "usage" when something exists at path that is not a regular file (links
-- followed); true otherwise (a missing file is left to the caller's own open and message).
function output.refuse_special(path, what)
  local st = fs.stat(path)
  if st and st.type ~= "file" then
    return errors.usage("%s %s: the %s must be a regular file", path, REFUSED[st.type] or REFUSED.other, what or "input file")
  end
  return true
end

--- An input path: refused unless it is a regular file (links followed) or "-" where stdin is
-- allowed; returns the stat or nil, message, kind.  Never opens the file, so a FIFO cannot block.
function output.check_input(path, opts)
  opts = opts or {}
  local what = opts.what or "input file"
  if path == "-" and opts.stdin then return { type = "stdin" } end
  local st, err = fs.stat(path)
  if not st then return errors.os(path, "cannot open the " .. what, err) end
  if st.type ~= "file" then
    return errors.usage("%s %s: the %s must be a regular file", path, REFUSED[st.type] or REFUSED.other, what)
  end
  return st
end

--- Read a small file (a key) whole, refusing anything but a regular file of at most cap bytes.
-- A key that is missing or too big is the set-up's problem (kind env); a path that is not a
-- regular file (a device, a FIFO, a directory) the caller's (usage), as for every input.
function output.read_small(path, cap, what)
  local st, err = fs.stat(path)
  if not st then return errors.env("cannot read the %s %s (%s)", what, path, err) end
  if st.type == "dir" then return errors.usage("cannot read the %s %s (Is a directory)", what, path) end
  if st.type ~= "file" then
    return errors.usage("cannot read the %s %s (it %s; a %s must be a regular file)", what, path,
      REFUSED[st.type] or REFUSED.other, what)
  end
  if st.size > cap then
    return errors.env("cannot read the %s %s (it is %d bytes; a %s has at most %d)", what, path, st.size, what, cap)
  end
  local f, oerr = io.open(path, "rb")
  if not f then return errors.env("cannot read the %s %s (%s)", what, path, errors.reason(oerr)) end
  local data, rerr = f:read(cap + 1)
  f:close()
  if data == nil and rerr then return errors.env("cannot read the %s %s (%s)", what, path, errors.reason(rerr)) end
  data = data or ""
  if #data > cap then return errors.env("cannot read the %s %s (more than %d bytes)", what, path, cap) end
  return data
end

return output
