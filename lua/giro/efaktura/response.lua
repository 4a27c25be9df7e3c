--- giro.efaktura.response: write a Nets eFaktura response file, streaming.
--
--   local response = require("giro.efaktura.response")
--   local tmp = target:open()               -- a giro.output target's temporary file
--   local w = response.new({ fd = tmp:fd(), path = tmp:path(), name = "out.xml" }, { from_name = "8080", to_id = "NOR999999999-1", to_service = "1" })
--   w:answer{ element = "EnrollmentAdd", account = "999", status = "A", reason = "", message = "",
--             provider = "NOR999999999-1", thor_user_id = "abc==" }
--   local ok, err = w:commit()     -- closes <Message>, fsyncs, and waits for the response XSD
--                                  -- check (run beside the writing on a second thread);
--                                  -- target:commit() then puts the file in place
--   w:abort()                      -- or: stop writing (target:abort() removes the temp)
--
-- The layout is that of the spec's response examples (5.3) and the restated XSD (5.5):
-- an ISO-8859-1 declaration and bytes, values in CDATA, <Status/>, <BillerReason/> and
-- <BillerMessage/> empty on acceptance, <ThorUserSignature/> always, and one
-- EnrollmentAdd/EnrollmentChange per <EnrollmentRS> (valid under both the DTD and the XSD).
-- Characters outside Latin-1 in a rule's message become character references (giro.xml).
local xml = require("giro.xml")
local schemas = require("giro.efaktura.schemas")
local C = require("giro.efaktura.constants")

local response = {}

--- The spec's standard BillerMessage for each BillerReason (section 6.1, exact text; kept
-- here for callers of earlier versions: giro.efaktura.constants holds them).
response.MESSAGES = C.MESSAGES

local W = {}
W.__index = W

function response.new(file, header)
  -- the XSD check runs on a second thread while the file is written (giro.xml); commit waits for it
  local w, err = xml.writer{ encoding = "ISO-8859-1", fd = file.fd, path = file.path, name = file.name, indent = true,
                             schema = { xsd = schemas.path("response.xsd") } }
  if not w then return nil, err end
  w:start("Message")
   :start("Response")
   :start("FromInfo"):start("ServiceProvider")
   :leaf_cdata("ServiceProviderName", header.from_name or C.DEFAULT_SERVICE_PROVIDER_NAME)
   :finish():finish()
   :start("ToInfo"):start("ServiceProvider")
   :leaf_cdata("ServiceProviderID", header.to_id)
   :leaf_cdata("ServiceID", header.to_service or C.DEFAULT_SERVICE_ID)
   :finish():finish()
   :empty("Status")
   :finish()
  return setmetatable({ w = w, count = 0 }, W)
end

--- Append one answer (see the module comment for the fields).
function W:answer(a)
  local w = self.w
  local accepted = a.status == "A"
  w:start("EnrollmentRS"):start(a.element):start("AccountInfoRecord")
   :start("BillerInfo")
   :leaf_cdata("BillerAccountNumber", a.account)
   :leaf_cdata("BillerEnrollmentStatus", a.status)
   :leaf_cdata("BillerReason", accepted and "" or a.reason)
   :leaf_cdata("BillerMessage", accepted and "" or a.message)
   :finish()
   :start("ThorInfo")
   :leaf_cdata("ThorContentProviderId", a.provider)
   :leaf_cdata("ThorUserId", a.thor_user_id)
   :finish()
   :empty("ThorUserSignature")
   :finish():finish():finish()
  self.count = self.count + 1
end

--- Close the document, fsync it and return the XSD check's verdict (true | nil, errors).
function W:commit()
  self.w:finish()
  return self.w:commit()
end

function W:abort()
  if self.w then self.w:abort() end
end

return response
