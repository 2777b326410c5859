"""The ingest pipeline against a real PostgreSQL and real in-process SFTP servers.

Also home of the helpers the poller tests share (a fake clock, runtimes, SFTP servers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bench.gen_corpus import generate_corpus
from bot.config import Settings, load_settings
from bot.importer import ImportResult
from bot.ingest.failover import FailoverMode
from bot.ingest.runtime import IngestRuntime
from bot.registry import ServerConfig, ServerRegistry
from bot.stats import parse_filename
from tests.sftp_server import Faults, SFTPTestServer, serve_sftp

TZ = ZoneInfo("Europe/Ljubljana")
NOW = datetime(2025, 3, 8, 12, 0, tzinfo=UTC).timestamp()  # the fixtures are 1-5 days old
MULTI = Path(__file__).resolve().parents[1] / "fixtures" / "stats" / "multi" / "stats"
EU1_R1_END = "eu1-2025-03-03-214222-etl_frostbite-round-1-endstats.txt"
EU1_R1 = "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
EU1_R2_END = "eu1-2025-03-03-215400-etl_frostbite-round-2-endstats.txt"
EU1_R2 = "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until check() holds, for conditions no event announces; bounded by `within`."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - nothing to wait on but the event loop
            await asyncio.sleep(0.01)


class Stored:
    """An on_round_stored hook that records results and can be awaited for a count."""

    def __init__(self) -> None:
        self.results: list[ImportResult] = []
        self._changed = asyncio.Event()

    def __call__(self, result: ImportResult) -> None:
        self.results.append(result)
        self._changed.set()

    def __len__(self) -> int:
        return len(self.results)

    async def wait_for(self, n: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while len(self.results) < n:
                self._changed.clear()
                await self._changed.wait()


def fixture_names(server_id: str) -> list[str]:
    return sorted(p.name for p in MULTI.iterdir() if p.name.startswith(f"{server_id}-"))


def put(root: Path, name: str, data: bytes | None = None) -> bytes:
    """Place a file in a test server's stats directory (default: the fixture of that name)."""
    content = (MULTI / name).read_bytes() if data is None else data
    (root / name).write_bytes(content)
    return content


def retimed(name: str, when: datetime) -> str:
    """The same server/map/round file name with another (server-local) time."""
    f = parse_filename(name)
    tail = f"{f.map_name}-round-{f.round_number}{'-endstats' if f.is_endstats else ''}.txt"
    return f"{f.server_id}-{when:%Y-%m-%d-%H%M%S}-{tail}"


def fresh_match(server_id: str, r1_at: datetime, seed: int = 7) -> dict[str, bytes]:
    """A generated R1/R2 match (distinct content per seed) with stats files at r1_at and
    r1_at + 12 min (endstats 2 s before each)."""
    corpus = generate_corpus(1, [server_id], seed)
    out: dict[str, bytes] = {}
    for name, data in corpus:
        f = parse_filename(name)
        at = r1_at + timedelta(minutes=12 * (f.round_number - 1), seconds=-2 * f.is_endstats)
        out[retimed(name, at)] = data
    return out


def local(epoch: float) -> datetime:
    """A server-local wall-clock time, as file names carry it."""
    return datetime.fromtimestamp(epoch, TZ).replace(tzinfo=None)


def make_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "DATA_DIR": str(tmp_path / "data"),
        "DEAD_HOURS": "",
        "SSH_CONNECT_TIMEOUT": "5",
        "SSH_OPERATION_TIMEOUT": "5",
    }
    return load_settings(env={**base, **env})


def server_config(server_id: str, srv: SFTPTestServer | None) -> ServerConfig:
    ssh = srv.ssh_target("/") if srv is not None else None
    return ServerConfig(server_id, f"Server {server_id}", True, TZ, ssh)


@asynccontextmanager
async def sftp_servers(
    tmp_path: Path, ids: Iterable[str], faults: dict[str, Faults] | None = None
) -> AsyncIterator[dict[str, SFTPTestServer]]:
    async with AsyncExitStack() as stack:
        out = {}
        for sid in ids:
            root = tmp_path / "remote" / sid
            root.mkdir(parents=True)
            out[sid] = await stack.enter_async_context(serve_sftp(root, (faults or {}).get(sid)))
        yield out


@asynccontextmanager
async def ingest_runtime(
    pool: asyncpg.Pool,
    tmp_path: Path,
    servers: dict[str, SFTPTestServer | None],
    clock: FakeClock,
    **env: str,
) -> AsyncIterator[IngestRuntime]:
    registry = ServerRegistry(server_config(sid, srv) for sid, srv in servers.items())
    runtime = IngestRuntime(
        make_settings(tmp_path, **env), registry, pool, clock=clock, drain_timeout=5
    )
    await runtime.prepare()
    try:
        yield runtime
    finally:
        await runtime.close()


async def ledger(pool: asyncpg.Pool) -> list[tuple[str, str, str, str, int]]:
    rows = await pool.fetch(
        "SELECT server_id, filename, status, source, attempts FROM processed_files ORDER BY 1, 2"
    )
    return [tuple(r.values()) for r in rows]  # type: ignore[misc]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def eu1(tmp_path: Path) -> AsyncIterator[SFTPTestServer]:
    async with sftp_servers(tmp_path, ["eu1"]) as servers:
        yield servers["eu1"]


@pytest.fixture
async def rt(
    pool: asyncpg.Pool, tmp_path: Path, eu1: SFTPTestServer, clock: FakeClock
) -> AsyncIterator[IngestRuntime]:
    async with ingest_runtime(pool, tmp_path, {"eu1": eu1}, clock) as runtime:
        yield runtime


# -- the happy path and the in-flight claim -------------------------------------------------


async def test_webhook_file_is_downloaded_stored_and_counted_as_success(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = put(eu1.root, EU1_R1)
    stored: list[ImportResult] = []
    rt.pipeline.on_round_stored = stored.append

    res = await rt.pipeline.process("eu1", EU1_R1, "webhook")

    assert res.outcome == "imported" and res.round_id is not None and res.elapsed > 0
    assert [r.round_id for r in stored] == [res.round_id]
    assert (tmp_path / "data" / "files" / "eu1" / EU1_R1).read_bytes() == data
    assert await ledger(pool) == [("eu1", EU1_R1, "done", "webhook", 1)]
    assert await pool.fetchval("SELECT count(*) FROM round_outbox") == 1
    assert rt.failover.get_status("eu1").consecutive_successes == 1
    assert rt.activity.last_file_at("eu1") == NOW


async def test_concurrent_process_of_one_file_stores_it_once(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    put(eu1.root, EU1_R1)
    first, second = await asyncio.gather(
        rt.pipeline.process("eu1", EU1_R1, "webhook"), rt.pipeline.process("eu1", EU1_R1, "poll")
    )
    assert first.outcome == "imported"
    assert (second.outcome, second.reason) == ("skipped", "in flight")
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1
    assert rt.tracker.in_flight_count == 0
    again = await rt.pipeline.process("eu1", EU1_R1, "poll")
    assert (again.outcome, again.reason) == ("skipped", "already processed")


async def test_push_bytes_need_no_sftp(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    async with ingest_runtime(pool, tmp_path, {"eu1": None}, clock) as runtime:
        data = (MULTI / EU1_R1).read_bytes()
        res = await runtime.pipeline.process("eu1", EU1_R1, "api", data)
    assert res.outcome == "imported"
    assert await ledger(pool) == [("eu1", EU1_R1, "done", "api", 1)]


async def test_old_file_ignored_but_explicit_import_takes_it(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    put(eu1.root, EU1_R1)
    clock.advance(30 * 86400)  # the file is now a month old

    res = await rt.pipeline.process("eu1", EU1_R1, "poll")
    assert res.outcome == "ignored"
    assert await ledger(pool) == []  # not marked processed

    data = (MULTI / EU1_R1).read_bytes()
    assert (await rt.pipeline.process("eu1", EU1_R1, "import", data)).outcome == "imported"
    assert await ledger(pool) == [("eu1", EU1_R1, "done", "import", 1)]


# -- failures ----------------------------------------------------------------------------


async def test_download_failure_is_recorded_with_backoff_then_retried(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    put(eu1.root, EU1_R1)
    eu1.faults.permission_denied.add(EU1_R1)

    res = await rt.pipeline.process("eu1", EU1_R1, "webhook")

    assert (res.outcome, res.error_kind) == ("failed", "permission_denied")
    row = await pool.fetchrow("SELECT * FROM processed_files")
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["next_attempt_at"].timestamp() == NOW + 30
    health = await pool.fetchrow("SELECT last_error, last_error_at FROM servers WHERE id='eu1'")
    assert EU1_R1 in health["last_error"] and health["last_error_at"] is not None
    status = rt.failover.get_status("eu1")
    assert status.consecutive_failures == 1 and EU1_R1 in status.last_webhook_failure_reason

    skipped = await rt.pipeline.process("eu1", EU1_R1, "poll")
    assert (skipped.outcome, skipped.reason) == ("skipped", "waiting for its retry backoff")

    eu1.faults.permission_denied.clear()
    clock.advance(30)
    assert (await rt.pipeline.process("eu1", EU1_R1, "poll")).outcome == "imported"
    assert await ledger(pool) == [("eu1", EU1_R1, "done", "poll", 2)]


async def test_stopped_server_fails_without_raising(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    put(eu1.root, EU1_R1)
    await eu1.stop()
    res = await rt.pipeline.process("eu1", EU1_R1, "webhook")
    assert (res.outcome, res.error_kind) == ("failed", "connection")
    assert await ledger(pool) == [("eu1", EU1_R1, "failed", "webhook", 1)]


async def test_database_down_fails_without_raising(
    db_dsn: str, tmp_path: Path, eu1: SFTPTestServer, clock: FakeClock
) -> None:
    own = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    put(eu1.root, EU1_R1)
    async with ingest_runtime(own, tmp_path, {"eu1": eu1}, clock) as runtime:
        await own.close()
        res = await runtime.pipeline.process("eu1", EU1_R1, "webhook")
        assert (res.outcome, res.error_kind) == ("failed", "database")
        assert runtime.tracker.in_flight_count == 0


async def test_bad_content_is_rejected_once_and_a_webhook_failure(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    put(eu1.root, EU1_R1, b"this is not a stats file\n")
    res = await rt.pipeline.process("eu1", EU1_R1, "webhook")
    assert res.outcome == "rejected"
    assert await ledger(pool) == [("eu1", EU1_R1, "rejected", "webhook", 1)]
    assert rt.failover.get_status("eu1").consecutive_failures == 1
    assert (await rt.pipeline.process("eu1", EU1_R1, "poll")).outcome == "skipped"


async def test_oversized_file_is_rejected_not_retried(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    put(eu1.root, EU1_R1, b"x" * 1_100_000)
    res = await rt.pipeline.process("eu1", EU1_R1, "poll")
    assert (res.outcome, res.error_kind) == ("rejected", "too_large")
    assert await ledger(pool) == [("eu1", EU1_R1, "rejected", "poll", 1)]


async def test_bad_name_from_webhook_is_refused_without_a_ledger_row(
    rt: IngestRuntime, pool: asyncpg.Pool
) -> None:
    res = await rt.pipeline.process("eu1", "../etc/passwd", "webhook")
    assert res.outcome == "rejected"
    assert await ledger(pool) == []
    assert rt.failover.get_status("eu1").consecutive_failures == 1


async def test_cancellation_propagates_and_leaves_nothing_behind(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    put(eu1.root, EU1_R1)
    eu1.faults.read_delay = 0.3
    task = asyncio.create_task(rt.pipeline.process("eu1", EU1_R1, "webhook"))
    # Cancel while the download is stuck in the server's read, not while asyncssh is still
    # connecting (its wait_for can swallow a cancel that races the handshake on 3.11).
    await until(lambda: eu1.stats.open_files > 0)
    assert rt.tracker.is_in_flight("eu1", EU1_R1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rt.tracker.in_flight_count == 0
    assert await ledger(pool) == []
    eu1.faults.read_delay = 0
    assert (await rt.pipeline.process("eu1", EU1_R1, "webhook")).outcome == "imported"


async def test_hook_errors_do_not_break_processing(rt: IngestRuntime, eu1: SFTPTestServer) -> None:
    put(eu1.root, EU1_R1)

    async def broken(_result: ImportResult) -> None:
        raise RuntimeError("publisher asleep")

    rt.pipeline.on_round_stored = broken
    assert (await rt.pipeline.process("eu1", EU1_R1, "webhook")).outcome == "imported"


# -- failover reporting ------------------------------------------------------------------


async def test_endstats_before_its_round_is_neither_success_nor_failure(
    rt: IngestRuntime, eu1: SFTPTestServer
) -> None:
    put(eu1.root, EU1_R1_END)
    res = await rt.pipeline.process("eu1", EU1_R1_END, "webhook")
    assert res.outcome == "imported" and res.result is not None and res.result.round_id is None
    status = rt.failover.get_status("eu1")
    assert (status.consecutive_successes, status.consecutive_failures) == (0, 0)


async def test_webhook_successes_switch_off_polling_and_are_persisted(
    rt: IngestRuntime, eu1: SFTPTestServer, pool: asyncpg.Pool
) -> None:
    for name in (EU1_R1, EU1_R2):
        put(eu1.root, name)
        assert (await rt.pipeline.process("eu1", name, "webhook")).outcome == "imported"
    assert rt.failover.get("eu1").mode is FailoverMode.WEBHOOK
    await rt.flush()
    rows = await pool.fetch("SELECT server_id, from_mode, to_mode FROM failover_transitions")
    assert [tuple(r.values()) for r in rows] == [("eu1", "polling", "webhook")]


async def test_webhook_for_a_file_the_poller_already_stored_is_a_success(
    rt: IngestRuntime, eu1: SFTPTestServer
) -> None:
    put(eu1.root, EU1_R1)
    assert (await rt.pipeline.process("eu1", EU1_R1, "poll")).outcome == "imported"
    res = await rt.pipeline.process("eu1", EU1_R1, "webhook")
    assert res.outcome == "skipped"
    assert rt.failover.get_status("eu1").consecutive_successes == 1


async def test_unannounced_rule(rt: IngestRuntime, eu1: SFTPTestServer, clock: FakeClock) -> None:
    """Young files wait for the webhook; after the grace they count as unannounced;
    announced files and files from before the start never count."""
    match = fresh_match("eu1", local(NOW + 60))
    names = sorted(match, key=lambda n: (parse_filename(n).timestamp, n))
    for name, data in match.items():
        put(eu1.root, name, data)
    clock.advance(70)  # the first endstats/R1 exist now
    first = names[0]
    assert (await rt.pipeline.process("eu1", first, "webhook")).outcome == "imported"

    young = names[1]  # written 2 s after the webhook's file, so still within 120 s
    res = await rt.pipeline.process("eu1", young, "poll")
    assert (res.outcome, res.reason) == ("skipped", "deferred: the webhook's grace is running")
    assert rt.failover.get_status("eu1").consecutive_failures == 0

    clock.advance(120)
    assert (await rt.pipeline.process("eu1", young, "poll")).outcome == "imported"
    status = rt.failover.get_status("eu1")
    assert status.consecutive_failures == 1
    assert f"unannounced file {young}" in status.last_webhook_failure_reason

    # An old file (written before this pipeline started) never counts.
    put(eu1.root, EU1_R1)
    assert (await rt.pipeline.process("eu1", EU1_R1, "poll")).outcome == "imported"
    assert rt.failover.get_status("eu1").consecutive_failures == 1


async def test_no_unannounced_counting_without_webhook_activity(
    rt: IngestRuntime, eu1: SFTPTestServer, clock: FakeClock
) -> None:
    match = fresh_match("eu1", local(NOW + 60))
    for name, data in match.items():
        put(eu1.root, name, data)
    clock.advance(3600)
    for name in match:
        assert (await rt.pipeline.process("eu1", name, "poll")).outcome == "imported"
    status = rt.failover.get_status("eu1")
    assert status.consecutive_failures == 0 and status.mode is FailoverMode.POLLING
