"""The process's one asyncpg pool: DATABASE_URL / POSTGRES_* or an embedded server."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import asyncpg

from bot.config_parsing import redact_url

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message is one readable line."""


def build_dsn(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    user = quote(settings.postgres_user or "postgres", safe="")
    password = settings.postgres_password
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings.postgres_host or "127.0.0.1"
    db = quote(settings.postgres_db or "postgres", safe="")
    return f"postgresql://{auth}@{host}:{settings.postgres_port}/{db}"


def build_ssl(mode: str, root_cert: Path | None) -> ssl.SSLContext | bool:
    """Map POSTGRES_SSL_MODE to what asyncpg's `ssl` argument takes."""
    if mode == "disable":
        return False
    if mode == "require":
        # libpq's `require`: encrypted, certificate not checked.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(root_cert) if root_cert else None)
    ctx.check_hostname = mode == "verify-full"
    return ctx


def ssl_argument(dsn: str, mode: str, root_cert: Path | None) -> ssl.SSLContext | bool | None:
    """POSTGRES_SSL_MODE when set to something other than `disable`; otherwise a
    `sslmode` in the URL decides (asyncpg reads it: None leaves it alone). Never
    `ssl=False` over a URL that asks for TLS, which would connect in clear."""
    url_mode = parse_qs(urlsplit(dsn).query).get("sslmode")
    if mode == "disable" and url_mode:
        return None
    return build_ssl(mode, root_cert)


async def create_pool(
    dsn: str, *, ssl_arg: Any = None, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(
            dsn, ssl=ssl_arg, min_size=min_size, max_size=max_size, command_timeout=60
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {redact_url(dsn)}: {exc}"
        ) from None


class EmbeddedPostgres:
    """A private PostgreSQL server in DATA_DIR/pgdata (pgserver), for zero-setup use."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "pgdata"
        self._server: Any = None

    async def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (services, CI): harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # imported late: only the embedded mode needs it

        self.path.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(pgserver.get_server, self.path, cleanup_mode="stop")
        log.info("embedded PostgreSQL running, data in %s", self.path.resolve())
        return self._server.get_uri()

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None
            log.info("embedded PostgreSQL stopped")


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The pool for the process; starts and stops the embedded server when configured."""
    embedded = EmbeddedPostgres(settings.data_dir) if settings.use_embedded_db else None
    if embedded is not None:
        dsn, ssl_arg = await embedded.start(), None
    else:
        dsn = build_dsn(settings)
        ssl_arg = ssl_argument(dsn, settings.postgres_ssl_mode, settings.postgres_ssl_root_cert)
    try:
        pool = await create_pool(
            dsn,
            ssl_arg=ssl_arg,
            min_size=settings.postgres_min_pool,
            max_size=settings.postgres_max_pool,
        )
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await embedded.stop()


class DatabaseTrouble:
    """Says the database is unreachable once, then at most once a minute with a count,
    instead of a line per file and per poll while an outage lasts."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: float | None = None
        self._since_last = 0

    @property
    def down(self) -> bool:
        return self._last is not None

    def report(self, what: str, exc: BaseException) -> None:
        now = self.clock()
        self._since_last += 1
        if self._last is not None and now - self._last < self.every:
            return
        more = f"; {self._since_last - 1} similar failure(s) since" if self._since_last > 1 else ""
        log.warning("database unavailable: %s (%s)%s", what, str(exc) or type(exc).__name__, more)
        self._last, self._since_last = now, 0

    def recovered(self) -> None:
        if self._last is not None:
            log.info("database reachable again")
            self._last, self._since_last = None, 0


def is_database_error(exc: BaseException) -> bool:
    """asyncpg's errors, and the OSError of a pool that cannot reach its server."""
    return isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError)
