"""Importer rules on small hand-made cases: ledger, sessions, endstats, atomicity."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.db import endstats as endstats_db
from bot.importer import Importer

FIX = Path(__file__).resolve().parent / "fixtures" / "stats" / "multi"
R1 = FIX / "stats" / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = FIX / "stats" / "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
ES1 = FIX / "stats" / "eu1-2025-03-03-214222-etl_frostbite-round-1-endstats.txt"
HEADER_ONLY = FIX / "malformed" / "eu1-2025-03-02-120200-supply-round-1.txt"
TZ = ZoneInfo("Europe/Ljubljana")


def make(pool: asyncpg.Pool) -> Importer:
    return Importer(pool, timezone_for=lambda _s: TZ)


def variant(path: Path, tag: str) -> bytes:
    """The same round with a different server name: distinct content, same stats."""
    data = path.read_bytes()
    head, rest = data.split(b"\\", 1)
    return head + tag.encode() + b"\\" + rest


def r1_name(stamp: str) -> str:
    return f"eu1-2025-03-03-{stamp}-etl_frostbite-round-1.txt"


async def test_same_name_twice_is_a_noop(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    first = await imp.import_file("eu1", R1.name, R1.read_bytes())
    again = await imp.import_file("eu1", R1.name, R1.read_bytes(), source="poll")
    assert (first.outcome, again.outcome) == ("imported", "duplicate")
    assert again.round_id == first.round_id
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1
    assert await pool.fetchval("SELECT source FROM processed_files") == "import"


async def test_same_content_under_another_name_is_detected_by_hash(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    await imp.import_file("eu1", R1.name, R1.read_bytes())
    legacy_name = R1.name.removeprefix("eu1-")
    dup = await imp.import_file("eu1", legacy_name, R1.read_bytes(), source="webhook")
    assert dup.outcome == "duplicate" and dup.duplicate_of == R1.name
    row = await pool.fetchrow("SELECT * FROM processed_files WHERE filename = $1", legacy_name)
    assert (row["status"], row["duplicate_of"], row["source"]) == ("done", R1.name, "webhook")
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1


async def test_rejected_file_is_recorded_once_with_its_reason(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    name = "eu1-2025-03-02-121100-supply-round-1.txt"
    bad = (FIX / "malformed" / name).read_bytes()
    first = await imp.import_file("eu1", name, bad)
    again = await imp.import_file("eu1", name, bad)
    assert first.outcome == "rejected" and first.reason
    assert again.outcome == "duplicate"
    row = await pool.fetchrow("SELECT status, error, attempts FROM processed_files")
    assert (row["status"], row["error"], row["attempts"]) == ("rejected", first.reason, 1)


async def test_bad_file_name_and_wrong_prefix_are_rejected(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    bad = await imp.import_file("eu1", "eu1-2025-02-30-256199-supply-round-3.txt", b"x")
    wrong = await imp.import_file("eu2", R1.name, R1.read_bytes())
    assert bad.outcome == wrong.outcome == "rejected"
    assert "prefix 'eu1' does not match server 'eu2'" in (wrong.reason or "")
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 0
    assert await pool.fetchval("SELECT count(*) FROM processed_files") == 2


async def test_empty_file_fails_retryably_then_imports(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    empty = await imp.import_file("eu1", R1.name, b"", source="poll")
    assert (empty.outcome, empty.retryable) == ("failed", True)
    assert await pool.fetchval("SELECT status FROM processed_files") == "failed"
    later = await imp.import_file("eu1", R1.name, R1.read_bytes(), source="poll")
    assert later.outcome == "imported"
    row = await pool.fetchrow("SELECT status, attempts FROM processed_files")
    assert (row["status"], row["attempts"]) == ("done", 2)


async def test_r2_before_r1_is_orphan_then_repaired(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    r2 = await imp.import_file("eu1", R2.name, R2.read_bytes())
    assert r2.status == "orphan_r2"
    cumulative = await pool.fetchval(
        "SELECT sum(kills) FROM player_round_stats WHERE round_id = $1", r2.round_id
    )
    r1 = await imp.import_file("eu1", R1.name, R1.read_bytes())
    assert r1.repaired == (r2.round_id,)
    row = await pool.fetchrow("SELECT status, r1_round_id FROM rounds WHERE id = $1", r2.round_id)
    assert (row["status"], row["r1_round_id"]) == ("paired", r1.round_id)
    r1_kills, r2_only = await pool.fetchrow(
        """SELECT (SELECT sum(kills) FROM player_round_stats WHERE round_id = $1),
                  (SELECT sum(kills) FROM player_round_stats WHERE round_id = $2)""",
        r1.round_id,
        r2.round_id,
    )
    assert r2_only < cumulative and r1_kills + r2_only >= cumulative


async def test_sessions_split_on_gap_and_merge_when_bridged(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    await imp.import_file("eu1", r1_name("200000"), variant(R1, "a"))
    await imp.import_file("eu1", r1_name("214000"), variant(R1, "c"))  # 100 min later
    assert await pool.fetchval("SELECT count(*) FROM gaming_sessions") == 2
    await imp.import_file("eu1", r1_name("205000"), variant(R1, "b"))  # 50 min from both
    rows = await pool.fetch("SELECT round_count, started_at, ended_at FROM gaming_sessions")
    assert len(rows) == 1 and rows[0]["round_count"] == 3
    assert rows[0]["ended_at"] - rows[0]["started_at"] == timedelta(minutes=100)
    assert await pool.fetchval("SELECT count(DISTINCT gaming_session_id) FROM rounds") == 1


async def test_sessions_are_per_server(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    await imp.import_file("eu1", r1_name("200000"), variant(R1, "a"))
    await imp.import_file("eu2", r1_name("200500").replace("eu1-", "eu2-"), variant(R1, "b"))
    rows = await pool.fetch("SELECT server_id FROM gaming_sessions ORDER BY server_id")
    assert [r["server_id"] for r in rows] == ["eu1", "eu2"]


@pytest.mark.parametrize("stats_first", [True, False])
async def test_endstats_link_whichever_arrives_first(pool: asyncpg.Pool, stats_first: bool) -> None:
    imp = make(pool)
    steps = [(R1.name, R1.read_bytes()), (ES1.name, ES1.read_bytes())]
    for name, data in steps if stats_first else steps[::-1]:
        assert (await imp.import_file("eu1", name, data)).outcome == "imported"
    round_id = await pool.fetchval("SELECT id FROM rounds")
    assert await pool.fetchval("SELECT round_id FROM endstats") == round_id
    awards = await pool.fetchval(
        """SELECT count(*) FROM round_awards a JOIN endstats e ON e.id = a.endstats_id
           WHERE e.round_id = $1""",
        round_id,
    )
    assert awards == 35


@pytest.mark.parametrize("bigger_first", [True, False])
async def test_competing_endstats_keep_the_one_with_more_lines(
    pool: asyncpg.Pool, bigger_first: bool
) -> None:
    imp = make(pool)
    await imp.import_file("eu1", R1.name, R1.read_bytes())
    full = ES1.read_bytes()
    short = b"\n".join(full.split(b"\n")[:5]) + b"\n"
    other = ES1.name.replace("214222", "214221")
    files = [(ES1.name, full), (other, short)]
    for name, data in files if bigger_first else files[::-1]:
        await imp.import_file("eu1", name, data)
    linked = await pool.fetch("SELECT filename FROM endstats WHERE round_id IS NOT NULL")
    assert [r["filename"] for r in linked] == [ES1.name]
    linked_awards = await pool.fetchval(
        """SELECT count(*) FROM round_awards a JOIN endstats e ON e.id = a.endstats_id
           WHERE e.round_id IS NOT NULL"""
    )
    assert linked_awards == 35


async def test_outbox_gets_one_row_per_announced_round(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    await imp.import_file("eu1", R1.name, R1.read_bytes())
    await imp.import_file("eu1", R2.name, R2.read_bytes())
    await imp.import_file("eu1", HEADER_ONLY.name, HEADER_ONLY.read_bytes())
    rows = await pool.fetch(
        "SELECT r.filename FROM round_outbox o JOIN rounds r ON r.id = o.round_id ORDER BY 1"
    )
    assert [r["filename"] for r in rows] == [R1.name, R2.name]  # header-only not announced


async def test_a_crash_mid_import_leaves_nothing_behind(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(endstats_db, "relink_round", boom)
    with pytest.raises(RuntimeError):
        await make(pool).import_file("eu1", R1.name, R1.read_bytes())
    for table in ("rounds", "player_round_stats", "processed_files", "round_outbox"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_concurrent_imports_of_one_file_store_it_once(pool: asyncpg.Pool) -> None:
    imp = make(pool)
    results = await asyncio.gather(
        *(imp.import_file("eu1", R1.name, R1.read_bytes()) for _ in range(4))
    )
    assert sorted(r.outcome for r in results) == ["duplicate"] * 3 + ["imported"]
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1
