--[[
stats_upload.lua -- ET:Legacy Lua module: push each round's stats files to the
stats bot's HTTP API (the "push" mode, for many servers; no SSH needed).

At the end of every round (the first frame of the intermission) it waits, on
later frames and without ever blocking the game, for the stats module to write
its stats file and endstats file into gamestats/, copies each into a private
queue directory and uploads it in the background:

    POST <API_URL>/api/ingest/stats
    X-Server-ID: <SERVER_ID>
    X-API-Key: <key>
    X-Filename: <file name>
    Content-Type: text/plain
    <the file's bytes>

Answers: 2xx (200 {"status": "success"|"duplicate"}) -> done, removed from the
queue; 429, 5xx or no answer at all -> kept and re-sent every RETRY_INTERVAL
seconds; any other 4xx -> logged with the API's reason and dropped (it can
never succeed: bad key 401, too large 413, bad name 400 ...).

INSTALL (details in README.md): copy this file AND etstats_common.lua into
the fs_game directory (e.g. ~/.etlegacy/legacy/), add the file name to
`lua_modules` in server.cfg AFTER the stats module(s), set the values below,
restart the map. curl must be installed.

CONFIGURATION: edit CONFIG below, or override a value per server instance
with a cvar named etstats_<key in lower case> (e.g. `set etstats_server_id
"eu1"`). API_KEY is the one exception: it is never read from a cvar (cvars
are visible to rcon users); put it here or, better, in API_KEY_FILE.

  SERVER_ID         our id for this game server, [a-z][a-z0-9_]{0,31}; the API
                    key belongs to it. Required.
  API_URL           base URL of the bot's API, e.g. https://stats.example.org
                    (no trailing /api/...). Required.
  API_KEY           the server's API key (from `python -m bot api-key create
                    SERVER_ID`). Never logged. Default "".
  API_KEY_FILE      a file whose first line is the key (chmod 600). Used when
                    API_KEY is empty.
  STATS_DIR         where the stats module writes. Default:
                    <fs_homepath>/<fs_game>/gamestats
  PREFIX_FILENAMES  true: upload as "SERVER_ID-<name>" (X-Filename). false.
  WAIT_SECONDS      how long to wait for the files after the round end. 10.
  SLACK_SECONDS     files stamped up to this long before the round end count. 10.
  SCAN_SECONDS      how often the stats directory is listed while waiting. 1.
  RETRY_DIR         the upload queue. Default:
                    <fs_homepath>/<fs_game>/etstats_queue/<SERVER_ID>-<net_port>-upload
                    (one per instance, created with mode 700).
  RETRY_CAP         at most this many files are queued; the oldest go. 50.
  RETRY_INTERVAL    seconds between re-send passes. Default 60.
  RETRY_BATCH       files re-sent per pass. Default 5.
  CURL              the curl command. Default "curl".
  CURL_MAX_TIME     seconds one upload may take. Default 10.
  COMMON_PATH       absolute path of etstats_common.lua if it is not next to
                    this file on the game's Lua path. Default "".

How the HTTP status comes back from a background job: for each queued file
<q> the job runs `curl -K <shared config> -K <q>.curl > <q>.status.tmp; mv
<q>.status.tmp <q>.status` (curl's write-out prints the status code, 000 when
there was no answer); a later frame reads <q>.status and acts on it. URL and
key live in the private shared config, the file name in <q>.curl: no value
ever reaches a shell command line.

Outside the game (tests), loading this file returns a table of its functions.
]]

local CONFIG = {
    SERVER_ID = "",
    API_URL = "",
    API_KEY = "",
    API_KEY_FILE = "",
    STATS_DIR = "",
    PREFIX_FILENAMES = false,
    WAIT_SECONDS = 10,
    SLACK_SECONDS = 10,
    SCAN_SECONDS = 1,
    RETRY_DIR = "",
    RETRY_CAP = 50,
    RETRY_INTERVAL = 60,
    RETRY_BATCH = 5,
    CURL = "curl",
    CURL_MAX_TIME = 10,
    COMMON_PATH = "",
}

local MODNAME = "etstats_upload"
local TAG = "etstats-upload"
local STATUS_CHECK_MS = 1000 -- how often finished uploads are looked for

--- Load etstats_common.lua (see its header for the search order).
local function load_common()
    if CONFIG.COMMON_PATH ~= "" then
        return dofile(CONFIG.COMMON_PATH)
    end
    local ok, mod = pcall(require, "etstats_common")
    if ok then
        return mod
    end
    local source = debug.getinfo(1, "S").source
    local dir = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)[/\\]")
    if dir then
        return dofile(dir .. "/etstats_common.lua")
    end
    error("etstats_common.lua not found: copy it next to this script or set COMMON_PATH")
end

local C = load_common()
local M = { common = C, CONFIG = CONFIG }

---------------------------------------------------------------------------
-- Pure helpers
---------------------------------------------------------------------------

--- The ingest endpoint for a base URL.
function M.ingest_url(base)
    return (base:gsub("/+$", "")) .. "/api/ingest/stats"
end

--- The shared, private curl config: URL and the server's credentials.
function M.shared_curl_config(api_url, server_id, api_key, max_time)
    return table.concat({
        "url = " .. C.curl_quote(M.ingest_url(api_url)),
        "header = " .. C.curl_quote("X-Server-ID: " .. server_id),
        "header = " .. C.curl_quote("X-API-Key: " .. api_key),
        'header = "Content-Type: text/plain"',
        "silent",
        "max-time = " .. string.format("%d", math.tointeger(max_time) or 10),
        'write-out = "%{http_code}"',
        "",
    }, "\n")
end

--- The per-file curl config: name header, body and where the answer goes.
function M.item_curl_config(filename, payload_path)
    return table.concat({
        "header = " .. C.curl_quote("X-Filename: " .. filename),
        "data-binary = " .. C.curl_quote("@" .. payload_path),
        "output = " .. C.curl_quote(payload_path .. ".resp"),
        "",
    }, "\n")
end

--- Shell command uploading one queued file and recording the status code.
function M.send_command(curl, shared_config, payload_path)
    local q = C.shell_quote
    local status = payload_path .. ".status"
    return string.format(
        "%s -K %s -K %s >%s 2>%s; mv -f %s %s",
        q(curl),
        q(shared_config),
        q(payload_path .. ".curl"),
        q(status .. ".tmp"),
        q(payload_path .. ".err"),
        q(status .. ".tmp"),
        q(status)
    )
end

--- What to do with an HTTP status: "done", "retry" or "drop".
-- 000 (no answer), 429 and 5xx are worth another try; other 4xx never work.
-- Anything else unexpected (1xx/3xx: a wrong API_URL?) is kept and retried,
-- bounded by RETRY_CAP.
function M.classify_status(code)
    if code >= 200 and code < 300 then
        return "done"
    end
    if code == 429 or code >= 500 or code == 0 then
        return "retry"
    end
    if code >= 400 then
        return "drop"
    end
    return "retry"
end

--- The file name stored in a queue item's name ("<id>__<name>.body").
function M.item_filename(path)
    return path:match("[^/]*$"):match("^%d+%-%d+%-%x+__(.+)%.body$")
end

--- Read the key from API_KEY or the first line of API_KEY_FILE.
function M.load_api_key(cfg)
    if cfg.API_KEY ~= "" then
        return cfg.API_KEY
    end
    if cfg.API_KEY_FILE == "" then
        return nil
    end
    local data = C.read_file(cfg.API_KEY_FILE)
    local key = data and data:match("^%s*([^\r\n]-)%s*[\r\n]") or (data and data:match("^%s*(.-)%s*$"))
    if key == nil or key == "" then
        return nil
    end
    return key
end

---------------------------------------------------------------------------
-- Game side
---------------------------------------------------------------------------

local app -- set by et_InitGame when the configuration is usable

local function cvar(name)
    return et.trap_Cvar_Get(name)
end

local function secrets()
    return { app.key }
end

--- Copy a stats file into the queue; handle_all() starts the upload.
local function enqueue_file(kind, name)
    local cfg = app.cfg
    local data = C.read_file(app.stats_dir .. "/" .. name)
    if not data then
        C.log(TAG, "cannot read " .. name .. " in " .. app.stats_dir)
        return
    end
    local upload_name = C.display_name(name, cfg.SERVER_ID, cfg.PREFIX_FILENAMES)
    local path = app.queue:add(data, upload_name)
    if path then
        C.log(TAG, "uploading " .. kind .. " " .. upload_name)
        app.outbox[#app.outbox + 1] = path
    end
end

--- Act on the status codes that finished background uploads left behind.
-- Returns true while some upload has not reported yet.
local function process_statuses()
    local pending = false
    local now = os.time()
    for _, path in ipairs(app.queue:items()) do
        local raw = C.read_file(path .. ".status")
        local name = M.item_filename(path) or path
        if raw then
            local code = tonumber(raw:match("%d+")) or 0
            local verdict = M.classify_status(code)
            if verdict == "done" then
                C.log(TAG, string.format("uploaded %s (HTTP %d)", name, code))
                app.queue:remove(path)
            elseif verdict == "drop" then
                local resp = C.read_file(path .. ".resp") or ""
                resp = C.redact(resp:sub(1, 300):gsub("[%c]", " "), secrets())
                C.log(TAG, string.format("dropped %s: HTTP %d %s", name, code, resp))
                app.queue:remove(path)
            else
                C.log(TAG, string.format("upload of %s failed (HTTP %03d), will retry", name, code))
                os.remove(path .. ".status")
                os.remove(path .. ".resp")
            end
        elseif app.queue:in_flight(path, now) then
            pending = true
        end
    end
    return pending
end

local function handle(ev)
    if ev.kind == "round_end" then
        C.log(TAG, string.format("round %d of %s ended, waiting for stats files", ev.info.round, ev.info.map))
    elseif ev.kind == "stats" or ev.kind == "endstats" then
        enqueue_file(ev.kind, ev.name)
    elseif ev.kind == "timeout" then
        if ev.missing_stats then
            C.log(TAG, "no stats file for " .. ev.info.map .. " within the wait; nothing uploaded")
        end
        if ev.missing_endstats then
            C.log(TAG, "no endstats file for " .. ev.info.map .. " within the wait")
        end
    end
end

-- Files queued during one frame go out in ONE background job, in order.
local function handle_all(events)
    for _, ev in ipairs(events) do
        handle(ev)
    end
    if #app.outbox > 0 then
        app.queue:launch(app.outbox)
        app.outbox = {}
        app.watching_status = true
    end
end

local function setup()
    local cfg = C.resolve_config(CONFIG, cvar, { API_KEY = true })
    if cfg.API_URL == "" then
        C.log(TAG, "API_URL is not set: disabled (see the top of stats_upload.lua)")
        return nil
    end
    if not C.valid_server_id(cfg.SERVER_ID) then
        C.log(TAG, "SERVER_ID '" .. cfg.SERVER_ID .. "' is not [a-z][a-z0-9_]{0,31}: disabled")
        return nil
    end
    local key = M.load_api_key(cfg)
    if not key then
        C.log(TAG, "no API key (set API_KEY or API_KEY_FILE): disabled")
        return nil
    end
    local stats_dir = cfg.STATS_DIR ~= "" and cfg.STATS_DIR or C.default_stats_dir(cvar)
    local retry_dir = cfg.RETRY_DIR ~= "" and cfg.RETRY_DIR or C.default_retry_dir(cvar, cfg.SERVER_ID, "upload")
    if not C.ensure_private_dir(retry_dir) then
        C.log(TAG, "cannot create queue directory " .. retry_dir .. ": disabled")
        return nil
    end
    local shared = retry_dir .. "/.curl-upload.conf"
    local ok = pcall(function()
        assert(C.write_file_atomic(shared, M.shared_curl_config(cfg.API_URL, cfg.SERVER_ID, key, cfg.CURL_MAX_TIME)))
    end)
    if not ok then
        -- the error text could quote the key: say only what to check
        C.log(TAG, "cannot write the curl config in " .. retry_dir .. " (check API_URL and the key): disabled")
        return nil
    end
    if not C.command_exists(cfg.CURL) then
        C.log(TAG, "warning: '" .. cfg.CURL .. "' not found; files stay queued in " .. retry_dir)
    end
    local a = { cfg = cfg, key = key, stats_dir = stats_dir, retry_dir = retry_dir, outbox = {} }
    a.queue = C.new_queue({
        dir = retry_dir,
        suffix = ".body",
        cap = cfg.RETRY_CAP,
        batch = cfg.RETRY_BATCH,
        stale = cfg.CURL_MAX_TIME * 2 + 20,
        tag = TAG,
        build_cmd = function(path)
            local filename = M.item_filename(path)
            if not filename then
                return nil
            end
            local wrote = pcall(function()
                assert(C.write_file_atomic(path .. ".curl", M.item_curl_config(filename, path)))
            end)
            return wrote and M.send_command(cfg.CURL, shared, path) or nil
        end,
    })
    a.watcher = C.new_watcher({
        get_cvar = cvar,
        list_names = function()
            return C.list_dir(stats_dir)
        end,
        wait_ms = cfg.WAIT_SECONDS * 1000,
        scan_ms = cfg.SCAN_SECONDS * 1000,
        slack = cfg.SLACK_SECONDS,
        server_id = cfg.SERVER_ID,
    })
    C.log(TAG, "v" .. C.VERSION .. " watching " .. stats_dir .. ", queue " .. retry_dir)
    return a
end

et_InitGame = C.guard(TAG, function(level_time, _random_seed, _restart)
    if et.RegisterModname then
        et.RegisterModname(MODNAME .. " " .. C.VERSION)
    end
    app = setup()
    if app then
        app.next_retry = level_time + app.cfg.RETRY_INTERVAL * 1000
        app.next_status = level_time + STATUS_CHECK_MS
        app.watching_status = false
    end
end)

et_RunFrame = C.guard(TAG, function(level_time)
    if not app then
        return
    end
    handle_all(app.watcher:frame(level_time))
    if app.watching_status and level_time >= app.next_status then
        app.next_status = level_time + STATUS_CHECK_MS
        app.watching_status = process_statuses()
    end
    if level_time >= app.next_retry then
        app.next_retry = level_time + app.cfg.RETRY_INTERVAL * 1000
        -- statuses left by the previous map's instance are handled here too
        process_statuses()
        local sent = app.queue:retry_pass(function(path)
            return C.read_file(path .. ".status") ~= nil
        end, secrets())
        if #sent > 0 then
            app.watching_status = true
        end
    end
end)

et_ShutdownGame = C.guard(TAG, function(_restart)
    if not app then
        return
    end
    handle_all(app.watcher:shutdown())
end)

--- For tests: the running state (nil before et_InitGame or when disabled).
function M.app()
    return app
end

return M
