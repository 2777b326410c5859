"""stats_upload.lua run for real against a local imitation of the ingest API.

The contract: POST {API_URL}/api/ingest/stats with X-Server-ID, X-API-Key,
X-Filename, Content-Type: text/plain and the file's bytes. 2xx -> done;
429/5xx/no answer -> retried later; other 4xx -> logged and dropped.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.vps.conftest import (
    PLAY_ROUND,
    UPLOAD_LUA,
    LuaRunner,
    Recorded,
    Recorder,
    lua_str,
    scenario_preamble,
)

API_KEY = "etk_live_TESTKEY_0123456789abcdef"
# Raw bytes as the module writes them: backslash separators, tabs, a Latin-1
# name, a CR; nothing here may be altered on the way.
STATS_BYTES = (
    b"^1ET^7:^4Legacy\\etl_frostbite\\legacy3\\1\\1\\2\\10:00\\9:10\\549805\n"
    b'0A1B2C3D\\Pl\xe9yer ^1"x"\\1\\1\\1 0 0 0 0 0 \t1\t2\r\n'
)
ENDSTATS_BYTES = b"award\\Most kills\\0A1B2C3D\\12\n"

WAIT_DONE = """
local ok = stub.run_until(function()
    return not app.watcher.finder.active and stub.count(app.retry_dir, ".body") == 0
end, 10)
stub.finish(ok)
"""


def upload_scenario(rec: Recorder, tmp_path: Path, **extra: str) -> str:
    stats_dir = tmp_path / "gamestats"
    stats_dir.mkdir(exist_ok=True)
    key_file = tmp_path / "api.key"
    key_file.write_text(API_KEY + "\n")
    cvars = {
        "fs_homepath": str(tmp_path / "home"),
        "mapname": "etl_frostbite",
        "etstats_server_id": "eu1",
        "etstats_api_url": rec.base_url + "/",
        "etstats_api_key_file": str(key_file),
        "etstats_stats_dir": str(stats_dir),
        "etstats_retry_dir": str(tmp_path / "queue"),
        "etstats_wait_seconds": "3",
        "etstats_scan_seconds": "0.25",
        "etstats_retry_interval": "1",
    }
    cvars.update(extra)
    return (
        scenario_preamble(UPLOAD_LUA, cvars)
        + PLAY_ROUND
        + f"""
local dir = {lua_str(stats_dir)}
end_round(1)
local s = stub.write_stats_file(dir, "etl_frostbite", 1, false, {lua_str(STATS_BYTES)})
local e = stub.write_stats_file(dir, "etl_frostbite", 1, true, {lua_str(ENDSTATS_BYTES)})
print("NAMES " .. s .. " " .. e)
"""
        + WAIT_DONE
    )


def check_request_shape(req: Recorded, filename: str, body: bytes) -> None:
    assert req.method == "POST"
    assert req.path == "/api/ingest/stats"
    assert req.headers["X-Server-ID"] == "eu1"
    assert req.headers["X-API-Key"] == API_KEY
    assert req.headers["X-Filename"] == filename
    assert req.headers["Content-Type"] == "text/plain"
    assert req.body == body


async def test_upload_success(recorder: Recorder, lua: LuaRunner, tmp_path: Path) -> None:
    run = await lua.run(upload_scenario(recorder, tmp_path))
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert len(recorder.requests) == 2
    check_request_shape(recorder.requests[0], stats_name, STATS_BYTES)
    check_request_shape(recorder.requests[1], endstats_name, ENDSTATS_BYTES)
    assert f"uploaded {stats_name} (HTTP 200)" in run.stdout
    # the key is never printed, and the queue holding its curl config is private
    assert API_KEY not in run.output
    queue = tmp_path / "queue"
    assert stat.S_IMODE(queue.stat().st_mode) == 0o700
    assert sorted(p.name for p in queue.iterdir()) == [".curl-upload.conf"]


async def test_upload_with_prefix(recorder: Recorder, lua: LuaRunner, tmp_path: Path) -> None:
    run = await lua.run(upload_scenario(recorder, tmp_path, etstats_prefix_filenames="true"))
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert [r.headers["X-Filename"] for r in recorder.requests] == [
        f"eu1-{stats_name}",
        f"eu1-{endstats_name}",
    ]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_retryable_status_is_retried(
    recorder: Recorder, lua: LuaRunner, tmp_path: Path, status: int
) -> None:
    recorder.script = [(status, '{"error": "try later"}')]  # the first request only
    run = await lua.run(upload_scenario(recorder, tmp_path))
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert [(r.headers["X-Filename"], r.status) for r in recorder.requests] == [
        (stats_name, status),
        (endstats_name, 200),
        (stats_name, 200),
    ]
    check_request_shape(recorder.requests[2], stats_name, STATS_BYTES)
    assert f"upload of {stats_name} failed (HTTP {status}), will retry" in run.stdout
    assert API_KEY not in run.output


async def test_client_error_is_dropped(recorder: Recorder, lua: LuaRunner, tmp_path: Path) -> None:
    recorder.script = [(400, '{"error": "invalid filename"}')]
    run = await lua.run(upload_scenario(recorder, tmp_path))
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    # dropped, never re-sent: the queue is empty although only endstats succeeded
    assert [(r.headers["X-Filename"], r.status) for r in recorder.requests] == [
        (stats_name, 400),
        (endstats_name, 200),
    ]
    assert f'dropped {stats_name}: HTTP 400 {{"error": "invalid filename"}}' in run.stdout


async def test_missing_key_disables(lua: LuaRunner, tmp_path: Path) -> None:
    cvars = {
        "fs_homepath": str(tmp_path),
        "etstats_server_id": "eu1",
        "etstats_api_url": "http://127.0.0.1:9",
        "etstats_api_key": "cvars-are-never-used-for-the-key",
    }
    code = (
        scenario_preamble(UPLOAD_LUA, cvars)
        + PLAY_ROUND
        + (
            "end_round(1)\nstub.advance(2000)\nstub.shutdown(0)\n"
            "stub.finish(app == nil and stub.printed('no API key'))\n"
        )
    )
    run = await lua.run(code)
    assert run.ok, run.output
