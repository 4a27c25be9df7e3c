-- An example biller rule for "Eksempel Energi AS" (NOR999999999-1): the default rule
-- (rules/billers/default.lua) plus what a real biller typically adds.
--
--   giro efaktura process REQUEST.xml --biller examples/efaktura/biller.lua --db register.db
--
-- A rule file runs sandboxed: it can use string/table/math/utf8 and `require` the
-- modules giro grants to biller rules (giro.efaktura.names, giro.ref, giro.hash,
-- giro.checkdigit), but no files, no network, no os.  It returns one table.
local names = require("giro.efaktura.names")
local ref = require("giro.ref")

local rule = {
  -- Only answer requests addressed to this biller (ThorContentProviderId).  Records for
  -- another id are skipped and reported, never answered with this biller's rules.
  id = "NOR999999999-1",

  options = {
    -- FromInfo/ServiceProviderName in our responses: "8080" as in the spec's examples.
    service_provider_name = "8080",
    -- How strictly FirstName/LastName must match: "strict", "normal" or "loose".
    name_match = "normal",
    -- Per outcome: answer at once, or hold the request for a person (giro efaktura
    -- pending / decide / answer).  An unknown eFaktura reference is usually a typo:
    -- rather than rejecting with 01, let someone pick the customer.  Nets sends
    -- reminders for unanswered requests, so holding is safe.
    hold = { ["01"] = true },
  },
}

-- Field mapping: what the consumer typed as "eFaktura-referanse" -> our customer number.
-- Our invoices print the customer number (7 digits) and a KID whose first 7 digits are the
-- customer number followed by 2 digits of invoice number and a MOD10 check digit.  Some
-- consumers type the whole KID.
function rule.customer_number(account)
  local s = account:gsub("[%s%.%-]", "")          -- "1000 033" and "1000-033" are 1000033
  if #s == 10 and ref.check("kid10", s) then      -- a whole KID: take the customer number part
    return s:sub(1, 7)
  end
  return s                                        -- leading zeros are kept: 0001234 is a customer
end

-- The decision.  request holds the record's fields by their XML names (FirstName,
-- LastName, BillerAccountNumber, Address1, City, ...), plus customer_number (from above),
-- type ("EnrollmentAdd"/"EnrollmentChange") and agreement (its status in the register, or nil).
-- customer is the register's row (account_number, first_name, last_name, efaktura and the
-- CSV's other columns, here product and email), or nil.
function rule.validate(request, customer)
  if not customer then
    return { reason = "01", why = "no customer " .. tostring(request.customer_number) }
  end
  local ok, why = names.match(request, customer, rule.options.name_match)
  if not ok then
    return { reason = "02", why = why }
  end
  -- A custom check with our own text (max 100 characters) instead of the spec's
  -- standard message for 03.
  if customer.product == "bedrift" then
    return { reason = "03", message = "Efaktura tilbys bare til privatkunder. Bedrifter kan få faktura som EHF.",
             why = "business customer" }
  end
  if not customer.efaktura then
    return { reason = "03", why = "the customer's product offers no eFaktura" }
  end
  return { accept = true, why = why }
end

return rule
