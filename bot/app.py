"""The discord.py Bot: owns the pool, registry and ingest runtime; loads feature cogs."""

from __future__ import annotations

import logging

import aiohttp
import asyncpg
import discord
from discord.ext import commands

from bot.config import Settings
from bot.ingest.runtime import IngestRuntime
from bot.registry import ServerRegistry

log = logging.getLogger(__name__)

# Loaded in this order by setup_hook; each module has `async def setup(bot)`.
EXTENSIONS: tuple[str, ...] = (
    "bot.cogs.trigger",
    "bot.cogs.posting",
    "bot.cogs.sessions",
    "bot.cogs.operations",
    "bot.cogs.alerts",
)


def bot_intents() -> discord.Intents:
    """Commands read message text; voice activity needs members and voice states."""
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    intents.voice_states = True
    return intents


class StatsBot(commands.Bot):
    def __init__(
        self,
        *,
        settings: Settings,
        registry: ServerRegistry,
        pool: asyncpg.Pool,
        runtime: IngestRuntime,
        http_session: aiohttp.ClientSession,
        extensions: tuple[str, ...] = EXTENSIONS,
        start_pollers: bool = True,
    ) -> None:
        super().__init__(command_prefix=settings.command_prefix, intents=bot_intents())
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.runtime = runtime
        self.http_session = http_session
        self.initial_extensions = extensions
        self.start_pollers = start_pollers

    async def setup_hook(self) -> None:
        for extension in self.initial_extensions:
            await self.load_extension(extension)
        await self.runtime.start(pollers=self.start_pollers)

    async def close(self) -> None:
        # Drain in-flight imports and close SSH before the gateway goes away.
        await self.runtime.close()
        await super().close()

    async def on_command_error(
        self, ctx: commands.Context[StatsBot], error: commands.CommandError
    ) -> None:
        """Users get one readable line, never a traceback; unexpected errors are logged."""
        if isinstance(error, commands.CommandNotFound):
            return
        if isinstance(error, commands.CommandOnCooldown):
            await ctx.reply(f"Slow down: try again in {error.retry_after:.0f} s.")
        elif isinstance(error, commands.CheckFailure):
            await ctx.reply(f"Sorry, {error}.")
        elif isinstance(error, commands.UserInputError):
            await ctx.reply(f"{error} (see `{ctx.prefix}help {ctx.command}`)")
        else:
            log.error("command %s failed", ctx.command, exc_info=error)
            await ctx.reply(
                "Something went wrong on our side; the operators can see it in the log."
            )

    def is_admin(self, member: discord.abc.User) -> bool:
        """Discord administrator permission, or listed in ADMIN_USER_IDS / ADMIN_ROLE_IDS."""
        if member.id in self.settings.admin_user_ids:
            return True
        roles = getattr(member, "roles", ())
        if any(role.id in self.settings.admin_role_ids for role in roles):
            return True
        perms = getattr(member, "guild_permissions", None)
        return bool(perms and perms.administrator)


def admin_only() -> commands.Check[commands.Context[StatsBot]]:
    """A command check; the refusal is one readable line (see the error handler)."""

    async def predicate(ctx: commands.Context[StatsBot]) -> bool:
        if ctx.bot.is_admin(ctx.author):
            return True
        raise commands.CheckFailure("this command is for server administrators")

    return commands.check(predicate)
