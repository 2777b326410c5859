"""Round posts through the posting cog: outbox -> embeds in the stats channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import discord.ext.test as dpytest

from bot.importer import Importer
from tests.bot.conftest import FIXTURES, import_fixtures

R1 = "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
EVENING = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)


async def posting_bot(make_bot, **kw):
    bot = await make_bot(extensions=("bot.cogs.posting",), **kw)
    cog = bot.get_cog("PostingCog")
    if cog is not None:
        cog.publisher.now = lambda: EVENING  # the fixture rounds are from 2025
    return bot, cog


async def test_rounds_are_posted_to_the_stats_channel_once(make_bot, pool: asyncpg.Pool) -> None:
    await import_fixtures(pool, R1, R2)
    bot, cog = await posting_bot(make_bot)
    assert await cog.publisher.publish_due() == 2
    assert await cog.publisher.publish_due() == 0
    first = dpytest.get_message()
    second = dpytest.get_message()
    assert "etl_frostbite" in first.embeds[0].title and "Round 1" in first.embeds[0].title
    assert "Round 2" in second.embeds[0].title
    text = "".join(f.value for e in second.embeds for f in e.fields)
    assert "Brick" in text  # a player of that round is in the table
    rows = await pool.fetch("SELECT channel_id, message_ids FROM round_outbox ORDER BY id")
    assert [r["channel_id"] for r in rows] == [bot.settings.stats_channel_id] * 2
    assert rows[0]["message_ids"] == [first.id] and rows[1]["message_ids"] == [second.id]


async def test_autopost_off_loads_no_publisher(make_bot) -> None:
    bot, cog = await posting_bot(make_bot, env={"ROUND_AUTOPOST_ENABLED": "false"})
    assert cog is None and bot.runtime.pipeline.on_round_stored is None


async def test_a_round_stored_elsewhere_wakes_the_publisher(make_bot, pool: asyncpg.Pool) -> None:
    _bot, cog = await posting_bot(make_bot)
    for _ in range(100):  # until the listener's LISTEN is live (it wakes once on connect)
        listening = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'"
        )
        if listening:
            break
        await asyncio.sleep(0.05)
    assert listening
    await asyncio.sleep(0.1)
    cog.publisher.wake.clear()
    other = Importer(pool, timezone_for=lambda _s: ZoneInfo("Europe/Ljubljana"))
    path = FIXTURES / "multi" / "stats" / R1
    await other.import_file("eu1", R1, path.read_bytes(), source="api")  # not via our pipeline
    await asyncio.wait_for(cog.publisher.wake.wait(), 5)
