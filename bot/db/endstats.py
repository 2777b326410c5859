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


async def relink_round(conn: asyncpg.Connection, round_id: int) -> int | None:
    """Link the best endstats file to a round: most lines, then nearest, then name.

    Deterministic, so the link does not depend on which file arrived first.
    """
    row = await conn.fetchrow(
        """SELECT (SELECT e.id FROM endstats e JOIN rounds r ON r.id = $1
                   WHERE e.server_id = r.server_id AND lower(e.map_name) = lower(r.map_name)
                     AND e.round_number = r.round_number
                     AND e.played_at BETWEEN r.played_at - make_interval(secs => $2::int)
                                         AND r.played_at + make_interval(secs => $2::int)
                   ORDER BY e.line_count DESC,
                            abs(extract(epoch FROM e.played_at - r.played_at)), e.filename
                   LIMIT 1) AS best,
                  (SELECT id FROM endstats WHERE round_id = $1) AS current""",
        round_id,
        LINK_SECONDS,
    )
    best, current = row["best"], row["current"]
    if best is None or best == current:
        return best
    if current is not None:  # first: a round has at most one endstats file
        await conn.execute("UPDATE endstats SET round_id = NULL WHERE id = $1", current)
    await conn.execute("UPDATE endstats SET round_id = $1 WHERE id = $2", round_id, best)
    return best
