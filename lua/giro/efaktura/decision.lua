--- giro.efaktura.decision: the one check of an answer's contract, for the biller rule's
-- decisions (giro.efaktura.biller) and a person's (`giro efaktura decide`, giro.efaktura.held).
--
--   local decision = require("giro.efaktura.decision")
--   decision.reason("01")            --> true  | nil, "reason must be 01, 02 or 03, got ..."
--   decision.message("own text")     --> text  | nil, "message has 120 characters (...)"
--   decision.reject("02", nil)       --> { answer = "N", reason = "02", message = standard text }
--                                        | nil, message
--
-- The contract (spec 6.1, response XSD 5.5): BillerReason is 01, 02 or 03; BillerMessage is
-- UTF-8 text (it is written as ISO-8859-1, characters outside it as references) of at most
-- 100 characters; an empty or absent message is the reason's standard text.
local C = require("giro.efaktura.constants")
local errors = require("giro.errors")

local decision = {}

--- Is r a reason code?  true or nil, message.
function decision.reason(r)
  if type(r) == "string" and C.MESSAGES[r] then return true end
  return nil, string.format("reason must be 01, 02 or 03, got %s",
    type(r) == "string" and errors.quote(r) or ("a " .. type(r)))
end

--- The message to send with reason (nil or "": the standard text); text or nil, message.
function decision.message(msg, reason)
  if msg == nil or msg == "" then return C.MESSAGES[reason] end
  if type(msg) ~= "string" then return nil, "message must be a string" end
  local n = utf8.len(msg)
  if not n then return nil, "message is not UTF-8 text" end
  if n > C.MESSAGE_MAX then
    return nil, string.format("message has %d characters (BillerMessage holds at most %d)", n, C.MESSAGE_MAX)
  end
  return msg
end

--- A rejection checked whole: { answer = "N", reason, message } or nil, message.
function decision.reject(reason, msg)
  local ok, err = decision.reason(reason)
  if not ok then return nil, err end
  local text, merr = decision.message(msg, reason)
  if not text then return nil, merr end
  return { answer = C.REJECT, reason = reason, message = text }
end

return decision
