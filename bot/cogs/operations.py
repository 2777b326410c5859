"""Operator commands: `!servers`, `!failover [server_id]` (+ `reset`), `!poll`, and voice activity.

- `!servers` (everyone): every configured server with its health (bot.ingest.health), last
  file and how it arrived, files today in the server's time zone, and the last error.
- `!failover [server_id]`, aliases `!failover-status` and `!webhook-status` (administrators):
  one embed per server with the smart-failover state; `!failover reset [server_id]` puts one
  server (or all) back to the start-up state.
- `!poll [server_id]` (administrators): one poll cycle now, replying with its summary.
- Voice: members in each server's `voice_channel_ids` feed runtime.activity, which decides
  whether a session is on (poll cadence, heartbeat, health).

Health comes from bot.cogs.alerts.health_snapshot, the same view the alerts evaluate.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import discord
from discord.ext import commands

from bot.app import StatsBot, admin_only
from bot.cogs.alerts import ServerHealth, epoch, health_snapshot
from bot.discord_ui import tables
from bot.discord_ui.embeds import Field, group_for_messages, pack_embeds
from bot.ingest.failover import FailoverMode, FailoverStatus
from bot.ingest.health import ActivityWatch, Health, HealthVerdict, fmt_span
from bot.registry import ServerConfig

log = logging.getLogger(__name__)

Ctx = commands.Context[StatsBot]
Clock = Callable[[], float]
NO_MENTIONS = discord.AllowedMentions.none()


def _unknown(bot: StatsBot, server_id: str) -> str:
    known = ", ".join(f"`{k}`" for k in bot.registry.ids) or "none configured"
    return f"I don't know a server `{tables.clean_name(server_id, 32)}`. Known servers: {known}."


async def _send_embeds(ctx: Ctx, embeds: list[discord.Embed]) -> None:
    """Up to 10 embeds and 6,000 characters per message; the first message is the reply."""
    for i, group in enumerate(group_for_messages(embeds)):
        if i == 0:
            await ctx.reply(embeds=group, mention_author=False, allowed_mentions=NO_MENTIONS)
        else:
            await ctx.send(embeds=group, allowed_mentions=NO_MENTIONS)


class OperationsCog(commands.Cog, name="Operations"):
    def __init__(self, bot: StatsBot, clock: Clock = time.time) -> None:
        self.bot = bot
        self.clock = clock
        self.watch = ActivityWatch()  # since when each server's voice channels are full

    async def cog_load(self) -> None:
        if self.bot.is_ready():  # reloaded at runtime: no on_ready will come
            self.recount_all()

    # -- !servers ----------------------------------------------------------------------------

    @commands.command(name="servers")
    async def servers(self, ctx: Ctx) -> None:
        """Every configured server: health, last file and how it came, files today, last error."""
        if not len(self.bot.registry):
            await ctx.reply("No game servers are configured.", mention_author=False)
            return
        now = self.clock()
        healths = await health_snapshot(self.bot, now, self.watch)
        files = await file_facts(self.bot.pool, [h.server for h in healths], now)
        await _send_embeds(ctx, servers_embeds(healths, files, now))

    # -- !failover ---------------------------------------------------------------------------

    @commands.group(
        name="failover",
        aliases=["failover-status", "webhook-status"],
        invoke_without_command=True,
    )
    @admin_only()
    async def failover(self, ctx: Ctx, server_id: str | None = None) -> None:
        """Smart failover per server: mode, webhook counters, polls, last 24 h, thresholds."""
        healths = await health_snapshot(self.bot, self.clock(), self.watch)
        if server_id is not None:
            healths = [h for h in healths if h.server.server_id == server_id.lower()]
            if not healths:
                await ctx.reply(_unknown(self.bot, server_id), allowed_mentions=NO_MENTIONS)
                return
        embeds = [failover_embed(h) for h in healths if h.status is not None]
        if not embeds:
            await ctx.reply("No game servers are configured.", mention_author=False)
            return
        await _send_embeds(ctx, embeds)

    @failover.command(name="reset")
    @admin_only()
    async def failover_reset(self, ctx: Ctx, server_id: str | None = None) -> None:
        """Back to the start-up state (polling on, counters zero): one server, or all."""
        manager = self.bot.runtime.failover
        ids = list(manager.server_ids) if server_id is None else [server_id.lower()]
        if server_id is not None and ids[0] not in manager:
            await ctx.reply(_unknown(self.bot, server_id), allowed_mentions=NO_MENTIONS)
            return
        lines = []
        for sid in ids:
            t = manager.get(sid).reset()
            log.info("[%s] failover reset by %s (%s)", sid, ctx.author, ctx.author.id)
            lines.append(f"`{sid}`: {MODE_NAMES[t.from_mode]} → {MODE_NAMES[t.to_mode]}")
        head = "Failover reset: polling is on until the webhook proves itself again."
        await ctx.reply("\n".join([head, *lines]), mention_author=False)

    # -- !poll -------------------------------------------------------------------------------

    @commands.command(name="poll")
    @admin_only()
    async def poll(self, ctx: Ctx, server_id: str | None = None) -> None:
        """Poll now (all SSH servers, or one) and show what each cycle found."""
        poller = self.bot.runtime.poller
        if server_id is None:
            ids = list(poller.servers)
        elif server_id.lower() in poller.servers:
            ids = [server_id.lower()]
        elif server_id.lower() in self.bot.registry:
            shown = tables.clean_name(server_id.lower(), 32)
            await ctx.reply(f"`{shown}` is not polled over SSH (push-only or disabled).")
            return
        else:
            await ctx.reply(_unknown(self.bot, server_id), allowed_mentions=NO_MENTIONS)
            return
        if not ids:
            await ctx.reply("No server is polled over SSH (all are push-only or disabled).")
            return
        log.info("manual poll of %s by %s (%s)", ", ".join(ids), ctx.author, ctx.author.id)
        # poll_once, not run_now: the reply needs the summaries. The per-server lock keeps
        # it from overlapping a scheduled poll of the same server.
        await ctx.typing()  # once (~10 s): enough for a normal cycle
        summaries = await poller.poll_once(ids)
        body = "\n".join(s.line() for s in summaries)
        await ctx.reply(f"Poll done:\n```\n{body}\n```", mention_author=False)

    # -- voice activity ----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        self.recount_all()

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, _member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        touched = {c.id for c in (before.channel, after.channel) if c is not None}
        for server in self.bot.registry:
            if touched.intersection(server.voice_channel_ids):
                self.recount(server)

    def recount_all(self) -> None:
        for server in self.bot.registry:
            if server.voice_channel_ids:
                self.recount(server)

    def recount(self, server: ServerConfig) -> int:
        """Humans across the server's voice channels -> runtime.activity."""
        n = sum(_humans_in(self.bot.get_channel(cid)) for cid in server.voice_channel_ids)
        sid, rt = server.server_id, self.bot.runtime
        rt.activity.set_voice_count(sid, n)
        # The exact moment the channel filled up: health measures silence from there.
        self.watch.observe(sid, n >= rt.schedule.cadence.voice_min_players, self.clock())
        log.debug(
            "[%s] voice: %d member(s) in %d channel(s)", sid, n, len(server.voice_channel_ids)
        )
        return n


def _humans_in(channel: object) -> int:
    if isinstance(channel, discord.VoiceChannel | discord.StageChannel):
        return sum(1 for m in channel.members if not m.bot)
    return 0


# -- pure builders -----------------------------------------------------------------------------

MODE_NAMES = {
    FailoverMode.WEBHOOK: "webhook",
    FailoverMode.POLLING: "polling",
    FailoverMode.FORCED_POLLING: "forced polling",
}
ICONS = {
    Health.HEALTHY: "🟢",
    Health.DEGRADED: "🟡",
    Health.DOWN: "🔴",
    Health.IDLE: "⚪",
    Health.DISABLED: "⚫",
}
GREEN, ORANGE, RED, GREY = 0x2ECC71, 0xE67E22, 0xE74C3C, 0x95A5A6


def _clip(text: str, limit: int = 300) -> str:
    """Free text (errors, reasons) for an embed: markdown-escaped, one line, bounded."""
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(flat))


def _ago(at: float | None, never: str = "never") -> str:
    if at is None:
        return never
    return discord.utils.format_dt(datetime.fromtimestamp(at, UTC), "R")


def _verdict_line(v: HealthVerdict) -> str:
    return f"{ICONS[v.state]} **{v.state}**: {_clip(v.reason)}"


def _mode_line(h: ServerHealth, s: FailoverStatus) -> str:
    th = s.thresholds
    if s.mode is FailoverMode.WEBHOOK:
        sweep = th.safety_sweep_s
        line = "🟢 **Webhook primary**: SSH polling off"
        line += f", safety sweep every {fmt_span(sweep)}" if sweep else ""
    elif s.mode is FailoverMode.FORCED_POLLING:
        line = "🟠 **SSH polling forced**: smart failover is off (SMART_FAILOVER_ENABLED)"
    else:
        line = (
            f"🟠 **SSH polling (backup)**: {s.consecutive_successes}/{th.success_threshold} "
            "webhook successes in a row switch it off"
        )
    if h.server.ssh is None:
        line += "\nPush-only server: there is nothing to poll."
    return line


def failover_colour(h: ServerHealth) -> int:
    if h.verdict.state is Health.DOWN:
        return RED
    if h.verdict.state is Health.DISABLED:
        return GREY
    return GREEN if h.status and h.status.mode is FailoverMode.WEBHOOK else ORANGE


def _poll_text(s: FailoverStatus) -> str:
    if s.last_poll_at is None:
        return "none since start-up"
    if s.last_poll_ok:
        return f"{_ago(s.last_poll_at)}: ok"
    return f"{_ago(s.last_poll_at)}: failed: {_clip(s.last_poll_error or 'unknown error', 200)}"


def failover_embed(h: ServerHealth) -> discord.Embed:
    s = h.status
    assert s is not None
    th = s.thresholds
    title = f"{tables.clean_name(h.server.server_name, 80)} ({h.server.server_id})"
    embed = discord.Embed(title=title, description=_mode_line(h, s), colour=failover_colour(h))
    embed.add_field(name="Health", value=_verdict_line(h.verdict), inline=False)
    webhook = [
        f"{s.consecutive_successes} successes · {s.consecutive_failures} failures in a row",
        f"last success {_ago(s.last_webhook_success_at)}",
    ]
    if s.last_webhook_failure_at is not None:
        reason = _clip(s.last_webhook_failure_reason or "unknown", 200)
        webhook.append(f"last failure {_ago(s.last_webhook_failure_at)}: {reason}")
    embed.add_field(name="Webhook", value="\n".join(webhook), inline=False)
    embed.add_field(name="Last poll", value=_poll_text(s), inline=False)
    spent = [f"{MODE_NAMES[m]} {fmt_span(sec)}" for m, sec in s.time_in_mode_24h.items() if sec]
    failovers = f"{s.failovers_24h} failover{'s' if s.failovers_24h != 1 else ''}"
    embed.add_field(name="Last 24 h", value=f"{' · '.join(spent) or '-'}\n{failovers}")
    since = f"{_clip(s.last_transition_reason)} ({_ago(s.state_since)})"
    embed.add_field(name="Last transition", value=since, inline=False)
    embed.add_field(
        name="Thresholds",
        value=(
            f"{th.success_threshold} webhook successes switch polling off · "
            f"{th.failure_threshold} failure(s) switch it back on · "
            f"heartbeat timeout {fmt_span(th.heartbeat_timeout_s)}"
        ),
        inline=False,
    )
    return embed


@dataclass(frozen=True, slots=True)
class FileFacts:
    last_file: str | None
    source: str | None
    at: float | None
    today: int
    last_error: str | None
    last_error_at: float | None


_FILE_FACTS_SQL = """
    SELECT t.id, s.last_error, s.last_error_at, lf.filename, lf.source, lf.updated_at,
           (SELECT count(*) FROM processed_files p
            WHERE p.server_id = t.id AND p.status = 'done' AND p.updated_at >= t.since)::int
               AS today
    FROM unnest($1::text[], $2::timestamptz[]) AS t(id, since)
    LEFT JOIN servers s ON s.id = t.id
    LEFT JOIN LATERAL (
        SELECT filename, source, updated_at FROM processed_files p
        WHERE p.server_id = t.id AND p.status = 'done'
        ORDER BY p.updated_at DESC LIMIT 1
    ) lf ON true"""


async def file_facts(
    pool: asyncpg.Pool, servers: list[ServerConfig], now: float
) -> dict[str, FileFacts]:
    """Last stored file (and its path), files stored since local midnight, last error."""
    midnights = [
        datetime.fromtimestamp(now, s.timezone).replace(hour=0, minute=0, second=0, microsecond=0)
        for s in servers
    ]
    rows = await pool.fetch(_FILE_FACTS_SQL, [s.server_id for s in servers], midnights)
    return {
        r["id"]: FileFacts(
            r["filename"],
            r["source"],
            epoch(r["updated_at"]),
            r["today"],
            r["last_error"],
            epoch(r["last_error_at"]),
        )
        for r in rows
    }


def _server_field(h: ServerHealth, f: FileFacts | None) -> tuple[str, str]:
    name = f"{ICONS[h.verdict.state]} {tables.clean_name(h.server.server_name, 60)}"
    lines = [f"`{h.server.server_id}` · **{h.verdict.state}**: {_clip(h.verdict.reason, 200)}"]
    if f is not None and f.last_file is not None:
        lines.append(f"last file {_ago(f.at)} via **{f.source}**: `{f.last_file}`")
    else:
        lines.append("no file stored yet")
    lines.append(f"files today: {f.today if f else 0}")
    if f is not None and f.last_error:
        lines.append(f"last error {_ago(f.last_error_at)}: {_clip(f.last_error, 200)}")
    return name, "\n".join(lines)


def servers_embeds(
    healths: list[ServerHealth], files: dict[str, FileFacts], now: float
) -> list[discord.Embed]:
    counts = Counter(h.verdict.state for h in healths)
    summary = " · ".join(f"{counts[s]} {s}" for s in Health if counts[s])
    worst = RED if counts[Health.DOWN] else ORANGE if counts[Health.DEGRADED] else GREEN
    fields = [Field(*_server_field(h, files.get(h.server.server_id))) for h in healths]
    title = f"Game servers ({len(healths)})"
    stamp = datetime.fromtimestamp(now, UTC)
    return pack_embeds(title, summary, fields, colour=worst, timestamp=stamp)


async def setup(bot: StatsBot) -> None:
    await bot.add_cog(OperationsCog(bot))
