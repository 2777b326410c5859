"""The webhook trigger listener end to end: dpytest message -> real SFTP -> real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import discord
import discord.ext.test as dpytest
import pytest
from discord.ext.test import backend, factories

from bot.ingest.failover import FailoverMode
from bot.registry import ServerConfig, ServerRegistry
from tests.bot.conftest import FIXTURES, TRIGGER_WEBHOOK_ID, channel
from tests.sftp_server import serve_sftp

R1_PREFIXED = FIXTURES / "multi" / "stats" / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R1 = R1_PREFIXED.name.removeprefix("eu1-")  # the game server writes legacy names
OTHER_WEBHOOK = 777


@pytest.fixture
async def sftp_root(tmp_path: Path) -> AsyncIterator[tuple[Path, ServerRegistry]]:
    root = tmp_path / "gamestats"
    root.mkdir()
    (root / R1).write_bytes(R1_PREFIXED.read_bytes())
    async with serve_sftp(root) as srv:
        eu1 = ServerConfig(
            "eu1",
            "EU 1",
            True,
            ZoneInfo("Europe/Ljubljana"),
            srv.ssh_target("/"),
            (TRIGGER_WEBHOOK_ID,),
        )
        yield root, ServerRegistry([eu1])


def webhook_message(
    content: str,
    *,
    webhook_id: int = TRIGGER_WEBHOOK_ID,
    embeds: list[dict] | None = None,
    name: str = "ET Stats",
    dispatch: bool = True,
) -> discord.Message:
    """A message as Discord delivers a webhook post, fed through the real client state.

    dispatch=False: the message exists (in history) but the bot never saw it live."""
    ch = channel("control")
    data = factories.make_message_dict(
        ch,
        dpytest.get_config().members[0],
        content=content,
        webhook_id=webhook_id,
        embeds=[discord.Embed.from_dict(e) for e in embeds or []],
    )
    data["author"]["username"] = name
    if not dispatch:
        return discord.Message(state=backend.get_state(), channel=ch, data=data)
    backend.get_state().parse_message_create(data)
    backend._cur_config.messages.setdefault(ch.id, []).append(data)  # for history and reactions
    return backend.get_state()._get_message(data["id"])


def reactions(message: discord.Message) -> list[str]:
    return [str(r.emoji) for r in message.reactions]


async def trigger_bot(make_bot, registry: ServerRegistry):
    # The fixture rounds are from 2025: widen the start-up lookback so they count as new.
    bot = await make_bot(
        extensions=("bot.cogs.trigger",),
        registry=registry,
        env={"STARTUP_LOOKBACK_HOURS": "100000"},
    )
    return bot, bot.get_cog("TriggerCog")


async def test_named_file_is_downloaded_and_stored(make_bot, sftp_root, pool: asyncpg.Pool) -> None:
    _, registry = sftp_root
    bot, _cog = await trigger_bot(make_bot, registry)
    message = webhook_message(f"📊 `{R1}`")
    await dpytest.run_all_events()
    row = await pool.fetchrow("SELECT status, source FROM processed_files WHERE filename = $1", R1)
    assert (row["status"], row["source"]) == ("done", "webhook")
    assert await pool.fetchval("SELECT count(*) FROM rounds WHERE server_id = 'eu1'") == 1
    assert reactions(message) == ["✅"]
    stored = await pool.fetchval("SELECT value FROM bot_state")
    assert int(stored) == message.id
    assert bot.runtime.failover.get_status("eu1").consecutive_successes == 1


async def test_two_successes_switch_polling_off(make_bot, sftp_root, pool: asyncpg.Pool) -> None:
    root, registry = sftp_root
    es = "2025-03-03-214222-etl_frostbite-round-1-endstats.txt"
    (root / es).write_bytes((R1_PREFIXED.parent / f"eu1-{es}").read_bytes())
    bot, _ = await trigger_bot(make_bot, registry)
    webhook_message(f"📊 `{R1}`")
    await dpytest.run_all_events()
    assert bot.runtime.failover.get_status("eu1").mode == FailoverMode.POLLING
    webhook_message(f"🏆 `{es}`")  # after its round: links, so it counts as a success
    await dpytest.run_all_events()
    assert bot.runtime.failover.get_status("eu1").mode == FailoverMode.WEBHOOK
    assert await pool.fetchval("SELECT round_id FROM endstats") is not None


async def test_unknown_webhooks_and_users_are_ignored(
    make_bot, sftp_root, pool: asyncpg.Pool
) -> None:
    _, registry = sftp_root
    await trigger_bot(make_bot, registry)
    stranger = webhook_message(f"📊 `{R1}`", webhook_id=OTHER_WEBHOOK)
    await dpytest.message(f"📊 `{R1}`", channel=channel("control"))  # a person, not a webhook
    await dpytest.run_all_events()
    assert await pool.fetchval("SELECT count(*) FROM processed_files") == 0
    assert reactions(stranger) == []
    assert dpytest.verify().message().nothing()


async def test_traversal_name_is_refused_with_a_reply(
    make_bot, sftp_root, pool: asyncpg.Pool
) -> None:
    _, registry = sftp_root
    bot, _ = await trigger_bot(make_bot, registry)
    message = webhook_message("📊 `../../etc/passwd`")
    await dpytest.run_all_events()
    assert reactions(message) == ["❌"]
    assert dpytest.verify().message().contains().content("not a plain file name")
    assert await pool.fetchval("SELECT count(*) FROM processed_files") == 0
    assert bot.runtime.failover.get_status("eu1").consecutive_failures == 1


async def test_missing_file_fails_and_names_the_reason(make_bot, sftp_root) -> None:
    _, registry = sftp_root
    await trigger_bot(make_bot, registry)
    message = webhook_message("📊 `2025-03-03-230000-supply-round-1.txt`")
    await dpytest.run_all_events()
    assert reactions(message) == ["❌"]
    assert dpytest.verify().message().contains().content("2025-03-03-230000-supply-round-1.txt")


async def test_stats_ready_is_resolved_from_the_listing(
    make_bot, sftp_root, pool: asyncpg.Pool
) -> None:
    _, registry = sftp_root
    await trigger_bot(make_bot, registry)
    embed = {
        "title": "STATS_READY",
        "fields": [
            {"name": "map", "value": "etl_frostbite"},
            {"name": "round", "value": "1"},
            {"name": "round_end", "value": "2025-03-03 21:42:19"},
        ],
    }
    message = webhook_message("STATS_READY", embeds=[embed])
    await dpytest.run_all_events()
    assert reactions(message) == ["✅"]
    assert await pool.fetchval("SELECT filename FROM rounds") == R1


async def test_rate_limit_drops_and_counts_as_failure(make_bot, sftp_root) -> None:
    _, registry = sftp_root
    bot, cog = await trigger_bot(make_bot, registry)
    cog.limiter.limit = 1
    webhook_message(f"📊 `{R1}`")
    second = webhook_message(f"📊 `{R1}`")
    await dpytest.run_all_events()
    assert reactions(second) == ["❌"]
    assert dpytest.verify().message().contains().content("rate limit")
    status = bot.runtime.failover.get_status("eu1")
    assert status.last_webhook_failure_reason.startswith("rate limit")


class _History:
    """Discord's channel history for the replay (the gateway is what we cannot run)."""

    def __init__(self, messages: list[discord.Message]) -> None:
        self.messages = messages

    def history(self, **_kw: object) -> AsyncIterator[discord.Message]:
        async def gen() -> AsyncIterator[discord.Message]:
            for m in self.messages:
                yield m

        return gen()


async def test_replay_handles_only_messages_after_the_last_one(
    make_bot, sftp_root, pool: asyncpg.Pool
) -> None:
    _, registry = sftp_root
    _, cog = await trigger_bot(make_bot, registry)
    first = webhook_message("📊 `../bad`")  # handled live
    await dpytest.run_all_events()
    missed = webhook_message(f"📊 `{R1}`", dispatch=False)  # sent while we were down
    await pool.execute("UPDATE bot_state SET value = $1", str(first.id))
    handled = await cog.replay(_History([first, missed]))
    assert handled == 1
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1
