"""stats_upload.lua end to end: the real Lua uploader against the real push API.

The round the game server writes lands in the database with the right server id.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.api.conftest import MULTI, Api, api, start_api  # noqa: F401 - fixtures
from tests.vps.conftest import PLAY_ROUND, UPLOAD_LUA, LuaRunner, lua_str, scenario_preamble
from tests.vps.test_upload_lua import WAIT_DONE

R1 = (MULTI / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt").read_bytes()
ES1 = (MULTI / "eu1-2025-03-03-214222-etl_frostbite-round-1-endstats.txt").read_bytes()


def scenario(api_url: str, key: str, tmp_path: Path) -> str:
    stats_dir = tmp_path / "gamestats"
    stats_dir.mkdir()
    key_file = tmp_path / "api.key"
    key_file.write_text(key + "\n")
    cvars = {
        "fs_homepath": str(tmp_path / "home"),
        "mapname": "etl_frostbite",
        "etstats_server_id": "eu1",
        "etstats_api_url": api_url + "/",
        "etstats_api_key_file": str(key_file),
        "etstats_stats_dir": str(stats_dir),
        "etstats_retry_dir": str(tmp_path / "queue"),
        "etstats_wait_seconds": "3",
        "etstats_scan_seconds": "0.25",
        "etstats_retry_interval": "1",
    }
    return (
        scenario_preamble(UPLOAD_LUA, cvars)
        + PLAY_ROUND
        + f"""
local dir = {lua_str(stats_dir)}
end_round(1)
local e = stub.write_stats_file(dir, "etl_frostbite", 1, true, {lua_str(ES1)})
local s = stub.write_stats_file(dir, "etl_frostbite", 1, false, {lua_str(R1)})
print("NAMES " .. s .. " " .. e)
"""
        + WAIT_DONE
    )


async def test_uploaded_round_lands_in_the_database(
    api: Api,  # noqa: F811 - the fixture
    lua: LuaRunner,
    tmp_path: Path,
    pool: asyncpg.Pool,
) -> None:
    run = await lua.run(scenario(api.url, api.keys["eu1"], tmp_path))
    assert run.ok, run.output
    stats_name, endstats_name = run.lines("NAMES ")[0].split()
    assert f"uploaded {stats_name} (HTTP 200)" in run.stdout
    row = await pool.fetchrow(
        "SELECT server_id, map_name, player_count FROM rounds WHERE filename = $1", stats_name
    )
    assert (row["server_id"], row["map_name"], row["player_count"]) == ("eu1", "etl_frostbite", 12)
    sources = await pool.fetch("SELECT filename, source FROM processed_files ORDER BY filename")
    assert [(r["filename"], r["source"]) for r in sources] == sorted(
        [(stats_name, "api"), (endstats_name, "api")]
    )
    linked = await pool.fetchval("SELECT round_id IS NOT NULL FROM endstats")
    assert linked  # the endstats file found its round, whichever came first
    assert api.keys["eu1"] not in run.output
