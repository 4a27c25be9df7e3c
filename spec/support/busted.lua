-- Runs busted inside giro: `giro run spec/support/busted.lua [busted options] [ROOT...]`.
-- busted reads the global `arg` exactly as with /usr/bin/busted (see .busted for defaults).
require("busted.runner")({ standalone = false })
