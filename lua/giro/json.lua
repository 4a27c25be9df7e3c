--- giro.json: the JSON giro prints for programs, with lists that stay lists.
--
--   local json = require("giro.json")
--   json.encode({ agreements = json.array(list), valid = false })  --> '{"agreements":[],"valid":false}'
--
-- lua-cjson 2.1.0 (Debian's) encodes an empty Lua table as {} and has neither array_mt nor
-- empty_array: a program looping over an empty list then meets an object.  Here a table
-- marked with json.array is always an array; any other non-empty sequence is an array too;
-- everything else is an object, its keys sorted (the same data gives the same text).
-- Strings and numbers are written by cjson itself; json.null (cjson.null) is null.
local cjson = require("cjson")

local json = {}

json.null = cjson.null

local ARRAY = { __name = "giro.json.array" }

--- Mark t (default: a new table) as a JSON array; returns t.
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- True when t is marked as an array.
function json.is_array(t)
  return getmetatable(t) == ARRAY
end

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

local MAX_DEPTH = 100

local function encode(v, out, depth)
  local t = type(v)
  if t == "table" then
    if depth > MAX_DEPTH then error("giro.json: nested deeper than " .. MAX_DEPTH, 0) end
    if getmetatable(v) == ARRAY or is_sequence(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        local kt = type(k)
        if kt ~= "string" and kt ~= "number" then error("giro.json: a " .. kt .. " as an object key", 0) end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        out[#out + 1] = (cjson.encode(k):gsub("\\/", "/"))
        out[#out + 1] = ":"
        encode(val, out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  elseif v == cjson.null or v == nil then
    out[#out + 1] = "null"
  elseif t == "string" then
    -- cjson writes "/" as "\/" (valid, but paths then read badly); every "\/" it writes is
    -- an escaped slash, so undoing it keeps the text exact
    out[#out + 1] = (cjson.encode(v):gsub("\\/", "/"))
  elseif t == "number" or t == "boolean" then
    out[#out + 1] = cjson.encode(v)
  else
    error("giro.json: cannot encode a " .. t, 0)
  end
end

--- The JSON text of v.
function json.encode(v)
  local out = {}
  encode(v, out, 0)
  return table.concat(out)
end

return json
