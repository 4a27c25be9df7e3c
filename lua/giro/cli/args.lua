--- A small, shared option parser for giro's commands.
--
--   local args = require("giro.cli.args")
--   local opt, pos = args.parse(argv, { "--db=DB", "-o, --output=FILE", "--json", "--key-file=F" })
--
-- Each spec string names the option's spellings, with `=NAME` when it takes a value.
-- The result table is keyed by the long name without dashes ("output", "key-file").
-- Options may come before or after positional words; `--opt=value` and `--opt value`
-- both work; `--` ends options; a lone `-` is positional (stdin).
-- A spec ending in `...` (e.g. "--header=H...") collects repeated values in a list.
-- Unknown options and missing values are usage errors (exit 2).
local cli = require("giro.cli")

local args = {}

local function compile(specs)
  local byname = {}
  for _, spec in ipairs(specs) do
    local names, value = spec:match("^([^=]+)=?(.*)$")
    local multi = value:sub(-3) == "..."
    local key
    local spellings = {}
    for sp in names:gmatch("[^,%s]+") do
      spellings[#spellings + 1] = sp
      if sp:sub(1, 2) == "--" or not key then key = sp:gsub("^%-+", "") end
    end
    local o = { key = key, takes = value ~= "", multi = multi }
    for _, sp in ipairs(spellings) do byname[sp] = o end
  end
  return byname
end

function args.parse(argv, specs)
  -- --json and --format json (its alias) ask for JSON, errors included: seen before anything
  -- can fail, so that a usage error on the same line is reported as JSON too
  if cli.wants_json(argv) then cli.json.on = true end
  local byname = compile(specs or {})
  local opt, pos = {}, {}
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, n, #pos + 1, pos)
      break
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local name, inline = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      local o = byname[name]
      -- one spelling everywhere: --json and --format json are aliases of each other
      if not o and name == "--json" and byname["--format"] and not inline then
        o, inline = byname["--format"], "json"
      elseif not o and name == "--format" and byname["--json"] then
        local v = inline or argv[i + 1]
        if v ~= "json" then cli.usage("--format must be json here (the same as --json), got '%s'", tostring(v)) end
        if not inline then i = i + 1 end
        o, inline, name = byname["--json"], nil, "--json"
      end
      if not o then cli.usage("unknown option %s", name) end
      local v = true
      if o.takes then
        if inline then
          v = inline
        else
          i = i + 1
          v = argv[i]
          if v == nil then cli.usage("option %s needs a value", name) end
        end
      elseif inline then
        cli.usage("option %s takes no value", name)
      end
      if o.multi then
        opt[o.key] = opt[o.key] or {}
        table.insert(opt[o.key], v)
      else
        opt[o.key] = v
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opt, pos
end

return args
