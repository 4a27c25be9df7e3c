--- giro.errors: the few kinds of failure a library function reports, and the helpers that
-- make its messages.
--
-- The convention (docs/modules.md, "Errors"): a library function that meets bad data or a
-- failing environment returns `nil, message, kind`; a programmer error (a wrong argument
-- type, a broken invariant) raises.  The CLI maps kinds to exit codes in one place
-- (giro.cli: cli.EXIT_FOR); nothing else knows the numbers.
--
--   local errors = require("giro.errors")
--   local f, err = io.open(path, "rb")
--   if not f then return errors.os(path, "cannot open the request file", err) end
--   if bad then return errors.input("%s:%d: %s: expected %s", path, line, field, what) end
--
-- The kinds:
--   input        the data was refused: a malformed file, a failed check, a MAC mismatch,
--                a record that breaks the spec (exit 1)
--   usage        the caller asked for something that cannot be: an unknown name, an option
--                value outside its set, a contradiction between options (exit 2)
--   env          the environment failed: a missing or unreadable file, a refused output
--                path, a database, the network, a full disk (exit 3)
--   interrupted  SIGINT or SIGTERM stopped the run after it cleaned up (the CLI then ends
--                the process by the same signal)
-- Messages name the file (and line, field) first, say what was expected, and for an OS
-- failure end with the operating system's reason.  They never hold a secret.
local errors = {}

errors.KINDS = { input = true, usage = true, env = true, interrupted = true }

local function msg(fmt, ...)
  if select("#", ...) == 0 then return tostring(fmt) end
  return string.format(fmt, ...)
end

--- nil, message, kind (kind checked: a typo here is a programmer error).
function errors.fail(kind, fmt, ...)
  if not errors.KINDS[kind] then error("giro.errors: unknown kind " .. tostring(kind), 2) end
  return nil, msg(fmt, ...), kind
end

function errors.input(fmt, ...) return nil, msg(fmt, ...), "input" end
function errors.usage(fmt, ...) return nil, msg(fmt, ...), "usage" end
function errors.env(fmt, ...) return nil, msg(fmt, ...), "env" end

--- The OS reason of an io/os error text ("path: No such file or directory" -> "No such file
-- or directory"), for messages that name the path themselves.
function errors.reason(oserr)
  if oserr == nil then return "unknown reason" end
  local s = tostring(oserr)
  return s:match(":%s*([^:]+)$") or s
end

--- nil, "PATH: WHAT: REASON", "env", { file = PATH, reason = REASON } for a failed OS call
-- (io.open's second value as oserr); the fourth value gives the CLI's JSON error its keys.
function errors.os(path, what, oserr)
  local reason = errors.reason(oserr)
  return nil, string.format("%s: %s: %s", path, what, reason), "env", { file = path, reason = reason }
end

--- A value as a message may quote it: at most `max` (default 40) characters of it, and its
-- length when it is longer, so that a hostile 9 MiB field never reaches a message whole.
function errors.quote(v, max)
  max = max or 40
  local s = tostring(v)
  if #s <= max then return string.format("%q", s) end
  local cut = max
  -- do not cut a UTF-8 sequence in half
  while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
  return string.format("%q… (%d bytes)", s:sub(1, cut), #s)
end

--- Text cut to at most `max` (default 400) bytes, never in the middle of a UTF-8 sequence,
-- with "… (N bytes)" when it was longer: for error texts that come from outside (a rule's
-- error message, a library's reason) and may be of any size.
function errors.clip(v, max)
  max = max or 400
  local s = tostring(v)
  if #s <= max then return s end
  local cut = max
  while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
  return string.format("%s… (%d bytes)", s:sub(1, cut), #s)
end

return errors
