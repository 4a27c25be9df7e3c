--- giro.xml reader and record reader on arbitrary documents: nothing raises, every event's
--- accessors work, and the leaves read_record gives, written back with giro's writer, read back
--- the same (the reader only yields values the writer accepts); next_record with a spec built
--- from the first record reads every record as read_record and libxml2's tree do, and its
--- problems agree with the fields (checked here in Lua).
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

-- the problem next_record reports, against the fields and the spec's leaves (in Lua)
local function check_problem(f, p, leaves, known)
  local missing
  for _, l in ipairs(leaves) do
    if f[l] == nil then missing = missing or l end
  end
  local unknown = false
  for k in pairs(f) do if not known[k] then unknown = true end end
  if missing then
    if not (p and p.kind == "missing" and p.leaf == missing) then S.fail("missing <%s> not reported first", missing) end
  elseif unknown then
    if not (p and p.kind == "unknown" and not known[p.leaf] and f[p.leaf] and math.type(p.line) == "integer") then
      S.fail("an unknown leaf not reported")
    end
  else
    local n = utf8.len(f[leaves[1]])
    if not n then S.fail("the reader gave invalid UTF-8 in <%s>", leaves[1]) end
    if (n > 3) ~= (p ~= nil) then S.fail("<%s> has %d characters, rule max 3, problem %s", leaves[1], n, tostring(p and p.kind)) end
    if p and (p.kind ~= "chars" or p.count ~= n or p.rule ~= 1) then S.fail("wrong chars problem for <%s>", leaves[1]) end
  end
end

local function by_next_record(data, dom, name, first)
  local leaves = {}
  for k in pairs(first) do leaves[#leaves + 1] = k end
  if #leaves == 0 then return end
  table.sort(leaves)
  while #leaves > 64 do leaves[#leaves] = nil end
  local known = {}
  for _, l in ipairs(leaves) do known[l] = true end
  local spec = xml.record_spec{ record = name, leaves = leaves, required = true, chars = { { leaves[1], max = 3 } } }
  local r = xml.from_string(data, { name = "fuzz" })
  if r:next() ~= "start" then return end
  local k = 0
  for _ = 1, 100000 do
    local f, line, w, p = r:next_record(spec)
    if f == nil then break end
    if f then
      k = k + 1
      if math.type(line) ~= "integer" or w ~= 0 then S.fail("next_record: bad line or wrapper") end
      against_dom(dom, k, f)
      check_problem(f, p, leaves, known)
    elseif line == "start" then
      if r:name() == name then S.fail("next_record refused a <%s> record", name) end
      k = k + 1
      local g = r:read_record()
      if not g then break end
      against_dom(dom, k, g)
    elseif line == "eof" or line == "end" then
      break
    end
  end
  r:close()
end

return function(data)
  local r = xml.from_string(data, { name = "fuzz" })
  if not r then return end
  r:encoding()
  local dom = fuzz_dom_records(data)
  local n, k = 0, 0
  local first_name, first
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
    if top and not first_name then first_name = r:name() end
    if ev == "start" and r:depth() >= 1 and n % 3 ~= 0 then
      local f, lines = r:read_record()
      if not f then break end
      if top then against_dom(dom, k, f) end
      if top and first_name == r:name() and not first then first = f end
      for k, v in pairs(f) do
        if type(k) ~= "string" or type(v) ~= "string" then S.fail("bad field %s", tostring(k)) end
        if math.type(lines[k]) ~= "integer" then S.fail("no line for %s", k) end
      end
      roundtrip(f, n % 2 == 0 and "UTF-8" or "ISO-8859-1", n % 4 < 2)
    end
  end
  r:close()
  if first then by_next_record(data, dom, first_name, first) end
end
