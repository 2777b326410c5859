"""Store one stats or endstats file in ONE transaction with its processed_files row."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from bot.config import Settings
from bot.db import endstats as endstats_db
from bot.db import outbox, processed, sessions
from bot.db import rounds as rounds_db
from bot.db import servers as servers_db
from bot.registry import ServerRegistry
from bot.stats import (
    EndStats,
    Round,
    StatsFileError,
    StatsFileName,
    mark_orphan,
    parse_endstats_file,
    parse_filename,
    parse_stats_file,
    round2_only,
)
from bot.stats.pairing import assign_pairings

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_048_576  # stats-format.md: a file over 1 MB is not a stats file
# Per-server lock: pairing and sessions look at neighbouring rounds.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('etl-import:' || $1))"


@dataclass(frozen=True, slots=True)
class ImportResult:
    outcome: str  # imported | duplicate | rejected | failed
    server_id: str
    filename: str
    kind: str = "stats"  # stats | endstats
    round_id: int | None = None
    status: str | None = None  # the round's status after the import
    reason: str | None = None
    duplicate_of: str | None = None
    retryable: bool = False
    repaired: tuple[int, ...] = field(default=())  # R2 ids whose pairing changed


async def _relink(conn: asyncpg.Connection, round_id: int) -> None:
    """Relink a round's endstats, then any round that lost its file to it."""
    pending: int | None = round_id
    while pending is not None:
        pending = await endstats_db.relink_round(conn, pending)


def _safe_name(filename: str) -> str:
    """A file name fit to store as text in the ledger (no NUL, bounded)."""
    return filename.replace("\x00", "\\0")[:255]


class Importer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        timezone_for: Callable[[str], ZoneInfo],
        match_window: timedelta = timedelta(minutes=45),
        session_gap: timedelta = timedelta(minutes=60),
        server_name_for: Callable[[str], str] | None = None,
    ) -> None:
        self.pool = pool
        self.timezone_for = timezone_for
        self.match_window = match_window
        self.session_gap = session_gap
        self.server_name_for = server_name_for or (lambda server_id: server_id)
        self._known_servers: set[str] = set()

    async def import_file(
        self, server_id: str, filename: str, data: bytes, source: str = "import"
    ) -> ImportResult:
        try:
            name, parsed = self._parse(server_id, filename, data)
        except StatsFileError as exc:
            return await self._reject(server_id, filename, exc, source)
        sha = hashlib.sha256(data).hexdigest()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK_SQL, server_id)
            await self._ensure_server(conn, server_id)
            dup = await self._duplicate(conn, server_id, name, sha, source)
            if dup is not None:
                return dup
            if isinstance(parsed, EndStats):
                result = await self._store_endstats(conn, server_id, parsed)
            else:
                result = await self._store_round(conn, server_id, parsed, sha, data)
            await processed.record_stored(
                conn, server_id, filename, source=source, sha256=sha, round_id=result.round_id
            )
        # A bulk import logs its summary instead of thousands of lines.
        log.log(
            logging.DEBUG if source == "import" else logging.INFO,
            "[%s] imported %s via %s (round %s, %s)",
            server_id,
            filename,
            source,
            result.round_id,
            result.status,
        )
        return result

    def _parse(
        self, server_id: str, filename: str, data: bytes
    ) -> tuple[StatsFileName, Round | EndStats]:
        name = parse_filename(filename)
        if name.server_id is not None and name.server_id != server_id:
            raise StatsFileError(
                f"file name prefix '{name.server_id}' does not match server '{server_id}'"
            )
        if len(data) > MAX_FILE_BYTES:
            raise StatsFileError(f"file is {len(data)} bytes; a stats file is under 1 MB")
        if name.is_endstats:
            return name, parse_endstats_file(data, filename)
        return name, parse_stats_file(data, filename)

    async def _reject(
        self, server_id: str, filename: str, exc: StatsFileError, source: str
    ) -> ImportResult:
        # An empty file is usually still being written: "failed" lets the
        # tracker retry it later; anything else is final.
        status = "failed" if exc.retryable else "rejected"
        safe = _safe_name(filename)
        async with self.pool.acquire() as conn, conn.transaction():
            await self._ensure_server(conn, server_id)
            prior = await processed.get(conn, server_id, safe)
            if prior is not None and prior["status"] in ("done", "rejected"):
                # final outcomes: a bad file is never retried in a loop
                return ImportResult(
                    "duplicate", server_id, filename, reason=f"already {prior['status']}"
                )
            await processed.record(
                conn, server_id, safe, status=status, source=source, error=exc.reason
            )
        log.warning("[%s] %s %s: %s", server_id, status, safe, exc.reason)
        return ImportResult(
            "failed" if exc.retryable else "rejected",
            server_id,
            filename,
            reason=exc.reason,
            retryable=exc.retryable,
        )

    async def _duplicate(
        self, conn: asyncpg.Connection, server_id: str, name: StatsFileName, sha: str, source: str
    ) -> ImportResult | None:
        kind = "endstats" if name.is_endstats else "stats"
        prior, same = await processed.prior_and_same_hash(conn, server_id, name.basename, sha)
        if prior is not None and prior["status"] in ("done", "rejected"):
            return ImportResult(
                "duplicate",
                server_id,
                name.basename,
                kind,
                prior["round_id"],
                reason=f"already {prior['status']}",
            )
        if same is None:
            return None
        await processed.record(
            conn,
            server_id,
            name.basename,
            status="done",
            source=source,
            sha256=sha,
            duplicate_of=same,
        )
        return ImportResult(
            "duplicate", server_id, name.basename, kind, reason="same content", duplicate_of=same
        )

    async def _ensure_server(self, conn: asyncpg.Connection, server_id: str) -> None:
        # Rows are only ever added, so one insert per server per process is enough.
        if server_id not in self._known_servers:
            await servers_db.ensure_server(conn, server_id, self.server_name_for(server_id))
            self._known_servers.add(server_id)

    def _played_at(self, server_id: str, local: datetime) -> datetime:
        return local.replace(tzinfo=self.timezone_for(server_id))

    async def _store_endstats(
        self, conn: asyncpg.Connection, server_id: str, es: EndStats
    ) -> ImportResult:
        played_at = self._played_at(server_id, es.file.timestamp)
        await endstats_db.insert_endstats(conn, server_id, es, played_at)
        round_id = await endstats_db.nearest_round(
            conn, server_id, es.file.map_name, es.file.round_number, played_at
        )
        if round_id is not None:
            await _relink(conn, round_id)
        return ImportResult("imported", server_id, es.file.basename, "endstats", round_id)

    async def _store_round(
        self, conn: asyncpg.Connection, server_id: str, rnd: Round, sha: str, data: bytes
    ) -> ImportResult:
        played_at = self._played_at(server_id, rnd.file.timestamp)
        if rnd.round_number == 2:
            rnd = mark_orphan(rnd)  # until the pairing below finds its R1
        round_id = await rounds_db.insert_round(
            conn, server_id, rnd, played_at=played_at, sha256=sha, content=data
        )
        await sessions.assign_session(conn, server_id, round_id, played_at, self.session_gap)
        changed = await self._repair(conn, server_id, rnd.map_name, played_at, {round_id: rnd})
        if round_id not in changed:
            await rounds_db.insert_players(conn, round_id, server_id, rnd.players)
        await _relink(conn, round_id)
        if rnd.players:  # a header-only round is stored but not announced
            await outbox.enqueue(conn, round_id, server_id)
        status = changed.get(round_id, rnd.status)
        return ImportResult(
            "imported",
            server_id,
            rnd.file.basename,
            "stats",
            round_id,
            status,
            repaired=tuple(r for r in changed if r != round_id),
        )

    async def _repair(
        self,
        conn: asyncpg.Connection,
        server_id: str,
        map_name: str,
        at: datetime,
        parsed: dict[int, Round],
    ) -> dict[int, str]:
        """Recompute R2 pairings around `at`; re-derive every R2 whose R1 changed.

        Returns {r2 id: new status} for the R2s that changed.
        """
        rows = await rounds_db.pairing_neighbourhood(
            conn, server_id, map_name, at, self.match_window
        )
        w = self.match_window
        # R2s near the edge of the loaded range may pair outside it: keep theirs.
        fixed = {
            r["id"]: r["r1_round_id"]
            for r in rows
            if r["round_number"] == 2 and abs(r["played_at"] - at) > w
        }
        wanted = assign_pairings([rounds_db.as_candidate(r) for r in rows], w, fixed)
        current = {r["id"]: r["r1_round_id"] for r in rows if r["round_number"] == 2}
        moved = {r2: r1 for r2, r1 in wanted.items() if current.get(r2) != r1}
        if not moved:
            return {}
        await rounds_db.clear_pairings(conn, list(moved))
        need = [i for i in {*moved, *(r1 for r1 in moved.values() if r1)} if i not in parsed]
        for rid, (fname, content) in (await rounds_db.fetch_contents(conn, need)).items():
            parsed[rid] = parse_stats_file(content, fname)
        result: dict[int, str] = {}
        for r2_id, r1_id in moved.items():
            r2 = parsed[r2_id]
            derived = round2_only(r2, parsed[r1_id]) if r1_id else mark_orphan(r2)
            await rounds_db.set_pairing(conn, r2_id, r1_id, derived.status)
            await rounds_db.replace_players(conn, r2_id, server_id, derived.players)
            result[r2_id] = derived.status
        return result


def make_importer(pool: asyncpg.Pool, settings: Settings, registry: ServerRegistry) -> Importer:
    """The importer configured from settings, with each server's time zone and name."""

    def timezone_for(server_id: str) -> ZoneInfo:
        return registry.get(server_id).timezone if server_id in registry else settings.default_zone

    def name_for(server_id: str) -> str:
        return registry.get(server_id).server_name if server_id in registry else server_id

    return Importer(
        pool,
        timezone_for=timezone_for,
        server_name_for=name_for,
        match_window=timedelta(minutes=settings.round_match_window_minutes),
        session_gap=timedelta(minutes=settings.session_gap_minutes),
    )
