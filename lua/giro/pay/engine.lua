--- The generic payment-message engine: turns a bank definition (plain data, see docs/banks.md)
-- into compiled plans that build requests and verify incoming messages.
--
-- Compilation happens once per definition: every field becomes two closures and a fast path
-- (formats.lua), every (message, version) a plan: flat arrays indexed by the field's position k in
-- the plan, two giro.record layouts (build, verify) and a MAC recipe.  Building or verifying a
-- message is then one giro.record call for the common case (layout:take of the input table,
-- layout:parse of a plain query string), else layout:collect with the closures for the values it
-- stops at; a few `post` checks; and one hash.joiner call for the MAC (joiner:equal compares it in
-- constant time when verifying).
--
--   local c = engine.compile(def)             -- nil, message on a bad definition
--   c.messages[name]:build(input, opts)       -- opts.key, opts.version, opts.today, opts.env
--   c.messages[name]:verify(input, opts)      -- opts.key, opts.expect
local hash = require("giro.hash")
local record = require("giro.record")
local url = require("giro.url")
local formats = require("giro.pay.formats")
local charset = require("giro.pay.charset")

local find, sub, upper, format = string.find, string.sub, string.upper, string.format
local concat, type, next, tostring = table.concat, type, next, tostring
local hex_join, equal, count_keys = hash.hex_join, hash.equal, record.count
local parse_query_map = url.parse_query_map

-- The methods every hash.joiner and every giro.record layout share, taken once from a throwaway
-- instance: the hot paths call them as locals, without a method lookup per call.
local joiner_hex, joiner_equal, layout_take, layout_parse
do
  local j, l = hash.joiner("sha256", "lower", "", false, {}), record.new({})
  joiner_hex, joiner_equal, layout_take, layout_parse = j.hex, j.equal, l.take, l.parse
end

local engine = {}

-- The keys a definition may use (docs/banks.md); anything else is refused with a suggestion,
-- so that `requird = true` cannot silently make a field optional.
engine.BANK_KEYS = { "name", "title", "charset", "endpoints", "messages", "protocol" }
engine.MESSAGE_KEYS = { "kind", "endpoint", "method", "answer", "version", "version_field", "versions",
  "default_version", "fields", "mac", "one_of", "codes", "validate", "describe" }
engine.FIELD_KEYS = { "format", "max", "min", "required", "value", "default", "values", "versions",
  "forbid", "lines", "width", "layout", "not_past", "blanks", "min_cents", "kind", "case", "any_case", "hexlen" }
engine.MAC_KEYS = { "field", "fields", "alg", "key", "sep", "trailing", "case", "any_case", "absent",
  "blanks", "key_length", "key_length_documented", "key_min", "versions" }
engine.CODES_KEYS = { "field", "values" }

-- nil, message for the first unknown key of t (path and line when the bank has a path)
local function check_keys(bank, t, allowed, what, list)
  local ok, err = require("giro.rules").check_keys(bank.path, t, allowed, what, { list = list })
  if ok then return true end
  return nil, err
end

local HEXLEN = { md5 = 32, sha1 = 40, sha256 = 64, sha512 = 128 }
local NO_OPTS = {}

local Message = {}
Message.__index = Message
-- A request is the table giro.record's collect made: the wire values at the plan's positions
-- 1..n, plus plan, mac and env (Message:build).
local Request = {}
Request.__index = Request

---------------------------------------------------------------------------------------------------
-- Compilation

local function set_of(list)
  if list == nil then return nil end
  if type(list) ~= "table" then list = { list } end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

-- The MAC recipe in force for one version: the message's recipe with recipe.versions[v] on top.
local function recipe_for(mac, version)
  if not mac then return nil end
  local r = {}
  for k, v in pairs(mac) do if k ~= "versions" then r[k] = v end end
  local over = mac.versions and mac.versions[version]
  if mac.versions and version and not over then return false end
  if over then for k, v in pairs(over) do r[k] = v end end
  return r
end

-- index: field name -> position in the message; k_of: that position -> position k in the plan
local function compile_mac(r, where, index, k_of)
  if not r.field then return nil, where .. ": mac.field is missing" end
  local alg = r.alg or "sha256"
  if not HEXLEN[alg] then return nil, where .. ": unknown MAC algorithm '" .. tostring(alg) .. "'" end
  if type(r.fields) ~= "table" then return nil, where .. ": mac.fields must list the fields" end
  local case = r.case or "upper"
  if case ~= "upper" and case ~= "lower" then return nil, where .. ": mac.case must be upper or lower" end
  local key = r.key or "last"
  if key ~= "first" and key ~= "last" then return nil, where .. ": mac.key must be first or last" end
  local absent = r.absent or "omit"
  if absent ~= "omit" and absent ~= "empty" and absent ~= "error" then
    return nil, where .. ": mac.absent must be omit, empty or error"
  end
  local m = {
    field = r.field, alg = alg, case = case, key_first = key == "first",
    sep = r.sep or "&", trailing = r.trailing ~= false, absent = absent, any_case = r.any_case,
    key_length = r.key_length, key_min = r.key_min or 1, blanks = r.blanks ~= false,
    key_documented = r.key_length_documented, where = where,
    ks = {}, names = {}, n = #r.fields,
  }
  local gi = index[r.field]
  m.mac_k = gi and k_of[gi]
  if not m.mac_k then
    return nil, where .. ": MAC field '" .. tostring(r.field) .. "' is not one of the message's fields"
  end
  for j, name in ipairs(r.fields) do
    local k = index[name] and k_of[index[name]]
    if not k then
      return nil, where .. ": MAC input '" .. tostring(name) .. "' is not one of the message's fields"
    end
    m.ks[j], m.names[j] = k, name
  end
  -- the parts for hash.joiner: 0 stands for the key; building has the values by position k,
  -- verifying by name (the parsed message itself)
  local by_k, by_name = { table.unpack(m.ks) }, { table.unpack(m.names) }
  table.insert(by_k, m.key_first and 1 or #by_k + 1, 0)
  table.insert(by_name, m.key_first and 1 or #by_name + 1, 0)
  m.joiner = hash.joiner(alg, case, m.sep, m.trailing, by_k)
  m.map_joiner = hash.joiner(alg, case, m.sep, m.trailing, by_name)
  m.omit = absent == "omit"
  return m
end

-- Compute the MAC over vals (indexed by the plan's k; by name when by_name) with the key: hex,
-- or nil, name of a missing field (absent = "error").
local function compute_mac(m, vals, key, by_name)
  if by_name then
    if m.omit then return joiner_hex(m.map_joiner, vals, key) end
    local t = {}
    for j = 1, m.n do t[m.ks[j]] = vals[m.names[j]] end
    vals = t
  end
  if m.absent ~= "omit" then
    local t, n = {}, 0
    if m.key_first then n = 1; t[1] = key end
    for j = 1, m.n do
      local v = vals[m.ks[j]]
      if v == nil and m.absent == "error" then return nil, m.names[j] end
      n = n + 1; t[n] = v or ""
    end
    if not m.key_first then t[n + 1] = key end
    return hex_join(m.alg, m.case, m.sep, m.trailing, t)
  end
  return joiner_hex(m.joiner, vals, key)
end
engine.compute_mac = compute_mac

-- key_length_documented: the length the bank's guide gives, where keys of other lengths work
-- (the MAC does not depend on it; public test environments hand out shorter keys): a key of
-- another length gets one warning on stderr per definition and length, and is used.
local warned = {}
function engine.warn(msg) io.stderr:write("giro: warning: ", msg, "\n") end

local function warn_key_length(m, n)
  local id = m.where .. "\0" .. n
  if warned[id] then return end
  warned[id] = true
  engine.warn(format("%s: the MAC key has %d characters; the bank documents %d for %s (using it)",
    m.where, n, m.key_documented, m.alg))
end

-- (the engine inlines the test of the common case: a string of the right length)
local function check_key(m, key)
  if type(key) ~= "string" then return nil, "key: no MAC key given" end
  local n = #key
  if m.key_documented and n ~= m.key_documented and n >= m.key_min then warn_key_length(m, n) end
  if m.key_length and n ~= m.key_length then
    return nil, format("key: expected %d characters for %s, got %d", m.key_length, m.alg, n)
  end
  if n < m.key_min then return nil, "key: the MAC key is empty" end
  return true
end

-- The giro.record layout of a plan for building or verifying, and the post checks of its fast
-- paths as two parallel lists (k, function).
local function compile_layout(plan, mode)
  local specs, post_k, post_fn = {}, {}, {}
  for k = 1, plan.n do
    local f = plan.fast[k][mode]
    local fixed = plan.fixed[k] or nil
    local spec = { name = plan.names[k] }
    spec.fixed = fixed
    if mode == "build" then
      spec.value = fixed or plan.default[k] or nil
      spec.required = plan.req[k] and k ~= plan.mac_k
      if k == plan.mac_k then f = nil end        -- computed: a given value is refused (slow path)
    else
      spec.required = plan.req[k] or fixed ~= nil
    end
    if f and not fixed then
      for key, v in pairs(f) do if key ~= "post" then spec[key] = v end end
      if f.post then post_k[#post_k + 1], post_fn[#post_fn + 1] = k, f.post end
      if f.not_past then plan.needs_today = true end
    end
    specs[k] = spec
  end
  -- a request is the table collect makes, with plan, mac and env (Message:build): room for them
  return record.new(specs, mode == "build" and 3 or 0), post_k, post_fn
end

local function layout_of(plan, mode)
  local layout, post_k, post = compile_layout(plan, mode)
  plan[mode .. "_layout"], plan[mode .. "_post_k"], plan[mode .. "_post"] = layout, post_k, post
  return layout
end

local function compile_plan(bank, mname, msg, version, fields, index, cs)
  local where = bank.name .. " " .. mname .. (version and (" version " .. version) or "")
  local plan = { bank = bank.name, message = mname, version = version, names = {}, k_of = {},
                 k_by_name = {}, req = {}, fixed = {}, default = {}, norm = {}, check = {}, fast = {},
                 n = 0 }
  local active = {}
  for i, f in ipairs(fields) do
    local vs = set_of(f.versions)
    if not vs or (version and vs[version]) then
      active[i] = true
      plan.n = plan.n + 1
      plan.k_of[i] = plan.n
    end
  end
  plan.active = active
  local r = recipe_for(msg.mac, version)
  if r == false then return nil, where .. ": no MAC recipe for this version" end
  local m
  if r then
    local err
    m, err = compile_mac(r, where, index, plan.k_of)
    if not m then return nil, err end
  end
  plan.mac = m
  plan.mac_k = m and m.mac_k
  local in_mac = {}
  if m then for _, k in ipairs(m.ks) do in_mac[k] = true end end
  for i, f in ipairs(fields) do
    local k = plan.k_of[i]
    if k then
      local name = f[1]
      plan.names[k] = name
      plan.k_by_name[name] = k
      local spec = f
      if k == plan.mac_k then
        spec = { name, "mac", hexlen = HEXLEN[m.alg], case = m.case, any_case = m.any_case }
      end
      local ctx = { cs = cs, noblank = (in_mac[k] and not m.blanks) or f.blanks == false }
      local norm, check, fast = formats.compile(spec, ctx)
      if not norm then return nil, where .. ": field " .. name .. ": " .. check end
      plan.norm[k], plan.check[k], plan.fast[k] = norm, check, fast
      local rq = f.required
      if type(rq) == "table" then rq = set_of(rq)[version] or false end
      plan.req[k] = (rq or k == plan.mac_k) and true or false
      -- a fixed value (`value`) or a `default`, per version when a table, normalised now so a
      -- definition's typo shows at compile time; false when the field has none
      for _, what in ipairs({ { "value", plan.fixed, "fixed" }, { "default", plan.default, "default" } }) do
        local v = f[what[1]]
        if type(v) == "table" then v = v[version] end
        if v ~= nil then
          local b, why = norm(v, 0)
          if not b then return nil, where .. ": field " .. name .. ": " .. what[3] .. " value: " .. why end
          v = b
        end
        what[2][k] = v or false
      end
      if version and i == msg.version_index then plan.version_k = k; plan.fixed[k] = version end
    end
  end
  -- verify may hand back the parsed map as the result's fields only when every value that the
  -- layout can accept is its own display value (fixed values are the only ones not from a shape)
  plan.plain_fixed = true
  for k = 1, plan.n do
    local fx = plan.fixed[k]
    if fx and cs.to_display(fx) ~= fx then plan.plain_fixed = false end
  end
  -- the giro.record layouts are made on first use (layout_of): most processes only build or verify
  if msg.one_of then
    local groups = type(msg.one_of[1]) == "table" and msg.one_of or { msg.one_of }
    plan.one_of = {}
    for _, g in ipairs(groups) do
      local ks = {}
      for _, name in ipairs(g) do
        if not index[name] then return nil, where .. ": one_of names unknown field " .. name end
        local k = plan.k_of[index[name]]
        if k then ks[#ks + 1] = k end              -- a field not used in this version is absent
      end
      plan.one_of[#plan.one_of + 1] = { names = g, ks = ks }
    end
  end
  return plan
end

local function check_message_keys(bank, mname, msg)
  local where = bank.name .. " " .. mname
  local ok, err = check_keys(bank, msg, engine.MESSAGE_KEYS, "message " .. where)
  if not ok then return nil, err end
  if type(msg.fields) == "table" then
    for i, f in ipairs(msg.fields) do
      if type(f) == "table" then
        ok, err = check_keys(bank, f, engine.FIELD_KEYS, where .. " field " .. tostring(f[1] or i), true)
        if not ok then return nil, err end
        for k in next, f do
          if math.type(k) == "integer" and k > 2 then
            return nil, string.format("%s: field %s: only { NAME, FORMAT, key = value... } (a third value [%d])",
              where, tostring(f[1] or i), k)
          end
        end
      end
    end
  end
  if type(msg.mac) == "table" then
    ok, err = check_keys(bank, msg.mac, engine.MAC_KEYS, where .. " mac")
    if not ok then return nil, err end
    if type(msg.mac.versions) == "table" then
      for v, over in pairs(msg.mac.versions) do
        if type(over) == "table" then
          ok, err = check_keys(bank, over, engine.MAC_KEYS, where .. " mac.versions[" .. tostring(v) .. "]")
          if not ok then return nil, err end
        end
      end
    end
  end
  if type(msg.codes) == "table" then
    ok, err = check_keys(bank, msg.codes, engine.CODES_KEYS, where .. " codes")
    if not ok then return nil, err end
  end
  return true
end

local function compile_message(bank, mname, msg, cs)
  local where = bank.name .. " " .. mname
  local kok, kerr = check_message_keys(bank, mname, msg)
  if not kok then return nil, kerr end
  if type(msg.fields) ~= "table" or #msg.fields == 0 then return nil, where .. ": no fields" end
  local c = setmetatable({ bank = bank, name = mname, def = msg, kind = msg.kind or "request",
                           fields = {}, index = {}, index_ci = {}, plans = {}, versions = {} }, Message)
  for i, f in ipairs(msg.fields) do
    if type(f) ~= "table" or type(f[1]) ~= "string" then
      return nil, where .. ": field " .. i .. " must be { NAME, FORMAT, ... }"
    end
    if c.index[f[1]] then return nil, where .. ": field " .. f[1] .. " is listed twice" end
    c.fields[i] = f
    c.index[f[1]] = i
    c.index_ci[upper(f[1])] = i
  end
  if msg.version_field then
    msg.version_index = c.index[msg.version_field]
    if not msg.version_index then
      return nil, where .. ": version_field " .. msg.version_field .. " is not a field"
    end
    if type(msg.versions) ~= "table" or #msg.versions == 0 then
      return nil, where .. ": versions must list the supported versions"
    end
    c.version_field = msg.version_field
  end
  local versions = msg.versions or { msg.version or false }
  for _, v in ipairs(versions) do
    local plan, err = compile_plan(bank, mname, msg, v or nil, c.fields, c.index, cs)
    if not plan then return nil, err end
    plan.msg = c
    c.plans[v or 1] = plan
    c.versions[#c.versions + 1] = v or nil
  end
  c.default_version = msg.default_version or versions[#versions] or nil
  -- without a version field a message has one plan (verify's lookup)
  if not c.version_field then c.only_plan = c.plans[1] or c.plans[c.versions[1]] end
  if msg.codes then
    local cf = msg.codes.field
    if not c.index[cf] then return nil, where .. ": codes.field " .. tostring(cf) .. " is not a field" end
    c.codes = msg.codes
  end
  return c
end

--- The compiled message `mname` of a compiled bank (compiled now if it was left for later), or
-- nil, message; nil alone when the definition has no such message.
function engine.message(bank, mname)
  local c = bank.messages[mname]
  if c then return c end
  local msg = bank.def.messages[mname]
  if msg == nil then return nil end
  if type(msg) ~= "table" then return nil, bank.name .. ": message " .. mname .. " must be a table" end
  -- work on a copy: compilation annotates it, and a sandboxed rule file's table stays untouched
  local e
  c, e = compile_message(bank, mname, copy(msg), bank.cs)
  if not c then return nil, e end
  bank.messages[mname] = c
  return c
end

--- Compile a definition table.  Returns the compiled bank or nil, message.  opts.path: the file
-- it came from (messages about unknown keys then name its file and line).  With opts.lazy each
-- message is compiled when engine.message first asks for it (a command that builds one message
-- does not pay for the others; their errors show when they are used, or in `giro pay banks`).
function engine.compile(def, name, opts)
  if type(def) ~= "table" then return nil, "a bank definition must be a table" end
  local bank = { name = def.name or name or "bank", title = def.title or def.name or name,
                 def = def, endpoints = def.endpoints or {}, messages = {}, order = {},
                 path = opts and opts.path }
  local kok, kerr = check_keys(bank, def, engine.BANK_KEYS, "the bank definition")
  if not kok then return nil, kerr end
  local cs, err = charset.get(def.charset or "ISO-8859-1")
  if not cs then return nil, bank.name .. ": " .. err end
  bank.charset = cs.name
  bank.cs = cs
  if type(def.messages) ~= "table" then return nil, bank.name .. ": messages is missing" end
  local names = {}
  for mname in pairs(def.messages) do names[#names + 1] = mname end
  local rank = { payment = 1, ["return"] = 2, query = 3, ["query-response"] = 4, refund = 5,
                 ["refund-response"] = 6 }
  table.sort(names, function(a, b)
    local ra, rb = rank[a] or 99, rank[b] or 99
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  bank.order = names
  if not (opts and opts.lazy) then
    for _, mname in ipairs(names) do
      local c, e = engine.message(bank, mname)
      if not c then return nil, e end
    end
  end
  return bank
end

---------------------------------------------------------------------------------------------------
-- Building

-- The reason an input table was refused: the first name that is not one of the plan's fields,
-- or `otherwise` (slow path, only on an error).
local function input_error(c, plan, input, otherwise)
  for name in pairs(input) do
    if type(name) ~= "string" then return "field names must be strings" end
    local gi = c.index[name]
    if not gi then
      local ci = c.index_ci[upper(name)]
      if ci then return "unknown field " .. formats.cut(name) .. " (did you mean " .. c.fields[ci][1] .. "?)" end
      return "unknown field " .. formats.cut(name) .. " for " .. c.bank.name .. " " .. c.name
    end
    if not plan.active[gi] then
      return name .. ": not used in version " .. tostring(plan.version)
    end
  end
  return otherwise
end

local last_today_in, last_today  -- one-entry cache of the parsed opts.today

-- A definition's hook (sandboxed by giro.rules when it comes from a file): its error is a reason.
-- A rule's texts reach messages cut short (a 30 MB reason is not printed whole), and a table
-- raised as an error is named by the file and line that raised it.
local function rule_text(e) return require("giro.rules").error_text(e) end
local function hook_reason(why)
  return require("giro.errors").clip(tostring(why or "rejected by the definition's validate hook"), 400)
end

local function run_hook(hook, fields, version)
  local ok, res, why = pcall(hook, fields, version)
  if not ok then return nil, "the definition's validate hook failed: " .. rule_text(res) end
  return res, why
end

function Message:plan_for(version)
  local plan = self.plans[version or 1]
  if plan then return plan end
  if version == nil then return nil, self.name .. ": a version is required" end
  return nil, format("%s %s: version %s is not supported (supported: %s)", self.bank.name, self.name,
    tostring(version), concat(self.versions, ", "))
end

-- The wire value of input value v for field k when building, or nil, reason (the slow path).
local function build_value(plan, k, v, today)
  local name = plan.names[k]
  if k == plan.mac_k then return nil, name .. ": computed by giro, do not give it" end
  local tv = type(v)
  if tv ~= "string" then
    if tv == "number" then v = tostring(v)
    else return nil, name .. ": expected a string, got a " .. tv end
  end
  local b, err = plan.norm[k](v, today)
  if not b then return nil, name .. ": " .. err end
  local fx = plan.fixed[k]
  if fx and b ~= fx then return nil, name .. ": must be " .. fx .. ", got " .. formats.cut(v) end
  return b
end

--- Build a request.  input: { NAME = value } in the bank's own field names (UTF-8 strings or
-- numbers); opts.key (required when the message has a MAC), opts.version, opts.today
-- (YYYYMMDD, YYYY-MM-DD or DD.MM.YYYY), opts.env ("production" | "test").
-- Returns a Request or nil, reason.
function Message:build(input, opts)
  opts = opts or NO_OPTS
  if type(input) ~= "table" then error("build: input must be a table of NAME = value", 2) end
  local vf = self.version_field
  local version = opts.version or (vf and input[vf]) or self.default_version
  local plan = self.plans[version or 1]
  if not plan then return self:plan_for(version) end
  local today = opts.today
  if today ~= nil then
    if today == last_today_in then
      today = last_today
    else
      local t = formats.date_value(today)
      if not t then return nil, "today: expected a date YYYYMMDD, YYYY-MM-DD or DD.MM.YYYY" end
      last_today_in, last_today = today, t
      today = t
    end
  end
  local m, key = plan.mac, opts.key
  if m then
    local n = type(key) == "string" and #key
    if not n or n ~= (m.key_length or m.key_documented or n) or n < m.key_min then
      local ok, kerr = check_key(m, key)
      if not ok then return nil, kerr end
    end
  end
  -- the layout takes every value already in wire form: all of them in the common case (take),
  -- else the others stop it at their field
  local layout = plan.build_layout or layout_of(plan, "build")
  local day = plan.needs_today and (today or formats.today()) or nil
  local vals = layout_take(layout, input, day)
  if not vals then
    local seen, from = 0, 1
    vals = nil   -- (take gave false: collect would only check)
    while true do
      local k, s
      vals, k, s = layout:collect(input, vals, from, day)
      seen = seen + s
      if not k then break end
      local v = input[plan.names[k]]
      if v == nil then return nil, plan.names[k] .. ": required" end
      local b, err = build_value(plan, k, v, today)
      if not b then return nil, err end
      vals[k], seen, from = b, seen + 1, k + 1
    end
    if seen ~= count_keys(input) then return nil, input_error(self, plan, input, "unexpected input") end
  end
  local post_k, post = plan.build_post_k, plan.build_post
  for i = 1, #post_k do
    local k = post_k[i]
    local b = vals[k]
    if b ~= nil and not post[i](b, today) then
      local err
      vals[k], err = build_value(plan, k, input[plan.names[k]] or b, today)
      if not vals[k] then return nil, err end
    end
  end
  if plan.one_of then
    for _, g in ipairs(plan.one_of) do
      local any = false
      for _, k in ipairs(g.ks) do if vals[k] ~= nil then any = true break end end
      if not any then return nil, "give at least one of " .. concat(g.names, ", ") end
    end
  end
  local hook = self.def.validate
  if hook then
    local ok, why = run_hook(hook, self:_map(plan, vals), plan.version)
    if not ok then return nil, hook_reason(why) end
  end
  local mac
  if m then
    local missing
    if m.omit then mac = joiner_hex(m.joiner, vals, key)
    else mac, missing = compute_mac(m, vals, key) end
    if not mac then return nil, missing .. ": required for the MAC" end
    vals[m.mac_k] = mac
  end
  -- the request is the values table itself (positions 1..n) with three named fields: one table
  -- fewer per message; giro.record sized its hash part for them
  vals.plan, vals.mac, vals.env = plan, mac, opts.env
  return setmetatable(vals, Request)
end

-- name → display value for the present fields (used by hooks, verify results and renderers)
function Message:_map(plan, vals)
  local out, to_display, names = {}, self.bank.cs.to_display, plan.names
  for k = 1, plan.n do
    local v = vals[k]
    if v ~= nil then out[names[k]] = to_display(v) end
  end
  return out
end

---------------------------------------------------------------------------------------------------
-- Requests

function Request:message() return self.plan.msg end
function Request:bank() return self.plan.msg.bank end
function Request:version() return self.plan.version end

--- The action URL of the request: the bank's endpoint for this message in env (default production).
function Request:url()
  local c = self.plan.msg
  local ep = c.bank.endpoints[c.def.endpoint or c.name]
  if type(ep) == "string" then return ep end
  if type(ep) ~= "table" then return nil end
  return ep[self.env or "production"] or ep.production
end

function Request:method() return self.plan.msg.def.method or "POST" end
function Request:charset() return self.plan.msg.bank.charset end

--- The ordered fields as a list of { name, value } with UTF-8 values (absent optional fields left out).
function Request:fields()
  local out, plan, to_display = {}, self.plan, self.plan.msg.bank.cs.to_display
  local vals = self
  for k = 1, plan.n do
    local v = vals[k]
    if v ~= nil then out[#out + 1] = { plan.names[k], to_display(v) } end
  end
  return out
end

--- The value of one field (UTF-8), nil when absent.
function Request:get(name)
  local k = self.plan.k_by_name[name]
  local v = k and self[k]
  return v and self.plan.msg.bank.cs.to_display(v) or nil
end

--- The ordered fields as a list of { name, value } with the bytes the bank receives.
function Request:wire()
  local out, plan, vals = {}, self.plan, self
  for k = 1, plan.n do
    local v = vals[k]
    if v ~= nil then out[#out + 1] = { plan.names[k], v } end
  end
  return out
end

--- The request as an application/x-www-form-urlencoded body in the bank's charset.
function Request:body()
  local parts, urlencode = {}, url.urlencode
  for _, p in ipairs(self:wire()) do parts[#parts + 1] = urlencode(p[1]) .. "=" .. urlencode(p[2]) end
  return concat(parts, "&")
end

---------------------------------------------------------------------------------------------------
-- Verifying

local function shown(cs, b)
  local d = cs.to_display(b)
  if #d > 40 then d = sub(d, 1, 37) .. "..." end
  return d
end

-- An incoming message as a map name -> wire value and its number of parameters, or nil, reason.
-- A string is a query string, a POST body or a whole URL (its query is used, a #fragment dropped);
-- a table is a map or a list of { name, value }.
local function input_map(input)
  local ti = type(input)
  if ti == "string" then
    local s = input
    local q = find(s, "?", 1, true)   -- plain finds: memchr speed, unlike a pattern class
    if q and (q == 1 or find(s, "^%a[%w+.%-]*://")) then s = sub(s, q + 1) end
    local h = find(s, "#", 1, true)
    if h then s = sub(s, 1, h - 1) end
    local map, n = parse_query_map(s)
    if not map then return nil, (n:gsub("^giro%.url%.parse_query_map: ", "")) end
    return map, n
  elseif ti == "table" then
    local map, n = {}, 0
    local list = input[1] ~= nil
    for a, b in (list and ipairs or pairs)(input) do
      local name, val = a, b
      if list then name, val = b[1], b[2] end
      if type(name) ~= "string" or type(val) ~= "string" then
        return nil, "message fields must be strings"
      end
      if map[name] ~= nil then return nil, "duplicate parameter " .. name end
      map[name], n = val, n + 1
    end
    return map, n
  end
  error("verify: the message must be a query string or a table", 3)
end

-- The map with every name spelled as the definition spells it (names match case-insensitively)
-- and the parameters the definition does not know set aside: map, known count, extra | nil, reason.
function Message:_canonical(map)
  local index, index_ci, fields = self.index, self.index_ci, self.fields
  local out, known, extra, spelled = {}, 0, nil, {}
  for name, val in next, map do
    local i = index[name] or index_ci[upper(name)]
    if i then
      local canon = fields[i][1]
      if out[canon] ~= nil then
        -- name the spelling that is not the definition's (the later one in a well-formed message)
        local other = spelled[canon]
        local dup = (other == canon or (name ~= canon and name > other)) and name or other
        return nil, "duplicate parameter " .. dup
      end
      out[canon], known, spelled[canon] = val, known + 1, name
    else
      extra = extra or {}
      extra[#extra + 1] = { name, val }
    end
  end
  if extra then table.sort(extra, function(x, y) return x[1] < y[1] end) end
  return out, known, extra
end

--- Verify an incoming message (query string, POST body, full URL, or a table of fields).
-- opts.key (when the message has a MAC), opts.expect = { NAME = value } compared after the MAC
-- holds (amounts numerically).  Returns a result or nil, reason:
--   { bank, message, version, fields = { NAME = value (UTF-8) }, order = { names in spec order },
--     extra = { {name, value}... } | nil, code, meaning, status }
function Message:verify(input, opts)
  opts = opts or NO_OPTS
  local map, count, plan
  local only = self.only_plan
  if only then
    -- the common case in one C call: a query string whose parameters are exactly fields of the
    -- plan, each value taken as it is, no escape, URL or fragment (giro.record's parse); false
    -- (also for a table) sends everything else the general way below
    local layout = only.verify_layout or layout_of(only, "verify")
    map, count = layout_parse(layout, input)
    if map then plan = only end
  end
  local checked = map and true or false
  local canonical, extra = false, nil
  if checked then
    -- parsed and checked by the layout
  elseif type(input) == "string" and not find(input, "?", 1, true) and not find(input, "#", 1, true) then
    -- a bare query string or body (no URL to strip): input_map's work without its call
    map, count = parse_query_map(input)
    if not map then return nil, (count:gsub("^giro%.url%.parse_query_map: ", "")) end
  else
    map, count = input_map(input)
    if not map then return nil, count end
  end
  local vf = self.version_field
  if checked then
    -- the plan is known
  elseif vf then
    local v = map[vf]
    if v == nil then
      map, count, extra = self:_canonical(map)
      if not map then return nil, count end
      canonical = true
      v = map[vf]
      if v == nil then return nil, "missing field " .. vf end
    end
    plan = self.plans[v]
    if not plan then
      return nil, format("%s: version %s is not supported (supported: %s)", vf,
        shown(self.bank.cs, v), concat(self.versions, ", "))
    end
  else
    plan = self.only_plan
  end
  local m, key = plan.mac, opts.key
  if m then
    local n = type(key) == "string" and #key
    if not n or n ~= (m.key_length or m.key_documented or n) or n < m.key_min then
      local ok, kerr = check_key(m, key)
      if not ok then return nil, kerr end
    end
  end
  local cs = self.bank.cs
  -- the layout only checks: the values stay in map (name -> wire value), which becomes the
  -- result's fields when no value needs converting for display
  local names, check, layout = plan.names, plan.check, plan.verify_layout or layout_of(plan, "verify")
  local plain = plan.plain_fixed
  while not checked do
    local seen, from = 0, 1
    while true do
      local _, k, s = layout:collect(map, false, from)
      seen = seen + s
      if not k then break end
      local b = map[names[k]]
      if b == nil then return nil, "missing field " .. names[k] end
      local fx = plan.fixed[k]
      if fx and b ~= fx then
        return nil, format("%s: expected '%s', got '%s'", names[k], fx, formats.cut(shown(cs, b)))
      end
      if not fx then
        local d, err = check[k](b)
        if not d then return nil, names[k] .. ": " .. err end
        if d ~= b then plain = false end
      end
      seen, from = seen + 1, k + 1
    end
    if seen == count then break end
    if canonical then
      for i, f in ipairs(self.fields) do
        if map[f[1]] ~= nil and not plan.active[i] then
          return nil, f[1] .. ": not used in version " .. tostring(plan.version)
        end
      end
      break   -- not reached: every known name is either active or not
    end
    -- names spelled another way or parameters the definition does not know: start again
    map, count, extra = self:_canonical(map)
    if not map then return nil, count end
    canonical = true
  end
  local post_k, post = plan.verify_post_k, plan.verify_post
  for i = 1, #post_k do
    local k = post_k[i]
    local b = map[names[k]]
    if b ~= nil and not post[i](b) then
      local d, err = check[k](b)
      if not d then return nil, names[k] .. ": " .. err end
      if d ~= b then plain = false end
    end
  end
  if plan.one_of then
    for _, g in ipairs(plan.one_of) do
      local any = false
      for _, k in ipairs(g.ks) do if map[names[k]] ~= nil then any = true break end end
      if not any then return nil, "missing field: at least one of " .. concat(g.names, ", ") end
    end
  end
  if m then
    local got, same = map[m.field], nil
    if m.omit then
      same = joiner_equal(m.map_joiner, map, key, got, m.any_case)   -- constant time, in C
    else
      local expected, missing = compute_mac(m, map, key, true)
      if not expected then return nil, "missing field " .. missing .. " (needed for the MAC)" end
      same = equal(got, expected) or (m.any_case and equal(upper(got), upper(expected)))
    end
    if not same then return nil, "MAC mismatch (" .. m.field .. ")" end
  end
  -- the map holds exactly the plan's fields; it is the result when no value needs converting
  local out = map
  if not plain then
    local to_display = cs.to_display
    out = {}
    for k = 1, plan.n do
      local b = map[names[k]]
      if b ~= nil then out[names[k]] = to_display(b) end
    end
  end
  local hook = self.def.validate
  if hook then
    local ok, why = run_hook(hook, out, plan.version)
    if not ok then return nil, hook_reason(why) end
  end
  local res = { bank = self.bank.name, message = self.name, version = plan.version, fields = out,
                order = names, extra = extra }
  local codes = self.codes
  if codes then
    local code = out[codes.field]
    local meaning = code and codes.values[code]
    if code and not meaning then
      return nil, codes.field .. ": unknown code '" .. formats.cut(shown(cs, code)) .. "'"
    end
    res.code = code
    if type(meaning) == "table" then
      res.meaning, res.status = meaning.text or meaning[2], meaning.status or meaning[1]
    else
      res.meaning = meaning
    end
  end
  local describe = self.def.describe
  if describe then
    local ok, notes = pcall(describe, out, plan.version)
    if not ok then return nil, "the definition's describe hook failed: " .. rule_text(notes) end
    if type(notes) == "table" and #notes > 0 then
      -- notes are printed: at most 20, each a short text
      local clip, kept = require("giro.errors").clip, {}
      for i = 1, math.min(#notes, 20) do kept[i] = clip(tostring(notes[i]), 400) end
      res.notes = kept
    end
  end
  if opts.expect then
    local ok, why = self:_expect(plan, map, opts.expect)
    if not ok then return nil, why end
  end
  return res
end

function Message:_expect(plan, map, expect)
  local names = {}
  for name in pairs(expect) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local gi = self.index[name] or self.index_ci[upper(name)]
    if not gi then return nil, "expect: unknown field " .. formats.cut(name) end
    local k = plan.k_of[gi]
    local want = tostring(expect[name])
    local got = k and map[plan.names[k]]
    if not got then return nil, name .. ": expected " .. want .. ", field is absent" end
    local nb, why = plan.norm[k](want, 0)
    if not nb then   -- the caller's value, not the bank's message, is wrong
      return nil, format("expect %s: '%s' can never match: %s", self.fields[gi][1], want, tostring(why))
    end
    if nb ~= got then
      return nil, format("%s: expected %s, got %s", self.fields[gi][1], want, shown(self.bank.cs, got))
    end
  end
  return true
end

return engine
