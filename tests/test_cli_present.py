"""`python -m bot last-session [--server ID]`: the session summary as text, on a real database
filled by the importer from the committed corpus."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import asyncpg
import pytest

from bot.cli import EXIT_OK, EXIT_USAGE, build_parser
from bot.config import Settings, load_settings
from bot.discord_ui import tables
from tests.bot.conftest import FIXTURES, import_fixtures

REPO = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((FIXTURES / "multi" / "expected.json").read_text())
NA1_R1 = "stats/na1-2025-03-07-231939-radar-round-1.txt"
NA1_R2 = "stats/na1-2025-03-07-233151-radar-round-2.txt"
# '#', name (may hold spaces), K, D, K/D, then the other columns.
ROW = re.compile(r"^\s+(\d+)\s+(.+?)\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)\s")
SERVERS = {
    "servers": [
        {"server_id": "eu1", "server_name": "EU Comp #1", "timezone": "Europe/Ljubljana"},
        {"server_id": "eu2", "server_name": "EU Public", "timezone": "Europe/Ljubljana"},
        {"server_id": "na1", "server_name": "NA Mixed", "timezone": "Europe/Ljubljana"},
    ]
}


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    config = tmp_path / "servers.json"
    config.write_text(json.dumps(SERVERS))
    env = {"DATABASE_URL": db_dsn, "SERVERS_CONFIG_FILE": str(config)}
    return load_settings(env=env, dotenv_path=None)


async def run(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(["last-session", *argv])
    return await args.func(args, settings)


def human_kills() -> dict[str, int]:
    """R1 as read from its file plus the true Round-2-only values, per GUID, keyed by the
    name the player had last (a rename between rounds shows the latest name)."""
    kills: dict[str, int] = {}
    names: dict[str, str] = {}
    for p in [*EXPECTED["files"][NA1_R1]["players"], *EXPECTED["files"][NA1_R2]["r2_only"]]:
        if not p["is_bot"]:
            names[p["guid"]] = tables.clean_name(p["name"], tables.TEXT_NAME_WIDTH)
            kills[p["guid"]] = kills.get(p["guid"], 0) + p["kills"]
    return {names[guid]: k for guid, k in kills.items()}


async def test_latest_session_of_all_servers(
    settings: Settings, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await import_fixtures(pool)
    assert await run(settings) == EXIT_OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Last session · NA Mixed · 2025-03-07 23:19–23:31 CET"
    assert lines[1] == "2 rounds · 1 maps · 11 players"
    assert lines[3] == "Maps"
    assert lines[4].startswith("  1. radar — ")
    assert "Top performers" in lines
    table = lines[lines.index("Players (by DPM)") + 1 :]
    assert table[0].split()[:6] == ["#", "Name", "K", "D", "K/D", "DMG"]
    rows = {m.group(2): int(m.group(3)) for m in map(ROW.match, table[1:]) if m}
    assert len(rows) == 11
    for name, kills in human_kills().items():
        assert rows[name] == kills, name


async def test_one_server_and_friendly_errors(
    settings: Settings, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await import_fixtures(pool)
    assert await run(settings, "--server", "EU1") == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("Last session · EU Comp #1 · 2025-03-03 21:42–21:54 CET\n")
    assert "12 players" in out

    assert await run(settings, "--server", "zz9") == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "error: unknown server 'zz9' (known: eu1, eu2, na1)\n"


async def test_empty_database(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(settings) == EXIT_OK
    assert capsys.readouterr().out == "No sessions yet: nothing has been recorded.\n"
    assert await run(settings, "--server", "eu2") == EXIT_OK
    assert capsys.readouterr().out == "No sessions yet on eu2: nothing has been recorded.\n"


async def test_as_an_operator_runs_it(db_dsn: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    await import_fixtures(pool)
    ours = ("POSTGRES_", "DATABASE_", "SERVERS_CONFIG_FILE", "SSH_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env |= {"PYTHONPATH": str(REPO), "DATABASE_URL": db_dsn}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", "last-session", "--server", "eu2"),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("Last session · eu2 · ")  # no servers.json: the stored id
    assert "braundorf_b4" in text
