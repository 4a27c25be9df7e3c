--- The vocabulary of field formats that bank definitions name.
--
-- A definition writes `{ "NET_AMOUNT", "amount", max = 9 }`; the engine compiles each field once
-- with formats.compile(spec, ctx) into two closures, so no table is walked per message:
--   norm(value, today) -> wire value | nil, reason    building: lenient input, normalised output
--   check(bytes)       -> display value | nil, reason verifying: the exact format the spec prints
-- `value` is the caller's UTF-8 text, `bytes` what came over the wire in the bank's charset.
-- `today` is the local date as the integer YYYYMMDD (injected by tests; nil = the clock).
-- Reasons never contain the field name: the engine prefixes it.
--
-- and a fast path: { build = F, verify = F } (either may be absent) where F is a giro.record
-- field spec without its name (shape, min, max, values, check_digit, date, not_past, suffix) and
-- optionally post(value, today) -> boolean for what giro.record cannot check.  The engine hands
-- F to giro.record, which accepts the common values of a whole message in one C call.  The
-- contract: a value that F accepts, as F stores it (a suffix appended), is what norm (build) or
-- check (verify) returns for it; anything else goes through norm/check, which stay the authority
-- for normalising and for every reason.  Shapes are ASCII only, so an accepted value is also its
-- own display value.
local ref_module  -- giro.ref, loaded on first use: the fast paths of "ref" fields do not need it
local function ref() ref_module = ref_module or require("giro.ref"); return ref_module end
local find, match, sub, gsub = string.find, string.match, string.sub, string.gsub
local tointeger = math.tointeger

local formats = {}
local vocab

--- Today's local date as YYYYMMDD, recomputed only when the day changes.
local day_value, day_until = 0, -1
function formats.today()
  local now = os.time()
  if now >= day_until then
    local t = os.date("*t", now)
    day_value = t.year * 10000 + t.month * 100 + t.day
    day_until = os.time({ year = t.year, month = t.month, day = t.day + 1, hour = 0, min = 0, sec = 0 })
  end
  return day_value
end

local function days_in_month(y, m)
  if m == 2 then
    return (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28
  end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

--- Parse a date given as YYYYMMDD, YYYY-MM-DD or DD.MM.YYYY to the integer YYYYMMDD (nil if invalid).
function formats.date_value(s)
  if type(s) == "number" then return tointeger(s) end
  local y, m, d = match(s, "^(%d%d%d%d)(%d%d)(%d%d)$")
  if not y then y, m, d = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$") end
  if not y then d, m, y = match(s, "^(%d%d)%.(%d%d)%.(%d%d%d%d)$") end
  if not y then return nil end
  y, m, d = tointeger(y + 0), tointeger(m + 0), tointeger(d + 0)
  if m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then return nil end
  return y * 10000 + m * 100 + d
end

local function length_rule(spec, default_max)
  local max = spec.max or default_max
  local min = spec.min or 1
  return min, max
end

--- A value as an error message shows it: whole when short, else a prefix and its length (a
-- hostile query string may carry megabytes in one field).
local function cut(v) return require("giro.errors").clip(v, 60) end
formats.cut = cut

local function too_long(n, max) return "at most " .. max .. " characters, got " .. n end

-- the fast path F with `key = value` added (a copy; F may be shared between build and verify)
local function with(f, key, value)
  if value == nil then return f end
  local c = {}
  for k, v in pairs(f) do c[k] = v end
  c[key] = value
  return c
end

--- Printable text in the bank's charset ("AN").  spec.lines/width (NET_MSG: 6 × 35) give the max.
-- Returns norm, check and validate(bytes) -> nil | reason (used by url below).
local function text(spec, ctx)
  local cs = ctx.cs
  local min, max = length_rule(spec, spec.lines and spec.lines * (spec.width or 35) or nil)
  local pat = ctx.noblank and cs.printable_noblank or cs.printable
  local what = ctx.noblank and "printable characters without blanks" or "printable characters"
  local to_wire, to_display = cs.to_wire, cs.to_display
  local len = cs.name ~= "UTF-8" and string.len or cs.len
  local forbid = spec.forbid
  local function validate(b)
    if not find(b, pat) then return "only " .. what .. " are allowed" end
    local n = len(b)
    if max and n > max then return too_long(n, max) end
    if n < min then return n == 0 and "must not be empty" or "at least " .. min .. " characters" end
  end
  local function check(b)
    local why = validate(b)
    if why then return nil, why end
    return to_display(b)
  end
  local function norm(v)
    if forbid and find(v, forbid, 1, true) then return nil, "must not contain " .. forbid end
    local b, err = to_wire(v)
    if not b then return nil, err end
    local why = validate(b)
    if why then return nil, why end
    return b
  end
  local fast = { shape = ctx.noblank and "[!-~]*" or "[ -~]*", min = min, max = max }
  local post
  if forbid then post = function(v) return not find(v, forbid, 1, true) end end
  return norm, check, { build = with(fast, "post", post), verify = fast }, validate
end

formats.AN = text
formats.text = text

-- A field of one character class (N: digits, A: ASCII letters), the same when building and
-- verifying: nothing to normalise, so one check serves both.
local function one_class(shape, what)
  local full = "^" .. shape .. "$"
  return function(spec, ctx)
    local min, max = length_rule(spec)
    local shown = ctx.cs.to_display
    local function check(b)
      if not find(b, full) then
        return nil, b == "" and "must not be empty" or what .. " only, got '" .. cut(shown(b)) .. "'"
      end
      local n = #b
      if max and n > max then return nil, "at most " .. max .. " " .. what .. ", got " .. n end
      if n < min then return nil, "at least " .. min .. " " .. what .. ", got " .. n end
      return b
    end
    local fast = { shape = shape, min = min, max = max }
    return check, check, { build = fast, verify = fast }
  end
end

--- Digits only ("N").
formats.N = one_class("%d+", "digits")

--- Letters only ("A"), ASCII.
formats.A = one_class("%a+", "letters")

--- An amount of money written with a decimal comma and two decimals ("12,50").
-- Building accepts 12 / 12,5 / 12,50 / 12.50 and emits 12,50; verifying wants exactly D,DD.
-- spec.min_cents (default 1): the smallest amount accepted when building.
function formats.amount(spec, ctx)
  local max = spec.max
  local min_cents = spec.min_cents or 1
  local shown = ctx.cs.to_display
  local function check(b)
    if not find(b, "^%d+,%d%d$") then
      return nil, "expected an amount like 12,50 (decimal comma, two decimals), got '" .. cut(shown(b)) .. "'"
    end
    if max and #b > max then return nil, too_long(#b, max) end
    return b
  end
  local function norm(v)
    if find(v, "^[1-9]%d*,%d%d$") then               -- already in the bank's form
      if max and #v > max then return nil, too_long(#v, max) end
      return v
    end
    if min_cents <= 100 and find(v, "^[1-9]%d*$") then   -- whole units, the next most common
      local b = v .. ",00"
      if max and #b > max then return nil, too_long(#b, max) end
      return b
    end
    local int, dec = match(v, "^(%d+)[,.](%d%d?)$")
    if not int then
      if find(v, "^%d+$") then
        int, dec = v, "00"
      else
        return nil, "expected an amount like 12,50 or 12.50 or 12, got '" .. cut(v) .. "'"
      end
    elseif #dec == 1 then
      dec = dec .. "0"
    end
    if sub(int, 1, 1) == "0" and #int > 1 then int = gsub(int, "^0+(%d)", "%1") end
    local b = int .. "," .. dec
    if max and #b > max then return nil, too_long(#b, max) end
    if #int < 16 and tointeger(int + 0) * 100 + tointeger(dec + 0) < min_cents then
      return nil, "must be at least 0," .. string.format("%02d", min_cents)
    end
    return b
  end
  -- building: the bank's own form with no leading zero (so >= 1,00), or whole units ("100")
  local build = min_cents <= 100 and { shape = "[1-9]%d*,%d%d", max = max, suffix = ",00" } or nil
  return norm, check, { build = build, verify = { shape = "%d+,%d%d", max = max } }
end

--- A calendar date.  spec.layout: "DD.MM.YYYY" or "YYYYMMDD"; spec.not_past: when building,
-- refuse a date before today (local time).  Building also accepts YYYY-MM-DD and converts it.
local layouts = {
  ["DD.MM.YYYY"] = {
    pat = "^(%d%d)%.(%d%d)%.(%d%d%d%d)$", order = "dmy",
    emit = function(n) return string.format("%02d.%02d.%04d", n % 100, n // 100 % 100, n // 10000) end,
  },
  ["YYYYMMDD"] = {
    pat = "^(%d%d%d%d)(%d%d)(%d%d)$", order = "ymd",
    emit = function(n) return string.format("%08d", n) end,
  },
}

function formats.date(spec, ctx)
  local lay = layouts[spec.layout or "DD.MM.YYYY"]
  if not lay then error("date layout must be DD.MM.YYYY or YYYYMMDD", 0) end
  local dmy, not_past, layout = lay.order == "dmy", spec.not_past, spec.layout or "DD.MM.YYYY"
  local shape = dmy and "^%d%d%.%d%d%.%d%d%d%d$" or "^%d%d%d%d%d%d%d%d$"
  local byte = string.byte
  -- YYYYMMDD of b, which has the layout's shape; false when there is no such day
  local function date_of(b)
    local y, m, d
    if dmy then
      local d1, d2, _, m1, m2, _, y1, y2, y3, y4 = byte(b, 1, 10)
      d, m, y = d1 * 10 + d2 - 528, m1 * 10 + m2 - 528, y1 * 1000 + y2 * 100 + y3 * 10 + y4 - 53328
    else
      local y1, y2, y3, y4, m1, m2, d1, d2 = byte(b, 1, 8)
      d, m, y = d1 * 10 + d2 - 528, m1 * 10 + m2 - 528, y1 * 1000 + y2 * 100 + y3 * 10 + y4 - 53328
    end
    if m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then return false end
    return y * 10000 + m * 100 + d
  end
  -- nil: not the layout's shape
  local function value_of(b)
    if not find(b, shape) then return nil end
    return date_of(b)
  end
  local shown = ctx.cs.to_display
  local function check(b)
    local n = value_of(b)
    if n == nil then return nil, "expected a date " .. layout .. ", got '" .. cut(shown(b)) .. "'" end
    if n == false then return nil, "no such date: " .. cut(b) end
    return b
  end
  local emit = lay.emit
  local function norm(v, today)
    local n, b = value_of(v), v
    if n == nil then
      local y, m, d = match(v, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
      if y then
        n = formats.date_value(v)
        if not n then return nil, "no such date: " .. cut(v) end
        b = emit(n)
      else
        return nil, "expected a date " .. layout .. ", got '" .. cut(v) .. "'"
      end
    elseif n == false then
      return nil, "no such date: " .. cut(v)
    end
    if not_past and n < (today or formats.today()) then
      return nil, "must be today or later, got " .. cut(b)
    end
    return b
  end
  local fast_shape = dmy and "%d%d%.%d%d%.%d%d%d%d" or "%d%d%d%d%d%d%d%d"
  return norm, check, { build = { shape = fast_shape, date = layout, not_past = not_past },
                        verify = { shape = fast_shape, date = layout } }
end

--- A Finnish reference number (viitenumero): digits with a valid 7-3-1 check digit, as giro.ref
-- decides (4-20 significant digits).  spec.max: digits on the wire (20).  Building accepts the
-- printed form (groups of five, leading zeros) and sends the canonical number.
function formats.ref(spec, ctx)
  local max = spec.max or 20
  local shown = ctx.cs.to_display
  local kind = spec.kind or "fi"
  local function refcheck(...) return ref().check(...) end
  local function refnormalize(...) return ref().normalize(...) end
  local function check(b)
    if not find(b, "^%d+$") then return nil, "digits only, got '" .. cut(shown(b)) .. "'" end
    if #b > max then return nil, "at most " .. max .. " digits, got " .. #b end
    local ok, why = refcheck(kind, b)
    if not ok then return nil, "not a valid reference number: " .. tostring(why) end
    return b
  end
  local function norm(v)
    if find(v, "^[1-9]%d*$") then return check(v) end
    local c, why = refnormalize(kind, v)
    if not c then return nil, "not a valid reference number: " .. tostring(why) end
    return check(c)
  end
  if kind == "fi" then
    -- giro.ref's rule for the canonical Finnish form (no leading zero, 4-20 digits, 7-3-1 check
    -- digit) as a giro.record check; other forms (leading zeros) ask giro.ref through check/norm.
    -- spec/pay_spec.lua compares the two on every length.
    local fast = { shape = "[1-9]%d*", min = 4, max = math.min(max, 20), check_digit = "731" }
    return norm, check, { build = fast, verify = fast }
  end
  local valid = function(b) return (refcheck(kind, b)) end
  return norm, check, { build = { shape = "[1-9]%d*", max = max, post = valid },
                        verify = { shape = "%d+", max = max, post = valid } }
end

--- An absolute http(s) URL without blanks.  spec.forbid: a string that must not occur (Danske: €).
function formats.url(spec, ctx)
  local tnorm, _, _, validate = text(spec, { cs = ctx.cs, noblank = true })
  local to_display = ctx.cs.to_display
  local max = spec.max
  local ascii = "^[hH][tT][tT][pP][sS]?://[!-~]+$"
  local scheme = "^[hH][tT][tT][pP][sS]?://."
  local function check(b)
    if find(b, ascii) then                       -- the common case: one scan
      if max and #b > max then return nil, too_long(#b, max) end
      return b
    end
    if not find(b, scheme) then
      return nil, "expected an http:// or https:// URL, got '" .. cut(to_display(b)) .. "'"
    end
    local why = validate(b)
    if why then return nil, why end
    return to_display(b)
  end
  local function norm(v)
    if find(v, ascii) then
      if max and #v > max then return nil, too_long(#v, max) end
      return v
    end
    local b, err = tnorm(v)
    if not b then return nil, err end
    if not find(b, scheme) then return nil, "expected an http:// or https:// URL, got '" .. cut(v) .. "'" end
    return b
  end
  local fast = { shape = "[hH][tT][tT][pP][sS]?://[!-~]+", max = max }
  return norm, check, { build = fast, verify = fast }
end

--- A MAC in hex: spec.hexlen digits; spec.case "upper"/"lower"; spec.any_case accepts either.
function formats.mac(spec, ctx)
  local n = spec.hexlen or 64
  local case, any = spec.case or "upper", spec.any_case
  local strict_pat = case == "upper" and "^[0-9A-F]+$" or "^[0-9a-f]+$"
  local function check(b)
    if #b ~= n or not find(b, "^%x+$") then
      return nil, "expected " .. n .. " hex digits, got " .. #b .. " characters"
    end
    if not any and not find(b, strict_pat) then
      return nil, "expected " .. case .. "-case hex"
    end
    return b
  end
  local shape = any and "%x+" or case == "upper" and "[0-9A-F]+" or "[0-9a-f]+"
  return check, check, { verify = { shape = shape, min = n, max = n } }
end

--- The names a definition may use.
vocab = { AN = text, text = text, N = formats.N, A = formats.A, amount = formats.amount,
          date = formats.date, ref = formats.ref, url = formats.url, mac = formats.mac }
formats.names = {}
for k in pairs(vocab) do formats.names[#formats.names + 1] = k end
table.sort(formats.names)

--- Wrap a compiled field with the definition's generic attributes: `values` (an enumeration).
function formats.compile(spec, ctx)
  local fname = spec[2] or spec.format
  local f = vocab[fname]
  if not f then
    return nil, "unknown format '" .. tostring(fname) .. "'"
  end
  local ok, norm, check, fast = pcall(f, spec, ctx)
  if not ok then return nil, norm end
  fast = fast or {}
  if spec.values then
    local set, list = {}, {}
    for _, v in ipairs(spec.values) do set[v] = true; list[#list + 1] = v end
    local allowed = "one of " .. table.concat(list, ", ")
    local strings = true
    for _, v in ipairs(list) do strings = strings and type(v) == "string" end
    local function also_listed(f)
      if not f or not strings then return nil end
      return with(f, "values", list)
    end
    fast = { build = also_listed(fast.build), verify = also_listed(fast.verify) }
    local n0, c0 = norm, check
    norm = function(v, today)
      local b, err = n0(v, today)
      if not b then return nil, err end
      if not set[b] then return nil, "must be " .. allowed .. ", got '" .. cut(b) .. "'" end
      return b
    end
    check = function(b)
      local d, err = c0(b)
      if not d then return nil, err end
      if not set[b] then return nil, "must be " .. allowed .. ", got '" .. cut(d) .. "'" end
      return d
    end
  end
  return norm, check, fast
end

return formats
