"""SFTP access to the game servers' stats directories.

One `ServerSFTP` per game server keeps ONE SSH connection with one SFTP session,
opened lazily and reopened after a loss. Every remote operation runs under a
per-host semaphore (OpenSSH drops bursts of new sessions above MaxStartups) and
a per-operation timeout. Host keys are checked strictly against a known_hosts
file unless the server is explicitly configured with `insecure_skip_host_key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import posixpath
import stat
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from asyncssh.constants import FILEXFER_TYPE_REGULAR

from bot.registry import ServerConfig, SSHTarget

log = logging.getLogger(__name__)

T = TypeVar("T")
NameFilter = Callable[[str], bool]

DEFAULT_MAX_BYTES = 1_048_576
_MAX_NAME_LEN = 255
_READ_CHUNK = 65_536  # servers may return less; the read loop copes with short reads

# Errors meaning "the transport is gone": the operation may be retried once on
# a fresh connection. TimeoutError is an OSError too, so it is caught first.
_LOST_ERRORS: tuple[type[BaseException], ...] = (
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.DisconnectError,
    asyncssh.ChannelOpenError,
    OSError,
)


class SFTPErrorKind(StrEnum):
    HOST_KEY = "host_key"  # known_hosts missing / no entry / key mismatch
    AUTH = "auth"  # key refused or key file unusable
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # cannot connect, or connection lost twice
    PERMISSION = "permission_denied"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    BAD_NAME = "bad_name"
    LOCAL_IO = "local_io"  # writing the downloaded copy failed
    OTHER = "other"


# Kinds worth retrying on a later cycle; the others need an operator or are
# permanent for that file.
_TRANSIENT = {SFTPErrorKind.TIMEOUT, SFTPErrorKind.CONNECTION, SFTPErrorKind.OTHER}


class SFTPError(Exception):
    """A failed SFTP operation; `str()` is one line naming the server."""

    def __init__(
        self, server_id: str, kind: SFTPErrorKind, detail: str, filename: str | None = None
    ) -> None:
        super().__init__(f"server '{server_id}': {detail}")
        self.server_id = server_id
        self.kind = kind
        self.filename = filename

    @property
    def transient(self) -> bool:
        return self.kind in _TRANSIENT


@dataclass(frozen=True, slots=True)
class RemoteFile:
    name: str
    size: int
    mtime: float


class _Lost(Exception):
    """Internal: the connection died under an operation (cause chained)."""


@dataclass(slots=True)
class _Session:
    conn: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient


def _default_name_filter() -> NameFilter:
    # Imported lazily: bot.stats.filenames is written in parallel with this module.
    from bot.stats.filenames import is_valid_filename

    return is_valid_filename


def is_plain_basename(name: str) -> bool:
    """True when `name` cannot address anything outside the directory it is joined to."""
    if not name or name == "." or len(name) > _MAX_NAME_LEN or not name.isascii():
        return False
    return not any(bad in name for bad in ("/", "\\", "\x00", ".."))


def _is_regular(attrs: asyncssh.SFTPAttrs) -> bool:
    if attrs.permissions is not None:
        return stat.S_ISREG(attrs.permissions)
    return attrs.type == FILEXFER_TYPE_REGULAR


def _host_port(target: SSHTarget) -> str:
    return f"{target.host}:{target.port}"


def host_key_problem(target: SSHTarget) -> str | None:
    """Why `target` cannot be connected with strict host key checking, or None.

    Uses asyncssh's own matching, so the answer agrees with what connect() will
    accept: `[host]:port` for non-22 ports (asyncssh then falls back to a plain
    `host` entry), hashed entries, and @cert-authority lines.
    """
    if target.insecure_skip_host_key:
        return None
    path = target.known_hosts
    if path is None:
        return "no known_hosts file configured (set one, or opt out with insecure_skip_host_key)"
    if not path.is_file():
        return f"known_hosts file {path} does not exist"
    try:
        known = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError) as exc:
        return f"known_hosts file {path} cannot be read: {exc}"
    try:
        addr = str(ipaddress.ip_address(target.host))
    except ValueError:
        addr = ""  # a host name: no DNS lookup here, the entry must name the host
    port = target.port if target.port != 22 else None
    host_keys, ca_keys, _, x509_certs, _, x509_subjects, _ = known.match(target.host, addr, port)
    if not (host_keys or ca_keys or x509_certs or x509_subjects):
        host = f"[{target.host}]:{target.port}" if port else target.host
        return f"known_hosts file {path} has no entry for host {host}"
    return None


def check_host_keys(servers: Iterable[ServerConfig]) -> list[str]:
    """Start-up validation: one readable problem per SSH server that would be refused."""
    problems = []
    for server in servers:
        if server.ssh is None:
            continue
        problem = host_key_problem(server.ssh)
        if problem:
            problems.append(f"server '{server.server_id}': {problem}")
    return problems


def _write_atomic(local_dir: Path, name: str, data: bytes) -> None:
    # A temp name that never matches the stats grammar, then rename: readers of
    # local_dir see either nothing or the whole file.
    local_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=local_dir, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, local_dir / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ServerSFTP:
    """One game server's stats directory over one reusable SFTP connection."""

    def __init__(
        self,
        server_id: str,
        target: SSHTarget,
        *,
        max_concurrency: int = 4,
        connect_timeout: float = 15.0,
        op_timeout: float = 30.0,
        keepalive_interval: float = 30.0,
        name_filter: NameFilter | None = None,
    ) -> None:
        self.server_id = server_id
        self.target = target
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._keepalive_interval = keepalive_interval
        self._name_filter = name_filter
        self._sem = asyncio.Semaphore(max_concurrency)
        self._connect_lock = asyncio.Lock()
        self._session: _Session | None = None
        self._remote_dir = target.remote_stats_path.encode("utf-8")
        if target.insecure_skip_host_key:
            log.warning(
                "sftp[%s]: HOST KEY CHECKING DISABLED for %s (insecure_skip_host_key): "
                "anyone on the path can impersonate this server",
                server_id,
                _host_port(target),
            )

    async def list_stats_files(self) -> list[RemoteFile]:
        """Stats/endstats files in the remote directory, oldest (by name) first."""
        entries = await self._run("listing", lambda sftp: sftp.readdir(self._remote_dir))
        accept = self._accept()
        files = []
        for entry in entries:
            try:
                name = entry.filename.decode("ascii")  # the grammar is ASCII-only
            except UnicodeDecodeError:
                continue
            attrs = entry.attrs
            if _is_regular(attrs) and is_plain_basename(name) and accept(name):
                files.append(RemoteFile(name, attrs.size or 0, float(attrs.mtime or 0)))
        files.sort(key=lambda f: f.name)
        return files

    async def download(
        self, name: str, local_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> bytes:
        """Fetch `name` into `local_dir / name` (atomically) and return its bytes."""
        if not (is_plain_basename(name) and self._accept()(name)):
            raise self._error(SFTPErrorKind.BAD_NAME, f"refusing file name {name!r}", name)
        remote = posixpath.join(self._remote_dir, name.encode("ascii"))
        data = await self._run(
            f"download of {name}",
            lambda sftp: self._read_capped(sftp, remote, name, max_bytes),
            name,
        )
        try:
            await asyncio.to_thread(_write_atomic, local_dir, name, data)
        except OSError as exc:
            detail = f"cannot write {local_dir / name}: {exc}"
            raise self._error(SFTPErrorKind.LOCAL_IO, detail, name) from exc
        log.debug("sftp[%s]: downloaded %s (%d bytes)", self.server_id, name, len(data))
        return data

    async def close(self) -> None:
        async with self._connect_lock:
            session, self._session = self._session, None
        if session is not None:
            session.sftp.exit()
            session.conn.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await session.conn.wait_closed()

    def _accept(self) -> NameFilter:
        if self._name_filter is None:
            self._name_filter = _default_name_filter()
        return self._name_filter

    def _error(self, kind: SFTPErrorKind, detail: str, name: str | None = None) -> SFTPError:
        return SFTPError(self.server_id, kind, detail, name)

    async def _read_capped(
        self, sftp: asyncssh.SFTPClient, remote: bytes, name: str, max_bytes: int
    ) -> bytes:
        # block_size=None: one plain request per read() call. asyncssh's parallel
        # reader leaves orphan tasks behind when a read is cancelled or times out.
        # No fstat first: it would cost a round trip per file. The listing already
        # skips non-regular files, and the cap below holds for the bytes read.
        async with sftp.open(remote, "rb", block_size=None) as fh:
            # Read until EOF, never more than max_bytes + 1 (a file may even grow
            # while being read).
            buf = bytearray()
            while part := await fh.read(min(_READ_CHUNK, max_bytes + 1 - len(buf)), len(buf)):
                buf += part
                if len(buf) > max_bytes:
                    detail = f"{name} is over the limit of {max_bytes} bytes"
                    raise self._error(SFTPErrorKind.TOO_LARGE, detail, name)
            return bytes(buf)

    async def _run(
        self, what: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]], name: str | None = None
    ) -> T:
        async with self._sem:
            try:
                return await self._attempt(await self._connected(), what, op, name)
            except _Lost as first:
                log.warning(
                    "sftp[%s]: connection lost during %s (%s); reconnecting and retrying once",
                    self.server_id,
                    what,
                    first.__cause__,
                )
            try:
                return await self._attempt(await self._connected(), what, op, name)
            except _Lost as second:
                detail = f"connection lost during {what}: {second.__cause__}"
                raise self._error(SFTPErrorKind.CONNECTION, detail, name) from second.__cause__

    async def _attempt(
        self,
        session: _Session,
        what: str,
        op: Callable[[asyncssh.SFTPClient], Awaitable[T]],
        name: str | None,
    ) -> T:
        """One try of `op`; connection loss is raised as `_Lost` for the caller to retry."""
        expired = False

        def expire() -> None:
            # Cancelling is not enough: asyncssh's cleanup (closing the remote
            # handle) would queue behind the stuck request. Aborting the transport
            # fails every pending request at once; the session is useless anyway.
            nonlocal expired
            expired = True
            self._discard(session)

        timer = asyncio.get_running_loop().call_later(self._op_timeout, expire)
        try:
            return await op(session.sftp)
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # asyncssh's cleanup can replace our CancelledError; keep cancelling.
                raise asyncio.CancelledError from exc
            if expired:
                detail = f"{what} timed out after {self._op_timeout:g} s"
                raise self._error(SFTPErrorKind.TIMEOUT, detail, name) from None
            if isinstance(exc, SFTPError):
                raise
            if isinstance(exc, _LOST_ERRORS):
                self._discard(session)
                raise _Lost from exc
            if isinstance(exc, asyncssh.SFTPError):
                raise self._map_sftp_error(exc, what, name) from exc
            raise
        finally:
            timer.cancel()

    def _map_sftp_error(self, exc: asyncssh.SFTPError, what: str, name: str | None) -> SFTPError:
        subject = name or self.target.remote_stats_path
        if isinstance(exc, asyncssh.SFTPPermissionDenied):
            return self._error(SFTPErrorKind.PERMISSION, f"permission denied on {subject}", name)
        if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return self._error(SFTPErrorKind.NOT_FOUND, f"{subject} does not exist", name)
        return self._error(SFTPErrorKind.OTHER, f"{what} failed: {exc.reason}", name)

    def _discard(self, session: _Session) -> None:
        # Only forget it if no concurrent operation has already replaced it.
        if self._session is session:
            self._session = None
        session.conn.abort()

    async def _connected(self) -> _Session:
        async with self._connect_lock:
            session = self._session
            if session is not None and not session.conn.is_closed():
                return session
            if session is not None:
                log.info("sftp[%s]: connection was closed, reconnecting", self.server_id)
            self._session = await self._connect()
            return self._session

    async def _connect(self) -> _Session:
        t = self.target
        known_hosts: str | None = None
        if not t.insecure_skip_host_key:
            problem = await asyncio.to_thread(host_key_problem, t)
            if problem:
                raise self._error(SFTPErrorKind.HOST_KEY, f"refusing to connect: {problem}")
            known_hosts = str(t.known_hosts)
        if not t.key_path.is_file():
            raise self._error(SFTPErrorKind.AUTH, f"private key file {t.key_path} does not exist")
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await asyncssh.connect(
                    t.host,
                    t.port,
                    username=t.user,
                    client_keys=[str(t.key_path)],
                    known_hosts=known_hosts,
                    config=None,
                    agent_path=None,
                    preferred_auth="publickey",
                    gss_kex=False,
                    connect_timeout=self._connect_timeout,
                    login_timeout=self._connect_timeout,
                    keepalive_interval=self._keepalive_interval,
                    keepalive_count_max=3,
                )
                try:
                    # Bytes paths: an undecodable name in the directory must not
                    # break the whole listing.
                    sftp = await conn.start_sftp_client(path_encoding=None)
                except BaseException:
                    conn.abort()
                    raise
        except (asyncssh.Error, OSError, ValueError) as exc:  # TimeoutError is an OSError
            raise self._connect_error(exc) from exc
        log.info("sftp[%s]: connected to %s@%s", self.server_id, t.user, _host_port(t))
        return _Session(conn, sftp)

    def _connect_error(self, exc: Exception) -> SFTPError:
        where = _host_port(self.target)
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            detail = (
                f"host key of {where} does not match known_hosts {self.target.known_hosts} "
                "(server reinstalled, or someone in the middle?)"
            )
            return self._error(SFTPErrorKind.HOST_KEY, detail)
        if isinstance(exc, asyncssh.PermissionDenied):
            detail = f"{where} refused key {self.target.key_path} for user {self.target.user!r}"
            return self._error(SFTPErrorKind.AUTH, detail)
        if isinstance(exc, asyncssh.KeyImportError):
            detail = f"cannot load private key {self.target.key_path}: {exc}"
            return self._error(SFTPErrorKind.AUTH, detail)
        if isinstance(exc, TimeoutError):
            detail = f"connecting to {where} timed out after {self._connect_timeout:g} s"
            return self._error(SFTPErrorKind.TIMEOUT, detail)
        return self._error(SFTPErrorKind.CONNECTION, f"cannot connect to {where}: {exc}")


class SFTPPool:
    """One `ServerSFTP` per SSH-reachable server, keyed by server id."""

    def __init__(self, servers: Iterable[ServerConfig], **options: Any) -> None:
        # options: ServerSFTP keyword arguments (max_concurrency, timeouts, name_filter).
        self._clients: dict[str, ServerSFTP] = {
            s.server_id: ServerSFTP(s.server_id, s.ssh, **options)
            for s in servers
            if s.ssh is not None
        }

    def get(self, server_id: str) -> ServerSFTP:
        try:
            return self._clients[server_id]
        except KeyError:
            raise KeyError(f"server '{server_id}' has no SFTP access configured") from None

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._clients

    def server_ids(self) -> list[str]:
        return list(self._clients)

    async def close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients.values()))
