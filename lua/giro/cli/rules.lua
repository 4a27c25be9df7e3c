--- giro rules check FILE... | giro rules list: check rule files the way the engine loads them.
local cli = require("giro.cli")
local args = require("giro.cli.args")
local rules = require("giro.rules")
local rulecheck = require("giro.rulecheck")

local M = {
  summary = "check rule files for errors, list the bank and biller rules found",
  usage = "giro rules check [--json] [--kind=bank|biller|module] [--grant=MODULE...] FILE|NAME... | giro rules list [--json]",
  help = [[
check   loads each rule file exactly as the command that uses it does and checks it fully:
        a bank definition (rules/banks/) is sandboxed with what `giro pay` grants and
        compiled completely (formats, MAC recipes, every message); a biller rule
        (rules/billers/, or any other file that does not define `messages`) is sandboxed
        with what `giro efaktura process` grants and held to the biller contract (validate
        required, no unknown keys).  Prints "FILE: ok (KIND)" or "FILE:LINE: message".
        A NAME without "/" or ".lua" is looked up as a bank rule, then as a biller rule.
        --kind overrides the kind found from the directory; --grant adds a module a
        `module` file (rules/protocols/) may require.  --json prints a JSON array of
        { "path", "kind", "ok", "error" } on stdout.
        Exit status 1 when any file fails, 3 when a file cannot be read (missing, say).
list    prints the bank and biller rule files in the rules directories (docs/rules.md);
        --json: a JSON array of { "kind", "name", "path" }.]],
}

local function locate(name)
  if name:find("/", 1, true) or name:match("%.lua$") then return name end
  return rules.find("bank", name) or rules.find("biller", name) or name
end

local json = require("giro.json")

-- a JSON array, also when empty
local function json_array(list) return json.encode(json.array(list)) end

function M.run(argv)
  local opt, pos = args.parse(argv, { "--grant=MODULE...", "--json", "--kind=KIND" })
  local sub = table.remove(pos, 1)
  if sub == "list" then
    local list = {}
    for _, kind in ipairs({ "bank", "biller" }) do
      for _, r in ipairs(rules.discover(kind)) do
        list[#list + 1] = { kind = kind, name = r.name, path = r.path }
      end
    end
    if opt.json then
      io.stdout:write(json_array(list), "\n")
    else
      for _, r in ipairs(list) do io.stdout:write(string.format("%-7s %-20s %s\n", r.kind, r.name, r.path)) end
    end
    return 0
  elseif sub ~= "check" then
    cli.usage("usage: %s", M.usage)
  end
  if #pos == 0 then cli.usage("rules check: no files given") end
  if opt.kind and not rulecheck.KINDS[opt.kind] then
    cli.usage("rules check: --kind %s: expected bank, biller or module", require("giro.errors").quote(opt.kind))
  end
  local status, out = 0, {}
  for _, name in ipairs(pos) do
    local path = locate(name)
    local t, res = rulecheck.load(path, { kind = opt.kind, grant = opt.grant })
    if t then
      out[#out + 1] = { path = path, kind = res, ok = true, error = json.null }
      if not opt.json then io.stdout:write(path, ": ok (", res, ")\n") end
    else
      -- a file that is not there is the environment's fault (as in `giro run`), not the rule's
      local st = require("giro.fs").stat(path)   -- never open it: a FIFO would block
      local f = st and st.type == "file"
      status = math.max(status, f and cli.EXIT.rejected or cli.EXIT.env)
      out[#out + 1] = { path = path, kind = opt.kind or rulecheck.kind_of(path) or json.null,
                        ok = false, error = res }
      io.stdout:flush()
      io.stderr:write(res, "\n")
    end
  end
  if opt.json then io.stdout:write(json_array(out), "\n") end
  return status
end

return M
