"""The one ingest pipeline every path ends in: webhook trigger, SFTP poller, sweep, push API.

    tracker check -> fetch bytes (SFTP, or the caller's) -> Importer.import_file (one
    transaction: round, ledger row, outbox row) -> outcome to the failover machine and the
    servers' health columns -> optional `on_round_stored` hook (wakes the publisher).

`process()` never raises for operational trouble (SFTP, database, a bad file): it logs with
the server id, records a failed try with backoff (processed.record_failure) and returns a
`ProcessResult`. Only cancellation propagates.

Failover reporting, for webhook-announced files only: stored (imported, duplicate, or found
already done) -> success; download/parse/store failure -> failure; an endstats file stored
before its round, an in-flight or backoff skip -> nothing.

Unannounced files (poll/sweep sources), precisely: a file counts against the webhook
(`record_unannounced_file`) when smart failover is on for its server, the server's machine
is in WEBHOOK mode or a webhook announced any file of that server in this process, no
webhook announced THIS file, the ledger has never seen it, the file name's time (server
time zone) is not before this pipeline started (we were listening), and at least
`unannounced_grace_s` (120 s) have passed since that time. Under the same conditions a
YOUNGER file is deferred (not processed, no failure counted): the webhook should deliver it
within about a second, and a poller racing it would both steal the webhook's success and
blur the failure signal. A deferred file is taken by the next cycle once the grace passed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.db import processed
from bot.db import servers as servers_db
from bot.db.pool import DatabaseTrouble, is_database_error
from bot.importer import MAX_FILE_BYTES, Importer, ImportResult
from bot.ingest.failover import FailoverMachine, FailoverManager, FailoverMode
from bot.ingest.file_tracker import Action, FileTracker, Verdict
from bot.ingest.schedule import ActivityTracker
from bot.ingest.sftp import SFTPError, SFTPErrorKind, SFTPPool
from bot.stats import StatsFileError, parse_filename

log = logging.getLogger(__name__)

Clock = Callable[[], float]
RoundHook = Callable[[ImportResult], Awaitable[None] | None]
SOURCES = frozenset({"webhook", "poll", "sweep", "api", "import"})
EXPLICIT_SOURCES = frozenset({"api", "import"})  # bytes handed over on purpose
DISCOVERY_SOURCES = frozenset({"poll", "sweep"})
# The server, not the file, is unreachable: the rest of a batch waits for the next cycle.
SERVER_DOWN = frozenset(
    {SFTPErrorKind.CONNECTION, SFTPErrorKind.TIMEOUT, SFTPErrorKind.HOST_KEY, SFTPErrorKind.AUTH}
)
# A bad file, not a bad moment: recorded as rejected, never retried.
PERMANENT = frozenset({SFTPErrorKind.TOO_LARGE, SFTPErrorKind.BAD_NAME})
_ANNOUNCE_TTL_S = 3600.0


@dataclass(frozen=True, slots=True)
class ProcessResult:
    server_id: str
    filename: str
    source: str
    outcome: str  # imported | duplicate | rejected | failed | skipped | ignored
    reason: str | None = None
    round_id: int | None = None
    elapsed: float = 0.0  # seconds
    result: ImportResult | None = None
    error_kind: str | None = None  # SFTPErrorKind value, "database" or "other" on failure


@dataclass(slots=True)
class _Job:
    """An admitted file: its tracker claim is held until `released`."""

    server_id: str
    filename: str
    source: str
    t0: float
    data: bytes | None
    done: bool = False
    attempts: int | None = None
    retry_at: float | None = None
    released: bool = False


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, SFTPError):
        return str(exc.kind)
    if is_database_error(exc):
        return "database"
    return "other"


def _consume(task: asyncio.Task[bytes]) -> None:
    # A prefetch whose file is never imported (batch aborted) must not log
    # "Task exception was never retrieved".
    if not task.cancelled():
        task.exception()


class Pipeline:
    def __init__(
        self,
        importer: Importer,
        tracker: FileTracker,
        *,
        sftp: SFTPPool | None = None,
        failover: FailoverManager | None = None,
        activity: ActivityTracker | None = None,
        data_dir: Path = Path("data"),
        clock: Clock = time.time,
        on_round_stored: RoundHook | None = None,
        prefetch: int = 4,
    ) -> None:
        self.importer = importer
        self.pool = importer.pool
        self.tracker = tracker
        self.sftp = sftp
        self.failover = failover
        self.activity = activity or ActivityTracker()
        self.files_dir = data_dir / "files"
        self.on_round_stored = on_round_stored
        self.prefetch = max(1, prefetch)
        self._clock = clock
        self.database = DatabaseTrouble()  # one voice for an outage, shared with the pollers
        self._started_at = clock()
        self._announced: dict[tuple[str, str], float] = {}
        self._webhook_seen: set[str] = set()

    async def process(
        self, server_id: str, filename: str, source: str, data: bytes | None = None
    ) -> ProcessResult:
        """Process one file; `data` None means fetch it over SFTP."""
        admitted = await self._admit(server_id, filename, source, data, time.perf_counter())
        if isinstance(admitted, ProcessResult):
            return admitted
        return await self._run(admitted, None)

    async def process_batch(
        self,
        server_id: str,
        filenames: Iterable[str],
        source: str,
        *,
        stop: Callable[[], bool] | None = None,
    ) -> list[ProcessResult]:
        """Several files of one server over SFTP, imported strictly in the given order while
        up to `prefetch` downloads run ahead. After a server-down error (or when `stop()`
        turns true) the rest is released untouched for a later cycle."""
        results: list[ProcessResult] = []
        jobs: list[_Job] = []
        try:
            for name in filenames:
                admitted = await self._admit(server_id, name, source, None, time.perf_counter())
                if isinstance(admitted, ProcessResult):
                    results.append(admitted)
                else:
                    jobs.append(admitted)
        except BaseException:  # cancelled while admitting: give back the claims taken so far
            for job in jobs:
                self._release_unrun(job, "cancelled")
            raise
        results.extend(await self._run_in_order(jobs, stop))
        return results

    async def drain(self, within: float) -> bool:
        """Wait for every in-flight file (any path) to finish; False when `within` s passed."""
        return await self.tracker.wait_idle(within)

    # -- admission -------------------------------------------------------------------------

    async def _admit(
        self, server_id: str, filename: str, source: str, data: bytes | None, t0: float
    ) -> ProcessResult | _Job:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r} (one of {', '.join(sorted(SOURCES))})")
        try:
            parse_filename(filename)
        except StatsFileError as exc:
            log.warning("[%s] refusing %r via %s: %s", server_id, filename, source, exc.reason)
            return self._report(ProcessResult(server_id, filename, source, "rejected", exc.reason))
        if source == "webhook":
            self._note_announced(server_id, filename)
        try:
            verdict = await self.tracker.begin(
                server_id, filename, explicit=source in EXPLICIT_SOURCES
            )
        except Exception as exc:  # the ledger lookup failed: the database is in trouble
            if is_database_error(exc):
                self.database.report(f"[{server_id}] cannot check {filename} via {source}", exc)
            else:
                log.exception("[%s] cannot check %s via %s", server_id, filename, source)
            failed = ProcessResult(
                server_id, filename, source, "failed", str(exc), error_kind=_error_kind(exc)
            )
            return self._report(failed)
        if not verdict.process:
            return self._skipped(server_id, filename, source, verdict, t0)
        if source in DISCOVERY_SOURCES and self._check_unannounced(server_id, filename, verdict):
            self.tracker.finish(server_id, filename, done=False)
            return ProcessResult(
                server_id, filename, source, "skipped", "deferred: the webhook's grace is running"
            )
        self.activity.note_file(server_id, self._clock())
        return _Job(server_id, filename, source, t0, data)

    def _skipped(
        self, server_id: str, filename: str, source: str, verdict: Verdict, t0: float
    ) -> ProcessResult:
        outcome = "ignored" if verdict.action is Action.IGNORE else "skipped"
        log.debug("[%s] %s %s via %s: %s", server_id, outcome, filename, source, verdict.reason)
        elapsed = time.perf_counter() - t0
        res = ProcessResult(server_id, filename, source, outcome, verdict.reason, elapsed=elapsed)
        if verdict.done:  # a webhook announcing a file already stored did its job
            self._report(res, stored=True)
        return res

    def _check_unannounced(self, server_id: str, filename: str, verdict: Verdict) -> bool:
        """True: defer the file. Counts it as unannounced when its grace is over."""
        machine = self._machine(server_id)
        if machine is None or not machine.enabled or verdict.attempts:
            return False
        if machine.mode is not FailoverMode.WEBHOOK and server_id not in self._webhook_seen:
            return False
        if (server_id, filename) in self._announced:
            return False
        at = self.tracker.file_time(server_id, filename)
        if at is None or at < self._started_at:
            return False
        if self._clock() - at < machine.thresholds.unannounced_grace_s:
            return True
        machine.record_unannounced_file(filename)
        return False

    def _note_announced(self, server_id: str, filename: str) -> None:
        now = self._clock()
        self._webhook_seen.add(server_id)
        self._announced[(server_id, filename)] = now
        if len(self._announced) > 1000:  # only needed until the file is processed
            cutoff = now - _ANNOUNCE_TTL_S
            self._announced = {k: at for k, at in self._announced.items() if at >= cutoff}

    # -- running ---------------------------------------------------------------------------

    async def _run_in_order(
        self, jobs: list[_Job], stop: Callable[[], bool] | None
    ) -> list[ProcessResult]:
        results: list[ProcessResult] = []
        fetches: dict[int, asyncio.Task[bytes]] = {}
        abort: str | None = None
        try:
            for i, job in enumerate(jobs):
                if abort is None and stop is not None and stop():
                    abort = "left for the next cycle: stopping"
                if abort is not None:
                    results.append(self._release_unrun(job, abort))
                    continue
                for j in range(i, min(i + self.prefetch, len(jobs))):
                    if j not in fetches:
                        fetches[j] = asyncio.create_task(self._fetch(jobs[j]))
                        fetches[j].add_done_callback(_consume)
                res = await self._run(job, fetches.pop(i))
                results.append(res)
                if res.error_kind in SERVER_DOWN:
                    abort = f"left for the next cycle: {res.reason}"
        finally:
            for task in fetches.values():
                task.cancel()
            for job in jobs:
                if not job.released:
                    self._release_unrun(job, "cancelled")
        return results

    def _release_unrun(self, job: _Job, reason: str) -> ProcessResult:
        self.tracker.finish(job.server_id, job.filename, done=False)
        job.released = True
        return ProcessResult(job.server_id, job.filename, job.source, "skipped", reason)

    async def _fetch(self, job: _Job) -> bytes:
        if job.data is not None:
            return job.data
        if self.sftp is None or job.server_id not in self.sftp:
            raise SFTPError(job.server_id, SFTPErrorKind.OTHER, "no SFTP access configured")
        local_dir = self.files_dir / job.server_id
        return await self.sftp.get(job.server_id).download(job.filename, local_dir, MAX_FILE_BYTES)

    async def _run(self, job: _Job, fetch: Awaitable[bytes] | None) -> ProcessResult:
        try:
            try:
                data = await (fetch if fetch is not None else self._fetch(job))
                imported = await self.importer.import_file(
                    job.server_id, job.filename, data, job.source
                )
            except Exception as exc:  # CancelledError is a BaseException: it propagates
                res = await self._on_error(job, exc)
            else:
                res = await self._on_imported(job, imported)
        finally:
            self.tracker.finish(
                job.server_id,
                job.filename,
                done=job.done,
                attempts=job.attempts,
                retry_at=job.retry_at,
            )
            job.released = True
        self._report(res)
        if res.outcome == "imported" and res.result is not None:
            await self._call_hook(res.result)
        return res

    async def _on_imported(self, job: _Job, r: ImportResult) -> ProcessResult:
        elapsed = time.perf_counter() - job.t0
        self.database.recovered()
        job.done = r.outcome in ("imported", "duplicate", "rejected")
        if r.outcome == "failed":  # retryable (e.g. still empty): schedule the next try
            await self._note_failure(job, r.reason or "import failed", schedule_only=True)
        return ProcessResult(
            job.server_id, job.filename, job.source, r.outcome, r.reason, r.round_id, elapsed, r
        )

    async def _on_error(self, job: _Job, exc: Exception) -> ProcessResult:
        kind = _error_kind(exc)
        if kind == "database":
            self.database.report(f"[{job.server_id}] {job.filename} not stored", exc)
        elif kind == "other":
            log.exception("[%s] unexpected error processing %s", job.server_id, job.filename)
        permanent = isinstance(exc, SFTPError) and exc.kind in PERMANENT
        await self._note_failure(job, str(exc), permanent=permanent)
        outcome = "rejected" if permanent else "failed"
        elapsed = time.perf_counter() - job.t0
        return ProcessResult(
            job.server_id, job.filename, job.source, outcome, str(exc), None, elapsed, None, kind
        )

    async def _note_failure(
        self, job: _Job, error: str, *, schedule_only: bool = False, permanent: bool = False
    ) -> None:
        """Ledger row (failed with backoff, or rejected) + servers.last_error, one transaction."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        sid, name = job.server_id, job.filename
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await servers_db.ensure_server(conn, sid)
                if permanent:
                    await processed.record(
                        conn, sid, name, status="rejected", source=job.source, error=error
                    )
                    job.done, retry = True, None
                elif schedule_only:
                    retry = await processed.schedule_retry(conn, sid, name, now=now)
                else:
                    retry = await processed.record_failure(
                        conn, sid, name, source=job.source, error=error, now=now
                    )
                await servers_db.note_error(conn, sid, f"{name}: {error}")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            self.database.report(f"[{sid}] cannot record the failure of {name}", exc)
            return
        if retry is not None:
            job.attempts, job.retry_at = retry[0], retry[1].timestamp()
        log.warning(
            "[%s] %s via %s %s: %s%s",
            sid,
            name,
            job.source,
            "rejected" if permanent else "failed",
            error,
            "" if retry is None else f" (attempt {retry[0]}, next try {retry[1]:%H:%M:%S} UTC)",
        )

    # -- reporting -------------------------------------------------------------------------

    def _machine(self, server_id: str) -> FailoverMachine | None:
        if self.failover is None or server_id not in self.failover:
            return None
        return self.failover.get(server_id)

    def _report(self, res: ProcessResult, *, stored: bool = False) -> ProcessResult:
        """Tell the failover machine how a webhook-announced file went."""
        machine = self._machine(res.server_id) if res.source == "webhook" else None
        if machine is None:
            return res
        r = res.result
        if r is not None and r.kind == "endstats" and r.round_id is None:
            return res  # endstats before its round: fine, paired later; neither verdict
        if stored or res.outcome in ("imported", "duplicate"):
            machine.record_webhook_success()
        elif res.outcome in ("rejected", "failed"):
            machine.record_webhook_failure(f"{res.filename}: {res.reason}")
        return res

    async def _call_hook(self, result: ImportResult) -> None:
        if self.on_round_stored is None:
            return
        try:
            outcome = self.on_round_stored(result)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("[%s] on_round_stored hook failed", result.server_id)
