"""stats_discord_webhook.lua run for real: lua5.4 + stub `et`, curl, local endpoint."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from tests.vps.conftest import (
    PLAY_ROUND,
    WEBHOOK_ID,
    WEBHOOK_LUA,
    WEBHOOK_TOKEN,
    LuaRunner,
    Recorder,
    lua_str,
    scenario_preamble,
)

STATS = "\U0001f4ca"
TROPHY = "\U0001f3c6"

WAIT_DONE = """
local ok = stub.run_until(function()
    return not app.watcher.finder.active and stub.count(app.retry_dir, ".json") == 0
        and stub.count(app.retry_dir, ".inflight") == 0
end, 8)
stub.finish(ok)
"""


def base_cvars(rec: Recorder, tmp_path: Path, **extra: str) -> dict[str, str]:
    cvars = {
        "fs_homepath": str(tmp_path / "home"),
        "mapname": "etl_frostbite",
        "etstats_server_id": "eu1",
        "etstats_webhook_url": rec.webhook_url,
        "etstats_retry_dir": str(tmp_path / "retry"),
        "etstats_wait_seconds": "3",
        "etstats_scan_seconds": "0.25",
    }
    cvars.update(extra)
    return cvars


def default_stats_dir(tmp_path: Path) -> Path:
    path = tmp_path / "home" / "legacy" / "gamestats"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_round_end_posts_stats_then_endstats(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    stats_dir = default_stats_dir(tmp_path)  # derived from fs_homepath + fs_game
    code = (
        scenario_preamble(WEBHOOK_LUA, base_cvars(recorder, tmp_path))
        + PLAY_ROUND
        + f"""
local dir = {lua_str(stats_dir)}
-- noise that must not be announced
stub.write_stats_file(dir, "etl_frostbite", 1, false, "last hour", os.time() - 3600)
stub.write_stats_file(dir, "supply", 1, false, "another map")
stub.write_file(dir .. "/" .. os.date("%Y-%m-%d-%H%M%S") .. "-etl_frostbite-round-1_ws.txt", "x")
stub.write_file(dir .. "/server.log", "x")
end_round(1)
stub.advance(200)
local s = stub.write_stats_file(dir, "etl_frostbite", 1, false, "stats")
-- endstats are stamped a little earlier than their stats file
local e = stub.write_stats_file(dir, "etl_frostbite", 1, true, "endstats", os.time() - 2)
print("NAMES " .. s .. " " .. e)
"""
        + WAIT_DONE
    )
    run = await lua.run(code)
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert stats_name.endswith("-etl_frostbite-round-1.txt")
    assert endstats_name.endswith("-etl_frostbite-round-1-endstats.txt")

    assert len(recorder.requests) == 2
    for req in recorder.requests:
        assert req.method == "POST"
        assert req.path == f"/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
        assert req.query == {"wait": "true"}
        assert req.headers["Content-Type"] == "application/json"
    assert [r.json() for r in recorder.requests] == [
        {"username": "ET Stats", "content": f"{STATS} `{stats_name}`"},
        {"username": "ET Stats", "content": f"{TROPHY} `{endstats_name}`"},
    ]
    # UTF-8 on the wire, not \u escapes
    assert STATS.encode() in recorder.requests[0].body
    # the token is a secret: never printed
    assert WEBHOOK_TOKEN not in run.output
    retry = tmp_path / "retry"
    assert stat.S_IMODE(retry.stat().st_mode) == 0o700
    assert not list(retry.glob("*.json"))


async def test_round_two_prefix_and_escaped_username(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    # A directory name a shell would love to interpret, and a username full of
    # JSON-hostile bytes.
    stats_dir = tmp_path / "it's $(touch pwned) `x` dir"
    stats_dir.mkdir()
    retry_dir = tmp_path / "q'ueue $HOME"
    username = 'Q"uo\\te\x01\x1f\ttab\nnl é \U0001f3ae'
    cvars = base_cvars(
        recorder,
        tmp_path,
        etstats_stats_dir=str(stats_dir),
        etstats_retry_dir=str(retry_dir),
        etstats_prefix_filenames="1",
        etstats_webhook_username=username,
        mapname="mp_sub-rc1",
    )
    code = (
        scenario_preamble(WEBHOOK_LUA, cvars)
        + PLAY_ROUND
        + f"""
local dir = {lua_str(stats_dir)}
end_round(2)
local s = stub.write_stats_file(dir, "mp_sub-rc1", 2, false, "stats")
local e = stub.write_stats_file(dir, "mp_sub-rc1", 2, true, "endstats")
print("NAMES " .. s .. " " .. e)
"""
        + WAIT_DONE
    )
    run = await lua.run(code)
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert [r.json() for r in recorder.requests] == [
        {"username": username, "content": f"{STATS} `eu1-{stats_name}`"},
        {"username": username, "content": f"{TROPHY} `eu1-{endstats_name}`"},
    ]
    assert not (lua.workdir / "pwned").exists()
    assert not list(retry_dir.glob("*.json"))


async def test_stats_ready_when_no_file_appears(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    default_stats_dir(tmp_path)
    odd_map = 'we"ird\\map\x02'
    cvars = base_cvars(recorder, tmp_path, etstats_wait_seconds="1", mapname=odd_map)
    code = scenario_preamble(WEBHOOK_LUA, cvars) + PLAY_ROUND + "end_round(2)\n" + WAIT_DONE
    before = int(time.time())
    run = await lua.run(code)
    after = int(time.time())
    assert run.ok, run.output
    assert len(recorder.requests) == 1
    body = recorder.requests[0].json()
    assert isinstance(body, dict)
    assert body["username"] == "ET Stats"
    assert body["content"] == "STATS_READY"
    [embed] = body["embeds"]
    assert embed["title"] == "STATS_READY"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert [f["name"] for f in embed["fields"]] == [
        "server_id",
        "map",
        "round",
        "round_end",
        "round_end_unix",
    ]
    assert all(f["inline"] is True for f in embed["fields"])
    assert fields["server_id"] == "eu1"
    assert fields["map"] == odd_map
    assert fields["round"] == "2"
    unix = int(fields["round_end_unix"])
    assert before <= unix <= after
    assert fields["round_end"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))


async def test_endstats_only_posts_it_and_stats_ready(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    stats_dir = default_stats_dir(tmp_path)
    cvars = base_cvars(recorder, tmp_path, etstats_wait_seconds="1")
    code = (
        scenario_preamble(WEBHOOK_LUA, cvars)
        + PLAY_ROUND
        + f"""
end_round(1)
local e = stub.write_stats_file({lua_str(stats_dir)}, "etl_frostbite", 1, true, "endstats")
print("NAMES " .. e)
"""
        + WAIT_DONE
    )
    run = await lua.run(code)
    assert run.ok, run.output
    [endstats_name] = run.lines("NAMES ")[0].split()
    bodies = [r.json() for r in recorder.requests]
    assert bodies[0] == {"username": "ET Stats", "content": f"{TROPHY} `{endstats_name}`"}
    assert bodies[1]["content"] == "STATS_READY"
    assert len(bodies) == 2


async def test_failed_post_stays_queued_and_is_retried(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    stats_dir = default_stats_dir(tmp_path)
    recorder.script = [(500, '{"message": "boom"}')]
    cvars = base_cvars(recorder, tmp_path, etstats_retry_interval="1")
    code = (
        scenario_preamble(WEBHOOK_LUA, cvars)
        + PLAY_ROUND
        + f"""
end_round(1)
local s = stub.write_stats_file({lua_str(stats_dir)}, "etl_frostbite", 1, false, "stats")
print("NAMES " .. s)
-- the first POST gets a 500: the payload must still be there when the next
-- retry pass picks it up (and says why it is retrying)
local stayed = stub.run_until(function() return stub.printed("retrying") end, 8)
print("STAYED " .. tostring(stayed))
"""
        + WAIT_DONE
    )
    run = await lua.run(code)
    assert run.ok, run.output
    assert run.lines("STAYED ") == ["true"]
    assert "returned error: 500" in run.stdout  # curl's error, shown on retry
    [stats_name] = run.lines("NAMES ")[0].split()
    statuses = [r.status for r in recorder.requests if r.json().get("content") != "STATS_READY"]
    assert statuses == [500, 200]
    assert recorder.requests[0].body == recorder.requests[1].body
    assert recorder.requests[1].json() == {
        "username": "ET Stats",
        "content": f"{STATS} `{stats_name}`",
    }
    assert not list((tmp_path / "retry").glob("*.json"))
    assert WEBHOOK_TOKEN not in run.output


async def test_shutdown_during_the_wait_still_posts(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    stats_dir = default_stats_dir(tmp_path)
    code = (
        scenario_preamble(WEBHOOK_LUA, base_cvars(recorder, tmp_path))
        + PLAY_ROUND
        + f"""
end_round(1)
local s = stub.write_stats_file({lua_str(stats_dir)}, "etl_frostbite", 1, false, "stats")
print("NAMES " .. s)
stub.shutdown(0)   -- before the first scan: the final scan must find it
local ok = stub.wait_until(function() return stub.count(app.retry_dir, ".json") == 0 end, 8)
stub.finish(ok)
"""
    )
    run = await lua.run(code)
    assert run.ok, run.output
    [stats_name] = run.lines("NAMES ")[0].split()
    bodies = [r.json() for r in recorder.requests]
    assert bodies[0] == {"username": "ET Stats", "content": f"{STATS} `{stats_name}`"}
    # no endstats by shutdown time: the bot still hears the stats file first
    assert [b["content"] for b in bodies] == [f"{STATS} `{stats_name}`"]


async def test_round_cut_short_by_map_change(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path
) -> None:
    """The stats module writes from et_ShutdownGame when a map change ends a
    round before intermission; listed after it, we announce that file."""
    stats_dir = default_stats_dir(tmp_path)
    code = (
        scenario_preamble(WEBHOOK_LUA, base_cvars(recorder, tmp_path))
        + f"""
stub.set_gamestate(GS.PLAYING); stub.advance(1000)
local s = stub.write_stats_file({lua_str(stats_dir)}, "etl_frostbite", 2, false, "stats")
print("NAMES " .. s)
stub.shutdown(0)
local ok = stub.wait_until(function() return stub.count(app.retry_dir, ".json") == 0 end, 8)
stub.finish(ok)
"""
    )
    run = await lua.run(code)
    assert run.ok, run.output
    [stats_name] = run.lines("NAMES ")[0].split()
    assert [r.json() for r in recorder.requests] == [
        {"username": "ET Stats", "content": f"{STATS} `{stats_name}`"}
    ]


async def test_no_webhook_url_disables_quietly(lua: LuaRunner, tmp_path: Path) -> None:
    cvars = {"fs_homepath": str(tmp_path), "etstats_server_id": "eu1"}
    code = (
        scenario_preamble(WEBHOOK_LUA, cvars)
        + PLAY_ROUND
        + """
end_round(1)
stub.advance(2000)
stub.shutdown(0)
stub.finish(app == nil and stub.printed("WEBHOOK_URL is not set"))
"""
    )
    run = await lua.run(code)
    assert run.ok, run.output
