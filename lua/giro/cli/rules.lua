--- giro rules check FILE... | giro rules list: check rule files the way the engine loads them.
local cli = require("giro.cli")
local args = require("giro.cli.args")
local rules = require("giro.rules")

local M = {
  summary = "check rule files for errors, list the bank and biller rules found",
  usage = "giro rules check [--grant=MODULE...] FILE|NAME... | giro rules list",
  help = [[
check   loads each rule file sandboxed, exactly as the engine does (giro.rules.load), and
        prints "FILE: ok" or "FILE:LINE: message".  A NAME without "/" or ".lua" is looked
        up as a bank rule, then as a biller rule, in the rules directories.  --grant adds a
        module the rule may require (besides giro.hash, giro.ref, giro.checkdigit).
        Exit status 1 when any file fails, 3 when a file cannot be read (missing, say).
list    prints the bank and biller rule files in the rules directories (docs/rules.md).]],
}

local function locate(name)
  if name:find("/", 1, true) or name:match("%.lua$") then return name end
  return rules.find("bank", name) or rules.find("biller", name) or name
end

function M.run(argv)
  local opt, pos = args.parse(argv, { "--grant=MODULE..." })
  local sub = table.remove(pos, 1)
  if sub == "list" then
    for _, kind in ipairs({ "bank", "biller" }) do
      for _, r in ipairs(rules.discover(kind)) do
        io.stdout:write(string.format("%-7s %-20s %s\n", kind, r.name, r.path))
      end
    end
    return 0
  elseif sub ~= "check" then
    cli.usage("usage: %s", M.usage)
  end
  if #pos == 0 then cli.usage("rules check: no files given") end
  local status = 0
  for _, name in ipairs(pos) do
    local path = locate(name)
    local t, err = rules.load(path, { grant = opt.grant })
    if t then
      io.stdout:write(path, ": ok\n")
    else
      -- a file that is not there is the environment's fault (as in `giro run`), not the rule's
      local st = require("giro.fs").stat(path)   -- never open it: a FIFO would block
      local f = st and st.type == "file"
      status = math.max(status, f and cli.EXIT.rejected or cli.EXIT.env)
      io.stdout:flush()
      io.stderr:write(err, "\n")
    end
  end
  return status
end

return M
