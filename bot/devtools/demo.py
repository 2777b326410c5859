"""`python -m bot demo`: one simulated evening through the real bot, no Discord, no game server.

What runs is production code: an embedded PostgreSQL in a temporary directory (the user's
DATABASE_URL, POSTGRES_* and servers.json are ignored on purpose: the demo never touches a
real database), two in-process SFTP "game servers" (bot.devtools.sftp_server), the
IngestRuntime with its pipeline, pollers and failover machines, the webhook trigger's pure
authorize/parse_trigger functions, the Publisher and the `!last_session` queries. Simulated:

- the clock: an injected clock jumps through ~50 minutes of play in a few seconds, ticking
  every server's poller once per simulated minute, as the real poller loops wake;
- the control channel: eu1's notifier messages ("📊 `<file>`") are built here and handled
  the way the Discord listener (bot.cogs.trigger) handles them;
- Discord: round posts and the session summaries are printed as text (demo_output).

The storyline and its timing are in bot.devtools.demo_story.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import asyncpg

from bot.config import Settings, load_settings
from bot.db import servers as servers_db
from bot.db.migrate import migrate
from bot.db.pool import open_database
from bot.devtools import demo_output as show
from bot.devtools.demo_story import SERVERS, TAIL_MINUTES, Step, build_script
from bot.devtools.sftp_server import SFTPTestServer, serve_sftp
from bot.importer import ImportResult
from bot.ingest.failover import Transition
from bot.ingest.pipeline import ProcessResult
from bot.ingest.runtime import IngestRuntime
from bot.ingest.webhook_trigger import FileTrigger, TriggerError, authorize, parse_trigger
from bot.registry import ServerConfig, ServerRegistry

DEFAULT_PACE = 0.15  # real seconds per simulated minute: ~50 minutes of play in ~8 s
WEBHOOK_ID = 1_300_000_000_000_000_001  # eu1's notifier webhook, as servers.json would list it
WEBHOOK_NAME = "ET Stats"  # the notifier's WEBHOOK_USERNAME
STATS, ENDSTATS = "📊", "🏆"


@dataclass
class DemoResult:
    """What the evening left in the database, read just before it was shut down."""

    rounds: dict[str, int]  # server id -> stored rounds
    file_sources: dict[str, dict[str, int]]  # server id -> source -> files stored
    transitions: list[Transition]
    posts: int
    sessions: dict[str, tuple[int, int]]  # server id -> (rounds, players) of its last session
    data_dir: Path = Path()  # the temporary directory; gone once run_demo returns
    seconds: float = 0.0


class DemoClock:
    """The injected clock: epoch seconds that move only when the evening says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """What the Discord listener reads from a control-channel message."""

    webhook_id: int | None
    author_name: str
    content: str
    embeds: tuple[dict[str, object], ...] = ()


@dataclass
class Recorder:
    """The runtime's hooks: stored files and failover transitions, kept for the narration."""

    stored: list[ImportResult] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    unprinted: list[Transition] = field(default_factory=list)

    def on_round_stored(self, result: ImportResult) -> None:
        self.stored.append(result)

    def on_transition(self, t: Transition) -> None:
        # Called inside the machine, mid-event: printed after the line of the event.
        self.transitions.append(t)
        self.unprinted.append(t)


def demo_settings(data_dir: Path) -> Settings:
    """Defaults plus our own embedded database in `data_dir`, no dead hours (any time of day
    is evening here) and the notifier's name. Nothing from the environment or .env."""
    env = {"DATA_DIR": str(data_dir), "DEAD_HOURS": "", "WEBHOOK_TRIGGER_USERNAME": WEBHOOK_NAME}
    return load_settings(env, dotenv_path=None)


def demo_registry(sftp: dict[str, SFTPTestServer]) -> ServerRegistry:
    return ServerRegistry(
        ServerConfig(
            s.server_id,
            s.name,
            True,
            s.zone,
            sftp[s.server_id].ssh_target(),
            trigger_webhook_ids=(WEBHOOK_ID,) if s.webhook else (),
        )
        for s in SERVERS
    )


async def handle_control_message(
    runtime: IngestRuntime, settings: Settings, msg: ControlMessage
) -> tuple[list[ProcessResult], str | None]:
    """bot.cogs.trigger's flow without Discord: (results, why nothing was processed)."""
    auth = authorize(
        runtime.registry,
        webhook_id=msg.webhook_id,
        author_name=msg.author_name,
        required_username=settings.webhook_trigger_username,
    )
    if auth.server is None:
        return [], auth.reason
    sid = auth.server.server_id
    try:
        trigger = parse_trigger(msg.content, list(msg.embeds), auth.server)
        if not isinstance(trigger, FileTrigger):
            raise TriggerError("STATS_READY is not part of the demo")
    except TriggerError as exc:
        runtime.failover.get(sid).record_webhook_failure(exc.reason)
        return [], exc.reason
    return [await runtime.pipeline.process(sid, n, "webhook") for n in trigger.filenames], None


@dataclass
class Evening:
    """Plays the script minute by minute against the runtime and narrates it."""

    runtime: IngestRuntime
    recorder: Recorder
    sftp: dict[str, SFTPTestServer]
    clock: DemoClock
    printer: show.Printer
    pace: float
    silent: set[str] = field(default_factory=set)

    async def play(self, script: Sequence[Step]) -> None:
        todo = list(script)
        for minute in range(script_minutes(script)):
            self.clock.now = self.printer.start + minute * 60
            await self.tick_all()
            while todo and todo[0].at < (minute + 1) * 60:
                step = todo.pop(0)
                self.clock.now = self.printer.start + step.at
                await self.run_step(step)
            if self.pace > 0:
                await asyncio.sleep(self.pace)

    def flush_transitions(self) -> None:
        for t in self.recorder.unprinted:
            self.printer.transition(t)
        self.recorder.unprinted.clear()

    async def tick_all(self) -> None:
        """What each server's poller loop does when it wakes: heartbeat, then poll if due."""
        for sid in self.runtime.registry.ids:
            machine = self.runtime.failover.get(sid)
            failures = machine.status().consecutive_failures
            self.recorder.stored.clear()
            summary = await self.runtime.poller.tick(sid)
            self.flush_transitions()  # a heartbeat transition happens before the poll
            if summary is not None and (summary.new or summary.error or summary.source == "sweep"):
                for line in show.poll_lines(summary, self.recorder.stored):
                    self.printer.event(sid, line)
            status = machine.status()
            if status.consecutive_failures > failures:
                self.printer.event(
                    sid,
                    f"{status.consecutive_failures - failures} file(s) that no webhook announced:"
                    f" counted as webhook failures (last: {status.last_webhook_failure_reason})",
                )

    async def run_step(self, step: Step) -> None:
        server, sid = step.server, step.server.server_id
        if step.round is None:
            self.silent.add(sid)
            self.printer.event(
                sid,
                "the webhook notifier goes silent (simulated outage): files are still "
                "written, nobody announces them",
            )
            return
        rnd = step.round
        local = datetime.fromtimestamp(self.clock.now, server.zone).replace(tzinfo=None)
        stats_name, es_name = rnd.names(sid, local)
        root = self.sftp[sid].root
        (root / es_name).write_bytes(rnd.endstats)  # the module writes endstats first
        (root / stats_name).write_bytes(rnd.stats)
        played = f"{rnd.duration_s // 60}:{rnd.duration_s % 60:02d}"
        self.printer.event(sid, f"{rnd.map_name} round {rnd.number} ends after {played}")
        if server.webhook and sid not in self.silent:
            await self.announce(sid, [(STATS, stats_name), (ENDSTATS, es_name)])

    async def announce(self, sid: str, files: list[tuple[str, str]]) -> None:
        """The notifier's messages, one per file, stats before endstats (as the Lua posts)."""
        for emoji, name in files:
            msg = ControlMessage(WEBHOOK_ID, WEBHOOK_NAME, f"{emoji} `{name}`")
            results, refused = await handle_control_message(
                self.runtime, self.runtime.settings, msg
            )
            if refused is not None:
                self.printer.event(sid, f"webhook {emoji} {name} refused: {refused}")
            for r in results:
                text = show.describe(r.outcome, r.result, r.reason)
                self.printer.event(sid, f"webhook {emoji} {name} → {text} ({r.elapsed:.2f} s)")
            self.flush_transitions()


def script_minutes(script: Sequence[Step]) -> int:
    """Simulated minutes to play: up to the last step, plus the tail for late polls."""
    return max(step.at for step in script) // 60 + TAIL_MINUTES + 1


async def stored_counts(pool: asyncpg.Pool) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Rounds per server, and files per server and source (the processed_files ledger)."""
    rounds = await pool.fetch("SELECT server_id, count(*) AS n FROM rounds GROUP BY 1")
    files = await pool.fetch(
        """SELECT server_id, source, count(*) AS n FROM processed_files
           WHERE status = 'done' GROUP BY 1, 2"""
    )
    sources: dict[str, dict[str, int]] = {}
    for row in files:
        sources.setdefault(row["server_id"], {})[row["source"]] = row["n"]
    return {r["server_id"]: r["n"] for r in rounds}, sources


async def play_evening(
    stack: AsyncExitStack, data_dir: Path, clock: DemoClock, printer: show.Printer, pace: float
) -> DemoResult:
    """Everything between start-up and shutdown; `stack` owns what must be closed."""
    sftp: dict[str, SFTPTestServer] = {}
    for s in SERVERS:
        root = data_dir / "game-servers" / s.server_id
        root.mkdir(parents=True)
        sftp[s.server_id] = await stack.enter_async_context(serve_sftp(root))
    registry = demo_registry(sftp)
    settings = demo_settings(data_dir)
    pool = await stack.enter_async_context(open_database(settings))
    await migrate(pool)
    async with pool.acquire() as conn:
        await servers_db.sync_registry(conn, [(s.server_id, s.server_name, True) for s in registry])
    recorder = Recorder()
    runtime = IngestRuntime(
        settings, registry, pool, clock=clock, on_round_stored=recorder.on_round_stored
    )
    stack.push_async_callback(runtime.close)  # LIFO: closed before the pool and SFTP servers
    runtime.add_transition_listener(recorder.on_transition)
    await runtime.start(pollers=False)  # the evening wakes the pollers itself, on its clock
    await Evening(runtime, recorder, sftp, clock, printer, pace).play(build_script())
    return await epilogue(runtime, recorder, printer)


async def epilogue(runtime: IngestRuntime, recorder: Recorder, printer: show.Printer) -> DemoResult:
    pool, registry = runtime.pool, runtime.registry
    printer.section("Failover status (!failover-status)")
    show.print_failover_status(runtime.failover, printer)
    printer.section("Round posts (what the stats channels get)")
    posts = await show.print_posts(pool, registry, printer)
    printer.section("!last_session, per server")
    sessions = await show.print_sessions(pool, registry, printer)
    rounds, sources = await stored_counts(pool)
    printer.section("What was stored")
    show.print_stored(printer, rounds, sources)
    printer.line(f"{posts} round posts, {len(recorder.transitions)} failover transitions")
    return DemoResult(rounds, sources, list(recorder.transitions), posts, sessions)


async def run_demo(*, pace: float = DEFAULT_PACE, out: TextIO | None = None) -> DemoResult:
    """Set up, play the evening, print posts and sessions, shut everything down.

    `pace`: real seconds per simulated minute (0: no pauses at all, as the tests run it).
    """
    t0 = time.perf_counter()
    minutes = script_minutes(build_script())
    # The evening ends about now, so every file name is from the last hour: "today".
    clock = DemoClock(time.time() // 60 * 60 - minutes * 60)
    printer = show.Printer(out or sys.stdout, clock, clock.now)
    with tempfile.TemporaryDirectory(prefix="etl-demo-") as tmp:
        data_dir = Path(tmp)
        show.print_intro(printer, data_dir, minutes, pace)
        async with AsyncExitStack() as stack:
            result = await play_evening(stack, data_dir, clock, printer, pace)
    result.data_dir = data_dir
    result.seconds = time.perf_counter() - t0
    printer.section(f"Done in {result.seconds:.1f} s; game servers and database stopped")
    return result


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The `demo` verb. `settings` (the user's configuration) is deliberately unused."""
    if not args.verbose:
        # The narration says what happens; the bot's INFO/WARNING log would repeat it.
        logging.getLogger("bot").setLevel(logging.ERROR)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a non-UTF-8 terminal must not crash it
    await run_demo(pace=max(0.0, args.pace))
    return 0


def add_demo_verb(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="a simulated evening on two game servers, no setup needed")
    demo.add_argument(
        "--pace",
        type=float,
        default=DEFAULT_PACE,
        help=f"real seconds per simulated minute (default {DEFAULT_PACE}; 0: no pauses)",
    )
    demo.add_argument("--verbose", action="store_true", help="also show the bot's log")
    demo.set_defaults(func=cmd_demo)
