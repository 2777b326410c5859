"""The presentation queries against a real PostgreSQL filled by the importer from the
committed fixture corpus: numbers must equal the sums of expected.json values."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.db import sessions_query as q
from bot.discord_ui import tables
from bot.discord_ui.embeds import round_post_embeds
from bot.discord_ui.embeds_session import session_summary_embeds
from bot.discord_ui.text import round_post_text, session_summary_text
from bot.importer import Importer
from tests.discord_ui.factories import assert_within_limits

TZ = ZoneInfo("Europe/Ljubljana")
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "multi"
EXPECTED: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
EU1_R1 = "stats/eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
EU1_R2 = "stats/eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
EU2_R1 = "stats/eu2-2025-03-05-233259-etl_frostbite-round-1.txt"
EU2_R2 = "stats/eu2-2025-03-05-234809-etl_frostbite-round-2.txt"
EU2_ORPHAN = "stats/eu2-2025-03-06-001513-braundorf_b4-round-2.txt"
SUMMED = ("kills", "deaths", "damage_given", "damage_received", "headshot_kills", "gibs")


@pytest.fixture
async def loaded(pool: asyncpg.Pool) -> asyncpg.Pool:
    importer = Importer(pool, timezone_for=lambda _s: TZ)
    for rel, entry in sorted(EXPECTED["files"].items()):
        result = await importer.import_file(
            entry["server_id"], Path(rel).name, (CORPUS / rel).read_bytes()
        )
        assert result.outcome == "imported", (rel, result)
    return pool


def ident(p: dict[str, Any]) -> str:
    return f"{p['guid']}:{p['name']}" if p["is_bot"] else p["guid"]


def expected_lines(*parts: tuple[str, str]) -> list[dict[str, Any]]:
    """Expected player dicts: (file, "players" | "r2_only") pairs."""
    return [p for rel, key in parts for p in EXPECTED["files"][rel][key]]


def expected_totals(lines: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for p in lines:
        t = totals[ident(p)]
        for key in SUMMED:
            t[key] += p[key]
        t["revives"] += p["revives_given"]
        t["time"] += p["time_played_seconds"]
        for weapon, w in p["weapons"].items():
            if weapon in tables.AIMED_WEAPONS:
                t["aimed_hits"] += w["hits"]
                t["aimed_shots"] += w["shots"]
    return {k: dict(v) for k, v in totals.items()}


async def round_id(conn: asyncpg.Connection, rel: str) -> int:
    return await conn.fetchval("SELECT id FROM rounds WHERE filename = $1", Path(rel).name)


async def test_empty_database_has_no_session(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await q.latest_session(conn) is None
        assert await q.latest_session(conn, "eu1") is None
        assert await q.load_session_summary(conn) is None
        assert await q.round_post_data(conn, 1) is None


async def test_latest_session_overall_and_per_server(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        latest = await q.latest_session(conn)
        eu1 = await q.latest_session(conn, "eu1")
        eu2 = await q.latest_session(conn, "eu2")
    assert latest is not None and latest.server_id == "na1"  # radar, 2025-03-07
    assert latest.started_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") == "2025-03-07 23:19"
    assert eu1 is not None and (eu1.server_id, eu1.round_count) == ("eu1", 2)
    assert eu2 is not None and eu2.round_count == 3


@pytest.mark.parametrize(
    ("server", "parts"),
    [
        ("eu1", [(EU1_R1, "players"), (EU1_R2, "r2_only")]),
        # eu2's session also holds an orphan R2: its cumulative rows stay out
        ("eu2", [(EU2_R1, "players"), (EU2_R2, "r2_only")]),
    ],
)
async def test_session_players_equal_r1_plus_r2_only(
    loaded: asyncpg.Pool, server: str, parts: list[tuple[str, str]]
) -> None:
    async with loaded.acquire() as conn:
        summary = await q.load_session_summary(conn, server)
    assert summary is not None
    want = expected_totals(expected_lines(*parts))
    got = {p.ident: p for p in summary.players}
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        p = got[key]
        assert {k: getattr(p, k) for k in SUMMED} == {k: w[k] for k in SUMMED}, key
        assert (p.revives_given, p.aimed_hits, p.aimed_shots) == (
            w["revives"],
            w.get("aimed_hits", 0),
            w.get("aimed_shots", 0),
        ), key
        assert abs((p.time_played_seconds or 0) - w["time"]) <= 18, key
    dpms = [p.dpm or 0 for p in summary.players]
    assert dpms == sorted(dpms, reverse=True)


async def test_session_rounds_keep_the_orphan_as_a_map(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        summary = await q.load_session_summary(conn, "eu2")
    assert summary is not None
    assert [(r.map_name, r.round_number, r.status) for r in summary.rounds] == [
        ("etl_frostbite", 1, "complete"),
        ("etl_frostbite", 2, "paired"),
        ("braundorf_b4", 2, "orphan_r2"),
    ]
    assert [m.map_name for m in summary.matches] == ["etl_frostbite", "braundorf_b4"]


async def test_session_weapons_and_player_rounds(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        info = await q.latest_session(conn, "eu2")
        assert info is not None
        weapons = await q.session_weapons(conn, info.id)
        points = await q.session_player_rounds(conn, info.id)
        frostbite = [await round_id(conn, rel) for rel in (EU2_R1, EU2_R2)]
    lines = expected_lines((EU2_R1, "players"), (EU2_R2, "r2_only"))
    want: Counter[tuple[str, str]] = Counter()
    for p in lines:
        for weapon, w in p["weapons"].items():
            want[(ident(p), weapon)] += w["kills"]
    got = Counter({(w.ident, w.weapon): w.kills for w in weapons})
    assert +got == +want
    assert len(points) == len(lines)  # one point per player per non-orphan round
    assert {p.round_id for p in points} == set(frostbite)


async def test_round_post_data_for_a_paired_r2(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        data = await q.round_post_data(conn, await round_id(conn, EU1_R2))
    assert data is not None and data.r1 is not None
    assert (data.round.status, data.round.round_number, data.r1.round_number) == ("paired", 2, 1)
    assert len(data.players) == 12 and len(data.r1_players) == 12
    r2_only = {ident(p): p["kills"] for p in EXPECTED["files"][EU1_R2]["r2_only"]}
    assert {p.ident: p.kills for p in data.players} == r2_only
    assert data.awards and data.awards[0].title == "Most damage given"
    assert data.awards[0].player == "Brick"
    embeds = round_post_embeds(data, TZ)
    assert_within_limits(embeds)
    description = embeds[0].description or ""
    assert "Allies attacked, Axis defended." in description
    assert "Attack-first team (Allies in R1) wins the map" in round_post_text(data, TZ)


async def test_round_post_data_for_an_orphan_and_an_r1(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        orphan = await q.round_post_data(conn, await round_id(conn, EU2_ORPHAN))
        r1 = await q.round_post_data(conn, await round_id(conn, EU2_R1))
    assert orphan is not None and orphan.round.is_orphan and orphan.r1 is None
    assert "Round 1 is missing" in (round_post_embeds(orphan, TZ)[0].description or "")
    assert r1 is not None and r1.r1 is None and r1.awards == ()  # no endstats for this R1
    assert sum(p.is_bot for p in r1.players) == 8


async def test_every_fixture_renders_within_limits(loaded: asyncpg.Pool) -> None:
    async with loaded.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM rounds ORDER BY id")]
        for rid in ids:
            data = await q.round_post_data(conn, rid)
            assert data is not None
            assert_within_limits(round_post_embeds(data, TZ))
            assert round_post_text(data, TZ)
        for server in ("eu1", "eu2", "na1"):
            summary = await q.load_session_summary(conn, server)
            assert summary is not None
            assert_within_limits(session_summary_embeds(summary, TZ))
            assert summary.info.server_name in session_summary_text(summary, TZ)
