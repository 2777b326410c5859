"""The push API as an aiohttp application: ingest, /health, /metrics.

Served inside the bot (`API_ENABLED=true`, see `maybe_serve_api`) or alone (`python -m bot
api`, several instances behind a reverse proxy against one PostgreSQL). The app keeps no
state that matters across instances: keys, files and the outbox live in the database; only
the rate limits and the in-process metrics are per instance.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.api.ingest import DB_ERRORS, DB_RETRY_AFTER_S, IngestHandler
from bot.api.metrics import (
    CONTENT_TYPE,
    Family,
    Metrics,
    database_families,
    encode,
    failover_family,
)
from bot.config import Settings
from bot.ingest.pipeline import Pipeline
from bot.registry import ServerRegistry

if TYPE_CHECKING:
    from bot.ingest.runtime import IngestRuntime

log = logging.getLogger(__name__)

INGEST_PATH = "/api/ingest/stats"
DB_CHECK_TIMEOUT_S = 3.0
SHUTDOWN_TIMEOUT_S = 10.0
# After an early answer (401, 413) the rest of the body is read and dropped for this long,
# so the client sees the answer instead of a reset; aiohttp's default is 10 s.
LINGER_S = 2.0
METRICS_KEY = web.AppKey("metrics", Metrics)


def _version() -> str:
    try:
        return importlib.metadata.version("etl-stats-bot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _AccessLog(AbstractAccessLogger):
    """One DEBUG line per request: method, path, status, time. Never headers (keys)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug(
            "%s %s %s -> %d in %.1f ms",
            request.remote,
            request.method,
            request.path,
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


class StatusHandler:
    """GET /health and GET /metrics."""

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, live: IngestRuntime | None) -> None:
        self.pool = pool
        self.metrics = metrics
        self.live = live  # the runtime whose failover machines are the real ones, if any
        self.version = _version()

    async def health(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_S), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
            database = "ok"
        except DB_ERRORS as exc:
            log.warning("health: database unreachable: %s", exc)
            database = "unreachable"
        ok = database == "ok"
        body = {
            "status": "ok" if ok else "unavailable",
            "database": database,
            "version": self.version,
            "uptime_s": round(self.metrics.uptime_s(), 1),
        }
        headers = {} if ok else {"Retry-After": str(DB_RETRY_AFTER_S)}
        return web.json_response(body, status=200 if ok else 503, headers=headers)

    async def metrics_text(self, request: web.Request) -> web.Response:
        families = self.metrics.families()
        live = self._live_failover()
        if live is not None:
            families.append(live)
        up = Family("etl_database_up", "gauge", "1 when the last scrape could read PostgreSQL.")
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT_S), self.pool.acquire() as conn:
                families += await database_families(conn, failover=live is None)
            up.add(1)
        except DB_ERRORS as exc:
            log.warning("metrics: database unreachable: %s", exc)
            up.add(0)
        families.append(up)
        return web.Response(body=encode(families).encode(), headers={"Content-Type": CONTENT_TYPE})

    def _live_failover(self) -> Family | None:
        """The failover machines are only meaningful in the process that runs the bot."""
        if self.live is None:
            return None
        return failover_family(self.live.failover.all_status())


def make_app(
    source: IngestRuntime | Pipeline,
    pool: asyncpg.Pool,
    settings: Settings,
    registry: ServerRegistry | None = None,
    metrics: Metrics | None = None,
    *,
    live_failover: bool = False,
) -> web.Application:
    """The application. Serve it with `serve_api` (it turns aiohttp's own request-body
    decompression off: the ingest handler inflates gzip itself, with a cap).

    live_failover: `source` is the runtime of the bot process itself, so /metrics reports its
    failover machines; otherwise (a standalone API) the last recorded transition per server.
    """
    runtime = None if isinstance(source, Pipeline) else source
    pipeline = source if isinstance(source, Pipeline) else source.pipeline
    metrics = metrics or Metrics()
    ingest = IngestHandler(
        pipeline,
        pool,
        max_body_bytes=settings.api_max_body_bytes,
        per_server_per_minute=settings.api_rate_limit_per_server,
        global_per_minute=settings.api_rate_limit_global,
        metrics=metrics,
        registry=registry,
    )
    status = StatusHandler(pool, metrics, runtime if live_failover else None)
    app = web.Application(client_max_size=settings.api_max_body_bytes)
    app[METRICS_KEY] = metrics
    app.router.add_post(INGEST_PATH, ingest.handle)
    app.router.add_get("/health", status.health)
    app.router.add_get("/metrics", status.metrics_text)
    return app


@dataclass(frozen=True, slots=True)
class ApiServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@asynccontextmanager
async def serve_api(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = SHUTDOWN_TIMEOUT_S
) -> AsyncIterator[ApiServer]:
    """Listen on host:port (0: any free port) until the block exits; then stop accepting,
    give running requests `shutdown_timeout` seconds, and close."""
    runner = web.AppRunner(
        app,
        auto_decompress=False,  # see IngestHandler: gzip is inflated with a cap
        access_log_class=_AccessLog,
        access_log=logging.getLogger("bot.api.access"),
        shutdown_timeout=shutdown_timeout,
        lingering_time=LINGER_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        server = ApiServer(str(bound_host), int(bound_port))
        log.info("push API listening on %s", server.url)
        yield server
    finally:
        await runner.cleanup()
        log.info("push API stopped")


@asynccontextmanager
async def maybe_serve_api(
    settings: Settings,
    runtime: IngestRuntime,
    pool: asyncpg.Pool,
    registry: ServerRegistry,
) -> AsyncIterator[ApiServer | None]:
    """The in-process API of `run` when API_ENABLED=true; nothing otherwise."""
    if not settings.api_enabled:
        yield None
        return
    app = make_app(runtime, pool, settings, registry, Metrics(), live_failover=True)
    async with serve_api(app, settings.api_host, settings.api_port) as server:
        yield server
