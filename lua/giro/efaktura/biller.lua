--- giro.efaktura.biller: a biller's rule file, loaded sandboxed, and the decisions it makes.
--
--   local biller = require("giro.efaktura.biller")
--   local b, err = biller.load("rules/billers/default.lua")   -- or a name: "default"
--   b:serves("NOR999999999-1")            --> true when the rule is for this ThorContentProviderId
--   b:customer_number(request)             --> the customer number the typed reference maps to
--   b:lookup(number, request, reg, ann)    --> customer or nil (rule's own lookup, if any)
--   local d = b:decide(request, customer, ann) --> { answer = "A"|"N", reason, message, why, customer, hold }
--
-- request is the record's fields (leaf name -> value) exactly as read; ann (optional) the
-- engine's own annotations beside them: { customer_number, type = "EnrollmentAdd"|..., line,
-- agreement = the agreement's status or nil }.  Neither is changed.  The rule sees one view
-- of both (request.FirstName and request.customer_number alike, docs/efaktura.md).
--
-- A rule file returns a table (see rules/billers/default.lua and docs/efaktura.md):
--   id               ThorContentProviderId(s) the rule is for: a string or a list (nil: any)
--   options          { service_provider_name = "8080", name_match = "normal",
--                      hold = { "01" } (a list of outcomes), { accept = false, ["01"] = true }
--                      or function(request, customer, decision) }
--   customer_number  function(account, request) -> customer number (default: the account, spaces removed)
--   lookup           function(number, request, register) -> customer (default: the --db customer register)
--   validate         function(request, customer) -> decision (required)
-- A decision is a table: { accept = true, why = "..." } or { reason = "01"|"02"|"03",
-- message = "own text (max 100)", why = "..." }; optionally customer = "N" and hold = true.
-- As shorthand validate may return "accept" or "01"/"02"/"03", then an optional why.
--
-- Unknown keys in the rule table, options, options.hold or a decision are refused with
-- the file, line and the nearest allowed key.  Rule functions get a copy-on-write view of the
-- request and the customer: what giro echoes and keys on is what the file said.
-- Rules run through giro.rules (sandbox, instruction budget, memory cap).  A rule that
-- raises or breaks the contract makes b:decide raise "FILE:LINE: ..." (the caller stops
-- the whole file: a broken rule must not produce answers).
local C = require("giro.efaktura.constants")
local decision = require("giro.efaktura.decision")

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

local errors = require("giro.errors")

biller.KEYS = { "id", "options", "customer_number", "lookup", "validate" }
biller.OPTION_KEYS = { "service_provider_name", "name_match", "hold" }
biller.HOLD_KEYS = { "accept", table.unpack(C.REASONS) }
biller.DECISION_KEYS = { "accept", "answer", "reason", "message", "why", "customer", "hold" }
local NAME_MATCH = { strict = true, normal = true, loose = true }

local function where_in(path, key)
  local line = rules.line_of(path, key)
  return line and (path .. ":" .. line) or path
end

-- options.hold as a set of outcomes: { ["01"] = true } or the list form { "01", "accept" }
local function hold_set(h, path)
  local ok, err = rules.check_keys(path, h, biller.HOLD_KEYS, "options.hold", { list = true })
  if not ok then return nil, err end
  local set = {}
  for k, v in next, h do
    if math.type(k) == "integer" then
      if not (v == "accept" or decision.reason(v)) then
        return nil, string.format("%s: options.hold[%d] is %s: expected \"accept\", \"01\", \"02\" or \"03\"",
          where_in(path, "hold"), k, type(v) == "string" and errors.quote(v) or ("a " .. type(v)))
      end
      set[v] = true
    else
      if type(v) ~= "boolean" then
        return nil, string.format("%s: options.hold[%q] must be true or false, not a %s", where_in(path, "hold"), k, type(v))
      end
      set[k] = v or nil
    end
  end
  return set
end

local function check_shape(t, path)
  if type(t) ~= "table" then return nil, path .. ": a biller rule must return a table" end
  local ok, kerr = rules.check_keys(path, t, biller.KEYS, "the biller rule table")
  if not ok then return nil, kerr end
  if type(t.validate) ~= "function" then return nil, path .. ": the rule table lacks a validate(request, customer) function" end
  for _, f in ipairs({ "customer_number", "lookup" }) do
    if t[f] ~= nil and type(t[f]) ~= "function" then return nil, string.format("%s: %s must be a function", where_in(path, f), f) end
  end
  if t.id ~= nil and type(t.id) ~= "string" and type(t.id) ~= "table" then
    return nil, where_in(path, "id") .. ": id must be a ThorContentProviderId string or a list of them"
  end
  if type(t.id) == "table" then
    for i, v in ipairs(t.id) do
      if type(v) ~= "string" then return nil, string.format("%s: id[%d] must be a string", where_in(path, "id"), i) end
    end
  end
  local o = t.options
  if o ~= nil and type(o) ~= "table" then return nil, where_in(path, "options") .. ": options must be a table" end
  o = o or {}
  ok, kerr = rules.check_keys(path, o, biller.OPTION_KEYS, "options")
  if not ok then return nil, kerr end
  local spn = o.service_provider_name
  if spn ~= nil and not C.SERVICE_PROVIDER_NAMES[spn] then
    return nil, string.format("%s: options.service_provider_name %s: the response XSD allows 8080, THOR or Thor",
      where_in(path, "service_provider_name"), errors.quote(spn))
  end
  if o.name_match ~= nil and not NAME_MATCH[o.name_match] then
    return nil, string.format("%s: options.name_match %s: expected \"strict\", \"normal\" or \"loose\"",
      where_in(path, "name_match"), errors.quote(o.name_match))
  end
  if o.hold ~= nil and type(o.hold) ~= "table" and type(o.hold) ~= "function" then
    return nil, where_in(path, "hold") .. ": options.hold must be a table (a list of outcomes or a set) or a function"
  end
  if type(o.hold) == "table" then
    local set, herr = hold_set(o.hold, path)
    if not set then return nil, herr end
  end
  return true
end

--- Check a loaded rule table against the biller contract: true or nil, "FILE[:LINE]: message".
biller.check = check_shape

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
  self.service_provider_name = o.service_provider_name or C.DEFAULT_SERVICE_PROVIDER_NAME
  if type(t.id) == "string" then
    self.ids = { [t.id] = true }
  elseif type(t.id) == "table" then
    self.ids = {}
    for _, v in ipairs(t.id) do self.ids[v] = true end
  else
    self.ids = nil
  end
  self.has_lookup = t.lookup ~= nil
  self.hold_set = type(o.hold) == "table" and hold_set(o.hold, self.path) or nil
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
  local ids = self.ids
  if not ids then return true end
  if ids[id] then return true end
  return ids[(id:gsub("^%s+", ""):gsub("%s+$", ""))] == true
end

function B:ids_text()
  if not self.ids then return "any" end
  local l = {}
  for k in pairs(self.ids) do l[#l + 1] = k end
  table.sort(l)
  return table.concat(l, ", ")
end

-- "FILE:LINE" of the rule's function `name` (where it is defined)
local function fn_where(self, name)
  local f = rules.unwrap(self.rules[name]) or self.rules[name]
  local info = type(f) == "function" and debug.getinfo(f, "S")
  if info and info.source:sub(1, 1) == "@" and info.linedefined > 0 then
    return info.source:sub(2) .. ":" .. info.linedefined
  end
  return self.path
end

-- " (record REQUEST:LINE, BillerAccountNumber "...")": which request made the rule fail
local function record_text(self, request, line)
  if type(request) ~= "table" then return "" end
  line = line or request.line
  local at = (self.request_name or "request") .. (line and (":" .. tostring(line)) or "")
  local acc = request.BillerAccountNumber
  return string.format(" (record %s%s)", at, acc and (", BillerAccountNumber " .. errors.quote(acc)) or "")
end

local function rule_error(self, what, e, request, line)
  local msg = rules.error_text(e)
  if not msg:find(self.path, 1, true) then
    local fn = what:match("^[%w_]+")
    msg = fn_where(self, fn ~= "options" and fn or "options") .. ": " .. msg
  end
  error(string.format("biller rule %s failed: %s%s", what, msg, record_text(self, request, line)), 0)
end

-- What a rule gets to see of a request or a customer: a copy-on-write view.  Reading gives the
-- original's values, pairs() walks them (and what the rule set), and assigning
-- (request.BillerAccountNumber = ...) stores into the view only: what giro echoes and keys on
-- is what the file said.  A table inside is viewed the same way.  (A view, not a copy: copying
-- every request's ~20 leaves cost a fifth of `process`'s time in allocation and GC.)
local view

local function view_pairs(self)
  local mt = getmetatable(self)
  local t, ann = mt.__index_of, mt.__ann
  local phase = 1     -- 1: the original's keys, 2: the annotations', 3: what the rule set
  local function step(_, k)
    if phase == 1 then
      local nk = next(t, k)
      if nk ~= nil then return nk, self[nk] end
      phase, k = ann and 2 or 3, nil
    end
    if phase == 2 then
      local nk = next(ann, k)
      while nk ~= nil and rawget(t, nk) ~= nil do nk = next(ann, nk) end
      if nk ~= nil then return nk, self[nk] end
      phase, k = 3, nil
    end
    local nk, nv = next(self, k)
    while nk ~= nil and (rawget(t, nk) ~= nil or (ann and rawget(ann, nk) ~= nil)) do nk, nv = next(self, nk) end
    return nk, nv
  end
  return step, self, nil
end

local function view_len(self) return #getmetatable(self).__index_of end

-- view(t [, ann]): ann, the engine's annotations of a record, is read through after t's own
-- keys (scalars only).  A table inside t is viewed the same way, on first read.  One closure
-- per view: checking t for nested tables first (to use t itself as __index) walked all of a
-- request's ~20 leaves and cost more than the closure.
function view(t, ann)
  if type(t) ~= "table" then return t end
  return setmetatable({}, {
    __index_of = t, __ann = ann,
    __index = function(self, k)
      local v = t[k]
      if v == nil then
        if ann ~= nil then return ann[k] end
        return nil
      end
      if type(v) == "table" then
        v = view(v)
        rawset(self, k, v)      -- the same view on the next read
      end
      return v
    end,
    __pairs = view_pairs,
    __len = view_len,
  })
end
local snapshot = view

-- The rule's view of a record: the request's fields and, beside them, the engine's
-- annotations (read through; the fields win, though no leaf name is an annotation's).
local record_view = view

--- The customer number for the reference the consumer typed (line: the record's line).
function B:customer_number(request, line)
  local f = self.rules.customer_number
  local account = request.BillerAccountNumber
  if not f then return (account:gsub("%s", "")) end
  local ok, n = pcall(f, account, snapshot(request))
  if not ok then rule_error(self, "customer_number", n, request, line) end
  if n == nil or n == false then return nil end
  if type(n) == "number" then n = math.tointeger(n) and string.format("%d", n) or tostring(n) end
  if type(n) ~= "string" then
    rule_error(self, "customer_number", "returned a " .. type(n) .. ", expected a string", request, line)
  end
  return n
end

-- A plain copy of a customer row for the rule's lookup: what a rule function returns crosses
-- back as its raw contents (giro.rules drops metatables), so a view would come back empty.
local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in next, t do c[k] = copy(v) end
  return c
end

--- The rule's own customer lookup; reg offers customer(number) to it.
function B:lookup(number, request, reg, ann)
  local f = self.rules.lookup
  local api = { customer = function(n) return copy(reg:customer(n)) end }
  local ok, c = pcall(f, number, record_view(request, ann), api)
  local line = ann and ann.line
  if not ok then rule_error(self, "lookup", c, request, line) end
  if c ~= nil and type(c) ~= "table" then
    rule_error(self, "lookup", "returned a " .. type(c) .. ", expected a customer table or nil", request, line)
  end
  return c
end

local SCALAR = { string = true, number = true }
local SCALAR_FIELDS = { "why", "customer", "message", "reason" }
local DECISION_KEY = {}
for _, k in ipairs(biller.DECISION_KEYS) do DECISION_KEY[k] = true end

local function vfail(self, request, line, msg) rule_error(self, "validate", msg, request, line) end

--- Normalise what validate returned into a decision (raises on a contract breach).
-- Runs for every decided record: the checks read the table once and build no closures.
function B:normalise(r, why2, customer, request, ann)
  local line = ann and ann.line
  if type(r) == "table" then
    for k in next, r do
      if not DECISION_KEY[k] then
        local ok, kerr = rules.check_keys(self.path, r, biller.DECISION_KEYS, "the decision validate returned")
        if not ok then vfail(self, request, line, kerr) end
      end
    end
    for i = 1, #SCALAR_FIELDS do
      local k = SCALAR_FIELDS[i]
      local v = r[k]
      if v ~= nil and not SCALAR[type(v)] then
        vfail(self, request, line, string.format("decision field %s is a %s, expected a string", k, type(v)))
      end
    end
    if r.hold ~= nil and type(r.hold) ~= "boolean" then
      vfail(self, request, line, string.format("decision field hold is a %s, expected true or false", type(r.hold)))
    end
    if r.accept ~= nil and type(r.accept) ~= "boolean" then
      vfail(self, request, line, string.format("decision field accept is a %s, expected true or false", type(r.accept)))
    end
  end
  if why2 ~= nil and not SCALAR[type(why2)] then
    vfail(self, request, line, string.format("the second value (why) is a %s, expected a string", type(why2)))
  end
  local d
  if type(r) == "string" then
    if r == "accept" or r == "A" then
      d = { answer = "A", reason = "", message = "", why = why2, customer = nil, hold = nil }  -- sized for all six
    elseif decision.reason(r) then
      d = { answer = "N", reason = r, message = nil, why = why2, customer = nil, hold = nil }
    else
      vfail(self, request, line, string.format("returned %s; expected \"accept\", \"01\", \"02\" or \"03\"", errors.quote(r)))
    end
  elseif type(r) == "table" then
    if r.accept == true or r.answer == "A" then
      d = { answer = "A", reason = "", message = "", why = r.why, customer = r.customer, hold = r.hold }
    elseif r.reason ~= nil then
      local rok, rerr = decision.reason(r.reason)
      if not rok then vfail(self, request, line, rerr) end
      d = { answer = "N", reason = r.reason, message = r.message, why = r.why, customer = r.customer, hold = r.hold }
    else
      vfail(self, request, line, "returned a table with neither accept = true nor reason")
    end
  else
    vfail(self, request, line, "returned " .. type(r) .. "; expected a decision table")
  end
  if d.answer == "N" then
    local text, merr = decision.message(d.message, d.reason)
    if not text then vfail(self, request, line, merr) end
    d.message = text
  else
    d.reason, d.message = "", ""
  end
  local why = d.why
  if why ~= nil and (type(why) ~= "string" or #why > 1000) then d.why = errors.clip(tostring(why), 1000) end
  if d.customer ~= nil then
    if type(d.customer) == "number" then
      d.customer = math.tointeger(d.customer) and string.format("%d", d.customer) or tostring(d.customer)
    end
    if #d.customer > 200 then vfail(self, request, line, string.format("customer %s is too long", errors.quote(d.customer))) end
  end
  if d.customer == nil and customer then d.customer = customer.account_number end
  return d
end

--- Ask the rule for a decision on request (leaf names as in the file), customer (or nil)
-- and the engine's annotations ann (optional, see the module comment).
function B:decide(request, customer, ann)
  local ok, r, why2 = pcall(self.rules.validate, record_view(request, ann), snapshot(customer))
  if not ok then rule_error(self, "validate", r, request, ann and ann.line) end
  local d = self:normalise(r, why2, customer, request, ann)
  d.hold = self:holds(d, request, customer, ann)
  return d
end

--- Does the hold policy keep this decision for a person to look at?
function B:holds(d, request, customer, ann)
  if d.hold ~= nil then return d.hold == true end
  local h = self.options.hold
  if h == nil then return false end
  local outcome = d.answer == "A" and "accept" or d.reason
  if type(h) == "table" then return (self.hold_set or {})[outcome] == true end
  local ok, r = pcall(h, record_view(request, ann), snapshot(customer),
    { answer = d.answer, reason = d.reason, message = d.message, why = d.why })
  local line = ann and ann.line
  if not ok then rule_error(self, "options.hold", r, request, line) end
  if r ~= nil and type(r) ~= "boolean" then
    rule_error(self, "options.hold", "returned a " .. type(r) .. ", expected true or false", request, line)
  end
  return r == true
end

return biller
