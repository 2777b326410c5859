"""The health rule: plain values in, one state and a reason out."""

from __future__ import annotations

import pytest

from bot.ingest.health import (
    ActivityWatch,
    Health,
    HealthInput,
    HealthRules,
    fmt_span,
    latest,
    server_health,
)

NOW = 1_750_000_000.0
MIN = 60.0


def verdict(**kw: object) -> tuple[Health, str]:
    facts = HealthInput(**{"enabled": True, "active": False, "last_contact": None, **kw})
    v = server_health(facts, NOW)
    return v.state, v.reason


def test_disabled_wins_over_everything() -> None:
    assert verdict(enabled=False, active=True) == (Health.DISABLED, "disabled in the server list")


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(5, Health.HEALTHY), (14.9, Health.HEALTHY), (15, Health.DOWN), (120, Health.DOWN)],
)
def test_active_server_is_down_after_15_minutes_of_silence(
    minutes: float, expected: Health
) -> None:
    state, _ = verdict(active=True, last_contact=NOW - minutes * MIN)
    assert state is expected


def test_down_reason_names_the_silence() -> None:
    assert verdict(active=True, last_contact=NOW - 20 * MIN) == (
        Health.DOWN,
        "last contact 20 min ago during an active session",
    )
    assert verdict(active=True) == (Health.DOWN, "no contact yet during an active session")


def test_silence_counts_from_the_session_start() -> None:
    # The voice channel filled up 5 min ago after an idle afternoon: give the server time.
    state, reason = verdict(active=True, last_contact=NOW - 4 * 3600, active_since=NOW - 5 * MIN)
    assert (state, reason) == (Health.HEALTHY, "session starting; last contact 4 h 00 min ago")
    state, _ = verdict(active=True, last_contact=NOW - 4 * 3600, active_since=NOW - 15 * MIN)
    assert state is Health.DOWN
    state, _ = verdict(active=True, active_since=NOW - 16 * MIN)
    assert state is Health.DOWN


def test_recent_errors_with_contact_are_degraded() -> None:
    state, reason = verdict(
        active=True,
        last_contact=NOW - 1 * MIN,
        last_error_at=NOW - 10 * MIN,
        last_error="listing failed: timed out",
    )
    assert state is Health.DEGRADED
    assert reason == "listing failed: timed out (10 min ago); last contact 1 min ago"


def test_old_errors_are_forgotten_after_30_minutes() -> None:
    state, _ = verdict(last_contact=NOW - 2 * MIN, last_error_at=NOW - 31 * MIN, last_error="x")
    assert state is Health.HEALTHY


def test_down_beats_degraded() -> None:
    state, _ = verdict(active=True, last_contact=NOW - 40 * MIN, last_error_at=NOW - MIN)
    assert state is Health.DOWN


def test_idle_servers_are_healthy_with_recent_contact_else_idle() -> None:
    assert verdict(last_contact=NOW - 29 * MIN) == (Health.HEALTHY, "last contact 29 min ago")
    assert verdict(last_contact=NOW - 3 * 86400) == (
        Health.IDLE,
        "no session; last contact 3 d 0 h ago",
    )
    assert verdict() == (Health.IDLE, "no session; never in contact")


def test_rules_are_configurable() -> None:
    rules = HealthRules(down_after_s=5 * MIN, healthy_within_s=10 * MIN, error_window_s=MIN)
    facts = HealthInput(enabled=True, active=True, last_contact=NOW - 6 * MIN)
    assert server_health(facts, NOW, rules).state is Health.DOWN
    idle = HealthInput(enabled=True, active=False, last_contact=NOW - 11 * MIN)
    assert server_health(idle, NOW, rules).state is Health.IDLE


def test_helpers() -> None:
    assert latest([None, 3.0, 7.0, None]) == 7.0
    assert latest([None]) is None
    assert [fmt_span(s) for s in (-5, 59, 60, 3599, 3600, 3 * 3600 + 5 * 60, 90000)] == [
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h 00 min",
        "3 h 05 min",
        "1 d 1 h",
    ]


def test_activity_watch_spans() -> None:
    watch = ActivityWatch()
    assert watch.observe("eu1", False, 10.0) is None
    assert watch.observe("eu1", True, 20.0) == 20.0
    assert watch.observe("eu1", True, 80.0) == 20.0
    assert watch.since("eu1") == 20.0 and watch.since("eu2") is None
    assert watch.observe("eu1", False, 90.0) is None
    assert watch.observe("eu1", True, 100.0) == 100.0
