-- Table output pads by characters, not bytes: columns holding æøå line up (giro.text and the
-- commands that print tables).
local H = dofile("spec/fixtures/efaktura/helper.lua")
local text = require("giro.text")

-- the column (in characters) where `word` starts on each line that has it
local function columns(out, word)
  local cols = {}
  for line in out:gmatch("[^\n]+") do
    local at = line:find(word, 1, true)
    if at then cols[#cols + 1] = utf8.len(line:sub(1, at - 1)) end
  end
  return cols
end

describe("giro.text", function()
  it("pads by characters", function()
    -- "Åse" is 3 characters, 4 bytes; "Bjørn Sæther" 12 characters, 14 bytes
    assert.equal("Åse   |", text.format("%-6s|", "Åse"))
    assert.equal("   Åse|", text.format("%6s|", "Åse"))
    assert.equal("Bjørn Sæther|", text.format("%-6s|", "Bjørn Sæther"))   -- never cut
    assert.equal("x  |  7|%|+3|ab", text.format("%-3s|%3d|%%|%+d|%.2s", "x", 7, 3, "abc"))
    assert.equal("\xff\xfe  |", text.format("%-4s|", "\xff\xfe"))          -- not UTF-8: bytes
  end)
end)

describe("table output with æøå", function()
  local dir, db
  setup(function() dir, db = H.setup() end)
  teardown(function() H.rmdir(dir) end)

  it("customers list lines up its columns", function()
    local rc, out, err = H.run({ "customers", "list", "--db", db })
    assert.equal(0, rc, err)
    local cols = columns(out, "eFaktura")
    assert.equal(5, #cols, out)          -- H.CUSTOMERS: Åse-Marie Østby, Bjørn Sæther-Ødegård, ...
    for _, c in ipairs(cols) do assert.equal(cols[1], c, out) end
  end)

  it("efaktura agreements lines up its columns", function()
    local rc, _, err = H.process(dir, db, H.request{ records = {
      H.add("1000025", "å1==", "Åse-Marie", "Østby"), H.add("Øst-7", "u2==", "Nils", "Nilsen"),
      H.add("999", "u3==", "Fornavn", "Etternavn") } })
    assert.equal(0, rc, err)
    local out
    rc, out, err = H.run({ "efaktura", "agreements", "--db", db })
    assert.equal(0, rc, err)
    local cols = columns(out, "NOR999999999-1")
    assert.equal(3, #cols, out)
    for _, c in ipairs(cols) do assert.equal(cols[1], c, out) end
    -- the ThorUserId column ("å1==") and what follows line up too
    local hdr = columns(out, "provider")[1]
    assert.equal(hdr, cols[1], out)
  end)
end)
