"""IngestRuntime: the ingest side of the process, built once from settings + registry + pool.

The Discord bot and the headless runner each own one; the webhook listener and the push
API call `runtime.pipeline.process(...)`, admin commands use `runtime.poller.run_now()` and
`runtime.failover.get_status(...)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bot.config import Settings
from bot.db import failover as failover_db
from bot.db import servers as servers_db
from bot.importer import make_importer
from bot.ingest.failover import DAY_S, FailoverManager, FailoverThresholds, Transition
from bot.ingest.file_tracker import FileTracker
from bot.ingest.pipeline import Pipeline, RoundHook
from bot.ingest.poller import PollerService
from bot.ingest.schedule import ActivityTracker, Clock, PollCadence, PollSchedule
from bot.ingest.sftp import SFTPPool
from bot.registry import ServerRegistry

log = logging.getLogger(__name__)


class IngestRuntime:
    def __init__(
        self,
        settings: Settings,
        registry: ServerRegistry,
        pool: asyncpg.Pool,
        *,
        clock: Clock = time.time,
        on_round_stored: RoundHook | None = None,
        drain_timeout: float = 10.0,
        sftp_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.drain_timeout = drain_timeout
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()
        self._transition_listeners: list[Callable[[Transition], None]] = []
        self.importer = make_importer(pool, settings, registry)
        self.tracker = FileTracker(
            pool,
            timezone_for=self.timezone_for,
            lookback_hours=settings.startup_lookback_hours,
            max_attempts=settings.max_import_attempts,
            clock=clock,
        )
        self.sftp = self._sftp_pool(sftp_options or {})
        self.failover = FailoverManager(
            registry.ids,
            FailoverThresholds.from_settings(settings),
            enabled=settings.smart_failover_enabled,
            clock=clock,
            on_transition=self._on_transition,
        )
        self.activity = ActivityTracker()
        self.schedule = PollSchedule(
            registry.pollable(), PollCadence.from_settings(settings), self.activity, clock
        )
        self.pipeline = self._pipeline(on_round_stored)
        self.poller = self._poller_service()

    def _sftp_pool(self, overrides: dict[str, Any]) -> SFTPPool:
        s = self.settings
        options = {
            "max_concurrency": s.ssh_max_concurrency_per_host,
            "connect_timeout": s.ssh_connect_timeout,
            "op_timeout": s.ssh_operation_timeout,
            **overrides,
        }
        return SFTPPool(self.registry.enabled(), **options)

    def _pipeline(self, on_round_stored: RoundHook | None) -> Pipeline:
        return Pipeline(
            self.importer,
            self.tracker,
            sftp=self.sftp,
            failover=self.failover,
            activity=self.activity,
            data_dir=self.settings.data_dir,
            clock=self._clock,
            on_round_stored=on_round_stored,
            prefetch=self.settings.ssh_max_concurrency_per_host,
        )

    def _poller_service(self) -> PollerService:
        return PollerService(
            self.registry.pollable(),
            sftp=self.sftp,
            pipeline=self.pipeline,
            failover=self.failover,
            schedule=self.schedule,
            clock=self._clock,
            drain_timeout=self.drain_timeout,
        )

    def timezone_for(self, server_id: str) -> ZoneInfo:
        if server_id in self.registry:
            return self.registry.get(server_id).timezone
        return self.settings.default_zone

    async def prepare(self) -> None:
        """Everything but the pollers: server rows, warm tracker, failover history."""
        async with self.pool.acquire() as conn:
            for server in self.registry:
                await servers_db.ensure_server(conn, server.server_id, server.server_name)
            since = datetime.fromtimestamp(self._clock() - DAY_S, UTC)
            history = await failover_db.load_transitions(conn, since)
        await self.tracker.warm()
        self.failover.seed_history(history)

    async def start(self, *, pollers: bool = True) -> None:
        await self.prepare()
        if pollers:
            self.poller.start()

    async def close(self) -> None:
        """Stop the pollers, let in-flight files (any path) finish, flush, close SFTP."""
        await self.poller.stop(self.drain_timeout)
        if not await self.pipeline.drain(self.drain_timeout):
            log.warning(
                "ingest: %d file(s) still in flight at shutdown", self.tracker.in_flight_count
            )
        await self.flush()
        await self.sftp.close_all()

    async def flush(self) -> None:
        """Wait for queued failover_transitions writes."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def add_transition_listener(self, listener: Callable[[Transition], None]) -> None:
        """Also call `listener` (synchronously, from the event loop) with every transition."""
        self._transition_listeners.append(listener)

    def remove_transition_listener(self, listener: Callable[[Transition], None]) -> None:
        if listener in self._transition_listeners:
            self._transition_listeners.remove(listener)

    def _on_transition(self, t: Transition) -> None:
        # Called synchronously by the machine: the insert runs as a task of its own.
        task = asyncio.get_running_loop().create_task(self._persist(t))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        for listener in list(self._transition_listeners):
            try:
                listener(t)
            except Exception:  # a broken listener must not stop the others or the audit row
                log.exception("[%s] failover transition listener failed", t.server_id)

    async def _persist(self, t: Transition) -> None:
        try:
            async with self.pool.acquire() as conn:
                await failover_db.insert_transition(conn, t)
        except Exception as exc:  # the mode already changed; losing the audit row is logged
            log.error(
                "[%s] cannot persist failover transition %s -> %s: %s",
                t.server_id,
                t.from_mode,
                t.to_mode,
                exc,
            )
