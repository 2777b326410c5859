"""An in-process asyncssh SFTP server with injectable faults: for the tests, the benchmarks
and `python -m bot demo` (which is why it lives in the package and not under tests/).

    async with serve_sftp(root) as srv:
        client = ServerSFTP("eu1", srv.ssh_target())
        ...
        srv.faults.drop_next_connection = True

Binds 127.0.0.1 on an ephemeral port, generates fresh ed25519 host and client
keys, and serves `root` as the SFTP root (chroot-like: paths cannot escape it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from bot.registry import SSHTarget

__all__ = ["HOST", "USER", "Faults", "SFTPTestServer", "ServerStats", "serve_sftp"]

HOST = "127.0.0.1"
USER = "etl"


@dataclass
class Faults:
    """Mutable at runtime: the server reads these on every operation."""

    list_delay: float = 0.0  # extra sleep before a directory listing
    read_delay: float = 0.0  # extra sleep in every read request
    op_delay: float = 0.0  # sleep in every operation (open, read, stat, listing)
    drop_next_connection: bool = False  # abort the SSH connection on the next operation
    permission_denied: set[str] = field(default_factory=set)  # names whose open fails
    grow_file: str | None = None  # a name that gets `grow_by` bytes appended on every read
    grow_by: int = 4096


@dataclass
class ServerStats:
    connections: int = 0  # SSH connections accepted
    ops: int = 0  # SFTP operations that reached the fault hook
    open_files: int = 0  # files currently open (open .. close)
    max_open_files: int = 0  # high-water mark of open_files: concurrency seen by the server


class _SSHServer(asyncssh.SSHServer):
    def __init__(self, stats: ServerStats, live: set[asyncssh.SSHServerConnection]) -> None:
        self._stats = stats
        self._live = live
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._stats.connections += 1
        self._conn = conn
        self._live.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._live.discard(self._conn)


class _FaultySFTPServer(asyncssh.SFTPServer):
    def __init__(
        self, chan: asyncssh.SSHServerChannel, root: Path, faults: Faults, stats: ServerStats
    ) -> None:
        super().__init__(chan, chroot=str(root).encode())
        self._faults = faults
        self._stats = stats
        self._names: dict[int, str] = {}  # id(file object) -> basename, for grow_file

    async def _op(self) -> None:
        self._stats.ops += 1
        if self._faults.drop_next_connection:
            self._faults.drop_next_connection = False
            self.connection.abort()
            raise asyncssh.SFTPConnectionLost("dropped by test fault")
        await self._sleep(self._faults.op_delay)

    async def _sleep(self, delay: float) -> None:
        # Requests are handled one at a time per session, so a plain sleep would
        # keep a dead session (and its open files) alive until it ends.
        if delay <= 0:
            return
        try:
            await asyncio.wait_for(self.connection.wait_closed(), delay)
        except TimeoutError:
            return
        raise asyncssh.SFTPConnectionLost("client went away")

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        await self._op()
        await self._sleep(self._faults.list_delay)
        async for name in super().scandir(path):
            yield name

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        await self._op()
        name = path.rsplit(b"/", 1)[-1].decode(errors="replace")
        if name in self._faults.permission_denied:
            raise asyncssh.SFTPPermissionDenied(f"permission denied: {name}")
        file_obj = super().open(path, pflags, attrs)
        self._names[id(file_obj)] = name
        self._stats.open_files += 1
        self._stats.max_open_files = max(self._stats.max_open_files, self._stats.open_files)
        return file_obj

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        await self._op()
        await self._sleep(self._faults.read_delay)
        data = super().read(file_obj, offset, size)
        if self._faults.grow_file is not None and self._names.get(id(file_obj)) == (
            self._faults.grow_file
        ):
            # Simulate the game server still writing: the file is longer next time.
            path = Path(os.fsdecode(file_obj.name))  # type: ignore[attr-defined]
            await asyncio.to_thread(_append, path, b"x" * self._faults.grow_by)
        return data  # type: ignore[return-value]

    async def close(self, file_obj: object) -> None:
        # No fault hook: asyncssh also calls this to clean up after a dead session.
        self._names.pop(id(file_obj), None)
        self._stats.open_files -= 1
        super().close(file_obj)

    async def stat(self, path: bytes) -> Any:
        await self._op()
        return super().stat(path)

    async def lstat(self, path: bytes) -> Any:
        await self._op()
        return super().lstat(path)

    async def fstat(self, file_obj: object) -> Any:
        await self._op()
        return super().fstat(file_obj)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


@dataclass
class SFTPTestServer:
    root: Path
    port: int
    host_key: asyncssh.SSHKey  # public half of the server's host key
    client_key_path: Path
    known_hosts_path: Path
    faults: Faults
    stats: ServerStats
    _workdir: Path
    _acceptor: asyncssh.SSHAcceptor
    _live: set[asyncssh.SSHServerConnection]

    @property
    def connections(self) -> int:
        return self.stats.connections

    def ssh_target(self, remote_stats_path: str = "/", **overrides: Any) -> SSHTarget:
        target = SSHTarget(
            host=HOST,
            port=self.port,
            user=USER,
            key_path=self.client_key_path,
            known_hosts=self.known_hosts_path,
            remote_stats_path=remote_stats_path,
        )
        return dataclasses.replace(target, **overrides)

    def known_hosts_for(self, key: asyncssh.SSHKey | None = None, name: str = "other") -> Path:
        """A known_hosts file pinning `key` (default: a fresh one) for this host:port."""
        key = key or asyncssh.generate_private_key("ssh-ed25519")
        path = self._workdir / f"known_hosts_{name}"
        path.write_text(_known_hosts_line(self.port, key))
        return path

    def drop_all_connections(self) -> None:
        """Abort every live connection, as a server restart or network blip would."""
        for conn in list(self._live):
            conn.abort()

    async def stop(self) -> None:
        self._acceptor.close()
        self.drop_all_connections()
        await self._acceptor.wait_closed()


def _known_hosts_line(port: int, key: asyncssh.SSHKey) -> str:
    public = key.export_public_key("openssh").decode().strip()
    return f"[{HOST}]:{port} {public}\n"


@asynccontextmanager
async def serve_sftp(root: Path, faults: Faults | None = None) -> AsyncIterator[SFTPTestServer]:
    faults = faults if faults is not None else Faults()
    stats = ServerStats()
    live: set[asyncssh.SSHServerConnection] = set()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    with tempfile.TemporaryDirectory(prefix="sftp-test-") as tmp:
        workdir = Path(tmp)
        client_key_path = workdir / "client_ed25519"
        client_key.write_private_key(str(client_key_path))
        client_key_path.chmod(0o600)
        acceptor = await asyncssh.listen(
            HOST,
            0,
            config=None,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_key.export_public_key().decode()
            ),
            server_factory=lambda: _SSHServer(stats, live),
            sftp_factory=lambda chan: _FaultySFTPServer(chan, root, faults, stats),
            allow_scp=False,
        )
        port = acceptor.get_port()
        known_hosts_path = workdir / "known_hosts"
        known_hosts_path.write_text(_known_hosts_line(port, host_key))
        srv = SFTPTestServer(
            root=root,
            port=port,
            host_key=host_key.convert_to_public(),
            client_key_path=client_key_path,
            known_hosts_path=known_hosts_path,
            faults=faults,
            stats=stats,
            _workdir=workdir,
            _acceptor=acceptor,
            _live=live,
        )
        try:
            yield srv
        finally:
            await srv.stop()
