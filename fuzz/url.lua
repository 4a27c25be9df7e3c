--- giro.url decoders and encoders: decode(encode(x)) == x; parse_query(form_encode(list)) ==
--- list; the decoders never raise on any input; parse_query_map agrees with parse_query.
local url = require("giro.url")
local S = require("support")

return function(data)
  -- round trips of the input itself
  S.same(data, url.urldecode(url.urlencode(data)), "urldecode(urlencode(x))")
  local enc = url.urlencode(data)
  if enc:find("[^%w%-%._~%%]") then S.fail("urlencode left %q unescaped", enc) end
  -- the decoders on raw input
  local d, err = url.urldecode(data)
  if d == nil and type(err) ~= "string" then S.fail("urldecode: no reason") end
  if d ~= nil then
    -- independent decoding: '+' is a space, %XX a byte
    local ref = data:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    S.same(ref, d, "urldecode")
  end
  local list, lerr = url.parse_query(data)
  local map, merr, dup = url.parse_query_map(data)
  if list == nil and map ~= nil then
    S.fail("parse_query refused (%s) what parse_query_map took", tostring(lerr))
  end
  if map == nil and dup == nil and list ~= nil then
    S.fail("parse_query_map refused (%s) what parse_query took", tostring(merr))
  end
  if list then
    local seen, unique = {}, true
    for _, p in ipairs(list) do
      if seen[p[1]] then unique = false end
      seen[p[1]] = p[2]
    end
    if unique then
      if not map then S.fail("parse_query_map refused a query without duplicates: %s", tostring(merr)) end
      for k, v in pairs(seen) do S.same(v, map[k], "parse_query_map[" .. k .. "]") end
    elseif map then
      S.fail("parse_query_map took a duplicate name")
    end
  end
  -- form_encode then parse_query gives the list back (names and values any bytes)
  local b = S.bytes(data)
  local pairs_ = {}
  while not b.done() and #pairs_ < 8 do pairs_[#pairs_ + 1] = { b.chunk(), b.chunk() } end
  local q = url.form_encode(pairs_)
  local back = url.parse_query(q)
  if not back then S.fail("form_encode output %q does not parse", q) end
  -- parse_query drops empty segments: a pair with an empty name and value comes back only as "="
  S.same(#pairs_, #back, "pairs back from " .. q)
  for i, p in ipairs(pairs_) do
    S.same(p[1], back[i][1], "name " .. i)
    S.same(p[2], back[i][2], "value " .. i)
  end
end
