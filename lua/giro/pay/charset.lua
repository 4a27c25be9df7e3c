--- Character sets of bank messages.
-- Callers (the CLI, a shop's Lua code) speak UTF-8; the bank sees its own charset on the wire
-- (the Finnish payment buttons expect ISO-8859-1: Danske forbids the € sign, which is exactly
-- the character ISO-8859-1 lacks).  MACs are always computed over the wire bytes.
--
--   local cs = charset.get("ISO-8859-1")
--   cs.to_wire(s)    -> bytes in the bank's charset | nil, reason   (s is UTF-8)
--   cs.to_display(b) -> UTF-8 string                                 (b are wire bytes)
--   cs.len(b)        -> length in characters of wire bytes
local find, char, byte, concat = string.find, string.char, string.byte, table.concat
local ulen, ucodes, uchar = utf8.len, utf8.codes, utf8.char

local charset = {}

-- anchored, so one linear pass (an unanchored character class retries at every position)
local ASCII = "^[%z\1-\127]*$"

local function latin1_to_wire(s)
  if find(s, ASCII) then return s end
  if not ulen(s) then return nil, "not valid UTF-8" end
  local out, n = {}, 0
  for _, c in ucodes(s) do
    if c > 255 then
      return nil, string.format("character U+%04X cannot be sent in ISO-8859-1", c)
    end
    n = n + 1
    out[n] = char(c)
  end
  return concat(out)
end

local latin1_cache = {}
local function latin1_to_display(b)
  if find(b, ASCII) then return b end
  return (b:gsub("[\128-\255]", function(c)
    local u = latin1_cache[c]
    if not u then u = uchar(byte(c)); latin1_cache[c] = u end
    return u
  end))
end

local function utf8_to_wire(s)
  if not find(s, ASCII) and not ulen(s) then return nil, "not valid UTF-8" end
  return s
end

local sets = {
  ["ISO-8859-1"] = {
    name = "ISO-8859-1",
    to_wire = latin1_to_wire,
    to_display = latin1_to_display,
    len = string.len,
    -- printable characters: ASCII 0x20-0x7E and 0xA0-0xFF (no C0/C1 controls, no DEL)
    printable = "^[ -~\160-\255]*$",
    printable_noblank = "^[!-~\161-\255]*$",
  },
  ["UTF-8"] = {
    name = "UTF-8",
    to_wire = utf8_to_wire,
    to_display = function(b) return b end,
    len = function(b) return ulen(b) or #b end,
    printable = "^[ -~\128-\255]*$",
    printable_noblank = "^[!-~\128-\255]*$",
  },
}
sets["LATIN1"] = sets["ISO-8859-1"]
sets["UTF8"] = sets["UTF-8"]

--- The charset object for a name (case-insensitive); nil, message for an unknown one.
function charset.get(name)
  local cs = sets[string.upper(name or "ISO-8859-1")]
  if not cs then return nil, "unknown charset " .. tostring(name) .. " (ISO-8859-1 or UTF-8)" end
  return cs
end

return charset
