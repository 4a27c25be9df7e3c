-- Scratch files for specs: one temporary-directory helper instead of a copy per spec file.
local lfs = require("lfs")

local M = {}

--- A new empty directory under the system temp dir.
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(lfs.mkdir(p))
  return p
end

--- Write text to path (bytes as given).
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

--- Remove a directory and everything under it.
function M.rmtree(p)
  for f in lfs.dir(p) do
    if f ~= "." and f ~= ".." then
      local q = p .. "/" .. f
      if lfs.attributes(q, "mode") == "directory" then M.rmtree(q) else os.remove(q) end
    end
  end
  lfs.rmdir(p)
end

return M
