"""The alerts cog on dpytest with a real database: one message per event, no repeats while the
condition lasts, recovery messages, the role mention, and a loop that survives errors."""

from __future__ import annotations

import logging
import time
from typing import Any

import discord
import discord.ext.test as dpytest
import pytest

from bot.app import StatsBot
from bot.cogs.alerts import AlertsCog
from bot.ingest.alert_rules import AlertKind
from bot.ingest.failover import FailoverMode

ALERTS = ("bot.cogs.alerts",)
ROLE_ID = 987654321098765432


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def alerts_bot(make_bot, clock: Clock, **kwargs: Any) -> tuple[StatsBot, AlertsCog]:
    bot = await make_bot(extensions=ALERTS, **kwargs)
    cog = bot.get_cog("Alerts")
    cog.clock = clock
    return bot, cog


def sent_alerts() -> list[discord.Message]:
    out = []
    while not dpytest.sent_queue.empty():
        out.append(dpytest.get_message())
    assert all(m.channel.name == "alerts" for m in out)
    return out


async def test_down_once_no_repeat_then_recovery_with_the_role_mention(
    make_bot, pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    mentions: list[discord.AllowedMentions] = []
    real_send = discord.TextChannel.send

    async def spy(self: discord.TextChannel, *args: Any, **kwargs: Any) -> discord.Message:
        mentions.append(kwargs["allowed_mentions"])
        return await real_send(self, *args, **kwargs)

    monkeypatch.setattr(discord.TextChannel, "send", spy)
    real_now = time.time()
    clock = Clock(real_now - 30 * 60)
    bot, cog = await alerts_bot(make_bot, clock, env={"ALERT_ROLE_ID": str(ROLE_ID)})
    bot.runtime.activity.set_voice_count("eu1", 6)  # players are in voice: a session is on

    assert await cog.check_once() == []  # the session just began
    clock.now += 16 * 60
    (down,) = await cog.check_once()
    assert down.kind is AlertKind.DOWN
    (msg,) = sent_alerts()
    assert msg.content == (
        f"<@&{ROLE_ID}> 🔴 **EU Comp #1** (`eu1`) is down: no contact yet during an active session."
    )
    assert mentions[0].roles == [discord.Object(ROLE_ID)]
    assert mentions[0].everyone is False and mentions[0].users is False

    clock.now += 60
    assert await cog.check_once() == []  # still down: no repeat
    assert sent_alerts() == []

    await pool.execute("UPDATE servers SET last_seen = now() WHERE id = 'eu1'")
    clock.now = time.time() + 1
    (back,) = await cog.check_once()
    assert back.kind is AlertKind.RECOVERED
    (msg,) = sent_alerts()
    assert msg.content.startswith(f"<@&{ROLE_ID}> 🟢 **EU Comp #1** (`eu1`) is back: last contact")
    assert await cog.check_once() == []


async def test_failover_alert_with_reason_and_webhook_back(make_bot) -> None:
    bot, cog = await alerts_bot(make_bot, Clock(time.time()))
    machine = bot.runtime.failover.get("eu2")
    machine.record_webhook_success()
    machine.record_webhook_success()  # start-up POLLING -> WEBHOOK: normal, no alert
    await cog.flush()
    assert sent_alerts() == []

    machine.record_webhook_failure("download failed: connection lost")
    await cog.flush()
    (msg,) = sent_alerts()
    assert msg.content == (
        "🟠 **EU Public** (`eu2`): the webhook failed, SSH polling is now the backup path. "
        "Reason: webhook failure: download failed: connection lost"
    )
    assert await cog.check_once() == []  # the loop does not repeat it

    machine.record_webhook_success()
    machine.record_webhook_success()
    await cog.flush()
    (msg,) = sent_alerts()
    assert msg.content == (
        "🟢 **EU Public** (`eu2`): the webhook works again and is primary; SSH polling is off."
    )

    machine.reset()  # an operator's reset is not a failover
    await cog.flush()
    assert sent_alerts() == []


async def test_polling_backup_for_an_hour_of_session_is_alerted_once(make_bot, pool) -> None:
    real_now = time.time()
    clock = Clock(real_now - 61 * 60)
    bot, cog = await alerts_bot(make_bot, clock)
    await pool.execute("UPDATE servers SET last_seen = now() WHERE id = 'na1'")
    bot.runtime.activity.set_voice_count("na1", 8)
    assert await cog.check_once() == []
    clock.now = real_now
    (alert,) = await cog.check_once()
    assert alert.kind is AlertKind.LONG_BACKUP
    (msg,) = sent_alerts()
    assert msg.content == (
        "🟠 **NA Mixed** (`na1`): SSH polling has been the only path for 1 h 01 min of an "
        "active session; the webhook service on the game server is probably dead."
    )
    clock.now += 60
    assert await cog.check_once() == []

    machine = bot.runtime.failover.get("na1")
    machine.record_webhook_success()
    machine.record_webhook_success()
    assert machine.mode is FailoverMode.WEBHOOK
    await cog.flush()
    (msg,) = sent_alerts()
    assert "the webhook works again" in msg.content


async def test_the_loop_survives_a_failing_tick(make_bot, caplog: pytest.LogCaptureFixture) -> None:
    bot, cog = await alerts_bot(make_bot, Clock(time.time()))
    assert cog.monitor.is_running()
    real_pool = bot.pool

    class BrokenPool:
        async def fetch(self, *_args: object) -> list[object]:
            raise ConnectionError("database went away")

    bot.pool = BrokenPool()  # type: ignore[assignment]
    caplog.set_level(logging.ERROR, logger="bot.cogs.alerts")
    await cog.monitor()  # one iteration of the loop body: logs, does not raise
    assert "health check failed" in caplog.text
    assert cog.monitor.is_running()
    bot.pool = real_pool
    assert await cog.check_once() == []


async def test_unloading_stops_listening_to_transitions(make_bot) -> None:
    bot, cog = await alerts_bot(make_bot, Clock(time.time()))
    await bot.unload_extension("bot.cogs.alerts")
    assert not cog.monitor.is_running()
    machine = bot.runtime.failover.get("eu1")
    for _ in range(2):
        machine.record_webhook_success()
    machine.record_webhook_failure("gone")
    await dpytest.run_all_events()
    assert sent_alerts() == []
