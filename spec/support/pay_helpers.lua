-- Helpers for the giro.pay specs: MACs computed independently with `openssl dgst`, Latin-1
-- encoding, and running the giro binary that runs the specs.
local M = {}

local function tmpfile(data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end
M.tmpfile = tmpfile

--- openssl dgst -ALG over exactly `data`; lower-case hex.
function M.openssl(alg, data)
  local path = tmpfile(data)
  local p = assert(io.popen("openssl dgst -" .. alg .. " -r < " .. path))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return assert(out:match("^(%x+)"), "openssl dgst failed: " .. tostring(out))
end

function M.sha256(s, case) local h = M.openssl("sha256", s) return case == "upper" and h:upper() or h end
function M.md5(s, case) local h = M.openssl("md5", s) return case == "upper" and h:upper() or h end

--- UTF-8 text as ISO-8859-1 bytes (only for characters U+0000..U+00FF).
function M.latin1(s)
  local out = {}
  for _, c in utf8.codes(s) do out[#out + 1] = string.char(assert(c < 256 and c)) end
  return table.concat(out)
end

--- A query string from a list of { name, value } (values percent-encoded byte by byte, except
-- the characters banks leave as they are: letters, digits, - . _ ~ , : /).
function M.query(list)
  local parts = {}
  for _, p in ipairs(list) do
    parts[#parts + 1] = p[1] .. "=" .. p[2]:gsub("[^%w%-%._~,:/]", function(c)
      return string.format("%%%02X", c:byte())
    end)
  end
  return table.concat(parts, "&")
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.quote = shell_quote

local exe
--- The giro binary running these specs (./giro or build/asan/giro).
function M.giro()
  if not exe then
    local p = assert(io.popen("readlink /proc/$PPID/exe"))
    exe = p:read("l")
    p:close()
  end
  return exe
end

--- Run giro with words (quoted for the shell); env: { NAME = value } for the run;
-- stdin: text for standard input.  Returns exit code, stdout, stderr.
function M.run(words, env, stdin)
  local out, err = os.tmpname(), os.tmpname()
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  parts[#parts + 1] = shell_quote(M.giro())
  for _, w in ipairs(words) do parts[#parts + 1] = shell_quote(w) end
  local cmd = table.concat(parts, " ")
  local infile
  if stdin then infile = tmpfile(stdin); cmd = cmd .. " < " .. infile else cmd = cmd .. " < /dev/null" end
  local _, _, code = os.execute(cmd .. " > " .. out .. " 2> " .. err)
  local function slurp(p) local f = io.open(p, "rb"); local s = f:read("a"); f:close(); os.remove(p); return s end
  if infile then os.remove(infile) end
  local o, e = slurp(out), slurp(err)
  if code == 23 then  -- engine/sanitizer/options.c: a sanitizer report ended the child
    error("giro died of a sanitizer report (exit 23); stderr:\n" .. e:sub(1, 4000), 2)
  end
  return code, o, e
end

return M
