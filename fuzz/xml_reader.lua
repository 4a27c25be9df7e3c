--- giro.xml reader and record reader on arbitrary documents: nothing raises, every event's
--- accessors work, and the leaves read_record gives, written back with giro's writer, read back
--- the same (the reader only yields values the writer accepts).
local xml = require("giro.xml")
local S = require("support")

local function roundtrip(f, enc, cdata)
  local names = {}
  for k in pairs(f) do
    if k:find("^[%a_][%w_%-%.]*$") then names[#names + 1] = k end
  end
  if #names == 0 then return end
  table.sort(names)
  local w = xml.writer{ encoding = enc }
  w:start("Record")
  for i, k in ipairs(names) do
    local v = f[k]
    if not S.xml_text(v) then S.fail("the reader gave <%s> %q, which XML 1.0 cannot hold", k, v) end
    if cdata == (i % 2 == 0) then w:leaf_cdata(k, v) else w:leaf(k, v) end
  end
  w:finish()
  local doc = w:tostring()
  local r = assert(xml.from_string(doc))
  assert(r:next() == "start")
  local g, err = r:read_record()
  if not g then S.fail("rewritten record does not read: %s\n%s", err, doc) end
  for _, k in ipairs(names) do
    if g[k] ~= f[k] then S.fail("<%s> %q rewritten reads back as %q\n%s", k, f[k], tostring(g[k]), doc) end
  end
end

-- giro's record against libxml2's tree (fuzz_dom_records in harness.c) for the k-th child of the root
local function against_dom(dom, k, f)
  local d = dom and dom[k]
  if not d then return end
  for name, v in pairs(d) do
    if f[name] ~= v then S.fail("<%s> of record %d: giro reads %q, libxml2's tree %q", name, k, tostring(f[name]), v) end
  end
  for name in pairs(f) do
    if d[name] == nil then S.fail("<%s> of record %d: giro reads a leaf the tree does not have", name, k) end
  end
end

return function(data)
  local r = xml.from_string(data, { name = "fuzz" })
  if not r then return end
  r:encoding()
  local dom = fuzz_dom_records(data)
  local n, k = 0, 0
  while n < 100000 do
    local ev, err = r:next()
    if not ev then
      if err ~= nil and type(err) ~= "string" then S.fail("error is not a string") end
      break
    end
    n = n + 1
    r:name(); r:value(); r:line(); r:depth(); r:attributes()
    local top = ev == "start" and r:depth() == 1
    if top then k = k + 1 end
    if ev == "start" and r:depth() >= 1 and n % 3 ~= 0 then
      local f, lines = r:read_record()
      if not f then break end
      if top then against_dom(dom, k, f) end
      for k, v in pairs(f) do
        if type(k) ~= "string" or type(v) ~= "string" then S.fail("bad field %s", tostring(k)) end
        if math.type(lines[k]) ~= "integer" then S.fail("no line for %s", k) end
      end
      roundtrip(f, n % 2 == 0 and "UTF-8" or "ISO-8859-1", n % 4 < 2)
    end
  end
  r:close()
end
