"""Import many files at once (the `import` CLI verb, benchmarks, the demo)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.importer import MAX_FILE_BYTES, Importer, ImportResult
from bot.stats import StatsFileError, is_valid_filename, parse_filename


@dataclass(slots=True)
class ImportJob:
    server_id: str | None  # None: a legacy name and no --server given
    filename: str
    path: Path


@dataclass(slots=True)
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, result: ImportResult) -> None:
        if result.outcome == "imported":
            self.imported += 1
        elif result.outcome == "duplicate":
            self.duplicates += 1
        else:
            self.add_rejection(result.reason or "unknown reason", failed=result.outcome == "failed")

    def add_rejection(self, reason: str, *, failed: bool = False) -> None:
        if failed:
            self.failed += 1
        else:
            self.rejected += 1
        self.reasons[_reason_kind(reason)] += 1

    def line(self) -> str:
        text = f"imported {self.imported}, duplicates {self.duplicates}, rejected {self.rejected}"
        if self.failed:
            text += f", failed {self.failed}"
        if self.reasons:
            top = "; ".join(f"{n}× {r}" for r, n in self.reasons.most_common(5))
            text += f" ({top})"
        return text


def _reason_kind(reason: str) -> str:
    # Group "line 3: ..." style reasons by their text so the summary stays short.
    return reason.split(": ", 1)[1] if reason.startswith("line ") and ": " in reason else reason


def collect_jobs(paths: Iterable[Path], server: str | None) -> list[ImportJob]:
    """Files named explicitly, and files in directories whose names pass the grammar.

    Other files in a directory (logs, *_ws.txt sidecars) are ignored, as the
    pollers ignore them. Jobs come sorted by file time so R1 precedes its R2.
    """
    jobs: list[ImportJob] = []
    for path in paths:
        if path.is_dir():
            files = [
                p for p in sorted(path.rglob("*")) if p.is_file() and is_valid_filename(p.name)
            ]
        else:
            files = [path]
        for f in files:
            jobs.append(ImportJob(_server_of(f.name, server), f.name, f))
    return sorted(jobs, key=_job_order)


def _server_of(name: str, default: str | None) -> str | None:
    try:
        prefix = parse_filename(name).server_id
    except StatsFileError:
        prefix = None
    return prefix or default


def _job_order(job: ImportJob) -> tuple[str, str, str]:
    try:
        stamp = parse_filename(job.filename).timestamp.isoformat()
    except StatsFileError:
        stamp = ""
    return (job.server_id or "", stamp, job.filename)


async def run_jobs(
    importer: Importer,
    jobs: list[ImportJob],
    *,
    source: str = "import",
    progress: Callable[[], None] | None = None,
) -> ImportSummary:
    """Import jobs; servers run side by side, each server's files in order."""
    summary = ImportSummary()
    by_server: dict[str | None, list[ImportJob]] = {}
    for job in jobs:
        by_server.setdefault(job.server_id, []).append(job)

    async def one_server(server_jobs: list[ImportJob]) -> None:
        for job in server_jobs:
            await _run_one(importer, job, source, summary)
            if progress is not None:
                progress()

    await asyncio.gather(*(one_server(j) for j in by_server.values()))
    return summary


async def _run_one(importer: Importer, job: ImportJob, source: str, summary: ImportSummary) -> None:
    if job.server_id is None:
        summary.add_rejection("legacy file name (no server prefix): pass --server ID")
        return
    with job.path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)  # one byte over is enough to be refused
    summary.add(await importer.import_file(job.server_id, job.filename, data, source))
