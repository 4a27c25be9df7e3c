--- giro.efaktura.held: requests held for a person to match by hand.
--
--   local held = require("giro.efaktura.held")
--   held.pending(reg)                       --> list of { agreement, request, proposal, decision, suggestions }
--   held.decide(reg, id, { answer = "A", customer = "N" } | { answer = "N", reason = "01", message = nil })
--   held.answer(reg, { output = path|nil }) --> summary | nil, message, kind
--
-- Nets resends an unanswered request as a reminder, so holding is safe: a reminder for a
-- held request stays held (giro.efaktura.process), and `answer` writes one response file
-- for every held request that has a decision, with the same guarantees as process
-- (validated, committed, then moved into place; an interrupted batch is written again).
local cjson = require("cjson")
local errors = require("giro.errors")
local names = require("giro.efaktura.names")
local register = require("giro.efaktura.register")
local decision = require("giro.efaktura.decision")
local C = require("giro.efaktura.constants")
local outbox = require("giro.efaktura.outbox")
local output = require("giro.output")
local process = require("giro.efaktura.process")

local held = {}

local function decode(s)
  if s == nil or s == "" then return nil end
  local ok, v = pcall(cjson.decode, s)
  return ok and v or nil
end

-- Levenshtein distance, bounded (returns limit + 1 when over it).
local function distance(a, b, limit)
  local la, lb = #a, #b
  if math.abs(la - lb) > limit then return limit + 1 end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local best = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      cur[j] = v
      if v < best then best = v end
    end
    if best > limit then return limit + 1 end
    prev, cur = cur, prev
  end
  return prev[lb]
end
held.distance = distance

--- The customers closest to a held request: by reference (edit distance on the digits and
-- letters, leading zeros ignored) and by name.  Returns up to n { customer, score, why }.
function held.suggest(reg, request, n)
  n = n or 3
  local ref = (request.BillerAccountNumber or ""):gsub("[^%w]", ""):gsub("^0+", "")
  local rf = names.tokens(request.FirstName, "normal")
  local rl = names.tokens(request.LastName, "normal")
  local best = {}
  for c in reg:each_customer() do
    local score, why = 0, {}
    local acct = c.account_number:gsub("[^%w]", ""):gsub("^0+", "")
    local d = distance(ref, acct, 2)
    if d <= 2 and ref ~= "" then
      score = score + (3 - d) * 2
      why[#why + 1] = d == 0 and "same reference" or string.format("reference %d edit(s) away", d)
    elseif ref ~= "" and #ref >= 4 and (acct:find(ref, 1, true) or ref:find(acct, 1, true)) then
      score = score + 2
      why[#why + 1] = "reference contains / is contained in the customer number"
    end
    local ok = names.match({ FirstName = request.FirstName, LastName = request.LastName }, c, "normal")
    if ok then
      local cl = names.tokens(c.last_name, "normal")
      local cf = names.tokens(c.first_name, "normal")
      local both = table.concat(rl, " ") == table.concat(cl, " ") and #rf > 0 and rf[1] == cf[1]
      score = score + (both and 4 or 2)
      why[#why + 1] = both and "same name" or "name partly matches"
    end
    if score > 0 then
      best[#best + 1] = { customer = c, score = score, why = table.concat(why, ", ") }
      table.sort(best, function(x, y)
        if x.score ~= y.score then return x.score > y.score end
        return x.customer.account_number < y.customer.account_number
      end)
      if #best > n then best[#best] = nil end
    end
  end
  return best
end

--- Held requests with what was received, the rule's proposal, any decision and suggestions.
function held.pending(reg, opts)
  opts = opts or {}
  local out = {}
  for _, a in ipairs(reg:list("held")) do
    local req = decode(a.request) or {}
    req.BillerAccountNumber = a.account
    out[#out + 1] = {
      agreement = a, request = req, proposal = decode(a.proposal), decision = decode(a.decision),
      suggestions = opts.suggest == false and {} or held.suggest(reg, req, opts.suggestions or 3),
    }
  end
  return out
end

--- Attach a customer to an agreement that has none (one giro never answered: Nets' receipt
-- made it active); returns true, { attached = true, customer = N } or nil, message, kind.
function held.attach(reg, a, customer)
  if not reg:customer(customer) then
    return errors.usage("--customer: no customer %s in the register", errors.quote(customer))
  end
  local now = register.now()
  reg:transaction(function()
    reg:set_customer(a.id, customer, now)
    reg:add_history({ { thor_user_id = a.thor_user_id, provider = a.provider, account = a.account, event = "attach",
      status_before = a.status, status_after = a.status, detail = "customer " .. customer .. " attached", at = now } })
  end)
  return true, { attached = true, answer = "A", customer = customer }
end

--- Record a decision on held request id.  Returns true, decision or nil, message, kind: every
-- refusal is "usage" (an ID, customer or reason that cannot be chosen).
function held.decide(reg, id, d)
  local a = reg:agreement(id)
  if not a then return errors.usage("no agreement %s (see: giro efaktura pending)", tostring(id)) end
  if a.status ~= "held" then
    if d.answer == "A" and d.customer ~= nil and (a.customer == nil or a.customer == "") then
      return held.attach(reg, a, d.customer)
    end
    return errors.usage("agreement %d is %s, not held%s", id, a.status,
      (a.customer == nil or a.customer == "") and " (accept --customer N attaches a customer to it)" or "")
  end
  local dec
  if d.answer == "A" then
    local customer = d.customer
    if customer == nil then
      local p = decode(a.proposal)
      customer = p and p.customer ~= cjson.null and p.customer or nil
      if customer == nil then
        return errors.usage("agreement %d: no customer was found for reference %s; name one with --customer N",
          id, errors.quote(a.account))
      end
    end
    if not reg:customer(customer) then
      return errors.usage("--customer: no customer %s in the register", errors.quote(customer))
    end
    dec = { answer = C.ACCEPT, reason = "", message = "", customer = customer }
  elseif d.answer == "N" then
    local derr
    dec, derr = decision.reject(d.reason, d.message)
    if not dec then return errors.usage("reject: %s", derr) end
  else
    return errors.usage("decision must be accept or reject")
  end
  local now = register.now()
  reg:transaction(function()
    reg:set_decision(id, cjson.encode(dec), now)
    reg:add_history({ { thor_user_id = a.thor_user_id, provider = a.provider, account = a.account, event = "decide",
      status_before = "held", status_after = "held", answer = dec.answer, reason = dec.reason, message = dec.message,
      detail = dec.customer and ("customer " .. dec.customer) or nil, at = now } })
  end)
  return true, dec
end

--- Write a response for every decided held request.
-- opts.target: a giro.output target (checked before any work), or opts.output: a path (nil: stdout).
function held.answer(reg, opts)
  local target = opts.target
  if not target then
    local terr, tkind
    target, terr, tkind = output.target(opts.output, { what = "response file" })
    if not target then return nil, terr, tkind end
  end
  -- an earlier batch committed but never delivered (crash): write it again first
  local old = reg:undelivered_batch()
  if old then
    local n, err, kind = outbox.replay(reg, old, target)
    if not n then return nil, tostring(err), kind or "env" end
    return { answers = n, response = target.name, batch = old.id, rewritten = true }
  end

  local decided = {}
  for _, a in ipairs(reg:list("held")) do
    if a.decision and a.decision ~= "" then decided[#decided + 1] = a end
  end
  if #decided == 0 then return { answers = 0, response = nil, remaining = 0 } end
  -- one response file has one header (that of the request file a held request came in):
  -- answer those sharing the first one's, leave the rest for the next run
  local function header_of(a)
    local f = a.file_id and reg:file(a.file_id)
    return { from_name = f and f.from_name or C.DEFAULT_SERVICE_PROVIDER_NAME, to_id = f and f.to_id or a.provider,
             to_service = f and f.to_service or C.DEFAULT_SERVICE_ID }
  end
  local header = header_of(decided[1])
  local now = register.now()
  local box = outbox.new(target, header)
  local summary = { answers = 0, accepted = 0, rejected = 0, remaining = 0 }
  local ok, err = pcall(reg.transaction, reg, function()
    local batch = reg:add_file{ kind = "answer", name = "answer", from_name = header.from_name, to_id = header.to_id,
                                to_service = header.to_service, processed_at = now }
    summary.batch = batch
    local rows, hist = {}, {}
    for _, a in ipairs(decided) do
      local h = header_of(a)
      if h.to_id == header.to_id and h.from_name == header.from_name and h.to_service == header.to_service then
        local d = decode(a.decision)
        local element = "Enrollment" .. (a.element or "Add")
        local ans = { element = element, account = a.account, status = d.answer, reason = d.reason or "",
          message = d.message or "", provider = a.provider, thor_user_id = a.thor_user_id }
        local aok, aerr = box:answer(ans)
        if not aok then error({ env = aerr }) end
        summary.answers = summary.answers + 1
        a.status, a.answer, a.reason, a.message = "answered", d.answer, d.reason or "", d.message or ""
        a.customer = d.customer or a.customer
        a.decision, a.proposal, a.updated_at = nil, nil, now
        rows[#rows + 1] = a
        hist[#hist + 1] = { thor_user_id = a.thor_user_id, provider = a.provider, account = a.account, file_id = batch,
          seq = summary.answers, element = element, event = "answer", status_before = "held", status_after = "answered",
          answer = d.answer, reason = d.reason or "", message = d.message or "", detail = "manual decision answered", at = now }
        if d.answer == "A" then summary.accepted = summary.accepted + 1 else summary.rejected = summary.rejected + 1 end
      else
        summary.remaining = summary.remaining + 1
      end
    end
    reg:save_agreements(rows)
    reg:add_history(hist)
    reg:update_file(batch, { from_name = header.from_name, to_id = header.to_id, to_service = header.to_service,
      records = summary.answers, answers = summary.answers, summary = cjson.encode(summary) })
    local vok, verr = box:validate()
    if not vok then error({ env = verr }) end
    process.crash("after-validate")
  end)
  if not ok then
    box:abort()
    return nil, process.errtext(err), "env"
  end
  process.crash("after-commit")
  local dok, derr = box:deliver(reg, summary.batch)
  if not dok then return nil, derr .. " (run answer again to write it)", "env" end
  summary.response = target.name
  return summary
end

return held
