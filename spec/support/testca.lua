-- A throw-away test PKI made with the `openssl` command, for specs that need TLS.
--
--   local testca = require("testca")
--   local pki = testca.create()     -- fresh temporary directory, P-256 keys, valid 2 days
--   pki.ca_cert, pki.ca_key         -- the test CA ("giro test CA")
--   pki.server_cert, pki.server_key -- signed by the CA for IP:127.0.0.1 and DNS:localhost
--   pki.wrong_host_cert, pki.wrong_host_key  -- signed by the CA for DNS:wrong-host.invalid only
--   pki.untrusted_cert, pki.untrusted_key    -- self-signed, for 127.0.0.1 (no CA knows it)
--   pki.client_cert, pki.client_key          -- client certificate (CN "giro test client")
--   pki.client_key_encrypted, pki.client_key_password  -- the same key, AES-256 encrypted
--   pki.dir                         -- the directory holding all of the above
--   testca.remove(pki)              -- delete the directory
--
-- Everything is generated in the test run; nothing is committed.
local M = {}

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  if not ok then error("testca: command failed: " .. cmd, 2) end
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local EC = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

-- a key and a certificate signed by the CA, with the given v3 extensions
local function issue(pki, name, cn, ext)
  local d = pki.dir
  write(d .. "/" .. name .. ".ext", "[v3]\nbasicConstraints = critical,CA:FALSE\n"
    .. "keyUsage = critical,digitalSignature,keyEncipherment\n" .. ext .. "\n")
  sh(string.format("openssl req %s -keyout %s/%s.key -out %s/%s.csr -subj '/CN=%s'",
    EC, d, name, d, name, cn))
  pki.serial = (pki.serial or 1) + 1
  sh(string.format("openssl x509 -req -in %s/%s.csr -CA %s -CAkey %s -set_serial %d -days 2 "
    .. "-extfile %s/%s.ext -extensions v3 -out %s/%s.crt",
    d, name, pki.ca_cert, pki.ca_key, pki.serial, d, name, d, name))
  return d .. "/" .. name .. ".crt", d .. "/" .. name .. ".key"
end

function M.create()
  local p = assert(io.popen("mktemp -d /tmp/giro-testca.XXXXXX"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir:match("^/tmp/giro%-testca%.[%w]+$"), "testca: mktemp failed")
  local pki = { dir = dir }

  pki.ca_cert, pki.ca_key = dir .. "/ca.crt", dir .. "/ca.key"
  sh(string.format("openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=giro test CA' "
    .. "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'",
    EC, pki.ca_key, pki.ca_cert))

  pki.server_cert, pki.server_key = issue(pki, "server", "127.0.0.1",
    "subjectAltName = IP:127.0.0.1,DNS:localhost\nextendedKeyUsage = serverAuth")
  pki.wrong_host_cert, pki.wrong_host_key = issue(pki, "wronghost", "wrong-host.invalid",
    "subjectAltName = DNS:wrong-host.invalid\nextendedKeyUsage = serverAuth")
  pki.client_cert, pki.client_key = issue(pki, "client", "giro test client",
    "extendedKeyUsage = clientAuth")

  pki.client_key_password = "test-only passphrase"
  write(dir .. "/client.pass", pki.client_key_password .. "\n")
  pki.client_key_encrypted = dir .. "/client_enc.key"
  sh(string.format("openssl pkey -in %s -aes256 -passout file:%s/client.pass -out %s",
    pki.client_key, dir, pki.client_key_encrypted))

  pki.untrusted_cert, pki.untrusted_key = dir .. "/untrusted.crt", dir .. "/untrusted.key"
  sh(string.format("openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=127.0.0.1' "
    .. "-addext 'subjectAltName=IP:127.0.0.1,DNS:localhost'",
    EC, pki.untrusted_key, pki.untrusted_cert))
  return pki
end

function M.remove(pki)
  if pki and pki.dir and pki.dir:match("^/tmp/giro%-testca%.[%w]+$") then
    os.execute("rm -rf " .. pki.dir)
  end
end

return M
