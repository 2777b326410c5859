"""Gaming sessions: rounds on one server with no gap longer than SESSION_GAP_MINUTES.

A new round joins the session of its neighbour within the gap and merges the
sessions on both sides when it bridges them, so the result is the same
partition whatever order the rounds arrive in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

_NEIGHBOURS = """
(SELECT 'prev' AS side, played_at, gaming_session_id FROM rounds
 WHERE server_id = $1 AND id <> $2 AND played_at <= $3 AND gaming_session_id IS NOT NULL
 ORDER BY played_at DESC LIMIT 1)
UNION ALL
(SELECT 'next', played_at, gaming_session_id FROM rounds
 WHERE server_id = $1 AND id <> $2 AND played_at > $3 AND gaming_session_id IS NOT NULL
 ORDER BY played_at ASC LIMIT 1)
"""


async def assign_session(
    conn: asyncpg.Connection, server_id: str, round_id: int, played_at: datetime, gap: timedelta
) -> int:
    near = {r["side"]: r for r in await conn.fetch(_NEIGHBOURS, server_id, round_id, played_at)}
    prev, nxt = near.get("prev"), near.get("next")
    session_id: int | None = None
    if prev is not None and played_at - prev["played_at"] <= gap:
        session_id = prev["gaming_session_id"]
    if nxt is not None and nxt["played_at"] - played_at <= gap:
        if session_id is None:
            session_id = nxt["gaming_session_id"]
        elif nxt["gaming_session_id"] != session_id:
            await _merge(conn, keep=session_id, drop=nxt["gaming_session_id"])
            await _join(conn, round_id, session_id, played_at)
            await _refresh(conn, session_id)
            return session_id
    if session_id is None:
        return await _new_session(conn, server_id, round_id, played_at)
    await _join(conn, round_id, session_id, played_at)
    return session_id


async def _new_session(
    conn: asyncpg.Connection, server_id: str, round_id: int, played_at: datetime
) -> int:
    return await conn.fetchval(
        """WITH s AS (INSERT INTO gaming_sessions (server_id, started_at, ended_at, round_count)
                      VALUES ($1, $3, $3, 1) RETURNING id)
           UPDATE rounds SET gaming_session_id = (SELECT id FROM s) WHERE id = $2
           RETURNING gaming_session_id""",
        server_id,
        round_id,
        played_at,
    )


async def _join(
    conn: asyncpg.Connection, round_id: int, session_id: int, played_at: datetime
) -> None:
    await conn.execute(
        """WITH r AS (UPDATE rounds SET gaming_session_id = $2 WHERE id = $1)
           UPDATE gaming_sessions SET started_at = least(started_at, $3),
                  ended_at = greatest(ended_at, $3), round_count = round_count + 1
           WHERE id = $2""",
        round_id,
        session_id,
        played_at,
    )


async def _merge(conn: asyncpg.Connection, *, keep: int, drop: int) -> None:
    await conn.execute(
        "UPDATE rounds SET gaming_session_id = $1 WHERE gaming_session_id = $2", keep, drop
    )
    await conn.execute("DELETE FROM gaming_sessions WHERE id = $1", drop)


async def _refresh(conn: asyncpg.Connection, session_id: int) -> None:
    await conn.execute(
        """UPDATE gaming_sessions s
           SET started_at = agg.first, ended_at = agg.last, round_count = agg.n
           FROM (SELECT min(played_at) AS first, max(played_at) AS last, count(*) AS n
                 FROM rounds WHERE gaming_session_id = $1) agg
           WHERE s.id = $1""",
        session_id,
    )
