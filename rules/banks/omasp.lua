-- Oma Säästöpankki: the Samlink protocol.  Endpoint and version as public client code uses them
-- [ext]; query and refund addresses are not known here.
return require("protocols.samlink").define({
  name = "omasp",
  title = "Oma Säästöpankin verkkomaksu",
  endpoints = { payment = { production = "https://verkkomaksu.omasp.fi/vm/login.html" } },
  versions = { payment = { "003" }, ["return"] = { "003" } },
})
