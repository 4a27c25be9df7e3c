--- Throughput of giro.ref.check (C arithmetic) against a pure-Lua check of the
-- same algorithm (bench/pure_ref.lua), in the same run.
--   ./giro run bench/ref_bench.lua [SECONDS_PER_MEASUREMENT]   (default 0.5, about 5 s in all)
-- Prints one line per kind: numbers per second for each and the ratio; then the
-- bare arithmetic (giro.checkdigit against the same loop in Lua).
local ref = require("giro.ref")
local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local pure = dofile(dir .. "/pure_ref.lua")

local seconds = tonumber(arg and arg[1]) or 0.5
math.randomseed(42)

local function digits(n)
  local t = {}
  for i = 1, n do t[i] = string.char(48 + math.random(0, 9)) end
  return table.concat(t)
end

-- 1000 numbers per kind, 9 valid for every invalid one (one digit changed),
-- in the compact form a file would hold
local function sample(kind, make_base)
  local list = {}
  while #list < 1000 do
    local full = ref.create(kind, make_base())
    if full then
      if #list % 10 == 9 then
        local i = math.random(5, #full - 1)
        local c = full:byte(i)
        full = full:sub(1, i - 1) .. string.char(48 + (c - 48 + 1) % 10) .. full:sub(i + 1)
      end
      list[#list + 1] = full
    end
  end
  return list
end

local kinds = {
  { "fi", function() return tostring(math.random(1, 9)) .. digits(math.random(5, 18)) end },
  { "kid10", function() return digits(math.random(5, 24)) end },
  { "kid11", function() return digits(math.random(5, 24)) end },
  { "iban", function()
      local acct
      repeat acct = ref.create("no-account", digits(10)) until acct
      return acct
    end },
}

-- calls per second of check over the list, for about `seconds`
local function measure(check, kind, list)
  local n, rounds = #list, 0
  local t0 = os.clock()
  local elapsed
  repeat
    for i = 1, n do check(kind, list[i]) end
    rounds = rounds + 1
    elapsed = os.clock() - t0
  until elapsed >= seconds
  return rounds * n / elapsed
end

local function pure_check(kind, s) return pure[kind](s) end

print(string.format("giro.ref.check vs pure Lua, %s s per measurement (CPU time)", seconds))
print(string.format("%-8s %16s %16s %8s", "kind", "giro.ref/s", "pure Lua/s", "ratio"))
for _, k in ipairs(kinds) do
  local kind = k[1]
  local list = sample(kind, k[2])
  for _, s in ipairs(list) do   -- both must agree before their speed means anything
    assert(ref.check(kind, s) == pure[kind](s), "pure and giro.ref disagree on " .. kind .. " " .. s)
  end
  local c = measure(ref.check, kind, list)
  local p = measure(pure_check, kind, list)
  print(string.format("%-8s %16.0f %16.0f %7.2fx", kind, c, p, c / p))
end

local cd = require("giro.checkdigit")
local arith = {
  { "7-3-1", "fi", function(s) return cd.fi_check(s, 1, -2) end, function(s) return pure.arith.fi(s, #s - 1) end },
  { "luhn", "kid10", function(s) return cd.luhn(s, 1, -2) end, function(s) return pure.arith.luhn(s, #s - 1) end },
  { "mod11", "kid11", function(s) return cd.mod11(s, nil, 1, -2) end, function(s) return pure.arith.mod11(s, #s - 1) end },
  { "mod97", "iban", function(s) return cd.iso7064_mod97(s, 4) end, function(s) return pure.arith.mod97(s) end },
}
print()
print(string.format("%-8s %16s %16s %8s", "arith", "checkdigit/s", "pure Lua/s", "ratio"))
for _, a in ipairs(arith) do
  local list = {}
  for _, s in ipairs(sample(a[2], kinds[({ fi = 1, kid10 = 2, kid11 = 3, iban = 4 })[a[2]]][2])) do
    if not s:find("-", 1, true) then list[#list + 1] = s end
  end
  for _, s in ipairs(list) do assert(a[3](s) == a[4](s), a[1] .. " disagrees on " .. s) end
  local c = measure(function(_, s) return a[3](s) end, nil, list)
  local p = measure(function(_, s) return a[4](s) end, nil, list)
  print(string.format("%-8s %16.0f %16.0f %7.2fx", a[1], c, p, c / p))
end
