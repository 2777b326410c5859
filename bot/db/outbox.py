"""SQL for round_outbox: one row per announced round, written in the import transaction."""

from __future__ import annotations

import asyncpg

NOTIFY_CHANNEL = "round_outbox"


async def enqueue(conn: asyncpg.Connection, round_id: int, server_id: str) -> None:
    """Queue a round for posting; NOTIFY reaches a publisher in another process at commit."""
    await conn.execute(
        """WITH ins AS (INSERT INTO round_outbox (round_id, server_id) VALUES ($1, $2)
                        ON CONFLICT (round_id) DO NOTHING RETURNING id)
           SELECT pg_notify($3, id::text) FROM ins""",
        round_id,
        server_id,
        NOTIFY_CHANNEL,
    )


async def due(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Unsent rows whose retry time has come, oldest first, with the round's age."""
    return await conn.fetch(
        """SELECT o.id, o.round_id, o.server_id, o.attempts, r.played_at
           FROM round_outbox o JOIN rounds r ON r.id = o.round_id
           WHERE o.sent_at IS NULL AND o.next_attempt_at <= now()
           ORDER BY o.id LIMIT $1""",
        limit,
    )


async def mark_sent(
    conn: asyncpg.Connection, outbox_id: int, channel_id: int | None, message_ids: list[int]
) -> None:
    await conn.execute(
        """UPDATE round_outbox SET sent_at = now(), channel_id = $2, message_ids = $3,
                  attempts = attempts + 1, last_error = NULL
           WHERE id = $1 AND sent_at IS NULL""",
        outbox_id,
        channel_id,
        message_ids,
    )


async def mark_skipped(conn: asyncpg.Connection, outbox_id: int, reason: str) -> None:
    """Settled without a post (stale round, no channel): never retried."""
    await conn.execute(
        "UPDATE round_outbox SET sent_at = now(), last_error = $2 WHERE id = $1",
        outbox_id,
        reason,
    )


async def mark_failed(
    conn: asyncpg.Connection, outbox_id: int, error: str, retry_in_s: float
) -> None:
    await conn.execute(
        """UPDATE round_outbox SET attempts = attempts + 1, last_error = $2,
                  next_attempt_at = now() + make_interval(secs => $3::float8)
           WHERE id = $1""",
        outbox_id,
        error[:500],
        retry_in_s,
    )


async def backlog(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM round_outbox WHERE sent_at IS NULL")
