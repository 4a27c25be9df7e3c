-- giro.ref and giro.checkdigit against published examples, hand-computed
-- boundaries (arithmetic shown), garbage input, the CLI, and properties.
--
-- Sources of the vectors:
--  [DANSKE]  /work/shared/seeds/004 (Danske Bank Verkkomaksupalvelu v4) and its
--            digest specs/danske-verkkomaksu.md: base 123 -> 1232; 123 too short.
--  [SP]      /work/shared/seeds/003 (Säästöpankki nätbetalning v1.2) and its digest
--            specs/saastopankki-verkkomaksu.md: references 12344 (valid), 9999
--            (invalid), 122323 (not a valid reference).
--  [EFAKT]   /work/shared/seeds/002 (Nets Påmelding i XML-format v2.9): NOR999999999-1
--            (ThorContentProviderId) and NOR123456789-1 (field-table example).
--  [FBA]     Finnish Bankers' Association / Finance Finland reference-number
--            guide: specifier 1234567 -> 12345672; RF form of 2348236 is RF332348236.
--  [ISO11649] ISO 11649 example RF18 5390 0754 7034.
--  [REG]     SWIFT IBAN Registry, the example IBAN of each country.
--  [FFFS]    Federation of Finnish Financial Services, "The structure of Finnish
--            bank account numbers" (2009): 123456-785 -> 12345600000785,
--            423456-781 -> 42345670000081; ECBS page for FI: FI5542345670000081.
--  [NN]      norwegian-numbers (npm, Ondkloss/norwegian-numbers.js) README:
--            KID 1234 -> 12344 (MOD10), 12343 (MOD11); 234567 -> 2345676;
--            organisation 12345678 -> 123456785; account 1234567890 -> 12345678903.
--  [NAV]     navikt/mulighetsrommet ModulusTest (NAV): MOD10 2345676, 23456767,
--            0044555258 valid, 2345674, 0044555251 invalid; MOD11 0365327,
--            12345678903, 036536- valid, 1677036255 invalid.
--  [LUHN]    the Luhn example of ISO/IEC 7812 literature: 7992739871 -> 79927398713.
--  [VIPPS]   Vipps invoice API test data (research/efaktura.md): organisation
--            918130047, account 15038366383.
--  [KAR]     Nets KAR sample (research/ocr-avtale.md): account 12048831581.
--  [BRREG]   Brønnøysundregistrene's own organisation number 974760673;
--            Equinor ASA 923609016 (public register entries).
--  [PRH]     Y-tunnus from the Finnish trade register: Nokia Oyj 0112038-9;
--            0737546-2 (the example in the issue), checked by hand below.
local ref = require("giro.ref")
local cd = require("giro.checkdigit")

local function valid(kind, s)
  local ok, why = ref.check(kind, s)
  assert(ok == true, string.format("%s %q should be valid: %s", kind, s, tostring(why)))
end

local function invalid(kind, s, reason)
  local ok, why = ref.check(kind, s)
  assert(ok == false, string.format("%s %q should be invalid", kind, s))
  assert(type(why) == "string" and #why > 0, "a reason is given")
  if reason then
    assert(why:find(reason, 1, true), string.format("%s %q: reason %q lacks %q", kind, s, why, reason))
  end
  local n, nwhy = ref.normalize(kind, s)
  assert(n == nil and nwhy == why, "normalize agrees with check")
  local f, fwhy = ref.format(kind, s)
  assert(f == nil and fwhy == why, "format agrees with check")
end

describe("giro.checkdigit", function()
  it("computes the 7-3-1, Luhn, MOD11 and weighted sums", function()
    -- [FBA] 1234567: 7*7+6*3+5*1+4*7+3*3+2*1+1*7 = 49+18+5+28+9+2+7 = 118 -> 120-118 = 2
    assert.equal(2, cd.fi_check("1234567"))
    assert.equal(3, cd.luhn("7992739871"))                  -- [LUHN]
    assert.equal(3, cd.mod11("1234"))                       -- [NN] 12343
    assert.equal(7, cd.mod11("8601111794"))                 -- [REG] NO93 8601 1117 947
    -- Y-tunnus 0737546: weights 7,9,10,5,8,4,2 from the left, given from the right
    -- 0*7+7*9+3*10+7*5+5*8+4*4+6*2 = 0+63+30+35+40+16+12 = 196; 196 mod 11 = 9
    assert.equal(9, cd.weighted("0737546", { 2, 4, 8, 5, 10, 9, 7 }, 11))
    assert.equal(cd.fi_check("1234567"), (10 - cd.weighted("1234567", "731", 10)) % 10)
  end)

  it("works on a range without a substring", function()
    assert.equal(cd.fi_check("1234567"), cd.fi_check("12345672", 1, -2))
    assert.equal(cd.luhn("7992739871"), cd.luhn("79927398713", 1, 10))
    assert.equal(cd.mod11("1234"), cd.mod11("x1234y", nil, 2, 5))
    assert.equal(0, cd.luhn(""))
    assert.equal(0, cd.fi_check("123", 3, 2))
  end)

  it("computes ISO 7064 mod 97-10 with letters and rotation", function()
    assert.equal(1, cd.iso7064_mod97("NO9386011117947", 4))      -- [REG]
    assert.equal(1, cd.iso7064_mod97("gb29nwbk60161331926819", 4)) -- [REG], lower case
    assert.equal(1, cd.iso7064_mod97("RF18539007547034", 4))     -- [ISO11649]
    -- 12344RF00 -> 12344 27 15 00 = 12344271500 = 97 * 127260530 + 90
    assert.equal(90, cd.iso7064_mod97("RF0012344", 4))
    assert.equal(0, cd.iso7064_mod97(""))
    assert.equal(cd.iso7064_mod97("ABC123"), cd.iso7064_mod97("123ABC", 3))
  end)

  it("reports bad characters as nil, reason", function()
    local v, why = cd.luhn("12a4")
    assert.is_nil(v)
    assert.equal("bad character 'a' at position 3", why)
    v, why = cd.iso7064_mod97("AB\0C")
    assert.is_nil(v)
    assert.equal("bad character byte 0x00 at position 3", why)
    v, why = cd.weighted("1-2", "731", 10)
    assert.is_nil(v)
    assert.equal("bad character '-' at position 2", why)
    v, why = cd.fi_check("ø")
    assert.is_nil(v)
    assert.equal("bad character byte 0xB8 at position 2", why)
  end)

  it("handles long input without overflow", function()
    local long = string.rep("9", 100000)
    assert.is_number(cd.luhn(long))
    assert.is_number(cd.mod11(long))
    assert.is_number(cd.iso7064_mod97(long))
    assert.is_number(cd.weighted(long, { 1000000 }, 2147483647))
  end)

  it("raises on programmer errors", function()
    assert.has_error(function() cd.luhn() end)
    assert.has_error(function() cd.luhn({}) end)
    assert.has_error(function() cd.weighted("1", "", 10) end)
    assert.has_error(function() cd.weighted("1", "7a", 10) end)
    assert.has_error(function() cd.weighted("1", { -1 }, 10) end)
    assert.has_error(function() cd.weighted("1", "7", 0) end)
    assert.has_error(function() cd.iso7064_mod97("1", -1) end)
  end)
end)

describe("giro.ref fi (viitenumero)", function()
  it("accepts the published references", function()
    valid("fi", "1232")          -- [DANSKE] base 123: 3*7+2*3+1*1 = 28 -> 2
    valid("fi", "12344")         -- [SP] base 1234: 4*7+3*3+2*1+1*7 = 46 -> 4
    valid("fi", "12345672")      -- [FBA]
    valid("fi", "2348236")       -- [FBA] 3*7+2*3+8*1+4*7+3*3+2*1 = 74 -> 6
    valid("fi", "123 45672")     -- printed form
  end)

  it("refuses the published invalid ones", function()
    invalid("fi", "9999", "wrong check digit: expected 1")   -- [SP] 9*7+9*3+9*1 = 99 -> 1
    invalid("fi", "123", "wrong length: 3 digits, expected 4 to 20")  -- [DANSKE]
    invalid("fi", "122323", "wrong check digit: expected 8") -- [SP] 2*7+3*3+2+2*7+1*3 = 42 -> 8
    invalid("fi", "12345673", "wrong check digit: expected 2")
  end)

  it("creates references", function()
    assert.equal("1232", ref.create("fi", "123"))
    assert.equal("12344", ref.create("fi", "1234"))
    assert.equal("12345672", ref.create("fi", "1234567"))
    assert.equal("5050", ref.create("fi", "505"))   -- 5*7+0*3+5*1 = 40 -> check 0
    local v, why = ref.create("fi", "12")
    assert.is_nil(v)
    assert.matches("wrong length", why)
    assert.is_nil((ref.create("fi", string.rep("1", 20))))
  end)

  it("knows the boundaries: 4 and 20 digits, leading zeros", function()
    valid("fi", "5050")
    -- base 1 followed by 18 zeros: the 1 sits 19th from the right, weight 7 -> check 3
    valid("fi", "10000000000000000003")
    assert.equal("10000000000000000003", ref.create("fi", "1000000000000000000"))
    invalid("fi", "100000000000000000003", "wrong length: 21 digits, expected 4 to 20")
    -- the zero-padded 20-digit form (virtual bar code) is the same reference
    valid("fi", "00000000000000001232")
    assert.equal("1232", ref.normalize("fi", "00000000000000001232"))
    invalid("fi", "000000000000000001232", "wrong length: 21 digits")
    invalid("fi", "0123", "wrong length: 3 significant digits")
    invalid("fi", "0000", "wrong length: 0 significant digits")
  end)

  it("formats in groups of five from the right", function()
    assert.equal("1232", ref.format("fi", "1232"))
    assert.equal("12344", ref.format("fi", "12344"))
    assert.equal("123 45672", ref.format("fi", "12345672"))
    assert.equal("10000 00000 00000 00003", (ref.format("fi", "1000000000000000 0003")))
    -- base 123456789012345678 from the right with 7,3,1: 8*7+7*3+6 = 83, 5*7+4*3+3 = 50,
    -- 2*7+1*3+0 = 17, 9*7+8*3+7 = 94, 6*7+5*3+4 = 61, 3*7+2*3+1 = 28; total 333 -> 7
    assert.equal("1234567890123456787", ref.create("fi", "123456789012345678"))
    assert.equal("1234 56789 01234 56787", (ref.format("fi", "1234567890123456787")))
    assert.equal("12345672", ref.normalize("fi", " 123 45672 "))
  end)
end)

describe("giro.ref rf (ISO 11649)", function()
  it("accepts the published references in any case and spacing", function()
    valid("rf", "RF18539007547034")       -- [ISO11649]
    valid("rf", "RF18 5390 0754 7034")
    valid("rf", "rf18539007547034")
    valid("rf", "RF332348236")            -- [FBA]
    assert.equal("RF18539007547034", ref.normalize("rf", "rf18 5390 0754 7034"))
    assert.equal("RF18 5390 0754 7034", ref.format("rf", "RF18539007547034"))
  end)

  it("creates the international form of a Finnish reference", function()
    assert.equal("RF18539007547034", ref.create("rf", "539007547034"))
    assert.equal("RF332348236", ref.create("rf", "2348236"))
    -- 12344RF00 mod 97 = 90 (see the checkdigit test) -> 98 - 90 = 08
    assert.equal("RF0812344", ref.create("rf", ref.create("fi", "1234")))
  end)

  it("refuses wrong ones", function()
    invalid("rf", "RF19539007547034", "wrong check digits: expected 18")
    invalid("rf", "RF18539007547043", "wrong check digits")
    invalid("rf", "XX18539007547034", "wrong prefix: expected RF")
    invalid("rf", "RFAB539007547034", "bad check digits")
    invalid("rf", "RF18", "wrong length: 4 characters, expected 5 to 25")
    invalid("rf", "RF18" .. string.rep("1", 22), "wrong length: 26 characters")
    invalid("rf", "RF18_5390", "bad character '_' at position 5")
    -- ISO 11649 check digits run 02..98: 00, 01 and 99 are refused whatever mod 97 says
    invalid("rf", "RF00539007547034", "wrong check digits: expected 18")
    invalid("rf", "RF99539007547034", "wrong check digits: expected 18")
  end)
end)

describe("giro.ref kid10 and kid11", function()
  it("accepts the published KIDs", function()
    valid("kid10", "12344")          -- [NN]
    valid("kid11", "12343")          -- [NN]
    valid("kid10", "2345676")        -- [NN], [NAV]
    valid("kid10", "23456767")       -- [NAV]
    valid("kid10", "0044555258")     -- [NAV]
    valid("kid10", "79927398713")    -- [LUHN]
    valid("kid11", "0365327")        -- [NAV]
    valid("kid11", "12345678903")    -- [NAV]
    valid("kid11", "036536-")        -- [NAV]: 6*2+3*3+5*4+6*5+3*6+0*7 = 89, 89 mod 11 = 1 -> 10 -> '-'
  end)

  it("refuses the published invalid KIDs", function()
    invalid("kid10", "2345674", "wrong check digit: expected 6")  -- [NAV]
    invalid("kid10", "0044555251", "wrong check digit: expected 8") -- [NAV]
    invalid("kid11", "1677036255", "wrong check digit")            -- [NAV]
  end)

  it("creates KIDs, '-' for MOD11 remainder 10 and 0 for 11", function()
    assert.equal("12344", ref.create("kid10", "1234"))
    assert.equal("12343", ref.create("kid11", "1234"))
    assert.equal("00", ref.create("kid10", "0"))                  -- [NN]
    assert.equal("036536-", ref.create("kid11", "036536"))
    -- 6*2 = 12, 12 mod 11 = 1 -> 11 - 1 = 10 -> '-'
    assert.equal("6-", ref.create("kid11", "6"))
    -- 1*2 + 3*3 = 11, 11 mod 11 = 0 -> 0
    assert.equal("310", ref.create("kid11", "31"))
  end)

  it("knows the boundaries: 2 and 25 characters, leading zeros kept", function()
    valid("kid11", "6-")
    valid("kid10", "00")
    invalid("kid10", "0", "wrong length: 1 character, expected 2 to 25")
    local base24 = "000000000000000000001234"
    local kid25 = ref.create("kid10", base24)
    assert.equal("0000000000000000000012344", kid25)   -- leading zeros weigh nothing
    valid("kid10", kid25)
    invalid("kid10", "0" .. kid25, "wrong length: 26 characters, expected 2 to 25")
    assert.is_nil((ref.create("kid10", "0" .. base24)))
    assert.equal("0000000000000000000012344", ref.normalize("kid10", "00000 00000 00000 00000 12344"))
    -- '-' only as the MOD11 check digit
    invalid("kid11", "12-43", "bad character '-' at position 3")
    invalid("kid10", "6-", "bad character '-' at position 2")
    invalid("kid11", "65", "wrong check digit: expected -")
    invalid("kid11", "6-0", "bad character '-'")
  end)
end)

describe("giro.ref no-account", function()
  it("accepts published account numbers", function()
    valid("no-account", "86011117947")      -- [REG] NO93 8601 1117 947
    valid("no-account", "8601.11.17947")
    valid("no-account", "8601 11 17947")
    valid("no-account", "15038366383")      -- [VIPPS]
    valid("no-account", "12048831581")      -- [KAR]
    valid("no-account", "12345678903")      -- [NN]
    assert.equal("8601.11.17947", ref.format("no-account", "86011117947"))
    assert.equal("86011117947", ref.normalize("no-account", "8601.11.17947"))
    assert.equal("12345678903", ref.create("no-account", "1234567890"))  -- [NN]
  end)

  it("refuses wrong ones, including check digit 10", function()
    invalid("no-account", "86011117940", "wrong check digit: expected 7")
    invalid("no-account", "8601111794", "wrong length: 10 digits, expected 11")
    invalid("no-account", "860111179470", "wrong length: 12 digits, expected 11")
    -- base 1000000009: 1*5 + 9*2 = 23, 23 mod 11 = 1 -> 10: no valid account
    for d = 0, 9 do invalid("no-account", "1000000009" .. d, "MOD11 gives 10") end
    local v, why = ref.create("no-account", "1000000009")
    assert.is_nil(v)
    assert.matches("MOD11 gives 10", why)
    -- base 1000000003: 1*5 + 3*2 = 11 -> remainder 0 -> check digit 0
    valid("no-account", "10000000030")
    -- bank code 0000 is no bank's (issue 9: 00000000000 passed MOD11)
    invalid("no-account", "00000000000", "bad bank code 0000")
    invalid("no-account", "00000000310", "bad bank code 0000")
  end)
end)

describe("giro.ref no-org", function()
  it("accepts published organisation numbers and the NOR form", function()
    -- [BRREG] 974760673: 9*3+7*2+4*7+7*6+6*5+0*4+6*3+7*2 = 27+14+28+42+30+0+18+14 = 173,
    -- 173 mod 11 = 8 -> 3
    valid("no-org", "974760673")
    valid("no-org", "923609016")            -- [BRREG]
    valid("no-org", "918130047")            -- [VIPPS]
    -- [EFAKT] NOR999999999-1: 9*(3+2+7+6+5+4+3+2) = 288, 288 mod 11 = 2 -> 9
    valid("no-org", "NOR999999999-1")
    valid("no-org", "974 760 673")
    valid("no-org", "NO 974 760 673 MVA")
    assert.equal("999999999", ref.normalize("no-org", "NOR999999999-1"))
    assert.equal("974 760 673", ref.format("no-org", "974760673"))
    assert.equal("123456785", ref.create("no-org", "12345678"))  -- [NN]
  end)

  it("refuses wrong ones", function()
    -- [EFAKT] NOR123456789-1 is only a layout example: 1*3+2*2+3*7+4*6+5*5+6*4+7*3+8*2 = 138,
    -- 138 mod 11 = 6 -> 5, not 9
    invalid("no-org", "NOR123456789-1", "wrong check digit: expected 5")
    invalid("no-org", "97476067", "wrong length: 8 digits, expected 9")
    invalid("no-org", "NOR97476067-1", "bad NOR form")
    invalid("no-org", "NOR974760673", "bad NOR form")
    invalid("no-org", "97476067x", "bad character 'x' at position 9")
    -- base 00000006: 6*2 = 12 -> remainder 1 -> 10: never issued
    invalid("no-org", "000000060", "MOD11 gives 10")
  end)
end)

describe("giro.ref fi-business (Y-tunnus)", function()
  it("accepts published business IDs", function()
    -- 0737546: sum 196 (see the checkdigit test), 196 mod 11 = 9 -> 11 - 9 = 2
    valid("fi-business", "0737546-2")
    -- [PRH] Nokia 0112038: 0*7+1*9+1*10+2*5+0*8+3*4+8*2 = 57, 57 mod 11 = 2 -> 9
    valid("fi-business", "0112038-9")
    valid("fi-business", "07375462")
    valid("fi-business", "FI07375462")      -- VAT form
    valid("fi-business", "737546-2")        -- old 6-digit form
    assert.equal("0737546-2", ref.normalize("fi-business", "FI 0737546 2"))
    assert.equal("0737546-2", ref.format("fi-business", "07375462"))
    assert.equal("0737546-2", ref.create("fi-business", "0737546"))
    assert.equal("0112038-9", ref.create("fi-business", "112038"))
  end)

  it("refuses wrong ones, including remainder 1", function()
    invalid("fi-business", "0737546-3", "wrong check digit: expected 2")
    invalid("fi-business", "0737546", "wrong length: 7 digits, expected 8")
    invalid("fi-business", "07x7546-2", "bad character 'x' at position 3")
    invalid("fi-business", "07375-46-3", "wrong check digit: expected 2")   -- hyphens anywhere, as python-stdnum
    invalid("fi-business", "07375-46", "wrong length: 7 digits, expected 8")
    -- 0000006: 6*2 = 12, 12 mod 11 = 1: no valid check digit
    invalid("fi-business", "0000006-1", "remainder 1")
    assert.is_nil((ref.create("fi-business", "0000006")))
    -- 0001003: 1*5 + 3*2 = 11 -> remainder 0 -> check digit 0
    valid("fi-business", "0001003-0")
  end)
end)

describe("giro.ref iban", function()
  local registry = {  -- [REG] the example IBAN of every SEPA country
    "AD1200012030200359100100", "AT611904300234573201", "BE68539007547034",
    "BG80BNBG96611020345678", "CH9300762011623852957", "CY17002001280000001200527600",
    "CZ6508000000192000145399", "DE89370400440532013000", "DK5000400440116243",
    "EE382200221020145685", "ES9121000418450200051332", "FI2112345600000785",
    "FR1420041010050500013M02606", "GB29NWBK60161331926819", "GI75NWBK000000007099453",
    "GR1601101250000000012300695", "HR1210010051863000160", "HU42117730161111101800000000",
    "IE29AIBK93115212345678", "IS140159260076545510730339", "IT60X0542811101000000123456",
    "LI21088100002324013AA", "LT121000011101001000", "LU280019400644750000",
    "LV80BANK0000435195001", "MC5811222000010123456789030", "MT84MALT011000012345MTLCAST001S",
    "NL91ABNA0417164300", "NO9386011117947", "PL61109010140000071219812874",
    "PT50000201231234567890154", "RO49AAAA1B31007593840000", "SE4550000000058398257466",
    "SI56263300012039086", "SK3112000000198742637541", "SM86U0322509800000000270100",
    "VA59001123000012345678", "AL47212110090000000235698741", "MD24AG000225100013104168",
    "ME25505000012345678951", "MK07250120000058984", "RS35260005601001611379",
  }

  it("accepts the registry example of every SEPA country", function()
    for _, iban in ipairs(registry) do
      valid("iban", iban)
      assert.equal(#iban, ref.IBAN_LENGTH[iban:sub(1, 2)])
    end
    local n = 0
    for _ in pairs(ref.IBAN_LENGTH) do n = n + 1 end
    assert.equal(#registry, n)   -- every country in the table has a vector
  end)

  it("accepts printed, lower-case and IBAN-prefixed forms", function()
    valid("iban", "NO93 8601 1117 947")
    valid("iban", "gb29 nwbk 6016 1331 9268 19")
    valid("iban", "IBAN FI21 1234 5600 0007 85")
    assert.equal("GB29NWBK60161331926819", ref.normalize("iban", "gb29 nwbk 6016 1331 9268 19"))
    assert.equal("FI21 1234 5600 0007 85", ref.format("iban", "FI2112345600000785"))
    assert.equal("MT84 MALT 0110 0001 2345 MTLC AST0 01S", ref.format("iban", "MT84MALT011000012345MTLCAST001S"))
  end)

  it("refuses wrong ones with the reason", function()
    invalid("iban", "DE89370400440532013001", "wrong check digits: expected 62")
    invalid("iban", "NO9486011117947", "wrong check digits: expected 93")
    invalid("iban", "DE8937040044053201300", "wrong length: 21 characters, expected 22 for DE")
    invalid("iban", "NO938601111794", "wrong length: 14 characters, expected 15 for NO")
    invalid("iban", "US64SVBKUS6S3300958879", "unknown country code 'US'")
    invalid("iban", "1234", "wrong length")
    invalid("iban", "12345678901234567", "bad country code")
    invalid("iban", "NOAB86011117947", "bad check digits")
    invalid("iban", "NO93/8601/1117/947", "bad character '/' at position 5")
    -- 00, 01 and 99 are never check digits (ISO 13616: 02..98)
    invalid("iban", "NO0086011117947", "wrong check digits: expected 93")
  end)

  it("creates Norwegian and Finnish IBANs from domestic accounts", function()
    assert.equal("NO9386011117947", ref.create("iban", "86011117947"))        -- [REG]
    assert.equal("NO9386011117947", ref.create("iban", "8601.11.17947"))
    assert.equal("NO9386011117947", ref.create("iban", "NO 8601.11.17947"))
    assert.equal("NO9386011117947", ref.create("iban", "86011117947", "no"))
    assert.equal("FI2112345600000785", ref.create("iban", "123456-785"))      -- [REG], [FFFS]
    assert.equal("FI2112345600000785", ref.create("iban", "FI 123456-785"))
    assert.equal("FI2112345600000785", ref.create("iban", "FI12345600000785"))
    assert.equal("FI5542345670000081", ref.create("iban", "423456-781"))      -- [FFFS]
    assert.equal("DE89370400440532013000", ref.create("iban", "DE370400440532013000"))
    assert.equal("GB29NWBK60161331926819", ref.create("iban", "GB NWBK60161331926819"))
  end)

  it("refuses bad domestic accounts", function()
    local v, why = ref.create("iban", "86011117940")
    assert.is_nil(v); assert.matches("wrong check digit: expected 7", why)
    v, why = ref.create("iban", "123456-786")
    assert.is_nil(v); assert.matches("wrong account check digit: expected 5", why)
    v, why = ref.create("iban", "123456-7")
    assert.is_nil(v); assert.matches("wrong length: 1 digit", why)
    v, why = ref.create("iban", "12345")
    assert.is_nil(v); assert.matches("give the account with its country code", why)
    v, why = ref.create("iban", "US 123")
    assert.is_nil(v); assert.matches("unknown country code 'US'", why)
    v, why = ref.create("iban", "DE3704004405320130")
    assert.is_nil(v); assert.matches("wrong length: 16 characters, expected 18", why)
  end)
end)

describe("giro.ref garbage", function()
  local garbage = {
    "", " ", "abc", "ÆØÅ", "12\0" .. "34", "\0", string.rep("1", 10000), string.rep("9", 10000) .. "x",
    string.rep("A", 10000), "1232\n", "12\t32", "12.34.5", "--", "NOR", "RF", "IBAN", "FI",
  }

  it("is refused with a reason by every kind, never raising", function()
    for _, kind in ipairs(ref.names()) do
      for _, g in ipairs(garbage) do
        local ok, why = ref.check(kind, g)
        assert(ok == false and type(why) == "string",
          string.format("%s accepted garbage %q", kind, g:sub(1, 20)))
        assert.is_nil((ref.normalize(kind, g)))
        assert.is_nil((ref.format(kind, g)))
        local c, cwhy = ref.create(kind, g)
        if c ~= nil then
          -- a few garbage strings are fine bases (e.g. "abc" for rf); then the result checks
          assert.is_true(ref.check(kind, c))
        else
          assert.is_string(cwhy)
        end
      end
    end
  end)

  it("names the embedded NUL", function()
    invalid("fi", "12\0" .. "34", "bad character byte 0x00 at position 3")
    invalid("iban", "NO93\0" .. "86011117947", "bad character byte 0x00 at position 5")
  end)

  it("raises on unknown kinds and wrong argument types", function()
    assert.has_error(function() ref.check("se", "1232") end, "giro.ref: unknown kind 'se' (see giro.ref.names())")
    assert.has_error(function() ref.check("fi") end)
    assert.has_error(function() ref.check("fi", {}) end)
    assert.has_error(function() ref.create("fi", 1.5) end)
    assert.is_true(ref.check("fi", 1232))   -- an integer is taken as its digits
  end)
end)

describe("giro.ref properties", function()
  math.randomseed(20240611)

  local function random_digits(n)
    local t = {}
    for i = 1, n do t[i] = string.char(48 + math.random(0, 9)) end
    return table.concat(t)
  end

  -- every single-digit substitution at each digit position
  local function substitutions(s, each)
    for i = 1, #s do
      local c = s:byte(i)
      if c >= 48 and c <= 57 then
        for d = 48, 57 do
          if d ~= c then each(s:sub(1, i - 1) .. string.char(d) .. s:sub(i + 1), i) end
        end
      end
    end
  end

  -- every adjacent transposition of two different digits; `caught(a, b, i)`
  -- says whether the algorithm promises to catch that one
  local function transpositions(s, each)
    for i = 1, #s - 1 do
      local a, b = s:byte(i), s:byte(i + 1)
      if a ~= b and a >= 48 and a <= 57 and b >= 48 and b <= 57 then
        each(s:sub(1, i - 1) .. string.char(b, a) .. s:sub(i + 2), a - 48, b - 48, i)
      end
    end
  end

  local cases = {
    -- kind, base length range, whether a transposition of digits a,b is promised to be caught
    { "fi", 3, 19, function(a, b) return (a - b) % 5 ~= 0 end },  -- weight differences 2, 4, 6
    { "kid10", 1, 24, function(a, b) return not ((a == 0 and b == 9) or (a == 9 and b == 0)) end },
    { "kid11", 1, 24, function() return true end },
    { "no-account", 10, 10, function() return true end },
    { "no-org", 8, 8, function() return true end },
    { "fi-business", 7, 7, function() return true end },
    { "rf", 1, 21, function() return true end },
  }

  for _, case in ipairs(cases) do
    local kind, lo, hi, promised = case[1], case[2], case[3], case[4]
    it(kind .. ": check(create(b)) holds; substitutions and transpositions are caught", function()
      local made = 0
      for _ = 1, 150 do
        local base = random_digits(math.random(lo, hi))
        if kind == "fi" then base = tostring(math.random(1, 9)) .. base:sub(2) end
        local full, why = ref.create(kind, base)
        if full == nil then
          -- only MOD11 bases with no valid check digit may fail
          assert(why:find("no digit is valid", 1, true), kind .. " " .. base .. ": " .. why)
        else
          made = made + 1
          assert.is_true(ref.check(kind, full))
          substitutions(full, function(s, i)
            if not (kind == "fi" and i == 1 and s:sub(1, 1) == "0") then  -- a leading zero is not a digit change
              assert(not ref.check(kind, s), kind .. " missed substitution " .. full .. " -> " .. s)
            end
          end)
          transpositions(full, function(s, a, b, i)
            if kind == "fi" and i == 1 and b == 0 then return end  -- the number gets shorter
            if promised(a, b) then
              assert(not ref.check(kind, s), kind .. " missed transposition " .. full .. " -> " .. s)
            end
          end)
        end
      end
      assert(made > 100, "most random bases make a number")
    end)
  end

  it("iban: create/check round trip and every digit change in the BBAN is caught", function()
    for _ = 1, 150 do
      local acct = ref.create("no-account", random_digits(10))
      if acct then
        local iban = ref.create("iban", acct)
        assert.is_true(ref.check("iban", iban))
        substitutions(iban, function(s)
          assert(not ref.check("iban", s), "missed " .. iban .. " -> " .. s)
        end)
        transpositions(iban, function(s)
          assert(not ref.check("iban", s), "missed " .. iban .. " -> " .. s)
        end)
      end
    end
  end)
end)

describe("giro ref (CLI)", function()
  local lfs = require("lfs")
  local giro = lfs.symlinkattributes("/proc/self/exe", "target") or "./giro"

  local function run(cmd, input)
    local tmp = os.tmpname()
    local inf = os.tmpname()
    local f = assert(io.open(inf, "wb")); f:write(input or ""); f:close()
    local p = assert(io.popen(string.format("%s %s < %s 2>%s; echo \"rc=$?\"", giro, cmd, inf, tmp)))
    local out = p:read("a"); p:close()
    local ef = assert(io.open(tmp, "rb")); local err = ef:read("a"); ef:close()
    os.remove(tmp); os.remove(inf)
    local rc = tonumber(out:match("rc=(%d+)\n$"))
    return out:gsub("rc=%d+\n$", ""), rc, err
  end

  it("creates, checks and formats one number", function()
    local out, rc = run("ref create fi 1234")
    assert.equal("12344\n", out); assert.equal(0, rc)
    out, rc = run("ref check iban 'NO93 8601 1117 947'")
    assert.equal("NO93 8601 1117 947: ok\n", out); assert.equal(0, rc)
    out, rc = run("ref check fi 12345")
    assert.equal("12345: invalid: wrong check digit: expected 4\n", out); assert.equal(1, rc)
    out, rc = run("ref format iban FI2112345600000785")
    assert.equal("FI21 1234 5600 0007 85\n", out); assert.equal(0, rc)
    out, rc = run("ref normalize no-org NOR999999999-1")
    assert.equal("999999999\n", out); assert.equal(0, rc)
    local err
    out, rc, err = run("ref create no-account 1000000009")
    assert.equal("", out); assert.equal(1, rc); assert.matches("MOD11 gives 10", err)
  end)

  it("streams stdin, one result line per input line", function()
    local out, rc = run("ref check fi -", "1232\r\n12345\n\n00000000000000001232\n")
    assert.equal("1232: ok\n12345: invalid: wrong check digit: expected 4\n"
      .. ": invalid: wrong length: 0 digits, expected 4 to 20\n00000000000000001232: ok\n", out)
    assert.equal(1, rc)
    out, rc = run("ref check kid10 -", "12344\n2345676\n")
    assert.equal("12344: ok\n2345676: ok\n", out); assert.equal(0, rc)
    out, rc = run("ref create kid11 -", "1234\n6\nx\n")
    assert.equal("12343\n6-\nx: invalid: bad character 'x' at position 1\n", out); assert.equal(1, rc)
    out, rc = run("ref format fi -", "12345672\n")
    assert.equal("123 45672\n", out); assert.equal(0, rc)
    out, rc = run("ref check fi -", "")
    assert.equal("", out); assert.equal(0, rc)
  end)

  it("lists kinds and refuses usage errors with exit 2", function()
    local out, rc = run("ref kinds")
    assert.equal(0, rc)
    for _, k in ipairs(ref.names()) do assert.matches("\n?" .. k:gsub("%-", "%%-") .. " ", out) end
    local err
    _, rc, err = run("ref check se 1232"); assert.equal(2, rc); assert.matches("unknown kind 'se'", err)
    _, rc = run("ref check fi"); assert.equal(2, rc)
    _, rc = run("ref"); assert.equal(2, rc)
    _, rc = run("ref frobnicate fi 1"); assert.equal(2, rc)
    _, rc = run("ref check fi 1232 12344"); assert.equal(2, rc)
    out, rc = run("ref create --help"); assert.equal(0, rc); assert.matches("usage: giro ref", out)
  end)
end)
