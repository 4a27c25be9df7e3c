--- Finding and loading bank definitions (rules/banks/*.lua) through giro.rules: sandboxed, with
-- an instruction budget and a memory cap on every function of a definition (its hooks), and
-- `require` of other rule files by dotted name (rules/protocols/samlink.lua).
local rules = require("giro.rules")

local loader = {}

--- Path of the bank definition for a name (rules/banks/NAME.lua) or a path; nil if none.
function loader.find(name)
  return (rules.find("bank", name))
end

--- Load a definition file: the table it returns, or nil, "FILE:LINE: message".
function loader.load(path)
  return rules.load(path)
end

--- Every bank definition on the rule path: sorted list of { name =, path = }.
function loader.discover()
  return rules.discover("bank")
end

return loader
