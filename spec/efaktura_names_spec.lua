-- The default name matcher (giro.efaktura.names) on real-world Norwegian names: how
-- netbanks hand them over (as the consumer's bank has them) against how customer
-- registers store them.  Expected verdicts follow the spec's rule (FirstName OR LastName
-- must match) and the folding documented in docs/efaktura.md.
local names = require("giro.efaktura.names")

local function req(first, last) return { FirstName = first, LastName = last } end
local function cust(first, last) return { first_name = first, last_name = last } end

describe("giro.efaktura.names", function()
  it("folds case for Æ Ø Å Ä Ö Ü É and Sami letters, collapses whitespace, hyphen = space", function()
    assert.equal("åse marie østby", names.fold("  ÅSE-MARIE \t ØSTBY ", "strict"))
    assert.equal("æøåäöüé", names.fold("ÆØÅÄÖÜÉ", "strict"))
    assert.equal("čđŋšŧž", names.fold("ČĐŊŠŦŽ", "strict"))
    assert.equal("obrien jr", names.fold("O'Brien Jr.", "strict"))
    assert.equal("jørgen dahl", names.fold("Jørgen\xC2\xA0Dahl", "strict"))     -- no-break space
    assert.equal("berg hansen", names.fold("Berg–Hansen", "strict"))           -- en dash
    -- normal: spelling variants
    assert.equal("æøue", names.fold("ÄÖÜÉ", "normal"))
    assert.equal("hålen", names.fold("Haalen", "normal"))
    assert.equal("", names.fold(nil))
  end)

  -- { request first, request last, customer first, customer last, strict, normal, loose }
  local TABLE = {
    { "Kari", "Nordmann", "Kari", "Nordmann", true, true, true },                 -- exact
    { "KARI", "NORDMANN", "kari", "nordmann", true, true, true },                 -- case
    { "ÅSE", "ØSTBY", "åse", "østby", true, true, true },                         -- Nordic capitals
    { "Åse Marie", "Østby", "Åse-Marie", "Østby", true, true, true },             -- hyphen vs space
    { "Kari Anne", "Olsen", "Kari", "Nordmann", true, true, true },               -- one of several given names
    { "Anne", "Olsen", "Kari Anne", "Nordmann", true, true, true },               -- the register has the middle name
    { "Per", "Sæther Ødegård", "Bjørn", "Sæther-Ødegård", true, true, true },     -- last name with hyphen/space
    { "Per", "Hansen", "Ola", "Berg-Hansen", false, true, true },                 -- part of a double surname
    { "Rene", "Aasen", "René", "Åsen", false, true, true },                       -- é = e, aa = å
    { "Björn", "Larsen", "Bjørn", "Olsen", false, true, true },                   -- ö = ø
    { "Mæhle", "Ola", "Ola", "Mæhle", false, false, true },                       -- first and last swapped
    { "Ola", "Nordmann", "Kari", "Hansen", false, false, false },                 -- someone else
    { "K", "Olsen", "Kari", "Nordmann", false, false, false },                    -- an initial is not a match
    { "", "", "Kari", "Nordmann", false, false, false },                          -- no name at all
    { "Tor Åge", "Bråthen", "Tor-Åge", "Bråten", true, true, true },              -- first names carry it
    { "Øystein", "Brænden", "Oystein", "Branden", false, false, false },          -- ø is not o, æ is not a
  }
  for i, row in ipairs(TABLE) do
    it(string.format("case %d: %q %q vs register %q %q", i, row[1], row[2], row[3], row[4]), function()
      for j, level in ipairs({ "strict", "normal", "loose" }) do
        local ok, why = names.match(req(row[1], row[2]), cust(row[3], row[4]), level)
        assert.equal(row[4 + j], ok, level .. ": " .. tostring(why))
        assert.is_string(why)
      end
    end)
  end

  it("refuses an unknown strictness", function()
    assert.has_error(function() names.match(req("a", "b"), cust("a", "b"), "fuzzy") end)
  end)
end)
