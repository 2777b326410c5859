"""Outbox -> posts. Exactly once in the database, at least once towards Discord.

A row is marked sent only after the sink (Discord, or the log when headless)
accepted the post, so a crash between the two means one re-send, never a lost
post. The sink is injected: the bot sends embeds, `--headless` logs text, the
demo prints to the terminal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bot.db import outbox
from bot.db.sessions_query import round_post_data
from bot.discord_ui.models import RoundPostData
from bot.ingest.webhook_trigger import RateLimiter

log = logging.getLogger(__name__)

# A post for a round played long ago (a backlog or a bulk import) is noise in
# a live channel: such rows are settled without posting.
MAX_ROUND_AGE = timedelta(hours=12)
BATCH = 20
# What _publish did with a row: only WAITING leaves it as it was.
POSTED, SETTLED, WAITING = "posted", "settled", "waiting"
# A connection lost in the middle of a pass surfaces as any of these, not only as a
# PostgresError: InterfaceError ("the underlying connection is closed") and asyncpg's
# InternalClientError ("cannot switch to state ...; another operation is in progress").
DB_DOWN = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


class PostError(Exception):
    """The sink could not post (Discord refused or is unreachable); retried later."""


class SkipPost(Exception):
    """This round cannot be posted at all (no channel configured): settled, not retried."""


@dataclass(frozen=True, slots=True)
class Post:
    outbox_id: int
    server_id: str
    data: RoundPostData


# Returns (channel id or None, message ids) once the post is accepted.
Sink = Callable[[Post], Awaitable[tuple[int | None, list[int]]]]


def retry_delay(attempts: int) -> float:
    """30 s, 60 s, 120 s ... capped at 30 min."""
    return float(min(30 * 2 ** max(attempts - 1, 0), 1800))


class Publisher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sink: Sink,
        *,
        posts_per_minute: int = 5,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pool = pool
        self.sink = sink
        self.limiter = RateLimiter(posts_per_minute, 60.0, clock)
        self.now = now
        self.wake = asyncio.Event()

    async def publish_due(self) -> int:
        """Post every due row; returns how many were posted.

        Works in batches until a batch comes back short or nothing in it could move
        (every row waits for its server's rate limit): a backlog left by a crash or
        an outage drains on one wake, not one batch per sweep.
        """
        posted = 0
        while True:
            async with self.pool.acquire() as conn:
                rows = await outbox.due(conn, BATCH)
            settled = [await self._publish(row) for row in rows]
            posted += sum(1 for s in settled if s == POSTED)
            if len(rows) < BATCH or not any(s != WAITING for s in settled):
                return posted

    async def _publish(self, row: asyncpg.Record) -> str:
        if self.now() - row["played_at"] > MAX_ROUND_AGE:
            async with self.pool.acquire() as conn:
                await outbox.mark_skipped(conn, row["id"], "stale: round older than 12 h")
            return SETTLED
        if not self.limiter.allow(row["server_id"]):
            return WAITING  # this server's posts wait for the next minute; others go on
        try:
            async with self.pool.acquire() as conn:
                data = await round_post_data(conn, row["round_id"])
            if data is None:
                return WAITING
            channel_id, message_ids = await self.sink(Post(row["id"], row["server_id"], data))
        except SkipPost as exc:
            async with self.pool.acquire() as conn:
                await outbox.mark_skipped(conn, row["id"], str(exc))
            return SETTLED
        except (PostError, asyncpg.PostgresError, OSError) as exc:
            await self._failed(row, str(exc))
            return SETTLED
        except Exception as exc:  # a bug for one round must not block the others
            log.exception(
                "[%s] building the post of round %s failed", row["server_id"], row["round_id"]
            )
            await self._failed(row, f"internal error: {exc!r}")
            return SETTLED
        async with self.pool.acquire() as conn:
            await outbox.mark_sent(conn, row["id"], channel_id, message_ids)
        return POSTED

    async def _failed(self, row: asyncpg.Record, error: str) -> None:
        delay = retry_delay(row["attempts"] + 1)
        log.warning(
            "[%s] round %s not posted (%s); retry in %.0f s",
            row["server_id"],
            row["round_id"],
            error,
            delay,
        )
        async with self.pool.acquire() as conn:
            await outbox.mark_failed(conn, row["id"], error, delay)

    async def run(self, sweep_every: float = 30.0) -> None:
        """Post whenever woken (a round stored, a NOTIFY) or every `sweep_every` s.

        A failed pass is logged and retried: this loop must outlive any database outage
        (tests/drills/test_db_outage.py stops PostgreSQL under it)."""
        while True:
            try:
                await self.publish_due()
            except DB_DOWN as exc:
                log.warning("publisher: database unavailable (%s); will retry", exc)
            except Exception:  # anything else must not end the posting for good either
                log.exception("publisher: pass failed; will retry")
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), sweep_every)
            except TimeoutError:
                pass
