--- giro.efaktura.outbox: staging and durable delivery of a response file, shared by
-- `efaktura process` (giro.efaktura.process) and `efaktura answer` (giro.efaktura.held).
--
--   local outbox = require("giro.efaktura.outbox")
--   local box = outbox.new(target, header)   -- target: a giro.output target; header: the
--                                            -- response's { from_name, to_id, to_service }
--   box:answer(a)              -- the first answer opens the staged response on the target's
--                              -- temporary file; true or nil, message, "env"
--   box.count                  -- answers written so far (0: nothing staged, nothing to deliver)
--   box:validate()             -- close the document, check it against the response XSD, fsync:
--                              -- true or nil, message, "env" (the stage is thrown away)
--   -- ... the caller commits its transaction (which records the answers) ...
--   box:deliver(reg, file_id)  -- rename into place (+ fsync of the directory) or copy to
--                              -- stdout, then mark the file delivered in the register
--   box:abort()                -- throw the stage away (safe at any point, and more than once)
--   outbox.replay(reg, file, target) --> answers written again (0: none) | nil, message, kind
--                              -- the stored answers of file written and delivered again,
--                              -- byte for byte (a file already processed, an answer batch
--                              -- committed but never delivered)
--
-- The order is the guarantee (docs/efaktura.md, "Atomicity"): nothing reaches the output path
-- before the response is valid and the register has committed; a crash after the commit
-- leaves the answers in the register, and replay writes the identical file from them.
local response = require("giro.efaktura.response")

local outbox = {}

local Box = {}
Box.__index = Box

function outbox.new(target, header)
  return setmetatable({ target = target, header = header, count = 0 }, Box)
end

-- The text of a writer's error (a validation error is a table with text or a list of errors).
local function detail(e)
  if type(e) == "table" then
    return tostring(e.text or (e[1] and e[1].message) or e.message or e[1])
  end
  return tostring(e)
end

function Box:open()
  local t, err, kind = self.target:open()
  if not t then return nil, err, kind end
  local w, werr = response.new({ fd = t:fd(), path = t:path(), name = self.target.name }, self.header)
  if not w then self.target:abort() return nil, tostring(werr), "env" end
  self.writer = w
  return true
end

function Box:answer(a)
  if not self.writer then
    local ok, err, kind = self:open()
    if not ok then return nil, "cannot write the response: " .. tostring(err), kind or "env" end
  end
  self.writer:answer(a)
  self.count = self.count + 1
  return true
end

function Box:validate()
  local w = self.writer
  if not w then return true end
  self.writer = nil
  local ok, e = w:commit()
  if not ok then
    self.target:abort()
    return nil, "the response failed validation against the response XSD (nothing written): " .. detail(e), "env"
  end
  self.validated = true
  return true
end

function Box:deliver(reg, file_id)
  if not self.validated then return true end
  local ok, err = self.target:commit()
  if not ok then return nil, err, "env" end
  self.validated = nil
  reg:mark_delivered(file_id)
  return true
end

function Box:abort()
  local w = self.writer
  self.writer, self.validated = nil, nil
  if w then w:abort() end
  self.target:abort()
end

--- Write file's stored answers again and deliver them.  Returns the number of answers (0: no
-- response is due: nothing written) or nil, message, kind.
function outbox.replay(reg, file, target)
  local box = outbox.new(target, { from_name = file.from_name, to_id = file.to_id, to_service = file.to_service })
  for row in reg:responses(file.id) do
    local ok, err, kind = box:answer(row)
    if not ok then box:abort() return nil, err, kind end
  end
  local ok, err, kind = box:validate()
  if not ok then return nil, err, kind end
  ok, err, kind = box:deliver(reg, file.id)
  if not ok then return nil, err, kind end
  if box.count == 0 then reg:mark_delivered(file.id) end
  return box.count
end

return outbox
