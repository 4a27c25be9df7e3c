-- The decision contract (giro.efaktura.decision), the one check behind the biller rule's
-- decisions and `giro efaktura decide`.  From the spec (6.1, response XSD 5.5): BillerReason is
-- 01, 02 or 03; BillerMessage holds at most 100 characters; the standard texts of 6.1.
local decision = require("giro.efaktura.decision")

local STD = {  -- spec section 6.1, exact
  ["01"] = "Oppgitt efaktura referanse er ugyldig (se papirfaktura)",
  ["02"] = "Oppgitte personopplysninger er ikke i samsvar med Kunderegister (se papirfaktura)",
  ["03"] = "Det tilbys ikke efaktura for dette produktet",
}

describe("giro.efaktura.decision", function()
  it("knows the reasons 01, 02 and 03 and nothing else", function()
    for r in pairs(STD) do assert.is_true(decision.reason(r)) end
    for _, bad in ipairs({ "1", "04", "00", "", " 01", "A" }) do
      local ok, err = decision.reason(bad)
      assert.is_nil(ok)
      assert.truthy(err:find("reason must be 01, 02 or 03", 1, true), err)
    end
    local ok, err = decision.reason(1)
    assert.is_nil(ok)
    assert.truthy(err:find("a number", 1, true), err)
  end)

  it("an absent or empty message is the reason's standard text", function()
    for r, text in pairs(STD) do
      assert.equal(text, decision.message(nil, r))
      assert.equal(text, decision.message("", r))
      assert.same({ answer = "N", reason = r, message = text }, decision.reject(r))
    end
  end)

  it("counts characters, not bytes: 100 fit, 101 do not", function()
    assert.equal(string.rep("x", 100), decision.message(string.rep("x", 100), "01"))
    assert.equal(string.rep("ø", 100), decision.message(string.rep("ø", 100), "01"))   -- 200 bytes
    local ok, err = decision.message(string.rep("ø", 101), "01")
    assert.is_nil(ok)
    assert.truthy(err:find("101 characters", 1, true), err)
    assert.truthy(err:find("at most 100", 1, true), err)
  end)

  it("refuses a message that is not UTF-8 text or not a string", function()
    local ok, err = decision.message("caf\xE9", "01")        -- Latin-1 bytes
    assert.is_nil(ok)
    assert.truthy(err:find("not UTF-8", 1, true), err)
    ok, err = decision.message(42, "01")
    assert.is_nil(ok)
    assert.truthy(err:find("must be a string", 1, true), err)
  end)

  it("reject checks the reason first, then the message", function()
    local d, err = decision.reject("07", string.rep("x", 500))
    assert.is_nil(d)
    assert.truthy(err:find("reason must be", 1, true), err)
    d, err = decision.reject("02", string.rep("x", 101))
    assert.is_nil(d)
    assert.truthy(err:find("at most 100", 1, true), err)
    assert.same({ answer = "N", reason = "03", message = "Eget produkt" }, decision.reject("03", "Eget produkt"))
  end)
end)
