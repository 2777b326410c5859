"""In-process metrics and a small Prometheus text-format (0.0.4) encoder.

`Metrics` holds what only this process knows: push-API ingests by server and outcome, the
ingest latency histogram and, when something calls `note_poll`, poll cycles and errors by
server. Everything that several processes share (outbox backlog, the processed-files ledger,
the servers' health, the last failover transition) is read from PostgreSQL at scrape time
by `database_families`, so any API instance reports the same figures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from bot.ingest.failover import FailoverMode, FailoverStatus

if TYPE_CHECKING:
    from bot.ingest.poller import PollSummary

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Family:
    """One metric family: its HELP/TYPE header and samples (suffix, labels, value)."""

    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Labels = (), suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def encode(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for suffix, labels, value in fam.samples:
            text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            shown = f"{{{text}}}" if text else ""
            lines.append(f"{fam.name}{suffix}{shown} {format_value(value)}")
    return "\n".join(lines) + "\n"


class Counter:
    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def family(self) -> Family:
        fam = Family(self.name, "counter", self.help)
        for key, value in sorted(self._values.items()):
            fam.add(value, tuple(zip(self.labelnames, key, strict=True)))
        return fam


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self._counts[i] += 1  # cumulative at encoding time, not here
                break

    def family(self) -> Family:
        fam = Family(self.name, "histogram", self.help)
        running = 0
        for bound, n in zip(self.buckets, self._counts, strict=True):
            running += n
            fam.add(running, (("le", format_value(bound)),), "_bucket")
        fam.add(self.count, (("le", "+Inf"),), "_bucket")
        fam.add(self.sum, (), "_sum")
        fam.add(self.count, (), "_count")
        return fam


class Metrics:
    """The process's metrics registry; one per process, handed to the API and the runtime."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ingests = Counter(
            "etl_api_ingests_total",
            "Push-API uploads by server and outcome (unauthenticated: server empty).",
            ("server", "outcome"),
        )
        self.ingest_seconds = Histogram(
            "etl_api_ingest_duration_seconds",
            "Time to answer an authenticated push-API upload.",
            LATENCY_BUCKETS,
        )
        self.poll_cycles = Counter(
            "etl_poll_cycles_total", "SFTP poll cycles by server (this process).", ("server",)
        )
        self.poll_errors = Counter(
            "etl_poll_errors_total",
            "SFTP poll cycles that failed to list, or had failed files (this process).",
            ("server",),
        )

    def note_ingest(self, server_id: str, outcome: str, seconds: float | None) -> None:
        self.ingests.inc(server_id, outcome)
        if seconds is not None:
            self.ingest_seconds.observe(seconds)

    def note_poll(self, summary: PollSummary) -> None:
        """For the poller: one call per finished cycle of one server."""
        self.poll_cycles.inc(summary.server_id)
        if summary.error or summary.errors:
            self.poll_errors.inc(summary.server_id)

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def families(self) -> list[Family]:
        uptime = Family("etl_uptime_seconds", "gauge", "Seconds since this process started.")
        uptime.add(round(self.uptime_s(), 3))
        fams = [uptime, self.ingests.family(), self.ingest_seconds.family()]
        fams += [self.poll_cycles.family(), self.poll_errors.family()]
        return fams


def _mode_family() -> Family:
    return Family(
        "etl_failover_mode",
        "gauge",
        "Failover mode by server: 1 for the current mode, 0 for the others.",
    )


def failover_family(statuses: Iterable[FailoverStatus]) -> Family:
    """From the live failover machines of the process that runs the pollers."""
    fam = _mode_family()
    for st in statuses:
        for mode in FailoverMode:
            labels = (("server", st.server_id), ("mode", str(mode)))
            fam.add(1.0 if st.mode is mode else 0.0, labels)
    return fam


async def database_families(conn: asyncpg.Connection, *, failover: bool) -> list[Family]:
    """Shared state read at scrape time; `failover`: also the last recorded failover mode."""
    backlog = Family("etl_outbox_backlog", "gauge", "Stored rounds not yet posted.")
    backlog.add(await conn.fetchval("SELECT count(*) FROM round_outbox WHERE sent_at IS NULL"))
    fams = [backlog, await _ledger_family(conn), *await _server_families(conn)]
    if failover:
        fams.append(await _recorded_failover(conn))
    return fams


async def _ledger_family(conn: asyncpg.Connection) -> Family:
    fam = Family(
        "etl_processed_files",
        "gauge",
        "Processed-files ledger rows by server, source (poll/sweep/webhook/api/import) and "
        "status (done/failed/rejected); the poll rows stand in for poll activity.",
    )
    rows = await conn.fetch(
        """SELECT server_id, source, status, count(*) AS n FROM processed_files
           GROUP BY server_id, source, status ORDER BY 1, 2, 3"""
    )
    for r in rows:
        labels = (("server", r["server_id"]), ("source", r["source"]), ("status", r["status"]))
        fam.add(r["n"], labels)
    return fam


async def _server_families(conn: asyncpg.Connection) -> list[Family]:
    seen = Family("etl_server_last_seen_timestamp_seconds", "gauge", "Last file or contact.")
    error = Family(
        "etl_server_last_error_timestamp_seconds", "gauge", "Time of the last recorded error."
    )
    files = Family("etl_server_files", "gauge", "Files stored per server (servers.files_count).")
    rows = await conn.fetch(
        """SELECT id, extract(epoch FROM last_seen) AS seen,
                  extract(epoch FROM last_error_at) AS err, files_count
           FROM servers ORDER BY id"""
    )
    for r in rows:
        labels = (("server", r["id"]),)
        files.add(r["files_count"], labels)
        if r["seen"] is not None:
            seen.add(float(r["seen"]), labels)
        if r["err"] is not None:
            error.add(float(r["err"]), labels)
    return [seen, error, files]


async def _recorded_failover(conn: asyncpg.Connection) -> Family:
    """The mode of each server's last persisted transition (the bot runs elsewhere)."""
    fam = _mode_family()
    rows = await conn.fetch(
        """SELECT DISTINCT ON (server_id) server_id, to_mode FROM failover_transitions
           ORDER BY server_id, at DESC, id DESC"""
    )
    for r in rows:
        for mode in FailoverMode:
            labels = (("server", r["server_id"]), ("mode", str(mode)))
            fam.add(1.0 if r["to_mode"] == mode else 0.0, labels)
    return fam
