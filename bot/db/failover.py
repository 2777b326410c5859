"""SQL for failover_transitions: the audit trail of every smart-failover mode change."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from bot.ingest.failover import FailoverMode, Transition


async def insert_transition(conn: asyncpg.Connection, t: Transition) -> None:
    await conn.execute(
        """INSERT INTO failover_transitions (server_id, from_mode, to_mode, reason, at)
           VALUES ($1, $2, $3, $4, $5)""",
        t.server_id,
        str(t.from_mode),
        str(t.to_mode),
        t.reason,
        datetime.fromtimestamp(t.at, UTC),
    )


async def load_transitions(conn: asyncpg.Connection, since: datetime) -> list[Transition]:
    """Transitions at or after `since`, oldest first (to seed the machines' 24 h statistics)."""
    rows = await conn.fetch(
        """SELECT server_id, from_mode, to_mode, reason, at FROM failover_transitions
           WHERE at >= $1 ORDER BY at, id""",
        since,
    )
    return [
        Transition(
            r["server_id"],
            FailoverMode(r["from_mode"]),
            FailoverMode(r["to_mode"]),
            r["reason"],
            r["at"].timestamp(),
        )
        for r in rows
    ]
