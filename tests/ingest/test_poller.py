"""Pollers, safety sweep and the `poll --once` verb against real PostgreSQL and SFTP servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.cli import build_parser
from bot.cli_ingest import cmd_poll
from bot.config import load_settings
from bot.importer import ImportResult
from bot.ingest.failover import FailoverMode
from bot.ingest.poller import oldest_first
from bot.ingest.runtime import IngestRuntime
from bot.ingest.sftp import RemoteFile
from tests.ingest.test_pipeline import (
    EU1_R1,
    EU1_R1_END,
    EU1_R2,
    EU1_R2_END,
    NOW,
    FakeClock,
    Stored,
    fixture_names,
    fresh_match,
    ingest_runtime,
    ledger,
    local,
    put,
    sftp_servers,
    until,
)
from tests.sftp_server import Faults, SFTPTestServer

IDS = ["eu1", "eu2", "na1"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def stats_names(names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith("-endstats.txt")]


async def rounds_by_server(pool: asyncpg.Pool) -> dict[str, list[str]]:
    rows = await pool.fetch("SELECT server_id, filename FROM rounds ORDER BY filename")
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["server_id"], []).append(r["filename"])
    return out


def gate_listings(rt: IngestRuntime, barrier: asyncio.Barrier) -> None:
    """Every listing waits until all servers are listing: passes only if they run in parallel."""
    for sid in rt.sftp.server_ids():
        client = rt.sftp.get(sid)
        original: Callable[[], Awaitable[list[RemoteFile]]] = client.list_stats_files

        async def gated(original: Callable[[], Awaitable[list[RemoteFile]]] = original):
            await barrier.wait()
            return await original()

        client.list_stats_files = gated  # type: ignore[method-assign]


# -- one cycle ---------------------------------------------------------------------------


async def test_servers_are_polled_in_parallel_with_one_summary_line(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with sftp_servers(tmp_path, IDS) as srvs:
        for sid, srv in srvs.items():
            for name in fixture_names(sid):
                put(srv.root, name)
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            gate_listings(rt, asyncio.Barrier(len(IDS)))
            caplog.set_level(logging.INFO)
            caplog.clear()
            async with asyncio.timeout(20):
                summaries = await rt.poller.poll_once()

    assert [s.server_id for s in summaries] == IDS
    for s in summaries:
        n = len(fixture_names(s.server_id))
        assert (s.files_seen, s.new, s.imported, s.errors, s.error) == (n, n, n, 0, None)
    assert await rounds_by_server(pool) == {sid: stats_names(fixture_names(sid)) for sid in IDS}
    assert {(row[0], row[2], row[3]) for row in await ledger(pool)} == {
        (sid, "done", "poll") for sid in IDS
    }
    summary_lines = [r.getMessage() for r in caplog.records if r.name == "bot.ingest.poller"]
    assert len(summary_lines) == 1
    assert all(f"{sid}: " in summary_lines[0] for sid in IDS)
    ingest_lines = [r.getMessage() for r in caplog.records if r.name == "bot.importer"]
    assert ingest_lines and all(line.startswith("[") for line in ingest_lines)


async def test_broken_servers_do_not_stop_the_others(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    faults = {"na1": Faults(list_delay=5.0)}
    async with sftp_servers(tmp_path, IDS, faults) as srvs:
        for sid, srv in srvs.items():
            for name in fixture_names(sid):
                put(srv.root, name)
        srvs["eu1"].faults.permission_denied.add(EU1_R2)
        await srvs["eu2"].stop()
        async with ingest_runtime(
            pool, tmp_path, dict(srvs), clock, SSH_OPERATION_TIMEOUT="0.3"
        ) as rt:
            summaries = {s.server_id: s for s in await rt.poller.poll_once()}

    eu1, eu2, na1 = summaries["eu1"], summaries["eu2"], summaries["na1"]
    assert (eu1.files_seen, eu1.imported, eu1.errors, eu1.error) == (4, 3, 1, None)
    assert eu2.error is not None and "cannot connect" in eu2.error and eu2.errors == 1
    assert na1.error is not None and "timed out" in na1.error
    assert await rounds_by_server(pool) == {"eu1": [EU1_R1]}
    health = {
        r["id"]: r
        for r in await pool.fetch("SELECT id, last_seen, last_error FROM servers ORDER BY id")
    }
    assert health["eu1"]["last_seen"] is not None and EU1_R2 in health["eu1"]["last_error"]
    assert "cannot connect" in health["eu2"]["last_error"]
    assert "timed out" in health["na1"]["last_error"]
    assert rt.failover.get_status("eu2").last_poll_ok is False


async def test_failing_server_backs_off(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        await srvs["eu1"].stop()
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            rt.activity.set_voice_count("eu1", 10)  # active: 60 s cadence
            assert (await rt.poller.tick("eu1")).error is not None  # type: ignore[union-attr]
            clock.advance(60)
            assert await rt.poller.tick("eu1") is not None  # backoff 60 s: due again
            clock.advance(60)
            assert await rt.poller.tick("eu1") is None  # backoff now 120 s
            clock.advance(60)
            assert await rt.poller.tick("eu1") is not None


def test_oldest_first_orders_by_file_time_stats_before_endstats() -> None:
    names = [
        "eu1-2025-03-03-215401-etl_frostbite-round-2.txt",
        "eu1-2025-03-03-215401-etl_frostbite-round-2-endstats.txt",
        "eu1-2025-03-03-214223-etl_frostbite-round-1.txt",
        "eu1-2025-03-03-214223-etl_frostbite-round-1-endstats.txt",
    ]
    ordered = [f.name for f in oldest_first(RemoteFile(n, 1, 0.0) for n in names)]
    assert ordered == [names[2], names[3], names[0], names[1]]


async def test_r1_is_stored_before_its_r2_which_lands_paired(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    stored: list[ImportResult] = []
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        for name in (EU1_R2, EU1_R2_END, EU1_R1, EU1_R1_END):
            put(srvs["eu1"].root, name)
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            rt.pipeline.on_round_stored = stored.append
            await rt.poller.poll_once()
    rounds = [r for r in stored if r.kind == "stats"]
    assert [r.filename for r in rounds] == [EU1_R1, EU1_R2]
    assert rounds[1].status == "paired"


async def test_webhook_and_poller_at_once_store_the_file_once(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        put(srvs["eu1"].root, EU1_R1)
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            webhook, (summary,) = await asyncio.gather(
                rt.pipeline.process("eu1", EU1_R1, "webhook"), rt.poller.poll_once()
            )
    assert (webhook.outcome == "imported") + summary.imported == 1
    assert await pool.fetchval("SELECT count(*) FROM rounds") == 1
    assert [row[:3] for row in await ledger(pool)] == [("eu1", EU1_R1, "done")]


# -- restarts and shutdown -------------------------------------------------------------------


def three_matches(root: Path) -> list[str]:
    names = []
    for k in range(3):
        match = fresh_match("eu1", local(NOW - (k + 1) * 7200), seed=k)
        for name, data in match.items():
            put(root, name, data)
            names.append(name)
    return names


async def assert_all_stored_once(pool: asyncpg.Pool, names: list[str]) -> None:
    assert await pool.fetchval("SELECT count(*) FROM rounds") == len(stats_names(names))
    assert await pool.fetchval("SELECT count(*) FROM endstats") == len(names) - len(
        stats_names(names)
    )
    assert sorted(row[1] for row in await ledger(pool)) == sorted(names)
    assert {row[2] for row in await ledger(pool)} == {"done"}
    assert await pool.fetchval("SELECT count(*) FROM round_outbox") == len(stats_names(names))


async def test_restart_mid_cycle_loses_nothing_and_stores_nothing_twice(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    stored = Stored()
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        names = three_matches(srvs["eu1"].root)
        srvs["eu1"].faults.read_delay = 0.05
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as first:
            first.pipeline.on_round_stored = stored
            cycle = asyncio.create_task(first.poller.poll_once())
            await stored.wait_for(3)
            cycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cycle
        assert 3 <= len(stored) < len(names)
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as second:
            (summary,) = await second.poller.poll_once()
    assert summary.imported == len(names) - len(stored)
    await assert_all_stored_once(pool, names)


async def test_stop_drains_the_file_in_flight(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    stored = Stored()
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        names = three_matches(srvs["eu1"].root)
        srvs["eu1"].faults.read_delay = 0.05
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            rt.pipeline.on_round_stored = stored
            rt.poller.start()
            assert rt.poller.running
            await stored.wait_for(2)
            await rt.poller.stop(within=5)
            assert not rt.poller.running and rt.tracker.in_flight_count == 0
            rows = await ledger(pool)
            assert {row[2] for row in rows} == {"done"} and len(rows) == len(stored)
            await rt.poller.poll_once()
    await assert_all_stored_once(pool, names)


async def test_server_going_away_mid_cycle_leaves_the_rest_for_later(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        names = three_matches(srvs["eu1"].root)

        async def pull_the_plug(_result: ImportResult) -> None:
            await srvs["eu1"].stop()

        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            rt.pipeline.on_round_stored = pull_the_plug
            (summary,) = await rt.poller.poll_once()
    rows = await ledger(pool)
    assert summary.error is not None and summary.errors == 1
    assert [row[2] for row in rows].count("failed") == 1  # only the file that hit the outage
    assert len(rows) < len(names)  # the rest were left untouched for the next cycle


async def test_run_now_polls_at_once(pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock) -> None:
    arrived = asyncio.Event()
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            rt.pipeline.on_round_stored = lambda _r: arrived.set()
            rt.poller.start()
            await until(lambda: rt.schedule.last_polled("eu1") is not None)
            put(srvs["eu1"].root, EU1_R1)
            rt.poller.run_now("eu1")
            async with asyncio.timeout(10):
                await arrived.wait()
    assert [row[:3] for row in await ledger(pool)] == [("eu1", EU1_R1, "done")]


# -- failover wiring ---------------------------------------------------------------------


async def to_webhook_mode(rt: IngestRuntime, srv: SFTPTestServer, match: dict[str, bytes]):
    """Two webhook-announced files (R1, then its endstats) switch polling off."""
    for name, data in match.items():
        put(srv.root, name, data)
    r1, r1_end = sorted(n for n in match if "round-1" in n)[::-1]
    for name in (r1, r1_end):
        assert (await rt.pipeline.process("eu1", name, "webhook")).outcome == "imported"
    assert rt.failover.get("eu1").mode is FailoverMode.WEBHOOK


async def transitions(rt: IngestRuntime) -> list[tuple[str, str]]:
    await rt.flush()
    rows = await rt.pool.fetch("SELECT from_mode, to_mode, reason FROM failover_transitions")
    return [(r["from_mode"], r["to_mode"]) for r in rows]


async def test_safety_sweep_finds_an_unannounced_file_and_reenables_polling(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    match = fresh_match("eu1", local(NOW + 10))
    r2_files = sorted(n for n in match if "round-2" in n)
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        async with ingest_runtime(
            pool, tmp_path, dict(srvs), clock, SSH_GRACE_PERIOD_MINUTES="5"
        ) as rt:
            clock.advance(20)
            await to_webhook_mode(rt, srvs["eu1"], match)
            clock.advance(60)
            assert await rt.poller.tick("eu1") is None  # polling off, no sweep due yet
            clock.advance(1800)  # the R2 files (NOW+12 min) were never announced
            summary = await rt.poller.tick("eu1")
            assert summary is not None and summary.source == "sweep"
            assert summary.imported == 2
            assert rt.failover.get("eu1").polling_enabled
            assert await transitions(rt) == [("polling", "webhook"), ("webhook", "polling")]
    rows = {row[1]: row[3] for row in await ledger(pool)}
    assert [rows[n] for n in r2_files] == ["sweep", "sweep"]


async def test_heartbeat_timeout_reenables_polling(
    pool: asyncpg.Pool, tmp_path: Path, clock: FakeClock
) -> None:
    match = fresh_match("eu1", local(NOW + 10))
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        async with ingest_runtime(pool, tmp_path, dict(srvs), clock) as rt:
            clock.advance(20)
            await to_webhook_mode(rt, srvs["eu1"], match)
            rt.activity.set_voice_count("eu1", 6)
            assert await rt.poller.tick("eu1") is None  # active session starts: clock runs
            clock.advance(901)
            summary = await rt.poller.tick("eu1")
            assert summary is not None and summary.source == "poll"
            assert await transitions(rt) == [("polling", "webhook"), ("webhook", "polling")]
            reason = rt.failover.get_status("eu1").last_transition_reason
    assert reason.startswith("heartbeat timeout")


# -- the CLI verb ----------------------------------------------------------------------------


def servers_json(path: Path, srvs: dict[str, SFTPTestServer]) -> Path:
    entries = [
        {
            "server_id": sid,
            "ssh_host": "127.0.0.1",
            "ssh_port": srv.port,
            "ssh_user": "etl",
            "ssh_key_path": str(srv.client_key_path),
            "known_hosts": str(srv.known_hosts_path),
            "remote_stats_path": "/",
        }
        for sid, srv in srvs.items()
    ]
    path.write_text(json.dumps({"servers": entries}))
    return path


async def test_poll_once_verb_prints_a_line_per_server(
    db_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sftp_servers(tmp_path, ["eu1", "eu2"]) as srvs:
        for sid, srv in srvs.items():
            for name in fixture_names(sid):
                put(srv.root, name)
        env = {
            "DATABASE_URL": db_dsn,
            "SERVERS_CONFIG_FILE": str(servers_json(tmp_path / "servers.json", srvs)),
            "DATA_DIR": str(tmp_path / "data"),
            "STARTUP_LOOKBACK_HOURS": str(int(timedelta(days=3650).total_seconds() // 3600)),
        }
        settings = load_settings(env=env)
        parser = build_parser()
        assert await cmd_poll(parser.parse_args(["poll", "--once"]), settings) == 0
        first = capsys.readouterr().out.splitlines()
        assert (
            await cmd_poll(parser.parse_args(["poll", "--once", "--server", "eu2"]), settings) == 0
        )
        second = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in first] == ["eu1", "eu2"]
    assert "files    4  new   4  imported   4  errors  0" in first[0]
    assert "files    5  new   5  imported   5  errors  0" in first[1]
    assert len(second) == 1 and "new   0  imported   0" in second[0]


async def test_poll_verb_refuses_unknown_host_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sftp_servers(tmp_path, ["eu1"]) as srvs:
        path = servers_json(tmp_path / "servers.json", srvs)
        srvs["eu1"].known_hosts_path.write_text("")
        settings = load_settings(env={"SERVERS_CONFIG_FILE": str(path)})
        rc = await cmd_poll(build_parser().parse_args(["poll", "--once"]), settings)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: host key problems: server 'eu1': known_hosts file")
