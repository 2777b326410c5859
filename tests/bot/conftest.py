"""A real StatsBot on dpytest's fake Discord backend, with a real database.

Only the Discord gateway is fake. Cogs, checks, cooldowns and command parsing
are discord.py's own; the database is a fresh PostgreSQL per test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend

from bot.app import StatsBot
from bot.config import load_settings
from bot.importer import Importer
from bot.ingest.runtime import IngestRuntime
from bot.registry import ServerConfig, ServerRegistry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stats"
TRIGGER_WEBHOOK_ID = 4242
TZ = ZoneInfo("Europe/Ljubljana")


def test_registry(extra: tuple[ServerConfig, ...] = ()) -> ServerRegistry:
    return ServerRegistry(
        [
            ServerConfig("eu1", "EU Comp #1", True, TZ, None, (TRIGGER_WEBHOOK_ID,)),
            ServerConfig("eu2", "EU Public", True, TZ, None, ()),
            ServerConfig("na1", "NA Mixed", True, ZoneInfo("America/New_York"), None, ()),
            *extra,
        ]
    )


async def import_fixtures(pool: asyncpg.Pool, *names: str) -> None:
    """Import committed fixture files (prefixed names) through the real importer."""
    importer = Importer(pool, timezone_for=lambda _s: TZ)
    folder = FIXTURES / "multi" / "stats"
    paths = [folder / n for n in names] if names else sorted(folder.iterdir())
    for path in paths:
        server_id = path.name.split("-", 1)[0]
        result = await importer.import_file(server_id, path.name, path.read_bytes())
        assert result.outcome == "imported", result


def _dpytest_reaction_compat() -> None:
    """dpytest 0.7 builds reaction events without fields discord.py 2.4+ reads
    ("type", "burst"). Fill them in on the fake backend's side."""
    state_cls = type(backend.get_state())
    original = state_cls.parse_message_reaction_add
    if getattr(original, "_compat", False):
        return

    def parse(self, data):
        data.setdefault("type", 0)
        data.setdefault("burst", False)
        return original(self, data)

    parse._compat = True  # type: ignore[attr-defined]
    state_cls.parse_message_reaction_add = parse


@pytest.fixture
async def make_bot(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """`bot = await make_bot(extensions=(...), env={...}, registry=...)`."""
    made: list[StatsBot] = []
    session = aiohttp.ClientSession()

    async def factory(
        *,
        extensions: tuple[str, ...],
        env: dict[str, str] | None = None,
        registry: ServerRegistry | None = None,
        members: int = 2,
    ) -> StatsBot:
        settings = load_settings(
            {"DATA_DIR": str(tmp_path / "data"), **(env or {})}, dotenv_path=None
        )
        reg = registry or test_registry()
        runtime = IngestRuntime(settings, reg, pool)
        bot = StatsBot(
            settings=settings,
            registry=reg,
            pool=pool,
            runtime=runtime,
            http_session=session,
            extensions=(),
            start_pollers=False,
        )
        await bot._async_setup_hook()  # binds the loop, as login() would
        dpytest.configure(bot, members=members, text_channels=["stats", "control", "alerts"])
        _dpytest_reaction_compat()
        channels = {c.name: c.id for c in dpytest.get_config().guilds[0].text_channels}
        bot.settings = dataclasses.replace(
            settings,
            stats_channel_id=settings.stats_channel_id or channels["stats"],
            control_channel_id=settings.control_channel_id or channels["control"],
            alert_channel_id=settings.alert_channel_id or channels["alerts"],
        )
        bot.initial_extensions = extensions
        await bot.setup_hook()
        made.append(bot)
        return bot

    yield factory
    for bot in made:
        await dpytest.empty_queue()
        await bot.runtime.close()
        for name in list(bot.extensions):
            await bot.unload_extension(name)
    await session.close()


def channel(name: str) -> discord.TextChannel:
    return next(c for c in dpytest.get_config().guilds[0].text_channels if c.name == name)
