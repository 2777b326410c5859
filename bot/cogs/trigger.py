"""The webhook trigger listener: control-channel messages -> pipeline.process(..., "webhook")."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import discord
from discord.ext import commands

from bot.app import StatsBot
from bot.db import state
from bot.ingest.pipeline import ProcessResult
from bot.ingest.sftp import SFTPError
from bot.ingest.webhook_trigger import (
    FileTrigger,
    RateLimiter,
    ReadyTrigger,
    TriggerError,
    authorize,
    parse_trigger,
    resolve_ready,
)
from bot.registry import ServerConfig

log = logging.getLogger(__name__)

OK, FAILED, PASSED_OVER = "✅", "❌", "⏭️"
GOOD_OUTCOMES = frozenset({"imported", "duplicate", "skipped", "ignored"})
REPLAY_LIMIT = 500  # messages read back at start-up


class TriggerCog(commands.Cog):
    # STATS_READY: the file can lag the message by seconds; list a few times.
    ready_attempts = 4
    ready_delay = 2.0

    def __init__(self, bot: StatsBot) -> None:
        self.bot = bot
        s = bot.settings
        self.limiter = RateLimiter(s.webhook_rate_limit, float(s.webhook_rate_window))
        self._ignored: set[tuple[int | None, int]] = set()
        self._replay_task: asyncio.Task[None] | None = None

    @property
    def state_key(self) -> str:
        return f"control_channel:{self.bot.settings.control_channel_id}:last_message_id"

    async def cog_load(self) -> None:
        self._replay_task = asyncio.create_task(self._replay(), name="trigger-replay")

    async def cog_unload(self) -> None:
        if self._replay_task is not None:
            self._replay_task.cancel()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.channel.id == self.bot.settings.control_channel_id:
            await self.handle(message)

    async def handle(self, message: discord.Message) -> None:
        auth = authorize(
            self.bot.registry,
            webhook_id=message.webhook_id,
            author_name=message.author.name,
            required_username=self.bot.settings.webhook_trigger_username,
        )
        if auth.server is None:
            self._log_ignored(message, auth.reason)
            return
        server = auth.server
        try:
            names = await self._filenames(message, server)
        except TriggerError as exc:
            self._failure(server, exc.reason)
            await self._mark(message, FAILED, exc.reason)
        else:
            results = [
                await self.bot.runtime.pipeline.process(server.server_id, n, "webhook")
                for n in names
            ]
            await self._mark_results(message, results)
        await self._remember(message.id)

    async def _filenames(self, message: discord.Message, server: ServerConfig) -> list[str]:
        if not self.limiter.allow(message.webhook_id):
            raise TriggerError(
                f"rate limit: more than {self.limiter.limit} triggers in "
                f"{self.limiter.window:.0f} s; the poller will pick the file up"
            )
        embeds = [e.to_dict() for e in message.embeds]
        trigger = parse_trigger(message.content, embeds, server)
        if isinstance(trigger, FileTrigger):
            return list(trigger.filenames)
        return [await self._resolve(trigger, server)]

    async def _resolve(self, trigger: ReadyTrigger, server: ServerConfig) -> str:
        """STATS_READY: find the file of that map and round in the server's directory."""
        if server.ssh is None:
            raise TriggerError(f"STATS_READY from push-only server '{server.server_id}'")
        sftp = self.bot.runtime.sftp.get(server.server_id)
        for attempt in range(self.ready_attempts):
            try:
                listing = await sftp.list_stats_files()
            except SFTPError as exc:
                raise TriggerError(f"listing for STATS_READY failed: {exc}") from None
            found = resolve_ready(trigger, (f.name for f in listing))
            if found is not None:
                return found
            if attempt + 1 < self.ready_attempts:
                await asyncio.sleep(self.ready_delay)
        raise TriggerError(
            f"STATS_READY: no {trigger.map_name} round {trigger.round_number} file near "
            f"{trigger.round_end:%H:%M:%S}"
        )

    def _failure(self, server: ServerConfig, reason: str) -> None:
        machine = self.bot.runtime.failover.get(server.server_id)
        machine.record_webhook_failure(reason)
        log.warning("[%s] webhook trigger failed: %s", server.server_id, reason)

    async def _mark_results(self, message: discord.Message, results: list[ProcessResult]) -> None:
        bad = [r for r in results if r.outcome not in GOOD_OUTCOMES]
        if not bad:
            # "ignored": older than STARTUP_LOOKBACK_HOURS, left for an explicit import
            passed_over = all(r.outcome == "ignored" for r in results)
            await self._mark(message, PASSED_OVER if passed_over else OK, None)
            return
        reason = "; ".join(f"{r.filename}: {r.reason or r.outcome}" for r in bad)
        await self._mark(message, FAILED, reason)

    async def _mark(self, message: discord.Message, emoji: str, reason: str | None) -> None:
        """A reaction, plus a short reply saying why on failure. Never raises."""
        try:
            await message.add_reaction(emoji)
            if reason:
                await message.reply(f"{emoji} {reason[:300]}", mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not mark control message %s: %s", message.id, exc)

    def _log_ignored(self, message: discord.Message, reason: str) -> None:
        key = (message.webhook_id, message.author.id)
        level = logging.DEBUG if key in self._ignored else logging.INFO
        self._ignored.add(key)
        log.log(level, "ignored control-channel message %s: %s", message.id, reason)

    async def _remember(self, message_id: int) -> None:
        async with self.bot.pool.acquire() as conn:
            await state.raise_int(conn, self.state_key, message_id)

    async def _replay(self) -> None:
        await self.bot.wait_until_ready()
        channel = self.bot.get_channel(self.bot.settings.control_channel_id or 0)
        if isinstance(channel, discord.abc.Messageable):
            await self.replay(channel)

    async def replay(self, channel: discord.abc.Messageable) -> int:
        """Handle triggers sent while the bot was down, oldest first."""
        async with self.bot.pool.acquire() as conn:
            last = await state.get_int(conn, self.state_key)
        lookback = timedelta(hours=self.bot.settings.startup_lookback_hours)
        after = discord.Object(last) if last else datetime.now(UTC) - lookback
        count = 0
        async for message in channel.history(limit=REPLAY_LIMIT, after=after, oldest_first=True):
            if last is None or message.id > last:
                await self.handle(message)
                count += 1
        log.info("control channel: replayed %d message(s) sent while the bot was away", count)
        return count


async def setup(bot: StatsBot) -> None:
    if bot.settings.control_channel_id is None:
        log.info("CONTROL_CHANNEL_ID not set: webhook triggers are off, polling only")
        return
    await bot.add_cog(TriggerCog(bot))
