"""One poll cycle over many slow SFTP servers, into a real PostgreSQL.

Run from the repository root:
    python -m bench.bench_poll [--servers 20] [--delay 0.2] [--matches 1] [--fake]

Default: n real in-process asyncssh SFTP servers (tests/sftp_server.py) that sleep `delay`
in EVERY SFTP request (opendir/readdir, open, fstat, read), each given `matches` new
R1+R2 matches (4 files each). That server handles one session's requests one at a time, so
one server's floor is (3 listing + 4 per file) requests x delay, whatever the client does;
the figure to compare a cycle with is that floor, not the sum over servers.

--fake: the same pipeline with a stand-in ServerSFTP whose two operations (list, download)
each take `delay` and overlap like a pipelining server would.

Three cycles are timed: cold (SSH connects + new files), warm (new files on open
connections) and idle (nothing new). Database: BENCH_DATABASE_URL / TEST_DATABASE_URL, else
an embedded server; the `etl_bench_poll` database is dropped and recreated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.common import bench_database, fresh_database
from bench.gen_corpus import generate_corpus
from bot.config import load_settings
from bot.db.migrate import migrate
from bot.ingest.runtime import IngestRuntime
from bot.ingest.sftp import RemoteFile
from bot.registry import ServerConfig, ServerRegistry, SSHTarget
from bot.stats import parse_filename
from tests.sftp_server import Faults, serve_sftp

TZ = ZoneInfo("Europe/Ljubljana")
Batch = dict[str, dict[str, bytes]]  # server id -> file name -> content


def two_batches(ids: list[str], matches: int) -> tuple[Batch, Batch]:
    """Per server: `matches` matches for the first new-files cycle, as many for the second."""
    first: Batch = {}
    second: Batch = {}
    for i, sid in enumerate(ids):
        files = generate_corpus(2 * matches, [sid], seed=11 + i)
        files.sort(key=lambda f: parse_filename(f[0]).timestamp)
        first[sid] = dict(files[: 4 * matches])
        second[sid] = dict(files[4 * matches :])
    return first, second


class FakeSFTP:
    """list_stats_files / download each take `delay`; concurrent calls overlap."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.files: dict[str, bytes] = {}

    async def list_stats_files(self) -> list[RemoteFile]:
        await asyncio.sleep(self.delay)
        return [RemoteFile(n, len(d), 0.0) for n, d in sorted(self.files.items())]

    async def download(self, name: str, local_dir: Path, max_bytes: int = 0) -> bytes:
        await asyncio.sleep(self.delay)
        return self.files[name]


class FakePool:
    def __init__(self, ids: list[str], delay: float) -> None:
        self.clients = {sid: FakeSFTP(delay) for sid in ids}

    def get(self, server_id: str) -> FakeSFTP:
        return self.clients[server_id]

    def __contains__(self, server_id: object) -> bool:
        return server_id in self.clients

    def server_ids(self) -> list[str]:
        return list(self.clients)

    async def close_all(self) -> None:
        return None


async def timed_cycle(rt: IngestRuntime, label: str) -> None:
    start = time.perf_counter()
    summaries = await rt.poller.poll_once()
    took = time.perf_counter() - start
    slowest = max(summaries, key=lambda s: s.seconds)
    print(
        f"{label:<5} cycle: {took:5.2f} s  ({len(summaries)} servers, "
        f"{sum(s.imported for s in summaries)} imported, {sum(s.errors for s in summaries)} "
        f"errors, slowest {slowest.server_id} {slowest.seconds:.2f} s)"
    )


async def cycles(rt: IngestRuntime, place: object, first: Batch, second: Batch) -> None:
    await rt.prepare()
    place(first)  # type: ignore[operator]
    await timed_cycle(rt, "cold")
    place(second)  # type: ignore[operator]
    await timed_cycle(rt, "warm")
    await timed_cycle(rt, "idle")
    await rt.close()


def runtime(pool: asyncpg.Pool, tmp: str, targets: dict[str, SSHTarget]) -> IngestRuntime:
    registry = ServerRegistry(ServerConfig(sid, sid, True, TZ, t) for sid, t in targets.items())
    # The generated files are from 2025: no lookback limit (0).
    env = {"DATA_DIR": f"{tmp}/data", "DEAD_HOURS": "", "STARTUP_LOOKBACK_HOURS": "0"}
    return IngestRuntime(load_settings(env=env), registry, pool)


async def run_real(pool: asyncpg.Pool, tmp: str, args: argparse.Namespace, ids: list[str]):
    first, second = two_batches(ids, args.matches)
    async with AsyncExitStack() as stack:
        roots: dict[str, Path] = {}
        targets: dict[str, SSHTarget] = {}
        for sid in ids:
            roots[sid] = Path(tmp) / "remote" / sid
            roots[sid].mkdir(parents=True)
            srv = await stack.enter_async_context(
                serve_sftp(roots[sid], Faults(op_delay=args.delay))
            )
            targets[sid] = srv.ssh_target("/")

        def place(batch: Batch) -> None:
            for sid, files in batch.items():
                for name, data in files.items():
                    (roots[sid] / name).write_bytes(data)

        floor = (3 + 4 * 4 * args.matches) * args.delay
        print(f"one server's floor (serial requests) with new files: {floor:.2f} s")
        await cycles(runtime(pool, tmp, targets), place, first, second)


async def run_fake(pool: asyncpg.Pool, tmp: str, args: argparse.Namespace, ids: list[str]):
    first, second = two_batches(ids, args.matches)
    dummy = SSHTarget("fake", 22, "etl", Path("/dev/null"), Path("/dev/null"), "/")
    rt = runtime(pool, tmp, dict.fromkeys(ids, dummy))
    fake = FakePool(ids, args.delay)
    rt.sftp = rt.pipeline.sftp = rt.poller.sftp = fake  # type: ignore[assignment]

    def place(batch: Batch) -> None:
        for sid, files in batch.items():
            fake.clients[sid].files.update(files)

    await cycles(rt, place, first, second)


async def run(url: str, args: argparse.Namespace) -> None:
    ids = [f"s{i:02d}" for i in range(args.servers)]
    pool = await asyncpg.create_pool(
        await fresh_database(url, "etl_bench_poll"), min_size=4, max_size=10
    )
    await migrate(pool)
    kind = "fake ServerSFTP, per list/download" if args.fake else "real SFTP servers, per request"
    print(f"{args.servers} servers, {args.matches * 4} new files per server and cycle, ", end="")
    print(f"{args.delay * 1000:.0f} ms per operation ({kind})")
    with tempfile.TemporaryDirectory(prefix="etl-bench-poll-") as tmp:
        await (run_fake if args.fake else run_real)(pool, tmp, args, ids)
    rounds = await pool.fetchval("SELECT count(*) FROM rounds")
    paired = await pool.fetchval("SELECT count(*) FROM rounds WHERE status = 'paired'")
    print(f"stored {rounds} rounds ({paired} paired R2)")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per operation")
    parser.add_argument("--matches", type=int, default=1, help="new matches (4 files) per cycle")
    parser.add_argument("--fake", action="store_true", help="stand-in ServerSFTP, no SSH")
    args = parser.parse_args()
    with bench_database() as url:
        asyncio.run(run(url, args))


if __name__ == "__main__":
    main()
