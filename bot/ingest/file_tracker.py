"""FileTracker: must `(server_id, filename)` be processed now? One shared instance per process.

Layers, cheapest first; the first that answers wins:

1. lookback: the file name's time (in the SERVER's time zone) is older than
   STARTUP_LOOKBACK_HOURS -> IGNORE. Nothing is recorded, so an explicit import can still
   take the file later. Explicit deliveries (``explicit=True``: the push API and the import
   verb hand over the bytes on purpose) skip this layer. 0 hours means "no limit".
2. in flight: another caller is processing the same key right now -> SKIP. The key is
   claimed synchronously (no await between the test and the claim), so the webhook and the
   poller can never both pass this point for one file.
3. the in-memory done set (warmed from the database at start) -> SKIP.
4. remembered retry state: a failed file whose backoff has not elapsed, or one that used up
   MAX_IMPORT_ATTEMPTS -> SKIP without a database round trip.
5. the processed_files row: done/rejected -> SKIP; failed with attempts left and
   next_attempt_at <= now -> PROCESS; failed within its backoff or out of attempts -> SKIP
   (giving up is logged once per file).

Layers 4 and 5's backoff/attempt limits are also skipped for explicit deliveries: the
backoff exists to stop a polling loop hammering a bad file, not to refuse bytes handed over.

A PROCESS verdict holds the claim: the caller MUST call ``finish()`` (in a ``finally``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import asyncpg

from bot.db import processed
from bot.stats import StatsFileError, parse_filename

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Key = tuple[str, str]
_PRUNE_EVERY_S = 3600.0


class Action(StrEnum):
    PROCESS = "process"
    SKIP = "skip"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    attempts: int = 0  # tries already in the ledger (0: never tried)
    in_flight: bool = False  # SKIP because someone else is processing it right now
    done: bool = False  # SKIP because the ledger says done or rejected

    @property
    def process(self) -> bool:
        return self.action is Action.PROCESS


class FileTracker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        timezone_for: Callable[[str], ZoneInfo],
        lookback_hours: float = 168,
        max_attempts: int = 5,
        clock: Clock = time.time,
    ) -> None:
        self.pool = pool
        self.timezone_for = timezone_for
        self.lookback_s = lookback_hours * 3600.0
        self.max_attempts = max_attempts
        self._clock = clock
        self._in_flight: set[Key] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._done: dict[Key, float] = {}  # key -> file time (epoch), for pruning
        self._retry_at: dict[Key, float] = {}
        self._gave_up: set[Key] = set()
        self._pruned_at = clock()

    # -- facts ---------------------------------------------------------------------------

    def file_time(self, server_id: str, filename: str) -> float | None:
        """The file name's timestamp as epoch seconds (server-local wall clock), or None."""
        try:
            stamp = parse_filename(filename).timestamp
        except StatsFileError:
            return None
        return stamp.replace(tzinfo=self.timezone_for(server_id)).timestamp()

    def too_old(self, server_id: str, filename: str) -> bool:
        if self.lookback_s <= 0:
            return False
        at = self.file_time(server_id, filename)
        return at is not None and at < self._clock() - self.lookback_s

    def is_in_flight(self, server_id: str, filename: str) -> bool:
        return (server_id, filename) in self._in_flight

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    def is_done(self, server_id: str, filename: str) -> bool:
        return (server_id, filename) in self._done

    # -- lifecycle -----------------------------------------------------------------------

    async def warm(self) -> int:
        """Load done/rejected rows of the lookback window into memory; returns how many."""
        now = self._clock()
        since = now - self.lookback_s if self.lookback_s > 0 else 0.0
        async with self.pool.acquire() as conn:
            rows = await processed.final_since(conn, datetime.fromtimestamp(since, UTC))
        for server_id, filename in rows:
            self._remember_done((server_id, filename))
        log.info("file tracker warmed with %d processed file(s)", len(rows))
        return len(rows)

    async def begin(self, server_id: str, filename: str, *, explicit: bool = False) -> Verdict:
        """Decide; on PROCESS the key is claimed until ``finish()``."""
        key = (server_id, filename)
        early = self._memory_verdict(key, explicit)
        if early is not None:
            return early
        self._claim(key)
        try:
            verdict = await self._ledger_verdict(key, explicit)
        except BaseException:
            self._release(key)
            raise
        if not verdict.process:
            self._release(key)
        return verdict

    def finish(
        self,
        server_id: str,
        filename: str,
        *,
        done: bool,
        attempts: int | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Release the claim. done: stored or rejected for good. Otherwise, when known, the
        attempts so far and the epoch of the next try are remembered to skip the database."""
        key = (server_id, filename)
        if done:
            self._remember_done(key)
            self._retry_at.pop(key, None)
            self._gave_up.discard(key)
        elif attempts is not None and attempts >= self.max_attempts:
            self._give_up(key, attempts)
        elif retry_at is not None:
            self._retry_at[key] = retry_at
        self._release(key)

    async def wait_idle(self, within: float) -> bool:
        """Wait until nothing is in flight; False when `within` seconds passed first."""
        try:
            async with asyncio.timeout(within):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # -- internals -----------------------------------------------------------------------

    def _memory_verdict(self, key: Key, explicit: bool) -> Verdict | None:
        """Layers 1-4: no I/O, no await, so the in-flight test and the claim are atomic."""
        self._maybe_prune()
        if not explicit and self.too_old(*key):
            return Verdict(Action.IGNORE, f"older than the {self.lookback_s / 3600:g} h lookback")
        if key in self._in_flight:
            return Verdict(Action.SKIP, "in flight", in_flight=True)
        if key in self._done:
            return Verdict(Action.SKIP, "already processed", done=True)
        if explicit:
            return None
        if key in self._gave_up:
            return Verdict(Action.SKIP, f"gave up after {self.max_attempts} attempts")
        retry_at = self._retry_at.get(key)
        if retry_at is not None and retry_at > self._clock():
            return Verdict(Action.SKIP, "waiting for its retry backoff")
        return None

    async def _ledger_verdict(self, key: Key, explicit: bool) -> Verdict:
        async with self.pool.acquire() as conn:
            row = await processed.get(conn, *key)
        if row is None:
            return Verdict(Action.PROCESS, "new")
        status, attempts = row["status"], row["attempts"]
        if status in ("done", "rejected"):
            self._remember_done(key)
            return Verdict(Action.SKIP, f"already {status}", attempts, done=True)
        if explicit:
            return Verdict(Action.PROCESS, "explicit retry", attempts)
        if attempts >= self.max_attempts:
            self._give_up(key, attempts)
            return Verdict(Action.SKIP, f"gave up after {attempts} attempts", attempts)
        due = row["next_attempt_at"]
        # NULL: a row written without a schedule (older code): due now.
        if due is not None and due.timestamp() > self._clock():
            self._retry_at[key] = due.timestamp()
            return Verdict(Action.SKIP, "waiting for its retry backoff", attempts)
        return Verdict(Action.PROCESS, f"retry after {attempts} failed attempt(s)", attempts)

    def _give_up(self, key: Key, attempts: int) -> None:
        if key not in self._gave_up:
            self._gave_up.add(key)
            self._retry_at.pop(key, None)
            log.warning(
                "[%s] giving up on %s after %d failed attempts (import it explicitly to retry)",
                key[0],
                key[1],
                attempts,
            )

    def _remember_done(self, key: Key) -> None:
        at = self.file_time(*key)
        self._done[key] = self._clock() if at is None else at

    def _claim(self, key: Key) -> None:
        self._in_flight.add(key)
        self._idle.clear()

    def _release(self, key: Key) -> None:
        self._in_flight.discard(key)
        if not self._in_flight:
            self._idle.set()

    def _maybe_prune(self) -> None:
        """Forget keys older than the lookback: layer 1 answers for them from now on."""
        now = self._clock()
        if self.lookback_s <= 0 or now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        cutoff = now - self.lookback_s
        self._done = {k: at for k, at in self._done.items() if at >= cutoff}
        self._retry_at = {k: at for k, at in self._retry_at.items() if not self._old(k, cutoff)}
        self._gave_up = {k for k in self._gave_up if not self._old(k, cutoff)}

    def _old(self, key: Key, cutoff: float) -> bool:
        at = self.file_time(*key)
        return at is not None and at < cutoff
