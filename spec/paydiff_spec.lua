-- giro.pay's fast paths against its general route, over many generated inputs.  Message:build
-- first tries giro.record's layout:take of the whole input, Message:verify layout:parse of a
-- plain query string; either gives false for anything it does not take as it is, and the
-- general route (url.parse_query_map, layout:collect, the fields' own closures) answers.  The
-- fast path must never give a different answer: here each input is answered twice, once as
-- usual and once with the fast path switched off (the engine's upvalue replaced by a function
-- giving false), and the two answers must be the same, error texts included.
--
-- The MACs that make generated messages valid are computed with giro.hash.hex_join (the
-- recipe's own parts): they only steer inputs towards acceptance; what is asserted is that the
-- two routes agree, and that each route accepted some of them.  (The MAC values themselves are
-- tested against openssl in pay_spec.lua and payprim_spec.lua.)
local pay = require("giro.pay")
local hash = require("giro.hash")
local url = require("giro.url")
local record = require("giro.record")

local DKEY = "jumCLB4T2ceZWGJ9ztjuhn5FaeZnTm5HpfDXWU2APRqfDcsrBs8mqkFARzm7uXKd"  -- Danske's test key
local SKEY = string.rep("A", 64)
local MKEY = "ABCDEFGHIJKLMNOPQRST"

-- a deterministic generator: pick(n) in 1..n, choice(list)
local function rng(seed)
  local s = seed
  local r = {}
  function r.pick(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return (s >> 8) % n + 1
  end
  function r.choice(list) return list[r.pick(#list)] end
  function r.chance(p) return r.pick(1000) <= p * 1000 end
  return r
end

-- Run f with the upvalue `upname` of Message.<method> (shared by every closure of the engine
-- that uses it) replaced by a function giving false: the general route.
local function general_route(msg, method, upname, f)
  local fn = getmetatable(msg)[method]
  local i = 1
  while true do
    local name = debug.getupvalue(fn, i)
    assert(name, "Message." .. method .. " has no upvalue " .. upname)
    if name == upname then break end
    i = i + 1
  end
  local _, old = debug.getupvalue(fn, i)
  assert(old, upname .. " is not set yet: run the fast route first")
  debug.setupvalue(fn, i, function() return false end)
  local res = table.pack(pcall(f))
  debug.setupvalue(fn, i, old)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- An answer as plain data: a request's own table (plan by identity), or the result / error.
local function answer(ok, r, e)
  if not ok then return { "raised", (tostring(r):gsub("^.-:%d+: ", "")) } end
  if type(r) == "table" and getmetatable(r) and r.wire then
    local t = {}
    for k, v in pairs(r) do t[k] = v end
    t.plan = tostring(r.plan)
    return { t, wire = r:wire(), body = r:body() }
  end
  return { r, e }
end

local TOY = {
  name = "toy", charset = "ISO-8859-1",
  messages = {
    payment = {
      kind = "request",
      fields = {
        { "AMT", "amount", max = 12, required = true },
        { "REF", "ref", required = true },
        { "CUR", "A", max = 3, value = "EUR" },
        { "LANG", "A", max = 2, values = { "FI", "EN" }, default = "FI" },
        { "NOTE", "text", max = 10 },
        { "DUE", "date", layout = "DD.MM.YYYY", not_past = true },
        { "URL", "url", max = 60, forbid = "€" },
        { "MAC", "mac" },
      },
      mac = { field = "MAC", alg = "md5", case = "lower", key = "last", sep = "|", trailing = false,
              absent = "omit", fields = { "AMT", "REF", "CUR", "LANG", "NOTE", "DUE" } },
    },
  },
}
-- three answers that differ only in how an absent MAC input counts
for _, absent in ipairs({ "omit", "empty", "error" }) do
  TOY.messages["ret_" .. absent] = {
    kind = "response",
    fields = {
      { "REF", "ref", required = true }, { "AMT", "amount", max = 12 }, { "CUR", "A", max = 3, value = "EUR" },
      { "NOTE", "text", max = 10 }, { "CODE", "N", max = 1, values = { "0", "1" } },
      { "DUE", "date", layout = "YYYYMMDD" }, { "MAC", "mac" },
    },
    mac = { field = "MAC", alg = "sha256", case = "upper", key = "first", sep = ";", trailing = true,
            absent = absent, any_case = absent == "omit", fields = { "REF", "AMT", "CUR", "NOTE", "CODE", "DUE" } },
  }
end

-- values worth trying in any field: the tricky bytes of a query string and of the formats
local TRICKY = {
  "", " ", "0", "1", "2", "4", "12", "100", "100,00", "12,5", "12.50", "0,50", "0100,00", "1232", "1233",
  "00001232", "12 32", "EUR", "eur", "SEK", "FI", "fi", "EN", "SE", "01.01.2024", "31.12.2099", "32.01.2024",
  "2099-12-31", "20991231", "20240230", "https://x.example/ok", "http://x.example/a?b=c", "HTTPS://X",
  "https://x.example/\226\130\172", "ftp://x", "a\0b", "\0", "\228\246", "\195\164", "€", "abc",
  "hello world", "toolongvalue!", "~", "a=b", "%41", "+", string.rep("9", 25), string.rep("x", 300),
}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

describe("giro.pay fast paths give the general route's answer", function()
  local banks = {
    danske = assert(pay.bank("danske")),
    saastopankki = assert(pay.bank("saastopankki")),
    toy = assert(pay.bank(TOY)),
  }

  it("build: layout:take against layout:collect and the fields' closures", function()
    local bases = {
      { banks.danske, { SUMMA = "100", VIITE = "1232", KNRO = "000000000000", ERAPAIVA = "01.01.2099",
                        OKURL = "https://www.kauppa.fi/okpaluu", VIRHEURL = "https://www.kauppa.fi/virhepaluu" },
        { DKEY, DKEY:sub(2), "" } },
      { banks.saastopankki, { NET_STAMP = "ORDER42", NET_SELLER_ID = "0000000000123", NET_AMOUNT = "12,50",
                              NET_REF = "1232", NET_RETURN = "https://shop.example/ok",
                              NET_CANCEL = "https://shop.example/cancel",
                              NET_REJECT = "https://shop.example/reject" }, { SKEY, MKEY } },
      { banks.toy, { AMT = "7,50", REF = "1232", NOTE = "hi", DUE = "01.02.2099", URL = "https://x.example/r" },
        { "sekret" } },
    }
    local r = rng(20240101)
    local agreed, built, refused = 0, 0, 0
    for _, b in ipairs(bases) do
      local bank, base, keys = b[1], b[2], b[3]
      local msg = assert(bank.compiled.messages.payment or bank:message("payment"))
      local names = {}
      for i, f in ipairs(msg.fields) do names[i] = f[1] end
      assert(bank:build("payment", base, { key = keys[1] }))     -- the fast route sets its upvalues
      for _ = 1, 600 do
        local input = copy(base)
        for _ = 1, r.pick(4) - 1 do                               -- 0 to 3 changes
          local name, what = r.choice(names), r.pick(12)
          if what <= 5 then input[name] = r.choice(TRICKY)
          elseif what == 6 then input[name] = nil
          elseif what == 7 then input[name] = tonumber(r.choice({ "100", "7.5", "1232", "0" }))
          elseif what == 8 then input[name:lower()] = input[name] or "1"
          elseif what == 9 then input[r.choice({ 1, true, "X", "" })] = r.choice({ "1", 1 })
          elseif what == 10 then input[name] = r.choice({ true, {}, "" })
          elseif what == 11 then
            input[name] = (type(input[name]) == "string" and input[name] or "") .. r.choice(TRICKY)
          else input.NET_VERSION = r.choice({ "001", "002", "003", "004", 3 }) end
        end
        local opts = { key = r.choice(keys), today = r.choice({ "2024-01-01", "20991231", "31.12.2099" }),
                       version = r.chance(0.1) and r.choice({ "001", "003", "9" }) or nil,
                       env = r.choice({ "test", nil }) }
        if r.chance(0.05) then opts.key = nil end
        local fast = answer(pcall(bank.build, bank, "payment", input, opts))
        local general = answer(general_route(msg, "build", "layout_take", function()
          return pcall(bank.build, bank, "payment", input, opts)
        end))
        assert.same(general, fast)
        agreed = agreed + 1
        if fast.wire then built = built + 1 else refused = refused + 1 end
      end
    end
    assert.equal(1800, agreed)
    assert.is_true(built > 100 and refused > 300, built .. " built, " .. refused .. " refused")
  end)

  -- A message's parameters as a list { name, value } with a valid MAC (key given).
  local function mac_of(msg, map, key)
    local plan = msg.only_plan or msg.plans[map[msg.version_field]] or msg.plans[msg.versions[1]]
    local m = plan.mac
    local parts = {}
    if m.key_first then parts[1] = key end
    for _, name in ipairs(m.names) do
      local v = map[name]
      if v == nil and m.absent ~= "omit" then v = "" end
      parts[#parts + 1] = v
    end
    if not m.key_first then parts[#parts + 1] = key end
    return hash.hex_join(m.alg, m.case, m.sep, m.trailing, parts), m.field
  end

  local function query(list)
    local parts = {}
    for i, p in ipairs(list) do parts[i] = p[2] and p[1] .. "=" .. p[2] or p[1] end
    return table.concat(parts, "&")
  end

  it("verify: layout:parse against url.parse_query_map and layout:collect", function()
    local bases = {
      { banks.danske, "return", { { "KNRO", "000000000000" }, { "VALUUTTA", "EUR" }, { "VIITE", "1232" },
          { "ERAPAIVA", "01.01.2024" }, { "SUMMA", "100,00" }, { "VERSIO", "4" }, { "STATUS", "0" },
          { "MTAPA", "1" } }, { DKEY, DKEY:lower() } },
      { banks.saastopankki, "return", { { "NET_RETURN_VERSION", "003" }, { "NET_RETURN_STAMP", "ORDER42" },
          { "NET_RETURN_REF", "1232" }, { "NET_RETURN_PAID", "ARCH0001" }, { "NET_ALG", "03" } }, { SKEY } },
    }
    for _, absent in ipairs({ "omit", "empty", "error" }) do
      bases[#bases + 1] = { banks.toy, "ret_" .. absent, { { "REF", "1232" }, { "AMT", "7,50" }, { "CUR", "EUR" },
        { "NOTE", "hi there" }, { "CODE", "0" }, { "DUE", "20240229" } }, { "sekret" } }
    end
    local r = rng(7)
    local agreed, accepted, refused = 0, 0, 0
    for _, b in ipairs(bases) do
      local bank, mname, base, keys = b[1], b[2], b[3], b[4]
      local msg = assert(bank.compiled.messages[mname] or bank:message(mname))
      local names = {}
      for i, f in ipairs(msg.fields) do names[i] = f[1] end
      names[#names + 1] = "X"
      do   -- the fast route once, with a valid message (sets its upvalues)
        local map = {}
        for _, p in ipairs(base) do map[p[1]] = p[2] end
        local mac, field = mac_of(msg, map, keys[1])
        local list = copy(base)
        list[#list + 1] = { field, mac }
        assert(bank:verify(mname, query(list), { key = keys[1] }))
      end
      for _ = 1, 500 do
        local list = {}
        for i, p in ipairs(base) do list[i] = { p[1], p[2] } end
        for _ = 1, r.pick(4) - 1 do                               -- 0 to 3 changes to the fields
          local what, i = r.pick(11), r.pick(#list)
          local p = list[i]
          if what <= 3 and p then p[2] = r.choice(TRICKY)
          elseif what == 4 and p then table.remove(list, i)
          elseif what == 5 and p then list[#list + 1] = { p[1], p[2] }                 -- twice
          elseif what == 6 and p then p[1] = p[1]:lower()
          elseif what == 7 and p then p[2] = nil                                       -- no '='
          elseif what == 8 then list[#list + 1] = { r.choice(names), r.choice(TRICKY) }
          elseif what == 9 and p and p[2] and #p[2] > 0 then                                    -- an escape
            local j = r.pick(#p[2])
            p[2] = p[2]:sub(1, j - 1) .. string.format("%%%02X", p[2]:byte(j)) .. p[2]:sub(j + 1)
          elseif what == 10 and p then p[2] = p[2] and p[2]:gsub(" ", "+")
          elseif p then list[i], list[#list] = list[#list], list[i] end                -- order
        end
        -- a MAC over what the bank would read (most of the time), else a stale or broken one
        local bare = query(list)
        local map = url.parse_query_map(bare)
        local mac, field = mac_of(msg, map or {}, keys[1])
        local how = r.pick(10)
        if how == 8 then mac = mac:lower()
        elseif how == 9 then mac = mac:sub(2)
        elseif how == 10 then mac = mac:gsub("^.", "0") end
        table.insert(list, r.pick(#list + 1), { field, mac })
        local q = query(list)
        local frame = r.pick(12)
        if frame == 1 then q = "?" .. q
        elseif frame == 2 then q = q .. "&"
        elseif frame == 3 then q = "&&" .. q:gsub("&", "&&", 1)
        elseif frame == 4 then q = q .. "#frag"
        elseif frame == 5 then q = "??" .. q
        elseif frame == 6 then q = "https://shop.example/ok?" .. q end
        local opts = { key = r.choice(keys) }
        if r.chance(0.1) then opts.key = r.choice({ "short", nil, string.rep("k", 64) }) end
        if r.chance(0.2) then opts.expect = { [r.choice(names)] = r.choice(TRICKY) } end
        local fast = answer(pcall(bank.verify, bank, mname, q, opts))
        local general = answer(general_route(msg, "verify", "layout_parse", function()
          return pcall(bank.verify, bank, mname, q, opts)
        end))
        assert.same(general, fast, q)
        agreed = agreed + 1
        if fast[1] and fast[1] ~= "raised" then accepted = accepted + 1 else refused = refused + 1 end
      end
    end
    assert.equal(2500, agreed)
    assert.is_true(accepted > 400 and refused > 400, accepted .. " accepted, " .. refused .. " refused")
  end)
end)

describe("giro.pay MAC recipes", function()
  it("take a separator longer than joiner:hex's buffer (built and verified, MAC from openssl)", function()
    local H = require("pay_helpers")
    local sep = string.rep("|", 1500)
    local bank = assert(pay.bank({ name = "longsep", messages = {
      payment = { kind = "request", fields = { { "REF", "ref", required = true }, { "MAC", "mac", case = "lower" } },
                  mac = { field = "MAC", alg = "sha256", case = "lower", sep = sep, fields = { "REF" } } },
      ["return"] = { kind = "response", fields = { { "REF", "ref", required = true }, { "MAC", "mac", case = "lower" } },
                     mac = { field = "MAC", alg = "sha256", case = "lower", sep = sep, fields = { "REF" } } },
    } }))
    local mac = H.sha256("1232" .. sep .. "k" .. sep)
    assert.equal(mac, assert(bank:build("payment", { REF = "1232" }, { key = "k" })):get("MAC"))
    assert.truthy(bank:verify("return", "REF=1232&MAC=" .. mac, { key = "k" }))
  end)
end)

describe("giro.record parse and take against the general route, on the banks' own layouts", function()
  -- parse(q) is a map only when url.parse_query_map(q) gives the same map and count and collect
  -- takes every field of it; take(m) only when collect takes every key of m and leaves no stop
  local ALPHABET = { "&", "&", "=", "=", "?", "#", "%", "%2C", "%4", "+", " ", ",", ".", "0", "1", "2", "4", "9",
                     "a", "A", "e", "E", "\0", "\228", "\255" }
  local function layouts()
    local out = {}
    for _, name in ipairs({ "danske", "saastopankki" }) do
      local bank = assert(pay.bank(name))
      for _, mname in ipairs(bank:messages()) do
        local msg = assert(bank.compiled.messages[mname] or bank:message(mname))
        for _, plan in pairs(msg.plans) do
          local names = plan.names
          for _, mode in ipairs({ "build", "verify" }) do
            local ok, lay = pcall(function()   -- the engine makes a plan's layouts on first use
              local l = plan[mode .. "_layout"]
              if l then return l end
              if mode == "build" then msg:build({}, { key = SKEY }) else msg:verify("", { key = SKEY }) end
              return plan[mode .. "_layout"]
            end)
            if ok and lay then
              -- values the layout takes for each field: its fixed value, and the tricky ones it takes
              local good = {}
              for k = 1, plan.n do
                good[k] = { type(plan.fixed[k]) == "string" and plan.fixed[k] or nil }
                for _, v in ipairs(TRICKY) do
                  if lay:check(k, v, 20240101) then good[k][#good[k] + 1] = v end
                end
                if #good[k] == 0 then good[k] = TRICKY end
              end
              out[#out + 1] = { lay, names, good }
            end
          end
        end
      end
    end
    return out
  end

  it("parse: generated query strings from a small alphabet of tricky bytes", function()
    local r = rng(99)
    local n_map = 0
    for _, l in ipairs(layouts()) do
      local lay, names, good = l[1], l[2], l[3]
      for _ = 1, 300 do
        local parts = {}
        local order = {}
        for k = 1, #names do order[k] = k end
        for k = #order, 2, -1 do local j = r.pick(k); order[k], order[j] = order[j], order[k] end
        -- every field in some order with a value it takes, a few left out; then 0 to 3 changes
        for i = 1, #names do
          local k = order[i]
          if r.chance(0.85) then parts[#parts + 1] = { names[k], r.choice(good[k]), k = k } end
        end
        for _ = 1, r.pick(4) - 1 do
          local p, what = parts[r.pick(#parts + 1)], r.pick(8)
          if what == 1 and p then p[1] = p[1]:lower()
          elseif what == 2 and p then p[2] = r.choice(TRICKY)
          elseif what == 3 and p then                             -- bytes from the alphabet
            local v = {}
            for _ = 1, r.pick(8) - 1 do v[#v + 1] = r.choice(ALPHABET) end
            p[2] = table.concat(v)
          elseif what == 4 and p then p[2] = nil                  -- no '='
          elseif what == 5 and p then parts[#parts + 1] = { p[1], p[2] }
          elseif what == 6 then parts[#parts + 1] = { r.choice(ALPHABET) .. r.choice(ALPHABET), "1" }
          elseif what == 7 and p then p[1] = p[1] .. r.choice(ALPHABET)
          elseif p then p[2] = p[2] and (p[2] .. r.choice(ALPHABET)) end
        end
        for i, p in ipairs(parts) do parts[i] = p[2] and p[1] .. "=" .. p[2] or p[1] end
        local q = (r.chance(0.1) and "?" or "") .. table.concat(parts, r.chance(0.1) and "&&" or "&")
        local today = r.chance(0.5) and 20240101 or nil
        local map, count = lay:parse(q, today)
        if map then
          n_map = n_map + 1
          local gmap, gcount = url.parse_query_map(q)
          assert.same(gmap, map, q)
          assert.equal(gcount, count, q)
          local _, k, seen = lay:collect(gmap, false, 1, today)
          assert.is_nil(k, q)
          assert.equal(gcount, seen, q)
        else
          assert.is_false(map, q)
        end
      end
    end
    assert.is_true(n_map > 20, n_map .. " parsed")
  end)

  it("take: generated maps, keys and values of every kind", function()
    local r = rng(5)
    local n_out = 0
    for _, l in ipairs(layouts()) do
      local lay, names, good = l[1], l[2], l[3]
      for _ = 1, 300 do
        local m = {}
        for k, name in ipairs(names) do
          if r.chance(0.6) then
            local v = r.choice(r.chance(0.95) and good[k] or TRICKY)
            if r.chance(0.05) then v = r.choice({ 1, true, {} }) end
            m[r.chance(0.05) and name:lower() or name] = v
          end
        end
        if r.chance(0.05) then m[r.choice({ 1, true, "X" })] = "1" end
        local today = r.chance(0.5) and 20240101 or nil
        local tout, n = lay:take(m, today)
        local cout, k, seen = lay:collect(m, nil, 1, today)
        if tout then
          n_out = n_out + 1
          assert.is_nil(k)
          assert.same(cout, tout)
          assert.equal(record.count(m), seen)
          assert.equal(seen, n)
        else
          assert.is_false(tout)
          assert.is_true(k ~= nil or seen ~= record.count(m))
        end
      end
    end
    assert.is_true(n_out > 20, n_out .. " taken")
  end)
end)
