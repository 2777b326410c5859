"""Read stored rounds back as the same Round objects (and JSON) the parser produces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from bot.stats import parse_filename, round_to_json
from bot.stats.model import (
    EXTENDED_FIELD_NAMES,
    Award,
    EndStats,
    PlayerStats,
    Round,
    VersusBlock,
    VersusRow,
    WeaponStats,
)

_PLAYER_FIELDS = (
    "guid",
    "raw_name",
    "name",
    "name_ascii",
    "is_bot",
    "rounds",
    "team",
    "source",
    *EXTENDED_FIELD_NAMES,
)
_ROUNDS_SQL = """
SELECT r.id, r.server_id, r.filename, r.map_name, r.round_number, r.status, r.server_name,
       r.config, r.defender, r.winner, r.time_limit, r.time_limit_seconds, r.next_time_limit,
       r.duration_ms, r.aborted, r.partial, r1.filename AS r1_filename
FROM rounds r LEFT JOIN rounds r1 ON r1.id = r.r1_round_id
WHERE {where}
ORDER BY r.server_id, r.played_at, r.filename
"""
_BY_SERVER = _ROUNDS_SQL.format(where="($1::text IS NULL OR r.server_id = $1)")
_BY_ID = _ROUNDS_SQL.format(where="r.id = $1")
_BATCH = 200


async def load_round(conn: asyncpg.Connection, round_id: int) -> tuple[str, Round, EndStats | None]:
    row = await conn.fetchrow(_BY_ID, round_id)
    if row is None:
        raise LookupError(f"no round with id {round_id}")
    return (await _build(conn, [row]))[0]


async def export_rounds(
    pool: asyncpg.Pool, server_id: str | None = None
) -> AsyncIterator[dict[str, object]]:
    """Every stored round as round JSON, in (server, time) order, in batches."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cursor = await conn.cursor(_BY_SERVER, server_id)
        while rows := await cursor.fetch(_BATCH):
            for sid, rnd, es in await _build(conn, rows):
                yield round_to_json(rnd, sid, es)


async def _build(
    conn: asyncpg.Connection, rows: list[asyncpg.Record]
) -> list[tuple[str, Round, EndStats | None]]:
    ids = [r["id"] for r in rows]
    players = await _players(conn, ids)
    endstats = await _endstats(conn, ids)
    out = []
    for r in rows:
        name = parse_filename(r["filename"])
        rnd = Round(
            file=name,
            server_name_raw=r["server_name"],
            server_name=r["server_name"],
            map_name=r["map_name"],
            config=r["config"],
            round_number=r["round_number"],
            defender=r["defender"],
            winner=r["winner"],
            time_limit=r["time_limit"],
            time_limit_seconds=r["time_limit_seconds"],
            next_time_limit=r["next_time_limit"],
            duration_ms=r["duration_ms"],
            aborted=r["aborted"],
            players=players.get(r["id"], []),
            partial=r["partial"],
            status=r["status"],
            paired_r1=r["r1_filename"],
        )
        out.append((r["server_id"], rnd, endstats.get(r["id"])))
    return out


async def _players(conn: asyncpg.Connection, ids: list[int]) -> dict[int, list[PlayerStats]]:
    cols = ", ".join(_PLAYER_FIELDS)
    rows = await conn.fetch(
        f"""SELECT round_id, player_key, {cols} FROM player_round_stats
            WHERE round_id = ANY($1::bigint[]) ORDER BY round_id, player_key""",
        ids,
    )
    weapons = await conn.fetch(
        """SELECT round_id, player_key, weapon, hits, shots, kills, deaths, headshots
           FROM weapon_round_stats WHERE round_id = ANY($1::bigint[])""",
        ids,
    )
    by_player: dict[tuple[int, str], dict[str, WeaponStats]] = {}
    for w in weapons:
        by_player.setdefault((w["round_id"], w["player_key"]), {})[w["weapon"]] = WeaponStats(
            w["hits"], w["shots"], w["kills"], w["deaths"], w["headshots"]
        )
    out: dict[int, list[PlayerStats]] = {}
    for row in rows:
        p = PlayerStats(**{f: row[f] for f in _PLAYER_FIELDS}, key_override=row["player_key"])
        p.weapons = by_player.get((row["round_id"], row["player_key"]), {})
        out.setdefault(row["round_id"], []).append(p)
    return out


async def _endstats(conn: asyncpg.Connection, ids: list[int]) -> dict[int, EndStats]:
    """The endstats file linked to each round, with its awards and head-to-head rows."""
    files = await conn.fetch(
        "SELECT id, round_id, filename FROM endstats WHERE round_id = ANY($1::bigint[])", ids
    )
    out = {f["round_id"]: EndStats(file=parse_filename(f["filename"])) for f in files}
    awards = await conn.fetch(
        """SELECT e.round_id, a.position, a.title, a.player, a.value, a.value_number
           FROM endstats e JOIN round_awards a ON a.endstats_id = e.id
           WHERE e.round_id = ANY($1::bigint[]) ORDER BY e.round_id, a.position""",
        ids,
    )
    for a in awards:
        out[a["round_id"]].awards.append(
            Award(a["position"], a["title"], a["player"], a["value"], a["value_number"])
        )
    rows = await conn.fetch(
        """SELECT e.round_id, v.subject, v.subject_guid, v.opponent, v.kills, v.deaths
           FROM endstats e JOIN round_vs_stats v ON v.endstats_id = e.id
           WHERE e.round_id = ANY($1::bigint[]) ORDER BY e.round_id, v.position""",
        ids,
    )
    for v in rows:
        blocks = out[v["round_id"]].versus
        if not blocks or (blocks[-1].subject, blocks[-1].subject_guid) != (
            v["subject"],
            v["subject_guid"],
        ):
            blocks.append(VersusBlock(v["subject"], v["subject_guid"]))
        blocks[-1].rows.append(VersusRow(v["opponent"], v["kills"], v["deaths"]))
    return out
