--- giro.rulecheck: load a rule file exactly as the command that uses it does, and check it
-- fully: a bank definition is compiled completely (every message, format, MAC recipe, as
-- `giro pay` would on first use), a biller rule is held to the biller contract (validate
-- required, known keys only, options in range).  Used by `giro rules check` and the REPL's
-- :load.
--
--   local rulecheck = require("giro.rulecheck")
--   local t, kind_or_err = rulecheck.load("rules/banks/danske.lua")   -- t, "bank" | nil, message
--
-- The kind comes from the directory (rules/banks, rules/billers, rules/protocols) or
-- opts.kind; otherwise from the table the file returns: one with `messages` is a bank
-- definition, anything else is checked as a biller rule.
local rules = require("giro.rules")

local M = {}

M.KINDS = { bank = true, biller = true, module = true }

--- "bank", "biller", "module" (a protocol or helper file other rules require) or nil.
function M.kind_of(path)
  local dir = path:match("([^/]+)/[^/]+$")
  if dir == "banks" then return "bank" end
  if dir == "billers" then return "biller" end
  if dir == "protocols" then return "module" end
  return nil
end

--- The modules a rule of this kind may require (what its command grants).
function M.grants(kind)
  if kind == "biller" then return require("giro.efaktura.biller").GRANT end
  return {}
end

--- Check a loaded rule table as its command would: true or nil, "FILE[:LINE]: message".
function M.check_table(kind, t, path)
  if kind == "bank" then
    local engine = require("giro.pay.engine")
    local c, err = engine.compile(t, path:match("([^/]+)%.lua$"), { path = path })
    if not c then return nil, rules.add_line(path, err) end
    return true
  elseif kind == "biller" then
    local ok, err = require("giro.efaktura.biller").check(t, path)
    if not ok then return nil, rules.add_line(path, err) end
    return true
  end
  return true
end

--- Load and check the rule file at path.  opts: kind, grant (extra modules, for kind
-- "module" only: a bank or biller rule gets what its command grants), rules (a giro.rules
-- instance; default the module's), lenient (the REPL: a file outside rules/banks and
-- rules/billers that neither defines `messages` nor `validate` is a plain module, and a
-- failed check is returned as a third value instead of failing the load).
-- Returns the table and its kind (and with lenient the check's message), or nil, message.
function M.load(path, opts)
  opts = opts or {}
  local inst = opts.rules or rules.default()
  local kind = opts.kind or M.kind_of(path)
  local t, err
  if kind == nil then
    -- which command uses it shows in what it returns: look with the wider biller grants,
    -- then load it again exactly as that command does
    local probe = rules.new({ dirs = inst:dirs() })
    local p = probe:load(path, { grant = M.grants("biller") })
    if type(p) == "table" and p.messages ~= nil then kind = "bank"
    elseif opts.lenient and not (type(p) == "table" and p.validate ~= nil) then kind = "module"
    else kind = "biller" end
  end
  local grant = kind == "module" and opts.grant or M.grants(kind)
  t, err = inst:load(path, { grant = grant })
  if not t then return nil, err end
  local ok, cerr = M.check_table(kind, t, path)
  if not ok then
    if opts.lenient then return t, kind, cerr end
    return nil, cerr
  end
  return t, kind
end

return M
