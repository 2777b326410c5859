"""The Prometheus text encoder, the in-process registry and GET /metrics on a live API."""

from __future__ import annotations

import re
import time

import pytest

from bot.api.metrics import (
    LATENCY_BUCKETS,
    Counter,
    Family,
    Histogram,
    Metrics,
    encode,
    escape_label,
    failover_family,
    format_value,
)
from bot.ingest.failover import FailoverManager, FailoverMode, FailoverThresholds
from bot.ingest.poller import PollSummary
from tests.api.conftest import R1, R2, Api, StartApi

SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? \S+$'
)


def parse(text: str) -> dict[str, float]:
    """Sample line -> value; every line must be a comment or a valid sample."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    fam = Family("x_total", "counter", "help with \\ and\nnewline")
    fam.add(1, (("server", 'ev"il\n'),))
    text = encode([fam])
    assert text == (
        "# HELP x_total help with \\\\ and\\nnewline\n"
        "# TYPE x_total counter\n"
        'x_total{server="ev\\"il\\n"} 1\n'
    )
    parse(text)


def test_values() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(float("nan")) == "NaN"


def test_counter_and_histogram() -> None:
    c = Counter("c_total", "c", ("server", "outcome"))
    c.inc("eu1", "success")
    c.inc("eu1", "success")
    c.inc("eu2", "rejected", amount=3)
    assert c.value("eu1", "success") == 2 and c.value("na1", "success") == 0
    h = Histogram("h_seconds", "h", (0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 7.0):
        h.observe(v)
    values = parse(encode([c.family(), h.family()]))
    assert values['c_total{server="eu1",outcome="success"}'] == 2
    assert values['c_total{server="eu2",outcome="rejected"}'] == 3
    assert values['h_seconds_bucket{le="0.1"}'] == 2  # cumulative, le is inclusive
    assert values['h_seconds_bucket{le="1"}'] == 3
    assert values['h_seconds_bucket{le="+Inf"}'] == 4
    assert values["h_seconds_count"] == 4
    assert values["h_seconds_sum"] == pytest.approx(7.65)


def test_poll_notes_and_families() -> None:
    m = Metrics()
    m.note_poll(PollSummary("eu1", files_seen=3, new=1, imported=1))
    m.note_poll(PollSummary("eu1", error="connection refused"))
    m.note_poll(PollSummary("eu2", errors=1))
    m.note_ingest("eu1", "success", 0.02)
    m.note_ingest("", "unauthorized", None)
    values = parse(encode(m.families()))
    assert values['etl_poll_cycles_total{server="eu1"}'] == 2
    assert values['etl_poll_errors_total{server="eu1"}'] == 1
    assert values['etl_poll_errors_total{server="eu2"}'] == 1
    assert values['etl_api_ingests_total{server="",outcome="unauthorized"}'] == 1
    assert values["etl_api_ingest_duration_seconds_count"] == 1  # unauthenticated: no timing
    assert values["etl_uptime_seconds"] >= 0
    assert len(LATENCY_BUCKETS) >= 8


def test_live_failover_family() -> None:
    manager = FailoverManager(["eu1", "eu2"], FailoverThresholds(), enabled=True, clock=time.time)
    values = parse(encode([failover_family(manager.all_status())]))
    current = manager.get("eu1").mode
    assert values[f'etl_failover_mode{{server="eu1",mode="{current}"}}'] == 1
    others = [m for m in FailoverMode if m is not current]
    assert all(values[f'etl_failover_mode{{server="eu1",mode="{m}"}}'] == 0 for m in others)


async def scrape(api: Api) -> tuple[int, str, str]:
    async with api.session.get(api.url + "/metrics") as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def test_metrics_endpoint(api: Api) -> None:
    await api.upload("eu1", R1.name, R1.read_bytes())
    await api.upload("eu1", R1.name, R1.read_bytes())
    await api.upload("eu1", R2.name, b"garbage\n")
    await api.upload("eu2", R2.name, b"x", key="wrong")
    await api.pool.execute(
        """INSERT INTO failover_transitions (server_id, from_mode, to_mode, reason, at)
           VALUES ('eu1', 'polling', 'webhook', 'test', now())"""
    )
    status, content_type, text = await scrape(api)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    values = parse(text)
    assert values['etl_api_ingests_total{server="eu1",outcome="success"}'] == 1
    assert values['etl_api_ingests_total{server="eu1",outcome="duplicate"}'] == 1
    assert values['etl_api_ingests_total{server="eu1",outcome="rejected"}'] == 1
    assert values['etl_api_ingests_total{server="",outcome="unauthorized"}'] == 1
    assert values["etl_api_ingest_duration_seconds_count"] == 3
    assert values["etl_outbox_backlog"] == 1  # the stored round waits for the bot
    assert values['etl_processed_files{server="eu1",source="api",status="done"}'] == 1
    assert values['etl_processed_files{server="eu1",source="api",status="rejected"}'] == 1
    assert values['etl_server_files{server="eu1"}'] == 1
    assert 'etl_server_last_error_timestamp_seconds{server="eu1"}' in values
    assert values['etl_failover_mode{server="eu1",mode="webhook"}'] == 1  # last recorded
    assert values['etl_failover_mode{server="eu1",mode="polling"}'] == 0
    assert values["etl_database_up"] == 1
    assert text.count("# TYPE etl_failover_mode gauge") == 1


async def test_metrics_without_a_database(start_api: StartApi, db_dsn: str) -> None:
    import asyncpg

    own = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    async with start_api(api_pool=own) as api:
        await own.close()
        status, _, text = await scrape(api)
    values = parse(text)
    assert status == 200  # the process still reports what it knows
    assert values["etl_database_up"] == 0
    assert "etl_outbox_backlog" not in text
