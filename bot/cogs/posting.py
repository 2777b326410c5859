"""Round posts: the outbox publisher with a Discord sink."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.app import StatsBot
from bot.db.listen import listen_for_rounds, pool_connector
from bot.discord_ui.embeds import group_for_messages, round_post_embeds
from bot.discord_ui.publisher import Post, PostError, Publisher, SkipPost

log = logging.getLogger(__name__)


class PostingCog(commands.Cog):
    def __init__(self, bot: StatsBot) -> None:
        self.bot = bot
        self.publisher = Publisher(
            bot.pool, self.send, posts_per_minute=bot.settings.posts_per_minute_per_server
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def cog_load(self) -> None:
        # A stored round wakes the publisher at once; a sweep catches the rest.
        # Rounds stored by other processes (push-API instances) arrive by NOTIFY.
        self.bot.runtime.pipeline.on_round_stored = lambda _result: self.publisher.wake.set()
        wake = lambda _payload: self.publisher.wake.set()  # noqa: E731
        self._tasks = [
            asyncio.create_task(self._run(), name="publisher"),
            asyncio.create_task(
                listen_for_rounds(pool_connector(self.bot.pool), wake), name="round-listener"
            ),
        ]

    async def cog_unload(self) -> None:
        self.bot.runtime.pipeline.on_round_stored = None
        for task in self._tasks:
            task.cancel()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        await self.publisher.run()

    def channel_id_for(self, server_id: str) -> int | None:
        if server_id in self.bot.registry:
            own = self.bot.registry.get(server_id).stats_channel_id
            if own:
                return own
        return self.bot.settings.stats_channel_id

    async def send(self, post: Post) -> tuple[int | None, list[int]]:
        """Send the round's embeds; raise PostError so the row is retried."""
        channel_id = self.channel_id_for(post.server_id)
        if channel_id is None:
            raise SkipPost("no stats channel configured for this server")
        tz = self.bot.runtime.timezone_for(post.server_id)
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise SkipPost(f"channel {channel_id} cannot take messages")
            ids = []
            for group in group_for_messages(round_post_embeds(post.data, tz)):
                ids.append((await channel.send(embeds=group)).id)
        except discord.HTTPException as exc:
            raise PostError(f"Discord refused the post: {exc}") from None
        return channel_id, ids


async def setup(bot: StatsBot) -> None:
    if not bot.settings.round_autopost_enabled:
        log.info("ROUND_AUTOPOST_ENABLED=false: rounds are stored but not posted")
        return
    await bot.add_cog(PostingCog(bot))
