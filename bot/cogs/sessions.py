"""`!last_session [server_id]` and its `maps`, `weapons` and `graphs` views.

The latest gaming session (across all servers, or on one), read from one database snapshot and
rendered by the pure builders in bot.discord_ui. Several pages become ONE message with
first/prev/next/last buttons that only the caller may press; after `PAGE_TIMEOUT_S` the
buttons are disabled. One per-user cooldown covers the command and all its views.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import discord
from discord.ext import commands

from bot.app import StatsBot
from bot.db import sessions_query as sq
from bot.discord_ui import tables, text
from bot.discord_ui.embeds_session import (
    session_maps_embeds,
    session_summary_embeds,
    session_weapons_embeds,
)
from bot.discord_ui.graphs import session_graph_png
from bot.discord_ui.models import SessionSummary

log = logging.getLogger(__name__)

PAGE_TIMEOUT_S = 120.0
COOLDOWN_RATE, COOLDOWN_PER_S = 1, 5.0
Ctx = commands.Context[StatsBot]
T = TypeVar("T")


class PageView(discord.ui.View):
    """Buttons over pre-built embeds. Only `owner_id` may turn pages."""

    def __init__(
        self, pages: Sequence[discord.Embed], owner_id: int, *, timeout: float = PAGE_TIMEOUT_S
    ) -> None:
        super().__init__(timeout=timeout)
        self.pages = list(pages)
        self.owner_id = owner_id
        self.page = 0
        self.message: discord.Message | None = None
        self._sync()

    def _sync(self) -> None:
        last = len(self.pages) - 1
        self.first_page.disabled = self.prev_page.disabled = self.page == 0
        self.next_page.disabled = self.last_page.disabled = self.page == last

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            "These pages belong to whoever ran the command; run it yourself to browse.",
            ephemeral=True,
        )
        return False

    async def show(self, interaction: discord.Interaction, page: int) -> None:
        self.page = max(0, min(page, len(self.pages) - 1))
        self._sync()
        await interaction.response.edit_message(embed=self.pages[self.page], view=self)

    @discord.ui.button(label="«", style=discord.ButtonStyle.secondary)
    async def first_page(self, interaction: discord.Interaction, _b: discord.ui.Button) -> None:
        await self.show(interaction, 0)

    @discord.ui.button(label="‹", style=discord.ButtonStyle.primary)
    async def prev_page(self, interaction: discord.Interaction, _b: discord.ui.Button) -> None:
        await self.show(interaction, self.page - 1)

    @discord.ui.button(label="›", style=discord.ButtonStyle.primary)
    async def next_page(self, interaction: discord.Interaction, _b: discord.ui.Button) -> None:
        await self.show(interaction, self.page + 1)

    @discord.ui.button(label="»", style=discord.ButtonStyle.secondary)
    async def last_page(self, interaction: discord.Interaction, _b: discord.ui.Button) -> None:
        await self.show(interaction, len(self.pages) - 1)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException as exc:  # deleted message, lost permission: harmless
                log.info("cannot disable the page buttons of message %s: %s", self.message.id, exc)


class SessionsCog(commands.Cog, name="Sessions"):
    def __init__(self, bot: StatsBot) -> None:
        self.bot = bot
        self.cooldown = commands.CooldownMapping.from_cooldown(
            COOLDOWN_RATE, COOLDOWN_PER_S, commands.BucketType.user
        )
        self.pagers: dict[int, PageView] = {}  # message id -> live view (stopped on unload)

    async def cog_unload(self) -> None:
        for view in self.pagers.values():
            view.stop()
        self.pagers.clear()

    async def cog_before_invoke(self, ctx: Ctx) -> None:
        # One bucket for the group and every subcommand: `!last_session` then
        # `!last_session maps` within 5 s is refused like a repeat of either.
        bucket = self.cooldown.get_bucket(ctx.message)
        retry_after = bucket.update_rate_limit() if bucket is not None else None
        if bucket is not None and retry_after:
            raise commands.CommandOnCooldown(bucket, retry_after, commands.BucketType.user)

    # -- commands ----------------------------------------------------------------------------

    @commands.group(
        name="last_session", aliases=["last-session", "lastsession"], invoke_without_command=True
    )
    async def last_session(self, ctx: Ctx, server_id: str | None = None) -> None:
        """The latest gaming session (all servers, or one): players by DPM, maps, top players."""
        found = await self._load(server_id, _nothing)
        if isinstance(found, str):
            await _say(ctx, found)
            return
        summary, _ = found
        tz = self._zone(summary.info.server_id)
        await self._send_pages(ctx, session_summary_embeds(summary, tz))

    @last_session.command(name="maps")
    async def maps(self, ctx: Ctx, server_id: str | None = None) -> None:
        """Per map of the latest session: durations, result, top player."""
        found = await self._load(server_id, sq.session_player_rounds)
        if isinstance(found, str):
            await _say(ctx, found)
            return
        summary, points = found
        tz = self._zone(summary.info.server_id)
        await self._send_pages(ctx, session_maps_embeds(summary, points, tz))

    @last_session.command(name="weapons")
    async def weapons(self, ctx: Ctx, server_id: str | None = None) -> None:
        """Top weapons of the latest session, then every player's weapons."""
        found = await self._load(server_id, sq.session_weapons)
        if isinstance(found, str):
            await _say(ctx, found)
            return
        summary, weapons = found
        tz = self._zone(summary.info.server_id)
        await self._send_pages(ctx, session_weapons_embeds(summary.info, weapons, tz))

    @last_session.command(name="graphs", aliases=["graph"])
    async def graphs(self, ctx: Ctx, server_id: str | None = None) -> None:
        """One image: DPM per round and running K/D of the session's best players."""
        found = await self._load(server_id, sq.session_player_rounds)
        if isinstance(found, str):
            await _say(ctx, found)
            return
        summary, points = found
        info = summary.info
        period = text.session_period(info, self._zone(info.server_id))
        title = f"{tables.clean_name(info.server_name, 60)} · {period}"
        # matplotlib takes a few hundred ms of CPU: never on the event loop.
        png = await asyncio.to_thread(session_graph_png, summary.rounds, points, title=title)
        log.info("[%s] session %s graphs: %d bytes", info.server_id, info.id, len(png))
        await ctx.reply(
            f"Session graphs · {discord.utils.escape_markdown(title)}",
            file=discord.File(io.BytesIO(png), filename=f"session-{info.id}.png"),
            mention_author=False,
        )

    # -- helpers -----------------------------------------------------------------------------

    async def _load(
        self, server_id: str | None, extra: Callable[[asyncpg.Connection, int], Awaitable[T]]
    ) -> tuple[SessionSummary, T] | str:
        """The latest session plus `extra(conn, session_id)` from one snapshot, or the one
        line that tells the user why there is nothing to show."""
        async with snapshot(self.bot.pool) as conn:
            if server_id is not None:
                server_id = server_id.lower()
                known = await self._known_ids(conn)
                if server_id not in known:
                    listed = ", ".join(f"`{k}`" for k in known) or "none yet"
                    shown = tables.clean_name(server_id, 32)
                    return f"I don't know a server `{shown}`. Known servers: {listed}."
            summary = await sq.load_session_summary(conn, server_id)
            if summary is None:
                where = f" on `{server_id}`" if server_id else ""
                return f"No sessions yet{where}: nothing has been recorded. Play a round first!"
            return summary, await extra(conn, summary.info.id)

    async def _known_ids(self, conn: asyncpg.Connection) -> list[str]:
        """Configured servers plus any server with stored rows (e.g. since removed)."""
        stored = await conn.fetch("SELECT id FROM servers ORDER BY id")
        ids = dict.fromkeys(self.bot.registry.ids)
        ids.update(dict.fromkeys(r["id"] for r in stored))
        return list(ids)

    def _zone(self, server_id: str) -> ZoneInfo:
        if server_id in self.bot.registry:
            return self.bot.registry.get(server_id).timezone
        return self.bot.settings.default_zone

    async def _send_pages(self, ctx: Ctx, pages: list[discord.Embed]) -> None:
        if len(pages) == 1:
            await ctx.reply(embed=pages[0], mention_author=False)
            return
        # Forget views that timed out: memory stays bounded over a long uptime.
        self.pagers = {k: v for k, v in self.pagers.items() if not v.is_finished()}
        view = PageView(pages, ctx.author.id)
        view.message = await ctx.reply(embed=pages[0], view=view, mention_author=False)
        self.pagers[view.message.id] = view


async def _nothing(_conn: asyncpg.Connection, _session_id: int) -> None:
    return None


async def _say(ctx: Ctx, line: str) -> None:
    await ctx.reply(line, mention_author=False, allowed_mentions=discord.AllowedMentions.none())


@asynccontextmanager
async def snapshot(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside one read-only repeatable-read transaction, so the summary and the
    extra rows of a view come from the same state even while rounds are being imported."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield conn


async def setup(bot: StatsBot) -> None:
    await bot.add_cog(SessionsCog(bot))
