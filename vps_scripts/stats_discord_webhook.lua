--[[
stats_discord_webhook.lua -- ET:Legacy Lua module: tell the stats bot, through
a Discord webhook in its control channel, that a round's stats files exist.

At the end of every round (the first frame of the intermission) it waits, on
later frames and without ever blocking the game, for the stats module to write
its stats file and endstats file into gamestats/, then posts one webhook
message per file:

    {"username": "<WEBHOOK_USERNAME>", "content": "📊 `<stats file name>`"}
    {"username": "<WEBHOOK_USERNAME>", "content": "🏆 `<endstats file name>`"}

The bot downloads the named file over SFTP. If no stats file shows up within
WAIT_SECONDS it posts a STATS_READY message instead (an embed with server_id,
map, round, round_end, round_end_unix) so the bot polls that server at once.

INSTALL (details in README.md): copy this file AND etstats_common.lua into
the fs_game directory (e.g. ~/.etlegacy/legacy/), add the file name to
`lua_modules` in server.cfg AFTER the stats module(s), set the values below
(or cvars, see next), restart the map. curl must be installed.

CONFIGURATION: edit CONFIG below, or override any value per server instance
with a cvar named etstats_<key in lower case> in that instance's config, e.g.
    set etstats_server_id "eu1"
    set etstats_webhook_url "https://discord.com/api/webhooks/123/abc"
(use `set`, not `sets`/`seta`: only rcon users can read plain cvars.)

  SERVER_ID         our id for this game server, [a-z][a-z0-9_]{0,31}, as in
                    the bot's servers.json. Used in STATS_READY, the optional
                    name prefix and the retry directory name.
  WEBHOOK_URL       the Discord webhook URL (https://discord.com/api/webhooks/
                    <id>/<token>). "?wait=true" is added. Never logged.
  WEBHOOK_USERNAME  the name the messages are posted under. Default "ET Stats".
  STATS_DIR         where the stats module writes. Default:
                    <fs_homepath>/<fs_game>/gamestats
  PREFIX_FILENAMES  true: announce "SERVER_ID-<name>" instead of the module's
                    name. Default false.
  WAIT_SECONDS      how long to wait for the files after the round end. 10.
  SLACK_SECONDS     files stamped up to this long before the round end still
                    count (clocks, endstats written "early"). Default 10.
  SCAN_SECONDS      how often the stats directory is listed while waiting. 1.
  RETRY_DIR         where undelivered messages wait. Default:
                    <fs_homepath>/<fs_game>/etstats_queue/<SERVER_ID>-<net_port>-webhook
                    (one per instance, created with mode 700).
  RETRY_CAP         at most this many messages are kept; the oldest go. 50.
  RETRY_INTERVAL    seconds between re-send passes. Default 60.
  RETRY_BATCH       messages re-sent per pass (Discord rate limits). 5.
  CURL              the curl command. Default "curl".
  CURL_MAX_TIME     seconds one HTTP request may take. Default 10.
  COMMON_PATH       absolute path of etstats_common.lua if it is not next to
                    this file on the game's Lua path. Default "".

How a message is sent: the JSON payload is first written to RETRY_DIR, then a
background shell job (`curl --fail --silent --show-error --max-time 10 -K
<config> --data-binary @<payload> && rm -f <payload>`) posts it; the URL lives
in a private curl config file, never on a command line. Whatever is left in
RETRY_DIR (HTTP error, Discord down, no network) is re-sent every
RETRY_INTERVAL seconds, also by the next map's instance of this script.

Outside the game (tests), loading this file returns a table of its functions.
]]

local CONFIG = {
    SERVER_ID = "",
    WEBHOOK_URL = "",
    WEBHOOK_USERNAME = "ET Stats",
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

local MODNAME = "etstats_webhook"
local TAG = "etstats-webhook"
local STATS_EMOJI = "\u{1F4CA}" -- 📊
local ENDSTATS_EMOJI = "\u{1F3C6}" -- 🏆

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
-- Pure payload builders
---------------------------------------------------------------------------

--- Format (a): one message naming one file.
function M.file_payload(username, kind, name)
    local emoji = kind == "endstats" and ENDSTATS_EMOJI or STATS_EMOJI
    return C.json_encode(C.object({
        { "username", username },
        { "content", emoji .. " `" .. name .. "`" },
    }))
end

--- Format (b): STATS_READY when the stats file could not be found in time.
function M.stats_ready_payload(username, server_id, map, round, round_end_unix)
    local function field(name, value)
        return C.object({ { "name", name }, { "value", value }, { "inline", true } })
    end
    local embed = C.object({
        { "title", "STATS_READY" },
        {
            "fields",
            {
                field("server_id", server_id),
                field("map", map),
                field("round", tostring(round)),
                field("round_end", os.date("%Y-%m-%d %H:%M:%S", round_end_unix)),
                field("round_end_unix", string.format("%d", round_end_unix)),
            },
        },
    })
    return C.json_encode(C.object({
        { "username", username },
        { "content", "STATS_READY" },
        { "embeds", { embed } },
    }))
end

--- The webhook URL with ?wait=true (Discord then answers only once stored).
function M.wait_url(url)
    if url:find("[?&]wait=") then
        return url
    end
    return url .. (url:find("?", 1, true) and "&" or "?") .. "wait=true"
end

--- Contents of the private curl config holding the URL (kept off the
-- command line: it carries the webhook token).
function M.curl_config(url)
    return table.concat({
        "url = " .. C.curl_quote(M.wait_url(url)),
        'header = "Content-Type: application/json"',
        'output = "/dev/null"',
        "",
    }, "\n")
end

--- Shell command that posts one payload and deletes it only on success.
-- Only generated paths are interpolated, each shell-quoted.
function M.send_command(curl, max_time, config_path, payload_path)
    local q = C.shell_quote
    return string.format(
        "%s --fail --silent --show-error --max-time %d -K %s --data-binary @%s 2>%s && rm -f %s %s",
        q(curl),
        math.tointeger(max_time) or 10,
        q(config_path),
        q(payload_path),
        q(payload_path .. ".err"),
        q(payload_path),
        q(payload_path .. ".err")
    )
end

---------------------------------------------------------------------------
-- Game side
---------------------------------------------------------------------------

local app -- set by et_InitGame when the configuration is usable

local function cvar(name)
    return et.trap_Cvar_Get(name)
end

local function secrets()
    return { app.cfg.WEBHOOK_URL, C.webhook_token(app.cfg.WEBHOOK_URL) }
end

-- Payloads queued during one frame go out in ONE background job, in order
-- (stats before endstats when both are found in the same scan).
local function enqueue(payload, what)
    local path = app.queue:add(payload)
    if path then
        C.log(TAG, "posting " .. what)
        app.outbox[#app.outbox + 1] = path
    end
end

local function handle(ev)
    local cfg = app.cfg
    if ev.kind == "round_end" then
        C.log(TAG, string.format("round %d of %s ended, waiting for stats files", ev.info.round, ev.info.map))
    elseif ev.kind == "stats" or ev.kind == "endstats" then
        local shown = C.display_name(ev.name, cfg.SERVER_ID, cfg.PREFIX_FILENAMES)
        enqueue(M.file_payload(cfg.WEBHOOK_USERNAME, ev.kind, shown), ev.kind .. " " .. shown)
    elseif ev.kind == "timeout" then
        if ev.missing_endstats then
            C.log(TAG, "no endstats file for " .. ev.info.map .. " within the wait")
        end
        if ev.missing_stats then
            local info = ev.info
            local sid = cfg.SERVER_ID ~= "" and cfg.SERVER_ID or "unknown"
            enqueue(
                M.stats_ready_payload(cfg.WEBHOOK_USERNAME, sid, info.map, info.round, info.round_end_unix),
                "STATS_READY (no stats file found within " .. cfg.WAIT_SECONDS .. " s)"
            )
        end
    end
end

local function handle_all(events)
    for _, ev in ipairs(events) do
        handle(ev)
    end
    if #app.outbox > 0 then
        app.queue:launch(app.outbox)
        app.outbox = {}
    end
end

local function setup()
    local cfg = C.resolve_config(CONFIG, cvar)
    if cfg.WEBHOOK_URL == "" then
        C.log(TAG, "WEBHOOK_URL is not set: disabled (see the top of stats_discord_webhook.lua)")
        return nil
    end
    if not C.valid_server_id(cfg.SERVER_ID) then
        C.log(TAG, "warning: SERVER_ID '" .. cfg.SERVER_ID .. "' is not [a-z][a-z0-9_]{0,31}; prefix disabled")
        cfg.PREFIX_FILENAMES = false
    end
    local stats_dir = cfg.STATS_DIR ~= "" and cfg.STATS_DIR or C.default_stats_dir(cvar)
    local retry_dir = cfg.RETRY_DIR ~= "" and cfg.RETRY_DIR or C.default_retry_dir(cvar, cfg.SERVER_ID, "webhook")
    if not C.ensure_private_dir(retry_dir) then
        C.log(TAG, "cannot create retry directory " .. retry_dir .. ": disabled")
        return nil
    end
    local config_path = retry_dir .. "/.curl-webhook.conf"
    local ok, err = pcall(function()
        assert(C.write_file_atomic(config_path, M.curl_config(cfg.WEBHOOK_URL)))
    end)
    if not ok then
        C.log(TAG, "cannot write the curl config in " .. retry_dir .. ": disabled (" .. tostring(err) .. ")")
        return nil
    end
    if not C.command_exists(cfg.CURL) then
        C.log(TAG, "warning: '" .. cfg.CURL .. "' not found; messages stay queued in " .. retry_dir)
    end
    local a = { cfg = cfg, stats_dir = stats_dir, retry_dir = retry_dir, outbox = {} }
    a.queue = C.new_queue({
        dir = retry_dir,
        suffix = ".json",
        cap = cfg.RETRY_CAP,
        batch = cfg.RETRY_BATCH,
        stale = cfg.CURL_MAX_TIME * 2 + 20,
        tag = TAG,
        build_cmd = function(path)
            return M.send_command(cfg.CURL, cfg.CURL_MAX_TIME, config_path, path)
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
    end
end)

et_RunFrame = C.guard(TAG, function(level_time)
    if not app then
        return
    end
    handle_all(app.watcher:frame(level_time))
    if level_time >= app.next_retry then
        app.next_retry = level_time + app.cfg.RETRY_INTERVAL * 1000
        app.queue:retry_pass(nil, secrets())
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
