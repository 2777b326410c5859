"""LISTEN round_outbox: learn at once that another process (a push-API instance) stored a round.

The importer runs `pg_notify(NOTIFY_CHANNEL, outbox id)` inside the import transaction, so a
notification arrives exactly when the row is committed. `listen_for_rounds` holds ONE
dedicated connection (never a pool connection: a pooled connection would be reset and its
LISTEN lost on release) and calls `on_notify(payload)` for every notification.

Notifications sent while the connection is down are lost, so after every (re)connect
`on_notify(None)` is called: "you may have missed some, sweep the outbox". The publisher's
periodic sweep stays the safety net either way. A dropped connection (server restart,
pg_terminate_backend, network) is noticed through asyncpg's termination callback, or by a
keep-alive query for half-open TCP, and re-established with exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from bot.db.outbox import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]
# Called on the event loop; keep it quick (set an asyncio.Event). None: (re)connected.
OnNotify = Callable[[str | None], object]
_DOWN = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def pool_connector(pool: asyncpg.Pool) -> Connect:
    """Open connections exactly like `pool` does (same DSN, SSL, timeouts), outside it.

    asyncpg keeps a pool's connect arguments in private attributes; reading them is the only
    way to reach the embedded server, whose address only the pool knows.
    """
    args: tuple[Any, ...] = tuple(pool._connect_args)  # type: ignore[attr-defined]
    kwargs: dict[str, Any] = dict(pool._connect_kwargs)  # type: ignore[attr-defined]

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(*args, **kwargs)

    return connect


def _connector(target: str | Connect) -> Connect:
    if isinstance(target, str):
        dsn = target

        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(dsn)

        return connect
    return target


def _call(on_notify: OnNotify, payload: str | None) -> None:
    try:
        on_notify(payload)
    except Exception:  # a broken callback must not take the listener down
        log.exception("round listener: callback failed")


async def _hold(
    conn: asyncpg.Connection, channel: str, on_notify: OnNotify, keepalive_s: float
) -> None:
    """LISTEN on `conn` until it is lost."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _c: lost.set())
    await conn.add_listener(channel, lambda _c, _pid, _ch, payload: _call(on_notify, payload))
    log.info("round listener: listening on %r", channel)
    _call(on_notify, None)
    while not lost.is_set() and not conn.is_closed():
        try:
            await asyncio.wait_for(lost.wait(), keepalive_s)
        except TimeoutError:
            await conn.fetchval("SELECT 1", timeout=keepalive_s)  # raises on a dead peer


async def listen_for_rounds(
    target: str | Connect,
    on_notify: OnNotify,
    *,
    channel: str = NOTIFY_CHANNEL,
    keepalive_s: float = 30.0,
    min_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> None:
    """Listen until cancelled. `target`: a DSN, or a coroutine function opening a connection
    (see `pool_connector`)."""
    connect = _connector(target)
    delay = min_backoff_s
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect()
            delay = min_backoff_s  # connected: the next trouble starts the backoff afresh
            await _hold(conn, channel, on_notify, keepalive_s)
            log.warning("round listener: database connection lost; reconnecting")
        except _DOWN as exc:
            log.warning("round listener: %s; reconnecting in %.1f s", exc or type(exc), delay)
        finally:
            if conn is not None:
                await _close(conn)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


async def _close(conn: asyncpg.Connection) -> None:
    # asyncpg aborts the connection itself when close() fails or is cancelled.
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 5.0)
    except _DOWN:
        conn.terminate()


@asynccontextmanager
async def round_listener(
    target: str | Connect, on_notify: OnNotify, *, keepalive_s: float = 30.0
) -> AsyncIterator[asyncio.Task[None]]:
    """`listen_for_rounds` as a background task for the duration of the block."""
    task = asyncio.create_task(
        listen_for_rounds(target, on_notify, keepalive_s=keepalive_s), name="round-listener"
    )
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
