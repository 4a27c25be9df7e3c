--- giro.text: text for people to read in a terminal.
--
--   local text = require("giro.text")
--   text.format("%-12s %s\n", "Åse-Marie", "Østby")   -- columns line up: padded by characters
--
-- string.format pads "%-12s" by bytes, so every æ, ø or å (two bytes in UTF-8) pulls the
-- rest of its line one column to the left.
local text = {}

--- A string padded (or not) to width characters, not bytes: "Åse" is 3 wide (text that is
-- not UTF-8 counts its bytes).  Negative width pads on the left.
function text.pad(s, width)
  s = tostring(s)
  local n = utf8.len(s) or #s
  local w = math.abs(width)
  if n >= w then return s end
  if width < 0 then return (" "):rep(w - n) .. s end
  return s .. (" "):rep(w - n)
end

--- string.format for table output: a "%-Ns" or "%Ns" field is padded by characters
-- (text.pad), so that columns holding æøå line up.  Other conversions are string.format's.
function text.format(fmt, ...)
  local args, i, n = { ... }, 0, select("#", ...)
  local out = fmt:gsub("%%([%-%+ #0]*)(%d*)(%.?%d*)([%a%%])", function(flags, width, prec, conv)
    if conv == "%" then return "%%" end
    i = i + 1
    if conv == "s" and width ~= "" and prec == "" then
      args[i] = text.pad(tostring(args[i]), flags:find("-", 1, true) and tonumber(width) or -tonumber(width))
      return "%s"
    end
  end)
  return string.format(out, table.unpack(args, 1, n))
end

return text
