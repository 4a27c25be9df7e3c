-- Precompile giro's Lua library to bytecode: giro run tools/compile-lua.lua SRC_DIR OUT_DIR
--
-- Every SRC_DIR/**/*.lua whose OUT_DIR copy is missing or older is loaded (a syntax
-- error fails the build) and written to OUT_DIR with string.dump, debug information
-- kept so messages and tracebacks still name the source file and line.  The host
-- (engine/runtime.c) uses a cached chunk only while it is at least as new as its source,
-- so an edited file is never shadowed by stale bytecode.  Parsing the library is most of
-- a short command's start-up; loading bytecode is several times cheaper.
local lfs = require("lfs")

local src_root, out_root = arg[1], arg[2]
assert(src_root and out_root, "usage: giro run tools/compile-lua.lua SRC_DIR OUT_DIR")

local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  return lfs.currentdir() .. "/" .. p
end

local function mkdirs(path)
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    if not lfs.attributes(sofar, "mode") then assert(lfs.mkdir(sofar)) end
  end
end

local compiled = 0
local function walk(rel)
  local dir = src_root .. rel
  for name in lfs.dir(dir) do
    local src = dir .. "/" .. name
    local mode = lfs.attributes(src, "mode")
    if name:sub(1, 1) == "." then
      -- skip
    elseif mode == "directory" then
      walk(rel .. "/" .. name)
    elseif name:match("%.lua$") then
      local out = out_root .. rel .. "/" .. name
      local out_time = lfs.attributes(out, "modification")
      if not out_time or out_time <= lfs.attributes(src, "modification") then
        local f = assert(io.open(src, "rb"))
        local text = f:read("a")
        f:close()
        local chunk = assert(load(text, "@" .. abspath(src), "t"))
        mkdirs(out_root .. rel)
        local tmp = out .. ".tmp"
        local w = assert(io.open(tmp, "wb"))
        assert(w:write(string.dump(chunk)))
        assert(w:close())
        assert(os.rename(tmp, out))
        compiled = compiled + 1
      end
    end
  end
end

walk("")
if compiled > 0 then io.stderr:write("compiled ", compiled, " Lua file(s) to ", out_root, "\n") end
