--- giro.efaktura.constants: the names and numbers of the Nets eFaktura enrollment format
-- (spec v2.9, digest ../shared/specs/efaktura-enrollment.md), in one place.
--
--   local C = require("giro.efaktura.constants")
--   C.MESSAGES["01"]        --> the spec's standard BillerMessage for reason 01
--   C.KIND.EnrollmentChange.A --> "receipt-A"
--
-- Used by request, response, validate, held, biller and decision; nothing here does any work.
local C = {}

-- The leaves of an AccountInfoRecord in DTD order (all required by the request DTD).
C.LEAVES = {
  "PortalEnrollmentStatus",
  "BillerAccountNumber", "BillerUserName", "BillerPassword", "BillerEnrollmentStatus",
  "FirstName", "LastName", "DayPhone", "Email",
  "Address1", "Address2", "City", "State", "PostalCode", "Country",
  "ThorContentProviderId", "ThorUserId", "ThorUserKey",
}

-- The spec's field lengths (v2.9 field table) for the consumer's data, checked in this order.
C.MAX_CHARS = {
  { "FirstName", 50 }, { "LastName", 50 }, { "Address1", 50 }, { "Address2", 50 }, { "City", 50 },
  { "State", 30 }, { "PostalCode", 20 }, { "Country", 30 },
}
C.ACCOUNT_MAX = 32            -- BillerAccountNumber: AN 32
C.PROVIDER_LENGTH = 14        -- ThorContentProviderId: exactly 14
C.THOR_USER_ID_MAX = 35       -- ThorUserId: AN 35
C.MESSAGE_MAX = 100           -- BillerMessage: at most 100 characters

-- FromInfo's ServiceProviderName (the XSD's pattern 8080|Thor|THOR); giro answers as 8080 by default.
C.SERVICE_PROVIDER_NAMES = { ["8080"] = true, Thor = true, THOR = true }
C.DEFAULT_SERVICE_PROVIDER_NAME = "8080"
C.DEFAULT_SERVICE_ID = "1"

-- Record elements and their short type.
C.ELEMENT = { EnrollmentAdd = "Add", EnrollmentChange = "Change", EnrollmentDelete = "Delete" }

-- (element, BillerEnrollmentStatus) -> case; anything else is not a message the spec defines.
C.KIND = {
  EnrollmentAdd = { P = "add" },
  EnrollmentChange = { P = "change", A = "receipt-A", N = "receipt-N", D = "receipt-D" },
  EnrollmentDelete = { D = "delete" },
}

-- The answers a biller gives: A (approve) or N (reject, with a reason).
C.ACCEPT, C.REJECT = "A", "N"

--- The spec's standard BillerMessage for each BillerReason (section 6.1, exact text).
C.MESSAGES = {
  ["01"] = "Oppgitt efaktura referanse er ugyldig (se papirfaktura)",
  ["02"] = "Oppgitte personopplysninger er ikke i samsvar med Kunderegister (se papirfaktura)",
  ["03"] = "Det tilbys ikke efaktura for dette produktet",
}
C.REASONS = { "01", "02", "03" }

return C
