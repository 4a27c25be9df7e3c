--- giro.csv: a small streaming RFC 4180 reader (UTF-8 text, comma separated).
--
--   local csv = require("giro.csv")
--   for fields, line in csv.rows(path) do ... end          -- raises "PATH:LINE: msg" on bad input
--   local rows, err = csv.read_string(s)                     -- whole string, nil + msg on error
--
-- Quoted fields may hold commas, doubled quotes ("") and line breaks; CRLF and LF
-- both end a record; a UTF-8 byte-order mark is dropped; bytes that are not UTF-8
-- are refused (a customer file saved as Latin-1 must not turn "Ø" into garbage).
-- Debian 12 ships no Lua CSV parser (apt-cache search lua csv finds none), so
-- giro keeps this one: about 80 lines, and it reports line numbers the way giro's
-- error messages need.
local csv = {}

-- Split one physical line into fields, continuing a quoted field over further
-- lines via next_line().  Returns fields, or nil + message.
local function parse_record(line, next_line)
  local fields, pos, n = {}, 1, #line
  while true do
    local c = line:sub(pos, pos)
    if c == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = line:find('"', i, true)
        if not q then
          parts[#parts + 1] = line:sub(i)
          local more = next_line()
          if more == nil then return nil, "quoted field not closed before the end of the file" end
          parts[#parts + 1] = "\n"
          line, n, i = more, #more, 1
        elseif line:sub(q + 1, q + 1) == '"' then
          parts[#parts + 1] = line:sub(i, q)
          i = q + 2
        else
          parts[#parts + 1] = line:sub(i, q - 1)
          pos = q + 1
          break
        end
      end
      fields[#fields + 1] = table.concat(parts)
      local after = line:sub(pos, pos)
      if after == "," then
        pos = pos + 1
      elseif pos > n then
        return fields
      else
        return nil, string.format("unexpected %q after a closing quote (a quote inside a field is written \"\")", after)
      end
    else
      local comma = line:find(",", pos, true)
      local field = line:sub(pos, (comma or n + 1) - 1)
      if field:find('"', 1, true) then
        return nil, "a quote inside an unquoted field (quote the whole field and double the quote)"
      end
      fields[#fields + 1] = field
      if not comma then return fields end
      pos = comma + 1
    end
  end
end

--- Iterate over the records of an open file handle (or anything with :lines()).
-- Yields fields (a list of strings) and the line number where the record starts.
-- Blank lines are skipped.  Errors raise "NAME:LINE: message".
function csv.records(lines_iter, name)
  local lineno = 0
  local function next_line()
    local l = lines_iter()
    if l == nil then return nil end
    lineno = lineno + 1
    if lineno == 1 and l:sub(1, 3) == "\239\187\191" then l = l:sub(4) end
    if l:sub(-1) == "\r" then l = l:sub(1, -2) end
    if not utf8.len(l) then
      error(string.format("%s:%d: not UTF-8 text (save the file as UTF-8)", name, lineno), 0)
    end
    return l
  end
  return function()
    while true do
      local l = next_line()
      if l == nil then return nil end
      if l ~= "" then
        local start = lineno
        local fields, err = parse_record(l, next_line)
        if not fields then error(string.format("%s:%d: %s", name, start, err), 0) end
        return fields, start
      end
    end
  end
end

--- Iterate over the records of a file (see csv.records).
function csv.rows(path)
  local f, err = io.open(path, "rb")
  if not f then error(err, 0) end
  local lines = f:lines("L")
  local it = csv.records(function()
    local l = lines()
    if l == nil then f:close() return nil end
    return (l:gsub("\n$", ""))
  end, path)
  return it
end

--- One CSV record (RFC 4180): fields joined by commas, a field holding a comma, a quote,
-- CR or LF quoted with its quotes doubled, ended by CRLF.
function csv.line(fields)
  local out = {}
  for i, v in ipairs(fields) do
    v = tostring(v)
    if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
    out[i] = v
  end
  return table.concat(out, ",") .. "\r\n"
end

--- Parse a whole string; returns a list of {fields, line} or nil, message.
function csv.read_string(s, name)
  local pos = 1
  local it = csv.records(function()
    if pos > #s then return nil end
    local nl = s:find("\n", pos, true)
    local l = s:sub(pos, (nl or #s + 1) - 1)
    pos = (nl or #s) + 1
    return l
  end, name or "(string)")
  local out = {}
  local ok, err = pcall(function()
    for fields, line in it do out[#out + 1] = { fields = fields, line = line } end
  end)
  if not ok then return nil, err end
  return out
end

return csv
