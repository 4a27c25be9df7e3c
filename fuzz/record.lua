--- giro.record field-layout checks: a field's check agrees with Lua's own pattern matcher and the
--- length limits (for shapes whose neighbouring items do not overlap, where possessive matching
--- and Lua's backtracking agree: the shapes giro's bank definitions use); collect, take and parse
--- never raise and agree with check; parse's map equals url.parse_query_map's when it gives one.
local record = require("giro.record")
local url = require("giro.url")
local S = require("support")

local SPECS = {
  { name = "SUMMA", shape = "%d+,%d%d", max = 19, required = true },
  { name = "VALUUTTA", fixed = "EUR", value = "EUR" },
  { name = "lng", shape = "[123]" },
  { name = "VIITE", shape = "%d+", min = 4, max = 20, check_digit = "731" },
  { name = "ERAPAIVA", shape = "%d%d%.%d%d%.%d%d%d%d", date = "DD.MM.YYYY", not_past = true },
  { name = "NET_DATE", shape = "%d%d%d%d%d%d%d%d", date = "YYYYMMDD" },
  { name = "NET_AMOUNT", shape = "[1-9]%d*,%d%d", max = 19, suffix = ",00" },
  { name = "TEXT", shape = "[ -~]*", max = 40 },
  { name = "NOBLANK", shape = "[!-~]*", min = 1, max = 10 },
  { name = "TYPE", shape = "%u%u?", values = { "A", "B", "AB" } },
  { name = "HEX", shape = "^%x+$" },
  { name = "ANY", shape = ".*" },
  { name = "TARKISTE" },
}
local layout = record.new(SPECS)
local TODAY = 20240615

-- what check must say for field k when the spec has no check beyond shape and lengths
local function expect(spec, s)
  if spec.fixed then return s == spec.fixed end
  if not spec.shape then return false end
  if spec.check_digit or spec.date or spec.values or spec.suffix then return nil end
  local shape = spec.shape:gsub("^%^", ""):gsub("%$$", "")
  return s:find("^" .. shape .. "$") ~= nil and #s >= (spec.min or 0) and #s <= (spec.max or math.huge)
end

return function(data)
  local b = S.bytes(data)
  local vals = {}
  for k, spec in ipairs(SPECS) do
    local s = b.chunk()
    vals[k] = s
    local ok, stored = layout:check(k, s, TODAY)
    local want = expect(spec, s)
    if want ~= nil and (ok and true or false) ~= want then
      S.fail("field %s %q: check says %s, the pattern %s", spec.name, s, tostring(ok), tostring(want))
    end
    if ok and not spec.fixed and type(stored) ~= "string" then S.fail("check stored %s", tostring(stored)) end
    if spec.fixed then stored = s end     -- check gives only true for a fixed field
    if ok and spec.suffix and stored ~= s and stored ~= s .. spec.suffix then S.fail("suffix %q", stored) end
    -- collect over a map with only this field agrees with check on it
    local map = { [spec.name] = s }
    local out, stop = layout:collect(map, nil, k, TODAY)
    local cok = stop ~= k
    if cok ~= (ok and true or false) then
      S.fail("field %s %q: collect %s, check %s", spec.name, s, tostring(cok), tostring(ok))
    end
    if ok and out[k] ~= stored then S.fail("collect stored %q, check %q", tostring(out[k]), stored) end
  end
  -- a whole map: take is all or nothing, and then agrees with collect from the start
  local map = {}
  for k, spec in ipairs(SPECS) do if vals[k] ~= "" or k % 2 == 0 then map[spec.name] = vals[k] end end
  local t = layout:take(map, TODAY)
  local _, stop = layout:collect(map, nil, 1, TODAY)
  if t and stop ~= nil then S.fail("take took a map collect stops at field %d", stop) end
  -- parse on the raw input as a query string
  local pm, count = layout:parse(data, TODAY)
  if pm then
    local ref = url.parse_query_map(data)
    if not ref then S.fail("parse took %q, parse_query_map refuses it", data) end
    local n = 0
    for k, v in pairs(ref) do n = n + 1; S.same(v, pm[k], "parse[" .. k .. "]") end
    for k in pairs(pm) do if ref[k] == nil then S.fail("parse invented %s", k) end end
    if math.type(count) ~= "integer" then S.fail("count") end
  end
  S.same(#SPECS, layout:size(), "size")
  record.count(map)
end
