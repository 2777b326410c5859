"""`!last_session` query time on a big history (default 50,400 rounds).

Run from the repository root:
    python -m bench.bench_last_session [--servers 40] [--rounds 50000] [--runs 20]

Uses TEST_DATABASE_URL's server when set (a scratch database is created and
dropped), else an embedded PostgreSQL (pgserver) in a temporary directory.
The history is generated set-based in SQL (generate_series), not through the
importer: servers x sessions of 12 rounds (R1/R2 pairs, ~2% orphan R2s),
12-20 players per round (bots on every fourth server), 5 weapon rows per
player, awards for every round. Then it times, over --runs runs:

  last_session      latest_session + session_rounds + session_players + top
                    performers (load_session_summary), latest across servers
  last_session srv  the same for one server (a different one each run)
  maps/weapons/graph data, round post   the other views' queries

and prints median and p95 in ms (wall clock over a local socket, so an upper
bound of the database time), plus the plan of the biggest query.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db import sessions_query as q
from bot.db.migrate import migrate
from bot.discord_ui.models import top_performers
from bot.discord_ui.tables import AIMED_WEAPONS

ROUNDS_PER_SESSION = 12
MAPS = "{etl_frostbite,supply,radar,mp_sub-rc1,braundorf_b4,et_ice,goldrush,adlernest}"
WEAPONS = ["WS_MP40", "WS_THOMPSON", "WS_LUGER", "WS_COLT", "WS_GRENADE", "WS_KNIFE"]
WEAPONS += ["WS_BAZOOKA", "WS_SYRINGE"]

FILL_SQL = [
    # servers
    """INSERT INTO servers (id, name)
       SELECT 's' || lpad(g::text, 3, '0'), 'Server ' || g FROM generate_series(1, $1) g""",
    # sessions: one evening per server and day, 12 rounds 15 minutes apart
    f"""INSERT INTO gaming_sessions (id, server_id, started_at, ended_at, round_count)
        SELECT (k - 1) * $1 + sv, 's' || lpad(sv::text, 3, '0'), t, t + interval '165 min',
               {ROUNDS_PER_SESSION}
        FROM generate_series(1, $1) sv, generate_series(1, $2) k,
             LATERAL (SELECT timestamptz '2024-01-01 19:00+00' + k * interval '1 day'
                             + sv * interval '1 min' AS t) x""",
    # rounds: odd = R1, even = R2 paired with the previous id (~2% orphans)
    f"""INSERT INTO rounds (id, server_id, filename, map_name, round_number, status,
            r1_round_id, server_name, config, defender, winner, time_limit,
            time_limit_seconds, next_time_limit, duration_ms, duration_seconds,
            player_count, file_time, played_at, gaming_session_id, sha256, content)
        SELECT rid, s.server_id,
               to_char(played AT TIME ZONE 'UTC', 'YYYY-MM-DD-HH24MISS') || '-' || map
                   || '-round-' || rn || '.txt',
               map, rn,
               CASE WHEN rn = 1 THEN 'complete' WHEN orphan THEN 'orphan_r2' ELSE 'paired' END,
               CASE WHEN rn = 2 AND NOT orphan THEN rid - 1 END,
               'Host ' || s.server_id, 'legacy3', 1 + (s.id % 2), 1 + (rid % 2),
               CASE WHEN rn = 1 THEN '10:00' ELSE '9:10' END, 600,
               CASE WHEN rn = 1 THEN '9:10' ELSE '71:00' END,
               550000, 550, 16, played AT TIME ZONE 'UTC', played, s.id, md5(rid::text), ''
        FROM gaming_sessions s, generate_series(1, {ROUNDS_PER_SESSION}) i,
             LATERAL (SELECT (s.id - 1) * {ROUNDS_PER_SESSION} + i AS rid,
                             2 - i % 2 AS rn,
                             s.started_at + (i - 1) * interval '15 min' AS played,
                             ('{MAPS}'::text[])[1 + (s.id + (i - 1) / 2) % 8] AS map,
                             i % 2 = 0 AND (s.id * 31 + i) % 50 = 0 AS orphan) x""",
    # players: 12-20 per round from a roster of 30 per server; bots on every 4th server
    """INSERT INTO player_round_stats (round_id, server_id, player_key, guid, name, raw_name,
            name_ascii, is_bot, team, rounds, source, kills, deaths, headshots, shots, hits,
            time_played_seconds, damage_given, damage_received, gibs, headshot_kills,
            revives_given, time_played_minutes)
        SELECT r.id, r.server_id, CASE WHEN bot THEN guid || ':' || nm ELSE guid END, guid, nm,
               nm, nm, bot, 1 + j % 2, r.round_number, 'file', k, (random() * 15)::int,
               (random() * 20)::int, 300, 90, secs, dmg, (random() * 3000)::int,
               (random() * 6)::int, (random() * 4)::int, (random() * 5)::int, secs / 60.0
        FROM rounds r, generate_series(1, 12 + (r.id * 7) % 9) j,
             LATERAL (SELECT (r.gaming_session_id * 7 + j) % 30 AS slot,
                             substr(r.server_id, 2)::int % 4 = 0 AND j > 10 AS bot) a,
             LATERAL (SELECT CASE WHEN bot THEN 'OMNIBOT' || (j % 3)
                                  ELSE upper(substr(md5(r.server_id || ':' || slot), 1, 8))
                             END AS guid,
                             CASE WHEN bot THEN '[BOT]Bot' || j ELSE 'Player' || slot END AS nm,
                             (random() * 20)::int AS k, 400 + (random() * 150)::int AS secs,
                             (random() * 3500)::int AS dmg) b""",
    # weapons: 5 of 8 per player (rotating), hits <= shots
    """INSERT INTO weapon_round_stats (round_id, server_id, player_key, weapon, hits, shots,
            kills, deaths, headshots)
        SELECT p.round_id, p.server_id, p.player_key,
               ($1::text[])[1 + (p.round_id + length(p.player_key) * 3 + w) % 8],
               h, h + (random() * 200)::int, (random() * 5)::int, (random() * 3)::int, h / 8
        FROM player_round_stats p, generate_series(0, 4) w,
             LATERAL (SELECT (random() * 60)::int AS h) x""",
    # awards for every round (round_post_data reads them)
    """INSERT INTO endstats (id, server_id, filename, map_name, round_number, file_time,
            played_at, line_count, round_id)
        SELECT id, server_id, replace(filename, '.txt', '-endstats.txt'), map_name,
               round_number, file_time, played_at, 10, id
        FROM rounds""",
    """INSERT INTO round_awards (endstats_id, server_id, position, title, player, value,
            value_number)
        SELECT e.id, e.server_id, pos, 'Award ' || pos, 'Player' || pos, '42', 42
        FROM endstats e, generate_series(0, 9) pos""",
]


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A DSN of an empty database: on TEST_DATABASE_URL's server, else embedded."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        from tests.conftest import with_database

        name = f"etl_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        server = await asyncio.to_thread(pgserver.get_server, tmp, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            await asyncio.to_thread(server.cleanup)


async def fill(pool: asyncpg.Pool, servers: int, rounds: int) -> None:
    per_server = -(-rounds // (servers * ROUNDS_PER_SESSION))  # ceil
    args: list[tuple[object, ...]] = [
        (servers,),
        (servers, per_server),
        (),
        (),
        (WEAPONS,),
        (),
        (),
    ]
    async with pool.acquire() as conn:
        for sql, params in zip(FILL_SQL, args, strict=True):
            start = time.perf_counter()
            status = await conn.execute(sql, *params)
            table = sql.split("INSERT INTO ", 1)[1].split()[0]
            print(
                f"  {table:<20} {status.split()[-1]:>9} rows  {time.perf_counter() - start:6.1f} s"
            )
        for table in ("gaming_sessions", "rounds", "endstats"):  # ids were given explicitly
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        start = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE                        {time.perf_counter() - start:6.1f} s")


async def timed(runs: int, step: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    await step(-1)  # warm-up: first-touch of pages and statement preparation
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        await step(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


async def measure(pool: asyncpg.Pool, servers: int, runs: int) -> None:
    async with pool.acquire() as conn:
        latest = await q.latest_session(conn)
        assert latest is not None
        sid = latest.id
        r2 = await conn.fetchval("SELECT max(id) FROM rounds WHERE status = 'paired'")

        async def last_session(_: int) -> None:
            summary = await q.load_session_summary(conn)
            assert summary is not None and summary.players
            top_performers(summary.players)

        async def last_session_server(i: int) -> None:
            server = f"s{(i % servers) + 1:03d}"
            summary = await q.load_session_summary(conn, server)
            assert summary is not None
            top_performers(summary.players)

        cases: list[tuple[str, Callable[[int], Awaitable[object]]]] = [
            ("!last_session (all servers)", last_session),
            ("!last_session <server>", last_session_server),
            ("session_player_rounds (graphs/maps)", lambda _: q.session_player_rounds(conn, sid)),
            ("session_weapons", lambda _: q.session_weapons(conn, sid)),
            ("round_post_data (paired R2)", lambda _: q.round_post_data(conn, r2)),
        ]
        print(f"\n{'query':<38} {'median':>8} {'p95':>8}   ({runs} runs)")
        for name, step in cases:
            median, p95 = await timed(runs, step)
            print(f"{name:<38} {median:7.2f}ms {p95:7.2f}ms")
        await print_plans(conn, sid)


async def print_plans(conn: asyncpg.Connection, session_id: int) -> None:
    """EXPLAIN ANALYZE of the `!last_session` queries: every step an index lookup."""
    plans = [
        ("latest_session()", q._LATEST_SQL.format(where=""), ()),
        ("latest_session(server)", q._LATEST_SQL.format(where="WHERE s.server_id = $1"), ("s001",)),
        ("session_players", q._SESSION_PLAYERS_SQL, (session_id, list(AIMED_WEAPONS))),
    ]
    for name, sql, params in plans:
        print(f"\nplan of {name}:")
        for row in await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + sql, *params):
            print("  " + row[0])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    async with scratch_database() as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            await migrate(pool)
            print(f"filling: {args.servers} servers, ~{args.rounds} rounds")
            await fill(pool, args.servers, args.rounds)
            await measure(pool, args.servers, args.runs)
        finally:
            await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
