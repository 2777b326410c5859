"""Read-side SQL for the presentation layer: the last gaming session and one round post.

Every query is set-based and index-driven (gaming_sessions_ended /
gaming_sessions_server_ended, rounds_session, the (round_id, ...) primary keys of
player_round_stats and weapon_round_stats, endstats_round_once), so `!last_session`
costs a handful of index lookups whatever the size of the history.

Orphan R2 rows hold R1+R2 values that cannot be split (stats-format.md §5): the
session aggregates leave them out. Players are identified by GUID8 (humans) or
player_key (bots: GUID8 + name, because bots share GUID8s).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext

import asyncpg

from bot.discord_ui.models import (
    AwardLine,
    PlayerRoundPoint,
    PlayerStatLine,
    RoundInfo,
    RoundPostData,
    SessionInfo,
    SessionSummary,
    WeaponLine,
)
from bot.discord_ui.tables import AIMED_WEAPONS, dpm_order_key


def _snapshot(conn: asyncpg.Connection) -> AbstractAsyncContextManager[object]:
    """One read-only snapshot for several queries, unless the caller already has a
    transaction open (asyncpg cannot nest one with an isolation level)."""
    if conn.is_in_transaction():
        return nullcontext()
    return conn.transaction(isolation="repeatable_read", readonly=True)


_IDENT = "CASE WHEN p.is_bot THEN p.player_key ELSE p.guid END"

# Two statements rather than "$1 IS NULL OR server_id = $1": a generic plan for
# the OR form cannot pick the per-server index.
_LATEST_SQL = """
    SELECT s.id, s.server_id, sv.name AS server_name, s.started_at, s.ended_at, s.round_count
    FROM gaming_sessions s JOIN servers sv ON sv.id = s.server_id
    {where}
    ORDER BY s.ended_at DESC, s.id DESC
    LIMIT 1"""


async def latest_session(
    conn: asyncpg.Connection, server_id: str | None = None
) -> SessionInfo | None:
    """The session that ended last, across all servers or on one server."""
    if server_id is None:
        row = await conn.fetchrow(_LATEST_SQL.format(where=""))
    else:
        row = await conn.fetchrow(_LATEST_SQL.format(where="WHERE s.server_id = $1"), server_id)
    return SessionInfo(**dict(row)) if row is not None else None


async def get_session(conn: asyncpg.Connection, session_id: int) -> SessionInfo | None:
    row = await conn.fetchrow(
        """SELECT s.id, s.server_id, sv.name AS server_name, s.started_at, s.ended_at,
                  s.round_count
           FROM gaming_sessions s JOIN servers sv ON sv.id = s.server_id
           WHERE s.id = $1""",
        session_id,
    )
    return SessionInfo(**dict(row)) if row is not None else None


_ROUND_COLUMNS = """r.id, r.server_id, sv.name AS server_name, r.server_name AS host_name,
    r.map_name, r.round_number, r.status, r.r1_round_id, r.defender, r.winner, r.time_limit,
    r.next_time_limit, r.duration_seconds, r.aborted, r.played_at, r.gaming_session_id"""


async def session_rounds(conn: asyncpg.Connection, session_id: int) -> list[RoundInfo]:
    """Every round of the session (orphans included: they are still maps played),
    in play order."""
    rows = await conn.fetch(
        f"""SELECT {_ROUND_COLUMNS}
            FROM rounds r JOIN servers sv ON sv.id = r.server_id
            WHERE r.gaming_session_id = $1
            ORDER BY r.played_at, r.id""",
        session_id,
    )
    return [RoundInfo(**dict(r)) for r in rows]


# Per-round aimed hits/shots come from the weapon rows (accuracy leaves out
# explosives and the syringe: tables.AIMED_WEAPONS).
_SESSION_PLAYERS_SQL = f"""
    WITH r AS (
        SELECT id, played_at FROM rounds
        WHERE gaming_session_id = $1 AND status <> 'orphan_r2'
    ), w AS (
        SELECT w.round_id, w.player_key, sum(w.hits) AS hits, sum(w.shots) AS shots
        FROM r JOIN weapon_round_stats w ON w.round_id = r.id
        WHERE w.weapon = ANY($2::text[])
        GROUP BY w.round_id, w.player_key
    )
    SELECT {_IDENT} AS ident,
           (array_agg(p.name ORDER BY r.played_at DESC))[1] AS name,
           bool_or(p.is_bot) AS is_bot,
           count(*)::int AS rounds,
           sum(p.kills)::int AS kills, sum(p.deaths)::int AS deaths,
           sum(p.damage_given)::int AS damage_given,
           sum(p.damage_received)::int AS damage_received,
           sum(p.time_played_seconds)::int AS time_played_seconds,
           coalesce(sum(w.hits), 0)::int AS aimed_hits,
           coalesce(sum(w.shots), 0)::int AS aimed_shots,
           sum(p.headshot_kills)::int AS headshot_kills,
           sum(p.revives_given)::int AS revives_given,
           sum(p.gibs)::int AS gibs
    FROM r
    JOIN player_round_stats p ON p.round_id = r.id
    LEFT JOIN w ON w.round_id = p.round_id AND w.player_key = p.player_key
    GROUP BY 1"""


async def session_players(conn: asyncpg.Connection, session_id: int) -> list[PlayerStatLine]:
    """Per player over the session's rounds (orphan R2 rows excluded), best DPM first."""
    rows = await conn.fetch(_SESSION_PLAYERS_SQL, session_id, list(AIMED_WEAPONS))
    lines = [PlayerStatLine(**dict(r), player_key=r["ident"]) for r in rows]
    return sorted(lines, key=dpm_order_key)


async def session_weapons(conn: asyncpg.Connection, session_id: int) -> list[WeaponLine]:
    """Per player per weapon over the session (orphans excluded), by kills."""
    rows = await conn.fetch(
        f"""WITH r AS (
                SELECT id, played_at FROM rounds
                WHERE gaming_session_id = $1 AND status <> 'orphan_r2'
            ), p AS (
                SELECT p.round_id, p.player_key, r.played_at, p.name, p.is_bot,
                       {_IDENT} AS ident
                FROM r JOIN player_round_stats p ON p.round_id = r.id
            ), who AS (
                SELECT ident, (array_agg(name ORDER BY played_at DESC))[1] AS name,
                       bool_or(is_bot) AS is_bot
                FROM p GROUP BY ident
            )
            SELECT p.ident, who.name, who.is_bot, w.weapon,
                   sum(w.hits)::int AS hits, sum(w.shots)::int AS shots,
                   sum(w.kills)::int AS kills, sum(w.deaths)::int AS deaths,
                   sum(w.headshots)::int AS headshots
            FROM p
            JOIN weapon_round_stats w ON w.round_id = p.round_id AND w.player_key = p.player_key
            JOIN who ON who.ident = p.ident
            GROUP BY p.ident, who.name, who.is_bot, w.weapon
            ORDER BY kills DESC, hits DESC, p.ident, w.weapon""",
        session_id,
    )
    return [WeaponLine(**dict(r)) for r in rows]


async def session_player_rounds(
    conn: asyncpg.Connection, session_id: int
) -> list[PlayerRoundPoint]:
    """Per player per round (orphans excluded), in play order, for graphs."""
    rows = await conn.fetch(
        f"""SELECT {_IDENT} AS ident, p.name, p.is_bot, p.round_id, p.kills, p.deaths,
                   p.damage_given, p.time_played_seconds
            FROM rounds r JOIN player_round_stats p ON p.round_id = r.id
            WHERE r.gaming_session_id = $1 AND r.status <> 'orphan_r2'
            ORDER BY r.played_at, r.id, p.player_key""",
        session_id,
    )
    return [PlayerRoundPoint(**dict(r)) for r in rows]


async def load_session_summary(
    conn: asyncpg.Connection, server_id: str | None = None
) -> SessionSummary | None:
    """`!last_session`: the latest session, its rounds and players, read from one
    snapshot so an import landing in between cannot mix two states."""
    async with _snapshot(conn):
        info = await latest_session(conn, server_id)
        if info is None:
            return None
        rounds = await session_rounds(conn, info.id)
        players = await session_players(conn, info.id)
    return SessionSummary(info, tuple(rounds), tuple(players))


# --- one round ------------------------------------------------------------------

_ROUND_PLAYERS_SQL = f"""
    SELECT p.round_id, {_IDENT} AS ident, p.player_key, p.name, p.is_bot, p.team,
           p.kills, p.deaths, p.damage_given, p.damage_received, p.time_played_seconds,
           coalesce(w.hits, 0)::int AS aimed_hits, coalesce(w.shots, 0)::int AS aimed_shots,
           p.headshot_kills, p.revives_given, p.gibs
    FROM player_round_stats p
    LEFT JOIN LATERAL (
        SELECT sum(w.hits) AS hits, sum(w.shots) AS shots
        FROM weapon_round_stats w
        WHERE w.round_id = p.round_id AND w.player_key = p.player_key
          AND w.weapon = ANY($2::text[])
    ) w ON true
    WHERE p.round_id = ANY($1::bigint[])
    ORDER BY p.round_id, p.player_key"""


async def round_post_data(conn: asyncpg.Connection, round_id: int) -> RoundPostData | None:
    """The round, its players and awards; for a paired R2 also its R1 and R1 players."""
    async with _snapshot(conn):
        rows = await conn.fetch(
            f"""SELECT {_ROUND_COLUMNS}
                FROM rounds r JOIN servers sv ON sv.id = r.server_id
                WHERE r.id = $1 OR r.id = (
                    SELECT r1_round_id FROM rounds WHERE id = $1 AND status = 'paired')""",
            round_id,
        )
        by_id = {r["id"]: RoundInfo(**dict(r)) for r in rows}
        rnd = by_id.get(round_id)
        if rnd is None:
            return None
        r1 = by_id.get(rnd.r1_round_id) if rnd.r1_round_id is not None else None
        players = await conn.fetch(_ROUND_PLAYERS_SQL, list(by_id), list(AIMED_WEAPONS))
        # Awards belong to the endstats file linked to the round (endstats.round_id).
        awards = await conn.fetch(
            """SELECT a.title, a.player, a.value
               FROM endstats e JOIN round_awards a ON a.endstats_id = e.id
               WHERE e.round_id = $1 ORDER BY a.position""",
            round_id,
        )
    lines: dict[int, list[PlayerStatLine]] = {rid: [] for rid in by_id}
    for p in players:
        values = dict(p)
        lines[values.pop("round_id")].append(PlayerStatLine(**values))
    return RoundPostData(
        round=rnd,
        players=tuple(lines[round_id]),
        r1=r1,
        r1_players=tuple(lines[r1.id]) if r1 else (),
        awards=tuple(AwardLine(**dict(a)) for a in awards),
    )
