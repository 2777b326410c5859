"""Webhook trigger latency: control message received -> round committed, on loopback.

Run from the repository root:  python -m bench.bench_trigger [n_rounds]
A real asyncssh SFTP server on 127.0.0.1 serves generated round files; for each
one the bench builds the message the game server's notifier posts and runs it
through what the Discord listener does (authorize, parse_trigger, then
pipeline.process(..., "webhook"): SFTP download, parse, one transaction).
Prints the median, p90 and p99 of message-to-commit time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
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
from bot.ingest.webhook_trigger import authorize, parse_trigger
from bot.registry import ServerConfig, ServerRegistry
from tests.sftp_server import serve_sftp

WEBHOOK_ID = 1


async def one_trigger(runtime: IngestRuntime, registry: ServerRegistry, name: str) -> float:
    start = time.perf_counter()
    auth = authorize(
        registry, webhook_id=WEBHOOK_ID, author_name="ET Stats", required_username=None
    )
    assert auth.server is not None
    trigger = parse_trigger(f"📊 `{name}`", [], auth.server)
    for filename in trigger.filenames:  # type: ignore[union-attr]
        result = await runtime.pipeline.process(auth.server.server_id, filename, "webhook")
        if result.outcome != "imported":
            raise RuntimeError(f"{filename}: {result.outcome} {result.reason}")
    return time.perf_counter() - start


async def run(url: str, n_rounds: int) -> None:
    files = [f for f in generate_corpus((n_rounds + 1) // 2, ["eu1"], seed=5)]
    stats = [name for name, _ in files if not name.endswith("-endstats.txt")][:n_rounds]
    with tempfile.TemporaryDirectory(prefix="etl-bench-trigger-") as tmp:
        root = Path(tmp) / "gamestats"
        root.mkdir()
        for name, content in files:
            (root / name).write_bytes(content)
        pool = await asyncpg.create_pool(await fresh_database(url, "etl_bench_trigger"))
        await migrate(pool)
        async with serve_sftp(root) as srv:
            server = ServerConfig(
                "eu1",
                "EU 1",
                True,
                ZoneInfo("Europe/Ljubljana"),
                srv.ssh_target("/"),
                (WEBHOOK_ID,),
            )
            registry = ServerRegistry([server])
            env = {"DATA_DIR": str(Path(tmp) / "data"), "STARTUP_LOOKBACK_HOURS": "0"}
            runtime = IngestRuntime(load_settings(env, dotenv_path=None), registry, pool)
            await runtime.start(pollers=False)
            await one_trigger(runtime, registry, stats[0])  # warm-up: SSH connect, caches
            times = [await one_trigger(runtime, registry, name) for name in stats[1:]]
            await runtime.close()
        await pool.close()
    ms = sorted(t * 1000 for t in times)
    p = statistics.quantiles(ms, n=100)
    print(f"trigger -> committed over {len(ms)} rounds (SFTP + PostgreSQL on loopback):")
    print(
        f"  median {statistics.median(ms):.1f} ms, p90 {p[89]:.1f} ms, p99 {p[98]:.1f} ms, "
        f"max {ms[-1]:.1f} ms"
    )


def main() -> None:
    n_rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with bench_database() as url:
        asyncio.run(run(url, n_rounds))


if __name__ == "__main__":
    main()
