"""The outbox publisher against a real database: once in the DB, at least once out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.db import outbox
from bot.discord_ui.publisher import Post, PostError, Publisher
from bot.importer import Importer

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "multi" / "stats"
R1 = FIX / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = FIX / "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"
EVENING = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)  # shortly after those rounds


class RecordingSink:
    def __init__(self, fail_times: int = 0) -> None:
        self.posts: list[Post] = []
        self.fail_times = fail_times

    async def __call__(self, post: Post) -> tuple[int | None, list[int]]:
        if self.fail_times:
            self.fail_times -= 1
            raise PostError("503 Service Unavailable")
        self.posts.append(post)
        return 42, [1000 + len(self.posts)]


async def imported(pool: asyncpg.Pool, *paths: Path) -> None:
    importer = Importer(pool, timezone_for=lambda _s: ZoneInfo("Europe/Ljubljana"))
    for p in paths:
        assert (await importer.import_file("eu1", p.name, p.read_bytes())).outcome == "imported"


def publisher(pool: asyncpg.Pool, sink: RecordingSink, **kw: object) -> Publisher:
    return Publisher(pool, sink, now=lambda: EVENING, **kw)  # type: ignore[arg-type]


async def test_each_round_is_posted_once(pool: asyncpg.Pool) -> None:
    await imported(pool, R1, R2)
    sink = RecordingSink()
    pub = publisher(pool, sink)
    assert await pub.publish_due() == 2
    assert await pub.publish_due() == 0
    assert [(p.data.round.round_number, p.data.round.map_name) for p in sink.posts] == [
        (1, "etl_frostbite"),
        (2, "etl_frostbite"),
    ]
    assert sink.posts[1].data.r1 is not None  # the R2 post carries its R1 for the match result
    rows = await pool.fetch("SELECT sent_at, channel_id, message_ids FROM round_outbox ORDER BY id")
    assert [(r["channel_id"], r["message_ids"]) for r in rows] == [(42, [1001]), (42, [1002])]


async def test_a_failed_send_is_retried_with_backoff(pool: asyncpg.Pool) -> None:
    await imported(pool, R1)
    sink = RecordingSink(fail_times=1)
    pub = publisher(pool, sink)
    assert await pub.publish_due() == 0
    row = await pool.fetchrow(
        "SELECT attempts, last_error, next_attempt_at > now() AS later FROM round_outbox"
    )
    assert (row["attempts"], row["last_error"], row["later"]) == (
        1,
        "503 Service Unavailable",
        True,
    )
    assert await pub.publish_due() == 0  # backoff not over
    await pool.execute("UPDATE round_outbox SET next_attempt_at = now()")
    assert await pub.publish_due() == 1
    assert len(sink.posts) == 1


async def test_crash_between_send_and_mark_resends_once(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await imported(pool, R1)
    sink = RecordingSink()
    real_mark = outbox.mark_sent

    async def crash(*_a: object) -> None:
        raise ConnectionResetError("bot killed here")

    monkeypatch.setattr(outbox, "mark_sent", crash)
    with pytest.raises(ConnectionResetError):
        await publisher(pool, sink).publish_due()
    assert len(sink.posts) == 1
    assert await pool.fetchval("SELECT count(*) FROM round_outbox WHERE sent_at IS NULL") == 1
    monkeypatch.setattr(outbox, "mark_sent", real_mark)
    restarted = publisher(pool, sink)  # a new process: the row is still unsent
    assert await restarted.publish_due() == 1
    assert await restarted.publish_due() == 0
    assert len(sink.posts) == 2  # one re-send, never a lost post
    assert await pool.fetchval("SELECT count(*) FROM round_outbox WHERE sent_at IS NULL") == 0


async def test_per_server_rate_limit_defers_the_rest(pool: asyncpg.Pool) -> None:
    await imported(pool, R1, R2)
    sink = RecordingSink()
    pub = publisher(pool, sink, posts_per_minute=1)
    assert await pub.publish_due() == 1
    assert await pool.fetchval("SELECT count(*) FROM round_outbox WHERE sent_at IS NULL") == 1


async def test_stale_rounds_are_settled_without_a_post(pool: asyncpg.Pool) -> None:
    await imported(pool, R1)
    sink = RecordingSink()
    pub = Publisher(pool, sink, now=lambda: EVENING + timedelta(days=3))
    assert await pub.publish_due() == 0 and sink.posts == []
    row = await pool.fetchrow("SELECT sent_at IS NOT NULL AS settled, last_error FROM round_outbox")
    assert row["settled"] and row["last_error"].startswith("stale")


async def test_a_broken_post_is_set_aside_and_the_others_go_out(pool: asyncpg.Pool) -> None:
    await imported(pool, R1, R2)
    posted: list[int] = []

    async def sink(post: Post) -> tuple[int | None, list[int]]:
        if post.data.round.round_number == 1:
            raise ValueError("embed builder bug")
        posted.append(post.data.round.round_number)
        return 42, [7]

    pub = Publisher(pool, sink, now=lambda: EVENING)
    assert await pub.publish_due() == 1 and posted == [2]
    row = await pool.fetchrow(
        "SELECT sent_at, attempts, last_error FROM round_outbox WHERE message_ids IS NULL"
    )
    assert row["sent_at"] is None and row["attempts"] == 1
    assert row["last_error"] == "internal error: ValueError('embed builder bug')"
