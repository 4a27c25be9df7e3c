--- giro.efaktura.schemas: where the eFaktura schemas live and which one a file needs.
--   schemas.path("response.xsd") --> absolute path of lua/giro/efaktura/schemas/response.xsd
local schemas = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

function schemas.path(name)
  return here .. "/schemas/" .. name
end

return schemas
