--- giro.ref — reference numbers and identifiers: create, check, normalize, format.
--
--   local ref = require("giro.ref")
--   ref.create("fi", "1234")                -> "12344"
--   ref.check("iban", "NO93 8601 1117 947") -> true
--   ref.check("fi", "12345")                -> false, "wrong check digit: expected 4"
--   ref.normalize("no-account", "8601.11.17947") -> "86011117947"
--   ref.format("fi", "12345672")             -> "123 45672"
--
-- The split: this file knows the kinds (lengths, separators, the IBAN country
-- table, the printed forms); the arithmetic is C in giro.checkdigit.
--
-- Behaviour shared by every kind (docs/ref.md has the details):
--  * check, normalize and format all accept the printed forms: spaces are
--    ignored, and so are the separators of that kind, as python-stdnum takes
--    them ('.', '-' and surrounding whitespace in IBANs and Norwegian account
--    numbers; '-', '.', ',', '/', ':' in RF; '-' in Y-tunnus), the NOR…-N and
--    NO…MVA forms of Norwegian organisation numbers, the "IBAN" prefix; IBAN
--    and RF are case-insensitive.  IBANs are checked for the BBAN's structure
--    and national check digits too (docs/ref.md).
--  * check(kind, s)     -> true | false, reason
--  * normalize(kind, s) -> canonical compact form | nil, reason
--  * format(kind, s)    -> printed form          | nil, reason
--  * create(kind, base) -> canonical number with its check digit(s) | nil, reason
--    create("kid10"|"kid11", base, { length = N }) -> a KID of exactly N
--    characters, the base zero-padded on the left (nil, reason when too long)
--  * reasons are short English phrases naming the problem and what was
--    expected: "wrong length: 12 digits, expected 11",
--    "bad character 'x' at position 3", "wrong check digit: expected 4".
--  * an unknown kind or a non-string argument is a programmer error and raises.
local cd = require("giro.checkdigit")

local byte, char, find, sub, upper, gsub, fmt =
  string.byte, string.char, string.find, string.sub, string.upper, string.gsub, string.format
local fi_check, luhn, mod11, weighted, mod97 =
  cd.fi_check, cd.luhn, cd.mod11, cd.weighted, cd.iso7064_mod97

local ref = {}

-- ---------------------------------------------------------------------------
-- helpers

-- "bad character 'x' at position N" in the same words as giro.checkdigit
local function bad_char(s, pos)
  local c = byte(s, pos)
  local shown = (c >= 0x20 and c < 0x7f and c ~= 0x27) and ("'" .. char(c) .. "'")
    or fmt("byte 0x%02X", c)
  return nil, fmt("bad character %s at position %d", shown, pos)
end

-- the first character of s matching the class `bad` is refused
local function scan(s, bad)
  local p = find(s, bad)
  if p then return bad_char(s, p) end
  return s
end

local function strip_spaces(s)
  if find(s, " ", 1, true) then s = gsub(s, " +", "") end
  return s
end

local function groups_from_right(s, size, sep)
  local n = #s
  local head = n % size
  local parts = {}
  if head > 0 then parts[1] = sub(s, 1, head) end
  for i = head + 1, n, size do parts[#parts + 1] = sub(s, i, i + size - 1) end
  return table.concat(parts, sep)
end

local function groups_from_left(s, size)
  local parts = {}
  for i = 1, #s, size do parts[#parts + 1] = sub(s, i, i + size - 1) end
  return table.concat(parts, " ")
end

local function length_reason(n, unit, lo, hi, suffix)
  local want = lo == hi and tostring(lo) or (lo .. " to " .. hi)
  return fmt("wrong length: %d %s%s, expected %s%s", n, unit, n == 1 and "" or "s", want, suffix or "")
end

local function check_digit_reason(expected)
  return "wrong check digit: expected " .. expected
end

-- MOD11 (weights 2..7 from the right) where 10 has no digit: Norwegian
-- account and organisation numbers.
local function mod11_strict(d, last)
  local c = mod11(d, nil, 1, last)
  if c == 10 then
    return nil, "wrong check digit: no digit is valid after these digits (MOD11 gives 10)"
  end
  return c
end

-- ---------------------------------------------------------------------------
-- the kinds: each has summary, parse (-> canonical | nil, reason),
-- show (canonical -> printed) and make (base -> canonical | nil, reason)

local kinds = {}
ref.kinds = kinds

-- Finnish reference number (viitenumero).  Finance Finland / Finnish Bankers'
-- Association: weights 7, 3, 1, 7, … from the right; check digit is
-- (10 - sum mod 10) mod 10; 3..19 digits + check digit.  Leading zeros carry
-- no weight and are not part of the number: the 20-digit zero-padded form of
-- the virtual bar code is accepted and normalizes to the short form.
kinds.fi = {
  summary = "Finnish reference number (viitenumero), 7-3-1, 4-20 digits",
  parse = function(s)
    local d, why = scan(s, "[^%d ]")
    if not d then return nil, why end
    d = strip_spaces(d)
    local n = #d
    if n > 20 then return nil, length_reason(n, "digit", 4, 20) end
    if byte(d, 1) == 48 then
      local z = find(d, "[^0]")
      if not z then return nil, length_reason(0, "significant digit", 4, 20) end
      d = sub(d, z)
      if #d < 4 then return nil, length_reason(#d, "significant digit", 4, 20) end
      n = #d
    elseif n < 4 then
      return nil, length_reason(n, "digit", 4, 20)
    end
    local c = fi_check(d, 1, n - 1)
    if c + 48 ~= byte(d, n) then return nil, check_digit_reason(c) end
    return d
  end,
  -- Finance Finland prints references in groups of five from the right
  show = function(d) return groups_from_right(d, 5, " ") end,
  make = function(base)
    local d, why = scan(base, "[^%d ]")
    if not d then return nil, why end
    d = strip_spaces(d)
    local z = find(d, "[^0]")
    d = z and sub(d, z) or ""
    if #d < 3 or #d > 19 then return nil, length_reason(#d, "significant digit", 3, 19, " in the base") end
    return d .. fi_check(d)
  end,
}

-- ISO 11649 creditor reference: "RF", two check digits (ISO 7064 MOD 97-10
-- over reference .. "RF" .. check digits, letters A=10 … Z=35), then 1..21
-- letters or digits.  Check digits run 02..98.
local function rf_check_digits(body)
  return 98 - mod97(body .. "RF00")
end

kinds.rf = {
  summary = "ISO 11649 creditor reference (RF + 2 check digits, mod 97-10)",
  parse = function(s)
    -- python-stdnum's separators: space - . , / : anywhere, surrounding whitespace
    local lead, d = s:match("^(%s*)(.-)%s*$")
    local p = find(d, "[^%w %-%.,/:]")
    if p then return bad_char(s, #lead + p) end
    if find(d, "[ %-%.,/:]") then d = gsub(d, "[ %-%.,/:]+", "") end
    if find(d, "%l") then d = upper(d) end
    local n = #d
    if n < 5 or n > 25 then return nil, length_reason(n, "character", 5, 25) end
    if sub(d, 1, 2) ~= "RF" then return nil, "wrong prefix: expected RF" end
    local cc = sub(d, 3, 4)
    if find(cc, "%D") then return nil, "bad check digits '" .. cc .. "': expected two digits" end
    local ccn = tonumber(cc)
    if mod97(d, 4) ~= 1 or ccn < 2 or ccn > 98 then
      return nil, fmt("wrong check digits: expected %02d", rf_check_digits(sub(d, 5)))
    end
    return d
  end,
  show = function(d) return groups_from_left(d, 4) end,
  make = function(base)
    local d, why = scan(base, "[^%w ]")
    if not d then return nil, why end
    d = upper(strip_spaces(d))
    if #d < 1 or #d > 21 then return nil, length_reason(#d, "character", 1, 21, " in the reference") end
    return fmt("RF%02d%s", rf_check_digits(d), d)
  end,
}

-- Norwegian KID (kundeidentifikasjon), 2..25 characters, the last one a
-- check digit: MOD10 is Luhn; MOD11 uses weights 2..7 from the right and
-- 11 - sum mod 11, where 11 gives 0 and 10 gives '-' (Nets OCR giro).
-- Leading zeros are significant (KIDs are fixed-width fields).
local function kid_parse(s, allowed, expect)
  local d, why = scan(s, allowed)
  if not d then return nil, why end
  d = strip_spaces(d)
  local n = #d
  if n < 2 or n > 25 then return nil, length_reason(n, "character", 2, 25) end
  local dash = find(d, "-", 1, true)
  if dash and dash < n then
    local _, off = find(s, "-", 1, true)   -- position in the caller's string
    return bad_char(s, off)
  end
  local c = expect(d, n)
  if c ~= byte(d, n) then return nil, check_digit_reason(char(c)) end
  return d
end

-- opts.length: the KID's whole length N (2..25, check digit included); the
-- base is zero-padded on the left to N - 1 digits (zeros weigh nothing, so the
-- check digit is that of the base) and refused when it is longer.
local function kid_make(base, digit, opts)
  local d, why = scan(base, "[^%d ]")
  if not d then return nil, why end
  d = strip_spaces(d)
  local len = opts ~= nil and opts.length or nil
  if len ~= nil then
    if math.type(len) ~= "integer" or len < 2 or len > 25 then
      error("giro.ref: length must be an integer 2..25, got " .. tostring(len), 3)
    end
    if #d < 1 or #d > len - 1 then
      return nil, length_reason(#d, "digit", 1, len - 1, fmt(" in the base of a %d-digit KID", len))
    end
    d = string.rep("0", len - 1 - #d) .. d
  end
  if #d < 1 or #d > 24 then return nil, length_reason(#d, "digit", 1, 24, " in the base") end
  return d .. digit(d)
end

local function kid10_expect(d, n)
  local c, why = luhn(d, 1, n - 1)
  return c and c + 48, why
end

local function kid11_expect(d, n)
  local c = mod11(d, nil, 1, n - 1)
  return c == 10 and 45 or c + 48   -- '-' or the digit
end

kinds.kid10 = {
  summary = "Norwegian KID with MOD10 (Luhn) check digit, 2-25 digits",
  parse = function(s) return kid_parse(s, "[^%d ]", kid10_expect) end,
  show = function(d) return d end,
  make = function(base, opts) return kid_make(base, luhn, opts) end,
}

kinds.kid11 = {
  summary = "Norwegian KID with MOD11 check digit ('-' for 10), 2-25 characters",
  parse = function(s) return kid_parse(s, "[^%d %-]", kid11_expect) end,
  show = function(d) return d end,
  make = function(base, opts)
    return kid_make(base, function(d)
      local c = mod11(d)
      return c == 10 and "-" or c
    end, opts)
  end,
}

-- Norwegian bank account number: 11 digits (4 bank + 2 account type + 5),
-- MOD11 with weights 5,4,3,2,7,6,5,4,3,2 from the left (= 2..7 cycling from
-- the right); a number whose check digit would be 10 is never issued.
kinds["no-account"] = {
  summary = "Norwegian bank account number, 11 digits, MOD11",
  parse = function(s)
    -- python-stdnum's separators: spaces, '.' and '-'; surrounding whitespace
    local lead, d = s:match("^(%s*)(.-)%s*$")
    local p = find(d, "[^%d %.%-]")
    if p then return bad_char(s, #lead + p) end
    if find(d, "[ %.%-]") then d = gsub(d, "[ %.%-]+", "") end
    if #d ~= 11 then return nil, length_reason(#d, "digit", 11, 11) end
    -- 0000 is no bank's number (python-stdnum reads 0000 + 7 digits as an old
    -- postgiro number; no such account takes payments today)
    if sub(d, 1, 4) == "0000" then return nil, "bad bank code 0000: no bank has it" end
    local c, bad = mod11_strict(d, 10)
    if not c then return nil, bad end
    if c + 48 ~= byte(d, 11) then return nil, check_digit_reason(c) end
    return d
  end,
  show = function(d) return sub(d, 1, 4) .. "." .. sub(d, 5, 6) .. "." .. sub(d, 7) end,
  make = function(base)
    local d, why = scan(base, "[^%d %.]")
    if not d then return nil, why end
    d = gsub(d, "[ %.]+", "")
    if #d ~= 10 then return nil, length_reason(#d, "digit", 10, 10, " in the base") end
    if sub(d, 1, 4) == "0000" then return nil, "bad bank code 0000: no bank has it" end
    local c, bad = mod11_strict(d, 10)
    if not c then return nil, bad end
    return d .. c
  end,
}

-- Norwegian organisation number (Brønnøysundregistrene): 9 digits, MOD11 with
-- weights 3,2,7,6,5,4,3,2 from the left; 10 is never issued.  Also accepted:
-- the eFaktura/BBS form NOR999999999-1 (ThorContentProviderId,
-- ServiceProviderID) and the VAT form NO999999999MVA; both normalize to the
-- nine digits.
local function org_digits(s)
  local t = strip_spaces(s)
  local u = upper(t)
  if sub(u, 1, 3) == "NOR" then
    local nine = u:match("^NOR(%d%d%d%d%d%d%d%d%d)%-%d+$")
    if not nine then return nil, "bad NOR form: expected NOR, 9 digits, '-' and a digit (NOR999999999-1)" end
    return nine
  end
  if sub(u, 1, 2) == "NO" and sub(u, -3) == "MVA" then
    local nine = u:match("^NO(%d+)MVA$")
    if not nine then return nil, "bad VAT form: expected NO, 9 digits, MVA (NO999999999MVA)" end
    if #nine ~= 9 then return nil, length_reason(#nine, "digit", 9, 9) end
    return nine
  end
  local p = find(s, "[^%d ]")
  if p then return bad_char(s, p) end
  return t
end

kinds["no-org"] = {
  summary = "Norwegian organisation number, 9 digits, MOD11 (also NOR999999999-1)",
  parse = function(s)
    local d, why = org_digits(s)
    if not d then return nil, why end
    if #d ~= 9 then return nil, length_reason(#d, "digit", 9, 9) end
    local c, bad = mod11_strict(d, 8)
    if not c then return nil, bad end
    if c + 48 ~= byte(d, 9) then return nil, check_digit_reason(c) end
    return d
  end,
  show = function(d) return sub(d, 1, 3) .. " " .. sub(d, 4, 6) .. " " .. sub(d, 7) end,
  make = function(base)
    local d, why = scan(base, "[^%d ]")
    if not d then return nil, why end
    d = strip_spaces(d)
    if #d ~= 8 then return nil, length_reason(#d, "digit", 8, 8, " in the base") end
    local c, bad = mod11_strict(d, 8)
    if not c then return nil, bad end
    return d .. c
  end,
}

-- Finnish business ID (Y-tunnus), Finnish Patent and Registration Office /
-- Tax Administration: 7 digits, a hyphen, a check digit.  Weights
-- 7,9,10,5,8,4,2 from the left; r = sum mod 11; r = 0 gives 0, r = 1 is never
-- issued, otherwise 11 - r.  Old 6-digit IDs take a leading zero; the VAT
-- form FI12345678 is accepted.  The canonical form keeps the hyphen, as the
-- registers print it.
local YTUNNUS_WEIGHTS = { 2, 4, 8, 5, 10, 9, 7 }  -- 7,9,10,5,8,4,2 read from the right

local function ytunnus_digit(seven)
  local r = weighted(seven, YTUNNUS_WEIGHTS, 11, 1, 7)
  if r == 1 then
    return nil, "wrong check digit: no digit is valid after these digits (MOD11 remainder 1)"
  end
  return r == 0 and 0 or 11 - r
end

local function ytunnus_body(s, with_check)
  local lead = s:match("^%s*")
  local pre = s:match("^%s*[Ff][Ii]")       -- VAT form FI12345678
  local start = pre and #pre + 1 or #lead + 1
  local stop = #s - #s:match("%s*$")        -- surrounding whitespace is dropped (python-stdnum)
  local p = find(sub(s, 1, stop), "[^%d %-]", start)
  if p then return bad_char(s, p) end
  s = sub(s, 1, stop)
  local t = strip_spaces(sub(s, start))
  if with_check then
    -- the old six-digit form 737546-2 takes a leading zero; otherwise, as python-stdnum,
    -- hyphens anywhere are separators and eight digits remain
    local left, right = t:match("^(%d%d%d%d%d%d)%-(%d)$")
    if left then return "0" .. left, right end
    if find(t, "-", 1, true) then t = gsub(t, "%-+", "") end
    if #t ~= 8 then return nil, length_reason(#t, "digit", 8, 8) end
    return sub(t, 1, 7), sub(t, 8)
  end
  if find(t, "-", 1, true) then return bad_char(s, find(s, "-", 1, true)) end
  if #t == 6 then t = "0" .. t end
  if #t ~= 7 then return nil, length_reason(#t, "digit", 7, 7, " in the base") end
  return t
end

kinds["fi-business"] = {
  summary = "Finnish business ID (Y-tunnus), 7 digits + MOD11 check digit, 1234567-8",
  parse = function(s)
    local left, right = ytunnus_body(s, true)
    if not left then return nil, right end
    local c, bad = ytunnus_digit(left)
    if not c then return nil, bad end
    if c + 48 ~= byte(right) then return nil, check_digit_reason(c) end
    return left .. "-" .. right
  end,
  show = function(d) return d end,
  make = function(base)
    local t, why = ytunnus_body(base, false)
    if not t then return nil, why end
    local c, bad = ytunnus_digit(t)
    if not c then return nil, bad end
    return t .. "-" .. c
  end,
}

-- IBAN, ISO 13616: country code, two check digits (ISO 7064 MOD 97-10 over
-- BBAN .. country .. check digits, letters A=10 … Z=35), BBAN.  Lengths from
-- the SWIFT IBAN Registry (ISO 13616 registration authority,
-- https://www.swift.com/standards/data-standards/iban), for every country of
-- the SEPA schemes (EPC list of SEPA countries, EPC409-09): EU and EEA
-- members, CH, GB, AD, GI, MC, SM, VA, and AL, MD, ME, MK, RS which joined
-- in 2024-2025.  Territories that use a parent's IBAN (AX with FI; GF, GP, MQ,
-- RE, YT, PM, BL, MF with FR; GG, IM, JE with GB) carry the parent's code.
local IBAN_LENGTH = {
  AD = 24, AL = 28, AT = 20, BE = 16, BG = 22, CH = 21, CY = 28, CZ = 24,
  DE = 22, DK = 18, EE = 20, ES = 24, FI = 18, FR = 27, GB = 22, GI = 23,
  GR = 27, HR = 21, HU = 28, IE = 22, IS = 26, IT = 27, LI = 21, LT = 20,
  LU = 20, LV = 21, MC = 27, MD = 24, ME = 22, MK = 19, MT = 31, NL = 18,
  NO = 15, PL = 28, PT = 25, RO = 24, RS = 22, SE = 24, SI = 19, SK = 24,
  SM = 27, VA = 22,
}
ref.IBAN_LENGTH = IBAN_LENGTH

local function iban_check_digits(cc, bban)
  return 98 - mod97(bban .. cc .. "00")
end

-- The BBAN's structure per country, as the SWIFT IBAN Registry writes it
-- ("4!n6!n1!n": 4 digits, 6 digits, 1 digit; a = upper-case letter, c = letter
-- or digit).  Same registry (release 2023) as python-stdnum's iban.dat.
local IBAN_BBAN = {
  AD = "4!n4!n12!c", AL = "8!n16!c", AT = "5!n11!n", BE = "3!n7!n2!n", BG = "4!a4!n2!n8!c",
  CH = "5!n12!c", CY = "3!n5!n16!c", CZ = "4!n6!n10!n", DE = "8!n10!n", DK = "4!n9!n1!n",
  EE = "2!n2!n11!n1!n", ES = "4!n4!n1!n1!n10!n", FI = "3!n11!n", FR = "5!n5!n11!c2!n",
  GB = "4!a6!n8!n", GI = "4!a15!c", GR = "3!n4!n16!c", HR = "7!n10!n", HU = "3!n4!n1!n15!n1!n",
  IE = "4!a6!n8!n", IS = "4!n2!n6!n10!n", IT = "1!a5!n5!n12!c", LI = "5!n12!c", LT = "5!n11!n",
  LU = "3!n13!c", LV = "4!a13!c", MC = "5!n5!n11!c2!n", MD = "2!c18!c", ME = "3!n13!n2!n",
  MK = "3!n10!c2!n", MT = "4!a5!n18!c", NL = "4!a10!n", NO = "4!n6!n1!n", PL = "8!n16!n",
  PT = "4!n4!n11!n2!n", RO = "4!a16!c", RS = "3!n13!n2!n", SE = "3!n16!n1!n", SI = "5!n8!n2!n",
  SK = "4!n6!n10!n", SM = "1!a5!n5!n12!c", VA = "3!n15!n",
}

-- each structure as a list of { from, to, class, what } runs
local IBAN_RUNS = {}
for cc, st in pairs(IBAN_BBAN) do
  local runs, pos = {}, 1
  for n, t in st:gmatch("(%d+)!(%a)") do
    n = tonumber(n)
    runs[#runs + 1] = { pos, pos + n - 1, t == "n" and "%D" or t == "a" and "%U" or "[^%u%d]",
                        t == "n" and "digits" or t == "a" and "letters" or "letters or digits" }
    pos = pos + n
  end
  assert(pos - 1 + 4 == IBAN_LENGTH[cc], cc)
  IBAN_RUNS[cc] = runs
end

local function iban_structure(cc, d)
  for _, run in ipairs(IBAN_RUNS[cc]) do
    local from, to = run[1] + 4, run[2] + 4
    local p = find(sub(d, from, to), run[3])
    if p then
      return nil, fmt("bad character '%s' at position %d: the %s BBAN has %s in positions %d-%d (%s)",
        sub(d, from + p - 1, from + p - 1), from + p - 1, cc, run[4], from, to, IBAN_BBAN[cc])
    end
  end
  return true
end

-- National check digits inside the BBAN (positions counted in the IBAN).
-- python-stdnum checks NO, BE, ES and ME; giro also FI, RS, MK and SI.
local function bban_mod97(d)       -- the whole BBAN, ISO 7064 MOD 97-10, gives 1
  if mod97(sub(d, 5)) ~= 1 then return nil, "wrong national check digits: the BBAN's mod 97 must be 1" end
  return true
end

local ES_WEIGHTS = { 6, 3, 7, 9, 10, 5, 8, 4, 2, 1 }   -- 1,2,4,8,5,10,9,7,3,6 read from the right
local function es_digit(ten)
  local c = weighted(ten, ES_WEIGHTS, 11)
  return c < 2 and c or 11 - c
end

local IBAN_NATIONAL = {
  -- Norway: the 11-digit account number with its MOD11 check digit (no-account)
  NO = function(d)
    local ok, why = kinds["no-account"].parse(sub(d, 5))
    if not ok then return nil, "the account number inside: " .. why end
    return true
  end,
  -- Belgium: the last two digits are the first ten mod 97, 97 for 0
  -- (National Bank of Belgium, protocol for the standardisation of bank account numbers)
  BE = function(d)
    local c = mod97(sub(d, 5, 14))
    if c == 0 then c = 97 end
    if tonumber(sub(d, 15, 16)) ~= c then return nil, fmt("wrong national check digits: expected %02d", c) end
    return true
  end,
  -- Spain: CCC entity(4) office(4) DC(2) account(10); the first DC digit over
  -- "00" .. entity .. office, the second over the account, weights
  -- 1,2,4,8,5,10,9,7,3,6 from the left, 11 - sum mod 11 with 11 -> 0, 10 -> 1
  ES = function(d)
    local want = es_digit("00" .. sub(d, 5, 12)) .. es_digit(sub(d, 15, 24))
    if sub(d, 13, 14) ~= want then return nil, "wrong national check digits: expected " .. want end
    return true
  end,
  -- Finland: the 14-digit account ends in its Luhn digit (Finance Finland)
  FI = function(d)
    local c = luhn(d, 5, 17)
    if c + 48 ~= byte(d, 18) then return nil, "wrong account check digit: expected " .. c end
    return true
  end,
  -- Montenegro, Serbia, North Macedonia, Slovenia: two check digits at the
  -- end of the BBAN, ISO 7064 MOD 97-10 over the whole BBAN
  ME = bban_mod97, RS = bban_mod97, MK = bban_mod97, SI = bban_mod97,
}

-- python-stdnum's compact(): spaces, '-' and '.' anywhere are separators,
-- surrounding whitespace is dropped; giro also takes an "IBAN" prefix.
local function iban_compact(s)
  local d = s
  if find(d, "[ %-%.]") then d = gsub(d, "[ %-%.]+", "") end
  if find(d, "^%s") or find(d, "%s$") then d = d:match("^%s*(.-)%s*$") end
  local p = find(d, "[^%w]")
  if p then
    local at = find(s, sub(d, p, p), 1, true)   -- position in the caller's string
    return bad_char(s, at)
  end
  if find(d, "%l") then d = upper(d) end
  if byte(d, 1) == 73 and byte(d, 2) == 66 and sub(d, 1, 4) == "IBAN" then d = sub(d, 5) end
  return d
end

local function iban_country(d)
  local cc = sub(d, 1, 2)
  if not find(cc, "^%u%u$") then return nil, "bad country code: expected two letters" end
  local want = IBAN_LENGTH[cc]
  if not want then return nil, "unknown country code '" .. cc .. "': not a SEPA IBAN country" end
  return cc, want
end

kinds.iban = {
  summary = "IBAN (ISO 13616, mod 97-10, BBAN structure, national check digits), every SEPA country",
  parse = function(s)
    local d, why = iban_compact(s)
    if not d then return nil, why end
    local n = #d
    if n < 5 then return nil, length_reason(n, "character", 15, 34) end
    local cc, want = iban_country(d)
    if not cc then return nil, want end
    if n ~= want then return nil, length_reason(n, "character", want, want, " for " .. cc) end
    local k1, k2 = byte(d, 3, 4)
    if k1 < 48 or k1 > 57 or k2 < 48 or k2 > 57 then
      return nil, "bad check digits '" .. sub(d, 3, 4) .. "': expected two digits"
    end
    local ok, bad = iban_structure(cc, d)
    if not ok then return nil, bad end
    local kn = (k1 - 48) * 10 + k2 - 48
    if mod97(d, 4) ~= 1 or kn < 2 or kn > 98 then
      return nil, fmt("wrong check digits: expected %02d", iban_check_digits(cc, sub(d, 5)))
    end
    local national = IBAN_NATIONAL[cc]
    if national then
      ok, bad = national(d)
      if not ok then return nil, bad end
    end
    return d
  end,
  show = function(d) return groups_from_left(d, 4) end,
}

-- Finnish domestic account "BBBBBB-CCCCCCCC" -> the 14-digit electronic form
-- (Federation of Finnish Financial Services, "The structure of Finnish bank
-- account numbers", 2009): for banks whose number starts with 4 (savings
-- banks, POP banks, Aktia) or 5 (OP) the zeros go after the 7th digit, for
-- all others after the 6th.  The last digit is a Luhn check digit over the
-- 14 digits.  Examples there: 123456-785 -> 12345600000785,
-- 423456-781 -> 42345670000081.
local function fi_machine_account(s)
  local head, tail = s:match("^(%d%d%d%d%d%d)%-(%d+)$")
  local d
  if head then
    if #tail < 2 or #tail > 8 then
      return nil, length_reason(#tail, "digit", 2, 8, " after the hyphen")
    end
    local first = sub(head, 1, 1)
    if first == "4" or first == "5" then
      d = head .. sub(tail, 1, 1) .. string.rep("0", 8 - #tail) .. sub(tail, 2)
    else
      d = head .. string.rep("0", 8 - #tail) .. tail
    end
  else
    if find(s, "%D") then return nil, "bad Finnish account: expected BBBBBB-CCCCCCCC or 14 digits" end
    if #s ~= 14 then return nil, length_reason(#s, "digit", 14, 14, " in a Finnish account") end
    d = s
  end
  local c = luhn(d, 1, 13)
  if c + 48 ~= byte(d, 14) then return nil, "wrong account check digit: expected " .. c end
  return d
end

-- create("iban", base [, country]): base is a domestic account, with its
-- country code in front ("NO 8601.11.17947", "FI 123456-785",
-- "DE370400440532013000") or given as the second argument.  Without either,
-- 11 digits (dots allowed) are read as Norwegian and BBBBBB-C… as Finnish.
-- NO: the 11-digit account must pass MOD11; FI: converted to 14 digits as
-- above; any other SEPA country: the BBAN is taken as given.
kinds.iban.make = function(base, country)
  local t = strip_spaces(base)
  local cc = country and upper(country) or nil
  if cc and upper(sub(t, 1, 2)) == cc then t = sub(t, 3) end
  if not cc and find(t, "^%a%a") then cc, t = upper(sub(t, 1, 2)), sub(t, 3) end
  if not cc then
    if find(t, "^%d%d%d%d%d%d%-%d+$") then cc = "FI"
    elseif #gsub(t, "%.", "") == 11 and not find(t, "[^%d%.]") then cc = "NO"
    else return nil, "unknown country: give the account with its country code (NO…, FI…)" end
  end
  if not IBAN_LENGTH[cc] then return nil, "unknown country code '" .. cc .. "': not a SEPA IBAN country" end
  local bban, why
  if cc == "NO" then
    bban, why = kinds["no-account"].parse(t)
  elseif cc == "FI" then
    bban, why = fi_machine_account(t)
  else
    local p = find(t, "[^%w]")
    if p then return nil, "bad character '" .. sub(t, p, p) .. "' in the account" end
    bban = upper(t)
    if #bban + 4 ~= IBAN_LENGTH[cc] then
      why = length_reason(#bban, "character", IBAN_LENGTH[cc] - 4, IBAN_LENGTH[cc] - 4, " in a " .. cc .. " account")
      bban = nil
    end
  end
  if not bban then return nil, why end
  local iban = fmt("%s%02d%s", cc, iban_check_digits(cc, bban), bban)
  -- the BBAN's structure and national check digits
  local ok, bad = kinds.iban.parse(iban)
  if not ok then return nil, bad end
  return iban
end

-- ---------------------------------------------------------------------------
-- the public functions

local function get_kind(kind)
  local k = kinds[kind]
  if k == nil then
    error("giro.ref: unknown kind '" .. tostring(kind) .. "' (see giro.ref.names())", 3)
  end
  return k
end

local function get_string(s, what)
  local t = type(s)
  if t == "string" then return s end
  if t == "number" and math.type(s) == "integer" and s >= 0 then return tostring(s) end
  error(fmt("giro.ref: %s must be a string, got %s", what, t), 3)
end

--- true, or false and the reason
function ref.check(kind, s)
  local k = get_kind(kind)
  local ok, why = k.parse(get_string(s, "number"))
  if ok then return true end
  return false, why
end

--- the canonical compact form, or nil and the reason
function ref.normalize(kind, s)
  return get_kind(kind).parse(get_string(s, "number"))
end

--- the printed form, or nil and the reason
function ref.format(kind, s)
  local k = get_kind(kind)
  local d, why = k.parse(get_string(s, "number"))
  if not d then return nil, why end
  return k.show(d)
end

--- the full number (canonical form) with its check digit(s), or nil and the reason
function ref.create(kind, base, ...)
  local k = get_kind(kind)
  return k.make(get_string(base, "base"), ...)
end

--- the kind names, sorted
function ref.names()
  local t = {}
  for name in pairs(kinds) do t[#t + 1] = name end
  table.sort(t)
  return t
end

return ref
