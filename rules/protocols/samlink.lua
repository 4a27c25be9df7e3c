-- The Samlink "verkkomaksu" protocol (Säästöpankki's NET_* payment button), seed 003 and the
-- digest specs/saastopankki-verkkomaksu.md.  Banks served by Samlink differ only in endpoints,
-- versions and the seller id: each has a small file in rules/banks/ that calls
--
--   return require("protocols.samlink").define{
--     name = "pop", title = "POP Pankki verkkomaksu",
--     endpoints = { payment = { production = "https://.../vm/login.html" } },
--     versions = { payment = { "003" }, ["return"] = { "003" } },   -- which messages and versions
--   }
--
-- All MACs: values only, each followed by "&", the key last and also followed by "&"; upper-case
-- hex; optional fields that are absent are left out entirely ("omit"); blanks are not allowed in
-- the MAC string.  Received MACs are compared case-insensitively (the digest's reading [R]).
local samlink = {}

local function mac(field, by_version)
  local r = { field = field, case = "upper", key = "last", sep = "&", trailing = true,
              absent = "omit", blanks = false, any_case = true, versions = {} }
  for v, fields in pairs(by_version) do
    local sha = v ~= "001" and v ~= "002"
    -- the guide gives 64-character SHA-256 keys, but test environments hand out shorter ones
    -- and the MAC works with any length: warn, not refuse (issue 9)
    r.versions[v] = { alg = sha and "sha256" or "md5", key_length_documented = sha and 64 or nil, fields = fields }
  end
  return r
end

local function plus(list, ...)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = v end
  for _, v in ipairs({ ... }) do out[#out + 1] = v end
  return out
end

local SHA = { "003", "010" }   -- versions with NET_ALG = 03 (SHA256)

-- Payment versions: 001/002 MD5, 003 SHA256 (seed); 010 = 003 + NET_KEYVERS in the MAC, used by
-- Aktia (public client code [ext], not in the seed).
local PAY1 = { "NET_VERSION", "NET_STAMP", "NET_SELLER_ID", "NET_AMOUNT", "NET_REF", "NET_DATE", "NET_CUR" }
local PAY2 = plus(PAY1, "NET_RETURN", "NET_CANCEL", "NET_REJECT")
local PAY3 = plus(PAY2, "NET_ALG")
local PAY10 = plus(PAY3, "NET_KEYVERS")

local function messages(seller)
  local sid = { "NET_SELLER_ID", "AN", max = seller.max, required = true }
  local sid_refund = { "NET_SELLER_ID", "AN", max = seller.refund_max, required = true }
  local ref = function(name, req) return { name, "ref", max = 20, required = req } end
  local alg = { "NET_ALG", "N", max = 2, value = "03", versions = SHA }
  local keyvers = { "NET_KEYVERS", "N", max = 4, required = { "010" } }  -- "not in use" before 010
  local codes = function(ok, notfound, err)
    return { field = "NET_RESPCODE", values = {
      OK = { status = "ok", text = ok },
      NOTFOUND = { status = "not-found", text = notfound },
      ERROR = { status = "error", text = err },
    } }
  end
  return {
    -- §5: the FORM the buyer's browser POSTs (001 may also be a GET).
    payment = {
      kind = "request", endpoint = "payment", method = "POST", answer = "return",
      version_field = "NET_VERSION", versions = { "001", "002", "003", "010" },
      fields = {
        { "NET_VERSION", "N", max = 3, required = true },
        { "NET_STAMP", "AN", max = 20, required = true },
        sid,
        { "NET_AMOUNT", "amount", max = 9, required = true },
        { "NET_CUR", "A", max = 3, value = "EUR" },
        ref("NET_REF", true),
        { "NET_DATE", "AN", max = 10, value = "EXPRESS" },
        { "NET_MSG", "text", lines = 6, width = 35 },            -- not in any MAC
        { "NET_RETURN", "url", max = 160, required = true },
        { "NET_CANCEL", "url", max = 160, required = true },
        { "NET_REJECT", "url", max = 160, required = true },
        { "NET_MAC", "mac" },
        { "NET_CONFIRM", "A", max = 3, values = { "YES", "NO" }, default = "YES" },  -- not in any MAC
        alg,
        keyvers,
      },
      mac = mac("NET_MAC", { ["001"] = PAY1, ["002"] = PAY2, ["003"] = PAY3, ["010"] = PAY10 }),
    },

    -- §5.x: fields appended to NET_RETURN when NET_CONFIRM = YES.  A 002 payment returns 001 [R].
    ["return"] = {
      kind = "response",
      version_field = "NET_RETURN_VERSION", versions = { "001", "003", "010" },
      fields = {
        { "NET_RETURN_VERSION", "N", max = 3, required = true },
        { "NET_RETURN_STAMP", "AN", max = 20, required = true },
        ref("NET_RETURN_REF", true),
        { "NET_RETURN_PAID", "AN", max = 20, required = true },
        alg,
        keyvers,
        { "NET_RETURN_MAC", "mac" },
      },
      mac = mac("NET_RETURN_MAC", {
        ["001"] = { "NET_RETURN_VERSION", "NET_RETURN_STAMP", "NET_RETURN_REF", "NET_RETURN_PAID" },
        ["003"] = { "NET_RETURN_VERSION", "NET_RETURN_STAMP", "NET_RETURN_REF", "NET_RETURN_PAID", "NET_ALG" },
        -- 010 [ext]: the order public client code uses
        ["010"] = { "NET_RETURN_VERSION", "NET_ALG", "NET_RETURN_STAMP", "NET_RETURN_REF", "NET_RETURN_PAID",
                    "NET_KEYVERS" },
      }),
    },

    -- §8: query by NET_STAMP and/or NET_REF (at least one).  The MAC list is lost in the seed; the
    -- SHA256 example's six slots give VERSION, SELLER_ID, [STAMP], [REF], ALG, key [R].
    query = {
      kind = "request", endpoint = "query", method = "POST", answer = "query-response",
      version_field = "NET_VERSION", versions = { "001", "003" },
      fields = {
        { "NET_VERSION", "N", max = 3, required = true },
        sid,
        { "NET_STAMP", "AN", max = 20 },
        ref("NET_REF", false),
        { "NET_RETURN", "url", max = 199, required = true },
        alg,
        { "NET_MAC", "mac" },
        { "NET_KEYVERS", "N", max = 4 },
      },
      one_of = { "NET_STAMP", "NET_REF" },
      mac = mac("NET_MAC", {
        ["001"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF" },
        ["003"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF", "NET_ALG" },
      }),
    },

    ["query-response"] = {
      kind = "response",
      version_field = "NET_VERSION", versions = { "001", "003" },
      fields = {
        { "NET_VERSION", "N", max = 3, required = true },
        sid,
        { "NET_RESPCODE", "A", max = 8, values = { "OK", "NOTFOUND", "ERROR" }, required = true },
        { "NET_STAMP", "AN", max = 20 },
        ref("NET_REF", false),
        { "NET_DATE", "date", layout = "YYYYMMDD" },   -- payment date vvvvkkpp
        { "NET_AMOUNT", "amount", max = 9 },
        { "NET_CUR", "A", max = 3 },
        { "NET_PAID", "AN", max = 20 },
        alg,
        { "NET_RETURN_MAC", "mac" },
        { "NET_KEYVERS", "N", max = 4 },
      },
      mac = mac("NET_RETURN_MAC", {
        ["001"] = { "NET_VERSION", "NET_SELLER_ID", "NET_RESPCODE", "NET_STAMP", "NET_REF", "NET_DATE",
                    "NET_AMOUNT", "NET_CUR", "NET_PAID" },
        ["003"] = { "NET_VERSION", "NET_SELLER_ID", "NET_RESPCODE", "NET_STAMP", "NET_REF", "NET_DATE",
                    "NET_AMOUNT", "NET_CUR", "NET_PAID", "NET_ALG" },
      }),
      codes = codes("payment found and approved", "payment not found",
        "unclear payment, bad query data or another error"),
    },

    -- §9: refund (up to 60 days after the payment, once, at most the original amount).
    refund = {
      kind = "request", endpoint = "refund", method = "POST", answer = "refund-response",
      version_field = "NET_VERSION", versions = { "001", "003" },
      fields = {
        { "NET_VERSION", "N", max = 3, required = true },
        sid_refund,
        { "NET_STAMP", "AN", max = 20, required = true },          -- the refund's own code
        ref("NET_REF", true),                                      -- the refund's reference
        { "NET_AMOUNT", "amount", max = 9, required = true },
        { "NET_CUR", "A", max = 3, value = "EUR" },
        { "NET_MSG", "text", lines = 6, width = 35 },              -- not in the MAC
        { "NET_STAMP_ORG", "AN", max = 20, required = true },      -- the original payment's
        ref("NET_REF_ORG", true),
        { "NET_RETURN", "url", max = 160, required = true },
        alg,
        { "NET_MAC", "mac" },
        { "NET_KEYVERS", "N", max = 4 },
      },
      mac = mac("NET_MAC", {
        ["001"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF", "NET_AMOUNT", "NET_CUR",
                    "NET_STAMP_ORG", "NET_REF_ORG", "NET_RETURN" },
        ["003"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF", "NET_AMOUNT", "NET_CUR",
                    "NET_STAMP_ORG", "NET_REF_ORG", "NET_RETURN", "NET_ALG" },
      }),
    },

    -- The refund answer.  Only "NET_PAID&" (+ "NET_ALG&") survives of its MAC list; the leading
    -- fields follow the other messages [R]: VERSION, SELLER_ID, STAMP, REF, PAID, [ALG], key.
    -- NET_RESPCODE and NET_ERRO_MSG (spelled so in the seed) are not in it.  Confirm with the bank.
    ["refund-response"] = {
      kind = "response",
      version_field = "NET_VERSION", versions = { "001", "003" },
      fields = {
        { "NET_VERSION", "N", max = 3, required = true },
        sid_refund,
        { "NET_STAMP", "AN", max = 20, required = true },
        ref("NET_REF", true),
        { "NET_RESPCODE", "A", max = 8, values = { "OK", "NOTFOUND", "ERROR" }, required = true },
        { "NET_PAID", "AN", max = 20, required = true },
        { "NET_ERRO_MSG", "text", max = 512 },
        alg,
        { "NET_MAC", "mac" },
        { "NET_KEYVERS", "N", max = 4 },
      },
      mac = mac("NET_MAC", {
        ["001"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF", "NET_PAID" },
        ["003"] = { "NET_VERSION", "NET_SELLER_ID", "NET_STAMP", "NET_REF", "NET_PAID", "NET_ALG" },
      }),
      codes = codes("refund done", "the original payment was not found", "the refund failed"),
      describe = function(f)
        if f.NET_RESPCODE == "ERROR" and f.NET_ERRO_MSG then return { "bank says: " .. f.NET_ERRO_MSG } end
        return {}
      end,
    },
  }
end

--- A complete bank definition from the bank's few facts:
--   name, title, endpoints = { payment = URL | { production =, test = }, query = ..., refund = ... },
--   versions = { MESSAGE = { "003", ... }, ... }: the messages the bank offers and their versions
--     (a message left out is not offered; default: every message the endpoints allow, all versions),
--   seller_id = { max = 17, refund_max = 13 }  (the seed's lengths).
-- References are standard Finnish ones (4-20 digits, giro.ref); the seed's 3-digit example "123"
-- is therefore refused.
function samlink.define(bank)
  local seller = { max = 17, refund_max = 13 }
  for k, v in pairs(bank.seller_id or {}) do seller[k] = v end
  local all = messages(seller)
  local endpoints = bank.endpoints or {}
  local answer_of = { ["return"] = "payment", ["query-response"] = "query", ["refund-response"] = "refund" }
  local out = {}
  for name, msg in pairs(all) do
    local ep = msg.endpoint or answer_of[name]
    local wanted = bank.versions and bank.versions[name]
    if (bank.versions and wanted) or (not bank.versions and endpoints[ep]) then
      if wanted then
        local keep = {}
        for _, v in ipairs(wanted) do keep[v] = true end
        local list = {}
        for _, v in ipairs(msg.versions) do if keep[v] then list[#list + 1] = v end end
        for _, v in ipairs(wanted) do
          local known = false
          for _, w in ipairs(msg.versions) do if w == v then known = true end end
          if not known then error("samlink: " .. name .. " has no version " .. tostring(v), 2) end
        end
        msg.versions = list
      end
      -- default: the newest seed version offered (003 over 001), else what there is (010)
      local default = msg.versions[#msg.versions]
      for i = #msg.versions, 1, -1 do
        if msg.versions[i] ~= "010" then default = msg.versions[i] break end
      end
      msg.default_version = default
      out[name] = msg
    end
  end
  return {
    name = bank.name, title = bank.title, charset = bank.charset or "ISO-8859-1",
    protocol = "samlink", endpoints = endpoints, messages = out,
  }
end

samlink.payment_mac_fields = { ["001"] = PAY1, ["002"] = PAY2, ["003"] = PAY3, ["010"] = PAY10 }
return samlink
