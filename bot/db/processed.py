"""SQL for the processed_files ledger."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_UPSERT = """
INSERT INTO processed_files (server_id, filename, sha256, status, source, error,
                             duplicate_of, round_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (server_id, filename) DO UPDATE
SET sha256 = EXCLUDED.sha256, status = EXCLUDED.status, source = EXCLUDED.source,
    error = EXCLUDED.error, duplicate_of = EXCLUDED.duplicate_of,
    round_id = EXCLUDED.round_id, attempts = processed_files.attempts + 1,
    updated_at = now()
"""


async def get(conn: asyncpg.Connection, server_id: str, filename: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM processed_files WHERE server_id = $1 AND filename = $2",
        server_id,
        filename,
    )


async def prior_and_same_hash(
    conn: asyncpg.Connection, server_id: str, filename: str, sha256: str
) -> tuple[asyncpg.Record | None, str | None]:
    """This file's ledger row, and the name of a stored file with the same content."""
    row = await conn.fetchrow(
        """SELECT (SELECT p FROM processed_files p
                   WHERE p.server_id = $1 AND p.filename = $2) AS prior,
                  (SELECT filename FROM processed_files
                   WHERE server_id = $1 AND sha256 = $3 AND status = 'done' LIMIT 1) AS same""",
        server_id,
        filename,
        sha256,
    )
    return row["prior"], row["same"]


async def record_stored(
    conn: asyncpg.Connection,
    server_id: str,
    filename: str,
    *,
    source: str,
    sha256: str,
    round_id: int | None,
) -> None:
    """The ledger row of a stored file, and the server's file counter, in one statement."""
    await conn.execute(
        f"""WITH ledger AS ({_UPSERT})
            UPDATE servers SET last_seen = now(), files_count = files_count + 1
            WHERE id = $1""",
        server_id,
        filename,
        sha256,
        "done",
        source,
        None,
        None,
        round_id,
    )


async def record(
    conn: asyncpg.Connection,
    server_id: str,
    filename: str,
    *,
    status: str,
    source: str,
    sha256: str | None = None,
    error: str | None = None,
    duplicate_of: str | None = None,
    round_id: int | None = None,
) -> None:
    await conn.execute(
        _UPSERT, server_id, filename, sha256, status, source, error, duplicate_of, round_id
    )


# --- retry bookkeeping for the ingest pipeline --------------------------------

RETRY_BASE_S = 30.0
RETRY_CAP_S = 3600.0

# attempts counts every try, so the delay after try n is base * 2^(n-1), capped.
# The WHERE keeps a concurrent success (done) or a final verdict (rejected) from
# being downgraded to failed by a slower instance.
_RECORD_FAILURE = """
INSERT INTO processed_files (server_id, filename, status, source, error, attempts,
                             next_attempt_at)
VALUES ($1, $2, 'failed', $3, $4, 1,
        $5::timestamptz + make_interval(secs => least($6::float8, $7::float8)))
ON CONFLICT (server_id, filename) DO UPDATE
SET status = 'failed', source = EXCLUDED.source, error = EXCLUDED.error,
    attempts = processed_files.attempts + 1,
    next_attempt_at = $5::timestamptz + make_interval(
        secs => least($6::float8 * power(2, processed_files.attempts), $7::float8)),
    updated_at = now()
WHERE processed_files.status = 'failed'
RETURNING attempts, next_attempt_at
"""

_SCHEDULE_RETRY = """
UPDATE processed_files
SET next_attempt_at = $3::timestamptz + make_interval(
    secs => least($4::float8 * power(2, attempts - 1), $5::float8))
WHERE server_id = $1 AND filename = $2 AND status = 'failed'
RETURNING attempts, next_attempt_at
"""


def retry_delay(attempts: int, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> float:
    """Seconds to wait after the `attempts`-th failed try (what the SQL above computes)."""
    return min(base_s * 2 ** max(attempts - 1, 0), cap_s)


async def record_failure(
    conn: asyncpg.Connection,
    server_id: str,
    filename: str,
    *,
    source: str,
    error: str,
    now: datetime,
    base_s: float = RETRY_BASE_S,
    cap_s: float = RETRY_CAP_S,
) -> tuple[int, datetime] | None:
    """Count one failed try and schedule the next; (attempts, next_attempt_at).

    None when the row is already done or rejected (nothing is changed then).
    """
    row = await conn.fetchrow(
        _RECORD_FAILURE, server_id, filename, source, error[:1000], now, base_s, cap_s
    )
    return None if row is None else (row["attempts"], row["next_attempt_at"])


async def schedule_retry(
    conn: asyncpg.Connection,
    server_id: str,
    filename: str,
    *,
    now: datetime,
    base_s: float = RETRY_BASE_S,
    cap_s: float = RETRY_CAP_S,
) -> tuple[int, datetime] | None:
    """Set next_attempt_at on a row the importer itself left 'failed' (e.g. an empty file)."""
    row = await conn.fetchrow(_SCHEDULE_RETRY, server_id, filename, now, base_s, cap_s)
    return None if row is None else (row["attempts"], row["next_attempt_at"])


async def final_since(conn: asyncpg.Connection, since: datetime) -> list[tuple[str, str]]:
    """(server_id, filename) of done/rejected rows touched since `since` (tracker warm-up)."""
    rows = await conn.fetch(
        """SELECT server_id, filename FROM processed_files
           WHERE status IN ('done', 'rejected') AND updated_at >= $1""",
        since,
    )
    return [(r["server_id"], r["filename"]) for r in rows]
