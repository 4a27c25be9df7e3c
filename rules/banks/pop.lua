-- POP Pankki: the Samlink protocol.  Endpoint and version as public client code uses them [ext];
-- its query and refund addresses are not known here, so only the payment and its return.
return require("protocols.samlink").define({
  name = "pop",
  title = "POP Pankin verkkomaksu",
  endpoints = { payment = { production = "https://verkkomaksu.poppankki.fi/vm/login.html" } },
  versions = { payment = { "003" }, ["return"] = { "003" } },
})
