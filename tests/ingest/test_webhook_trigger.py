"""Pure parsing and authorisation of control-channel trigger messages."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.ingest.webhook_trigger import (
    FileTrigger,
    RateLimiter,
    ReadyTrigger,
    TriggerError,
    authorize,
    parse_trigger,
    resolve_ready,
)
from bot.registry import ServerConfig, ServerRegistry

EU1 = ServerConfig("eu1", "EU 1", True, ZoneInfo("Europe/Ljubljana"), None, (111,))
OFF = ServerConfig("off", "Off", False, ZoneInfo("UTC"), None, (333,))
REG = ServerRegistry([EU1, OFF])
R1 = "2025-03-03-214223-etl_frostbite-round-1.txt"


def ready_embed(map_name: str = "etl_frostbite", rnd: str = "1", end: str = "2025-03-03 21:42:20"):
    return [
        {
            "title": "STATS_READY",
            "fields": [
                {"name": "server_id", "value": "eu1"},
                {"name": "map", "value": map_name},
                {"name": "round", "value": rnd},
                {"name": "round_end", "value": end},
            ],
        }
    ]


def test_backticked_stats_and_endstats_names() -> None:
    assert parse_trigger(f"📊 `{R1}`", [], EU1) == FileTrigger((R1,))
    es = "2025-03-03-214222-etl_frostbite-round-1-endstats.txt"
    assert parse_trigger(f"🏆 `{es}`", [], EU1) == FileTrigger((es,))
    assert parse_trigger(f"📊 `eu1-{R1}`", [], EU1) == FileTrigger((f"eu1-{R1}",))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../etc/passwd", "not a plain file name"),
        (f"sub/{R1}", "not a plain file name"),
        (f"..\\{R1}", "not a plain file name"),
        ("2025-02-30-256199-supply-round-3.txt", "refused file name"),
        ("notes.log", "refused file name"),
        (f"eu2-{R1}", "prefixed 'eu2' but the webhook belongs to 'eu1'"),
    ],
)
def test_bad_names_are_refused_with_a_reason(name: str, why: str) -> None:
    with pytest.raises(TriggerError, match=why.replace("(", r"\(")):
        parse_trigger(f"📊 `{name}`", [], EU1)


def test_nul_and_overlong_names_are_refused() -> None:
    with pytest.raises(TriggerError, match="not a plain file name"):
        parse_trigger(f"`{R1[:10]}\x00{R1[10:]}`", [], EU1)
    with pytest.raises(TriggerError):
        parse_trigger("`" + "a" * 290 + "-round-1.txt`", [], EU1)
    with pytest.raises(TriggerError, match="too long"):
        parse_trigger("x" * 2001, [], EU1)


def test_stats_ready_embed() -> None:
    got = parse_trigger("STATS_READY", ready_embed(), EU1)
    assert got == ReadyTrigger("etl_frostbite", 1, datetime(2025, 3, 3, 21, 42, 20))


@pytest.mark.parametrize(
    ("embed", "why"),
    [
        (ready_embed(map_name="bad map"), "valid map"),
        (ready_embed(rnd="3"), "round 1 or 2"),
        (ready_embed(end="yesterday"), "round_end"),
    ],
)
def test_broken_stats_ready_is_refused(embed: list, why: str) -> None:
    with pytest.raises(TriggerError, match=why):
        parse_trigger("STATS_READY", embed, EU1)


def test_plain_chatter_is_not_a_trigger() -> None:
    with pytest.raises(TriggerError, match="no file name"):
        parse_trigger("hello there", [], EU1)


def test_resolve_ready_picks_the_nearest_file_of_that_map_and_round() -> None:
    trigger = ReadyTrigger("ETL_Frostbite", 1, datetime(2025, 3, 3, 21, 42, 20))
    names = [
        "2025-03-03-204223-etl_frostbite-round-1.txt",  # an hour earlier: same map, too far
        "2025-03-03-214222-etl_frostbite-round-1-endstats.txt",  # endstats: not this
        "2025-03-03-214225-etl_frostbite-round-2.txt",  # wrong round
        "2025-03-03-214224-supply-round-1.txt",  # wrong map
        R1,
        "junk.txt",
    ]
    assert resolve_ready(trigger, names) == R1
    assert resolve_ready(trigger, names[:1]) is None


def test_authorize_by_whitelisted_webhook_id_only() -> None:
    ok = authorize(REG, webhook_id=111, author_name="ET Stats", required_username=None)
    assert ok.server is EU1 and ok.reason == ""
    assert authorize(REG, webhook_id=None, author_name="x", required_username=None).server is None
    unknown = authorize(REG, webhook_id=999, author_name="x", required_username=None)
    assert unknown.server is None and "999" in unknown.reason
    disabled = authorize(REG, webhook_id=333, author_name="x", required_username=None)
    assert disabled.server is None and "disabled" in disabled.reason
    named = authorize(REG, webhook_id=111, author_name="Imposter", required_username="ET Stats")
    assert named.server is None and "trigger name" in named.reason


def test_rate_limiter_sliding_window() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=60, clock=lambda: now[0])
    assert [limiter.allow(1), limiter.allow(1), limiter.allow(1)] == [True, True, False]
    assert limiter.allow(2)  # per webhook
    now[0] = 59.9
    assert not limiter.allow(1)
    now[0] = 60.0
    assert limiter.allow(1)
