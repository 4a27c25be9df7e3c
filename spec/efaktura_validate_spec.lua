-- giro efaktura validate: request or response detected from the file, every error with its line.
local H = dofile("spec/fixtures/efaktura/helper.lua")

describe("giro efaktura validate", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmdir(dir) end)

  it("accepts every request and response example of the spec", function()
    for _, f in ipairs({ "spec_3.3.1.1_add.xml", "spec_3.3.1.2_receipt_a.xml", "spec_3.3.1.3_receipt_n.xml",
        "spec_3.3.2.1_delete.xml", "spec_5.3.1.1_add_a.xml", "spec_5.3.1.2_add_n.xml", "spec_5.3.2.1_change_a.xml",
        "spec_5.3.2.2_change_n.xml" }) do
      local rc, out = H.run({ "efaktura", "validate", H.FIXTURES .. "/" .. f })
      assert.equal(0, rc, out)
      local kind = f:match("^spec_3") and "request" or "response"
      assert.truthy(out:find("valid " .. kind .. " file", 1, true), out)
    end
  end)

  it("accepts a request shaped like the DTD (ServiceProvider with all three children)", function()
    local f = H.write(dir .. "/dtd.xml", H.request{ dtd_shape = true, records = { H.add("1", "u==", "A", "B") } })
    local rc, out = H.run({ "efaktura", "validate", f })
    assert.equal(0, rc, out)
  end)

  it("lists every error of a bad response with its line", function()
    local s = H.read(H.FIXTURES .. "/spec_5.3.1.2_add_n.xml")
    s = s:gsub("<!%[CDATA%[N%]%]>", "<![CDATA[D]]>", 1)                    -- status D is not an answer
         :gsub("NOR999999999%-1%]%]> </ThorContentProviderId>", "NOR99-1]]> </ThorContentProviderId>", 1)
    local f = H.write(dir .. "/bad.xml", s)
    local rc, out = H.run({ "efaktura", "validate", f })
    assert.equal(1, rc)
    local lines = {}
    for l in out:gmatch(H.sh_quote(f):sub(2, -2):gsub("%p", "%%%0") .. ":(%d+):") do lines[#lines + 1] = tonumber(l) end
    assert.equal(2, #lines, out)
    assert.equal(22, lines[1])     -- BillerEnrollmentStatus
    assert.equal(27, lines[2])     -- ThorContentProviderId
    assert.truthy(out:find("2 error(s)", 1, true), out)
  end)

  it("checks what the XSD leaves out: reason and message with N, ISO-8859-1 declaration", function()
    local s = H.read(H.FIXTURES .. "/spec_5.3.1.2_add_n.xml")
    s = s:gsub("<BillerReason> <!%[CDATA%[01%]%]> </BillerReason>", "<BillerReason/>")
         :gsub('encoding="iso%-8859%-1"', 'encoding="UTF-8"')
    local f = H.write(dir .. "/bad.xml", s)
    local rc, out = H.run({ "efaktura", "validate", f })
    assert.equal(1, rc)
    assert.truthy(out:find(":1: encoding", 1, true), out)
    assert.truthy(out:find("status N needs BillerReason", 1, true), out)
  end)

  it("names what it expected for a file that is neither", function()
    local f = H.write(dir .. "/x.xml", '<?xml version="1.0" encoding="iso-8859-1"?>\n<Message>\n  <Other/>\n</Message>\n')
    local rc, out = H.run({ "efaktura", "validate", f })
    assert.equal(1, rc)
    assert.truthy(out:find(":3: <Other> after <Message>: expected <Request>", 1, true), out)
    f = H.write(dir .. "/y.xml", "<Message><Request>")
    rc, out = H.run({ "efaktura", "validate", f })
    assert.equal(1, rc)
    assert.equal(3, (H.run({ "efaktura", "validate", dir .. "/missing.xml" })))
  end)
end)
