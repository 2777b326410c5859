"""SFTP pollers: one task per pollable server, side by side.

Each server runs its own loop, so one server's errors, timeouts or bad files never delay or
stop another's; a cycle over all servers (`poll_once`) costs the slowest server, not the sum.
Every loop iteration (`tick`) checks the failover heartbeat, then:

- polling enabled (POLLING / FORCED_POLLING): poll when PollSchedule says due (active 60 s,
  idle 600 s, nothing in the server's dead hours) and no error backoff is running;
- polling disabled (WEBHOOK): a safety sweep every FAILOVER_SAFETY_SWEEP_MINUTES (source
  'sweep'); what it finds that no webhook announced counts as a webhook failure (see
  bot.ingest.pipeline for the exact rule) and turns polling back on.

A server whose listing fails backs off: active interval * 2^(n-1), capped at the idle
interval. Loops wake at least every active interval (the heartbeat and a session starting
need a look), or at once on `run_now()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from bot.db import servers as servers_db
from bot.db.pool import is_database_error
from bot.ingest.failover import FailoverMachine, FailoverManager
from bot.ingest.pipeline import SERVER_DOWN, Pipeline, ProcessResult
from bot.ingest.schedule import Clock, PollSchedule, in_dead_hours
from bot.ingest.sftp import RemoteFile, SFTPPool
from bot.registry import ServerConfig
from bot.stats import parse_filename

log = logging.getLogger(__name__)

_MIN_WAIT_S = 1.0  # never spin, whatever the arithmetic says


@dataclass(frozen=True, slots=True)
class PollSummary:
    server_id: str
    files_seen: int = 0
    new: int = 0  # files that went through the pipeline (not skipped / ignored)
    imported: int = 0
    errors: int = 0  # files that failed or were rejected, plus a failed listing
    seconds: float = 0.0
    error: str | None = None  # listing failed, or the server went away mid-cycle
    source: str = "poll"

    def line(self) -> str:
        text = (
            f"{self.server_id}: {self.files_seen} files, {self.new} new, "
            f"{self.imported} imported, {self.errors} errors, {self.seconds:.2f} s"
        )
        return f"{text} ({self.error})" if self.error else text


def oldest_first(files: Iterable[RemoteFile]) -> list[RemoteFile]:
    """By the file name's time, stats before endstats of the same second: R1 before its R2."""

    def key(f: RemoteFile) -> tuple[object, bool, str]:
        name = parse_filename(f.name)
        return name.timestamp, name.is_endstats, f.name

    return sorted(files, key=key)


def summarize(
    server_id: str, seen: int, results: list[ProcessResult], seconds: float, source: str
) -> PollSummary:
    new = [r for r in results if r.outcome not in ("skipped", "ignored")]
    failed = [r for r in new if r.outcome in ("failed", "rejected")]
    # A server-down failure ends the server's cycle: that is the cycle's error.
    down = next((r.reason for r in results if r.error_kind in SERVER_DOWN), None)
    return PollSummary(
        server_id,
        files_seen=seen,
        new=len(new),
        imported=sum(r.outcome == "imported" for r in results),
        errors=len(failed),
        seconds=seconds,
        error=down,
        source=source,
    )


class PollerService:
    def __init__(
        self,
        servers: Iterable[ServerConfig],
        *,
        sftp: SFTPPool,
        pipeline: Pipeline,
        failover: FailoverManager,
        schedule: PollSchedule,
        clock: Clock = time.time,
        drain_timeout: float = 10.0,
    ) -> None:
        self.servers = {s.server_id: s for s in servers if s.pollable and s.server_id in sftp}
        self.sftp = sftp
        self.pipeline = pipeline
        self.failover = failover
        self.schedule = schedule
        self.drain_timeout = drain_timeout
        self._clock = clock
        self._locks = {sid: asyncio.Lock() for sid in self.servers}
        self._wake = {sid: asyncio.Event() for sid in self.servers}
        self._forced: set[str] = set()
        self._failures: dict[str, int] = {}
        self._backoff_until: dict[str, float] = {}
        self._stopping = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- one-shot --------------------------------------------------------------------------

    async def poll_once(
        self, server_ids: Iterable[str] | None = None, *, source: str = "poll"
    ) -> list[PollSummary]:
        """One cycle over the given (default: all) servers in parallel, whatever the schedule
        and the failover mode say. Logs ONE summary line naming every server."""
        ids = list(self.servers) if server_ids is None else list(server_ids)
        for sid in ids:
            if sid not in self.servers:
                raise KeyError(f"server {sid!r} is not polled (no SFTP access or disabled)")
        t0 = time.perf_counter()
        summaries = await asyncio.gather(*(self._poll_server(sid, source) for sid in ids))
        took = time.perf_counter() - t0
        level = logging.WARNING if any(s.error or s.errors for s in summaries) else logging.INFO
        log.log(
            level,
            "%s cycle over %d server(s) in %.2f s: %s",
            source,
            len(ids),
            took,
            "; ".join(s.line() for s in summaries),
        )
        return list(summaries)

    async def tick(self, server_id: str) -> PollSummary | None:
        """One loop iteration for one server: heartbeat, then poll or sweep if due."""
        now = self._clock()
        machine = self._machine(server_id)
        if machine is not None:
            machine.check_heartbeat(self._active(server_id, now))
        forced = server_id in self._forced
        self._forced.discard(server_id)
        source = self._due_source(server_id, machine, now, forced)
        if source is None:
            return None
        self.schedule.mark_polled(server_id, now)
        if source == "sweep" and machine is not None:
            machine.record_sweep()
        summary = await self._poll_server(server_id, source)
        interesting = summary.new or summary.error or source == "sweep"
        log.log(logging.INFO if interesting else logging.DEBUG, "%s %s", source, summary.line())
        return summary

    # -- the loops -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks.values())

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._tasks = {
            sid: asyncio.create_task(self._loop(sid), name=f"poller-{sid}") for sid in self.servers
        }
        log.info("pollers started for %d server(s): %s", len(self._tasks), ", ".join(self._tasks))

    async def stop(self, within: float | None = None) -> None:
        """Finish the file each server is on (within `within` s, default drain_timeout), then
        cancel what is left.
        A cancelled import rolls back its transaction, so nothing is half-stored."""
        if not self._tasks:
            return
        self._stopping.set()
        for event in self._wake.values():
            event.set()
        tasks = list(self._tasks.values())
        grace = self.drain_timeout if within is None else within
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            log.warning("pollers: %d server(s) cancelled mid-cycle at shutdown", len(pending))
        self._tasks = {}
        self._stopping.clear()  # poll_once() stays usable after stop()
        log.info("pollers stopped")

    def run_now(self, server_id: str | None = None) -> None:
        """Poll now (all servers, or one), regardless of schedule and backoff. Needs start()."""
        ids = list(self.servers) if server_id is None else [server_id]
        for sid in ids:
            if sid not in self.servers:
                raise KeyError(f"server {sid!r} is not polled (no SFTP access or disabled)")
            self._forced.add(sid)
            self._wake[sid].set()

    async def _loop(self, server_id: str) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick(server_id)
            except Exception:  # one bad iteration must not end this server's polling
                log.exception("[%s] poller iteration failed; continuing", server_id)
            await self._sleep(server_id, self._next_wait(server_id))

    async def _sleep(self, server_id: str, seconds: float) -> None:
        event = self._wake[server_id]
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass
        event.clear()

    # -- decisions -------------------------------------------------------------------------

    def _machine(self, server_id: str) -> FailoverMachine | None:
        return self.failover.get(server_id) if server_id in self.failover else None

    def _active(self, server_id: str, now: float) -> bool:
        c = self.schedule.cadence
        return self.schedule.tracker.is_active(server_id, now, c.grace_s, c.voice_min_players)

    def _due_source(
        self, server_id: str, machine: FailoverMachine | None, now: float, forced: bool
    ) -> str | None:
        if machine is None or machine.polling_enabled:
            if forced:
                return "poll"
            backing_off = now < self._backoff_until.get(server_id, 0.0)
            return "poll" if self.schedule.due(server_id, now) and not backing_off else None
        if forced:
            return "sweep"
        tz = self.servers[server_id].timezone
        if in_dead_hours(now, tz, self.schedule.cadence.dead_hours):
            return None
        return "sweep" if machine.safety_sweep_due() else None

    def _next_wait(self, server_id: str) -> float:
        now = self._clock()
        cap = self.schedule.cadence.active_interval_s
        machine = self._machine(server_id)
        wait = cap
        if machine is None or machine.polling_enabled:
            until = self.schedule.seconds_until_due(server_id, now)
            wait = cap if until is None else until
            wait = max(wait, self._backoff_until.get(server_id, 0.0) - now)
        return min(max(wait, _MIN_WAIT_S), cap)

    # -- one server ------------------------------------------------------------------------

    async def _poll_server(self, server_id: str, source: str) -> PollSummary:
        """List, then process what is new oldest first. Never raises (but for cancellation)."""
        async with self._locks[server_id]:
            t0 = time.perf_counter()
            try:
                files = oldest_first(await self.sftp.get(server_id).list_stats_files())
            except Exception as exc:
                return await self._listing_failed(server_id, source, exc, t0)
            await self._health(server_id, None)
            results = await self.pipeline.process_batch(
                server_id, [f.name for f in files], source, stop=self._stopping.is_set
            )
            summary = summarize(server_id, len(files), results, time.perf_counter() - t0, source)
            self._record(summary)
            return summary

    async def _listing_failed(
        self, server_id: str, source: str, exc: Exception, t0: float
    ) -> PollSummary:
        log.warning("[%s] %s: listing failed: %s", server_id, source, exc)
        await self._health(server_id, f"listing failed: {exc}")
        summary = PollSummary(
            server_id, errors=1, seconds=time.perf_counter() - t0, error=str(exc), source=source
        )
        self._record(summary)
        return summary

    def _record(self, summary: PollSummary) -> None:
        """Failover status and the error backoff of this server."""
        sid = summary.server_id
        machine = self._machine(sid)
        if machine is not None:
            machine.record_poll_result(summary.error is None, summary.error)
        if summary.error is None:
            self._failures.pop(sid, None)
            self._backoff_until.pop(sid, None)
            return
        n = self._failures[sid] = self._failures.get(sid, 0) + 1
        c = self.schedule.cadence
        delay = min(c.active_interval_s * 2 ** (n - 1), c.idle_interval_s)
        self._backoff_until[sid] = self._clock() + delay

    async def _health(self, server_id: str, error: str | None) -> None:
        """servers.last_seen on a good listing, last_error/last_error_at on a bad one."""
        try:
            async with self.pipeline.pool.acquire() as conn:
                if error is None:
                    await servers_db.note_contact(conn, server_id)
                else:
                    await servers_db.note_error(conn, server_id, error)
        except Exception as exc:  # health bookkeeping must never break polling
            if is_database_error(exc):
                self.pipeline.database.report(f"[{server_id}] cannot update server health", exc)
            else:
                log.exception("[%s] cannot update server health", server_id)
