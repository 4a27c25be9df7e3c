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

-- the format's leaves, lengths, elements and cases (giro.efaktura.constants)
local C = require("giro.efaktura.constants")
local ELEMENT, KIND = C.ELEMENT, C.KIND

local request = {}

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
    elseif not C.SERVICE_PROVIDER_NAMES[spn] then
      ok, err = nil, string.format("%s:%d: ServiceProviderName %s: expected THOR, 8080 or Thor (the sender, Nets)", name, from_line, errors.quote(spn))
    end
  end
  if ok then
    local id, sid = to.ServiceProviderID, to.ServiceID
    if not id or not sid then
      ok, err = nil, string.format("%s:%d: <ToInfo> needs <ServiceProviderID> and <ServiceID>", name, to_line)
    elseif utf8.len(trim(id)) ~= C.PROVIDER_LENGTH then
      ok, err = nil, string.format("%s:%d: ServiceProviderID %s: expected %d characters such as NOR123456789-1", name, to_line,
        errors.quote(id), C.PROVIDER_LENGTH)
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

-- One record per call of giro.xml's next_record: the wrapping EnrollmentAdd/Change/Delete,
-- the AccountInfoRecord and the checks that need every value (presence, unknown leaves,
-- character counts) run in C; what is left here runs once per record.  The checks come in
-- this order, and a record's problem is the first that fails.
local CHARS = {
  { "BillerAccountNumber", min = 1, max = C.ACCOUNT_MAX },
  { "ThorContentProviderId", min = C.PROVIDER_LENGTH, max = C.PROVIDER_LENGTH, trim = true },
  { "ThorUserId", min = 1, trim = true },
  { "ThorUserId", max = C.THOR_USER_ID_MAX },
}
for _, m in ipairs(C.MAX_CHARS) do CHARS[#CHARS + 1] = { m[1], max = m[2] } end

local WRAPPERS = { "EnrollmentAdd", "EnrollmentChange", "EnrollmentDelete" }
local SPEC = xml.record_spec{ record = "AccountInfoRecord", wrappers = WRAPPERS, leaves = C.LEAVES,
                              required = true, chars = CHARS }

-- the problem text for a failed rule of CHARS (p.count characters in p.leaf)
local CHARS_PROBLEM = {
  function(_, p)
    if p.count == 0 then return "BillerAccountNumber is empty" end
    return string.format("BillerAccountNumber has %d characters (at most %d)", p.count, C.ACCOUNT_MAX)
  end,
  function(f) return string.format("ThorContentProviderId %s: expected %d characters such as NOR123456789-1",
    errors.quote(f.ThorContentProviderId), C.PROVIDER_LENGTH) end,
  function() return "ThorUserId is empty" end,
  function(_, p) return string.format("ThorUserId has %d characters (at most %d)", p.count, C.THOR_USER_ID_MAX) end,
}
for i = #CHARS_PROBLEM + 1, #CHARS do
  local max = CHARS[i].max
  CHARS_PROBLEM[i] = function(f, p)
    return string.format("%s has %d characters (at most %d): %s", p.leaf, p.count, max, errors.quote(f[p.leaf]))
  end
end

local function record_problem(f, p, element, status)
  if p then
    if p.kind == "missing" then return string.format("lacks <%s>", p.leaf) end
    if p.kind == "unknown" then return string.format("unexpected <%s> at line %d", p.leaf, p.line) end
    return CHARS_PROBLEM[p.rule](f, p)
  end
  if not KIND[element][status] then
    return string.format("<%s> with BillerEnrollmentStatus %s is not a message of the spec (expected %s)",
      element, errors.quote(status), element == "EnrollmentAdd" and "P" or element == "EnrollmentDelete" and "D" or "P, A, N or D")
  end
  return nil
end

local function found(ev, n)
  return ev == "start" and "<" .. n .. ">" or ev == "end" and "</" .. n .. ">" or "the end of the file"
end

--- The next record, nil at the end of the file, or nil + "FILE:LINE: ..." for a bad file.
-- rec = { element = "EnrollmentAdd"|..., type = "Add"|"Change"|"Delete", kind = ..., status = "P"|...,
--         fields = { leaf = value }, line = start of the AccountInfoRecord, seq = n, rq = n,
--         problem = nil | "why it cannot be answered" }
function Reader:next_record()
  local r = self.r
  while true do
    if self.depth == "rq" then
      local f, line, w, p = r:next_record(SPEC)
      if f then
        self.count = self.count + 1
        local n = WRAPPERS[w]
        local status = f.BillerEnrollmentStatus
        if status then status = trim(status) end
        local rec = { element = n, type = ELEMENT[n], status = status, fields = f, line = line,
                      seq = self.count, rq = self.rq }
        local problem = record_problem(f, p, n, status)
        if problem then rec.problem = problem else rec.kind = KIND[n][status] end
        return rec
      elseif f == nil then
        return nil, line
      end
      -- not a record: the reader sits on the event that is not one (w: where it stopped)
      local ev, stage, wrapper = line, w, WRAPPERS[p]
      if ev == "text" or ev == "cdata" then
        return self:fail("unexpected text %s outside the record leaves", errors.quote(r:value()))
      end
      local n = ev ~= "eof" and r:name() or nil
      if stage == 1 then
        return self:fail("expected <AccountInfoRecord> inside <%s>, found %s", wrapper, found(ev, n))
      elseif stage == 2 then
        return self:fail("expected </%s>, found %s", wrapper, found(ev, n))
      elseif ev == "end" and n == "EnrollmentRQ" then
        self.depth = "top"
      else
        return self:fail("expected <EnrollmentAdd>, <EnrollmentChange>, <EnrollmentDelete> or </EnrollmentRQ>, found %s",
          found(ev, n))
      end
    else
      local ev, n = self:event()
      if ev == nil then return nil, n end
      if self.depth == "top" then
        if ev == "start" and n == "EnrollmentRQ" then
          self.depth, self.rq = "rq", self.rq + 1
        elseif ev == "end" and n == "Message" and self.rq > 0 then
          self.depth = "done"
        else
          return self:fail("expected <EnrollmentRQ>%s, found %s", self.rq > 0 and " or </Message>" or "", found(ev, n))
        end
      else -- done: only the end of the document may follow
        if ev == "eof" then return nil end
        return self:fail("unexpected %s after </Message>", ev == "start" and "<" .. n .. ">" or ev)
      end
    end
  end
end

function Reader:close()
  if self.r then self.r:close() self.r = nil end
end
Reader.__close = Reader.close

return request
