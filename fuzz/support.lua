--- Shared by the property scripts: failing a property, and reading choices from the input.
local M = {}

function M.fail(fmt, ...)
  error(string.format(fmt, ...), 2)
end

function M.same(want, got, what)
  if want ~= got then
    error(string.format("%s: expected %q, got %q", what, tostring(want), tostring(got)), 2)
  end
end

--- A reader of choices over the input bytes: byte() 0..255 (0 at the end), take(n) up to n bytes,
--- chunk() a length-prefixed piece.
function M.bytes(data)
  local pos = 1
  local b = {}
  function b.byte()
    local c = data:byte(pos) or 0
    pos = pos + 1
    return c
  end
  function b.take(n)
    local s = data:sub(pos, pos + n - 1)
    pos = pos + n
    return s
  end
  function b.chunk() return b.take(b.byte()) end
  function b.rest() local s = data:sub(pos); pos = #data + 1; return s end
  function b.done() return pos > #data end
  return b
end

--- Is s text XML 1.0 can hold (UTF-8; no C0 control but TAB, LF, CR; no U+FFFE, U+FFFF)?
function M.xml_text(s)
  if not utf8.len(s) then return false end
  for _, cp in utf8.codes(s) do
    if (cp < 0x20 and cp ~= 9 and cp ~= 10 and cp ~= 13) or cp == 0xFFFE or cp == 0xFFFF then return false end
  end
  return true
end

return M
