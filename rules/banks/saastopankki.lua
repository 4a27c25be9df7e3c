-- Säästöpankki (Sparbanken) verkkomaksu, version 1.2 of the guide (seed 003): every message of the
-- Samlink protocol in every version the seed describes.  Tests run against the production URL
-- with the seller's test codes.
return require("protocols.samlink").define({
  name = "saastopankki",
  title = "Säästöpankin verkkomaksu",
  endpoints = {
    payment = { production = "https://verkkomaksu.saastopankki.fi/vm/login.html",
                test = "https://verkkomaksu.saastopankki.fi/vm/login.html" },
    query = { production = "https://verkkomaksu.saastopankki.fi/vm/kysely.html" },
    refund = { production = "https://verkkomaksu.saastopankki.fi/vm/palautus.html" },
  },
  versions = {
    payment = { "001", "002", "003" },
    ["return"] = { "001", "003" },
    query = { "001", "003" }, ["query-response"] = { "001", "003" },
    refund = { "001", "003" }, ["refund-response"] = { "001", "003" },
  },
})
