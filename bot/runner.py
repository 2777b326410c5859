"""`python -m bot run [--headless]`: the long-running process."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import asyncpg

from bot.api.app import maybe_serve_api
from bot.config import ConfigError, Settings
from bot.db import servers as servers_db
from bot.db.listen import listen_for_rounds, pool_connector
from bot.db.migrate import migrate
from bot.db.pool import open_database
from bot.discord_ui.publisher import Post, Publisher
from bot.discord_ui.text import round_post_text
from bot.ingest.runtime import IngestRuntime
from bot.ingest.sftp import check_host_keys
from bot.registry import ServerRegistry, load_registry

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 10.0


def check_startup(settings: Settings, registry: ServerRegistry) -> None:
    """Refuse to start on configuration that cannot work; each problem named."""
    problems = check_host_keys(registry.pollable())
    if settings.control_channel_id and not registry.all_webhook_ids:
        problems.append(
            "CONTROL_CHANNEL_ID is set but no server in servers.json has trigger_webhook_ids"
        )
    if problems:
        raise ConfigError.collect("start-up configuration", problems)


def startup_summary(settings: Settings, registry: ServerRegistry, *, headless: bool) -> str:
    polled = len(registry.pollable())
    push = sum(1 for s in registry.enabled() if s.ssh is None)
    api = f"on {settings.api_host}:{settings.api_port}" if settings.api_enabled else "off"
    return (
        f"starting {'headless' if headless else 'Discord bot'}: {len(registry)} server(s) "
        f"({polled} polled over SFTP, {push} push-only), control channel "
        f"{settings.control_channel_id or 'none'}, stats channel "
        f"{settings.stats_channel_id or 'per server'}, smart failover "
        f"{'on' if settings.smart_failover_enabled else 'off'}, API {api}"
    )


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[tuple[ServerRegistry, asyncpg.Pool]]:
    registry = load_registry(settings)
    check_startup(settings, registry)
    async with open_database(settings) as pool:
        await migrate(pool)
        async with pool.acquire() as conn:
            await servers_db.sync_registry(
                conn, [(s.server_id, s.server_name, s.enabled) for s in registry]
            )
        yield registry, pool


def stop_event() -> asyncio.Event:
    """Set on SIGTERM/SIGINT, so systemd stops us cleanly."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def log_sink(post: Post) -> tuple[int | None, list[int]]:
    """Headless: what would have been posted goes to the log."""
    log.info("[%s] round post (headless):\n%s", post.server_id, round_post_text(post.data))
    return None, []


async def run_headless(settings: Settings) -> int:
    async with services(settings) as (registry, pool):
        log.info("%s", startup_summary(settings, registry, headless=True))
        publisher = Publisher(pool, log_sink, posts_per_minute=settings.posts_per_minute_per_server)
        runtime = IngestRuntime(
            settings, registry, pool, on_round_stored=lambda _r: publisher.wake.set()
        )
        await runtime.start()
        tasks = [
            asyncio.create_task(publisher.run(), name="publisher"),
            # Rounds stored by other processes (push-API instances) wake it too.
            asyncio.create_task(
                listen_for_rounds(pool_connector(pool), lambda _p: publisher.wake.set()),
                name="round-listener",
            ),
        ]
        async with maybe_serve_api(settings, runtime, pool, registry):
            await stop_event().wait()
            log.info("stopping: draining in-flight imports")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(runtime.close(), SHUTDOWN_GRACE_S)
    return 0


async def run_discord(settings: Settings) -> int:
    from bot.app import StatsBot  # discord.py is only needed here

    async with services(settings) as (registry, pool), aiohttp.ClientSession() as http:
        log.info("%s", startup_summary(settings, registry, headless=False))
        runtime = IngestRuntime(settings, registry, pool)
        bot = StatsBot(
            settings=settings, registry=registry, pool=pool, runtime=runtime, http_session=http
        )
        async with bot, maybe_serve_api(settings, runtime, pool, registry):
            stopping = stop_event()
            runner = asyncio.create_task(bot.start(settings.discord_token or ""))
            waiter = asyncio.create_task(stopping.wait())
            done, _ = await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                log.info("stopping: draining in-flight imports")
                await asyncio.wait_for(bot.close(), SHUTDOWN_GRACE_S)
            waiter.cancel()
            await runner
    return 0
