"""SQL for rounds, player_round_stats and weapon_round_stats."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from bot.stats.model import EXTENDED_FIELD_NAMES, EXTENDED_FIELDS, PlayerStats, Round
from bot.stats.pairing import PairingCandidate

# (column, array type) of player_round_stats after round_id and server_id.
_PLAYER_HEAD: tuple[tuple[str, str], ...] = (
    ("player_key", "text"),
    ("guid", "text"),
    ("name", "text"),
    ("raw_name", "text"),
    ("name_ascii", "text"),
    ("is_bot", "bool"),
    ("team", "int"),
    ("rounds", "int"),
    ("source", "text"),
    ("kills", "int"),
    ("deaths", "int"),
    ("headshots", "int"),
    ("shots", "int"),
    ("hits", "int"),
    ("time_played_seconds", "int"),
)
PLAYER_ARRAYS: tuple[tuple[str, str], ...] = _PLAYER_HEAD + tuple(
    (name, "int" if kind == "int" else "float8") for name, kind in EXTENDED_FIELDS
)


def _unnest_insert(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    """INSERT ... SELECT $1, $2, * FROM unnest($3::type[], ...): one round trip, set-based."""
    names = ", ".join(c for c, _ in columns)
    arrays = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(columns, start=3))
    return (
        f"INSERT INTO {table} (round_id, server_id, {names}) SELECT $1, $2, * FROM unnest({arrays})"
    )


_INSERT_PLAYERS = _unnest_insert("player_round_stats", PLAYER_ARRAYS)
_WEAPON_ARRAYS = (
    ("player_key", "text"),
    ("weapon", "text"),
    ("hits", "int"),
    ("shots", "int"),
    ("kills", "int"),
    ("deaths", "int"),
    ("headshots", "int"),
)
_INSERT_WEAPONS = _unnest_insert("weapon_round_stats", _WEAPON_ARRAYS)


async def insert_round(
    conn: asyncpg.Connection,
    server_id: str,
    rnd: Round,
    *,
    played_at: datetime,
    sha256: str,
    content: bytes,
) -> int:
    rejected = json.dumps([[r.line_number, r.reason] for r in rnd.rejected_lines])
    return await conn.fetchval(
        """INSERT INTO rounds (server_id, filename, map_name, round_number, status,
               server_name, config, defender, winner, time_limit, time_limit_seconds,
               next_time_limit, duration_ms, duration_seconds, aborted, partial,
               player_count, rejected_lines, file_time, played_at, sha256, content)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                   $16, $17, $18::jsonb, $19, $20, $21, $22)
           RETURNING id""",
        server_id,
        rnd.file.basename,
        rnd.map_name,
        rnd.round_number,
        rnd.status,
        rnd.server_name,
        rnd.config,
        rnd.defender,
        rnd.winner,
        rnd.time_limit,
        rnd.time_limit_seconds,
        rnd.next_time_limit,
        rnd.duration_ms,
        rnd.duration_seconds,
        rnd.aborted,
        rnd.partial,
        len(rnd.players),
        rejected,
        rnd.file.timestamp,
        played_at,
        sha256,
        content,
    )


def _player_values(p: PlayerStats) -> tuple[object, ...]:
    head = (
        p.key,
        p.guid,
        p.name,
        p.raw_name,
        p.name_ascii,
        p.is_bot,
        p.team,
        p.rounds,
        p.source,
        p.kills,
        p.deaths,
        p.headshots,
        p.shots,
        p.hits,
        p.time_played_seconds,
    )
    return head + tuple(getattr(p, name) for name in EXTENDED_FIELD_NAMES)


async def insert_players(
    conn: asyncpg.Connection, round_id: int, server_id: str, players: Sequence[PlayerStats]
) -> None:
    if not players:
        return
    columns = [list(col) for col in zip(*(_player_values(p) for p in players), strict=True)]
    await conn.execute(_INSERT_PLAYERS, round_id, server_id, *columns)
    weapons = [
        (p.key, name, w.hits, w.shots, w.kills, w.deaths, w.headshots)
        for p in players
        for name, w in p.weapons.items()
    ]
    if weapons:
        columns = [list(col) for col in zip(*weapons, strict=True)]
        await conn.execute(_INSERT_WEAPONS, round_id, server_id, *columns)


async def replace_players(
    conn: asyncpg.Connection, round_id: int, server_id: str, players: Sequence[PlayerStats]
) -> None:
    await conn.execute("DELETE FROM weapon_round_stats WHERE round_id = $1", round_id)
    await conn.execute("DELETE FROM player_round_stats WHERE round_id = $1", round_id)
    await insert_players(conn, round_id, server_id, players)


async def pairing_neighbourhood(
    conn: asyncpg.Connection, server_id: str, map_name: str, at: datetime, window: timedelta
) -> list[asyncpg.Record]:
    """Stats rounds of one server's map within two windows of `at`."""
    return await conn.fetch(
        """SELECT id, filename, round_number, played_at, time_limit, next_time_limit,
                  r1_round_id
           FROM rounds
           WHERE server_id = $1 AND lower(map_name) = lower($2)
             AND played_at BETWEEN $3 AND $4""",
        server_id,
        map_name,
        at - 2 * window,
        at + 2 * window,
    )


def as_candidate(row: asyncpg.Record) -> PairingCandidate:
    return PairingCandidate(
        round_id=row["id"],
        filename=row["filename"],
        round_number=row["round_number"],
        played_at=row["played_at"],
        time_limit=row["time_limit"],
        next_time_limit=row["next_time_limit"],
    )


async def clear_pairings(conn: asyncpg.Connection, r2_ids: Sequence[int]) -> None:
    # Done before new pairs are set so the "R1 at most once" index never sees
    # a transient double use while pairs move.
    await conn.execute(
        "UPDATE rounds SET r1_round_id = NULL, status = 'orphan_r2' WHERE id = ANY($1::bigint[])",
        list(r2_ids),
    )


async def set_pairing(conn: asyncpg.Connection, r2_id: int, r1_id: int | None, status: str) -> None:
    await conn.execute(
        "UPDATE rounds SET r1_round_id = $2, status = $3 WHERE id = $1", r2_id, r1_id, status
    )


async def fetch_contents(
    conn: asyncpg.Connection, ids: Sequence[int]
) -> dict[int, tuple[str, bytes]]:
    rows = await conn.fetch(
        "SELECT id, filename, content FROM rounds WHERE id = ANY($1::bigint[])", list(ids)
    )
    return {r["id"]: (r["filename"], r["content"]) for r in rows}
