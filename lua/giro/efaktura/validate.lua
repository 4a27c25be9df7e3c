--- giro.efaktura.validate: check a request or response file against its schema.
--
--   local validate = require("giro.efaktura.validate")
--   local res = validate.file("in.xml")
--   res.ok, res.kind ("request"|"response"|nil), res.errors = { { line =, message =, text = "FILE:LINE: msg" } }
--   res.env  -- set when the file cannot be read at all (res.kind: "env", or "usage" for a
--               path that is not a regular file)
--
-- The schema is chosen by the file's content: <Message><Request> is a request (checked
-- against request.xsd, which accepts both the spec examples' and the DTD's ServiceProvider
-- shape), <Message><Response> a response (response.xsd, the spec's XSD restated).
-- On top of the schema: the declaration must name ISO-8859-1 (spec 2.5 / 5.1), and for a
-- response the rules the XSD leaves out (BillerAccountNumber <= 32, BillerMessage <= 100,
-- BillerReason and BillerMessage filled exactly when the status is N).
local xml = require("giro.xml")
local schemas = require("giro.efaktura.schemas")
local C = require("giro.efaktura.constants")

local validate = {}

local function err(res, name, line, fmt, ...)
  local msg = string.format(fmt, ...)
  res.errors[#res.errors + 1] = { line = line, message = msg, text = string.format("%s:%d: %s", name, line or 0, msg) }
end

-- Which kind of file: reads up to the second element.
local function detect(path, name)
  local r, e = xml.open(path, { name = name })
  if not r then return nil, e end
  local names, line = {}, {}
  while #names < 2 do
    local ev, perr = r:next()
    if not ev then r:close() return nil, perr or (name .. ": no elements") end
    if ev == "start" then names[#names + 1] = r:name() line[#line + 1] = r:line() end
  end
  r:close()
  if names[1] ~= "Message" then return nil, string.format("%s:%d: root element <%s>: expected <Message>", name, line[1], names[1]) end
  if names[2] == "Request" then return "request" end
  if names[2] == "Response" then return "response" end
  return nil, string.format("%s:%d: <%s> after <Message>: expected <Request> (a request file) or <Response> (a response file)",
    name, line[2], names[2])
end

local function check_declaration(res, path, name)
  local f = io.open(path, "rb")
  if not f then return end
  local head = f:read(200) or ""
  f:close()
  local decl = head:match("^%s*(<%?xml.-%?>)")
  if not decl then
    err(res, name, 1, "no XML declaration; expected <?xml version=\"1.0\" encoding=\"iso-8859-1\"?>")
    return
  end
  local enc = decl:match("encoding%s*=%s*[\"']([^\"']+)[\"']")
  if not enc or enc:lower() ~= "iso-8859-1" then
    err(res, name, 1, "encoding %s: the spec requires encoding=\"iso-8859-1\"", enc and ("\"" .. enc .. "\"") or "not declared")
  end
end

local function response_rules(res, path, name)
  local r = xml.open(path, { name = name })
  if not r then return end
  while true do
    local ev = r:next()
    if not ev then break end
    if ev == "start" and r:name() == "AccountInfoRecord" then
      local f, lines = r:read_record()
      if not f then break end
      local line = lines[0]
      local status = (f.BillerEnrollmentStatus or ""):gsub("%s", "")
      local reason = (f.BillerReason or ""):gsub("%s", "")
      local msg = f.BillerMessage or ""
      local ban = f.BillerAccountNumber or ""
      if (utf8.len(ban) or #ban) > C.ACCOUNT_MAX then
        err(res, name, lines.BillerAccountNumber or line, "BillerAccountNumber has %d characters (at most %d)", utf8.len(ban) or #ban,
          C.ACCOUNT_MAX)
      end
      if (utf8.len(msg) or #msg) > C.MESSAGE_MAX then
        err(res, name, lines.BillerMessage or line, "BillerMessage has %d characters (at most %d)", utf8.len(msg) or #msg,
          C.MESSAGE_MAX)
      end
      if status == "N" and (reason == "" or msg:match("^%s*$")) then
        err(res, name, lines.BillerReason or line, "status N needs BillerReason (01, 02 or 03) and BillerMessage")
      elseif status == "A" and (reason ~= "" or not msg:match("^%s*$")) then
        err(res, name, lines.BillerReason or line, "status A takes an empty BillerReason and BillerMessage")
      end
    end
  end
  r:close()
end

function validate.file(path, opts)
  opts = opts or {}
  local name = opts.name or path
  local res = { ok = false, errors = {}, file = name }
  local st, serr, skind = require("giro.output").check_input(path, { what = "file to validate" })
  if not st then
    -- a missing file is the environment's failure, a device or FIFO the caller's (usage)
    res.env, res.kind = serr, skind
    if skind == "env" then res.reason = serr:match(": ([^:]+)$") end
    return res
  end
  local fh, oerr = io.open(path, "rb")
  if not fh then
    res.reason = require("giro.errors").reason(oerr)
    res.env = name .. ": cannot open: " .. res.reason
    return res
  end
  fh:close()
  local kind, derr = detect(path, name)
  if not kind then
    local line = tonumber(tostring(derr):match(":(%d+):")) or 0
    res.errors[1] = { line = line, message = derr, text = derr }
    return res
  end
  res.kind = kind
  res.schema_name = kind .. ".xsd"
  check_declaration(res, path, name)
  local ok, errors = xml.validate({ path = path }, { xsd = schemas.path(kind .. ".xsd") })
  if not ok then
    if type(errors) == "table" then
      for _, e in ipairs(errors) do
        err(res, name, e.line, "%s", (tostring(e.message):gsub("%s+$", "")))
      end
    else
      err(res, name, 0, "%s", tostring(errors))
    end
  elseif kind == "response" then
    response_rules(res, path, name)
  end
  res.ok = #res.errors == 0
  return res
end

return validate
