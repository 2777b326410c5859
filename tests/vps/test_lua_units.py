"""The pure parts of the Lua scripts, called through their module tables.

Each test runs one lua5.4 process that loads the scripts outside the game (no
`et` global: they just return their functions) and prints one JSON value per
`emit()`; Python decodes and checks them. The JSON encoder itself is checked
with Python's json module, independently of what it prints.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.vps.conftest import (
    COMMON_LUA,
    UPLOAD_LUA,
    WEBHOOK_LUA,
    LuaRunner,
    load_notify_module,
    lua_str,
)

PRELUDE = f"""
local W = dofile({lua_str(WEBHOOK_LUA)})
local U = dofile({lua_str(UPLOAD_LUA)})
local C = dofile({lua_str(COMMON_LUA)})
local function emit(v) print("OUT " .. C.json_encode(v)) end
"""


async def lua_values(lua: LuaRunner, body: str) -> list[object]:
    run = await lua.run(PRELUDE + body + "\nprint('RESULT ok')\n")
    assert run.ok, run.output
    return [json.loads(line) for line in run.lines("OUT ")]


JSON_STRINGS = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "".join(chr(c) for c in range(0x20)),  # every control byte
    "del \x7f stays",
    "^1ET^7:^4Legacy ^7Competitive #1",
    "caf\u00e9 \u4e2d\u6587 \U0001f4ca \U0001f3c6",
    "ends with backslash \\",
    "nul\x00inside",
]


async def test_json_string_escaping_roundtrips(lua: LuaRunner) -> None:
    lines = "\n".join(f"print('JSON ' .. C.json_string({lua_str(s)}))" for s in JSON_STRINGS)
    run = await lua.run(PRELUDE + lines + "\nprint('RESULT ok')\n")
    assert run.ok, run.output
    encoded = run.lines("JSON ")
    assert [json.loads(e) for e in encoded] == JSON_STRINGS
    # RFC 8259: no raw control byte may remain inside a string literal
    for text in encoded:
        assert not re.search(r"[\x00-\x1f]", text)
    assert encoded[3].startswith('"\\u0000\\u0001')
    assert "\\b\\t\\n\\u000b\\f\\r" in encoded[3]


async def test_json_invalid_utf8_becomes_replacement_char(lua: LuaRunner) -> None:
    raw = b"Latin-1 caf\xe9 \xff\xfe and overlong \xc0\xaf ok \xe2\x82\xac"
    values = await lua_values(lua, f"emit({lua_str(raw)})")
    assert values == [raw.decode("utf-8", "replace")]


async def test_json_encode_structures(lua: LuaRunner) -> None:
    values = await lua_values(
        lua,
        """
emit(C.object({{"b", 1}, {"a", {true, false, C.null}}, {"c", 2.5}, {"d", -7}}))
emit({})
emit({z = "last", a = "first"})
emit(0/0)
""",
    )
    assert values == [
        {"b": 1, "a": [True, False, None], "c": 2.5, "d": -7},
        [],
        {"a": "first", "z": "last"},
        None,
    ]


async def test_payload_builders(lua: LuaRunner) -> None:
    values = await lua_values(
        lua,
        """
print("RAW " .. W.file_payload("ET Stats", "stats", "2025-03-03-214223-etl_frostbite-round-1.txt"))
emit(W.file_payload("u", "endstats", "x.txt"))
emit(W.wait_url("https://discord.com/api/webhooks/1/abc"))
emit(W.wait_url("https://x/h?thread_id=5"))
emit(W.wait_url("https://x/h?wait=true"))
emit(C.display_name("2025-03-03-214223-m-round-1.txt", "eu1", true))
emit(C.display_name("2025-03-03-214223-m-round-1.txt", "eu1", false))
emit(C.display_name("eu1-2025-03-03-214223-m-round-1.txt", "eu1", true))
""",
    )
    assert [json.loads(v) for v in values[:1]] == [
        {"username": "u", "content": "\U0001f3c6 `x.txt`"}
    ]
    assert values[1:] == [
        "https://discord.com/api/webhooks/1/abc?wait=true",
        "https://x/h?thread_id=5&wait=true",
        "https://x/h?wait=true",
        "eu1-2025-03-03-214223-m-round-1.txt",
        "2025-03-03-214223-m-round-1.txt",
        "eu1-2025-03-03-214223-m-round-1.txt",
    ]


NAMES = [
    "2025-03-03-214223-etl_frostbite-round-1.txt",
    "2025-03-03-214222-etl_frostbite-round-1-endstats.txt",
    "2025-03-03-224658-mp_sub-rc1-round-2.txt",
    "eu1-2025-03-03-224658-mp_sub-rc1-round-2-endstats.txt",
    "2025-03-03-224658-a-round-1-round-2.txt",  # last -round- wins
    "2025-03-03-224658-x-round-2-endstats-round-1.txt",
    "2024-02-29-000000-leap-round-1.txt",
    "2023-02-29-000000-noleap-round-1.txt",
    "2025-13-01-000000-m-round-1.txt",
    "2025-04-31-000000-m-round-1.txt",
    "2025-03-03-240000-m-round-1.txt",
    "2025-03-03-236000-m-round-1.txt",
    "2025-03-03-235960-m-round-1.txt",
    "0000-01-01-000000-m-round-1.txt",
    "2025-03-03-214223-etl_frostbite-round-3.txt",
    "2025-03-03-214223-etl_frostbite-round-1_ws.txt",
    "2025-03-03-214223-etl frostbite-round-1.txt",
    "2025-03-03-214223-etl_frostbite-round-1.txt.bak",
    "Eu1-2025-03-03-214223-m-round-1.txt",
    "e-u-2025-03-03-214223-m-round-1.txt",
    "a" * 33 + "-2025-03-03-214223-m-round-1.txt",
    "a" * 32 + "-2025-03-03-214223-m-round-1.txt",
    "2025-03-03-214223-..-round-1.txt",
    "2025-03-03-214223--round-1.txt",
    "2025-3-03-214223-m-round-1.txt",
    "server.log",
    "",
]


async def test_parse_name_agrees_with_python(lua: LuaRunner) -> None:
    body = "\n".join(
        f"""do local p = C.parse_name({lua_str(n)})
emit(p and {{p.server or C.null, p.map, p.round, p.endstats}} or C.null) end"""
        for n in NAMES
    )
    values = await lua_values(lua, body)
    notify = load_notify_module()
    expected = []
    for name in NAMES:
        p = notify.parse_name(name)
        expected.append(
            None if p is None else [p.server, p.map_name, p.round_number, p.is_endstats]
        )
    assert values == expected
    assert sum(v is not None for v in values) == 8
    # and with the bot's own parser
    from bot.stats.filenames import is_valid_filename

    assert [v is not None for v in values] == [is_valid_filename(n) for n in NAMES]


async def test_choose_files(lua: LuaRunner) -> None:
    now = datetime(2025, 3, 3, 21, 42, 20)
    since = int(now.timestamp()) - 10

    def at(seconds: int) -> str:
        return datetime.fromtimestamp(since + 10 + seconds).strftime("%Y-%m-%d-%H%M%S")

    names = [
        f"{at(3)}-etl_frostbite-round-1.txt",
        f"{at(1)}-etl_frostbite-round-1-endstats.txt",
        f"{at(-3600)}-etl_frostbite-round-1.txt",  # an earlier match
        f"{at(-11)}-etl_frostbite-round-1-endstats.txt",  # just before the window
        f"{at(4)}-supply-round-1.txt",
        f"{at(5)}-etl_frostbite-round-2.txt",  # other round: fallback only
        f"{at(2)}-ETL_Frostbite-round-1.txt",  # older than at(3)
        f"{at(3)}-etl_frostbite-round-1_ws.txt",
        f"xx1-{at(6)}-etl_frostbite-round-1.txt",  # another server's prefix
    ]
    listing = "{" + ", ".join(lua_str(n) for n in names) + "}"
    values = await lua_values(
        lua,
        f"""
local names = {listing}
local function pick(want) local r = C.choose_files(names, want)
    return {{r.stats or C.null, r.endstats or C.null}} end
emit(pick({{map = "etl_frostbite", round = 1, since = {since}, server_id = "eu1"}}))
emit(pick({{map = "ETL_FROSTBITE", round = 2, since = {since}, server_id = "eu1"}}))
emit(pick({{map = "etl_frostbite", round = 1, since = {since},
    exclude = {{[names[1]] = true, [names[2]] = true}}}}))
emit(pick({{map = "etl_frostbite", round = 1, since = {since} + 3600}}))
emit(pick({{map = "etl_frostbite", round = 1, since = {since}, server_id = "xx1"}}))
""",
    )
    assert values == [
        [names[0], names[1]],
        [names[5], names[1]],  # endstats of the other round as a fallback
        [names[6], None],
        [None, None],
        [names[8], names[1]],
    ]


async def test_shell_quote_survives_sh(lua: LuaRunner) -> None:
    nasty = [
        "plain",
        "it's",
        "''",
        "a b\tc",
        "$(touch pwned) `touch pwned2` ${HOME} $HOME",
        "semi; rm -rf /nothing && echo no | cat",
        'dq " and \\ backslash',
        "new\nline",
        "-n",
    ]
    body = "\n".join(
        f"""do local p = io.popen("printf '%s' " .. C.shell_quote({lua_str(s)}))
emit(p:read("a")); p:close() end"""
        for s in nasty
    )
    values = await lua_values(lua, body)
    assert values == nasty
    assert not (lua.workdir / "pwned").exists()
    assert not (lua.workdir / "pwned2").exists()


async def test_curl_quote(lua: LuaRunner) -> None:
    values = await lua_values(
        lua,
        r"""
emit(C.curl_quote([[X-Filename: a "b" \ c]]))
emit(C.curl_quote("tab\there"))
emit((pcall(C.curl_quote, "evil\r\nX-Other: 1")))
emit((pcall(C.curl_quote, "nul\0")))
""",
    )
    assert values == [r'"X-Filename: a \"b\" \\ c"', r'"tab\there"', False, False]


async def test_retry_dir_cap_drops_oldest(lua: LuaRunner, tmp_path: Path) -> None:
    qdir = tmp_path / "queue"
    qdir.mkdir()
    # five old items (with sibling files) from "earlier runs"
    for i in range(5):
        item = qdir / f"00000000000{i}-000001-abcd.json"
        item.write_text(f"old {i}")
        (qdir / f"{item.name}.err").write_text("curl: (7) refused")
    (qdir / ".curl-webhook.conf").write_text("url = x")
    values = await lua_values(
        lua,
        f"""
local q = C.new_queue({{dir = {lua_str(qdir)}, suffix = ".json", cap = 3, batch = 2,
    stale = 60, tag = "t", build_cmd = function() return "true" end}})
local path = q:add("new")
local names = {{}}
for _, p in ipairs(q:items()) do names[#names + 1] = p:match("[^/]*$") end
emit(names)
emit(path:match("[^/]*$"))
""",
    )
    names, new = values
    assert isinstance(names, list)
    assert names == ["000000000003-000001-abcd.json", "000000000004-000001-abcd.json", new]
    left = sorted(p.name for p in qdir.iterdir())
    assert left == sorted(
        [
            ".curl-webhook.conf",
            "000000000003-000001-abcd.json",
            "000000000003-000001-abcd.json.err",
            "000000000004-000001-abcd.json",
            "000000000004-000001-abcd.json.err",
            str(new),
        ]
    )


async def test_in_flight_marks(lua: LuaRunner, tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    qdir.mkdir()
    values = await lua_values(
        lua,
        f"""
local q = C.new_queue({{dir = {lua_str(qdir)}, suffix = ".json", cap = 9, batch = 9,
    stale = 30, tag = "t", build_cmd = function() return "sleep 1" end}})
local a = q:add("a")
local b = q:add("b")
local f = io.open(b .. ".inflight", "w"); f:write(tostring(os.time() - 100)); f:close()
q:launch({{a}})
emit({{q:in_flight(a), q:in_flight(b)}})
-- a is in flight, b's mark is stale: a retry pass re-sends only b
local sent = q:retry_pass()
emit(#sent == 1 and sent[1] == b)
""",
    )
    assert values == [[True, False], True]


async def test_round_end_detection(lua: LuaRunner) -> None:
    values = await lua_values(
        lua,
        """
local function run(seq)
    local st, out = C.new_round_state(), {}
    for i, step in ipairs(seq) do
        local ended = C.observe_gamestate(st, step[1], step[2], 1000 + i)
        if ended then out[#out + 1] = ended end
    end
    return out
end
-- warmup, play, LogExit flips g_currentRound to 1, intermission: round 1
emit(run({{2, 0}, {1, 0}, {0, 0}, {0, 1}, {3, 1}, {3, 1}, {3, 1}}))
-- round 2: flipped back to 0 during the intermission
emit(run({{2, 1}, {0, 1}, {0, 0}, {3, 0}}))
-- script started during an intermission: nothing to announce
emit(run({{3, 1}, {3, 1}}))
-- two rounds in one VM
emit(run({{0, 0}, {3, 1}, {2, 1}, {0, 1}, {3, 0}}))
""",
    )
    assert values == [[1], [2], [], [1, 2]]


async def test_upload_helpers(lua: LuaRunner, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("  k3y-from-file \n second line\n")
    values = await lua_values(
        lua,
        f"""
local codes = {{}}
for _, c in ipairs({{200, 201, 204, 0, 301, 400, 401, 404, 413, 429, 500, 502, 503}}) do
    codes[#codes + 1] = U.classify_status(c)
end
emit(codes)
emit(U.item_filename("/q/000001740000-000002-0a1b__2025-03-03-214223-mp__x-round-1.txt.body"))
emit(U.ingest_url("https://stats.example.org//"))
emit(U.load_api_key({{API_KEY = "", API_KEY_FILE = {lua_str(key_file)}}}))
emit(U.load_api_key({{API_KEY = "inline", API_KEY_FILE = "/nonexistent"}}))
emit(U.load_api_key({{API_KEY = "", API_KEY_FILE = "/nonexistent"}}) or C.null)
emit(C.redact("url https://d/api/webhooks/1/SECRETTOKEN x", {{"SECRETTOKEN"}}))
emit(C.webhook_token("https://discord.com/api/webhooks/123/abc-DEF_1?wait=true"))
""",
    )
    assert values == [
        [*["done"] * 3, "retry", "retry", *["drop"] * 4, *["retry"] * 4],
        "2025-03-03-214223-mp__x-round-1.txt",
        "https://stats.example.org/api/ingest/stats",
        "k3y-from-file",
        "inline",
        None,
        "url https://d/api/webhooks/1/*** x",
        "abc-DEF_1",
    ]


async def test_resolve_config_from_cvars(lua: LuaRunner) -> None:
    values = await lua_values(
        lua,
        """
local defaults = {SERVER_ID = "", WAIT_SECONDS = 10, PREFIX_FILENAMES = false, API_KEY = "k"}
local cvars = {etstats_server_id = "eu2", etstats_wait_seconds = "2.5",
    etstats_prefix_filenames = "yes", etstats_api_key = "from-cvar"}
local cfg = C.resolve_config(defaults, function(n) return cvars[n] end, {API_KEY = true})
emit(cfg)
local dflt = C.resolve_config(defaults, function() return "" end)
emit(dflt)
local get = function(n) return ({fs_homepath = "/h", fs_game = "", net_port = "27961"})[n] end
emit(C.default_stats_dir(get))
emit(C.default_retry_dir(get, "eu1", "webhook"))
emit(C.default_retry_dir(get, "", "upload"))
""",
    )
    assert values == [
        {"API_KEY": "k", "PREFIX_FILENAMES": True, "SERVER_ID": "eu2", "WAIT_SECONDS": 2.5},
        {"API_KEY": "k", "PREFIX_FILENAMES": False, "SERVER_ID": "", "WAIT_SECONDS": 10},
        "/h/legacy/gamestats",
        "/h/legacy/etstats_queue/eu1-27961-webhook",
        "/h/legacy/etstats_queue/noid-27961-upload",
    ]


@pytest.mark.parametrize("script", [WEBHOOK_LUA, UPLOAD_LUA])
async def test_scripts_load_outside_the_game(lua: LuaRunner, script: Path) -> None:
    """No `et` global: loading must not touch the game API."""
    run = await lua.run(
        f"local M = dofile({lua_str(script)})\n"
        "assert(type(M.common.json_encode) == 'function')\n"
        "assert(M.app() == nil)\nprint('RESULT ok')\n"
    )
    assert run.ok, run.output


async def test_guard_logs_errors_instead_of_raising(lua: LuaRunner) -> None:
    """The game stops a module whose callback raises; the scripts' callbacks
    are wrapped so an error is logged (once a minute) and the game goes on."""
    run = await lua.run(
        PRELUDE
        + """
local calls = 0
local f = C.guard("t", function(x) calls = calls + 1; error("boom " .. x, 0) end)
f("a"); f("a"); f("b")
print("CALLS " .. calls)
print("RESULT ok")
"""
    )
    assert run.ok, run.output
    assert run.lines("CALLS ") == ["3"]
    assert run.stderr.count("[t] internal error: boom a") == 1
    assert run.stderr.count("[t] internal error: boom b") == 1
