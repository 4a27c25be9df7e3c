-- The eFaktura register on both backends: the same cycle (customers import, process a file
-- of adds, changes, deletes, receipts and held requests, decide, answer, replay) run on SQLite
-- and on PostgreSQL must write the same response files, byte for byte, and leave the same
-- register (as `giro efaktura agreements --json` and `history --json` show it); and a giro
-- killed at any crash point of `process` or `answer` (GIRO_TEST_CRASH_AT), then run again,
-- writes the response an uninterrupted run writes and leaves the register it leaves, on
-- either backend.  The reference for each comparison is the other backend or the
-- uninterrupted run, never a text written down from giro's own output.
-- PostgreSQL: one throw-away server for this file (spec/support/pgserver.lua).
local H = dofile("spec/fixtures/efaktura/helper.lua")
local cjson = require("cjson")

local MSG01 = "Oppgitt efaktura referanse er ugyldig (se papirfaktura)"   -- spec section 6.1

-- JSON as canonical text (keys sorted), time stamps left out: they differ from run to run.
local STAMPS = { at = true, created_at = true, updated_at = true, processed_at = true, since = true }
local function canon(v)
  local t = type(v)
  if v == nil or v == cjson.null then return "null" end
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = canon(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do if not STAMPS[k] then keys[#keys + 1] = k end end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = string.format("%q:%s", k, canon(v[k])) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  if t == "number" then return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v) end
  if t == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- assert two texts equal, naming the first line that differs (not the whole register)
local function same_text(want, got, what)
  if want == got then return end
  local wl, gl = {}, {}
  for l in (want or ""):gmatch("[^\n]*") do wl[#wl + 1] = l end
  for l in (got or ""):gmatch("[^\n]*") do gl[#gl + 1] = l end
  for i = 1, math.max(#wl, #gl) do
    if wl[i] ~= gl[i] then
      local function clip(s) s = tostring(s) return #s > 600 and s:sub(1, 600) .. "..." or s end
      error(string.format("%s differ at line %d:\n  expected: %s\n  got:      %s", what, i, clip(wl[i]), clip(gl[i])), 2)
    end
  end
end

local function json_of(words)
  local rc, out, err = H.run(words)
  assert(rc == 0, table.concat(words, " ") .. ": exit " .. tostring(rc) .. ": " .. tostring(err))
  return cjson.decode(out)
end

--- The register as the CLI shows it: every agreement, and every agreement's history
-- (fetched per BillerAccountNumber, so a handful of calls covers many agreements).
local function register_text(db)
  local list = json_of({ "efaktura", "agreements", "--db", db, "--json" })
  local refs, seen = {}, {}
  for _, a in ipairs(list) do
    if not seen[a.account] then seen[a.account] = true refs[#refs + 1] = a.account end
  end
  table.sort(refs)
  local parts = { canon(list) }
  for _, r in ipairs(refs) do
    parts[#parts + 1] = r .. " " .. canon(json_of({ "efaktura", "history", "--db", db, "--reference", r, "--json" }))
  end
  parts[#parts + 1] = canon(json_of({ "efaktura", "pending", "--db", db, "--json" }))
  return table.concat(parts, "\n")
end

local HOLD_RULE = [[
local names = require("giro.efaktura.names")
return {
  options = { hold = { ["01"] = true } },    -- an unknown reference waits for a person
  validate = function(request, customer)
    if not customer then return { reason = "01", why = "unknown reference" } end
    if not names.match(request, customer) then return { reason = "02" } end
    if not customer.efaktura then return { reason = "03" } end
    return { accept = true }
  end,
}]]

local function sqlite_new_db(dir) return dir .. "/register.db" end

-- The backends of this file: SQLite, and PostgreSQL when installed (else the reason is
-- printed, as H.backends does, and the PostgreSQL variants are not registered).
local pg = require("pgserver")
local server
local backends = { { name = "sqlite", new_db = sqlite_new_db } }
if pg.available() then
  backends[2] = { name = "postgres", new_db = function() return (server:create_db()) end }
else
  io.stderr:write("spec/efaktura_backends_spec.lua: PostgreSQL tests not run: ", pg.why(), "\n")
end

-- A fresh directory with the rule and the customers; a fresh register of backend B.
local function fresh(B)
  local dir = H.tmpdir()
  H.write(dir .. "/customers.csv", H.CUSTOMERS)
  H.write(dir .. "/hold.lua", HOLD_RULE)
  local db = B.new_db(dir)
  local rc, _, err = H.run({ "customers", "import", dir .. "/customers.csv", "--db", db })
  assert(rc == 0, err)
  return dir, db
end

local function process(dir, db, name, text, env)
  local req = dir .. "/" .. name .. ".xml"
  if not H.exists(req) then H.write(req, text) end
  local out = dir .. "/" .. name .. "-response.xml"
  local rc, _, err = H.run({ "efaktura", "process", req, "--biller", dir .. "/hold.lua", "--db", db, "-o", out }, env)
  return rc, out, err
end

-- The two request files of the cycle.  Customers (H.CUSTOMERS): 999 Fornavn Etternavn,
-- 1000017 Kari Anne Nordmann, 1000025 Åse-Marie Østby, 1000033 Bjørn Sæther-Ødegård
-- (no eFaktura), 0001234 Ola Hansen.
local REQ1 = H.request{ per_rq = 3, records = {
  H.add("1000017", "c1==", "Kari", "Nordmann"),           -- accepted
  H.add("1000025", "c2==", "ÅSE MARIE", "ØSTBY"),         -- accepted (case, hyphen)
  H.add("1000017", "c3==", "Per", "Olsen"),               -- 02
  H.add("1000033", "c4==", "Bjørn", "Sæther-Ødegård"),    -- 03
  H.add("4711", "c5==", "Kari", "Nordmann"),              -- unknown: held
  H.add("4712", "c6==", "Ola", "Hansen"),                 -- unknown: held
  H.change("0001234", "c7==", "Ola", "Hansen"),           -- a change, not active: validated, accepted
  H.receipt("A", "999", "c8=="),                          -- a receipt for an agreement never answered
  H.delete("999", "c9=="),                                -- a delete for an unknown agreement: ignored
} }
local REQ2 = H.request{ records = {
  H.receipt("A", "1000017", "c1=="),                      -- c1 active
  H.receipt("N", "1000017", "c3=="),                      -- c3 rejected
  H.add("1000025", "c2==", "ÅSE MARIE", "ØSTBY"),         -- reminder: the same answer again
  H.add("4711", "c5==", "Kari", "Nordmann"),              -- reminder of a held one: still held
  H.change("1000017", "c1==", "Someone", "Else"),         -- active: accepted whatever the name
  H.delete("0001234", "c7=="),                            -- stopped
} }

-- The whole cycle on one backend; returns { file name = bytes }, the register text.
local function cycle(B)
  local dir, db = fresh(B)
  local files = {}
  local rc, out, err = process(dir, db, "req1", REQ1)
  assert.equal(0, rc, err)
  files.r1 = H.read(out)
  rc, out, err = process(dir, db, "req2", REQ2)
  assert.equal(0, rc, err)
  files.r2 = H.read(out)
  local pending = json_of({ "efaktura", "pending", "--db", db, "--json" })
  assert.equal(2, #pending)
  local by_account = {}
  for _, p in ipairs(pending) do by_account[p.account] = tostring(math.tointeger(p.id)) end
  assert.equal(0, (H.run({ "efaktura", "decide", "--db", db, by_account["4711"], "accept", "--customer", "1000017" })))
  assert.equal(0, (H.run({ "efaktura", "decide", "--db", db, by_account["4712"], "reject", "01" })))
  local ans = dir .. "/answer.xml"
  rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", ans })
  assert.equal(0, rc, err)
  files.answer = H.read(ans)
  -- replay: the first file again writes its response again, byte for byte
  local again = dir .. "/again.xml"
  rc, _, err = H.run({ "efaktura", "process", dir .. "/req1.xml", "--biller", dir .. "/hold.lua", "--db", db, "-o", again })
  assert.equal(0, rc, err)
  assert.truthy(err:find("already processed", 1, true), err)
  files.replay = H.read(again)
  for name, bytes in pairs(files) do
    local path = H.write(dir .. "/check-" .. name .. ".xml", bytes)
    assert.is_true(H.xsd_valid(path), name)
  end
  local text = register_text(db)
  H.rmdir(dir)
  return files, text
end

describe("the eFaktura register on SQLite and PostgreSQL", function()
  lazy_setup(function() if backends[2] then server = pg.start() end end)
  lazy_teardown(function() if server then server:stop() server = nil end end)

  if backends[2] then
    it("the whole cycle writes the same responses byte for byte and leaves the same register", function()
      local files, reg = {}, {}
      for i, B in ipairs(backends) do files[i], reg[i] = cycle(B) end
      -- what the cycle must have answered (spec 4.1.2 and section 6.1), on the first backend
      local tmp = H.tmpdir()
      local r1 = H.answers(H.write(tmp .. "/r1.xml", files[1].r1))
      local got = {}
      for _, a in ipairs(r1) do got[#got + 1] = a.ThorUserId .. " " .. a.BillerEnrollmentStatus .. a.BillerReason end
      assert.same({ "c1== A", "c2== A", "c3== N02", "c4== N03", "c7== A" }, got)
      local ans = H.answers(H.write(tmp .. "/a.xml", files[1].answer))
      H.rmdir(tmp)
      assert.same({ "c5==", "A", "c6==", "N", "01", MSG01 }, { ans[1].ThorUserId, ans[1].BillerEnrollmentStatus,
        ans[2].ThorUserId, ans[2].BillerEnrollmentStatus, ans[2].BillerReason, ans[2].BillerMessage })
      assert.equal(files[1].r1, files[1].replay)
      -- and the two backends agree on every byte and every row
      for _, name in ipairs({ "r1", "r2", "answer", "replay" }) do
        same_text(files[1][name], files[2][name], name .. ": the responses of sqlite and postgres")
      end
      same_text(reg[1], reg[2], "the registers of sqlite and postgres")
    end)
  end

  -- a file of more records than one batch, so that "after-batch" falls inside it
  local batch = require("giro.efaktura.process").BATCH or 256
  local recs = {}
  local accounts = { "1000017", "1000025", "999", "0001234" }
  for i = 1, batch + 60 do
    local r = accounts[i % #accounts + 1]
    if i % 40 == 0 then recs[i] = H.add("4711", "k" .. i .. "==", "Kari", "Nordmann")     -- held
    elseif i % 7 == 0 then recs[i] = H.receipt("A", r, "k" .. (i - 3) .. "==")
    elseif i % 11 == 0 then recs[i] = H.delete(r, "k" .. (i - 5) .. "==")
    else recs[i] = H.add(r, "k" .. i .. "==", i % 5 == 0 and "Per" or "Kari", i % 5 == 0 and "Olsen" or "Nordmann") end
  end
  local BIG = H.request{ records = recs, per_rq = 40 }

  local refs = {}   -- per backend: the uninterrupted run's responses and registers
  for bi, B in ipairs(backends) do
    describe("killed and run again (" .. B.name .. ")", function()
      local ref   -- the uninterrupted run: its response and register
      local function reference()
        if ref then return ref end
        local dir, db = fresh(B)
        local rc, out, err = process(dir, db, "big", BIG)
        assert(rc == 0, err)
        ref = { process = H.read(out), process_reg = register_text(db) }
        local pending = json_of({ "efaktura", "pending", "--db", db, "--json" })
        assert(#pending > 2, "the file holds requests for a decision")
        ref.decided = {}
        for i, p in ipairs(pending) do
          local id = tostring(math.tointeger(p.id))
          local words = i % 2 == 0 and { "efaktura", "decide", "--db", db, id, "reject", "01" }
            or { "efaktura", "decide", "--db", db, id, "accept", "--customer", "1000017" }
          assert(H.run(words) == 0)
          ref.decided[i] = words
        end
        local ans = dir .. "/answer.xml"
        rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", ans })
        assert(rc == 0, err)
        ref.answer, ref.answer_reg = H.read(ans), register_text(db)
        H.rmdir(dir)
        return ref
      end
      refs[bi] = reference

      for _, point in ipairs({ "after-batch", "after-validate", "after-commit", "after-deliver" }) do
        it("process killed at " .. point .. ": the rerun writes the same response, the register is the same", function()
          local r = reference()
          local dir, db = fresh(B)
          local rc, out = process(dir, db, "big", BIG, { GIRO_TEST_CRASH_AT = point })
          assert.is_true(rc ~= 0, "the crash hook did not fire")
          if point ~= "after-deliver" then assert.is_false(H.exists(out)) end
          local err
          rc, out, err = process(dir, db, "big", BIG)
          assert.equal(0, rc, err)
          same_text(r.process, H.read(out), "the responses")
          same_text(r.process_reg, register_text(db), "the registers")
          H.rmdir(dir)
        end)
      end

      for _, point in ipairs({ "after-validate", "after-commit" }) do
        it("answer killed at " .. point .. ": the rerun writes the same response, the register is the same", function()
          local r = reference()
          local dir, db = fresh(B)
          local rc, _, err = process(dir, db, "big", BIG)
          assert.equal(0, rc, err)
          for _, words in ipairs(r.decided) do
            local w = { table.unpack(words) }
            w[4] = db
            assert.equal(0, (H.run(w)))
          end
          local ans = dir .. "/answer.xml"
          rc = H.run({ "efaktura", "answer", "--db", db, "-o", ans }, { GIRO_TEST_CRASH_AT = point })
          assert.is_true(rc ~= 0, "the crash hook did not fire")
          assert.is_false(H.exists(ans))
          rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", ans })
          assert.equal(0, rc, err)
          same_text(r.answer, H.read(ans), "the responses")
          same_text(r.answer_reg, register_text(db), "the registers")
          -- nothing is left to answer after the rerun
          rc, _, err = H.run({ "efaktura", "answer", "--db", db, "-o", dir .. "/again.xml" })
          assert.equal(0, rc, err)
          assert.is_false(H.exists(dir .. "/again.xml"))
          H.rmdir(dir)
        end)
      end
    end)
  end

  if backends[2] then
    it("the uninterrupted runs of the big file are the same on both backends", function()
      local a, b = refs[1](), refs[2]()
      for _, k in ipairs({ "process", "process_reg", "answer", "answer_reg" }) do
        same_text(a[k], b[k], k .. " of sqlite and postgres")
      end
    end)
  end
end)
