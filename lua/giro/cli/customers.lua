--- giro customers ...: the customer register that biller rules look customers up in.
local cli = require("giro.cli")
local args = require("giro.cli.args")

local M = {
  summary = "customer register: import a customer CSV, list customers",
  usage = "giro customers import FILE.csv --db DB | giro customers list --db DB [--json]",
  help = [[
  giro customers import FILE.csv --db DB [--json]
      Load customers from a UTF-8 CSV file with a header row holding at least
      account_number,first_name,last_name,efaktura (efaktura: yes or no, whether the
      customer's product offers eFaktura).  Further columns are kept and visible to biller
      rules as customer.<column>.  A customer already in the register is updated, not
      duplicated (an unchanged one is not written: its time stamp stays).  Any bad row
      refuses the whole file (every bad row is listed with its line; the register is left
      unchanged, exit 1); a file that cannot be opened is exit 3 with the reason.
  giro customers list --db DB [--json]
      Every customer in the register.

DB is a SQLite file (default $GIRO_DB or giro.db), a postgres:// URL or a libpq
"host=... dbname=..." string.  import is the one command that creates a register (the
SQLite file, or the tables in a PostgreSQL database); every other command refuses one
that does not exist.]],
}

local function open(opt, create)
  local register = require("giro.efaktura.register")
  local reg, err, kind = register.open(opt.db or os.getenv("GIRO_DB") or "giro.db", { create = create })
  if not reg then cli.fail_kind(kind, "%s", err) end
  return reg
end

local sub = {}

function sub.import(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--json" })
  if #pos ~= 1 then cli.usage("usage: giro customers import FILE.csv --db DB") end
  cli.check(require("giro.output").check_input(pos[1], { what = "customer CSV" }))
  local reg = open(opt, true)
  local counts, err, kind, detail = reg:import_customers(pos[1])
  if not counts then
    reg:discard()   -- a register this import was to create is not left behind empty
    cli.fail_info(kind or "env", { message = err, field = detail and detail.field })
  end
  reg:close()
  if opt.json then
    io.stdout:write(require("giro.json").encode(counts), "\n")
  else
    io.stderr:write(string.format("%s: %d customer(s) added, %d updated, %d unchanged\n", pos[1], counts.added,
      counts.updated, counts.unchanged))
  end
  return 0
end

function sub.list(argv)
  local opt, pos = args.parse(argv, { "--db=DB", "--json" })
  if #pos ~= 0 then cli.usage("usage: giro customers list --db DB [--json]") end
  local reg = open(opt)
  local list = {}
  for c in reg:each_customer() do list[#list + 1] = c end
  reg:close()
  if opt.json then
    local json = require("giro.json")
    io.stdout:write(json.encode(json.array(list)), "\n")
    return 0
  end
  for _, c in ipairs(list) do
    io.stdout:write(cli.format("%-14s %-24s %-24s eFaktura %s\n", c.account_number, c.first_name, c.last_name,
      c.efaktura and "yes" or "no"))
  end
  return 0
end

function M.run(argv)
  local f = sub[argv[1] or ""]
  if not f then cli.usage("%s", M.usage) end
  return f(table.move(argv, 2, #argv, 1, {}))
end

return M
