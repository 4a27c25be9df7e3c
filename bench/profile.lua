--- Where `giro efaktura process` spends its time, for make bench and for reading (not a test).
--
--   giro run bench/profile.lua REQUEST.xml --db REGISTER.db -o RESPONSE.xml [--biller default]
--                              [--by phase|function|line] [--top N] [--every N] [--clock wall|cpu]
--
-- Runs the same path as the command (giro.efaktura.process.run with the biller rule and the
-- register) in this process and reports:
--   --by phase     (default) wall time per phase, measured by wrapping the functions that do
--                  each part of the job: the request's SHA-256, the XML reader (C) and the
--                  request reader's Lua around it, the biller rule, the register's SQL (the
--                  register's Lua, and giro.sql's calls: statement run, rows read, batches),
--                  the response writer, the response's XSD check and fsync, and the rest
--                  (process.lua's own Lua: fingerprints, rows, history, bookkeeping), each
--                  with its calls.
--   --by function  CPU-time samples (debug.sethook every --every instructions, 1000) by the
--   --by line      Lua function or line running when the sample was taken.  The time since
--                  the previous sample lands there, so a long C call (the SQL driver, the XML
--                  reader) is counted on whatever Lua runs up to 1000 instructions after it:
--                  good for Lua hot spots, rough for C; --by phase measures C calls exactly.
--                  The biller rule runs in the sandbox with its own instruction hook, so its
--                  time lands on the Lua that runs after the rule returns.
-- REGISTER.db must hold the customers (giro customers import) and not the file yet (a file
-- already processed is replayed, which is another path).  Wrapping costs two clock reads
-- per call (measured and printed as "profiler overhead").  --clock cpu measures this process's
-- CPU time instead of wall time (steadier on a shared machine; misses time waiting for fsync).
local argv = arg
local opts = { by = "phase", top = 25, every = 1000, biller = "default", clock = "wall" }
local i = 1
while argv[i] do
  local a = argv[i]
  if a == "--db" then opts.db = argv[i + 1] i = i + 2
  elseif a == "-o" then opts.output = argv[i + 1] i = i + 2
  elseif a == "--biller" then opts.biller = argv[i + 1] i = i + 2
  elseif a == "--by" then opts.by = argv[i + 1] i = i + 2
  elseif a == "--top" then opts.top = math.tointeger(tonumber(argv[i + 1])) i = i + 2
  elseif a == "--every" then opts.every = math.tointeger(tonumber(argv[i + 1])) i = i + 2
  elseif a == "--clock" then opts.clock = argv[i + 1] i = i + 2
  elseif not opts.request then opts.request = a i = i + 1
  else io.stderr:write("profile: unexpected ", a, "\n") os.exit(2) end
end
if not (opts.request and opts.db and opts.output) or not (opts.by == "phase" or opts.by == "function" or opts.by == "line") then
  io.stderr:write("usage: giro run bench/profile.lua REQUEST.xml --db REGISTER.db -o RESPONSE.xml"
    .. " [--biller default] [--by phase|function|line] [--top N] [--every N] [--clock wall|cpu]\n")
  os.exit(2)
end

local okso, socket = pcall(require, "socket")
if opts.clock ~= "cpu" and not okso then opts.clock = "cpu" end
local clock = opts.clock == "cpu" and os.clock or socket.gettime  -- wall time (lua-socket) or this process's CPU time
local process = require("giro.efaktura.process")
local biller = require("giro.efaktura.biller")
local register = require("giro.efaktura.register")
local request = require("giro.efaktura.request")
local response = require("giro.efaktura.response")
local xml = require("giro.xml")

------------------------------------------------------------------------------------------
-- phases: wrap the functions that do each part of the job

local phases, order = {}, {}
local toplevel = 0      -- time inside outermost wrapped calls
local stack = {}         -- the phases open now (a phase's time excludes the phases it calls)

local function phase(name)
  local p = phases[name]
  if not p then p = { name = name, self = 0, calls = 0 } phases[name] = p order[#order + 1] = name end
  return p
end

-- f timed as phase p
local function timed(f, p)
  return function(...)
    local t0 = clock()
    local top = stack[#stack]
    if top then top.self = top.self + t0 end       -- the caller's phase loses [t0, t1]
    stack[#stack + 1] = p
    p.calls = p.calls + 1
    local r = table.pack(pcall(f, ...))
    local t1 = clock()
    p.self = p.self + (t1 - t0)
    stack[#stack] = nil
    if top then top.self = top.self - t1 else toplevel = toplevel + (t1 - t0) end
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end

local function wrap(t, key, name)
  local f = t[key]
  if type(f) ~= "function" then
    io.stderr:write(string.format("profile: %s has no function %s (the code changed?): not measured\n", name, key))
    return
  end
  t[key] = timed(f, phase(name))
end

-- the methods of a C object: its metatable's __index table (shared by all such objects)
local function methods_of(obj)
  local mt = debug.getmetatable(obj)
  local m = type(mt) == "table" and (type(mt.__index) == "table" and mt.__index or mt)
  return type(m) == "table" and m or nil
end

-- the C reader's methods: on the metatable of a reader object (shared by all readers)
local function wrap_reader_methods()
  local probe = assert(xml.open(opts.request))
  local methods = methods_of(probe)
  probe:close()
  if not methods then
    io.stderr:write("profile: cannot reach giro.xml's reader methods: the C reader is counted with the request reader\n")
    return
  end
  for _, m in ipairs({ "next", "read_record", "next_record" }) do wrap(methods, m, "parse: XML reader (C, giro.xml)") end
end

local B_meta = getmetatable(assert(biller.load(opts.biller)))
local Reg_meta
local Resp_meta

if opts.by == "phase" then
  wrap(process, "digest", "SHA-256 of the request file")
  wrap_reader_methods()
  -- the request reader's Lua (structure checks, record checks) around the C reader
  local ok, rd = pcall(request.open, opts.request)
  if ok and rd then
    local R = getmetatable(rd)
    rd:close()
    wrap(R, "next_record", "parse: request reader (Lua around it)")
  end
  wrap(B_meta, "customer_number", "rule: customer_number")
  wrap(B_meta, "decide", "rule: validate (sandbox, names.match)")
  local reg0 = assert(register.open(opts.db))
  Reg_meta = getmetatable(reg0)
  local db_meta = getmetatable(reg0.db)
  -- the register's methods: what is left of them once giro.sql's calls are taken out is
  -- Lua turning records into rows of values and result rows back into tables
  for _, m in ipairs({ "agreements", "customers", "customer" }) do wrap(Reg_meta, m, "SQL: Lua in register:" .. m) end
  for _, m in ipairs({ "save_agreements", "add_history" }) do wrap(Reg_meta, m, "SQL: Lua in register:" .. m) end
  for _, m in ipairs({ "file_by_digest", "add_file", "update_file", "mark_delivered" }) do wrap(Reg_meta, m, "SQL: Lua in register (files)") end
  -- giro.sql (C): statements run (exec, first, batch: bind, step, rows changed) and queries'
  -- rows (rows/arrays: the query run, then each row read by the iterator they return)
  local CM = reg0.db.conn and methods_of(reg0.db.conn)
  if CM then
    wrap(CM, "exec", "SQL: giro.sql exec (C)")
    wrap(CM, "first", "SQL: giro.sql first (C)")
    wrap(CM, "batch", "SQL: giro.sql batch (C)")
    local fetch = phase("SQL: giro.sql rows: each row (C)")
    for _, m in ipairs({ "rows", "arrays" }) do
      local run = CM[m]
      if type(run) == "function" then
        run = timed(run, phase("SQL: giro.sql rows: query run (C)"))
        CM[m] = function(...)
          local it, st, ctl, closing = run(...)
          return timed(it, fetch), st, ctl, closing
        end
      else
        io.stderr:write(string.format("profile: giro.sql has no method %s (the code changed?): not measured\n", m))
      end
    end
  else
    io.stderr:write("profile: cannot reach giro.sql's connection methods: SQL time counted with the register's Lua\n")
  end
  reg0:close()
  if type(db_meta) == "table" then
    local M = type(db_meta.__index) == "table" and db_meta.__index or db_meta
    -- giro.store's DB:begin/commit: the write lock (and PostgreSQL's sequences), COMMIT
    wrap(M, "begin", "SQL: BEGIN")
    wrap(M, "commit", "SQL: COMMIT")
  end
  -- the response writer: one answer at a time, then the XSD check + fsync at commit
  local probe_w = response.new
  response.new = function(...)
    local w, err = probe_w(...)
    if w and not Resp_meta then
      Resp_meta = getmetatable(w)
      wrap(Resp_meta, "answer", "response: writing answers")
      wrap(Resp_meta, "commit", "response: XSD check + fsync")
    end
    return w, err
  end
  wrap(response, "new", "response: writing answers")
end

------------------------------------------------------------------------------------------
-- samples: debug.sethook by count

local samples, sampled = {}, 0
local function start_sampling()
  local last = os.clock()
  local by_line = opts.by == "line"
  debug.sethook(function()
    local now = os.clock()
    local info = debug.getinfo(2, "Sl")
    if info then
      local src = info.short_src:gsub("^.-/lua/giro/", "giro/")
      local key = by_line and (src .. ":" .. tostring(info.currentline)) or (src .. ":" .. tostring(info.linedefined))
      samples[key] = (samples[key] or 0) + (now - last)
      sampled = sampled + (now - last)
    end
    last = os.clock()
  end, "", opts.every)
end

------------------------------------------------------------------------------------------

local b = assert(biller.load(opts.biller))
local reg = assert(register.open(opts.db))
local target = require("giro.output").target(opts.output, { inputs = { opts.request }, what = "response file" })
-- the clock's own cost, to say how much of the phases is the profiler
local n_cal, c0 = 100000, clock()
for _ = 1, n_cal do clock() end
local per_read = (clock() - c0) / n_cal

if opts.by ~= "phase" then start_sampling() end
local t0 = clock()
local summary, err = process.run{ request = opts.request, biller = b, reg = reg, output = opts.output, target = target,
                                  name = opts.request }
local total = clock() - t0
debug.sethook()
reg:close()
if not summary then io.stderr:write("profile: process failed: ", tostring(err), "\n") os.exit(3) end
if summary.replayed then io.stderr:write("profile: the file was already in the register (a replay was measured)\n") end

local out = {}
local function p(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
p("%s: %d records, %d answers, %.2f s %s (in-process, %s)", opts.request, summary.records, summary.answers, total,
  opts.clock == "cpu" and "CPU" or "wall", opts.by == "phase" and "phases by wrapped functions" or "sampled every "
  .. opts.every .. " instructions")
if opts.by == "phase" then
  local calls, sum = 0, 0
  for _, name in ipairs(order) do calls = calls + phases[name].calls sum = sum + phases[name].self end
  local overhead = calls * 2 * per_read
  table.sort(order, function(a, c) return phases[a].self > phases[c].self end)
  p("  %-42s %8s %6s %10s", "phase", "s", "%", "calls")
  for _, name in ipairs(order) do
    local ph = phases[name]
    if ph.calls > 0 then p("  %-42s %8.3f %5.1f%% %10d", name, ph.self, 100 * ph.self / total, ph.calls) end
  end
  local rest = total - sum - overhead
  p("  %-42s %8.3f %5.1f%%", "the rest (process.lua's own Lua)", rest, 100 * rest / total)
  p("  %-42s %8.3f %5.1f%%  (%d clock reads)", "profiler overhead (estimated)", overhead, 100 * overhead / total, calls * 2)
else
  local keys = {}
  for k in pairs(samples) do keys[#keys + 1] = k end
  table.sort(keys, function(a, c) return samples[a] > samples[c] end)
  p("  %-60s %8s %6s", opts.by == "line" and "line" or "function (file:line defined)", "CPU s", "%")
  for j = 1, math.min(opts.top, #keys) do
    p("  %-60s %8.3f %5.1f%%", keys[j], samples[keys[j]], 100 * samples[keys[j]] / (sampled > 0 and sampled or 1))
  end
end
io.stdout:write(table.concat(out, "\n"), "\n")
