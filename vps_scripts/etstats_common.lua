--[[
etstats_common.lua -- code shared by stats_discord_webhook.lua and stats_upload.lua

Not a game module by itself: do NOT list it in `lua_modules`. The two scripts
load it with, in this order:
  1. the script's COMMON_PATH setting (an absolute path), when not empty;
  2. require("etstats_common"): ET:Legacy puts <fs_basepath>/<fs_game>/?.lua,
     <fs_basepath>/<fs_game>/lualibs/?.lua and the same two under fs_homepath on
     package.path, so copying this file next to the scripts in the fs_game
     directory (or into its lualibs/ folder) is enough;
  3. the directory of the script itself, when Lua knows it (outside the game).

Everything here is plain Lua 5.4 without game calls, so the tests can load it
(or the scripts, which return their own module table) with the stock `lua5.4`
interpreter. Shell commands are only ever built from paths this code generated,
each passed through shell_quote(); URLs, headers and keys go to curl through
config files (`curl -K file`), never through the command line, so they neither
reach a shell nor show up in `ps`.
]]

local M = {}

M.VERSION = "1.0.0"

-- gamestate cvar values, from the game's bg_public.h (gamestate_t). The Lua API
-- does not export all of them (there is no et.GS_PLAYING), so they are spelled
-- out here.
M.GS = {
    INITIALIZE = -1,
    PLAYING = 0,
    WARMUP_COUNTDOWN = 1,
    WARMUP = 2,
    INTERMISSION = 3,
    WAITING_FOR_PLAYERS = 4,
    RESET = 5,
}

-- Files that belong to one queued item: the payload itself plus these siblings.
local SIBLINGS = { ".inflight", ".err", ".status", ".status.tmp", ".resp", ".curl", ".tmp" }

---------------------------------------------------------------------------
-- Logging
---------------------------------------------------------------------------

--- Print one line to the server console/log (stderr outside the game).
function M.log(tag, msg)
    local line = string.format("[%s] %s\n", tag, msg)
    local game = rawget(_G, "et")
    if game and game.G_LogPrint then
        game.G_LogPrint(line)
    elseif game and game.G_Print then
        game.G_Print(line)
    else
        io.stderr:write(line)
    end
end

--- Wrap a game callback so a Lua error is logged instead of propagated: the
-- game stops a module's VM on an uncaught error, and a stats notifier must
-- never take itself (or anything else) down. Repeats of one error are logged
-- at most once a minute.
function M.guard(tag, fn)
    local last_logged = {}
    return function(...)
        local ok, err = pcall(fn, ...)
        if not ok then
            local msg = tostring(err)
            local now = os.time()
            if not last_logged[msg] or now - last_logged[msg] >= 60 then
                last_logged[msg] = now
                M.log(tag, "internal error: " .. msg)
            end
        end
    end
end

--- Replace every occurrence of the given secrets in text by "***".
function M.redact(text, secrets)
    text = tostring(text or "")
    for _, secret in ipairs(secrets or {}) do
        if secret and #secret >= 4 then
            local out, start = {}, 1
            while true do
                local i, j = text:find(secret, start, true)
                if not i then
                    break
                end
                out[#out + 1] = text:sub(start, i - 1)
                out[#out + 1] = "***"
                start = j + 1
            end
            out[#out + 1] = text:sub(start)
            text = table.concat(out)
        end
    end
    return text
end

--- The part of a Discord webhook URL that is a secret (the token after the id).
function M.webhook_token(url)
    return (tostring(url or ""):match("/webhooks/%d+/([^/?#]+)"))
end

---------------------------------------------------------------------------
-- Shell and curl quoting
---------------------------------------------------------------------------

--- Quote one word for /bin/sh: wrap in single quotes, turn ' into '\''.
-- Inside single quotes sh interprets nothing, so any byte but NUL is safe.
function M.shell_quote(s)
    s = tostring(s)
    if s:find("\0", 1, true) then
        error("NUL byte in a shell argument")
    end
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Quote a value for a curl config file (`curl -K`): double quotes, with
-- backslash and double quote escaped. CR/LF/NUL are refused: in a header they
-- would inject another header, and curl's config syntax is line based anyway.
function M.curl_quote(s)
    s = tostring(s)
    if s:find("[\r\n\0]") then
        error("line break or NUL in a curl config value")
    end
    return '"' .. s:gsub('[\\"]', "\\%0"):gsub("\t", "\\t") .. '"'
end

--- Run a shell command in the background: the game frame never waits for it.
-- stdin/stdout/stderr are detached so nothing lands on the server console.
function M.run_background(cmd)
    return os.execute("( " .. cmd .. " ) </dev/null >/dev/null 2>&1 &")
end

--- True when the command exists on PATH (or is an executable path).
function M.command_exists(name)
    local ok = os.execute("command -v " .. M.shell_quote(name) .. " >/dev/null 2>&1")
    return ok == true or ok == 0
end

---------------------------------------------------------------------------
-- JSON (RFC 8259) encoder
---------------------------------------------------------------------------

local OBJECT_MT = { __name = "etstats.object" }

--- An object with ordered keys: object({{"k1", v1}, {"k2", v2}}).
-- Plain Lua tables with string keys also encode as objects (keys sorted).
function M.object(pairs_list)
    return setmetatable({ pairs = pairs_list }, OBJECT_MT)
end

M.null = setmetatable({}, { __name = "etstats.null" })

--- Replace bytes that are not part of valid UTF-8 by U+FFFD. RFC 8259 §8.1
-- requires UTF-8 between systems and Discord rejects anything else, while
-- names in this game are raw client bytes (often Latin-1).
function M.sanitize_utf8(s)
    local out, i, n = {}, 1, #s
    while i <= n do
        local ok, bad = utf8.len(s, i)
        if ok then
            out[#out + 1] = s:sub(i)
            break
        end
        out[#out + 1] = s:sub(i, bad - 1)
        out[#out + 1] = "\u{FFFD}"
        i = bad + 1
    end
    return table.concat(out)
end

local SHORT_ESCAPES = {
    ['"'] = '\\"',
    ["\\"] = "\\\\",
    ["\b"] = "\\b",
    ["\f"] = "\\f",
    ["\n"] = "\\n",
    ["\r"] = "\\r",
    ["\t"] = "\\t",
}

local function escape_char(c)
    return SHORT_ESCAPES[c] or string.format("\\u%04x", c:byte())
end

--- A JSON string literal: escapes ", \ and every control byte below 0x20.
function M.json_string(s)
    s = M.sanitize_utf8(tostring(s))
    return '"' .. s:gsub('[\0-\31"\\]', escape_char) .. '"'
end

local encode

local function encode_number(x)
    if math.type(x) == "integer" then
        return string.format("%d", x)
    end
    if x ~= x or x == math.huge or x == -math.huge then
        return "null" -- JSON has no NaN or infinity
    end
    if x == math.floor(x) and math.abs(x) < 2 ^ 53 then
        return string.format("%d", math.tointeger(x))
    end
    return string.format("%.17g", x)
end

local function encode_table(t, depth)
    if getmetatable(t) == OBJECT_MT then
        local parts = {}
        for _, kv in ipairs(t.pairs) do
            parts[#parts + 1] = M.json_string(kv[1]) .. ":" .. encode(kv[2], depth + 1)
        end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    if t == M.null then
        return "null"
    end
    local n = #t
    if n > 0 or next(t) == nil then
        local parts = {}
        for i = 1, n do
            parts[i] = encode(t[i], depth + 1)
        end
        return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(t) do
        keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
        parts[#parts + 1] = M.json_string(k) .. ":" .. encode(t[k], depth + 1)
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

encode = function(v, depth)
    depth = depth or 0
    if depth > 64 then
        error("JSON nesting too deep")
    end
    local tv = type(v)
    if v == nil then
        return "null"
    elseif tv == "boolean" then
        return v and "true" or "false"
    elseif tv == "number" then
        return encode_number(v)
    elseif tv == "string" then
        return M.json_string(v)
    elseif tv == "table" then
        return encode_table(v, depth)
    end
    error("cannot encode a " .. tv .. " as JSON")
end

--- Encode a Lua value as JSON text.
function M.json_encode(v)
    return encode(v, 0)
end

---------------------------------------------------------------------------
-- Stats file names (stats-format.md §1)
---------------------------------------------------------------------------

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
    return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

local function valid_date_time(y, mo, d, hh, mi, ss)
    if y < 1 or mo < 1 or mo > 12 or d < 1 then
        return false
    end
    local dim = DAYS_IN_MONTH[mo]
    if mo == 2 and is_leap(y) then
        dim = 29
    end
    return d <= dim and hh <= 23 and mi <= 59 and ss <= 59
end

--- Parse a stats/endstats file name; nil when it is not one.
-- Mirrors the anchored pattern of stats-format.md §1 without splitting on '-':
-- the timestamp is fixed width, the `-round-N(-endstats)?.txt` tail is anchored
-- at the end and the map is everything in between (greedy, last -round- wins).
function M.parse_name(name)
    if type(name) ~= "string" or name == "" or #name > 255 then
        return nil
    end
    if name:find("[/\\\0]") or name:find("..", 1, true) then
        return nil
    end
    local server, rest = nil, name
    -- Server ids start with a letter and hold no dash, so "no prefix" is
    -- exactly "starts with four digits and a dash".
    if not name:find("^%d%d%d%d%-") then
        server, rest = name:match("^([a-z][a-z0-9_]*)%-(.*)$")
        if not server or #server > 32 then
            return nil
        end
    end
    local y, mo, d, hh, mi, ss, tail =
        rest:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)%-(%d%d)(%d%d)(%d%d)%-(.+)$")
    if not y then
        return nil
    end
    local map, round = tail:match("^(.+)%-round%-([12])%-endstats%.txt$")
    local endstats = map ~= nil
    if not map then
        map, round = tail:match("^(.+)%-round%-([12])%.txt$")
    end
    if not map or not map:find("^[A-Za-z0-9_%-]+$") then
        return nil
    end
    local t = {
        year = tonumber(y),
        month = tonumber(mo),
        day = tonumber(d),
        hour = tonumber(hh),
        min = tonumber(mi),
        sec = tonumber(ss),
    }
    if not valid_date_time(t.year, t.month, t.day, t.hour, t.min, t.sec) then
        return nil
    end
    return {
        name = name,
        server = server,
        map = map,
        round = tonumber(round),
        endstats = endstats,
        stamp = y .. mo .. d .. hh .. mi .. ss, -- sortable
        time = t,
    }
end

--- Unix time of a parsed name's timestamp (the server's local wall clock).
function M.name_unix(parsed)
    local t = parsed.time
    return os.time({
        year = t.year,
        month = t.month,
        day = t.day,
        hour = t.hour,
        min = t.min,
        sec = t.sec,
    })
end

local function newer(a, b)
    if a.stamp ~= b.stamp then
        return a.stamp > b.stamp
    end
    return a.name > b.name
end

--- Pick the newest stats and endstats file of a finished round.
-- want = {map=, round=1|2|nil, since=unix, exclude={[name]=true}, server_id=}
-- A name qualifies when its map equals want.map (case-insensitive), it was
-- written at/after want.since and it is not excluded. Names of the expected
-- round win; names of the other round are a fallback, in case a gametype
-- numbers rounds differently from what we computed. Returns
-- {stats = name|nil, endstats = name|nil}.
function M.choose_files(names, want)
    local best = {}
    local map = tostring(want.map or ""):lower()
    local exclude = want.exclude or {}
    for _, name in ipairs(names) do
        local p = M.parse_name(name)
        if
            p
            and not exclude[name]
            and (p.server == nil or p.server == want.server_id)
            and p.map:lower() == map
            and M.name_unix(p) >= (want.since or 0)
        then
            local kind = p.endstats and "endstats" or "stats"
            local tier = (want.round == nil or p.round == want.round) and 1 or 2
            local slot = kind .. tier
            if not best[slot] or newer(p, best[slot]) then
                best[slot] = p
            end
        end
    end
    local function pick(kind)
        local p = best[kind .. 1] or best[kind .. 2]
        return p and p.name or nil
    end
    return { stats = pick("stats"), endstats = pick("endstats") }
end

--- The name announced/uploaded for a module-written file.
function M.display_name(name, server_id, prefix)
    if prefix and server_id and server_id ~= "" and not name:find("^[a-z]") then
        return server_id .. "-" .. name
    end
    return name
end

---------------------------------------------------------------------------
-- Files and directories
---------------------------------------------------------------------------

--- Names in a directory (hidden ones included, . and .. excluded); {} if missing.
function M.list_dir(dir)
    local names = {}
    local p = io.popen("ls -1A " .. M.shell_quote(dir) .. " 2>/dev/null")
    if not p then
        return names
    end
    for line in p:lines() do
        names[#names + 1] = line
    end
    p:close()
    return names
end

function M.read_file(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local data = f:read("a")
    f:close()
    return data
end

--- Write via a temporary file and rename, so readers never see half a file.
function M.write_file_atomic(path, data)
    local tmp = path .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then
        return nil, err
    end
    local ok, werr = f:write(data)
    f:close()
    if not ok then
        os.remove(tmp)
        return nil, werr
    end
    local renamed, rerr = os.rename(tmp, path)
    if not renamed then
        os.remove(tmp)
        return nil, rerr
    end
    return true
end

--- mkdir -p, then make the directory private: it holds curl configs with the
-- webhook token / API key. Blocking, so only called at init.
function M.ensure_private_dir(path)
    local q = M.shell_quote(path)
    local ok = os.execute("mkdir -p " .. q .. " && chmod 700 " .. q)
    return ok == true or ok == 0
end

--- Characters safe in a directory name component.
function M.safe_component(s)
    s = tostring(s or ""):gsub("[^A-Za-z0-9_.-]", "_")
    if s == "" or s:find("^%.") then
        s = "_" .. s
    end
    return s
end

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

local TRUE_WORDS = { ["1"] = true, ["true"] = true, ["yes"] = true, ["on"] = true }

--- Defaults from the top of a script, overridden by non-empty cvars named
-- etstats_<key in lower case> (so one copy of a script can serve several
-- server instances, each with `set etstats_server_id ...` in its own config).
-- Keys listed in no_cvar (secrets) are never read from cvars.
function M.resolve_config(defaults, get_cvar, no_cvar)
    local cfg = {}
    for key, default in pairs(defaults) do
        local value = default
        local raw
        if get_cvar and not (no_cvar and no_cvar[key]) then
            raw = get_cvar("etstats_" .. key:lower())
        end
        if type(raw) == "string" and raw ~= "" then
            if type(default) == "number" then
                value = tonumber(raw) or default
            elseif type(default) == "boolean" then
                value = TRUE_WORDS[raw:lower()] == true
            else
                value = raw
            end
        end
        cfg[key] = value
    end
    return cfg
end

--- Where the stats module writes: <fs_homepath>/<fs_game>/gamestats (the
-- module opens "gamestats\<name>" through the game's file system, which
-- writes under the home path of the running mod).
function M.default_stats_dir(get_cvar)
    local home = get_cvar("fs_homepath")
    if home == nil or home == "" then
        home = get_cvar("fs_basepath") or "."
    end
    local game = get_cvar("fs_game")
    if game == nil or game == "" then
        game = "legacy"
    end
    return home .. "/" .. game .. "/gamestats"
end

--- Per-instance retry directory, so two servers on one box never share one.
function M.default_retry_dir(get_cvar, server_id, kind)
    local home = get_cvar("fs_homepath")
    if home == nil or home == "" then
        home = get_cvar("fs_basepath") or "."
    end
    local game = get_cvar("fs_game")
    if game == nil or game == "" then
        game = "legacy"
    end
    local port = get_cvar("net_port")
    if port == nil or port == "" then
        port = "27960"
    end
    local id = (server_id ~= nil and server_id ~= "") and server_id or "noid"
    return string.format(
        "%s/%s/etstats_queue/%s-%s-%s",
        home,
        game,
        M.safe_component(id),
        M.safe_component(port),
        kind
    )
end

function M.valid_server_id(id)
    return type(id) == "string" and #id <= 32 and id:find("^[a-z][a-z0-9_]*$") ~= nil
end

---------------------------------------------------------------------------
-- Round end detection
---------------------------------------------------------------------------

--- Fresh state for observe_gamestate().
function M.new_round_state()
    return { prev = nil, seen_playing = false, playing_since = nil }
end

--- Feed one frame's gamestate; returns the number (1|2) of the round that
-- just ended when this frame is the first one of an intermission that follows
-- play, nil otherwise.
--
-- Why the round is computed from g_currentRound like this: the game's
-- G_LogExit flips g_currentRound (stopwatch) *before* the intermission starts,
-- so during the intermission it reads 1 after round 1 and 0 after round 2.
-- The stats module names its files with exactly `g_currentRound == 0 and 2 or
-- 1` read during the intermission, and our names must match its names. (Other
-- gametypes keep 0, so the module writes "round-2" there; so do we.)
function M.observe_gamestate(state, gamestate, current_round, now_unix)
    local ended
    if gamestate == M.GS.PLAYING then
        if not state.seen_playing then
            state.playing_since = now_unix
        end
        state.seen_playing = true
    elseif gamestate == M.GS.INTERMISSION then
        if state.prev ~= M.GS.INTERMISSION and state.seen_playing then
            ended = (current_round == 0) and 2 or 1
            state.seen_playing = false
        end
    end
    state.prev = gamestate
    return ended
end

---------------------------------------------------------------------------
-- Finder: after a round end, look for the new files on later frames
---------------------------------------------------------------------------

local Finder = {}
Finder.__index = Finder

--- opts: list_names (function returning the stats dir listing), wait_ms,
-- scan_ms, slack (seconds), server_id.
function M.new_finder(opts)
    return setmetatable({ opts = opts, active = false, announced = {} }, Finder)
end

--- Start waiting for the files of the round that ended at round_end_unix.
function Finder:start(level_time, round_info)
    self.info = round_info
    self.found = {}
    self.active = true
    self.deadline = level_time + self.opts.wait_ms
    self.next_scan = level_time + math.min(self.opts.scan_ms, self.opts.wait_ms)
end

function Finder:_scan(round)
    local info = self.info
    local picked = M.choose_files(self.opts.list_names(), {
        map = info.map,
        round = round,
        since = info.since,
        exclude = self.announced,
        server_id = self.opts.server_id,
    })
    local events = {}
    for _, kind in ipairs({ "stats", "endstats" }) do
        local name = picked[kind]
        if name and not self.found[kind] then
            self.found[kind] = name
            self.announced[name] = true
            events[#events + 1] = { kind = kind, name = name, info = info }
        end
    end
    return events
end

local function timeout_event(self)
    return {
        kind = "timeout",
        info = self.info,
        missing_stats = not self.found.stats,
        missing_endstats = not self.found.endstats,
    }
end

--- Called every frame; returns a list of events (possibly empty).
-- Events: {kind="stats"|"endstats", name=, info=} and, once the wait is
-- over with something missing, {kind="timeout", missing_stats=, ...}.
function Finder:poll(level_time)
    if not self.active or level_time < self.next_scan then
        return {}
    end
    self.next_scan = math.min(level_time + self.opts.scan_ms, self.deadline)
    local events = self:_scan(self.info.round)
    if self.found.stats and self.found.endstats then
        self.active = false
    elseif level_time >= self.deadline then
        self.active = false
        events[#events + 1] = timeout_event(self)
    end
    return events
end

--- Last look when the game shuts down mid-wait.
function Finder:finish()
    if not self.active then
        return {}
    end
    local events = self:_scan(self.info.round)
    self.active = false
    if not (self.found.stats and self.found.endstats) then
        events[#events + 1] = timeout_event(self)
    end
    return events
end

--- One scan for a round cut short (map change before intermission): the
-- stats module then writes its file from et_ShutdownGame.
function Finder:scan_once(round_info)
    self.info = round_info
    self.found = {}
    return self:_scan(nil)
end

---------------------------------------------------------------------------
-- Round watcher: gamestate tracking + finder, driven by the game callbacks
---------------------------------------------------------------------------

local Watcher = {}
Watcher.__index = Watcher

--- opts: get_cvar, list_names, wait_ms, scan_ms, slack, server_id, now.
function M.new_watcher(opts)
    local w = setmetatable({ opts = opts, state = M.new_round_state() }, Watcher)
    w.now = opts.now or os.time
    w.finder = M.new_finder(opts)
    return w
end

--- One game frame: returns the finder's events plus {kind="round_end"}.
function Watcher:frame(level_time)
    local get = self.opts.get_cvar
    local gs = tonumber(get("gamestate"))
    local events = {}
    local now = self.now()
    local ended = M.observe_gamestate(self.state, gs, tonumber(get("g_currentRound")) or 0, now)
    if ended then
        local info = {
            map = get("mapname") or "",
            round = ended,
            round_end_unix = now,
            since = now - self.opts.slack,
        }
        self.finder:start(level_time, info)
        events[1] = { kind = "round_end", info = info }
    end
    for _, ev in ipairs(self.finder:poll(level_time)) do
        events[#events + 1] = ev
    end
    return events
end

--- Game shutdown: finish a pending wait, or look once for the file of a
-- round that a map change cut short.
function Watcher:shutdown()
    if self.finder.active then
        return self.finder:finish()
    end
    if self.state.seen_playing then
        local now = self.now()
        return self.finder:scan_once({
            map = self.opts.get_cvar("mapname") or "",
            round = nil,
            round_end_unix = now,
            since = (self.state.playing_since or now) - self.opts.slack,
        })
    end
    return {}
end

---------------------------------------------------------------------------
-- Queue: a directory of payloads, sent by background jobs, kept until done
---------------------------------------------------------------------------

local Queue = {}
Queue.__index = Queue

local counter = 0

--- A new item id: sortable by creation time, unique across VM restarts.
function M.new_id(now)
    counter = counter + 1
    return string.format("%012d-%06d-%04x", now or os.time(), counter, math.random(0, 0xffff))
end

--- opts: dir, suffix (".json"), cap, batch, stale (seconds an in-flight mark
-- is trusted), build_cmd(path) -> shell command sending one item, tag.
function M.new_queue(opts)
    return setmetatable({ opts = opts }, Queue)
end

--- Payload paths, oldest first.
function Queue:items()
    local suffix = self.opts.suffix
    local out = {}
    for _, name in ipairs(M.list_dir(self.opts.dir)) do
        if name:sub(1, 1) ~= "." and name:sub(-#suffix) == suffix then
            out[#out + 1] = name
        end
    end
    table.sort(out)
    for i, name in ipairs(out) do
        out[i] = self.opts.dir .. "/" .. name
    end
    return out
end

--- Store a payload; name_hint (a validated file name) is kept in the item name.
function Queue:add(data, name_hint)
    local base = M.new_id()
    if name_hint then
        base = base .. "__" .. name_hint
    end
    local path = self.opts.dir .. "/" .. base .. self.opts.suffix
    local ok, err = M.write_file_atomic(path, data)
    if not ok then
        M.log(self.opts.tag, "cannot write " .. path .. ": " .. tostring(err))
        return nil
    end
    self:enforce_cap()
    return path
end

--- Remove an item and its sibling files.
function Queue.remove(_, path)
    os.remove(path)
    for _, ext in ipairs(SIBLINGS) do
        os.remove(path .. ext)
    end
end

--- Keep at most cap items, dropping the oldest. Returns the dropped paths.
function Queue:enforce_cap()
    local items = self:items()
    local dropped = {}
    local excess = #items - self.opts.cap
    for i = 1, excess do
        self:remove(items[i])
        dropped[#dropped + 1] = items[i]
        M.log(self.opts.tag, "retry queue full (cap " .. self.opts.cap .. "), dropped " .. items[i])
    end
    return dropped
end

--- True when a background job for this item started less than `stale`
-- seconds ago (the mark holds the start time; jobs remove it when done).
function Queue:in_flight(path, now)
    local mark = M.read_file(path .. ".inflight")
    if not mark then
        return false
    end
    local started = tonumber(mark:match("%d+"))
    return started ~= nil and (now or os.time()) - started < self.opts.stale
end

--- Start ONE background job that sends the items one after the other (keeps
-- stats before endstats, and never floods the endpoint).
function Queue:launch(paths)
    if #paths == 0 then
        return
    end
    local now = os.time()
    local cmds = {}
    for _, path in ipairs(paths) do
        local f = io.open(path .. ".inflight", "wb")
        if f then
            f:write(tostring(now))
            f:close()
        end
        local cmd = self.opts.build_cmd(path)
        if cmd then
            cmds[#cmds + 1] = "{ " .. cmd .. "; }; rm -f " .. M.shell_quote(path .. ".inflight")
        else
            os.remove(path .. ".inflight")
        end
    end
    if #cmds > 0 then
        M.run_background(table.concat(cmds, "; "))
    end
end

--- Re-send up to `batch` oldest items that are not in flight. skip(path) lets
-- the caller hold items back. Logs the last error of each retried item.
function Queue:retry_pass(skip, secrets)
    local now = os.time()
    local todo = {}
    for _, path in ipairs(self:items()) do
        if #todo >= self.opts.batch then
            break
        end
        if not self:in_flight(path, now) and not (skip and skip(path)) then
            local err = M.read_file(path .. ".err")
            local last = ""
            if err and err:find("%S") then
                last = " (last error: " .. M.redact((err:gsub("%s+$", "")), secrets) .. ")"
            end
            M.log(self.opts.tag, "retrying " .. path:match("[^/]*$") .. last)
            todo[#todo + 1] = path
        end
    end
    self:launch(todo)
    return todo
end

return M
