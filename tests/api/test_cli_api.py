"""`python -m bot api-key ...` and `python -m bot api` as an operator runs them: real processes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.api.app import make_app, serve_api
from bot.config import Settings
from bot.ingest.runtime import IngestRuntime
from bot.registry import ServerConfig, ServerRegistry
from tests.api.conftest import INGEST, R1, TZ

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 60.0  # start-up deadline of a subprocess (migrations, imports), not a timing assert


@pytest.fixture
def env(tmp_path: Path, db_dsn: str) -> dict[str, str]:
    """The operator's environment: DATABASE_URL, a servers.json, no .env (cwd is tmp_path)."""
    servers = [
        {"server_id": "eu1", "server_name": "EU 1", "timezone": "UTC"},
        {"server_id": "eu2", "server_name": "EU 2"},
    ]
    (tmp_path / "servers.json").write_text(json.dumps({"servers": servers}))
    ours = ("POSTGRES_", "DATABASE_", "SERVERS_CONFIG_FILE", "SSH_", "API_", "DISCORD_")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    keep.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=db_dsn,
        SERVERS_CONFIG_FILE=str(tmp_path / "servers.json"),
        DATA_DIR=str(tmp_path / "data"),
    )
    return keep


def cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def stored_hash(pool: asyncpg.Pool, server_id: str) -> str | None:
    return await pool.fetchval("SELECT api_key_hash FROM servers WHERE id = $1", server_id)


@asynccontextmanager
async def served(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[str]:
    registry = ServerRegistry([ServerConfig("eu1", "EU 1", True, TZ, None)])
    settings = Settings(data_dir=tmp_path)
    runtime = IngestRuntime(settings, registry, pool)
    await runtime.start(pollers=False)
    try:
        async with serve_api(make_app(runtime, pool, settings, registry), "127.0.0.1", 0) as s:
            yield s.url
    finally:
        await runtime.close()


async def post(url: str, key: str, name: str = R1.name, data: bytes | None = None) -> int:
    headers = {"X-Server-ID": "eu1", "X-API-Key": key, "X-Filename": name}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + INGEST, data=data or R1.read_bytes(), headers=headers) as resp,
    ):
        return resp.status


async def test_create_rotate_revoke(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    created = cli(env, tmp_path, "api-key", "create", "eu1")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n"  # the key alone on stdout, printed once
    assert len(key) >= 43 and key not in created.stderr
    assert "shown once" in created.stderr
    assert await stored_hash(pool, "eu1") == hashlib.sha256(key.encode()).hexdigest()

    again = cli(env, tmp_path, "api-key", "create", "eu1")
    assert again.returncode == 1 and again.stdout == ""
    assert "already has an API key" in again.stderr and "rotate" in again.stderr
    assert await stored_hash(pool, "eu1") == hashlib.sha256(key.encode()).hexdigest()

    rotated = cli(env, tmp_path, "api-key", "rotate", "eu1")
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key != key and "old key no longer works" in rotated.stderr
    async with served(pool, tmp_path) as url:
        assert await post(url, key) == 401  # the old key is refused at once
        assert await post(url, new_key) == 200
        revoked = cli(env, tmp_path, "api-key", "revoke", "eu1")
        assert revoked.returncode == 0 and revoked.stdout == ""
        assert await post(url, new_key) == 401
    assert await stored_hash(pool, "eu1") is None
    assert "had no API key" in cli(env, tmp_path, "api-key", "revoke", "eu1").stderr


def test_unknown_server_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    result = cli(env, tmp_path, "api-key", "create", "nosuch")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: unknown server 'nosuch' (known: eu1, eu2)"
    ]


async def test_a_server_only_in_the_database_can_get_a_key(
    env: dict[str, str], tmp_path: Path, pool: asyncpg.Pool
) -> None:
    await pool.execute("INSERT INTO servers (id, name) VALUES ('old1', 'Old')")
    result = cli(env, tmp_path, "api-key", "create", "old1")
    assert result.returncode == 0, result.stderr
    assert await stored_hash(pool, "old1") is not None


class Process:
    """A `python -m bot ...` child whose stderr is read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))
            self._new.set()
        self._new.set()

    async def wait_line(self, needle: str, within: float = WAIT_S) -> str:
        async with asyncio.timeout(within):
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                if self.proc.returncode is not None or self._reader.done():
                    raise AssertionError(f"exited before {needle!r}:\n{''.join(self.lines)}")
                self._new.clear()
                await self._new.wait()

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), WAIT_S)
        await self._reader
        return code


@asynccontextmanager
async def bot_process(env: dict[str, str], cwd: Path, *args: str) -> AsyncIterator[Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    child = Process(proc)
    try:
        yield child
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await child._reader


async def start_api_process(child: Process) -> str:
    line = await child.wait_line("push API listening on ")
    return line.rsplit("listening on ", 1)[1].strip()


def recent_name() -> str:
    """A round that just ended (UTC server), so the publisher does not drop it as stale."""
    return f"eu1-{datetime.now(UTC):%Y-%m-%d-%H%M%S}-etl_frostbite-round-1.txt"


async def test_standalone_api_serves_and_stops_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    key = cli(env, tmp_path, "api-key", "create", "eu1").stdout.strip()
    async with bot_process(env, tmp_path, "api", "--port", "0") as child:
        url = await start_api_process(child)
        assert await post(url, key) == 200
        assert await post(url, key) == 200  # duplicate
        async with aiohttp.ClientSession() as s, s.get(url + "/health") as resp:
            assert resp.status == 200
        assert await child.stop() == 0
    text = "".join(child.lines)
    assert "stopping the push API" in text and key not in text


async def test_a_round_uploaded_to_a_standalone_api_reaches_the_headless_bot(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Two processes, one database: the bot hears of the round through LISTEN/NOTIFY
    (its outbox sweep runs only every 30 s)."""
    key = cli(env, tmp_path, "api-key", "create", "eu1").stdout.strip()
    name = recent_name()
    async with (
        bot_process(env, tmp_path, "run", "--headless") as bot,
        bot_process(env, tmp_path, "api", "--port", "0") as api,
    ):
        url = await start_api_process(api)
        await bot.wait_line("round listener: listening")
        assert await post(url, key, name) == 200
        await bot.wait_line("round post (headless)", within=15.0)
        assert await api.stop() == 0
        assert await bot.stop() == 0


async def test_the_headless_bot_serves_the_api_when_enabled(
    env: dict[str, str], tmp_path: Path, unused_tcp_port: int
) -> None:
    key = cli(env, tmp_path, "api-key", "create", "eu1").stdout.strip()
    with_api = {**env, "API_ENABLED": "true", "API_PORT": str(unused_tcp_port)}
    async with bot_process(with_api, tmp_path, "run", "--headless") as bot:
        url = await start_api_process(bot)
        assert await post(url, key, recent_name()) == 200
        await bot.wait_line("round post (headless)", within=15.0)
        assert await bot.stop() == 0
    assert "push API stopped" in "".join(bot.lines)
