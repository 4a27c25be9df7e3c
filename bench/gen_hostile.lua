--- Hostile eFaktura request files for `make bench` (bench/hostile.sh): valid XML whose
-- values are huge, to show that memory, stderr and the register stay bounded.
--
--   giro run bench/gen_hostile.lua big-status RECORDS MIB OUT.xml
--       RECORDS records, each with a BillerEnrollmentStatus of MIB MiB (one CDATA section)
--   giro run bench/gen_hostile.lua pieces MIB OUT.xml
--       one record whose FirstName is MIB MiB written as alternating 64 KiB CDATA
--       sections and text pieces (each parser event small, the leaf huge)
--   giro run bench/gen_hostile.lua plain RECORDS OUT.xml
--       RECORDS ordinary records: the baseline beside the hostile files
-- Everything streams: the generator's memory does not grow with the sizes.
local mode = arg[1]
local out_path, records, mib
if mode == "big-status" then records, mib, out_path = tonumber(arg[2]), tonumber(arg[3]), arg[4]
elseif mode == "pieces" then records, mib, out_path = 1, tonumber(arg[2]), arg[3]
elseif mode == "plain" then records, mib, out_path = tonumber(arg[2]), 0, arg[3]
end
if not out_path then
  io.stderr:write("usage: giro run bench/gen_hostile.lua big-status RECORDS MIB OUT.xml | pieces MIB OUT.xml | plain RECORDS OUT.xml\n")
  os.exit(2)
end
local out = assert(io.open(out_path, "wb"))
local CHUNK = 64 * 1024

-- write MIB MiB of `c` as one CDATA section, or as CDATA sections and text pieces
local function huge(c, pieces)
  local block = c:rep(CHUNK)
  for i = 1, mib * 1024 * 1024 // CHUNK do
    if pieces and i % 2 == 0 then out:write(block) else out:write("<![CDATA[", block, "]]>") end
  end
end

out:write('<?xml version="1.0" encoding="iso-8859-1"?>\n<Message>\n  <Request>\n',
  '    <FromInfo><ServiceProvider><ServiceProviderName><![CDATA[THOR]]></ServiceProviderName></ServiceProvider></FromInfo>\n',
  '    <ToInfo><ServiceProvider><ServiceProviderID><![CDATA[NOR999999999-1]]></ServiceProviderID>',
  '<ServiceID><![CDATA[1]]></ServiceID></ServiceProvider></ToInfo>\n  </Request>\n  <EnrollmentRQ>\n')
for n = 1, records do
  out:write('    <EnrollmentAdd><AccountInfoRecord>',
    '<PortalInfo><PortalEnrollmentStatus><![CDATA[A]]></PortalEnrollmentStatus></PortalInfo>',
    '<BillerInfo><BillerAccountNumber><![CDATA[', tostring(1000000 + n), ']]></BillerAccountNumber>',
    '<BillerUserName/><BillerPassword/><BillerEnrollmentStatus>')
  if mode == "big-status" then huge("P") else out:write("<![CDATA[P]]>") end
  out:write('</BillerEnrollmentStatus></BillerInfo><UserInfo><FirstName>')
  if mode == "pieces" then huge("a", true) else out:write("<![CDATA[Kari]]>") end
  out:write('</FirstName><LastName><![CDATA[Nordmann]]></LastName><DayPhone/><Email/>',
    '<UserAddress><Address1><![CDATA[Storgata 1]]></Address1><Address2/><City><![CDATA[Oslo]]></City>',
    '<State/><PostalCode><![CDATA[0045]]></PostalCode><Country><![CDATA[NO]]></Country></UserAddress></UserInfo>',
    '<ThorInfo><ThorContentProviderId><![CDATA[NOR999999999-1]]></ThorContentProviderId>',
    '<ThorUserId><![CDATA[user', tostring(n), '==]]></ThorUserId></ThorInfo><ThorUserKey/>',
    '</AccountInfoRecord></EnrollmentAdd>\n')
end
out:write('  </EnrollmentRQ>\n</Message>\n')
assert(out:close())
