"""Health monitoring: the per-server health snapshot, and alerts to ALERT_CHANNEL_ID.

`health_snapshot()` turns the servers table and the live runtime (activity, failover status)
into one bot.ingest.health verdict per server; `!servers` and `!failover-status` show the same
snapshot. The alerts cog is a thin shell around the pure bot.ingest.alert_rules:

- every `CHECK_EVERY_S` a discord.ext.tasks loop observes every server (an error is logged and
  the loop goes on with the next tick);
- failover transitions arrive as they happen through `runtime.add_transition_listener`.

Each alert is one message, optionally mentioning ALERT_ROLE_ID (and nobody else).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import discord
from discord.ext import commands, tasks

from bot.app import StatsBot
from bot.discord_ui.embeds import md
from bot.ingest.alert_rules import Alert, AlertKind, AlertRules, Observation, alert_text
from bot.ingest.failover import FailoverMode, FailoverStatus, Transition
from bot.ingest.health import ActivityWatch, HealthInput, HealthVerdict, latest, server_health
from bot.registry import ServerConfig

log = logging.getLogger(__name__)

Clock = Callable[[], float]
CHECK_EVERY_S = 60.0
_BAD_NEWS = frozenset({AlertKind.DOWN, AlertKind.FAILOVER, AlertKind.LONG_BACKUP})


@dataclass(frozen=True, slots=True)
class ServerHealth:
    server: ServerConfig
    verdict: HealthVerdict
    active: bool
    status: FailoverStatus | None


def epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _latest_error(
    row: asyncpg.Record | None, status: FailoverStatus | None
) -> tuple[float | None, str | None]:
    """The servers row's error (any path), unless a failed poll the row missed is newer."""
    at = epoch(row["last_error_at"]) if row else None
    text = row["last_error"] if row else None
    if status is not None and status.last_poll_ok is False and status.last_poll_at is not None:
        if at is None or status.last_poll_at > at:
            return status.last_poll_at, status.last_poll_error
    return at, text


def health_input(
    bot: StatsBot,
    server: ServerConfig,
    row: asyncpg.Record | None,
    now: float,
    watch: ActivityWatch,
) -> tuple[HealthInput, FailoverStatus | None]:
    """The plain inputs of the health rule, from the servers row and the live runtime."""
    sid, rt = server.server_id, bot.runtime
    cadence = rt.schedule.cadence
    active = rt.activity.is_active(sid, now, cadence.grace_s, cadence.voice_min_players)
    status = rt.failover.get_status(sid) if sid in rt.failover else None
    # Only a full voice channel can make a server active before any contact: the voice start
    # is what silence is measured from then (files are contact themselves).
    voice_full = rt.activity.voice_count(sid) >= cadence.voice_min_players
    since = watch.observe(sid, voice_full, now)
    contact = latest(
        (
            epoch(row["last_seen"]) if row else None,  # any stored file, any good listing
            rt.activity.last_file_at(sid),
            status.last_poll_at if status and status.last_poll_ok else None,
            status.last_webhook_success_at if status else None,
        )
    )
    error_at, error = _latest_error(row, status)
    return HealthInput(server.enabled, active, contact, error_at, error, since), status


async def health_snapshot(bot: StatsBot, now: float, watch: ActivityWatch) -> list[ServerHealth]:
    """Health of every configured server, in registry order (one small query)."""
    servers = list(bot.registry)
    rows = await bot.pool.fetch(
        "SELECT id, last_seen, last_error, last_error_at FROM servers WHERE id = ANY($1::text[])",
        [s.server_id for s in servers],
    )
    by_id = {r["id"]: r for r in rows}
    out = []
    for server in servers:
        facts, status = health_input(bot, server, by_id.get(server.server_id), now, watch)
        out.append(ServerHealth(server, server_health(facts, now), facts.active, status))
    return out


class AlertsCog(commands.Cog, name="Alerts"):
    def __init__(self, bot: StatsBot, clock: Clock = time.time) -> None:
        self.bot = bot
        self.clock = clock
        self.rules = AlertRules(clock=lambda: self.clock())
        self.watch = ActivityWatch()
        self._sending: set[asyncio.Task[None]] = set()

    async def cog_load(self) -> None:
        self.bot.runtime.add_transition_listener(self.on_transition)
        self.monitor.start()

    async def cog_unload(self) -> None:
        self.bot.runtime.remove_transition_listener(self.on_transition)
        task = self.monitor.get_task()
        self.monitor.cancel()
        if task is not None:  # gone for good before the cog is
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    @tasks.loop(seconds=CHECK_EVERY_S)
    async def monitor(self) -> None:
        try:
            await self.check_once()
        except Exception:  # one bad tick (database away, ...) must not end the monitoring
            log.exception("alerts: health check failed; trying again in %.0f s", CHECK_EVERY_S)

    @monitor.before_loop
    async def _until_ready(self) -> None:
        await self.bot.wait_until_ready()  # channels are only known once connected

    async def check_once(self) -> list[Alert]:
        """Observe every server once; send and return the alerts that came of it."""
        now = self.clock()
        alerts: list[Alert] = []
        for h in await health_snapshot(self.bot, now, self.watch):
            mode = h.status.mode if h.status is not None else FailoverMode.FORCED_POLLING
            alerts += self.rules.observe(Observation(h.server.server_id, h.verdict, mode, h.active))
        for alert in alerts:
            await self.send(alert)
        return alerts

    def on_transition(self, t: Transition) -> None:
        """Called synchronously by the failover machine: sending runs as a task."""
        for alert in self.rules.on_transition(t):
            task = asyncio.get_running_loop().create_task(self.send(alert))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        """Wait until the alerts started by transitions are sent."""
        if self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def send(self, alert: Alert) -> None:
        sid = alert.server_id
        name = self.bot.registry.get(sid).server_name if sid in self.bot.registry else sid
        text = alert_text(alert, md(name, 60))
        level = logging.WARNING if alert.kind in _BAD_NEWS else logging.INFO
        log.log(level, "[%s] alert %s: %s", sid, alert.kind, alert.detail)
        s = self.bot.settings
        channel = self.bot.get_channel(s.alert_channel_id) if s.alert_channel_id else None
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("[%s] alert not sent: ALERT_CHANNEL_ID is unset or unknown", sid)
            return
        if s.alert_role_id is not None:
            text = f"<@&{s.alert_role_id}> {text}"
            mentions = discord.AllowedMentions(
                everyone=False, users=False, roles=[discord.Object(s.alert_role_id)]
            )
        else:
            mentions = discord.AllowedMentions.none()
        try:
            await channel.send(text[:2000], allowed_mentions=mentions)
        except discord.HTTPException as exc:
            log.error("[%s] cannot send the %s alert: %s", sid, alert.kind, exc)


async def setup(bot: StatsBot) -> None:
    await bot.add_cog(AlertsCog(bot))
