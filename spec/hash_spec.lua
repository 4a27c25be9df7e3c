-- giro.hash against published vectors (FIPS 180-2, RFC 1321, RFC 4231) and `openssl dgst`.
local hash = require("giro.hash")
local hex = hash.hex

local function openssl(args, data)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb")); f:write(data); f:close()
  local p = assert(io.popen("openssl dgst " .. args .. " -r < " .. tmp))
  local out = p:read("a"); p:close(); os.remove(tmp)
  return (out:match("^(%x+)"))
end

describe("giro.hash", function()
  it("matches FIPS 180-2 'abc' vectors", function()
    assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hex(hash.sha1("abc")))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex(hash.sha256("abc")))
    assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", hex(hash.sha512("abc")))
  end)

  it("matches RFC 1321 MD5 test suite", function()
    assert.equal("d41d8cd98f00b204e9800998ecf8427e", hex(hash.md5("")))
    assert.equal("0cc175b9c0f1b6a831c399e269772661", hex(hash.md5("a")))
    assert.equal("900150983cd24fb0d6963f7d28e17f72", hex(hash.md5("abc")))
    assert.equal("f96b697d7cb7938d525a2f31aaf161d0", hex(hash.md5("message digest")))
    assert.equal("57edf4a22be3c955ac49da2e2107b67a", hex(hash.md5(string.rep("1234567890", 8))))
  end)

  it("matches RFC 4231 HMAC-SHA256/512 test cases 1 and 2", function()
    local key1 = string.rep("\x0b", 20)
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      hex(hash.hmac("sha256", key1, "Hi There")))
    assert.equal("87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
      .. "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
      hex(hash.hmac("sha512", key1, "Hi There")))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      hex(hash.hmac("sha256", "Jefe", "what do ya want for nothing?")))
  end)

  it("agrees with openssl dgst on non-ASCII and binary input", function()
    local data = "Søren Ærø å\0\255" .. string.rep("x", 1000)
    for _, alg in ipairs({ "md5", "sha1", "sha256", "sha512" }) do
      assert.equal(openssl("-" .. alg, data), hex(hash[alg](data)))
      assert.equal(openssl("-" .. alg, data), hex(hash.digest(alg, data)))
    end
    assert.equal(openssl("-sha256 -hmac secretkey", data), hex(hash.hmac("sha256", "secretkey", data)))
  end)

  it("hex: lower by default, upper on request", function()
    assert.equal("00ff7f", hex("\0\255\127"))
    assert.equal("00FF7F", hex("\0\255\127", "upper"))
    assert.equal("", hex(""))
    assert.has_error(function() hex("x", "mixed") end)
  end)

  it("incremental hashing equals one-shot over a large input", function()
    local ctx = hash.new("sha256")
    local whole = {}
    for i = 1, 1000 do
      local piece = string.rep(string.char(i % 256), i % 97)
      assert.equal(ctx, ctx:update(piece))
      whole[#whole + 1] = piece
    end
    local joined = table.concat(whole)
    assert.equal(hex(hash.sha256(joined)), hex(ctx:final()))
    assert.equal(openssl("-sha256", joined), hex(hash.sha256(joined)))
    assert.has_error(function() ctx:update("more") end, "giro.hash: update after final")
    assert.has_error(function() ctx:final() end, "giro.hash: final called twice")
  end)

  it("works with to-be-closed variables", function()
    local ok = pcall(function()
      local ctx <close> = hash.new("md5")
      ctx:update("abc")
      error("boom")
    end)
    assert.is_false(ok)
  end)

  it("equal compares contents and lengths", function()
    assert.is_true(hash.equal("abc", "abc"))
    assert.is_false(hash.equal("abc", "abd"))
    assert.is_false(hash.equal("abc", "abcd"))
    assert.is_true(hash.equal("", ""))
  end)

  it("raises on wrong argument types and unknown algorithms", function()
    assert.has_error(function() hash.sha256() end)
    assert.has_error(function() hash.sha256({}) end)
    assert.has_error(function() hash.new("crc32") end)
    assert.has_error(function() hash.hmac("sha256", nil, "x") end)
  end)
end)
