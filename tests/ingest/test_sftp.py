"""ServerSFTP / SFTPPool against a real in-process asyncssh SFTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncssh
import pytest

from bot.ingest.sftp import (
    RemoteFile,
    ServerSFTP,
    SFTPError,
    SFTPErrorKind,
    SFTPPool,
    check_host_keys,
)
from bot.registry import ServerConfig, SSHTarget
from tests.sftp_server import SFTPTestServer, serve_sftp

R1 = "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R1_END = "eu1-2025-03-03-214221-etl_frostbite-round-1-endstats.txt"
R2 = "eu1-2025-03-03-215512-etl_frostbite-round-2.txt"
LEGACY = "2025-03-03-224658-mp_sub-rc1-round-1.txt"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "remote" / "gamestats").mkdir(parents=True)
    return tmp_path / "remote"


@pytest.fixture
def gamestats(root: Path) -> Path:
    return root / "gamestats"


@pytest.fixture
async def srv(root: Path) -> AsyncIterator[SFTPTestServer]:
    async with serve_sftp(root) as server:
        yield server


@pytest.fixture
async def client(srv: SFTPTestServer) -> AsyncIterator[ServerSFTP]:
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats"), op_timeout=5, connect_timeout=5)
    yield c
    await c.close()


async def expect_error(coro: object, kind: SFTPErrorKind) -> SFTPError:
    with pytest.raises(SFTPError) as info:
        await coro  # type: ignore[misc]
    assert info.value.kind is kind, str(info.value)
    assert str(info.value).startswith("server 'eu1': ")
    assert "\n" not in str(info.value)
    return info.value


# -- listing ---------------------------------------------------------------


async def test_list_filters_junk_and_sorts(gamestats: Path, client: ServerSFTP) -> None:
    for name in (R2, LEGACY, R1, R1_END):
        (gamestats / name).write_bytes(name.encode())
    junk = [
        "notes.log",
        "2025-03-03-214223-etl_frostbite-round-1_ws.txt",
        "eu1-2025-02-30-214223-etl_frostbite-round-1.txt",  # no 30 February
        "eu1-2025-03-03-214223-etl_frostbite-round-3.txt",
    ]
    for name in junk:
        (gamestats / name).write_text("junk")
    (gamestats / "eu1-2025-03-03-220000-supply-round-1.txt").mkdir()  # a directory

    files = await client.list_stats_files()

    assert [f.name for f in files] == sorted([R1_END, R1, R2, LEGACY])
    by_name = {f.name: f for f in files}
    stat = (gamestats / R1).stat()
    assert by_name[R1] == RemoteFile(R1, len(R1), float(int(stat.st_mtime)))


async def test_list_empty_directory(client: ServerSFTP) -> None:
    assert await client.list_stats_files() == []


async def test_list_missing_directory_names_server(srv: SFTPTestServer) -> None:
    c = ServerSFTP("eu1", srv.ssh_target("/nope"))
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.NOT_FOUND)
    assert "/nope" in str(err)
    await c.close()


# -- download --------------------------------------------------------------


async def test_download_writes_exact_bytes_atomically(
    gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 3 + b"\r\n\x00tail"
    (gamestats / R1).write_bytes(payload)
    local_dir = tmp_path / "data" / "files" / "eu1"  # does not exist yet

    data = await client.download(R1, local_dir)

    assert data == payload
    assert (local_dir / R1).read_bytes() == payload
    assert [p.name for p in local_dir.iterdir()] == [R1]  # no temp file left behind

    (gamestats / R1).write_bytes(b"second version")
    assert await client.download(R1, local_dir) == b"second version"
    assert (local_dir / R1).read_bytes() == b"second version"


async def test_download_at_exact_limit_is_accepted(
    gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_bytes(b"a" * 1000)
    assert len(await client.download(R1, tmp_path, max_bytes=1000)) == 1000


BAD_NAMES = [
    "../etc/passwd",
    "a/b.txt",
    f"../{R1}",
    f"gamestats/{R1}",
    f"/{R1}",
    "/etc/passwd",
    f"..\\{R1}",
    f"{R1}\x00",
    "..",
    ".",
    "eu1-2025-03-03-214223-etl_frostbité-round-1.txt",
    "",
    "notes.log",
    "eu1-2025-02-30-214223-etl_frostbite-round-1.txt",
]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_download_refuses_bad_names_before_any_remote_call(
    srv: SFTPTestServer, client: ServerSFTP, tmp_path: Path, name: str
) -> None:
    err = await expect_error(client.download(name, tmp_path / "out"), SFTPErrorKind.BAD_NAME)
    assert err.filename == name
    assert srv.connections == 0 and srv.stats.ops == 0
    assert not (tmp_path / "out").exists()


async def test_download_refuses_file_over_limit(
    srv: SFTPTestServer, gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_bytes(b"x" * 2000)
    err = await expect_error(client.download(R1, tmp_path, max_bytes=1000), SFTPErrorKind.TOO_LARGE)
    assert R1 in str(err) and "limit of 1000 bytes" in str(err)
    assert not (tmp_path / R1).exists()


async def test_download_refuses_file_growing_past_limit(
    srv: SFTPTestServer, gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_bytes(b"x" * 100)  # stat says 100 bytes: under the limit
    srv.faults.grow_file = R1
    err = await expect_error(client.download(R1, tmp_path, max_bytes=1000), SFTPErrorKind.TOO_LARGE)
    assert "over the limit of 1000 bytes" in str(err)
    assert not (tmp_path / R1).exists()


async def test_permission_denied_names_server_and_file(
    srv: SFTPTestServer, gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_text("secret")
    (gamestats / R2).write_text("fine")
    srv.faults.permission_denied.add(R1)
    err = await expect_error(client.download(R1, tmp_path), SFTPErrorKind.PERMISSION)
    assert R1 in str(err) and err.filename == R1
    assert await client.download(R2, tmp_path) == b"fine"  # connection still good
    assert srv.connections == 1


# -- host keys and auth ----------------------------------------------------


async def test_host_key_mismatch_refused(srv: SFTPTestServer) -> None:
    target = srv.ssh_target("/gamestats", known_hosts=srv.known_hosts_for())
    c = ServerSFTP("eu1", target)
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.HOST_KEY)
    assert "does not match" in str(err) and f"127.0.0.1:{srv.port}" in str(err)
    await c.close()


async def test_missing_known_hosts_refused_without_connecting(
    srv: SFTPTestServer, tmp_path: Path
) -> None:
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats", known_hosts=tmp_path / "nope"))
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.HOST_KEY)
    assert "does not exist" in str(err)
    assert srv.connections == 0


async def test_known_hosts_without_entry_refused(srv: SFTPTestServer, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(srv.known_hosts_path.read_text().replace(f":{srv.port} ", ":1 "))
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats", known_hosts=other))
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.HOST_KEY)
    assert f"has no entry for host [127.0.0.1]:{srv.port}" in str(err)
    assert srv.connections == 0


async def test_insecure_opt_out_connects_and_warns_once(
    srv: SFTPTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    target = srv.ssh_target("/gamestats", known_hosts=None, insecure_skip_host_key=True)
    with caplog.at_level(logging.WARNING, logger="bot.ingest.sftp"):
        c = ServerSFTP("eu1", target)
        assert await c.list_stats_files() == []
        assert await c.list_stats_files() == []
    warnings = [r for r in caplog.records if "HOST KEY CHECKING DISABLED" in r.getMessage()]
    assert len(warnings) == 1 and "eu1" in warnings[0].getMessage()
    await c.close()


async def test_wrong_client_key_is_auth_error(srv: SFTPTestServer, tmp_path: Path) -> None:
    key_path = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key_path))
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats", key_path=key_path))
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.AUTH)
    assert "other_key" in str(err) and "BEGIN" not in str(err)
    await c.close()


# -- connection management -------------------------------------------------


async def test_connection_is_reused(
    srv: SFTPTestServer, gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_text("r1")
    (gamestats / R2).write_text("r2")
    for _ in range(3):
        await client.list_stats_files()
    await asyncio.gather(*(client.download(n, tmp_path) for n in (R1, R2, R1, R2)))
    assert srv.connections == 1


async def test_reconnects_transparently_after_drop(
    srv: SFTPTestServer, gamestats: Path, client: ServerSFTP, tmp_path: Path
) -> None:
    (gamestats / R1).write_text("r1")
    assert [f.name for f in await client.list_stats_files()] == [R1]

    srv.faults.drop_next_connection = True  # dies in the middle of the next operation
    assert await client.download(R1, tmp_path) == b"r1"
    assert srv.connections == 2

    srv.drop_all_connections()  # dies between operations
    assert [f.name for f in await client.list_stats_files()] == [R1]
    assert srv.connections == 3


async def test_unreachable_server_is_connection_error(srv: SFTPTestServer) -> None:
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats"))
    await srv.stop()
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.CONNECTION)
    assert err.transient


async def test_connect_timeout_against_silent_server(srv: SFTPTestServer) -> None:
    async def accept_and_say_nothing(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # until the client gives up and disconnects
        w.close()

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    target = srv.ssh_target(port=port, known_hosts=None, insecure_skip_host_key=True)
    c = ServerSFTP("eu1", target, connect_timeout=0.3)
    started = time.monotonic()
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.TIMEOUT)
    assert time.monotonic() - started < 3
    assert f"connecting to 127.0.0.1:{port} timed out" in str(err)
    silent.close()
    await silent.wait_closed()


async def test_operation_timeout_is_quick_and_recovers(
    srv: SFTPTestServer, gamestats: Path
) -> None:
    (gamestats / R1).write_text("r1")
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats"), op_timeout=0.3)
    srv.faults.list_delay = 30
    started = time.monotonic()
    err = await expect_error(c.list_stats_files(), SFTPErrorKind.TIMEOUT)
    assert time.monotonic() - started < 3
    assert "listing timed out" in str(err) and err.transient

    srv.faults.list_delay = 0
    assert [f.name for f in await c.list_stats_files()] == [R1]
    await c.close()


@pytest.mark.parametrize("op", ["list", "download"])
async def test_cancelling_a_stuck_operation_stays_a_cancellation(
    srv: SFTPTestServer, gamestats: Path, tmp_path: Path, op: str
) -> None:
    (gamestats / R1).write_text("r1")
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats"), op_timeout=0.3)
    srv.faults.list_delay = srv.faults.read_delay = 30
    if op == "list":
        task = asyncio.create_task(c.list_stats_files())
    else:
        task = asyncio.create_task(c.download(R1, tmp_path))
    await asyncio.sleep(0.1)
    task.cancel()
    # asyncssh's cleanup queues behind the stuck request until the op timeout aborts
    # the connection; what comes out must still be the cancellation.
    with pytest.raises(asyncio.CancelledError):
        await task
    await c.close()


@pytest.mark.parametrize(("limit", "tasks"), [(2, 6), (6, 6)])
async def test_semaphore_bounds_concurrent_operations(
    srv: SFTPTestServer, gamestats: Path, tmp_path: Path, limit: int, tasks: int
) -> None:
    names = [f"eu1-2025-03-03-2100{i:02d}-etl_frostbite-round-1.txt" for i in range(tasks)]
    for name in names:
        (gamestats / name).write_text(name)
    srv.faults.op_delay = 0.02  # keeps each download's file open long enough to overlap
    c = ServerSFTP("eu1", srv.ssh_target("/gamestats"), max_concurrency=limit)
    await asyncio.gather(*(c.download(n, tmp_path) for n in names))
    await c.close()
    # The server sees open-but-not-closed files: exactly the client ops in flight.
    assert srv.stats.max_open_files == min(limit, tasks)
    assert srv.connections == 1


# -- start-up validation and pool ------------------------------------------


def _server(server_id: str, ssh: SSHTarget | None) -> ServerConfig:
    return ServerConfig(server_id, server_id.upper(), True, ZoneInfo("UTC"), ssh)


async def test_check_host_keys_reports_problems(srv: SFTPTestServer, tmp_path: Path) -> None:
    no_entry = tmp_path / "kh_other"
    no_entry.write_text("# nothing here\n")
    good = srv.ssh_target()
    servers = [
        _server("eu1", good),
        _server("eu2", dataclasses.replace(good, known_hosts=tmp_path / "missing")),
        _server("eu3", dataclasses.replace(good, known_hosts=no_entry)),
        _server("push", None),
        _server("lan", dataclasses.replace(good, known_hosts=None, insecure_skip_host_key=True)),
    ]
    assert check_host_keys(servers) == [
        f"server 'eu2': known_hosts file {tmp_path / 'missing'} does not exist",
        f"server 'eu3': known_hosts file {no_entry} has no entry for host [127.0.0.1]:{srv.port}",
    ]


async def test_pool_one_client_per_ssh_server(srv: SFTPTestServer) -> None:
    pool = SFTPPool(
        [_server("eu1", srv.ssh_target("/gamestats")), _server("push", None)], op_timeout=5
    )
    assert pool.server_ids() == ["eu1"] and "push" not in pool
    client = pool.get("eu1")
    assert client is pool.get("eu1")
    assert await client.list_stats_files() == []
    with pytest.raises(KeyError, match="push"):
        pool.get("push")
    await pool.close_all()
    assert srv.connections == 1
