--- Finding and loading bank definitions (rules/banks/*.lua) through giro.rules, sandboxed.
local loader = {}

local ok_rules, rules = pcall(require, "giro.rules")
if not ok_rules or type(rules) ~= "table" or not rules.load then rules = nil end

-- TEMPORARY until giro.rules lands on main: a minimal text-only loader with a restricted
-- environment (no os/io/load/debug), `require` of the granted giro modules and of other rule
-- files by dotted name.  It has no instruction budget or memory cap; giro.rules has.
local fallback = {}
do
  local host = require("giro.host")
  local GRANT = { ["giro.hash"] = true, ["giro.ref"] = true, ["giro.checkdigit"] = true }
  local SAFE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                 "tostring", "type", "xpcall", "setmetatable", "getmetatable", "rawequal", "rawget",
                 "rawlen", "rawset", "_VERSION" }
  local function exists(p) local f = io.open(p, "r"); if f then f:close() return true end return false end
  local function rule_path(dotted)
    local rel = dotted:gsub("%.", "/") .. ".lua"
    for _, d in ipairs(host.dirs) do
      local p = d .. "/rules/" .. rel
      if exists(p) then return p end
    end
  end
  local load_rule
  local function make_env(cache)
    local env = {}
    for _, n in ipairs(SAFE) do env[n] = _G[n] end
    for _, lib in ipairs({ "string", "table", "math", "utf8" }) do
      local t = {}
      for k, v in pairs(_G[lib]) do t[k] = v end
      env[lib] = t
    end
    env.require = function(name)
      if GRANT[name] then return require(name) end
      if type(name) == "string" and name:match("^[%w_]+[%w_.]*$") then
        local p = rule_path(name)
        if p then
          if cache[p] == nil then
            local r, err = load_rule(p, cache)
            if r == nil then error(err, 2) end
            cache[p] = r
          end
          return cache[p]
        end
      end
      error("module '" .. tostring(name) .. "' is not available to rule files", 2)
    end
    return env
  end
  load_rule = function(path, cache)
    local chunk, err = loadfile(path, "t", make_env(cache))
    if not chunk then return nil, err end
    local ok, res = pcall(chunk)
    if not ok then return nil, tostring(res) end
    return res
  end
  function fallback.load(path) return load_rule(path, {}) end
  function fallback.find(kind, name)
    if name:find("/", 1, true) or name:match("%.lua$") then
      return exists(name) and name or nil
    end
    return rule_path(kind .. "s." .. name)
  end
  function fallback.discover(kind)
    local ok, lfs = pcall(require, "lfs")
    local out, seen = {}, {}
    if not ok then return out end
    for _, d in ipairs(host.dirs) do
      local dir = d .. "/rules/" .. kind .. "s"
      if lfs.attributes(dir, "mode") == "directory" then
        for f in lfs.dir(dir) do
          local n = f:match("^([%w_%-]+)%.lua$")
          if n and not seen[n] then seen[n] = true; out[#out + 1] = { name = n, path = dir .. "/" .. f } end
        end
      end
    end
    table.sort(out, function(a, b) return a.name < b.name end)
    return out
  end
end

local impl = rules or fallback
loader.sandboxed = rules ~= nil

--- Path of the bank definition for a name (rules/banks/NAME.lua) or a path; nil if none.
function loader.find(name)
  local p = impl.find("bank", name)
  return p
end

--- Load a definition file: the table it returns, or nil, "FILE:LINE: message".
function loader.load(path)
  local def, err = impl.load(path)
  if def == nil then return nil, err end
  if type(def) ~= "table" then return nil, path .. ": a bank definition must return a table" end
  return def
end

--- Every bank definition on the rule path: sorted list of { name =, path = }.
function loader.discover()
  return impl.discover("bank")
end

return loader
