-- bench/pay_bench.lua: speed of the payment-message engine (run: ./giro run bench/pay_bench.lua [SECONDS]).
-- 1. build-and-verify pairs per second of a Danske v4 payment from Lua (full field validation),
--    beside the raw rate of SHA-256 (OpenSSL through giro.hash) on messages of the same lengths:
--    two hashes per pair is the ceiling;
-- 2. the wall time of one `giro pay form` process, averaged over spawns.
local pay = require("giro.pay")
local hash = require("giro.hash")

local seconds = tonumber(arg and arg[1]) or 2
local clock = os.clock

local key = string.rep("k", 64)
local bank = assert(pay.bank("danske"))
local today = "20240101"
local input = { SUMMA = "100", VIITE = "1232", KNRO = "000000000000", ERAPAIVA = "01.01.2024",
                OKURL = "https://www.kauppa.fi/okpaluu", VIRHEURL = "https://www.kauppa.fi/virhepaluu", lng = "1" }
local bopts = { key = key, today = today }
local vopts = { key = key }

-- the bank's answer for the payment above, as it arrives on OKURL (MAC computed with giro.hash)
local function answer_for(req)
  local f = {}
  for _, p in ipairs(req:fields()) do f[p[1]] = p[2] end
  local mac = hash.hex(hash.sha256(table.concat({ key, f.VIITE, f.SUMMA, "0", f.KNRO, f.VERSIO, f.VALUUTTA,
    f.ERAPAIVA, "" }, "&")), "upper")
  return "KNRO=" .. f.KNRO .. "&VALUUTTA=EUR&VIITE=" .. f.VIITE .. "&ERAPAIVA=" .. f.ERAPAIVA .. "&SUMMA="
    .. f.SUMMA .. "&VERSIO=4&STATUS=0&TARKISTE=" .. mac .. "&MTAPA=1"
end
local first = assert(bank:build("payment", input, bopts))
local answer = answer_for(first)
assert(bank:verify("return", answer, vopts))

local function rate(fn)
  local n, batch, t0 = 0, 2000, clock()
  local dt
  repeat
    for _ = 1, batch do fn() end
    n = n + batch
    dt = clock() - t0
  until dt >= seconds
  return n / dt
end

local build, verify = bank.build, bank.verify
local pairs_rate = rate(function()
  local req = build(bank, "payment", input, bopts)
  local res = verify(bank, "return", answer, vopts)
  if not (req and res) then error("bench: build or verify failed") end
end)

-- A hand-written, Danske-only Lua version of the same pair (the same checks, giro.ref, giro.hash;
-- no definitions, no error messages): what plain Lua on this machine can do at best.
local ref = require("giro.ref")
local find, byte, gmatch = string.find, string.byte, string.gmatch
local h256, hhex, hequal = hash.sha256, hash.hex, hash.equal
local function hand_build(t)
  local summa = t.SUMMA
  if not find(summa, "^[1-9]%d*,%d%d$") then
    local i, d = summa:match("^(%d+)[,.]?(%d?%d?)$"); summa = i .. "," .. (d .. "00"):sub(1, 2)
  end
  local viite = t.VIITE; if not find(viite, "^%d+$") or not ref.check("fi", viite) then return nil end
  local knro = t.KNRO; if not find(knro, "^%d+$") or #knro > 12 then return nil end
  local era = t.ERAPAIVA; if not find(era, "^%d%d%.%d%d%.%d%d%d%d$") then return nil end
  local d1, d2, _, m1, m2, _, y1, y2, y3, y4 = byte(era, 1, 10)
  if (y1 * 1000 + y2 * 100 + y3 * 10 + y4 - 53328) * 10000 + (m1 * 10 + m2 - 528) * 100 + d1 * 10 + d2 - 528 < 20240101 then return nil end
  local ok = t.OKURL; if not find(ok, "^https?://[!-~]+$") or #ok > 199 then return nil end
  local vi = t.VIRHEURL; if not find(vi, "^https?://[!-~]+$") or #vi > 199 then return nil end
  local n = 0; for _ in next, t do n = n + 1 end
  local mac = hhex(h256(key .. "&" .. summa .. "&" .. viite .. "&" .. knro .. "&4&EUR&" .. ok .. "&" .. vi .. "&" .. era .. "&"))
  return { summa, viite, knro, "EUR", "4", era, ok, vi, mac, t.lng, "03" }
end
local IDX = { KNRO = 1, VALUUTTA = 2, VIITE = 3, SUMMA = 4, VERSIO = 5, STATUS = 6, TARKISTE = 7, MTAPA = 8, ERAPAIVA = 9 }
local function hand_verify(q)
  local r = {}
  for name, val in gmatch(q, "([^&=]*)=?([^&]*)") do local i = IDX[name]; if i then r[i] = val end end
  if not find(r[1], "^%d+$") or r[2] ~= "EUR" or r[5] ~= "4" or r[6] ~= "0" then return nil end
  if not ref.check("fi", r[3]) or not find(r[4], "^%d+,%d%d$") or not find(r[9], "^%d%d%.%d%d%.%d%d%d%d$") then return nil end
  if #r[7] ~= 64 then return nil end
  local mac = hhex(h256(key .. "&" .. r[3] .. "&" .. r[4] .. "&" .. r[6] .. "&" .. r[1] .. "&" .. r[5] .. "&" .. r[2] .. "&" .. r[9] .. "&"), "upper")
  if not hequal(mac, r[7]) then return nil end
  return { KNRO = r[1], VALUUTTA = r[2], VIITE = r[3], SUMMA = r[4], VERSIO = r[5], STATUS = r[6], TARKISTE = r[7], MTAPA = r[8], ERAPAIVA = r[9] }
end
assert(hand_build(input) and hand_verify(answer), "bench: the hand-written pair failed")
local hand_rate = rate(function() hand_build(input); hand_verify(answer) end)

-- the strings the two MACs are computed over, for the hash ceiling
local s_req = table.concat({ key, "100,00", "1232", "000000000000", "4", "EUR", input.OKURL, input.VIRHEURL,
  "01.01.2024", "" }, "&")
local s_res = table.concat({ key, "1232", "100,00", "0", "000000000000", "4", "EUR", "01.01.2024", "" }, "&")
local sha256, hex = hash.sha256, hash.hex
local hash_rate = rate(function() hex(sha256(s_req)); hex(sha256(s_res)) end)

print(string.format("pay: danske v4 build+verify  %10.0f pairs/s per core (target >= 250000)", pairs_rate))
print(string.format("pay: sha256 ceiling          %10.0f pairs/s (two SHA-256 of %d and %d bytes, hex)",
  hash_rate, #s_req, #s_res))
print(string.format("pay: hand-written Lua pair    %10.0f pairs/s (Danske only, same checks: plain Lua's best)", hand_rate))
print(string.format("pay: engine share of the time %9.0f%% (the rest is the two hashes)", 100 * (1 - pairs_rate / hash_rate)))

-- one `giro pay form` process, start to exit, beside `giro --version` spawned the same way: the
-- binary exec'd in place of the shell io.popen starts (so no extra process is timed beyond that
-- shell's own start, the same in both), output read to the end, runs interleaved so load drifts
-- hit both alike.  Mean and median of `spawns` runs each.
local exe = "./giro"
local keyfile = os.tmpname()
local kf = assert(io.open(keyfile, "w")); kf:write(key, "\n"); kf:close()
local form = "exec " .. exe .. " pay form danske --key-file " .. keyfile
  .. " SUMMA=100 VIITE=1232 KNRO=000000000000 ERAPAIVA=31.12.2099"
  .. " OKURL=https://www.kauppa.fi/okpaluu VIRHEURL=https://www.kauppa.fi/virhepaluu"
local version = "exec " .. exe .. " --version"
local ok_socket, socket = pcall(require, "socket")
local now = ok_socket and socket.gettime or os.time
local spawns = tonumber(os.getenv("PAY_BENCH_SPAWNS")) or 60
local function spawn(cmd)
  local t0 = now()
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  local dt = now() - t0
  assert(ok and #out > 0, "bench: " .. cmd .. " failed")
  return dt * 1000
end
local times = { [form] = {}, [version] = {} }
spawn(form); spawn(version)                       -- warm the page cache
for i = 1, spawns do
  for _, cmd in ipairs({ form, version }) do times[cmd][i] = spawn(cmd) end
end
os.remove(keyfile)
local function stats(list)
  local sum = 0
  for _, v in ipairs(list) do sum = sum + v end
  table.sort(list)
  return sum / #list, list[(#list + 1) // 2]
end
local fmean, fmed = stats(times[form])
local vmean, vmed = stats(times[version])
local clock_note = ok_socket and "" or " [coarse clock: lua-socket missing]"
print(string.format("pay: giro pay form process   %10.2f ms mean, %.2f ms median of %d spawns (target < 15 ms)%s",
  fmean, fmed, spawns, clock_note))
print(string.format("pay: giro --version process  %10.2f ms mean, %.2f ms median (the floor, same spawn); pay's own share %.2f ms",
  vmean, vmed, fmed - vmed))
