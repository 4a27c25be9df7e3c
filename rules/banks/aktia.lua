-- Aktia: the Samlink protocol with version 010, which adds NET_KEYVERS (the key's version, from
-- the bank) to the payment and return MACs.  Endpoints and the 010 layouts as public client code
-- uses them [ext]; not in seed 003.
return require("protocols.samlink").define({
  name = "aktia",
  title = "Aktia verkkomaksu",
  endpoints = {
    payment = { production = "https://auth.aktia.fi/vm", test = "https://auth.aktia.fi/vmtest" },
    query = { production = "https://ebank.aktia.fi/vmapi/kysely.html" },
  },
  versions = {
    payment = { "010" }, ["return"] = { "010" },
    query = { "001", "003" }, ["query-response"] = { "001", "003" },
  },
})
