--- giro.efaktura.names: comparing a person's name as typed in a netbank with the
-- name in a biller's customer register.
--
--   local names = require("giro.efaktura.names")
--   names.fold("  Åse-Marie  ØSTBY ")            --> "åse marie østby"
--   names.tokens("Kari  Anne", "normal")          --> { "kari", "anne" }
--   local ok, why = names.match(request, customer, "normal")
--
-- Levels (a biller rule's options.name_match):
--   strict  case-insensitive (Æ=æ, Ø=ø, Å=å, É=é ... and Sami Á Č Đ Ŋ Š Ŧ Ž), whitespace
--           collapsed, hyphen = space, apostrophes and full stops dropped.  The first
--           name matches when any given name of the request is one of the customer's
--           given names; the last name must be equal as a whole.
--   normal  (default) strict, plus spelling variants that registers and netbanks mix up:
--           accents dropped (é→e, á→a, ü→u, ç→c, š→s, ...), ä=æ, ö=ø, aa=å; and the last name
--           also matches on any shared part ("Berg-Hansen" ~ "Hansen").
--   loose   normal, plus any name part of the request against any name part of the
--           customer (first and last names swapped, or the whole name in one column).
-- Parts of one letter (initials) never count as a match on their own.
-- Values are UTF-8 strings (the request reader decodes ISO-8859-1; the customer CSV is UTF-8).
local names = {}
local errors = require("giro.errors")

-- Lower case for Latin-1 and Latin Extended-A (Nordic and Sami letters).
local function lower_cp(cp)
  if cp >= 0x41 and cp <= 0x5A then return cp + 32 end
  if cp < 0xC0 then return cp end
  if cp <= 0xDE then return cp == 0xD7 and cp or cp + 32 end
  if cp >= 0x100 and cp <= 0x137 then return cp | 1 end
  if cp >= 0x139 and cp <= 0x148 then return (cp % 2 == 1) and cp + 1 or cp end
  if cp >= 0x14A and cp <= 0x177 then return cp | 1 end
  if cp >= 0x179 and cp <= 0x17E then return (cp % 2 == 1) and cp + 1 or cp end
  return cp
end

-- normal-level spelling variants: lower-case code point -> replacement text
local VARIANT = {
  [0xE0] = "a", [0xE1] = "a", [0xE2] = "a", [0xE3] = "a",           -- à á â ã
  [0xE4] = "æ",                                                      -- ä
  [0xE7] = "c",                                                      -- ç
  [0xE8] = "e", [0xE9] = "e", [0xEA] = "e", [0xEB] = "e",           -- è é ê ë
  [0xEC] = "i", [0xED] = "i", [0xEE] = "i", [0xEF] = "i",           -- ì í î ï
  [0xF0] = "d", [0xF1] = "n",                                        -- ð ñ
  [0xF2] = "o", [0xF3] = "o", [0xF4] = "o", [0xF5] = "o",           -- ò ó ô õ
  [0xF6] = "ø",                                                      -- ö
  [0xF9] = "u", [0xFA] = "u", [0xFB] = "u", [0xFC] = "u",           -- ù ú û ü
  [0xFD] = "y", [0xFF] = "y",                                        -- ý ÿ
  [0xDF] = "ss",                                                     -- ß
  [0x10D] = "c", [0x111] = "d", [0x14B] = "n", [0x161] = "s",       -- č đ ŋ š  (Sami)
  [0x167] = "t", [0x17E] = "z", [0x101] = "a", [0x107] = "c",       -- ŧ ž ā ć
  [0x142] = "l", [0x144] = "n", [0x15B] = "s", [0x17A] = "z", [0x17C] = "z", -- ł ń ś ź ż
}

-- The same tables as UTF-8 sequence -> UTF-8 sequence, for string.gsub (fold runs for
-- every request, so it works on whole strings in C rather than code point by code point).
local LOWER_SEQ, VARIANT_SEQ = {}, {}
for cp = 0xC0, 0x17F do
  local l = lower_cp(cp)
  if l ~= cp then LOWER_SEQ[utf8.char(cp)] = utf8.char(l) end
end
for cp, v in pairs(VARIANT) do VARIANT_SEQ[utf8.char(cp)] = v end
local TWO_BYTE = "[\xC3\xC4\xC5][\x80-\xBF]"

--- Fold a name for comparison: lower case, separators (space, tab, NBSP, hyphens, en dash,
-- comma, slash, ampersand) to one space, apostrophes and full stops dropped, trimmed.
-- level "strict" keeps letters as they are; "normal"/"loose" also fold spelling variants.
local function fold(s, level)
  s = s:lower()                                   -- ASCII letters (the C locale leaves other bytes alone)
  if s:find("[\x80-\xFF]") then
    if not utf8.len(s) then return s end          -- not UTF-8: compare the bytes, case-folded
    s = s:gsub(TWO_BYTE, LOWER_SEQ)
    if level ~= "strict" then s = s:gsub(TWO_BYTE, VARIANT_SEQ) end
    s = s:gsub("\xC2\xA0", " "):gsub("\xE2\x80[\x90\x91\x93]", " "):gsub("\xE2\x80\x99", ""):gsub("\xC2\xB4", "")
  end
  s = s:gsub("['.`]", ""):gsub("[%s,/&-]+", " ")
  s = s:match("^ *(.-) *$")
  if level ~= "strict" then s = s:gsub("aa", "\xC3\xA5") end
  return s
end

-- fold runs two to four times per request on names that repeat (a file has thousands of
-- Kari and Hansen): remember the last few thousand results per level.
local MEMO_MAX = 4096
local memo = { strict = {}, normal = {}, loose = {} }
local memo_n = { strict = 0, normal = 0, loose = 0 }

function names.fold(s, level)
  if type(s) ~= "string" then return "" end
  local m = memo[level or "normal"]
  if not m then return fold(s, level) end
  local r = m[s]
  if r then return r end
  r = fold(s, level)
  local key = level or "normal"
  if memo_n[key] >= MEMO_MAX then
    m = {}
    memo[key], memo_n[key] = m, 0
  end
  m[s] = r
  memo_n[key] = memo_n[key] + 1
  return r
end

--- The parts of a name (after folding), in order.
function names.tokens(s, level)
  local t = {}
  for w in names.fold(s, level):gmatch("%S+") do t[#t + 1] = w end
  return t
end

local function shared(a, b)
  for _, x in ipairs(a) do
    if utf8.len(x) > 1 then
      for _, y in ipairs(b) do
        if x == y then return x end
      end
    end
  end
  return nil
end

local function join(t) return table.concat(t, " ") end
-- a name as a message quotes it: a short prefix and the length of a long one
local function q(s) return errors.quote(s, 60) end

--- Does the request's FirstName or LastName match the customer?
-- request: { FirstName=, LastName= }; customer: { first_name=, last_name= }.
-- Returns true, why  or  false, why  (why explains which check passed or failed).
function names.match(request, customer, level)
  level = level or "normal"
  if level ~= "strict" and level ~= "normal" and level ~= "loose" then
    error("giro.efaktura.names: name_match must be strict, normal or loose, not " .. tostring(level), 2)
  end
  local fold = names.fold
  -- the common cases first, on whole folded strings
  local rfs, cfs = fold(request.FirstName, level), fold(customer.first_name, level)
  if rfs ~= "" and rfs == cfs and #rfs > 1 then return true, "first name '" .. rfs .. "' equals the customer's" end
  local rls, cls = fold(request.LastName, level), fold(customer.last_name, level)
  if rls ~= "" and rls == cls and #rls > 1 then return true, "last name '" .. rls .. "' equals the customer's" end
  if rfs == "" and rls == "" then return false, "the request carries no name" end
  local function split(x)
    local t = {}
    for w in x:gmatch("%S+") do t[#t + 1] = w end
    return t
  end
  local rf, rl, cf, cl = split(rfs), split(rls), split(cfs), split(cls)
  local hit = shared(rf, cf)
  if hit then return true, string.format("first name %s is one of the customer's given names %s", q(hit), q(join(cf))) end
  if #rl > 0 and join(rl) == join(cl) then
    return true, string.format("last name %s equals the customer's", q(join(rl)))
  end
  if level ~= "strict" then
    hit = shared(rl, cl)
    if hit then return true, string.format("last name part %s is part of the customer's last name %s", q(hit), q(join(cl))) end
  end
  if level == "loose" then
    local all_r, all_c = {}, {}
    table.move(rf, 1, #rf, 1, all_r) table.move(rl, 1, #rl, #all_r + 1, all_r)
    table.move(cf, 1, #cf, 1, all_c) table.move(cl, 1, #cl, #all_c + 1, all_c)
    hit = shared(all_r, all_c)
    if hit then return true, string.format("name part %s occurs in the customer's name", q(hit)) end
  end
  return false, string.format("neither first name %s nor last name %s matches the customer's %s / %s (%s)",
    q(join(rf)), q(join(rl)), q(join(cf)), q(join(cl)), level)
end

return names
