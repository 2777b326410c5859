"""The push API on a real socket (127.0.0.1, any free port) against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest

from bot.api.app import make_app, serve_api
from bot.api.auth import generate_key, hash_key
from bot.api.metrics import Metrics
from bot.config import Settings
from bot.db import api_keys
from bot.db import servers as servers_db
from bot.ingest.runtime import IngestRuntime
from bot.registry import ServerConfig, ServerRegistry

MULTI = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "multi" / "stats"
R1 = MULTI / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = MULTI / "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
EU2_R1 = MULTI / "eu2-2025-03-05-233259-etl_frostbite-round-1.txt"
TZ = ZoneInfo("Europe/Ljubljana")
SERVERS = ("eu1", "eu2", "na1", "us1", "us2")
INGEST = "/api/ingest/stats"


def api_registry() -> ServerRegistry:
    """Five push-only servers, plus `off1` (disabled) and `nokey` (enabled, no key)."""
    live = [ServerConfig(sid, sid.upper(), True, TZ, None) for sid in SERVERS]
    return ServerRegistry(
        [
            *live,
            ServerConfig("off1", "Off", False, TZ, None),
            ServerConfig("nokey", "N", True, TZ, None),
        ]
    )


@dataclass
class Api:
    url: str
    session: aiohttp.ClientSession
    keys: dict[str, str]
    metrics: Metrics
    runtime: IngestRuntime
    pool: asyncpg.Pool

    async def upload(
        self,
        server_id: str,
        filename: str | None,
        data: bytes,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        """A raw-body upload as the game server's uploader sends it."""
        sent = {"X-Server-ID": server_id, "X-API-Key": key or self.keys.get(server_id, "x")}
        if filename is not None:
            sent["X-Filename"] = filename
        sent.update(headers or {})
        return await self.post(data, sent)

    async def post(
        self, data: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        async with self.session.post(self.url + INGEST, data=data, headers=headers) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body, resp.headers


async def install_keys(pool: asyncpg.Pool, registry: ServerRegistry) -> dict[str, str]:
    """Server rows for the registry, and a fresh key for every server but `nokey`."""
    keys: dict[str, str] = {}
    async with pool.acquire() as conn:
        await servers_db.sync_registry(
            conn, [(s.server_id, s.server_name, s.enabled) for s in registry]
        )
        for server in registry:
            if server.server_id != "nokey":
                keys[server.server_id] = generate_key()
                await api_keys.create(conn, server.server_id, hash_key(keys[server.server_id]))
    return keys


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        data_dir=tmp_path,
        api_rate_limit_per_server=10_000,
        api_rate_limit_global=10_000,
    )
    return dataclasses.replace(base, **overrides)


StartApi = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def start_api(pool: asyncpg.Pool, tmp_path: Path) -> StartApi:
    """`async with start_api(**settings) as api:` a served API; `api_pool=` swaps the pool."""

    @asynccontextmanager
    async def start(api_pool: asyncpg.Pool | None = None, **overrides: Any) -> AsyncIterator[Api]:
        registry = api_registry()
        keys = await install_keys(pool, registry)
        settings = api_settings(tmp_path, **overrides)
        used = api_pool or pool
        runtime = IngestRuntime(settings, registry, used)
        if api_pool is None:
            await runtime.start(pollers=False)
        metrics = Metrics()
        app = make_app(runtime, used, settings, registry, metrics)
        try:
            async with (
                serve_api(app, "127.0.0.1", 0) as server,
                aiohttp.ClientSession() as session,
            ):
                yield Api(server.url, session, keys, metrics, runtime, used)
        finally:
            await runtime.close()

    return start


@pytest.fixture
async def api(start_api: StartApi) -> AsyncIterator[Api]:
    async with start_api() as served:
        yield served
