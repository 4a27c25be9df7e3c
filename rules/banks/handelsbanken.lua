-- Handelsbanken (Finland): the Samlink protocol on Samlink's own host, version 002 (MD5) as public
-- client code uses it [ext].  A 002 payment returns version 001 [R].
return require("protocols.samlink").define({
  name = "handelsbanken",
  title = "Handelsbanken verkkomaksu",
  endpoints = { payment = { production = "https://verkkomaksu.inetpankki.samlink.fi/vm/SHBlogin.html" } },
  versions = { payment = { "002" }, ["return"] = { "001" } },
})
