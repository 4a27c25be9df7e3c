-- Danske Bank (Finland) verkkomaksupalvelu, version 4: seed 004, digest specs/danske-verkkomaksu.md.
-- A bank definition is data: messages, their fields in spec order, MAC recipes and endpoints.
-- The engine (lua/giro/pay) does the work; docs/banks.md explains every key used here.
return {
  name = "danske",
  title = "Danske Bank verkkomaksu v4",
  charset = "ISO-8859-1",   -- the € sign (not in ISO-8859-1) is forbidden in URLs; 009 = charset error

  endpoints = {
    -- Tests use the production service with the public test merchant (KNRO 000000000000).
    payment = { production = "https://verkkopankki.danskebank.fi/SP/vemaha/VemahaApp",
                test = "https://verkkopankki.danskebank.fi/SP/vemaha/VemahaApp" },
    query = { production = "https://netbank.danskebank.dk/HB" },
  },

  messages = {
    -- §4.1: the shop's hidden FORM, POSTed by the buyer's browser.
    payment = {
      kind = "request", endpoint = "payment", method = "POST", answer = "return",
      version = "4",
      fields = {
        { "SUMMA",    "amount", max = 19, required = true },     -- sent as 12,50
        { "VIITE",    "ref", max = 20, required = true },
        { "KNRO",     "N", max = 12, required = true },
        { "VALUUTTA", "A", max = 3, value = "EUR" },
        { "VERSIO",   "N", max = 1, value = "4" },
        { "ERAPAIVA", "date", layout = "DD.MM.YYYY", not_past = true, required = true },
        { "OKURL",    "url", max = 199, required = true, forbid = "€" },
        { "VIRHEURL", "url", max = 199, required = true, forbid = "€" },
        { "TARKISTE", "mac" },
        { "lng",      "N", max = 1, values = { "1", "2", "3" } },  -- 1 fi, 2 sv, 3 en; not in the MAC
        { "ALG",      "N", max = 3, value = "03" },                  -- not in the MAC
      },
      mac = {
        field = "TARKISTE", alg = "sha256", case = "lower", key = "first", key_length = 64,
        sep = "&", trailing = true, absent = "omit", blanks = false,
        fields = { "SUMMA", "VIITE", "KNRO", "VERSIO", "VALUUTTA", "OKURL", "VIRHEURL", "ERAPAIVA" },
      },
    },

    -- §4.2: appended to OKURL as a query string (GET).  SUMMA comes back normalised (100 -> 100,00).
    ["return"] = {
      kind = "response", version = "4",
      fields = {
        { "KNRO",     "N", max = 12, required = true },
        { "VALUUTTA", "A", max = 3, value = "EUR" },
        { "VIITE",    "ref", max = 20, required = true },
        { "SUMMA",    "amount", max = 19, required = true },
        { "VERSIO",   "N", max = 1, value = "4" },
        { "STATUS",   "N", max = 1, value = "0" },
        { "TARKISTE", "mac" },
        { "MTAPA",    "N", max = 1 },                                -- 1 = credit transfer; not in the MAC
        { "ERAPAIVA", "date", layout = "DD.MM.YYYY", required = true },
      },
      mac = {
        field = "TARKISTE", alg = "sha256", case = "upper", key = "first", key_length = 64,
        sep = "&", trailing = true, absent = "omit",
        any_case = true,  -- the digest's reading [R]: the test section shows it lower-case
        fields = { "VIITE", "SUMMA", "STATUS", "KNRO", "VERSIO", "VALUUTTA", "ERAPAIVA" },
      },
    },

    -- §6: payment query by reference, server to server.  Names: the seed's table (Refno, MerchantID,
    -- Version, VerifyCode, algorithm, gsaftlnr, gsresp) and its HTML sample (gsSprog, gsProdukt,
    -- gsNextObj, gsNextAkt); constants exactly as tabled.
    query = {
      kind = "request", endpoint = "query", method = "POST", answer = "query-response",
      fields = {
        { "Refno",      "ref", max = 20, required = true },
        { "MerchantID", "N", max = 12, required = true },
        { "gsaftlnr",   "N", max = 6, required = true },
        { "gsSprog",    "A", max = 2, values = { "FI", "EN" }, default = "FI" },
        { "gsProdukt",  "AN", value = "IBV" },
        { "gsNextObj",  "AN", value = "InetPayV" },
        { "gsNextAkt",  "AN", value = "InetPaySt" },
        { "Version",    "N", max = 4, value = "0001" },
        { "gsresp",     "A", max = 1, value = "S" },
        { "VerifyCode", "mac" },
        { "algorithm",  "N", max = 2, value = "03" },
      },
      mac = {
        field = "VerifyCode", alg = "sha256", case = "lower", key = "first", key_length = 64,
        sep = "&", trailing = true, absent = "omit", blanks = false,
        fields = { "MerchantID", "Refno" },
      },
    },

    -- §6: the answer, NAME=value pairs joined by &.  It carries no MAC (TLS only).
    ["query-response"] = {
      kind = "response",
      fields = {
        { "ReturnCode", "N", min = 3, max = 3, required = true },
        { "ReturnText", "AN", max = 256 },
        { "Refno",      "N", max = 20 },
        { "MerchantID", "AN", max = 256 },        -- the merchant's NAME here, e.g. "Test Shop"
        { "Amount",     "amount", max = 19 },
        { "Currency",   "A", max = 3 },
        { "Total",      "amount", max = 19 },     -- below Amount after refunds
        { "PayType",    "AN", max = 8 },          -- always KT (credit transfer)
        { "PayStatus",  "AN", max = 32 },         -- only Settled is documented
      },
      mac = false,
      codes = {
        field = "ReturnCode",
        values = {
          ["000"] = { status = "found", text = "OK: the reference exists" },
          ["001"] = { status = "not-found", text = "the reference does not exist" },
          ["002"] = { status = "error", text = "reference not given" },
          ["003"] = { status = "error", text = "merchant number not given" },
          ["004"] = { status = "error", text = "merchant number does not exist" },
          ["006"] = { status = "error", text = "no contract" },
          ["009"] = { status = "error", text = "character-set error" },
          ["010"] = { status = "error", text = "the reference is not unique" },
        },
      },
      -- Notes for the operator; the engine prints them after the fields.
      describe = function(f)
        local notes = {}
        if f.ReturnCode == "000" then
          if f.PayStatus == "Settled" then
            notes[#notes + 1] = "paid: PayStatus Settled"
          else
            notes[#notes + 1] = "not confirmed as paid: PayStatus " .. tostring(f.PayStatus)
              .. " is not documented; treat as unpaid"
          end
          if f.Amount and f.Total and f.Amount ~= f.Total then
            local function cents(a) local i, d = a:match("^(%d+),(%d%d)$"); return tonumber(i) * 100 + tonumber(d) end
            if cents(f.Total) < cents(f.Amount) then
              notes[#notes + 1] = "refunded: Total " .. f.Total .. " is below Amount " .. f.Amount
            end
          end
        end
        return notes
      end,
    },
  },
}
