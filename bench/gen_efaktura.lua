--- Generate an eFaktura request file of any size, and the matching customer register.
--
--   giro run bench/gen_efaktura.lua RECORDS OUT.xml [--customers OUT.csv] [--seed N]
--                                   [--provider NOR999999999-1] [--compact]
--
-- The request file looks like the spec's examples (ISO-8859-1, pretty-printed, every
-- value in CDATA with whitespace around it) and carries a realistic mix:
--   45% EnrollmentAdd P     - most match a customer (names as registered, or in capitals,
--                             with a hyphen for a space, with an extra given name);
--                             some carry a mistyped reference (01), another person's
--                             name (02) or a customer whose product has no eFaktura (03)
--    5% reminders           - an EnrollmentAdd P sent again (same key and content)
--   10% EnrollmentChange P
--   20% receipts A, 3% receipts N, 2% receipts D   (EnrollmentChange A/N/D)
--   15% EnrollmentDelete D
-- Names are Norwegian, with Æ/Ø/Å, double given names and hyphenated surnames.
-- Everything streams: memory does not grow with RECORDS (reminders repeat one of the
-- last 1000 requests).  The same seed gives the same files.
local argv = arg
local records, out_path = tonumber(argv[1]), argv[2]
local opts = {}
local i = 3
while argv[i] do
  local a = argv[i]
  if a == "--customers" then opts.customers = argv[i + 1] i = i + 2
  elseif a == "--seed" then opts.seed = tonumber(argv[i + 1]) i = i + 2
  elseif a == "--provider" then opts.provider = argv[i + 1] i = i + 2
  elseif a == "--compact" then opts.compact = true i = i + 1
  else io.stderr:write("gen_efaktura: unknown option ", a, "\n") os.exit(2) end
end
if not records or not out_path then
  io.stderr:write("usage: giro run bench/gen_efaktura.lua RECORDS OUT.xml [--customers OUT.csv] [--seed N] [--provider ID] [--compact]\n")
  os.exit(2)
end
records = math.tointeger(records)
local provider = opts.provider or "NOR999999999-1"
math.randomseed(opts.seed or 2013)

local FIRST = {
  "Ola", "Kari", "Per", "Anne", "Åse", "Bjørn", "Kåre", "Ørjan", "Sølvi", "Øystein", "Åsmund", "Ståle",
  "Jørgen", "Mari-Ann", "Kari Anne", "Per Øyvind", "Hans Petter", "Tor Åge", "Ingrid", "Sigrid", "Ragnhild",
  "Solveig", "Håkon", "Even", "Eirik", "Marit", "Gøril", "Bård", "Kjærsti", "Åshild", "Trygve", "Signe",
  "Liv", "Terje", "Randi", "Jan Erik", "Anne-Grethe", "Espen", "Sindre", "Nora", "Emma", "Jakob", "Aksel",
  "Mathias", "Ida", "Thea", "Sofie", "Ingvild", "René", "Zoë",
}
local LAST = {
  "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
  "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen", "Andreassen",
  "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen", "Lund", "Sørensen", "Jakobsen", "Moen",
  "Gundersen", "Iversen", "Strand", "Solberg", "Svendsen", "Eide", "Knutsen", "Martinsen", "Bakken",
  "Rønning", "Aasen", "Sæther", "Løken", "Bråthen", "Ødegård", "Østby", "Næss", "Brænden", "Grønli",
  "Berg-Hansen", "Fjærli", "Skjærvø", "Åmodt",
}
local STREETS = { "Storgata", "Kirkeveien", "Skolegata", "Bakkeveien", "Fjordgata", "Løkkeveien", "Åsveien",
  "Bjørkelia", "Granåsen", "Sjøgata", "Strandveien", "Møllebakken" }
local TOWNS = { { "0045", "Oslo" }, { "5003", "Bergen" }, { "7010", "Trondheim" }, { "4006", "Stavanger" },
  { "9008", "Tromsø" }, { "2317", "Hamar" }, { "3015", "Drammen" }, { "1606", "Fredrikstad" }, { "8006", "Bodø" },
  { "6002", "Ålesund" }, { "2609", "Lillehammer" }, { "4836", "Arendal" } }

-- UTF-8 -> ISO-8859-1 (the names above are all Latin-1)
local function latin1(s)
  return (s:gsub("[\xC2\xC3][\x80-\xBF]", function(c)
    return string.char(((c:byte(1) & 0x1F) << 6) | (c:byte(2) & 0x3F))
  end))
end

local rand = math.random
local function pick(t) return t[rand(#t)] end

-- customer k: deterministic person
local function customer(k)
  local r = (k * 2654435761) % 4294967296
  local first = FIRST[r % #FIRST + 1]
  local last = LAST[(r // #FIRST) % #LAST + 1]
  local efaktura = (r // 7) % 20 ~= 0           -- 95% of products offer eFaktura
  return string.format("%07d", 1000000 + k), first, last, efaktura
end

local ncustomers = math.max(records, 1)

if opts.customers then
  local c = assert(io.open(opts.customers, "wb"))
  c:write("account_number,first_name,last_name,efaktura,product\n")
  for k = 1, ncustomers do
    local acct, first, last, ef = customer(k)
    c:write(acct, ",", first, ",", last, ",", ef and "yes" or "no", ",", ef and "strøm" or "bedrift", "\n")
  end
  c:close()
end

local f = assert(io.open(out_path, "wb"))
local ind = opts.compact and function() return "" end or function(n) return string.rep("  ", n) end
local nl = opts.compact and "" or "\n"
local function cdata(n, tag, v)
  if v == "" then return ind(n) .. "<" .. tag .. " />" .. nl end
  return ind(n) .. "<" .. tag .. "> <![CDATA[" .. v .. "]]> </" .. tag .. ">" .. nl
end

f:write('<?xml version="1.0" encoding="iso-8859-1"?>', nl, "<Message>", nl,
  ind(1), "<Request>", nl, ind(2), "<FromInfo>", nl, ind(3), "<ServiceProvider>", nl,
  cdata(4, "ServiceProviderName", "8080"), ind(3), "</ServiceProvider>", nl, ind(2), "</FromInfo>", nl,
  ind(2), "<ToInfo>", nl, ind(3), "<ServiceProvider>", nl,
  cdata(4, "ServiceProviderID", provider), cdata(4, "ServiceID", "1"),
  ind(3), "</ServiceProvider>", nl, ind(2), "</ToInfo>", nl, ind(1), "</Request>", nl)

local function record(element, status, acct, user, first, last, addr, post, town)
  local parts = {
    ind(2), "<", element, ">", nl, ind(3), "<AccountInfoRecord>", nl,
    ind(4), "<PortalInfo>", nl, cdata(5, "PortalEnrollmentStatus", "A"), ind(4), "</PortalInfo>", nl,
    ind(4), "<BillerInfo>", nl, cdata(5, "BillerAccountNumber", acct), ind(5), "<BillerUserName />", nl,
    ind(5), "<BillerPassword />", nl, cdata(5, "BillerEnrollmentStatus", status), ind(4), "</BillerInfo>", nl,
    ind(4), "<UserInfo>", nl, cdata(5, "FirstName", first), cdata(5, "LastName", last),
    ind(5), "<DayPhone />", nl, ind(5), "<Email />", nl, ind(5), "<UserAddress>", nl,
    cdata(6, "Address1", addr), cdata(6, "Address2", ""), cdata(6, "City", town), ind(6), "<State />", nl,
    cdata(6, "PostalCode", post), cdata(6, "Country", addr ~= "" and "NO" or ""), ind(5), "</UserAddress>", nl,
    ind(4), "</UserInfo>", nl,
    ind(4), "<ThorInfo>", nl, cdata(5, "ThorContentProviderId", provider), cdata(5, "ThorUserId", user),
    ind(4), "</ThorInfo>", nl, ind(4), "<ThorUserKey />", nl,
    ind(3), "</AccountInfoRecord>", nl, ind(2), "</", element, ">", nl,
  }
  return latin1(table.concat(parts))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function thor_user_id()
  local t = {}
  for j = 1, 22 do local k = rand(64) t[j] = B64:sub(k, k) end
  return table.concat(t) .. "=="
end

-- how the consumer writes their own name in the netbank
local function typed(first, last)
  local r = rand(100)
  if r <= 70 then return first, last end
  if r <= 80 then return first:upper(), last:upper() end    -- ASCII-only upper; Æ/Ø/Å stay (tests case folding of the rest)
  if r <= 88 then return (first:gsub(" ", "-")), (last:gsub("-", " ")) end
  if r <= 95 then return first .. " " .. pick(FIRST):gsub(" .*", ""), last end
  return "  " .. first .. "  ", last .. " "
end

local recent, nrecent = {}, 0          -- ring of recent Add P records for reminders
local RING = 1000
local per_rq = 50                      -- records per EnrollmentRQ
local in_rq = 0
for n = 1, records do
  if in_rq == 0 then f:write(ind(1), "<EnrollmentRQ>", nl) end
  local r = rand(100)
  local k = rand(ncustomers)
  local acct, first, last = customer(k)
  local user = thor_user_id()
  local t = TOWNS[rand(#TOWNS)]
  local addr = pick(STREETS) .. " " .. rand(120)
  local out
  if r <= 45 then
    local tf, tl = typed(first, last)
    local v = rand(100)
    if v <= 6 then
      acct = acct:sub(1, 5) .. tostring((tonumber(acct:sub(6, 6)) + 1) % 10) .. acct:sub(7)   -- typo: 01 (or another customer)
      acct = "9" .. acct                                                                     -- 8 digits: no such customer
    elseif v <= 12 then
      tf, tl = pick(FIRST), "Feilnavn"                                                        -- someone else: 02
      if tf == first then tf = "Annen" end
    elseif v <= 16 then
      acct = acct:sub(1, 3) .. " " .. acct:sub(4)                                             -- typed with a space
    end
    out = record("EnrollmentAdd", "P", acct, user, tf, tl, addr, t[1], t[2])
    nrecent = nrecent + 1
    recent[(nrecent - 1) % RING + 1] = out
  elseif r <= 50 and nrecent > 0 then
    out = recent[rand(math.min(nrecent, RING))]                                               -- reminder
  elseif r <= 60 then
    out = record("EnrollmentChange", "P", acct, user, first, last, addr, t[1], t[2])
  elseif r <= 80 then
    out = record("EnrollmentChange", "A", acct, user, "", "", "", "", "")
  elseif r <= 83 then
    out = record("EnrollmentChange", "N", acct, user, "", "", "", "", "")
  elseif r <= 85 then
    out = record("EnrollmentChange", "D", acct, user, "", "", "", "", "")
  else
    out = record("EnrollmentDelete", "D", acct, user, "", "", "", "", "")
  end
  f:write(out)
  in_rq = in_rq + 1
  if in_rq == per_rq or n == records then f:write(ind(1), "</EnrollmentRQ>", nl) in_rq = 0 end
end
if records == 0 then f:write(ind(1), "<EnrollmentRQ>", nl, ind(1), "</EnrollmentRQ>", nl) end
f:write("</Message>", nl)
f:close()
