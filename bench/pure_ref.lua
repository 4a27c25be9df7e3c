--- A pure-Lua check for the benchmark's kinds: the same steps as giro.ref.check
-- (refuse bad characters, drop spaces, check the length, then the arithmetic),
-- with the arithmetic written in Lua instead of giro.checkdigit.
-- Only for bench/ref_bench.lua: it shows what the C arithmetic buys.
local byte, find, sub, gsub, upper = string.byte, string.find, string.sub, string.gsub, string.upper

local pure = {}

local function compact(s, bad)
  if find(s, bad) then return nil end
  if find(s, " ", 1, true) then s = gsub(s, " +", "") end
  return s
end

local function fi_digit(s, last)
  local sum, k = 0, 0
  local w = { [0] = 7, 3, 1 }
  for i = last, 1, -1 do
    sum = sum + (byte(s, i) - 48) * w[k]
    k = (k + 1) % 3
  end
  return (10 - sum % 10) % 10
end

local function luhn_digit(s, last)
  local sum, dbl = 0, true
  for i = last, 1, -1 do
    local d = byte(s, i) - 48
    if dbl then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    dbl = not dbl
  end
  return (10 - sum % 10) % 10
end

local function mod11_digit(s, last)
  local sum, w = 0, 2
  for i = last, 1, -1 do
    sum = sum + (byte(s, i) - 48) * w
    w = w == 7 and 2 or w + 1
  end
  return (11 - sum % 11) % 11
end

-- ISO 7064 mod 97-10 over s with its first 4 characters moved to the end
local function mod97_rotated(s)
  local r, n = 0, #s
  for k = 0, n - 1 do
    local c = byte(s, (k + 4) % n + 1)
    if c <= 57 then
      r = (r * 10 + c - 48) % 97
    else
      r = (r * 100 + c - 55) % 97
    end
  end
  return r
end

local IBAN_LENGTH = require("giro.ref").IBAN_LENGTH  -- a table, not arithmetic

function pure.fi(s)
  local d = compact(s, "[^%d ]")
  if not d then return false end
  local n = #d
  if n > 20 then return false end
  if byte(d, 1) == 48 then
    local z = find(d, "[^0]")
    if not z then return false end
    d = sub(d, z)
    n = #d
  end
  if n < 4 then return false end
  return fi_digit(d, n - 1) + 48 == byte(d, n)
end

function pure.kid10(s)
  local d = compact(s, "[^%d ]")
  if not d then return false end
  local n = #d
  if n < 2 or n > 25 then return false end
  return luhn_digit(d, n - 1) + 48 == byte(d, n)
end

function pure.kid11(s)
  local d = compact(s, "[^%d %-]")
  if not d then return false end
  local n = #d
  if n < 2 or n > 25 then return false end
  local dash = find(d, "-", 1, true)
  if dash and dash < n then return false end
  local c = mod11_digit(d, n - 1)
  return (c == 10 and 45 or c + 48) == byte(d, n)
end

function pure.iban(s)
  local d = compact(s, "[^%w ]")
  if not d then return false end
  if find(d, "%l") then d = upper(d) end
  local n = #d
  if n < 5 then return false end
  local cc = sub(d, 1, 2)
  if IBAN_LENGTH[cc] ~= n or find(sub(d, 3, 4), "%D") then return false end
  local kk = tonumber(sub(d, 3, 4))
  return mod97_rotated(d) == 1 and kk >= 2 and kk <= 98
end

-- the bare arithmetic, for the benchmark's arithmetic-only rows
pure.arith = { fi = fi_digit, luhn = luhn_digit, mod11 = mod11_digit, mod97 = mod97_rotated }

return pure
