-- giro repl --biller RULES.lua REQUEST.xml: try the rule on a record, edit it, :reload, try again.
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("giro repl --biller", function()
  it("shows the decision and why, and uses the edited rule after :reload", function()
    local dir, db = H.setup()
    local rule = dir .. "/rule.lua"
    H.write(rule, [[
      local names = require("giro.efaktura.names")
      return { validate = function(request, customer)
        if not customer then return { reason = "01", why = "unknown" } end
        local ok, why = names.match(request, customer, "strict")
        if not ok then return { reason = "02", why = why } end
        return { accept = true, why = why }
      end }]])
    local req = H.write(dir .. "/q.xml", H.request{ records = { H.add("1000025", "r==", "Aase", "Berg"), H.delete("1", "d==") } })
    local script = H.write(dir .. "/in.txt", table.concat({
      ":records",
      ":try 1",
      "os.execute(" .. string.format("%q", "sed -i 's/\"strict\"/\"normal\"/' " .. rule) .. ")",
      ":reload",
      ":try 1",
      ":try 2",
      "print(try(1).answer)",
    }, "\n") .. "\n")
    local p = io.popen(H.sh_quote(H.giro) .. " repl --db " .. H.sh_quote(db) .. " --biller " .. H.sh_quote(rule) .. " " ..
      H.sh_quote(req) .. " < " .. H.sh_quote(script) .. " 2>&1")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("#1    line %d+ +add +1000025 +Aase Berg"), out)
    local first, second = out:match("decision: (N, reason 02).-why: ([^\n]*)")
    assert.equal("N, reason 02", first, out)
    assert.truthy(second:find("neither first name", 1, true), out)
    assert.truthy(out:find("reloaded", 1, true), out)
    -- after the edit ("normal" folds aa to å) the same record is accepted
    assert.truthy(out:find("reloaded.-decision: A %(accept%)"), out)
    assert.truthy(out:find("\nA %(accept%)\n"), out)
    assert.truthy(out:find("deletes and receipts are not decided by the rule", 1, true), out)
    H.rmdir(dir)
  end)
end)
