-- What the eFaktura speed work must not change: the memos in giro.efaktura.names and in
-- the customer register give the same results as computing afresh, and never share a
-- customer table between customers.  (Speed itself is measured in make bench, never here.)
local names = require("giro.efaktura.names")
local register = require("giro.efaktura.register")
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("eFaktura speed-ups keep the results", function()
  it("names.fold gives the same text from its memo, for every level, past a memo reset", function()
    local samples = { "  Åse-Marie  ØSTBY ", "KÅRE", "Bjørn-Ove", "Jääskeläinen", "Aasmund", "O'Neil", "Nils\xC2\xA0Olav" }
    local first = {}
    for _, level in ipairs({ "strict", "normal", "loose" }) do
      first[level] = {}
      for i, s in ipairs(samples) do first[level][i] = names.fold(s, level) end
    end
    assert.equal("åse marie østby", first.normal[1])
    assert.equal("åse marie østby", first.strict[1])
    assert.equal("åsmund", first.normal[5])
    assert.equal("aasmund", first.strict[5])
    -- fill the memo past its bound with other names, then ask again
    for i = 1, 5000 do names.fold("Navn" .. i, "normal") end
    for _, level in ipairs({ "strict", "normal", "loose" }) do
      for i, s in ipairs(samples) do
        assert.equal(first[level][i], names.fold(s, level))
        assert.equal(first[level][i], names.fold(s, level))
      end
    end
    assert.equal("", names.fold(nil, "normal"))
  end)

  it("customers sharing their extra columns get equal but separate tables", function()
    local dir = H.tmpdir()
    local csv = H.write(dir .. "/c.csv", "account_number,first_name,last_name,efaktura,product,region\n"
      .. "1,Kari,Hansen,yes,strøm,Vest\n2,Ola,Nordmann,no,strøm,Vest\n3,Per,Berg,yes,gass,Nord\n")
    local reg = assert(register.open(dir .. "/r.db", { create = true }))
    assert(reg:import_customers(csv))
    local cs = reg:customers({ "1", "2", "3" })
    assert.same({ account_number = "1", first_name = "Kari", last_name = "Hansen", efaktura = true,
                  product = "strøm", region = "Vest" }, cs["1"])
    assert.same({ account_number = "2", first_name = "Ola", last_name = "Nordmann", efaktura = false,
                  product = "strøm", region = "Vest" }, cs["2"])
    assert.equal("gass", cs["3"].product)
    assert.are_not.equal(cs["1"], cs["2"])
    cs["1"].product = "changed by a rule"
    assert.equal("strøm", reg:customers({ "2" })["2"].product)
    assert.equal("strøm", reg:customer("1").product)
    reg:close()
    H.rmdir(dir)
  end)
end)
