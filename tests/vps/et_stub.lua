--[[
et_stub.lua -- a stand-in for the ET:Legacy game's Lua API, enough to run the
etstats game scripts under the stock lua5.4 interpreter.

Usage from a scenario script (the pytest tests generate those):

    local stub = dofile("/abs/tests/vps/et_stub.lua")
    stub.cvars.fs_homepath = "/tmp/x"
    local mod = stub.load("/abs/vps_scripts/stats_discord_webhook.lua")
    stub.init()
    stub.set_gamestate(stub.GS.WARMUP); stub.advance(1000)
    stub.set_gamestate(stub.GS.PLAYING); stub.advance(1000)
    stub.cvars.g_currentRound = "1"           -- what G_LogExit does in stopwatch
    stub.set_gamestate(stub.GS.INTERMISSION); stub.advance(200)
    stub.write_stats_file(dir, "etl_frostbite", 1, false, "header\n")
    stub.run_until(function() ... end, 8)    -- frames + real sleeps, bounded
    stub.finish(ok)

Game time (levelTime) advances by `frame_ms` per frame; advance() runs frames
without real waiting, run_until() also sleeps a little between frames so that
background curl jobs get real time to finish.
]]

local stub = {
    cvars = {
        gamestate = "2",
        g_currentRound = "0",
        mapname = "etl_frostbite",
        fs_game = "legacy",
        fs_homepath = "/tmp",
        fs_basepath = "/tmp",
        net_port = "27960",
    },
    prints = {},
    level_time = 0,
    frame_ms = 50,
    GS = { PLAYING = 0, WARMUP_COUNTDOWN = 1, WARMUP = 2, INTERMISSION = 3 },
}

local function record(s)
    stub.prints[#stub.prints + 1] = s
    io.stdout:write("PRINT ", s)
    if s:sub(-1) ~= "\n" then
        io.stdout:write("\n")
    end
    io.stdout:flush()
end

-- The global the game provides.
et = {
    trap_Cvar_Get = function(name)
        return stub.cvars[name] or ""
    end,
    trap_Cvar_Set = function(name, value)
        stub.cvars[name] = tostring(value)
    end,
    G_Print = record,
    G_LogPrint = record,
    RegisterModname = function(name)
        stub.modname = name
    end,
    trap_Milliseconds = function()
        return stub.level_time
    end,
}

--- dofile a game script; returns what it returns (its test table).
function stub.load(path)
    stub.module = dofile(path)
    return stub.module
end

function stub.init()
    et_InitGame(stub.level_time, 12345, 0)
end

function stub.shutdown(restart)
    et_ShutdownGame(restart or 0)
end

function stub.set_gamestate(gs)
    stub.cvars.gamestate = tostring(gs)
end

function stub.frame()
    stub.level_time = stub.level_time + stub.frame_ms
    et_RunFrame(stub.level_time)
end

--- Run frames covering `ms` of game time, without real waiting.
function stub.advance(ms)
    local stop = stub.level_time + ms
    while stub.level_time < stop do
        stub.frame()
    end
end

function stub.sleep(seconds)
    os.execute("sleep " .. tostring(seconds))
end

--- Run frames (sleeping `pause` real seconds after each) until pred() is true
-- or `timeout` real seconds have passed. Returns pred()'s final truth.
function stub.run_until(pred, timeout, pause)
    local deadline = os.time() + math.ceil(timeout) + 1
    while os.time() < deadline do
        if pred() then
            return true
        end
        stub.frame()
        stub.sleep(pause or 0.01)
    end
    return pred() and true or false
end

--- Like run_until but without frames (after et_ShutdownGame).
function stub.wait_until(pred, timeout, pause)
    local deadline = os.time() + math.ceil(timeout) + 1
    while os.time() < deadline do
        if pred() then
            return true
        end
        stub.sleep(pause or 0.01)
    end
    return pred() and true or false
end

--- True when some recorded print contains `text` (plain search).
function stub.printed(text)
    for _, line in ipairs(stub.prints) do
        if line:find(text, 1, true) then
            return true
        end
    end
    return false
end

--- Names in a directory ending with suffix (hidden ones excluded).
function stub.list(dir, suffix)
    local out = {}
    local p = io.popen("ls -1 '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
    for line in p:lines() do
        if suffix == nil or line:sub(-#suffix) == suffix then
            out[#out + 1] = line
        end
    end
    p:close()
    return out
end

function stub.count(dir, suffix)
    return #stub.list(dir, suffix)
end

--- Write a file the way the stats module names it, stamped `unix` (default:
-- now, local time). Returns the file name.
function stub.write_stats_file(dir, map, round, endstats, content, unix)
    local name = string.format(
        "%s-%s-round-%d%s.txt",
        os.date("%Y-%m-%d-%H%M%S", unix or os.time()),
        map,
        round,
        endstats and "-endstats" or ""
    )
    stub.write_file(dir .. "/" .. name, content or "x\n")
    return name
end

function stub.write_file(path, content)
    local f = assert(io.open(path, "wb"))
    f:write(content)
    f:close()
end

--- End the scenario: one RESULT line the test reads, and the exit status.
function stub.finish(ok, detail)
    io.stdout:write("RESULT ", ok and "ok" or "fail", " ", tostring(detail or ""), "\n")
    io.stdout:flush()
    os.exit(ok and 0 or 1)
end

return stub
