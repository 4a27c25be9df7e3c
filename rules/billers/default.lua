-- The default eFaktura biller rule: the spec's own rule (section 4.1.2), done well.
--
--   giro efaktura process REQUEST.xml --biller default --db register.db
--
-- * BillerAccountNumber (the eFaktura reference the consumer typed) must name a customer
--   in the customer register (giro customers import), after removing spaces:  else 01.
-- * FirstName or LastName must match that customer (giro.efaktura.names: case-insensitive
--   with Æ/Ø/Å/Ä/Ö/Ü/É and their capitals, whitespace collapsed, hyphen = space, any of
--   several given names):  else 02.
-- * The customer's product must offer eFaktura (the register's efaktura column):  else 03.
-- Every request is answered at once (no hold).  Copy this file to make a biller's own
-- rule; examples/efaktura/biller.lua shows a field mapping, a custom check and holding.
local names = require("giro.efaktura.names")

local rule = {
  -- The ThorContentProviderId(s) this rule answers for; nil answers for any.
  id = nil,
  options = {
    service_provider_name = "8080",   -- FromInfo of the response (spec 5.1; XSD allows THOR, Thor)
    name_match = "normal",            -- "strict" | "normal" | "loose" (see giro.efaktura.names)
    hold = {},                        -- e.g. { ["01"] = true }: keep unknown references for a person
  },
}

-- The typed reference -> the customer number in the register.
function rule.customer_number(account)
  return (account:gsub("%s", ""))
end

function rule.validate(request, customer)
  if not customer then
    return { reason = "01", why = string.format("no customer %q in the register", request.customer_number or request.BillerAccountNumber) }
  end
  local ok, why = names.match(request, customer, rule.options.name_match)
  if not ok then return { reason = "02", why = why } end
  if not customer.efaktura then
    return { reason = "03", why = "the customer's product offers no eFaktura (" .. why .. ")" }
  end
  return { accept = true, why = why }
end

return rule
