--- giro.rules — load bank and biller rule files into a sandbox inside the engine's own state.
--
--   local rules = require("giro.rules")
--   local danske, err = rules.load(rules.find("bank", "danske"))
--   if not danske then error(err) end          -- err is "FILE:LINE: message"
--   local ok, res = pcall(danske.mac, fields)  -- every function runs under budget + memory cap
--
-- A rule file is Lua text (never bytecode) run in its own environment: safe base functions,
-- read-only `string`/`table`/`math`/`utf8`, a `require` limited to granted engine modules and
-- other rule files, and an error on reads of undefined globals.  It returns a table; the engine
-- gets a mirror of that table whose functions (recursively) run under giro.sandbox limits;
-- whatever those functions return or raise is mirrored or made text the same way, so no rule
-- code reaches the engine unwrapped (metamethods included: see make_setmetatable).
-- See docs/rules.md for the full contract.
local sandbox = require("giro.sandbox")
local errors = require("giro.errors")
local hash = require("giro.hash")
local lfs = require("lfs")

local M = {}

M.DEFAULT_GRANTS = { "giro.hash", "giro.ref", "giro.checkdigit" }
M.DEFAULT_BUDGET = 10000000          -- instructions per call
M.DEFAULT_MEMORY = 64 * 1024 * 1024  -- bytes of growth per call
M.OUTPUT_CAP = 64 * 1024             -- bytes a rule file's print may write in all
M.ERROR_CAP = 400                    -- bytes of a rule's error text kept in messages

local KINDS = { bank = "banks", biller = "billers" }

local stderr = io.stderr
local real_require, real_load = require, load
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local getinfo = debug.getinfo

---------------------------------------------------------------------------
-- Positions and messages

-- "FILE:LINE: " of the function `level` levels above the caller.
local function where(level)
  local info = getinfo(level + 1, "Sl")
  if not info or (info.currentline or -1) < 0 then return "" end
  local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return src .. ":" .. info.currentline .. ": "
end

-- Lua shortens long chunk names to "...tail"; put the whole path back.
local function full_path_message(path, msg)
  if type(msg) ~= "string" then return msg end
  local short, rest = msg:match("^(%.%.%.[^:]*):(%d+:.*)$")
  if short and path:sub(-(#short - 3)) == short:sub(4) then
    return path .. ":" .. rest
  end
  return msg
end

local function firstline(s)
  return (tostring(s):match("^[^\n]*"))
end

---------------------------------------------------------------------------
-- Read-only proxies for shared tables (string, table, math, utf8, granted modules)

local protected = real_setmetatable({}, { __mode = "k" })  -- proxy -> original
local proxy_of = real_setmetatable({}, { __mode = "k" })   -- original -> proxy

local function protect(t, name)
  local p = proxy_of[t]
  if p then return p end
  p = {}
  local function sub(k, v)
    if type(v) == "table" then return protect(v, name .. "." .. tostring(k)) end
    return v
  end
  real_setmetatable(p, {
    __index = function(_, k) return sub(k, t[k]) end,
    __newindex = function(_, k)
      error(where(2) .. "'" .. name .. "' is read-only in rules (cannot set '" .. tostring(k) .. "')", 0)
    end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        return nk, sub(nk, nv)
      end, p, nil
    end,
    __len = function() return #t end,
    __metatable = "protected",
  })
  protected[p] = t
  proxy_of[t] = p
  return p
end

--- True when v is one of the sandbox's read-only proxies.
function M.is_protected(v) return protected[v] ~= nil end

---------------------------------------------------------------------------
-- The base environment shared by every rule file (never reachable as a table)

local safe_string = {}
for k, v in pairs(string) do
  if k ~= "dump" then safe_string[k] = v end
end

-- setmetatable in rules never installs the rule's table itself but a frozen
-- "shadow" of its metamethods (see make_setmetatable): shadow -> rule's table.
local rule_mts = real_setmetatable({}, { __mode = "k" })

-- getmetatable that never hands out the string metatable or an engine metatable;
-- for a metatable set by rule code it gives the rule's own table back.
local function safe_getmetatable(v)
  if type(v) ~= "table" then return nil end
  local mt = real_getmetatable(v)
  if type(mt) ~= "table" then return mt end   -- nil, or a __metatable field's value
  return rule_mts[mt]
end

local function safe_rawset(t, k, v)
  if protected[t] then
    error(where(2) .. "rawset on a read-only table is not allowed in rules", 0)
  end
  return rawset(t, k, v)
end

local function safe_rawget(t, k)
  return rawget(t, k)
end

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, xpcall = sandbox.xpcall, select = select, tonumber = tonumber,
  tostring = tostring, type = type, rawequal = rawequal, rawget = safe_rawget,
  rawlen = rawlen, rawset = safe_rawset, getmetatable = safe_getmetatable,
  _VERSION = _VERSION,
  string = protect(safe_string, "string"),
  table = protect(table, "table"),
  math = protect(math, "math"),
  utf8 = protect(utf8, "utf8"),
  collectgarbage = function(opt)
    if opt == "count" then return collectgarbage("count") end
    error(where(2) .. "collectgarbage: only \"count\" is available in rules", 0)
  end,
}

---------------------------------------------------------------------------
-- Options

local function normalize(opts, defaults)
  opts = opts or {}
  defaults = defaults or {}
  local o = {
    budget = opts.budget or defaults.budget or M.DEFAULT_BUDGET,
    memory = opts.memory or defaults.memory or M.DEFAULT_MEMORY,
    env = opts.env or defaults.env,
    name = opts.name,
    grants = {},
  }
  assert(math.type(o.budget) == "integer" and o.budget >= 0, "giro.rules: budget must be an integer >= 0")
  assert(math.type(o.memory) == "integer" and o.memory >= 0, "giro.rules: memory must be an integer >= 0")
  assert(o.env == nil or type(o.env) == "table", "giro.rules: env must be a table")
  for _, list in ipairs({ M.DEFAULT_GRANTS, defaults.grant or {}, opts.grant or {} }) do
    for _, name in ipairs(list) do o.grants[name] = true end
  end
  return o
end

---------------------------------------------------------------------------
-- Wrapping: the engine's mirror of a rule table

local wrap_fn, mirror
local unwrapped = real_setmetatable({}, { __mode = "k" })  -- wrapper -> rule function

--- The rule function behind a wrapped function (nil for anything else).
function M.unwrap(f) return unwrapped[f] end

-- A value as the engine may hold it: functions wrapped, tables mirrored
-- (read-only proxies are the engine's own and stay as they are).
local function cross(v, o, seen)
  local tv = type(v)
  if tv == "function" then return wrap_fn(v, o, seen) end
  if tv == "table" and not protected[v] then return seen[v] or mirror(v, o, seen) end
  return v
end

-- A copy of t (cycle-safe, raw iteration so no rule metamethod runs unbounded)
-- in which every function, key or value, is wrapped; metatables are dropped.
function mirror(t, o, seen)
  local copy = {}
  seen[t] = copy
  for k, v in next, t do
    copy[cross(k, o, seen)] = cross(v, o, seen)
  end
  return copy
end

local function wrap_results(o, ...)
  local n = select("#", ...)
  if n == 1 then
    local v = ...
    local tv = type(v)
    if tv ~= "table" and tv ~= "function" then return v end   -- a scalar: nothing to cross
    return (cross(v, o, {}))
  end
  local t, seen = table.pack(...), {}
  for i = 1, n do t[i] = cross(t[i], o, seen) end
  return table.unpack(t, 1, n)
end

-- "FILE:LINE" where a rule raised a table that the engine holds (its mirror)
local error_where = real_setmetatable({}, { __mode = "k" })

-- The error a rule raised, as the engine may hold it: strings cut to ERROR_CAP
-- bytes, a plain table mirrored (where it was raised kept for M.error_text),
-- anything else turned into text by tostring under the rule's limits (an error
-- object's __tostring is rule code too), cut the same way.
local function settle_error(o, e, at)
  if type(e) == "string" then return errors.clip(e, M.ERROR_CAP) end
  if type(e) == "table" and real_getmetatable(e) == nil then
    local m = mirror(e, o, {})
    error_where[m] = at
    return m
  end
  local ok, s = sandbox.pcall(o.budget, o.memory, tostring, e)
  if ok and type(s) == "string" then return errors.clip(s, M.ERROR_CAP) end
  return (at and at .. ": " or "") .. "error object is a " .. type(e) .. " value"
end

local function settle(o, ok, ...)
  if ok then return wrap_results(o, ...) end
  local e, at = ...
  error(settle_error(o, e, at), 0)
end

--- An error a rule function raised, as text for a message: a string as it is (already cut
-- to ERROR_CAP bytes), a table as "FILE:LINE: error object is a table value" with its
-- `message` or `reason` field when it has one.
function M.error_text(e)
  if type(e) == "string" then return e end
  if type(e) == "table" then
    local at = error_where[e]
    local text = (at and at .. ": " or "") .. "error object is a table value"
    local detail = rawget(e, "message") or rawget(e, "reason")
    if type(detail) == "string" or type(detail) == "number" then
      text = text .. " (" .. errors.clip(detail, 200) .. ")"
    end
    return text
  end
  return errors.clip(tostring(e), M.ERROR_CAP)
end

-- Call a rule function under o's limits; what comes back is safe for the engine.
local function guarded_call(o, fn, ...)
  return settle(o, sandbox.pcall(o.budget, o.memory, fn, ...))
end

function wrap_fn(fn, o, seen)
  local w = seen[fn]
  if w then return w end
  w = function(...) return guarded_call(o, fn, ...) end
  seen[fn] = w
  unwrapped[w] = fn
  return w
end

-- setmetatable for rules: never replaces an engine metatable, refuses __gc
-- (a finalizer would run outside any budget), and installs a frozen shadow of
-- the rule's metatable whose function metamethods are wrapped, so they keep
-- the rule's limits when the engine triggers them (the rule may have set the
-- metatable on a table the engine passed in).  Frozen: assigning a metamethod
-- to the rule's table afterwards changes only tables given it later.
local shadow_of = real_setmetatable({}, { __mode = "k" })  -- rule's metatable -> shadow
local shadow_size = real_setmetatable({}, { __mode = "k" }) -- shadow -> number of fields

local function is_event(k) return type(k) == "string" and k:find("^__") ~= nil end

-- true when the shadow still has exactly mt's "__" fields
local function shadow_current(sh, mt)
  local n = 0
  for k, v in next, mt do
    if is_event(k) then
      n = n + 1
      local have = rawget(sh, k)
      if have ~= v and not (type(v) == "function" and unwrapped[have] == v) then return false end
    end
  end
  return n == shadow_size[sh]
end

local function make_shadow(mt, o)
  local sh, n = {}, 0
  for k, v in next, mt do
    if is_event(k) then
      n = n + 1
      rawset(sh, k, type(v) == "function" and wrap_fn(v, o, {}) or v)
    end
  end
  shadow_size[sh] = n
  rule_mts[sh] = mt
  shadow_of[mt] = sh
  return sh
end

local function make_setmetatable(o)
  return function(t, mt)
    if type(t) ~= "table" then
      error(where(2) .. "bad argument #1 to 'setmetatable' (table expected, got " .. type(t) .. ")", 0)
    end
    if mt ~= nil and type(mt) ~= "table" then
      error(where(2) .. "bad argument #2 to 'setmetatable' (nil or table expected)", 0)
    end
    local cur = real_getmetatable(t)
    if protected[t] or (cur ~= nil and not rule_mts[cur]) then
      error(where(2) .. "cannot change a protected metatable", 0)
    end
    if mt == nil then return real_setmetatable(t, nil) end
    if rawget(mt, "__gc") ~= nil then
      error(where(2) .. "__gc metamethods are not allowed in rules", 0)
    end
    local sh = shadow_of[mt]
    if not (sh and shadow_current(sh, mt)) then sh = make_shadow(mt, o) end
    real_setmetatable(t, sh)
    return t
  end
end

---------------------------------------------------------------------------
-- Files

local function read_file(path)
  local plain, serr = require("giro.output").refuse_special(path, "rule file")
  if not plain then return nil, serr end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  if not s then return nil, path .. ": cannot read" end
  return s
end

local function digest(s) return hash.hex(hash.sha256(s)) end

local function is_file(path) return lfs.attributes(path, "mode") == "file" end
local function is_dir(path) return lfs.attributes(path, "mode") == "directory" end

local function basename(path)
  return (path:match("([^/]+)$") or path):gsub("%.lua$", "")
end

-- true when any file in deps ({ [path] = digest }) differs from what was loaded
local function changed(deps)
  for path, d in pairs(deps) do
    local s = read_file(path)
    if s == nil or digest(s) ~= d then return true end
  end
  return false
end

---------------------------------------------------------------------------
-- A rules instance: directories, loaded files, the cache of required rule files

local Rules = {}
Rules.__index = Rules

--- rules.new{ dirs = {...}, grant = {...}, budget = N, memory = N, env = {...} } -> instance.
-- Without dirs the instance uses rules.dirs() (the host's rules directories) at each call.
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    fixed_dirs = opts.dirs,
    defaults = { grant = opts.grant, budget = opts.budget, memory = opts.memory, env = opts.env },
    records = {},
    modules = {},   -- dotted name -> { path, value, deps }
    loading = {},   -- dotted name -> true while its file runs (circular requires)
  }, Rules)
end

function Rules:dirs()
  if self.fixed_dirs then return { table.unpack(self.fixed_dirs) } end
  local out = {}
  for _, d in ipairs(real_require("giro.host").dirs) do
    if is_dir(d .. "/rules") then out[#out + 1] = d .. "/rules" end
  end
  return out
end

function Rules:discover(kind)
  local sub = KINDS[kind]
  if not sub then error("giro.rules: unknown kind '" .. tostring(kind) .. "' (bank or biller)", 2) end
  local seen, list = {}, {}
  for _, dir in ipairs(self:dirs()) do
    local d = dir .. "/" .. sub
    if is_dir(d) then
      local names = {}
      for f in lfs.dir(d) do
        local name = f:match("^(.+)%.lua$")
        if name and not seen[name] and is_file(d .. "/" .. f) then names[#names + 1] = name end
      end
      for _, name in ipairs(names) do
        seen[name] = true
        list[#list + 1] = { name = name, path = d .. "/" .. name .. ".lua" }
      end
    end
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  return list
end

function Rules:find(kind, name)
  local sub = KINDS[kind]
  if not sub then error("giro.rules: unknown kind '" .. tostring(kind) .. "' (bank or biller)", 2) end
  if type(name) ~= "string" then error("giro.rules: name must be a string", 2) end
  if name:find("/", 1, true) or name:match("%.lua$") then return name end
  local tried = {}
  for _, dir in ipairs(self:dirs()) do
    local p = dir .. "/" .. sub .. "/" .. name .. ".lua"
    if is_file(p) then return p end
    tried[#tried + 1] = dir
  end
  return nil, string.format("no %s rule '%s' (looked for %s/%s.lua in: %s)", kind, name, sub, name,
    #tried > 0 and table.concat(tried, ", ") or "no rules directories")
end

-- Where `require(name)` in the file `from` finds a rule file: the instance's
-- directories first, then the nearest enclosing directory named "rules".
function Rules:resolve(name, from)
  if not name:match("^[%w_%.]+$") or name:find("..", 1, true) or name:match("^%.") or name:match("%.$") then
    return nil
  end
  local rel = name:gsub("%.", "/") .. ".lua"
  local dirs = self:dirs()
  local d = from and from:match("^(.*)/[^/]*$")
  while d and d ~= "" do
    if d:match("/rules$") or d == "rules" then
      local dup = false
      for _, x in ipairs(dirs) do dup = dup or x == d end
      if not dup then dirs[#dirs + 1] = d end
      break
    end
    d = d:match("^(.*)/[^/]*$")
  end
  for _, dir in ipairs(dirs) do
    if is_file(dir .. "/" .. rel) then return dir .. "/" .. rel end
  end
  return nil, dirs
end

-- The environment of one rule file.  ctx = { path, o, deps }
function Rules:env(ctx)
  local o = ctx.o
  local env = {}
  local extras = o.env or {}
  local name = o.name or basename(ctx.path)
  local own = {}
  local written = 0   -- bytes print has written for this file: capped at OUTPUT_CAP
  own.print = function(...)
    if written >= M.OUTPUT_CAP then return end
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local line = name .. ": " .. table.concat(parts, "\t")
    if written + #line + 1 > M.OUTPUT_CAP then
      line = errors.clip(line, math.max(0, M.OUTPUT_CAP - written))
        .. string.format(" [output of %s cut: rules may print %d bytes]", name, M.OUTPUT_CAP)
      written = M.OUTPUT_CAP
    else
      written = written + #line + 1
    end
    stderr:write(line, "\n")
  end
  own.load = function(chunk, chunkname, mode, lenv)
    if mode ~= nil and mode ~= "t" then
      error(where(2) .. "load: only text chunks can be loaded in rules (mode \"t\")", 0)
    end
    if lenv == nil then lenv = env end
    return real_load(chunk, chunkname, "t", lenv)
  end
  own.setmetatable = make_setmetatable(o)
  own.require = function(modname)
    if type(modname) ~= "string" then
      error(where(2) .. "bad argument #1 to 'require' (string expected, got " .. type(modname) .. ")", 0)
    end
    if o.grants[modname] then
      local ok, mod = pcall(real_require, modname)
      if not ok then
        error(where(2) .. "granted module '" .. modname .. "' is not available: " .. firstline(mod), 0)
      end
      if type(mod) == "table" then return protect(mod, modname) end
      return mod
    end
    local path, dirs = self:resolve(modname, ctx.path)
    if not path then
      local granted = {}
      for g in pairs(o.grants) do granted[#granted + 1] = g end
      table.sort(granted)
      error(where(2) .. "require '" .. modname .. "' refused: not a granted module ("
        .. table.concat(granted, ", ") .. ") and no rule file "
        .. (dirs and (modname:gsub("%.", "/") .. ".lua in "
          .. (#dirs > 0 and table.concat(dirs, ", ") or "(no rules directories)")) or "(not a valid rule name)"), 0)
    end
    return self:require_rule(modname, path, ctx, where(2))
  end
  env._G = env
  real_setmetatable(env, {
    __index = function(_, k)
      local v = extras[k]
      if v ~= nil then return v end
      v = own[k]
      if v ~= nil then return v end
      v = BASE[k]
      if v ~= nil then return v end
      error(where(2) .. "undefined global '" .. tostring(k) .. "'", 0)
    end,
    __metatable = "protected",
  })
  return env
end

local function merge(into, deps)
  for p, d in pairs(deps) do into[p] = d end
end

-- require of another rule file: run it (under the limits already running) in
-- its own environment with the requiring file's options; cache per instance.
function Rules:require_rule(modname, path, ctx, at)
  local m = self.modules[modname]
  if m and m.path == path and not (self.reloading and changed(m.deps)) then
    merge(ctx.deps, m.deps)
    return m.value
  end
  if self.loading[modname] then
    error(at .. "circular require of rule file '" .. modname .. "'", 0)
  end
  local src, err = read_file(path)
  if not src then error(at .. err, 0) end
  local sub = { path = path, o = ctx.o, deps = { [path] = digest(src) } }
  local chunk, lerr = real_load(src, "@" .. path, "t", self:env(sub))
  if not chunk then error(full_path_message(path, lerr), 0) end
  self.loading[modname] = true
  local ok, value = pcall(chunk, modname, path)
  self.loading[modname] = nil
  if not ok then error(full_path_message(path, value), 0) end
  if value == nil then value = true end
  self.modules[modname] = { path = path, value = value, deps = sub.deps }
  merge(ctx.deps, sub.deps)
  return value
end

-- Load and run a rule file; returns the mirror and its dependencies or nil, message.
function Rules:build(path, o)
  local src, err = read_file(path)
  if not src then return nil, err end
  local ctx = { path = path, o = o, deps = { [path] = digest(src) } }
  local chunk, lerr = real_load(src, "@" .. path, "t", self:env(ctx))
  if not chunk then return nil, full_path_message(path, lerr) end
  local ok, res, at = sandbox.pcall(o.budget, o.memory, chunk)
  if not ok then
    if type(res) ~= "string" then res = (at or path) .. ": error object is a " .. type(res) .. " value" end
    return nil, full_path_message(path, errors.clip(res, M.ERROR_CAP))
  end
  if type(res) ~= "table" then
    return nil, path .. ": a rule file must return a table (it returned " .. type(res) .. ")"
  end
  return mirror(res, o, {}), ctx.deps
end

function Rules:load(path, opts)
  if type(path) ~= "string" then error("giro.rules.load: path must be a string", 2) end
  local o = normalize(opts, self.defaults)
  local t, deps = self:build(path, o)
  if not t then return nil, deps end
  local rec = { path = path, table = t, opts = o, deps = deps,
                mtime = lfs.attributes(path, "modification"), digest = deps[path] }
  self.records[#self.records + 1] = rec
  return t
end

function Rules:call(fn, ...)
  return guarded_call(normalize(nil, self.defaults), fn, ...)
end

function Rules:loaded()
  local out = {}
  for _, r in ipairs(self.records) do
    out[#out + 1] = { path = r.path, mtime = r.mtime, digest = r.digest, table = r.table }
  end
  return out
end

-- Reload every loaded file whose content (or a rule file it requires) changed.
-- Built aside: on error the old version stays and the error is reported.
function Rules:reload()
  local reloaded, errors = {}, {}
  self.reloading = true
  local ok, perr = pcall(function()
    for _, r in ipairs(self.records) do
      if changed(r.deps) then
        local t, deps = self:build(r.path, r.opts)
        if t then
          for k in next, r.table do r.table[k] = nil end
          for k, v in next, t do r.table[k] = v end
          r.deps, r.digest = deps, deps[r.path]
          r.mtime = lfs.attributes(r.path, "modification")
          reloaded[#reloaded + 1] = r.path
        else
          errors[#errors + 1] = deps
        end
      end
    end
  end)
  self.reloading = false
  if not ok then error(perr, 0) end
  return reloaded, errors
end

---------------------------------------------------------------------------
-- Checking the keys of a rule's tables

-- Edit distance of two short strings (insertions, deletions, substitutions and swaps of two
-- neighbours: "hlod" is one edit from "hold").
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

--- The allowed name nearest to `key` when it is close enough to be a typo, else nil.
function M.suggest(key, allowed)
  if type(key) ~= "string" then return nil end
  local best, bd
  for _, a in ipairs(allowed) do
    local d = distance(key:lower(), a:lower())
    if d <= math.max(1, math.min(3, #a // 3)) and (not bd or d < bd) then best, bd = a, d end
  end
  return best
end

--- The first line of the file at path where `key` is written as a table key (`key =` or
-- `["key"] =`), or nil: rule tables do not remember where they were written.
function M.line_of(path, key)
  if type(key) ~= "string" then return nil end
  local src = read_file(path)
  if not src then return nil end
  local n = 1
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    local plain = line:gsub("%-%-.*$", "")
    local at = 1
    while true do
      local s, e = plain:find(key, at, true)
      if not s then break end
      local before, after = plain:sub(1, s - 1), plain:sub(e + 1)
      if (not before:find("[%w_]$") and after:find("^%s*=[^=]") ~= nil)
        or (before:find("%[%s*[\"']$") and after:find("^[\"']%s*%]%s*=")) then
        return n
      end
      at = e + 1
    end
    n = n + 1
  end
  return nil
end

--- The first line of the file at path holding `token` as a string literal ("token" or
-- 'token'), or nil.
function M.line_of_string(path, token)
  if type(token) ~= "string" or token == "" then return nil end
  local src = read_file(path)
  if not src then return nil end
  local n = 1
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    if line:find('"' .. token .. '"', 1, true) or line:find("'" .. token .. "'", 1, true) then return n end
    n = n + 1
  end
  return nil
end

--- A message about the file at path given the line it is about, when it has none: the line
-- of the value it quotes ('sha999'), else of the field it names ("field SUMMA").
-- "PATH: msg" becomes "PATH:LINE: msg"; a message that has a line is left as it is.
function M.add_line(path, msg)
  if type(msg) ~= "string" then return msg end
  local rest = msg:sub(1, #path + 2) == path .. ": " and msg:sub(#path + 3) or nil
  if not rest then
    if msg:sub(1, #path + 1) == path .. ":" then return msg end   -- has a line already
    rest = msg
  end
  local line
  for q in rest:gmatch("'([^']+)'") do line = line or M.line_of_string(path, q) end
  if not line then
    local fname = rest:match("field ([%w_%-]+)")
    line = fname and M.line_of_string(path, fname)
  end
  return path .. ":" .. (line and (line .. ": ") or " ") .. rest
end

--- Refuse keys of table t that are not in `allowed` (a list): nil, "PATH:LINE: unknown key
-- 'requird' in WHAT (did you mean 'required'? allowed: ...)", or true.  Integer keys are
-- allowed when opts.list is true; without a path the message starts at "unknown key".
local allowed_sets = real_setmetatable({}, { __mode = "k" })   -- allowed list -> set

function M.check_keys(path, t, allowed, what, opts)
  local ok = allowed_sets[allowed]
  if not ok then
    ok = {}
    for _, a in ipairs(allowed) do ok[a] = true end
    allowed_sets[allowed] = ok
  end
  local list = opts and opts.list
  local bad
  for k in next, t do
    if not ok[k] and not (list and math.type(k) == "integer") then
      bad = bad or {}
      bad[#bad + 1] = k
    end
  end
  if not bad then return true end
  table.sort(bad, function(a, b) return tostring(a) < tostring(b) end)
  local k = bad[1]
  local line = path and M.line_of(path, k)
  local hint = M.suggest(k, allowed)
  local at = path and (path .. ":" .. (line and (line .. ":") or "") .. " ") or ""
  return nil, string.format("%sunknown key %s in %s (%sallowed: %s)", at,
    type(k) == "string" and ("'" .. errors.clip(k, 60) .. "'") or ("[" .. tostring(k) .. "]"), what,
    hint and ("did you mean '" .. hint .. "'? ") or "", table.concat(allowed, ", "))
end

---------------------------------------------------------------------------
-- The module-level API works on one default instance (the host's rules dirs).

local default
local function inst()
  default = default or M.new()
  return default
end

--- The default instance (what the module-level functions use).
function M.default() return inst() end

function M.load(path, opts) return inst():load(path, opts) end
function M.call(fn, ...) return inst():call(fn, ...) end
function M.dirs() return inst():dirs() end
function M.discover(kind) return inst():discover(kind) end
function M.find(kind, name) return inst():find(kind, name) end
function M.loaded() return inst():loaded() end
function M.reload() return inst():reload() end

return M
