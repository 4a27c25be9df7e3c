--- giro.pay — Finnish bank payment buttons from Lua bank definitions.
--
--   local pay = require("giro.pay")
--   local danske = assert(pay.bank("danske"))              -- rules/banks/danske.lua, a path, or a table
--   local req = assert(danske:build("payment", { SUMMA = "12,50", VIITE = "1232", ... }, { key = key }))
--   print(req:url()); for _, f in ipairs(req:fields()) do print(f[1], f[2]) end
--   print(pay.render(req, "html"))
--   local res, why = danske:verify("return", query_string, { key = key, expect = { VIITE = "1232" } })
--   local res, why = danske:query({ Refno = "1232", MerchantID = "000000000000", ... }, { key = key })
--
-- The definitions are data (docs/banks.md); the work is done by giro.pay.engine.
local engine = require("giro.pay.engine")
local loader = require("giro.pay.loader")

local pay = {}
pay.engine = engine

local Bank = {}
Bank.__index = Bank

local cache = {}

-- "PATH:LINE: message" (the line of the value or field it names), unless the message already
-- starts with the path (a file:line)
local function at_path(path, msg)
  return require("giro.rules").add_line(path, msg)
end

--- A bank by name (rules/banks/NAME.lua on the rule path), by file path, or from a definition
-- table.  Returns the bank or nil, message.  Loaded files are compiled once per process.
-- opts.lazy: compile each message on first use (see engine.compile); a later call without it
-- compiles the rest.
function pay.bank(what, opts)
  if type(what) == "table" then
    local c, err = engine.compile(what, nil, opts)
    if not c then return nil, err end
    return setmetatable({ compiled = c, name = c.name, title = c.title }, Bank)
  end
  if type(what) ~= "string" then error("pay.bank: expected a bank name, a path or a table", 2) end
  local path = loader.find(what)
  if not path then return nil, "no bank definition '" .. what .. "' (see: giro pay banks)", "usage" end
  local b = cache[path]
  if not b then
    local def, err = loader.load(path)
    if not def then return nil, err, "env" end
    local c, cerr = engine.compile(def, path:match("([^/]+)%.lua$"), { lazy = true, path = path })
    if not c then return nil, at_path(path, cerr), "env" end
    b = setmetatable({ compiled = c, name = c.name, title = c.title, path = path }, Bank)
    cache[path] = b
  end
  if not (opts and opts.lazy) then
    for _, mname in ipairs(b.compiled.order) do
      local m, err = engine.message(b.compiled, mname)
      if not m then return nil, at_path(path, err), "env" end
    end
  end
  return b
end

--- Every bank definition found: list of { name, path, bank | error }.
function pay.banks()
  local out = {}
  for _, e in ipairs(loader.discover()) do
    local b, err = pay.bank(e.path)
    out[#out + 1] = { name = e.name, path = e.path, bank = b, error = err }
  end
  return out
end

--- The compiled message, or nil, message.
function Bank:message(name)
  local m, err = engine.message(self.compiled, name)
  -- a message the definition has but cannot compile is the definition's fault ("env");
  -- one it lacks, the caller's ("usage")
  if err then return nil, self.path and at_path(self.path, err) or err, "env" end
  if not m then
    return nil, string.format("%s has no message '%s' (it has: %s)", self.name, tostring(name),
      table.concat(self.compiled.order, ", ")), "usage"
  end
  return m
end

-- The message already compiled is a plain table lookup (the hot path), else it is compiled now.
local function compiled_message(bank, name)
  local m = bank.compiled.messages[name]
  if m then return m end
  return bank:message(name)
end

--- Names of the bank's messages in a stable order.
function Bank:messages() return self.compiled.order end

--- Build a request message (see engine Message:build).
function Bank:build(message, fields, opts)
  local m, err = compiled_message(self, message)
  if not m then return nil, err end
  return m:build(fields, opts)
end

--- The payment request (the form a shop shows).
function Bank:form(fields, opts) return self:build("payment", fields, opts) end

--- Verify an incoming message (see engine Message:verify).
function Bank:verify(message, input, opts)
  local m, err = compiled_message(self, message)
  if not m then return nil, err end
  return m:verify(input, opts)
end

---------------------------------------------------------------------------------------------------
-- Sending query and refund requests

-- The answer's fields out of an HTTP response: a redirect's query string, an HTML form's inputs,
-- or a body of NAME=value pairs.
local function answer_of(status, headers, body)
  if status >= 300 and status < 400 then
    for _, h in ipairs(headers or {}) do
      if h[1]:lower() == "location" then return h[2] end
    end
  end
  body = body or ""
  if body:find("<[Ii][Nn][Pp][Uu][Tt]") then
    local list = {}
    for tag in body:gmatch("<[Ii][Nn][Pp][Uu][Tt]%s[^>]*>") do
      local name = tag:match('[Nn][Aa][Mm][Ee]%s*=%s*"([^"]*)"') or tag:match("[Nn][Aa][Mm][Ee]%s*=%s*'([^']*)'")
      local value = tag:match('[Vv][Aa][Ll][Uu][Ee]%s*=%s*"([^"]*)"') or tag:match("[Vv][Aa][Ll][Uu][Ee]%s*=%s*'([^']*)'") or ""
      if name then
        value = value:gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&#39;", "'"):gsub("&amp;", "&")
        list[#list + 1] = { name, value }
      end
    end
    return list
  end
  return (body:gsub("^%s+", ""):gsub("%s+$", ""))
end
pay.answer_of = answer_of

--- Build a request message, POST it to the bank (opts.url overrides the endpoint) with
-- giro.http, and verify the answer with the message named by the definition's `answer`.
-- opts: key, version, env, url, timeout, ca_file.  Returns result, request or nil, reason, kind
-- where kind (giro.errors) is "input" (bad input or a bad answer), "usage" (no such message,
-- no endpoint) or "env" (the exchange failed).
function Bank:send(message, fields, opts)
  opts = opts or {}
  local m, err = self:message(message)
  if not m then return nil, err, "usage" end
  local req, berr = m:build(fields, opts)
  if not req then return nil, berr, "input" end
  local answer = m.def.answer
  local am = answer and self:message(answer)
  if not am then return nil, self.name .. " " .. message .. ": the definition names no answer message", "usage" end
  local url = opts.url or req:url()
  if not url then return nil, self.name .. " " .. message .. ": no endpoint (give --url)", "usage" end
  local http = require("giro.http")
  local status, headers, body = http.request({
    method = req:method(), url = url, timeout = opts.timeout or 30, ca_file = opts.ca_file,
    headers = { { "Content-Type", "application/x-www-form-urlencoded; charset=" .. req:charset() } },
    body = req:body(),
  })
  if not status then return nil, "request to the bank failed: " .. tostring(headers), "env", req end
  if status >= 400 then return nil, "the bank answered HTTP " .. status, "env", req end
  local res, verr = am:verify(answer_of(status, headers, body), { key = opts.key })
  if not res then return nil, "the answer was rejected: " .. verr, "input", req end
  return res, req
end

function Bank:query(fields, opts) return self:send("query", fields, opts) end
function Bank:refund(fields, opts) return self:send("refund", fields, opts) end

---------------------------------------------------------------------------------------------------
-- Rendering

local JSON_NAMED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return JSON_NAMED[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end
pay.json_string = json_string

local function json_or_null(v) return v and json_string(v) or "null" end

local function json_list(strings)
  local parts = {}
  for i, v in ipairs(strings) do parts[i] = json_string(v) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- '{"name":..,"value":..}' for each { name, value } pair of a list
local function json_fields(list)
  local parts = {}
  for i, f in ipairs(list) do
    parts[i] = '{"name":' .. json_string(f[1]) .. ',"value":' .. json_string(f[2]) .. "}"
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local function html_escape(s)
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
                              ["'"] = "&#39;" }))
end
pay.html_escape = html_escape

--- A request as text: "lines" (NAME=VALUE per line, spec order, MAC included), "json"
-- ({ bank, message, version, action, method, charset, fields = [{name, value}] }) or "html"
-- (a POST form with hidden inputs; the browser sends it in the bank's charset).  UTF-8 output.
function pay.render(req, fmt)
  fmt = fmt or "lines"
  local fields = req:fields()
  if fmt == "lines" then
    local out = {}
    for i, f in ipairs(fields) do out[i] = f[1] .. "=" .. f[2] end
    return table.concat(out, "\n") .. "\n"
  elseif fmt == "json" then
    return '{"bank":' .. json_string(req:bank().name) .. ',"message":' .. json_string(req:message().name)
      .. ',"version":' .. json_or_null(req:version()) .. ',"action":' .. json_or_null(req:url())
      .. ',"method":' .. json_string(req:method()) .. ',"charset":' .. json_string(req:charset())
      .. ',"fields":' .. json_fields(fields) .. "}\n"
  elseif fmt == "html" then
    local out = { string.format('<form method="%s" action="%s" accept-charset="%s">', req:method(),
      html_escape(req:url() or ""), req:charset()) }
    for _, f in ipairs(fields) do
      out[#out + 1] = string.format('  <input type="hidden" name="%s" value="%s">', html_escape(f[1]),
        html_escape(f[2]))
    end
    out[#out + 1] = '  <button type="submit">' .. html_escape(req:bank().title or req:bank().name) .. "</button>"
    out[#out + 1] = "</form>"
    return table.concat(out, "\n") .. "\n"
  end
  error("render: format must be lines, json or html", 2)
end

--- A verification result as text: "lines" (NAME=VALUE in spec order, then "# CODE: meaning
-- (status)" when the message carries a code, then "# note" for each of the definition's notes) or
-- "json" (the same, notes as a list of strings).  Parameters the definition does not know (res.extra,
-- e.g. the shop's own in its return URL) are not printed.
function pay.render_result(res, fmt)
  fmt = fmt or "lines"
  if fmt == "json" then
    local present = {}
    for _, name in ipairs(res.order) do
      local v = res.fields[name]
      if v then present[#present + 1] = { name, v } end
    end
    return '{"bank":' .. json_string(res.bank) .. ',"message":' .. json_string(res.message)
      .. ',"version":' .. json_or_null(res.version) .. ',"valid":true,"code":' .. json_or_null(res.code)
      .. ',"status":' .. json_or_null(res.status) .. ',"meaning":' .. json_or_null(res.meaning)
      .. ',"fields":' .. json_fields(present) .. ',"notes":' .. json_list(res.notes or {}) .. "}\n"
  end
  local out = {}
  for _, name in ipairs(res.order) do
    local v = res.fields[name]
    if v then out[#out + 1] = name .. "=" .. v end
  end
  if res.code then
    out[#out + 1] = "# " .. res.code .. ": " .. tostring(res.meaning) .. (res.status and (" (" .. res.status .. ")") or "")
  end
  for _, note in ipairs(res.notes or {}) do out[#out + 1] = "# " .. note end
  return table.concat(out, "\n") .. "\n"
end

return pay
