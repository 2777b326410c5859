"""LISTEN/NOTIFY on a dedicated connection: an import elsewhere wakes us; a killed connection
is re-established."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from bot.db.listen import listen_for_rounds, pool_connector, round_listener
from bot.importer import Importer
from tests.api.conftest import R1, R2, TZ

WAIT_S = 10.0  # a deadline for something that should take milliseconds, not a timing assert


class Calls:
    """Records on_notify calls; lets a test await the n-th of a kind."""

    def __init__(self) -> None:
        self.payloads: list[str | None] = []
        self.changed = asyncio.Event()

    def __call__(self, payload: str | None) -> None:
        self.payloads.append(payload)
        self.changed.set()

    async def wait_for(self, pred: Callable[[list[str | None]], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not pred(self.payloads):
                self.changed.clear()
                await self.changed.wait()

    def connects(self) -> int:
        return self.payloads.count(None)

    def notes(self) -> list[str]:
        return [p for p in self.payloads if p is not None]


def recording(connect: Callable[[], Awaitable[asyncpg.Connection]], into: list) -> Callable:
    async def wrapped() -> asyncpg.Connection:
        conn = await connect()
        into.append(conn)
        return conn

    return wrapped


async def import_file(pool: asyncpg.Pool, path=R1) -> int:
    importer = Importer(pool, timezone_for=lambda _s: TZ)
    result = await importer.import_file("eu1", path.name, path.read_bytes(), "api")
    assert result.outcome == "imported"
    return await pool.fetchval("SELECT id FROM round_outbox WHERE round_id = $1", result.round_id)


async def test_an_import_in_another_connection_wakes_the_listener(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    calls = Calls()
    async with round_listener(db_dsn, calls):
        await calls.wait_for(lambda p: None in p)  # listening
        outbox_id = await import_file(pool)
        await calls.wait_for(lambda p: str(outbox_id) in p)
    assert calls.notes() == [str(outbox_id)]


async def test_reconnects_after_the_connection_is_killed(pool: asyncpg.Pool) -> None:
    calls = Calls()
    conns: list[asyncpg.Connection] = []
    connect = recording(pool_connector(pool), conns)
    async with round_listener(connect, calls):
        await calls.wait_for(lambda p: p.count(None) == 1)
        killed = await pool.fetchval("SELECT pg_terminate_backend($1)", conns[0].get_server_pid())
        assert killed
        await calls.wait_for(lambda p: p.count(None) == 2)  # re-listening: "sweep now"
        outbox_id = await import_file(pool)
        await calls.wait_for(lambda p: str(outbox_id) in p)
    assert len(conns) == 2 and conns[0].is_closed()
    assert conns[1].is_closed()  # closed when the listener stopped


async def test_keeps_trying_while_the_database_is_unreachable(pool: asyncpg.Pool) -> None:
    calls = Calls()
    failures = 0
    real = pool_connector(pool)

    async def flaky() -> asyncpg.Connection:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise ConnectionRefusedError(111, "Connection refused")
        return await real()

    task = asyncio.create_task(
        listen_for_rounds(flaky, calls, min_backoff_s=0.01, max_backoff_s=0.05)
    )
    try:
        await calls.wait_for(lambda p: None in p)
        outbox_id = await import_file(pool, R2)
        await calls.wait_for(lambda p: str(outbox_id) in p)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert failures == 3


async def test_a_broken_callback_does_not_stop_listening(pool: asyncpg.Pool, db_dsn: str) -> None:
    calls = Calls()

    def broken(payload: str | None) -> None:
        calls(payload)
        if payload is not None:
            raise RuntimeError("boom")

    async with round_listener(db_dsn, broken):
        await calls.wait_for(lambda p: None in p)
        first = await import_file(pool, R1)
        second = await import_file(pool, R2)
        await calls.wait_for(lambda p: str(first) in p and str(second) in p)


async def test_pool_connector_opens_its_own_connection(pool: asyncpg.Pool) -> None:
    conn = await pool_connector(pool)()
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert pool.get_size() <= pool.get_max_size()
        in_pool = [h._con for h in pool._holders if h._con is not None]
        assert conn not in in_pool
    finally:
        await conn.close()


@pytest.mark.parametrize("cancel_after", [0.0, 0.05])
async def test_stops_cleanly_when_cancelled(db_dsn: str, cancel_after: float) -> None:
    calls = Calls()
    async with round_listener(db_dsn, calls) as task:
        await asyncio.sleep(cancel_after)
    assert task.done()
