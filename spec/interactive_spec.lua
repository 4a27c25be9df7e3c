-- Issue 9, item 7: giro used interactively and as a co-process.
--  * Ctrl-C while Lua code runs in `giro repl` stops the chunk, keeps the session, and the
--    history is written (run in a real terminal: tmux).
--  * `giro ref check KIND -` answers each line as it comes, on a pipe.
local H = dofile("spec/fixtures/efaktura/helper.lua")
local q = H.sh_quote

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  return out
end

local function wait_for(pred, seconds)
  for _ = 1, math.floor(seconds / 0.05) do
    local v = pred()
    if v then return v end
    os.execute("sleep 0.05")
  end
  return nil
end

describe("giro repl in a terminal", function()
  local dir, sock
  before_each(function()
    dir = H.tmpdir()
    sock = "giro-spec-" .. dir:match("([^.]+)$")
  end)
  after_each(function()
    os.execute("tmux -L " .. q(sock) .. " kill-server >/dev/null 2>&1")
    H.rmdir(dir)
  end)

  local function tmux(args) return sh("tmux -L " .. q(sock) .. " " .. args) end
  local function screen() return tmux("capture-pane -p -t repl") end
  local function keys(...)
    local parts = {}
    for i, k in ipairs({ ... }) do parts[i] = q(k) end
    tmux("send-keys -t repl " .. table.concat(parts, " "))
  end

  it("Ctrl-C interrupts a running chunk, the session goes on, the history is written", function()
    local hist = dir .. "/history"
    local cmd = string.format("cd %s && GIRO_HISTORY=%s %s repl; echo EXIT=$? >%s; sleep 60",
      q(dir), q(hist), q(H.giro), q(dir .. "/exit"))
    tmux("new-session -d -s repl -x 100 -y 30 " .. q(cmd))
    assert.truthy(wait_for(function() return screen():find("giro>", 1, true) end, 20), screen())
    keys("n = 0; while true do n = n + 1 end", "Enter")
    os.execute("sleep 0.5")
    keys("C-c")
    assert.truthy(wait_for(function() return screen():find("interrupted (SIGINT)", 1, true) end, 20), screen())
    -- the session's state survived: n was counting when the chunk stopped
    keys("n > 0, 40 + 2", "Enter")
    assert.truthy(wait_for(function() return screen():find("true\t42", 1, true) or screen():find("true    42", 1, true) end, 20),
      screen())
    -- a second runaway chunk is stopped the same way (the first Ctrl-C was cleared)
    keys("while true do end", "Enter")
    os.execute("sleep 0.5")
    keys("C-c")
    assert.truthy(wait_for(function() return select(2, screen():gsub("interrupted %(SIGINT%)", "")) == 2 end, 20), screen())
    keys("C-d")
    assert.truthy(wait_for(function() return H.read(dir .. "/exit") end, 20), screen())
    assert.equal("EXIT=0\n", H.read(dir .. "/exit"))
    assert.equal("n = 0; while true do n = n + 1 end\nn > 0, 40 + 2\nwhile true do end\n", H.read(hist))
  end)
end)

describe("giro ref check KIND - as a co-process", function()
  it("writes each result as soon as its line arrives (the input pipe stays open)", function()
    local dir = H.tmpdir()
    -- 1234567890 -> Luhn (mod 10) check digit 3, by hand: 0*2 9 8*2 7 6*2 5 4*2 3 2*2 1 -> 47
    local script = string.format([[
cd %s && mkfifo in out
%s ref check kid10 - <in >out &
exec 3>in 4<out
echo 12345678903 >&3
if read -t 10 line <&4; then echo "got: $line"; else echo "no answer while the input is open"; fi
echo 12345678904 >&3
if read -t 10 line <&4; then echo "got: $line"; else echo "no answer while the input is open"; fi
exec 3>&-
wait $!; echo "rc=$?"
]], q(dir), q(H.giro))
    local out = sh("bash -c " .. q(script))
    H.rmdir(dir)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("got: 12345678903: ok", lines[1])
    assert.matches("^got: 12345678904: invalid: ", lines[2])
    assert.equal("rc=1", lines[3])
  end)
end)
