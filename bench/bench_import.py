"""Import throughput into PostgreSQL: stats files/s with the differential and sessions.

Run from the repository root:  python -m bench.bench_import [n_pairs]
Generates n_pairs R1+R2 matches (default 1,000 -> 2,000 stats files, plus their
endstats files) over several servers, imports them into a fresh database
(BENCH_DATABASE_URL / TEST_DATABASE_URL, else an embedded server) the way the
`import` verb does, and prints stats files/s. Uses a database of its own: it
drops and recreates the `etl_bench` database on the server.
"""

from __future__ import annotations

import asyncio
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
from bot.bulk_import import collect_jobs, run_jobs
from bot.db.migrate import migrate
from bot.importer import Importer

SERVERS = ["eu1", "eu2", "na1", "us1"]


async def run(url: str, n_pairs: int) -> None:
    files = generate_corpus(n_pairs, SERVERS, seed=3)
    with tempfile.TemporaryDirectory(prefix="etl-bench-files-") as tmp:
        for name, content in files:
            (Path(tmp) / name).write_bytes(content)
        jobs = collect_jobs([Path(tmp)], None)
        dsn = await fresh_database(url, "etl_bench")
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=8)
        await migrate(pool)
        importer = Importer(pool, timezone_for=lambda _s: ZoneInfo("Europe/Ljubljana"))
        start = time.perf_counter()
        summary = await run_jobs(importer, jobs)
        elapsed = time.perf_counter() - start
        stats = await pool.fetchval("SELECT count(*) FROM rounds")
        paired = await pool.fetchval("SELECT count(*) FROM rounds WHERE status = 'paired'")
        await pool.close()
    n_stats = sum(1 for j in jobs if not j.filename.endswith("-endstats.txt"))
    print(f"files: {len(jobs)} ({n_stats} stats, {len(jobs) - n_stats} endstats); {summary.line()}")
    print(f"stored rounds: {stats} ({paired} paired R2)")
    print(
        f"import: {elapsed:.2f} s total, {n_stats / elapsed:.0f} stats files/s "
        f"({len(jobs) / elapsed:.0f} files/s incl. endstats)"
    )


def main() -> None:
    n_pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with bench_database() as url:
        asyncio.run(run(url, n_pairs))


if __name__ == "__main__":
    main()
