--- giro.efaktura.request: stream a Nets eFaktura request file one AccountInfoRecord at a time.
--
--   local request = require("giro.efaktura.request")
--   local rd, err = request.open(path)          -- reads and checks the <Request> header
--   rd.header  --> { from_name = "8080", to_id = "NOR999999999-1", to_service = "1", line = 3 }
--   while true do
--     local rec, err = rd:next_record()         -- rec, or nil at the end, or nil + "FILE:LINE: ..."
--     if not rec then break end
--     rec.kind   --> "add" | "change" | "delete" | "receipt-A" | "receipt-N" | "receipt-D" | nil
--     rec.problem--> why this record cannot be answered (then rec.kind is nil)
--   end
--   rd:close()
--
-- Structure outside the records (Message, Request, FromInfo, ToInfo, EnrollmentRQ,
-- EnrollmentAdd/Change/Delete) is checked strictly: anything else makes the whole
-- file bad (nil + "FILE:LINE: expected ..., found ...").  Inside an AccountInfoRecord
-- the C reader hands over all leaves at once (one Lua call per record); a record that
-- lacks a leaf, has an unknown one or carries values that cannot be echoed in a valid
-- answer is returned with rec.problem set, so the caller can skip it and go on.
--
-- Both shapes of <ServiceProvider> are accepted: the spec's examples (FromInfo with
-- only ServiceProviderName, ToInfo with only ServiceProviderID and ServiceID) and the
-- request DTD (all three in both).  Values are UTF-8 (the file's ISO-8859-1 is decoded
-- by giro.xml); CDATA content is taken byte for byte.
local xml = require("giro.xml")
local errors = require("giro.errors")

local C = require("giro.efaktura.constants")

-- the spec's field lengths (v2.9 field table) for the consumer's data, checked in this order
local MAX_CHARS = C.MAX_CHARS

local request = {}

-- The leaves of an AccountInfoRecord in DTD order (all required by the request DTD).
request.LEAVES = C.LEAVES
local KNOWN = {}
for i, n in ipairs(request.LEAVES) do KNOWN[n] = i end

request.SERVICE_PROVIDER_NAMES = C.SERVICE_PROVIDER_NAMES

local ELEMENT = C.ELEMENT

-- (element, status) -> case; anything else is not a message the spec defines.
local KIND = C.KIND

local byte = string.byte

-- Strip surrounding whitespace (%s: 9-13 and space).  Most values have none: those
-- are returned without running the two patterns (this runs several times per record).
local function trim(s)
  local a, z = byte(s, 1), byte(s, -1)
  if a and a ~= 32 and (a < 9 or a > 13) and z ~= 32 and (z < 9 or z > 13) then return s end
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local Reader = {}
Reader.__index = Reader

function Reader:fail(fmt, ...)
  local line = self.r and self.r:line() or 0
  return nil, string.format("%s:%d: %s", self.name, line, string.format(fmt, ...))
end

-- Next structural event (whitespace-only text is skipped by giro.xml).
-- Returns ev, name  or nil, err (parse error or non-whitespace text where none belongs).
function Reader:event()
  local ev, err = self.r:next()
  if ev == nil then
    if err then return nil, err end
    return "eof"
  end
  if ev == "text" or ev == "cdata" then
    return self:fail("unexpected text %s outside the record leaves", errors.quote(self.r:value()))
  end
  return ev, self.r:name()
end

function Reader:expect_start(name, what)
  local ev, n = self:event()
  if ev == nil then return nil, n end
  if ev ~= "start" or n ~= name then
    return self:fail("expected <%s>%s, found %s", name, what or "", ev == "start" and "<" .. n .. ">"
      or ev == "end" and "</" .. n .. ">" or "the end of the file")
  end
  return true
end

function Reader:expect_end(name)
  local ev, n = self:event()
  if ev == nil then return nil, n end
  if ev ~= "end" or n ~= name then
    return self:fail("expected </%s>, found %s", name, ev == "start" and "<" .. n .. ">"
      or ev == "end" and "</" .. n .. ">" or "the end of the file")
  end
  return true
end

-- FromInfo / ToInfo: the leaves of their ServiceProvider.
function Reader:service_provider(which, allowed)
  local ok, err = self:expect_start(which)
  if not ok then return nil, err end
  local line = self.r:line()
  local f, lines = self.r:read_record()
  if not f then return nil, lines end
  for k in pairs(f) do
    if not allowed[k] then
      return nil, string.format("%s:%d: <%s> holds <%s>; expected ServiceProviderName, ServiceProviderID, ServiceID",
        self.name, lines[k] or line, which, k)
    end
  end
  return f, line
end

--- Open a request file and read its header.  opts.name labels messages (default: the path).
function request.open(path, opts)
  opts = opts or {}
  local name = opts.name or path
  -- a FIFO would block the reader, /dev/zero feed it forever: regular files only
  local st, serr = require("giro.output").check_input(path, { what = "request file" })
  if not st then return nil, serr end
  local r, err = xml.open(path, { name = name })
  if not r then return nil, err end
  local self = setmetatable({ r = r, name = name, depth = "top", rq = 0, count = 0 }, Reader)
  local ok
  ok, err = self:expect_start("Message", " (an eFaktura request file)")
  if ok then ok, err = self:expect_start("Request", " (a request file starts with its <Request> header)") end
  local from, to, from_line, to_line
  if ok then
    from, from_line = self:service_provider("FromInfo", { ServiceProviderName = true, ServiceProviderID = true, ServiceID = true })
    if not from then ok, err = nil, from_line end
  end
  if ok then
    to, to_line = self:service_provider("ToInfo", { ServiceProviderName = true, ServiceProviderID = true, ServiceID = true })
    if not to then ok, err = nil, to_line end
  end
  if ok then ok, err = self:expect_end("Request") end
  if ok then
    local spn = from.ServiceProviderName and trim(from.ServiceProviderName)
    if not spn then
      ok, err = nil, string.format("%s:%d: <FromInfo> lacks <ServiceProviderName> (expected THOR, 8080 or Thor)", name, from_line)
    elseif not request.SERVICE_PROVIDER_NAMES[spn] then
      ok, err = nil, string.format("%s:%d: ServiceProviderName %s: expected THOR, 8080 or Thor (the sender, Nets)", name, from_line, errors.quote(spn))
    end
  end
  if ok then
    local id, sid = to.ServiceProviderID, to.ServiceID
    if not id or not sid then
      ok, err = nil, string.format("%s:%d: <ToInfo> needs <ServiceProviderID> and <ServiceID>", name, to_line)
    elseif utf8.len(trim(id)) ~= 14 then
      ok, err = nil, string.format("%s:%d: ServiceProviderID %s: expected 14 characters such as NOR123456789-1", name, to_line, errors.quote(id))
    elseif trim(sid) == "" then
      ok, err = nil, string.format("%s:%d: ServiceID is empty (expected 1)", name, to_line)
    else
      self.header = { from_name = trim(from.ServiceProviderName), to_id = trim(id), to_service = trim(sid), line = to_line }
    end
  end
  if not ok then
    r:close()
    return nil, err
  end
  return self
end

local LEAVES, NLEAVES = request.LEAVES, #request.LEAVES

-- Check one record's leaves; returns the problem text or nil.
-- count: how many leaves the record has (giro.xml read_record); all known leaves present
-- and no more than that means there is no unknown one to look for.
-- all_leaves(f): every leaf of LEAVES is in f (one chain of field reads, compiled once).
local all_leaves
do
  local t = {}
  for i, leaf in ipairs(LEAVES) do t[i] = "f." .. leaf .. " ~= nil" end
  all_leaves = assert(load("local f = ... return " .. table.concat(t, " and "), "=all_leaves", "t"))
end

local function record_problem(f, lines, element, count, status)
  if not all_leaves(f) then
    for i = 1, NLEAVES do
      if f[LEAVES[i]] == nil then return string.format("lacks <%s>", LEAVES[i]) end
    end
  end
  if count ~= NLEAVES then
    for k in pairs(f) do
      if not KNOWN[k] then return string.format("unexpected <%s> at line %d", k, lines[k] or 0) end
    end
  end
  local ban = f.BillerAccountNumber
  local n = utf8.len(ban) or #ban
  if n == 0 then return "BillerAccountNumber is empty" end
  if n > 32 then return string.format("BillerAccountNumber has %d characters (at most 32)", n) end
  local cp = f.ThorContentProviderId
  if utf8.len(trim(cp)) ~= 14 then
    return string.format("ThorContentProviderId %s: expected 14 characters such as NOR123456789-1", errors.quote(cp))
  end
  local uid = f.ThorUserId
  n = utf8.len(trim(uid)) or #uid
  if n == 0 then return "ThorUserId is empty" end
  if (utf8.len(uid) or #uid) > 35 then return string.format("ThorUserId has %d characters (at most 35)", utf8.len(uid)) end
  -- the consumer's data at most as long as the spec's field table allows (AN 50, 30, 20): a
  -- hostile 9 MiB name never reaches the biller rule's name matching
  for _, m in ipairs(MAX_CHARS) do
    local v = f[m[1]]
    local len = utf8.len(v) or #v
    if len > m[2] then
      return string.format("%s has %d characters (at most %d): %s", m[1], len, m[2], errors.quote(v))
    end
  end
  if not KIND[element][status] then
    return string.format("<%s> with BillerEnrollmentStatus %s is not a message of the spec (expected %s)",
      element, errors.quote(status), element == "EnrollmentAdd" and "P" or element == "EnrollmentDelete" and "D" or "P, A, N or D")
  end
  return nil
end

--- The next record, nil at the end of the file, or nil + "FILE:LINE: ..." for a bad file.
-- rec = { element = "EnrollmentAdd"|..., type = "Add"|"Change"|"Delete", kind = ..., status = "P"|...,
--         fields = { leaf = value }, lines = { leaf = line, [0] = start }, line = start, seq = n,
--         problem = nil | "why it cannot be answered" }
function Reader:next_record()
  while true do
    local ev, n = self:event()
    if ev == nil then return nil, n end
    if self.depth == "top" then
      if ev == "start" and n == "EnrollmentRQ" then
        self.depth, self.rq = "rq", self.rq + 1
      elseif ev == "end" and n == "Message" and self.rq > 0 then
        self.depth = "done"
      else
        return self:fail("expected <EnrollmentRQ>%s, found %s", self.rq > 0 and " or </Message>" or "",
          ev == "start" and "<" .. n .. ">" or ev == "end" and "</" .. n .. ">" or "the end of the file")
      end
    elseif self.depth == "rq" then
      if ev == "start" and ELEMENT[n] then
        local ok, err = self:expect_start("AccountInfoRecord", " inside <" .. n .. ">")
        if not ok then return nil, err end
        local f, lines, count = self.r:read_record()
        if not f then
          local msg = tostring(lines)
          if not msg:match("^[^:]+:%d+:") then msg = string.format("%s:%d: %s", self.name, self.r:line(), msg) end
          return nil, msg
        end
        ok, err = self:expect_end(n)
        if not ok then return nil, err end
        self.count = self.count + 1
        local status = f.BillerEnrollmentStatus and trim(f.BillerEnrollmentStatus) or nil
        local rec = { element = n, type = ELEMENT[n], status = status, fields = f, lines = lines,
                      line = lines[0], seq = self.count, rq = self.rq }
        rec.problem = record_problem(f, lines, n, count, status)
        if not rec.problem then rec.kind = KIND[n][status] end
        return rec
      elseif ev == "end" and n == "EnrollmentRQ" then
        self.depth = "top"
      else
        return self:fail("expected <EnrollmentAdd>, <EnrollmentChange>, <EnrollmentDelete> or </EnrollmentRQ>, found %s",
          ev == "start" and "<" .. n .. ">" or ev == "end" and "</" .. n .. ">" or "the end of the file")
      end
    else -- done: only the end of the document may follow
      if ev == "eof" then return nil end
      return self:fail("unexpected %s after </Message>", ev == "start" and "<" .. n .. ">" or ev)
    end
  end
end

function Reader:close()
  if self.r then self.r:close() self.r = nil end
end
Reader.__close = Reader.close

return request
