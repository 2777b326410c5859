"""FileTracker layers against a real PostgreSQL ledger, with an injected clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.db import processed
from bot.db import servers as servers_db
from bot.ingest.file_tracker import Action, FileTracker
from tests.ingest.test_pipeline import NOW, FakeClock

TZ = ZoneInfo("Europe/Ljubljana")
R1 = "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tracker(pool: asyncpg.Pool, clock: FakeClock) -> FileTracker:
    async with pool.acquire() as conn:
        await servers_db.ensure_server(conn, "eu1")
    return FileTracker(pool, timezone_for=lambda _sid: TZ, clock=clock)


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def fail(pool: asyncpg.Pool, clock: FakeClock, name: str = R1) -> tuple[int, datetime]:
    async with pool.acquire() as conn:
        result = await processed.record_failure(
            conn, "eu1", name, source="poll", error="boom", now=at(clock())
        )
    assert result is not None
    return result


async def test_new_file_is_claimed_until_finished(tracker: FileTracker) -> None:
    verdict = await tracker.begin("eu1", R1)
    assert (verdict.action, verdict.reason, verdict.attempts) == (Action.PROCESS, "new", 0)
    assert tracker.is_in_flight("eu1", R1)
    second = await tracker.begin("eu1", R1)
    assert (second.action, second.in_flight) == (Action.SKIP, True)
    tracker.finish("eu1", R1, done=False)
    assert not tracker.is_in_flight("eu1", R1)
    assert (await tracker.begin("eu1", R1)).process


async def test_in_flight_blocks_explicit_callers_too(tracker: FileTracker) -> None:
    assert (await tracker.begin("eu1", R1)).process
    assert (await tracker.begin("eu1", R1, explicit=True)).in_flight
    assert await tracker.wait_idle(0.01) is False
    tracker.finish("eu1", R1, done=True)
    assert await tracker.wait_idle(0.01) is True


async def test_lookback_ignores_old_files_in_the_server_time_zone(
    pool: asyncpg.Pool, clock: FakeClock
) -> None:
    name = "eu1-2025-03-08-120000-supply-round-1.txt"  # 12:00 server-local
    clock.now = datetime(2025, 3, 8, 11, 30, tzinfo=UTC).timestamp()
    zones = {"eu1": ZoneInfo("Europe/Ljubljana"), "jp1": ZoneInfo("Asia/Tokyo")}
    tracker = FileTracker(pool, timezone_for=zones.__getitem__, lookback_hours=1, clock=clock)
    # Ljubljana: 11:00 UTC, 30 min old. Tokyo: 03:00 UTC, 8.5 h old.
    assert not tracker.too_old("eu1", name)
    assert tracker.too_old("jp1", name.replace("eu1-", "jp1-"))
    verdict = await tracker.begin("jp1", name.replace("eu1-", "jp1-"))
    assert verdict.action is Action.IGNORE and not tracker.in_flight_count
    explicit = await tracker.begin("jp1", name.replace("eu1-", "jp1-"), explicit=True)
    assert explicit.process


async def test_zero_lookback_means_no_limit(pool: asyncpg.Pool, clock: FakeClock) -> None:
    clock.advance(10 * 365 * 86400)
    tracker = FileTracker(pool, timezone_for=lambda _s: TZ, lookback_hours=0, clock=clock)
    assert (await tracker.begin("eu1", R1)).process


async def test_done_set_answers_without_the_database(tracker: FileTracker) -> None:
    assert (await tracker.begin("eu1", R1)).process
    tracker.finish("eu1", R1, done=True)
    verdict = await tracker.begin("eu1", R1)
    assert (verdict.action, verdict.reason, verdict.done) == (
        Action.SKIP,
        "already processed",
        True,
    )


@pytest.mark.parametrize("status", ["done", "rejected"])
async def test_ledger_done_or_rejected_is_skipped_and_remembered(
    tracker: FileTracker, pool: asyncpg.Pool, status: str
) -> None:
    async with pool.acquire() as conn:
        await processed.record(conn, "eu1", R1, status=status, source="poll")
    verdict = await tracker.begin("eu1", R1)
    assert (verdict.action, verdict.reason) == (Action.SKIP, f"already {status}")
    assert not tracker.is_in_flight("eu1", R1)
    assert tracker.is_done("eu1", R1)


async def test_failed_file_retried_only_after_backoff_then_given_up(
    tracker: FileTracker, pool: asyncpg.Pool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.ingest.file_tracker")
    delays = []
    for attempt in range(1, 6):
        attempts, next_at = await fail(pool, clock)
        assert attempts == attempt
        delays.append(next_at.timestamp() - clock())
        tracker.finish("eu1", R1, done=False, attempts=attempts, retry_at=next_at.timestamp())
        if attempts < 5:
            skipped = await tracker.begin("eu1", R1)
            assert (skipped.action, skipped.reason) == (
                Action.SKIP,
                "waiting for its retry backoff",
            )
            clock.advance(delays[-1])
            verdict = await tracker.begin("eu1", R1)
            assert (verdict.action, verdict.attempts) == (Action.PROCESS, attempts)
    assert delays == [30, 60, 120, 240, 480]
    clock.advance(10_000)
    for _ in range(3):
        verdict = await tracker.begin("eu1", R1)
        assert (verdict.action, verdict.reason) == (Action.SKIP, "gave up after 5 attempts")
    assert len([r for r in caplog.records if "giving up" in r.getMessage()]) == 1
    assert (await tracker.begin("eu1", R1, explicit=True)).process


async def test_failed_rows_read_from_the_ledger_by_a_fresh_tracker(
    pool: asyncpg.Pool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with pool.acquire() as conn:
        await servers_db.ensure_server(conn, "eu1")
    await fail(pool, clock)
    fresh = FileTracker(pool, timezone_for=lambda _s: TZ, clock=clock)
    assert (await fresh.begin("eu1", R1)).reason == "waiting for its retry backoff"
    clock.advance(30)
    assert (await fresh.begin("eu1", R1)).process
    fresh.finish("eu1", R1, done=False)
    for _ in range(4):
        await fail(pool, clock)
    caplog.set_level(logging.WARNING, logger="bot.ingest.file_tracker")
    exhausted = FileTracker(pool, timezone_for=lambda _s: TZ, clock=clock)
    assert (await exhausted.begin("eu1", R1)).reason == "gave up after 5 attempts"
    assert (await exhausted.begin("eu1", R1)).reason == "gave up after 5 attempts"
    assert len([r for r in caplog.records if "giving up" in r.getMessage()]) == 1


async def test_backoff_is_capped_at_an_hour(pool: asyncpg.Pool, clock: FakeClock) -> None:
    async with pool.acquire() as conn:
        await servers_db.ensure_server(conn, "eu1")
    for _ in range(9):
        attempts, next_at = await fail(pool, clock)
    assert attempts == 9 and next_at.timestamp() - clock() == 3600
    assert processed.retry_delay(9) == 3600 and processed.retry_delay(3) == 120


async def test_failure_never_downgrades_a_done_row(
    tracker: FileTracker, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await processed.record(conn, "eu1", R1, status="done", source="webhook")
        result = await processed.record_failure(
            conn, "eu1", R1, source="poll", error="late", now=at(NOW)
        )
        assert result is None
        assert await conn.fetchval("SELECT status FROM processed_files") == "done"


async def test_warm_loads_done_and_rejected_rows(pool: asyncpg.Pool, clock: FakeClock) -> None:
    async with pool.acquire() as conn:
        await servers_db.ensure_server(conn, "eu1")
        await processed.record(conn, "eu1", R1, status="done", source="poll")
        await processed.record(conn, "eu1", R2, status="rejected", source="poll", error="bad")
    await fail(pool, clock, "eu1-2025-03-04-101010-supply-round-1.txt")
    tracker = FileTracker(pool, timezone_for=lambda _s: TZ, clock=clock)
    assert await tracker.warm() == 2
    assert tracker.is_done("eu1", R1) and tracker.is_done("eu1", R2)
    assert not tracker.is_done("eu1", "eu1-2025-03-04-101010-supply-round-1.txt")
    assert (await tracker.begin("eu1", R1)).reason == "already processed"
