"""Push-API throughput: sustained uploads/s and latency with many concurrent uploaders.

Run from the repository root:  python -m bench.bench_api [n_pairs] [--clients 50] [--rate 100]

Starts `python -m bot api` in a SUBPROCESS (its own event loop) against a fresh database
(BENCH_DATABASE_URL / TEST_DATABASE_URL, else an embedded server), creates an API key per
server with the `api-key` CLI and lifts the rate limits via the environment. Then uploads a
generated corpus (stats + endstats files of 20 servers, raw bodies as the game-server
uploader sends them) in three phases:

1. three quarters of the files with `--clients` uploaders, each sending its next file as
   soon as the last was answered (the saturation throughput);
2. the rest at a fixed `--rate` (open loop, at most `--clients` in flight): latency when the
   API is not saturated;
3. a sample again: uploaders retry, duplicates must stay cheap.

Prints uploads/s, p50/p90/p99/max latency, the count of each response status, and the CPU
per upload of the API process, PostgreSQL (local servers only) and the bench clients.
BENCH_POOL sets POSTGRES_MAX_POOL of the API (default 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg

from bench.common import bench_database
from bench.gen_corpus import generate_corpus

REPO = Path(__file__).resolve().parents[1]
SERVERS = [f"{region}{n}" for region in ("eu", "na", "us", "sa") for n in range(1, 6)]  # 20
TICK = os.sysconf("SC_CLK_TCK")
Result = tuple[float, int, str]  # latency s, HTTP status, body status
File = tuple[str, bytes]
Driver = Callable[[str, list[File], dict[str, str], int], Awaitable[tuple[list[Result], float]]]


# -- set-up --------------------------------------------------------------------------------


async def fresh_database(url: str) -> str:
    parts = urlsplit(url)
    admin = await asyncpg.connect(url)
    await admin.execute("DROP DATABASE IF EXISTS etl_bench_api WITH (FORCE)")
    await admin.execute("CREATE DATABASE etl_bench_api")
    await admin.close()
    return urlunsplit((parts.scheme, parts.netloc, "/etl_bench_api", parts.query, ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(dsn: str, tmp: Path) -> dict[str, str]:
    servers = [{"server_id": sid, "timezone": "UTC"} for sid in SERVERS]
    (tmp / "servers.json").write_text(json.dumps({"servers": servers}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "API_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=dsn,
        SERVERS_CONFIG_FILE=str(tmp / "servers.json"),
        DATA_DIR=str(tmp / "data"),
        API_RATE_LIMIT_PER_SERVER="1000000",
        API_RATE_LIMIT_GLOBAL="1000000",
        POSTGRES_MAX_POOL=os.environ.get("BENCH_POOL", "20"),
    )
    return env


def create_keys(env: dict[str, str], tmp: Path) -> dict[str, str]:
    """One key per server through the CLI (which also migrates the fresh database)."""
    keys = {}
    for sid in SERVERS:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "api-key", "create", sid],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        )
        keys[sid] = done.stdout.strip()
    return keys


@contextmanager
def api_process(env: dict[str, str], tmp: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "api", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=log,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"the API exited with {proc.returncode}; see its log")
            try:
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the API did not become healthy")


# -- CPU accounting (Linux /proc) ----------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _local_parent(pid: int) -> int | None:
    try:
        return _ppid(pid)
    except OSError:  # a remote server: no such process here
        return None


async def find_postmaster(dsn: str) -> int | None:
    """The server's postmaster pid when it runs on this machine (its CPU is then measured)."""
    conn = await asyncpg.connect(dsn)
    try:
        # While connected: the backend process ends with the connection.
        return _local_parent(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        await conn.close()


def postgres_cpu_s(postmaster: int | None) -> float:
    """The postmaster and its live children."""
    if postmaster is None:
        return 0.0
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                pid = int(entry.name)
                if pid == postmaster or _ppid(pid) == postmaster:
                    total += process_cpu_s(pid)
            except (OSError, IndexError):
                continue  # gone meanwhile
    return total


def machine_busy_s() -> float:
    """CPU seconds all cores spent neither idle nor waiting for I/O."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def cpu_now(api_pid: int, postmaster: int | None) -> tuple[float, ...]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    client = own.ru_utime + own.ru_stime
    return process_cpu_s(api_pid), postgres_cpu_s(postmaster), client, machine_busy_s()


# -- load ----------------------------------------------------------------------------------


async def upload(
    session: aiohttp.ClientSession, url: str, keys: dict[str, str], item: File
) -> tuple[int, str]:
    name, data = item
    sid = name.split("-", 1)[0]
    headers = {"X-Server-ID": sid, "X-API-Key": keys[sid], "X-Filename": name}
    async with session.post(url + "/api/ingest/stats", data=data, headers=headers) as resp:
        body = await resp.json(content_type=None)
    return resp.status, str(body.get("status"))


async def drive(
    url: str, files: list[File], keys: dict[str, str], clients: int
) -> tuple[list[Result], float]:
    """Closed loop: `clients` uploaders, each sending its next file as soon as answered."""
    queue: asyncio.Queue[File] = asyncio.Queue()
    for item in files:
        queue.put_nowait(item)
    results: list[Result] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            t0 = time.perf_counter()
            status, body = await upload(session, url, keys, item)
            results.append((time.perf_counter() - t0, status, body))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        return results, time.perf_counter() - start


async def drive_at(
    url: str, files: list[File], keys: dict[str, str], clients: int, *, rate: float
) -> tuple[list[Result], float]:
    """Open loop: a new upload every 1/rate s, at most `clients` in flight. Latency counts
    from the scheduled start, so a server falling behind shows in it."""
    results: list[Result] = []
    slots = asyncio.Semaphore(clients)

    async def one(session: aiohttp.ClientSession, item: File, due: float) -> None:
        try:
            status, body = await upload(session, url, keys, item)
            results.append((time.perf_counter() - due, status, body))
        finally:
            slots.release()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        start = time.perf_counter()
        tasks = []
        for i, item in enumerate(files):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await slots.acquire()
            tasks.append(asyncio.create_task(one(session, item, due)))
        await asyncio.gather(*tasks)
        return results, time.perf_counter() - start


# -- report --------------------------------------------------------------------------------


def report(label: str, results: list[Result], elapsed: float) -> None:
    lat = sorted(r[0] for r in results)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    statuses = Counter(f"{code} {status}" for _, code, status in results)
    print(
        f"{label}: {len(results)} uploads in {elapsed:.2f} s = {len(results) / elapsed:.0f}/s; "
        f"latency p50 {pct(0.50):.1f} ms, p90 {pct(0.90):.1f} ms, p99 {pct(0.99):.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms"
    )
    print("  responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))


def report_cpu(n: int, elapsed: float, used: list[float]) -> None:
    api, pg, client, machine = used
    cores = os.cpu_count() or 1
    print(
        f"  CPU per upload: API process {api / n * 1000:.2f} ms ({api / elapsed:.0%} of a "
        f"core), PostgreSQL {pg / n * 1000:.2f} ms, bench clients {client / n * 1000:.2f} ms; "
        f"other load on the machine {max(0.0, machine - api - pg - client):.1f} s; machine "
        f"{machine / (elapsed * cores):.0%} busy over {cores} cores"
    )


async def measure(
    label: str,
    how: Driver,
    batch: list[File],
    ctx: tuple[str, dict[str, str], int, int, int | None],
) -> None:
    url, keys, clients, api_pid, postmaster = ctx
    before = cpu_now(api_pid, postmaster)
    results, elapsed = await how(url, batch, keys, clients)
    used = [b - a for a, b in zip(before, cpu_now(api_pid, postmaster), strict=True)]
    report(label, results, elapsed)
    report_cpu(len(results), elapsed, used)


async def run(url: str, n_pairs: int, clients: int, rate: float) -> None:
    files = generate_corpus(n_pairs, SERVERS, seed=11)
    dsn = await fresh_database(url)
    postmaster = await find_postmaster(dsn)
    with tempfile.TemporaryDirectory(prefix="etl-bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        env = bench_env(dsn, tmp)
        keys = create_keys(env, tmp)
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        with api_process(env, tmp, port) as proc:
            await wait_healthy(api, proc)
            print(f"{len(files)} files from {len(SERVERS)} servers, {clients} concurrent clients")
            ctx = (api, keys, clients, proc.pid, postmaster)
            cut = len(files) * 3 // 4
            await measure("distinct files, as fast as answered", drive, files[:cut], ctx)
            at_rate = partial(drive_at, rate=rate)
            await measure(f"distinct files at {rate:g}/s", at_rate, files[cut:], ctx)
            sample = files[:: max(1, len(files) // 1000)]
            await measure("re-uploads (duplicates)", drive, sample, ctx)
    await summary(dsn, files)


async def summary(dsn: str, files: list[File]) -> None:
    conn = await asyncpg.connect(dsn)
    stored = await conn.fetchval("SELECT count(*) FROM processed_files WHERE status = 'done'")
    n_rounds = await conn.fetchval("SELECT count(*) FROM rounds")
    await conn.close()
    n_stats = sum(1 for name, _ in files if not name.endswith("-endstats.txt"))
    print(f"stored: {stored}/{len(files)} files done, {n_rounds}/{n_stats} rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_pairs", type=int, nargs="?", default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="uploads/s of phase 2")
    args = parser.parse_args()
    with bench_database() as url:
        asyncio.run(run(url, args.n_pairs, args.clients, args.rate))


if __name__ == "__main__":
    main()
