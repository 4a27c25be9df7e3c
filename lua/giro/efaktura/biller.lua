--- giro.efaktura.biller: a biller's rule file, loaded sandboxed, and the decisions it makes.
--
--   local biller = require("giro.efaktura.biller")
--   local b, err = biller.load("rules/billers/default.lua")   -- or a name: "default"
--   b:serves("NOR999999999-1")            --> true when the rule is for this ThorContentProviderId
--   b:customer_number(request)             --> the customer number the typed reference maps to
--   b:lookup(number, request, reg)         --> customer or nil (rule's own lookup, if any)
--   local d = b:decide(request, customer)  --> { answer = "A"|"N", reason, message, why, customer, hold }
--
-- A rule file returns a table (see rules/billers/default.lua and docs/efaktura.md):
--   id               ThorContentProviderId(s) the rule is for: a string or a list (nil: any)
--   options          { service_provider_name = "8080", name_match = "normal",
--                      hold = { accept = false, ["01"] = true, ... } or function(request, customer, decision) }
--   customer_number  function(account, request) -> customer number (default: the account, spaces removed)
--   lookup           function(number, request, register) -> customer (default: the --db customer register)
--   validate         function(request, customer) -> decision (required)
-- A decision is a table: { accept = true, why = "..." } or { reason = "01"|"02"|"03",
-- message = "own text (max 100)", why = "..." }; optionally customer = "N" and hold = true.
-- As shorthand validate may return "accept" or "01"/"02"/"03", then an optional why.
--
-- Rules run through giro.rules (sandbox, instruction budget, memory cap).  A rule that
-- raises or breaks the contract makes b:decide raise "FILE:LINE: ..." (the caller stops
-- the whole file: a broken rule must not produce answers).
local response = require("giro.efaktura.response")

local biller = {}

-- Modules a biller rule may require besides giro.rules' defaults.
biller.GRANT = { "giro.efaktura.names", "giro.hash", "giro.ref", "giro.checkdigit" }

local rules = require("giro.rules")

--- Where a biller rule lives: a path as given, or a name under rules/billers/.
function biller.find(name)
  if name:find("/", 1, true) or name:match("%.lua$") then return name end
  return rules.find("biller", name) or name
end

local B = {}
B.__index = B

local function check_shape(t, path)
  if type(t) ~= "table" then return nil, path .. ": a biller rule must return a table" end
  if type(t.validate) ~= "function" then return nil, path .. ": the rule table lacks a validate(request, customer) function" end
  for _, f in ipairs({ "customer_number", "lookup" }) do
    if t[f] ~= nil and type(t[f]) ~= "function" then return nil, string.format("%s: %s must be a function", path, f) end
  end
  if t.id ~= nil and type(t.id) ~= "string" and type(t.id) ~= "table" then
    return nil, path .. ": id must be a ThorContentProviderId string or a list of them"
  end
  local o = t.options
  if o ~= nil and type(o) ~= "table" then return nil, path .. ": options must be a table" end
  o = o or {}
  local spn = o.service_provider_name
  if spn ~= nil and not (spn == "8080" or spn == "THOR" or spn == "Thor") then
    return nil, string.format("%s: options.service_provider_name %q: the response XSD allows 8080, THOR or Thor", path, tostring(spn))
  end
  if o.hold ~= nil and type(o.hold) ~= "table" and type(o.hold) ~= "function" then
    return nil, path .. ": options.hold must be a table or a function"
  end
  return true
end

--- Load a biller rule file.  Returns the biller or nil, "FILE:LINE: message".
function biller.load(name, opts)
  opts = opts or {}
  local path = biller.find(name)
  local t, err = rules.load(path, { grant = biller.GRANT, env = opts.env })
  if not t then return nil, err end
  local ok, e = check_shape(t, path)
  if not ok then return nil, e end
  local self = setmetatable({ path = path, rules = t, opts = opts }, B)
  self:configure()
  return self
end

function B:configure()
  local t = self.rules
  local o = t.options or {}
  self.options = o
  self.service_provider_name = o.service_provider_name or "8080"
  if type(t.id) == "string" then
    self.ids = { [t.id] = true }
  elseif type(t.id) == "table" then
    self.ids = {}
    for _, v in ipairs(t.id) do self.ids[v] = true end
  else
    self.ids = nil
  end
  self.has_lookup = t.lookup ~= nil
end

--- Re-read the rule file if it changed (giro.rules swaps the new version into the same
-- table).  Returns true, or nil + message when the new text fails (the old rule stays).
function B:reload()
  local _, errors = rules.reload()
  self:configure()
  for _, e in ipairs(errors or {}) do
    if tostring(e):find(self.path, 1, true) then return nil, e end
  end
  return true
end

--- Is this rule for records addressed to ThorContentProviderId id?
function B:serves(id)
  if not self.ids then return true end
  return self.ids[(id:gsub("^%s+", ""):gsub("%s+$", ""))] == true
end

function B:ids_text()
  if not self.ids then return "any" end
  local l = {}
  for k in pairs(self.ids) do l[#l + 1] = k end
  table.sort(l)
  return table.concat(l, ", ")
end

local function rule_error(self, what, e)
  local msg = tostring(e)
  if not msg:find(self.path, 1, true) then msg = self.path .. ": " .. msg end
  error(string.format("biller rule %s failed: %s", what, msg), 0)
end

--- The customer number for the reference the consumer typed.
function B:customer_number(request)
  local f = self.rules.customer_number
  local account = request.BillerAccountNumber
  if not f then return (account:gsub("%s", "")) end
  local ok, n = pcall(f, account, request)
  if not ok then rule_error(self, "customer_number", n) end
  if n == nil or n == false then return nil end
  if type(n) == "number" then n = math.tointeger(n) and string.format("%d", n) or tostring(n) end
  if type(n) ~= "string" then rule_error(self, "customer_number", "returned a " .. type(n) .. ", expected a string") end
  return n
end

--- The rule's own customer lookup; reg offers customer(number) to it.
function B:lookup(number, request, reg)
  local f = self.rules.lookup
  local api = { customer = function(n) return reg:customer(n) end }
  local ok, c = pcall(f, number, request, api)
  if not ok then rule_error(self, "lookup", c) end
  if c ~= nil and type(c) ~= "table" then rule_error(self, "lookup", "returned a " .. type(c) .. ", expected a customer table or nil") end
  return c
end

--- Normalise what validate returned into a decision (raises on a contract breach).
function B:normalise(r, why2, customer)
  local d
  if type(r) == "string" then
    if r == "accept" or r == "A" then
      d = { answer = "A", why = why2 }
    elseif response.MESSAGES[r] then
      d = { answer = "N", reason = r, why = why2 }
    else
      rule_error(self, "validate", string.format("returned %q; expected \"accept\", \"01\", \"02\" or \"03\"", r))
    end
  elseif type(r) == "table" then
    if r.accept == true or r.answer == "A" then
      d = { answer = "A", why = r.why, customer = r.customer, hold = r.hold }
    elseif r.reason ~= nil then
      if not response.MESSAGES[r.reason] then
        rule_error(self, "validate", string.format("reason %q: expected \"01\", \"02\" or \"03\"", tostring(r.reason)))
      end
      d = { answer = "N", reason = r.reason, message = r.message, why = r.why, customer = r.customer, hold = r.hold }
    else
      rule_error(self, "validate", "returned a table with neither accept = true nor reason")
    end
  else
    rule_error(self, "validate", "returned " .. type(r) .. "; expected a decision table")
  end
  if d.answer == "N" then
    if d.message == nil or d.message == "" then d.message = response.MESSAGES[d.reason] end
    if type(d.message) ~= "string" then rule_error(self, "validate", "message must be a string") end
    local n = utf8.len(d.message)
    if not n then rule_error(self, "validate", "message is not UTF-8 text") end
    if n > 100 then rule_error(self, "validate", string.format("message has %d characters (BillerMessage holds at most 100)", n)) end
  else
    d.reason, d.message = "", ""
  end
  if d.why ~= nil then d.why = tostring(d.why) end
  if d.customer ~= nil then d.customer = tostring(d.customer) end
  if d.customer == nil and customer then d.customer = customer.account_number end
  return d
end

--- Ask the rule for a decision on request (leaf names as in the file) and customer (or nil).
function B:decide(request, customer)
  local ok, r, why2 = pcall(self.rules.validate, request, customer)
  if not ok then rule_error(self, "validate", r) end
  local d = self:normalise(r, why2, customer)
  d.hold = self:holds(d, request, customer)
  return d
end

--- Does the hold policy keep this decision for a person to look at?
function B:holds(d, request, customer)
  if d.hold ~= nil then return d.hold == true end
  local h = self.options.hold
  if h == nil then return false end
  local outcome = d.answer == "A" and "accept" or d.reason
  if type(h) == "table" then return h[outcome] == true end
  local ok, r = pcall(h, request, customer, { answer = d.answer, reason = d.reason, message = d.message, why = d.why })
  if not ok then rule_error(self, "options.hold", r) end
  return r == true
end

return biller
