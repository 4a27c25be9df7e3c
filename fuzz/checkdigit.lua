--- giro.checkdigit and giro.ref: the C arithmetic agrees with plain Lua loops written here, a
--- computed check digit verifies, and giro.ref's create/check/normalize/format agree with each
--- other; nothing raises on any input (bad characters give nil, reason).
local cd = require("giro.checkdigit")
local ref = require("giro.ref")
local S = require("support")

local function lua_weighted(d, w, m)          -- weights from the rightmost digit leftwards
  local sum, k = 0, 1
  for i = #d, 1, -1 do
    sum = sum + (d:byte(i) - 48) * w[k]
    k = k % #w + 1
  end
  return sum % m
end

local function lua_luhn_ok(d)                 -- the whole number, check digit included
  local sum, dbl = 0, false
  for i = #d, 1, -1 do
    local x = d:byte(i) - 48
    if dbl then x = x * 2; if x > 9 then x = x - 9 end end
    sum, dbl = sum + x, not dbl
  end
  return sum % 10 == 0
end

local function lua_mod97(s)
  local r = 0
  for i = 1, #s do
    local c = s:upper():byte(i)
    if c >= 65 then r = (r * 100 + c - 55) % 97 else r = (r * 10 + c - 48) % 97 end
  end
  return r
end

local KINDS = ref.names()

return function(data)
  -- raw bytes: a number or nil and a reason, never an error
  local b = S.bytes(data)
  local i, j = b.byte() - 128, b.byte() - 128
  for _, f in ipairs({ cd.luhn, cd.fi_check }) do
    local v, why = f(data, i, j)
    if v == nil and type(why) ~= "string" then S.fail("no reason") end
  end
  cd.mod11(data, nil, i, j)
  cd.weighted(data, "731", 10, i, j)
  cd.iso7064_mod97(data, b.byte() % 8)

  -- digit and alphanumeric projections of the input
  local d = data:sub(1, 60):gsub(".", function(c) return string.char(48 + c:byte() % 10) end)
  local a = data:sub(1, 60):gsub(".", function(c)
    local x = c:byte() % 36
    return x < 10 and string.char(48 + x) or string.char(55 + x)
  end)
  if #d > 0 then
    local c = cd.luhn(d)
    if not lua_luhn_ok(d .. c) then S.fail("luhn(%s) = %d does not verify", d, c) end
    S.same(lua_weighted(d, { 7, 3, 1 }, 10), cd.weighted(d, "731", 10), "weighted 731")
    S.same((10 - lua_weighted(d, { 7, 3, 1 }, 10)) % 10, cd.fi_check(d), "fi_check")
    S.same((11 - lua_weighted(d, { 2, 3, 4, 5, 6, 7 }, 11)) % 11, cd.mod11(d), "mod11")
    local w = { 2, 4, 8, 5, 10, 9, 7 }
    S.same(lua_weighted(d, w, 11), cd.weighted(d, w, 11), "weighted table")
  end
  S.same(lua_mod97(a), cd.iso7064_mod97(a), "mod97")
  if #a > 0 then
    -- an RF-style check: the check digits make the whole 1 mod 97
    local c = 98 - cd.iso7064_mod97(a .. "RF00")
    S.same(1, cd.iso7064_mod97(string.format("RF%02d%s", c, a), 4), "mod97 rotate")
  end

  -- giro.ref on the raw input and on the projections
  for _, kind in ipairs(KINDS) do
    for _, s in ipairs({ data, d, a }) do
      local ok, why = ref.check(kind, s)
      if not ok and type(why) ~= "string" then S.fail("%s: no reason", kind) end
      local n = ref.normalize(kind, s)
      local f = ref.format(kind, s)
      if (n ~= nil) ~= ok or (f ~= nil) ~= ok then S.fail("%s %q: check, normalize, format disagree", kind, s) end
      if ok then
        S.same(n, ref.normalize(kind, n), kind .. " normalize is idempotent")
        if not ref.check(kind, f) then S.fail("%s: the printed form %q of %q is refused", kind, f, s) end
        S.same(n, ref.normalize(kind, f), kind .. " normalize(format(x))")
      end
      local c = ref.create(kind, s)
      if c ~= nil then
        local cok, cwhy = ref.check(kind, c)
        if not cok then S.fail("%s: create(%q) = %q is refused: %s", kind, s, c, cwhy) end
        S.same(c, ref.normalize(kind, c), kind .. " create gives the canonical form")
      end
    end
  end
  for _, kind in ipairs({ "kid10", "kid11" }) do
    local len = 2 + b.byte() % 24
    local c = ref.create(kind, d, { length = len })
    if c ~= nil then
      S.same(len, #c, kind .. " --length")
      if not ref.check(kind, c) then S.fail("%s: %q refused", kind, c) end
    elseif #d > 0 and #d < len then
      S.fail("%s: %q with length %d refused", kind, d, len)
    end
  end
end
