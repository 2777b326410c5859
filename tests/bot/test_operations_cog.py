"""`!servers`, `!failover[-status]`, `!failover reset`, `!poll` and voice activity through
discord.py's command machinery (dpytest), a real database and, for `!poll`, a real SFTP server."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import discord
import discord.ext.test as dpytest
import pytest
from discord.ext import commands
from discord.ext.test import backend

from bot.app import StatsBot
from bot.cogs.operations import GREEN, ORANGE, RED
from bot.ingest.failover import FailoverMode
from bot.registry import ServerConfig, ServerRegistry
from tests.bot.conftest import FIXTURES, TZ, import_fixtures
from tests.bot.conftest import test_registry as registry_with
from tests.sftp_server import serve_sftp

OPS = ("bot.cogs.operations",)
EU1_FILES = sorted(p.name for p in (FIXTURES / "multi" / "stats").glob("eu1-*"))
VOICE_ID = 5550001
RELATIVE = re.compile(r"<t:\d+:R>")


def member(i: int) -> discord.Member:
    return dpytest.get_config().members[i]


def make_admin(bot: StatsBot, m: discord.Member) -> None:
    bot.settings = dataclasses.replace(bot.settings, admin_user_ids=(m.id,))


def field(embed: discord.Embed, name: str) -> str:
    return next(f.value for f in embed.fields if f.name == name)


async def two_webhook_successes(bot: StatsBot, server_id: str) -> None:
    machine = bot.runtime.failover.get(server_id)
    machine.record_webhook_success()
    machine.record_webhook_success()
    assert machine.mode is FailoverMode.WEBHOOK


async def make_silent(pool: asyncpg.Pool, bot: StatsBot, server_id: str, minutes: int) -> None:
    """The server's last file (and contact) was `minutes` ago: a session is on, no news since."""
    await pool.execute(
        "UPDATE servers SET last_seen = now() - make_interval(mins => $2) WHERE id = $1",
        server_id,
        minutes,
    )
    bot.runtime.activity.note_file(server_id, time.time() - minutes * 60)


# -- !failover-status ----------------------------------------------------------------------


async def test_non_admins_are_refused_with_one_line(make_bot) -> None:
    bot = await make_bot(extensions=OPS)
    for command in ("!failover-status", "!failover reset eu1", "!poll"):
        with pytest.raises(commands.CheckFailure):
            await dpytest.message(command, member=member(0))
        assert (
            dpytest.verify().message().content("Sorry, this command is for server administrators.")
        )
    assert bot.runtime.failover.get("eu1").status().transitions_24h == ()


async def test_failover_status_per_server_with_colours(make_bot, pool) -> None:
    bot = await make_bot(extensions=OPS)
    make_admin(bot, member(0))
    await import_fixtures(pool)
    await two_webhook_successes(bot, "eu1")
    await make_silent(pool, bot, "na1", 20)
    await dpytest.message("!failover-status", member=member(0))
    msg = dpytest.get_message()
    eu1, eu2, na1 = msg.embeds  # one message: 3 embeds fit
    titles = ["EU Comp #1 (eu1)", "EU Public (eu2)", "NA Mixed (na1)"]
    assert [e.title for e in msg.embeds] == titles

    assert eu1.colour.value == GREEN
    assert eu1.description.startswith("🟢 **Webhook primary**: SSH polling off")
    assert field(eu1, "Webhook").startswith("2 successes · 0 failures in a row\nlast success <t:")
    assert field(eu1, "Last transition").startswith("2 consecutive webhook successes (<t:")
    assert field(eu1, "Last poll") == "none since start-up"
    assert field(eu1, "Thresholds") == (
        "2 webhook successes switch polling off · 1 failure(s) switch it back on · "
        "heartbeat timeout 15 min"
    )
    assert field(eu1, "Last 24 h").endswith("\n0 failovers")

    assert eu2.colour.value == ORANGE
    assert eu2.description.startswith("🟠 **SSH polling (backup)**: 0/2 webhook successes")
    assert field(eu2, "Webhook").endswith("last success never")

    assert na1.colour.value == RED
    assert field(na1, "Health").startswith("🔴 **down**: last contact 20 min ago during an")


async def test_failover_alias_with_a_server_id_and_a_failover_counted(make_bot) -> None:
    bot = await make_bot(extensions=OPS)
    make_admin(bot, member(0))
    await two_webhook_successes(bot, "eu2")
    bot.runtime.failover.get("eu2").record_webhook_failure("download failed: timeout")
    await dpytest.message("!webhook-status EU2", member=member(0))
    (embed,) = dpytest.get_message().embeds
    assert embed.title == "EU Public (eu2)"
    assert embed.colour.value == ORANGE
    assert "last failure <t:" in field(embed, "Webhook")
    assert "download failed: timeout" in field(embed, "Webhook")
    assert field(embed, "Last 24 h").endswith("\n1 failover")
    assert field(embed, "Last transition").startswith("webhook failure: download failed")

    await dpytest.message("!failover nope", member=member(0))
    assert (
        dpytest.verify()
        .message()
        .content("I don't know a server `nope`. Known servers: `eu1`, `eu2`, `na1`.")
    )


async def test_forced_polling_when_smart_failover_is_off(make_bot) -> None:
    bot = await make_bot(extensions=OPS, env={"SMART_FAILOVER_ENABLED": "false"})
    make_admin(bot, member(0))
    await dpytest.message("!failover eu1", member=member(0))
    (embed,) = dpytest.get_message().embeds
    assert embed.description.startswith("🟠 **SSH polling forced**: smart failover is off")


async def test_admin_by_role_may_reset_one_server_or_all(make_bot, pool) -> None:
    bot = await make_bot(extensions=OPS)
    guild = dpytest.get_config().guilds[0]
    role = backend.make_role("ops", guild)
    await dpytest.add_role(member(1), role)
    bot.settings = dataclasses.replace(bot.settings, admin_role_ids=(role.id,))
    await two_webhook_successes(bot, "eu1")

    await dpytest.message("!failover reset eu1", member=member(1))
    assert (
        dpytest.verify()
        .message()
        .content(
            "Failover reset: polling is on until the webhook proves itself again.\n"
            "`eu1`: webhook → polling"
        )
    )
    status = bot.runtime.failover.get_status("eu1")
    assert status.mode is FailoverMode.POLLING and status.consecutive_successes == 0

    await dpytest.message("!failover reset", member=member(1))
    reply = dpytest.get_message().content
    assert reply.splitlines()[1:] == [f"`{s}`: polling → polling" for s in ("eu1", "eu2", "na1")]
    await bot.runtime.flush()
    rows = await pool.fetch(
        "SELECT server_id, from_mode, to_mode FROM failover_transitions "
        "WHERE reason = 'manual reset'"
    )
    assert sorted(tuple(r) for r in rows) == [
        ("eu1", "polling", "polling"),
        ("eu1", "webhook", "polling"),
        ("eu2", "polling", "polling"),
        ("na1", "polling", "polling"),
    ]


# -- !servers ------------------------------------------------------------------------------


async def test_servers_shows_health_last_file_files_today_and_errors(make_bot, pool) -> None:
    extra = (
        ServerConfig("us1", "US Fresh", True, TZ, None),
        ServerConfig("old1", "Old Box", False, TZ, None),
    )
    bot = await make_bot(extensions=OPS, registry=registry_with(extra))
    await import_fixtures(pool)
    await make_silent(pool, bot, "eu1", 20)
    await pool.execute(
        "UPDATE servers SET last_error = 'listing failed: timed out', "
        "last_error_at = now() - interval '5 minutes' WHERE id = 'eu2'"
    )
    await dpytest.message("!servers", member=member(0))  # everyone may use it
    (embed,) = dpytest.get_message().embeds
    assert embed.title == "Game servers (5)"
    assert embed.description == "1 healthy · 1 degraded · 1 down · 1 idle · 1 disabled"
    assert embed.colour.value == RED
    fields = {f.name: f.value for f in embed.fields}
    assert list(fields) == [
        "🔴 EU Comp #1",
        "🟡 EU Public",
        "🟢 NA Mixed",
        "⚪ US Fresh",
        "⚫ Old Box",
    ]
    eu1 = fields["🔴 EU Comp #1"].splitlines()
    assert eu1[0] == "`eu1` · **down**: last contact 20 min ago during an active session"
    assert RELATIVE.sub("T", eu1[1]) == f"last file T via **import**: `{EU1_FILES[-1]}`"
    assert eu1[2] == "files today: 4"
    eu2 = fields["🟡 EU Public"].splitlines()
    assert eu2[0].startswith("`eu2` · **degraded**: listing failed: timed out (5 min ago)")
    assert eu2[2] == "files today: 5"
    assert RELATIVE.sub("T", eu2[3]) == "last error T: listing failed: timed out"
    assert fields["🟢 NA Mixed"].startswith("`na1` · **healthy**: last contact ")
    assert fields["⚪ US Fresh"].splitlines() == [
        "`us1` · **idle**: no session; never in contact",
        "no file stored yet",
        "files today: 0",
    ]
    assert fields["⚫ Old Box"].startswith("`old1` · **disabled**: disabled in the server list")


# -- !poll ---------------------------------------------------------------------------------


@pytest.fixture
async def sftp_registry(tmp_path: Path) -> AsyncIterator[ServerRegistry]:
    root = tmp_path / "remote"
    root.mkdir()
    for name in EU1_FILES:
        (root / name).write_bytes((FIXTURES / "multi" / "stats" / name).read_bytes())
    async with serve_sftp(root) as srv:
        eu1 = ServerConfig("eu1", "EU Comp #1", True, TZ, srv.ssh_target("/"))
        yield ServerRegistry([eu1, ServerConfig("eu2", "EU Public", True, TZ, None)])


async def test_poll_runs_a_cycle_and_replies_with_the_summary(
    make_bot, pool, sftp_registry: ServerRegistry
) -> None:
    # The corpus is from 2025: no start-up lookback, or the poller would pass it over.
    bot = await make_bot(
        extensions=OPS, registry=sftp_registry, env={"STARTUP_LOOKBACK_HOURS": "0"}
    )
    make_admin(bot, member(0))
    await dpytest.message("!poll", member=member(0))
    reply = dpytest.get_message().content
    assert reply.startswith("Poll done:\n```\neu1: 4 files, 4 new, 4 imported, 0 errors, ")
    assert await pool.fetchval("SELECT count(*) FROM processed_files WHERE source = 'poll'") == 4
    assert bot.runtime.failover.get_status("eu1").last_poll_ok is True

    await dpytest.message("!poll eu1", member=member(0))
    assert "eu1: 4 files, 0 new, 0 imported, 0 errors" in dpytest.get_message().content
    await dpytest.message("!poll eu2", member=member(0))
    assert (
        dpytest.verify().message().content("`eu2` is not polled over SSH (push-only or disabled).")
    )
    await dpytest.message("!servers", member=member(1))
    value = dpytest.get_message().embeds[0].fields[0].value
    assert "via **poll**" in value and "files today: 4" in value


async def test_poll_without_ssh_servers_says_so(make_bot) -> None:
    bot = await make_bot(extensions=OPS)
    make_admin(bot, member(0))
    await dpytest.message("!poll", member=member(0))
    assert (
        dpytest.verify()
        .message()
        .content("No server is polled over SSH (all are push-only or disabled).")
    )


# -- voice activity ------------------------------------------------------------------------


def voice_registry() -> ServerRegistry:
    return ServerRegistry(
        [
            ServerConfig("eu1", "EU Comp #1", True, TZ, None, voice_channel_ids=(VOICE_ID,)),
            ServerConfig("eu2", "EU Public", True, TZ, None),
        ]
    )


async def move(bot: StatsBot, m: discord.Member, channel_id: int | None) -> None:
    """A member joins (or leaves, None) a voice channel, as the gateway would report it."""
    guild = dpytest.get_config().guilds[0]
    who, before, after = guild._update_voice_state({"user_id": m.id}, channel_id)
    bot.dispatch("voice_state_update", who, before, after)
    await dpytest.run_all_events()


async def test_voice_members_feed_activity_and_health(make_bot) -> None:
    bot = await make_bot(extensions=OPS, registry=voice_registry(), members=5)
    guild = dpytest.get_config().guilds[0]
    backend.make_voice_channel("eu1 comms", guild, id_num=VOICE_ID)
    clock = [time.time()]
    bot.get_cog("Operations").clock = lambda: clock[0]
    activity = bot.runtime.activity
    for i in range(4):
        await move(bot, member(i), VOICE_ID)
    assert activity.voice_count("eu1") == 4 and activity.voice_count("eu2") == 0
    assert activity.is_active("eu1", clock[0])

    # The session just began: silence counts from the voice start, not from "never".
    await dpytest.message("!servers", member=member(4))
    assert "**healthy**: session starting; never in contact" in field(
        dpytest.get_message().embeds[0], "🟢 EU Comp #1"
    )
    clock[0] += 16 * 60
    await dpytest.message("!servers", member=member(4))
    assert "**down**: no contact yet during an active session" in field(
        dpytest.get_message().embeds[0], "🔴 EU Comp #1"
    )

    await move(bot, member(0), None)
    assert activity.voice_count("eu1") == 3


async def test_on_ready_recounts_every_server(make_bot) -> None:
    bot = await make_bot(extensions=OPS, registry=voice_registry(), members=3)
    guild = dpytest.get_config().guilds[0]
    backend.make_voice_channel("eu1 comms", guild, id_num=VOICE_ID)
    for i in range(3):
        guild._update_voice_state({"user_id": member(i).id}, VOICE_ID)  # no events seen
    assert bot.runtime.activity.voice_count("eu1") == 0
    bot.dispatch("ready")
    await dpytest.run_all_events()
    assert bot.runtime.activity.voice_count("eu1") == 3
