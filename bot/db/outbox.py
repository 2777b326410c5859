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
