-- busted output handler: the plain terminal output, then one line
-- "N passed, N failed, N skipped" that CI reads (errors count as failed).
return function(options)
  local busted = require("busted")
  local handler = require("busted.outputHandlers.plainTerminal")(options)
  busted.subscribe({ "suite", "end" }, function()
    local passed = #handler.successes
    local failed = #handler.failures + #handler.errors
    local skipped = #handler.pendings
    io.stdout:write(string.format("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped))
    io.stdout:flush()
    return nil, true
  end)
  return handler
end
