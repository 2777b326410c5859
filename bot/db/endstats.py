"""SQL for endstats files, their awards and head-to-head rows, and linking to rounds.

The link lives in one place, `endstats.round_id`; awards and head-to-head rows
belong to their file and reach the round through it.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.stats.model import EndStats

LINK_SECONDS = 30  # stats-format.md §6: nearest stats file within ±30 s

_INSERT_AWARDS = """
INSERT INTO round_awards (endstats_id, server_id, position, title, player, value, value_number)
SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::float8[])
"""
_INSERT_VERSUS = """
INSERT INTO round_vs_stats (endstats_id, server_id, position, subject, subject_guid, opponent,
                            kills, deaths)
SELECT $1, $2, * FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::int[],
                             $8::int[])
"""


async def insert_endstats(
    conn: asyncpg.Connection, server_id: str, es: EndStats, played_at: datetime
) -> int:
    endstats_id: int = await conn.fetchval(
        """INSERT INTO endstats (server_id, filename, map_name, round_number, file_time,
                                 played_at, line_count)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        server_id,
        es.file.basename,
        es.file.map_name,
        es.file.round_number,
        es.file.timestamp,
        played_at,
        es.line_count,
    )
    a = es.awards
    if a:
        await conn.execute(
            _INSERT_AWARDS,
            endstats_id,
            server_id,
            [x.position for x in a],
            [x.title for x in a],
            [x.player for x in a],
            [x.value for x in a],
            [x.value_number for x in a],
        )
    rows = [(b, r) for b in es.versus for r in b.rows]
    if rows:
        await conn.execute(
            _INSERT_VERSUS,
            endstats_id,
            server_id,
            list(range(len(rows))),
            [b.subject for b, _ in rows],
            [b.subject_guid for b, _ in rows],
            [r.opponent for _, r in rows],
            [r.kills for _, r in rows],
            [r.deaths for _, r in rows],
        )
    return endstats_id


async def nearest_round(
    conn: asyncpg.Connection, server_id: str, map_name: str, round_number: int, at: datetime
) -> int | None:
    return await conn.fetchval(
        """SELECT id FROM rounds
           WHERE server_id = $1 AND lower(map_name) = lower($2) AND round_number = $3
             AND played_at BETWEEN $4::timestamptz - make_interval(secs => $5::int)
                               AND $4::timestamptz + make_interval(secs => $5::int)
           ORDER BY abs(extract(epoch FROM played_at - $4::timestamptz)), filename
           LIMIT 1""",
        server_id,
        map_name,
        round_number,
        at,
        LINK_SECONDS,
    )


# The endstats files whose nearest stats round (same server, map, round number;
# distance, then file name, as in nearest_round) is round $1.
_BEST_FOR_ROUND = """
SELECT e.id, e.round_id FROM endstats e JOIN rounds r ON r.id = $1
WHERE e.server_id = r.server_id AND lower(e.map_name) = lower(r.map_name)
  AND e.round_number = r.round_number
  AND e.played_at BETWEEN r.played_at - make_interval(secs => $2::int)
                      AND r.played_at + make_interval(secs => $2::int)
  AND NOT EXISTS (
      SELECT 1 FROM rounds o
      WHERE o.server_id = r.server_id AND lower(o.map_name) = lower(r.map_name)
        AND o.round_number = r.round_number AND o.id <> r.id
        AND (abs(extract(epoch FROM o.played_at - e.played_at)), o.filename)
            < (abs(extract(epoch FROM r.played_at - e.played_at)), r.filename))
ORDER BY e.line_count DESC, abs(extract(epoch FROM e.played_at - r.played_at)), e.filename
LIMIT 1
"""


async def relink_round(conn: asyncpg.Connection, round_id: int) -> int | None:
    """Link to a round the best endstats file that belongs to it: of the files whose
    nearest round it is, the one with most lines, then nearest, then by name.

    Deterministic, so links do not depend on import order. Returns the round that
    lost its file to this one (a newer, nearer round took it), which the caller
    must relink in turn, or None.
    """
    best = await conn.fetchrow(_BEST_FOR_ROUND, round_id, LINK_SECONDS)
    current = await conn.fetchval("SELECT id FROM endstats WHERE round_id = $1", round_id)
    if best is None or best["id"] == current:
        if best is None and current is not None:
            await conn.execute("UPDATE endstats SET round_id = NULL WHERE id = $1", current)
        return None
    # a round has at most one endstats file, and a file one round: free both first
    if current is not None:
        await conn.execute("UPDATE endstats SET round_id = NULL WHERE id = $1", current)
    if best["round_id"] is not None:
        await conn.execute("UPDATE endstats SET round_id = NULL WHERE id = $1", best["id"])
    await conn.execute("UPDATE endstats SET round_id = $1 WHERE id = $2", round_id, best["id"])
    return best["round_id"]
