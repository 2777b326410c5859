"""Poll cadence: activity, idle interval, dead hours in each server's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import load_settings
from bot.ingest.schedule import (
    ActivityTracker,
    DeadHours,
    PollCadence,
    PollSchedule,
    in_dead_hours,
    next_poll_delay,
    seconds_until_dead_hours_end,
)
from bot.registry import ServerConfig, SSHTarget

LJUBLJANA = ZoneInfo("Europe/Ljubljana")
NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # 14:00 Ljubljana, 08:00 New York


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def server(
    server_id: str = "eu", tz: ZoneInfo = LJUBLJANA, *, ssh: bool = True, enabled: bool = True
) -> ServerConfig:
    target = SSHTarget("h", 22, "et", Path("/k"), Path("/kh"), "/stats") if ssh else None
    return ServerConfig(server_id, server_id.upper(), enabled, tz, target, voice_channel_ids=(1,))


# -- DeadHours ---------------------------------------------------------------------------------


def test_dead_hours_plain_window() -> None:
    dead = DeadHours(2, 8)
    assert [h for h in range(24) if dead.contains(h)] == [2, 3, 4, 5, 6, 7]


def test_dead_hours_wrap_around_midnight() -> None:
    dead = DeadHours(22, 6)
    assert [h for h in range(24) if dead.contains(h)] == [0, 1, 2, 3, 4, 5, 22, 23]


def test_dead_hours_empty_never() -> None:
    dead = DeadHours(5, 5)
    assert dead.empty is True
    assert [h for h in range(24) if dead.contains(h)] == []
    assert in_dead_hours(T0, LJUBLJANA, dead) is False
    assert in_dead_hours(T0, LJUBLJANA, None) is False


def test_dead_hours_validated() -> None:
    with pytest.raises(ValueError, match="hour 24 is not in 0-23"):
        DeadHours(0, 24)


# -- activity ----------------------------------------------------------------------------------


def test_active_by_file_within_grace() -> None:
    tracker = ActivityTracker()
    assert tracker.is_active("eu", T0) is False
    tracker.note_file("eu", T0)
    assert tracker.is_active("eu", T0 + 1800) is True
    assert tracker.is_active("eu", T0 + 1801) is False
    assert tracker.is_active("eu", T0 + 100, grace_s=60) is False
    assert tracker.is_active("us", T0) is False  # per server


def test_note_file_keeps_latest() -> None:
    tracker = ActivityTracker()
    tracker.note_file("eu", T0 + 50)
    tracker.note_file("eu", T0)  # a late poll of an older file
    assert tracker.last_file_at("eu") == T0 + 50


def test_active_by_voice_count() -> None:
    tracker = ActivityTracker()
    tracker.set_voice_count("eu", 3)
    assert tracker.is_active("eu", T0) is False
    tracker.set_voice_count("eu", 4)
    assert tracker.is_active("eu", T0) is True
    assert tracker.is_active("eu", T0, voice_min_players=6) is False
    tracker.set_voice_count("eu", -2)
    assert tracker.voice_count("eu") == 0


# -- dead hours in the server's own time zone --------------------------------------------------


def test_same_instant_different_zones_on_dst_start_date() -> None:
    # 2024-03-31 01:30 UTC: Ljubljana switched to CEST at 01:00 UTC, so it is 03:30 there;
    # New York (EDT since 10 March) is at 21:30 on the 30th.
    now = utc(2024, 3, 31, 1, 30)
    dead = DeadHours(2, 8)
    assert in_dead_hours(now, LJUBLJANA, dead) is True
    assert in_dead_hours(now, NEW_YORK, dead) is False
    # Ends at 08:00 CEST = 06:00 UTC, 4.5 h away (a naive CET computation would say 5.5 h).
    assert seconds_until_dead_hours_end(now, LJUBLJANA, dead) == 4.5 * 3600
    assert seconds_until_dead_hours_end(now, NEW_YORK, dead) == 0.0


def test_same_instant_new_york_dead_ljubljana_not() -> None:
    now = utc(2024, 6, 1, 7, 15)  # 03:15 New York, 09:15 Ljubljana
    dead = DeadHours(2, 8)
    assert in_dead_hours(now, NEW_YORK, dead) is True
    assert in_dead_hours(now, LJUBLJANA, dead) is False
    assert seconds_until_dead_hours_end(now, NEW_YORK, dead) == 4.75 * 3600


def test_dead_hours_end_across_fall_back() -> None:
    # 2024-11-03: New York repeats 01:00-02:00. 00:30 EDT = 04:30 UTC; 02:00 EST = 07:00 UTC.
    now = utc(2024, 11, 3, 4, 30)
    assert seconds_until_dead_hours_end(now, NEW_YORK, DeadHours(0, 2)) == 2.5 * 3600


def test_wrap_around_dead_hours_end_next_morning() -> None:
    now = utc(2024, 6, 1, 21, 10)  # 23:10 Ljubljana (CEST)
    dead = DeadHours(22, 6)
    assert in_dead_hours(now, LJUBLJANA, dead) is True
    # 06:00 CEST on 2 June = 04:00 UTC
    assert seconds_until_dead_hours_end(now, LJUBLJANA, dead) == utc(2024, 6, 2, 4) - now


# -- next_poll_delay ---------------------------------------------------------------------------


def test_next_poll_delay_active_idle_and_unpollable() -> None:
    tracker = ActivityTracker()
    cadence = PollCadence()
    eu = server()
    assert next_poll_delay(eu, T0, tracker, cadence) == 600.0
    tracker.note_file("eu", T0 - 60)
    assert next_poll_delay(eu, T0, tracker, cadence) == 60.0
    assert next_poll_delay(eu, T0 + 1800, tracker, cadence) == 600.0
    tracker.set_voice_count("eu", 5)
    assert next_poll_delay(eu, T0 + 1800, tracker, cadence) == 60.0
    assert next_poll_delay(server(ssh=False), T0, tracker, cadence) is None
    assert next_poll_delay(server(enabled=False), T0, tracker, cadence) is None


def test_next_poll_delay_in_dead_hours_is_time_to_end() -> None:
    tracker = ActivityTracker()
    tracker.set_voice_count("eu", 10)  # even a busy server is not polled in dead hours
    cadence = PollCadence(dead_hours=DeadHours(2, 8))
    now = utc(2024, 6, 1, 3, 0)  # 05:00 Ljubljana
    assert next_poll_delay(server(), now, tracker, cadence) == 3 * 3600
    # same instant, 23:00 in New York: normal cadence
    assert next_poll_delay(server("us", NEW_YORK), now, tracker, cadence) == 600.0


def test_cadence_from_settings() -> None:
    settings = load_settings(
        {"DEAD_HOURS": "22-06", "SSH_GRACE_PERIOD_MINUTES": "10", "SSH_IDLE_INTERVAL": "300"},
        dotenv_path=None,
    )
    assert PollCadence.from_settings(settings) == PollCadence(
        active_interval_s=60.0,
        idle_interval_s=300.0,
        grace_s=600.0,
        voice_min_players=4,
        dead_hours=DeadHours(22, 6),
    )


def test_cadence_validated() -> None:
    with pytest.raises(ValueError, match="voice_min_players must be >= 1, got 0"):
        PollCadence(voice_min_players=0)


# -- PollSchedule ------------------------------------------------------------------------------


def test_schedule_idle_cadence() -> None:
    clock = FakeClock()
    schedule = PollSchedule([server()], clock=clock)
    assert schedule.due("eu") is True  # never polled: at once
    schedule.mark_polled("eu")
    assert schedule.last_polled("eu") == T0
    assert schedule.due("eu") is False
    clock.advance(599)
    assert schedule.seconds_until_due("eu") == 1.0
    clock.advance(1)
    assert schedule.due("eu") is True


def test_schedule_speeds_up_when_session_starts() -> None:
    clock = FakeClock()
    schedule = PollSchedule([server()], clock=clock)
    schedule.mark_polled("eu")
    clock.advance(30)
    assert schedule.seconds_until_due("eu") == 570.0
    schedule.tracker.set_voice_count("eu", 4)
    assert schedule.seconds_until_due("eu") == 30.0
    clock.advance(30)
    assert schedule.due("eu") is True


def test_schedule_dead_hours_then_poll_at_once() -> None:
    start = utc(2024, 6, 1, 0, 30)  # 02:30 Ljubljana
    clock = FakeClock(start)
    cadence = PollCadence(dead_hours=DeadHours(2, 8))
    schedule = PollSchedule([server(), server("us", NEW_YORK)], cadence, clock=clock)
    schedule.mark_polled("eu", start - 3600)
    assert schedule.due("eu") is False
    assert schedule.seconds_until_due("eu") == 5.5 * 3600
    assert schedule.due("us") is True  # 20:30 in New York
    clock.now = utc(2024, 6, 1, 6, 0)  # 08:00 Ljubljana: dead hours over
    assert schedule.due("eu") is True


def test_schedule_push_only_server_never_due() -> None:
    schedule = PollSchedule([server(ssh=False)], clock=FakeClock())
    assert schedule.seconds_until_due("eu") is None
    assert schedule.due("eu") is False


def test_schedule_unknown_server() -> None:
    schedule = PollSchedule([server()], clock=FakeClock())
    with pytest.raises(KeyError, match="no poll schedule for server 'nope'"):
        schedule.due("nope")
    with pytest.raises(KeyError):
        schedule.mark_polled("nope")
