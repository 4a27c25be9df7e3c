--- giro.xml writer: every value it accepts reads back through giro's reader exactly; it refuses
--- exactly the values XML 1.0 cannot hold (checked here independently); nothing raises otherwise.
local xml = require("giro.xml")
local S = require("support")

local function read_back(doc)
  local r = assert(xml.from_string(doc))
  repeat
    local ev, err = r:next()
    if not ev then S.fail("writer output does not read back: %s\n%s", tostring(err), doc) end
  until ev == "start"
  local f, err = r:read_record()
  if not f then S.fail("writer output does not read back: %s\n%s", err, doc) end
  return f
end

return function(data)
  local b = S.bytes(data)
  local flags = b.byte()
  local enc = flags % 2 == 0 and "UTF-8" or "ISO-8859-1"
  local w = xml.writer{ encoding = enc, indent = flags & 2 ~= 0 }
  w:start("R")
  local written, n = {}, 0
  while not b.done() and n < 16 do
    local v = b.chunk()
    n = n + 1
    local name = "V" .. n
    local cdata = b.byte() % 2 == 1
    local ok, err = pcall(cdata and w.leaf_cdata or w.leaf, w, name, v)
    if ok then
      if not S.xml_text(v) then S.fail("writer accepted %q, which XML 1.0 cannot hold", v) end
      written[name] = v
    else
      if S.xml_text(v) then S.fail("writer refused %q: %s", v, tostring(err)) end
      if not tostring(err):find("^giro%.xml: ") then S.fail("unexpected error: %s", tostring(err)) end
    end
  end
  w:finish()
  local doc = w:tostring()
  local got = read_back(doc)
  for k, v in pairs(written) do
    if got[k] ~= v then
      S.fail("<%s> %q written (%s) reads back as %q\n%s", k, v, enc, tostring(got[k]), doc)
    end
  end
end
