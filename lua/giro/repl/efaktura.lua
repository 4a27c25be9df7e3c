--- giro repl plugin: --biller RULES.lua [--db DB] REQUEST.xml, :records, :try (giro.efaktura.repl).
return require("giro.efaktura.repl")
