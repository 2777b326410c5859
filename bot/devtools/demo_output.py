"""What the demo prints: event lines, section headers, and the text stand-ins for Discord
(round posts through the real Publisher, `!last_session`, `!failover-status`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import asyncpg

from bot.db import sessions_query as sq
from bot.devtools.demo_story import SERVERS, DemoServer
from bot.discord_ui.publisher import Post, Publisher
from bot.discord_ui.text import round_post_text, session_summary_text
from bot.importer import ImportResult
from bot.ingest.failover import FailoverManager, FailoverMode, Transition
from bot.ingest.poller import PollSummary
from bot.registry import ServerRegistry


class Printer:
    """One line per event, stamped with the simulated time since the evening began."""

    def __init__(self, out: TextIO, clock: Callable[[], float], start: float) -> None:
        self.out = out
        self.clock = clock
        self.start = start

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, title: str) -> None:
        self.line()
        self.line(f"== {title} ==")

    def event(self, server_id: str, text: str) -> None:
        elapsed = int(self.clock() - self.start)
        self.line(f"[+{elapsed // 60:02d}:{elapsed % 60:02d}] {server_id}  {text}")

    def transition(self, t: Transition) -> None:
        after = (
            "the poller stands down (a safety sweep every 30 min)"
            if t.to_mode is FailoverMode.WEBHOOK
            else "the poller takes over again"
        )
        self.event(t.server_id, f"FAILOVER {t.from_mode} → {t.to_mode}: {t.reason}; {after}")


def describe(outcome: str, result: ImportResult | None, reason: str | None = None) -> str:
    """'imported (Round 2, paired with its Round 1)', 'failed: <reason>' ..."""
    if outcome != "imported" or result is None:
        return f"{outcome}: {reason}" if reason else outcome
    if result.kind == "endstats":
        linked = "linked to its round" if result.round_id else "linked when its round arrives"
        return f"imported (awards, {linked})"
    return (
        "imported (Round 2, paired with its Round 1)" if result.status == "paired" else "imported"
    )


def poll_lines(summary: PollSummary, stored: Sequence[ImportResult]) -> list[str]:
    """One line per file a poll or sweep stored; one line when it found nothing or failed."""
    what = "safety sweep (polling is off)" if summary.source == "sweep" else "poll"
    if summary.error:
        return [f"{what} failed: {summary.error}"]
    if not stored:
        return [f"{what}: {summary.new} new of {summary.files_seen} files listed"]
    return [f"{what} found {r.filename} → {describe(r.outcome, r)}" for r in stored]


def print_intro(printer: Printer, data_dir: Path, minutes: int, pace: float) -> None:
    printer.line("ET:Legacy stats bot demo: a short evening on two game servers, simulated")
    printer.line(f"embedded PostgreSQL in {data_dir / 'pgdata'} (removed at the end)")
    for s in SERVERS:
        how = "webhook notifier, polling as the backup" if s.webhook else "no notifier: polling"
        printer.line(f"{s.server_id} {s.name!r} ({s.timezone}): in-process SFTP server; {how}")
    printer.line(
        "failover: every server starts polling; 2 webhook successes switch polling off; "
        "15 min without one during an active session switch it back on"
    )
    printer.section(f"The evening: {minutes} minutes of play, {pace:g} s of real time per minute")


async def print_posts(pool: asyncpg.Pool, registry: ServerRegistry, printer: Printer) -> int:
    """The real Publisher over the outbox, with a sink that prints instead of posting."""
    count = 0

    async def sink(post: Post) -> tuple[int | None, list[int]]:
        nonlocal count
        count += 1
        printer.line()
        printer.line(f"--- post {count} · {post.server_id} stats channel ---")
        printer.line(round_post_text(post.data, registry.get(post.server_id).timezone).rstrip())
        return None, []

    clock = printer.clock
    publisher = Publisher(
        pool, sink, posts_per_minute=60, now=lambda: datetime.fromtimestamp(clock(), UTC)
    )
    while await publisher.publish_due():
        pass
    return count


async def print_sessions(
    pool: asyncpg.Pool, registry: ServerRegistry, printer: Printer
) -> dict[str, tuple[int, int]]:
    """`!last_session <server>` for every server, as text; (rounds, players) per server."""
    found: dict[str, tuple[int, int]] = {}
    async with pool.acquire() as conn:
        for server in registry:
            printer.line()
            printer.line(f"> !last_session {server.server_id}")
            summary = await sq.load_session_summary(conn, server.server_id)
            if summary is None:
                printer.line("no session recorded")
                continue
            points = await sq.session_player_rounds(conn, summary.info.id)
            printer.line(session_summary_text(summary, server.timezone, points).rstrip())
            found[server.server_id] = (len(summary.rounds), len(summary.players))
    return found


def print_failover_status(failover: FailoverManager, printer: Printer) -> None:
    """The gist of `!failover-status`."""
    for s in failover.all_status():
        printer.line(
            f"{s.server_id}: {s.mode} (polling {'on' if s.polling_enabled else 'off'}), "
            f"{s.failovers_24h} failover(s); last change: {s.last_transition_reason}"
        )


def print_stored(
    printer: Printer, rounds: Mapping[str, int], sources: Mapping[str, Mapping[str, int]]
) -> None:
    for s in SERVERS:
        printer.line(stored_line(s, rounds.get(s.server_id, 0), sources.get(s.server_id, {})))


def stored_line(server: DemoServer, rounds: int, sources: Mapping[str, int]) -> str:
    via = ", ".join(f"{n} via {src}" for src, n in sorted(sources.items(), key=lambda x: -x[1]))
    return f"{server.server_id}: {rounds} rounds stored ({sum(sources.values())} files: {via})"
