"""The smart-failover state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import logging

import pytest

from bot.config import load_settings
from bot.ingest.failover import (
    DAY_S,
    RESET_REASON,
    STARTUP_REASON,
    FailoverMachine,
    FailoverManager,
    FailoverMode,
    FailoverThresholds,
    Transition,
)

T0 = 1_700_000_000.0
POLLING = FailoverMode.POLLING
WEBHOOK = FailoverMode.WEBHOOK
FORCED = FailoverMode.FORCED_POLLING


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(
    clock: FakeClock, thresholds: FailoverThresholds | None = None, **kwargs: object
) -> tuple[FailoverMachine, list[Transition]]:
    seen: list[Transition] = []
    machine = FailoverMachine("srv1", thresholds, clock=clock, on_transition=seen.append, **kwargs)
    return machine, seen


def to_webhook(machine: FailoverMachine) -> None:
    machine.record_webhook_success()
    machine.record_webhook_success()
    assert machine.mode is WEBHOOK


def test_starts_polling_with_defaults(clock: FakeClock) -> None:
    machine, seen = make(clock)
    st = machine.status()
    assert st.mode is POLLING
    assert st.polling_enabled is True
    assert st.smart_enabled is True
    assert st.state_since == T0
    assert st.last_transition_reason == STARTUP_REASON
    assert st.thresholds == FailoverThresholds(2, 1, 900.0, 1800.0, 120.0)
    assert st.transitions_24h == ()
    assert seen == []


def test_two_successes_switch_to_webhook(clock: FakeClock) -> None:
    machine, seen = make(clock)
    assert machine.record_webhook_success() is None
    assert machine.mode is POLLING
    clock.advance(30)
    record = machine.record_webhook_success()
    expected = Transition("srv1", POLLING, WEBHOOK, "2 consecutive webhook successes", T0 + 30)
    assert record == expected
    assert seen == [expected]
    assert machine.mode is WEBHOOK
    assert machine.polling_enabled is False
    assert machine.status().state_since == T0 + 30
    assert machine.record_webhook_success() is None  # already WEBHOOK: no second transition
    assert machine.status().consecutive_successes == 3
    assert len(seen) == 1


def test_one_failure_switches_back_to_polling(clock: FakeClock) -> None:
    machine, seen = make(clock)
    to_webhook(machine)
    clock.advance(100)
    record = machine.record_webhook_failure("download failed: timeout")
    assert record == Transition(
        "srv1", WEBHOOK, POLLING, "webhook failure: download failed: timeout", T0 + 100
    )
    assert seen[-1] == record
    assert machine.polling_enabled is True
    st = machine.status()
    assert st.consecutive_failures == 1
    assert st.consecutive_successes == 0
    assert st.last_webhook_failure_at == T0 + 100
    assert st.last_webhook_failure_reason == "download failed: timeout"


def test_failure_resets_successes_so_threshold_restarts(clock: FakeClock) -> None:
    machine, _ = make(clock)
    machine.record_webhook_success()
    machine.record_webhook_failure("parse error")
    machine.record_webhook_success()
    assert machine.mode is POLLING
    assert machine.status().consecutive_successes == 1
    machine.record_webhook_success()
    assert machine.mode is WEBHOOK


def test_success_resets_consecutive_failures(clock: FakeClock) -> None:
    machine, _ = make(clock, FailoverThresholds(failure_threshold=2))
    to_webhook(machine)
    machine.record_webhook_failure("store failed")
    assert machine.status().consecutive_failures == 1
    machine.record_webhook_success()
    assert machine.status().consecutive_failures == 0
    machine.record_webhook_failure("store failed")
    assert machine.mode is WEBHOOK  # only one failure in a row again


def test_configurable_thresholds_three_and_two(clock: FakeClock) -> None:
    machine, seen = make(clock, FailoverThresholds(success_threshold=3, failure_threshold=2))
    machine.record_webhook_success()
    machine.record_webhook_success()
    assert machine.mode is POLLING
    machine.record_webhook_success()
    assert machine.mode is WEBHOOK
    assert seen[-1].reason == "3 consecutive webhook successes"
    assert machine.record_webhook_failure("rate-limit drop") is None
    assert machine.mode is WEBHOOK
    record = machine.record_webhook_failure("rate-limit drop")
    assert record is not None
    assert record.reason == "2 consecutive failures: rate-limit drop"
    assert machine.mode is POLLING


def test_failure_in_polling_mode_stays_polling(clock: FakeClock) -> None:
    machine, seen = make(clock)
    assert machine.record_webhook_failure("download failed") is None
    assert machine.mode is POLLING
    assert seen == []


def test_unannounced_file_counts_as_failure(clock: FakeClock) -> None:
    machine, seen = make(clock)
    to_webhook(machine)
    clock.advance(500)
    record = machine.record_unannounced_file("2024-05-01-213000-supply-round-1.txt")
    reason = "unannounced file 2024-05-01-213000-supply-round-1.txt: no webhook within 120 s"
    assert record == Transition("srv1", WEBHOOK, POLLING, f"webhook failure: {reason}", T0 + 500)
    assert machine.status().last_webhook_failure_reason == reason
    assert seen[1:] == [record]


def test_unannounced_file_in_polling_mode_resets_successes(clock: FakeClock) -> None:
    machine, _ = make(clock)
    machine.record_webhook_success()
    machine.record_unannounced_file("a.txt")
    st = machine.status()
    assert (st.mode, st.consecutive_successes, st.consecutive_failures) == (POLLING, 0, 1)


def test_heartbeat_times_out_only_while_active_and_after_timeout(clock: FakeClock) -> None:
    machine, seen = make(clock)
    to_webhook(machine)  # last success at T0
    assert machine.check_heartbeat(active=True) is None  # session starts at T0
    clock.advance(899)
    assert machine.check_heartbeat(active=True) is None
    clock.advance(1)
    record = machine.check_heartbeat(active=True)
    assert record == Transition(
        "srv1",
        WEBHOOK,
        POLLING,
        "heartbeat timeout: no webhook success for 900 s during an active session",
        T0 + 900,
    )
    assert seen[-1] == record
    # Old successes do not count: one more success is not enough to go back.
    assert machine.status().consecutive_successes == 0
    machine.record_webhook_success()
    assert machine.mode is POLLING


def test_heartbeat_ignored_while_inactive_or_polling(clock: FakeClock) -> None:
    machine, _ = make(clock)
    machine.check_heartbeat(active=True)
    clock.advance(5000)
    assert machine.check_heartbeat(active=True) is None  # POLLING: nothing to fall back from
    to_webhook(machine)
    clock.advance(10_000)
    assert machine.check_heartbeat(active=False) is None
    assert machine.mode is WEBHOOK


def test_heartbeat_measures_silence_from_session_start(clock: FakeClock) -> None:
    machine, _ = make(clock)
    to_webhook(machine)
    clock.advance(8 * 3600)  # idle night, then players join
    assert machine.check_heartbeat(active=True) is None
    clock.advance(600)
    assert machine.check_heartbeat(active=True) is None
    clock.advance(300)
    record = machine.check_heartbeat(active=True)
    assert record is not None
    assert record.reason == (
        "heartbeat timeout: no webhook success for 900 s during an active session"
    )


def test_heartbeat_reset_by_success(clock: FakeClock) -> None:
    machine, _ = make(clock)
    to_webhook(machine)
    machine.check_heartbeat(active=True)
    clock.advance(800)
    machine.record_webhook_success()
    clock.advance(800)
    assert machine.check_heartbeat(active=True) is None
    assert machine.mode is WEBHOOK


def test_safety_sweep_due_timing(clock: FakeClock) -> None:
    machine, _ = make(clock)
    machine.record_poll_result(ok=True)  # last poll at T0
    assert machine.safety_sweep_due() is False  # polling mode: polling runs anyway
    clock.advance(60)
    to_webhook(machine)
    clock.advance(1739)
    assert machine.safety_sweep_due() is False
    clock.advance(1)  # 1800 s since the last poll
    assert machine.safety_sweep_due() is True
    machine.record_sweep()
    assert machine.safety_sweep_due() is False
    clock.advance(1800)
    assert machine.safety_sweep_due() is True


def test_safety_sweep_without_any_poll_counts_from_webhook_mode_start(clock: FakeClock) -> None:
    machine, _ = make(clock)
    clock.advance(5000)
    to_webhook(machine)
    clock.advance(1799)
    assert machine.safety_sweep_due() is False
    clock.advance(1)
    assert machine.safety_sweep_due() is True


def test_safety_sweep_zero_is_off(clock: FakeClock) -> None:
    machine, _ = make(clock, FailoverThresholds(safety_sweep_s=0))
    to_webhook(machine)
    clock.advance(DAY_S * 3)
    assert machine.safety_sweep_due() is False


def test_poll_result_is_status_only(clock: FakeClock) -> None:
    machine, seen = make(clock)
    to_webhook(machine)
    clock.advance(5)
    machine.record_poll_result(ok=False, error="connection refused")
    st = machine.status()
    assert (st.mode, st.last_poll_at, st.last_poll_ok, st.last_poll_error) == (
        WEBHOOK,
        T0 + 5,
        False,
        "connection refused",
    )
    machine.record_poll_result(ok=True, error="ignored")
    st = machine.status()
    assert (st.last_poll_ok, st.last_poll_error) == (True, None)
    assert len(seen) == 1


def test_smart_failover_disabled_stays_forced_polling(clock: FakeClock) -> None:
    machine, seen = make(clock, enabled=False)
    assert machine.mode is FORCED
    for _ in range(5):
        assert machine.record_webhook_success() is None
    assert machine.record_webhook_failure("x") is None
    assert machine.record_unannounced_file("f.txt") is None
    machine.check_heartbeat(active=True)
    clock.advance(DAY_S)
    assert machine.check_heartbeat(active=True) is None
    assert machine.safety_sweep_due() is False
    st = machine.status()
    assert (st.mode, st.polling_enabled, st.smart_enabled) == (FORCED, True, False)
    assert st.consecutive_failures == 2  # still counted, for the status display
    assert seen == []


def test_reset_returns_to_startup_state(clock: FakeClock) -> None:
    machine, seen = make(clock)
    to_webhook(machine)
    machine.record_webhook_success()
    clock.advance(42)
    record = machine.reset()
    assert record == Transition("srv1", WEBHOOK, POLLING, RESET_REASON, T0 + 42)
    assert seen[-1] == record
    st = machine.status()
    assert (st.mode, st.consecutive_successes, st.consecutive_failures) == (POLLING, 0, 0)
    assert st.last_transition_reason == RESET_REASON
    assert st.failovers_24h == 0  # an operator reset is not a failover


def test_reset_is_recorded_even_without_mode_change(clock: FakeClock) -> None:
    machine, seen = make(clock, enabled=False)
    record = machine.reset()
    assert record == Transition("srv1", FORCED, FORCED, RESET_REASON, T0)
    assert seen == [record]
    assert machine.mode is FORCED


def test_time_in_mode_and_failovers_over_24h(clock: FakeClock) -> None:
    machine, _ = make(clock)
    clock.advance(600)
    to_webhook(machine)  # POLLING 0..600
    clock.advance(3000)
    machine.record_webhook_failure("parse error")  # WEBHOOK 600..3600
    clock.advance(400)
    to_webhook(machine)  # POLLING 3600..4000
    clock.advance(1000)
    machine.check_heartbeat(active=True)
    clock.advance(900)
    machine.check_heartbeat(active=True)  # WEBHOOK 4000..5900
    clock.advance(100)  # POLLING 5900..6000
    st = machine.status()
    assert st.time_in_mode_24h == {POLLING: 1100.0, WEBHOOK: 4900.0, FORCED: 0.0}
    assert st.failovers_24h == 2
    assert [(t.from_mode, t.to_mode) for t in st.transitions_24h] == [
        (POLLING, WEBHOOK),
        (WEBHOOK, POLLING),
        (POLLING, WEBHOOK),
        (WEBHOOK, POLLING),
    ]
    assert st.last_transition_reason.startswith("heartbeat timeout")
    assert st.as_of == T0 + 6000


def test_pruning_beyond_24h_keeps_mode_at_horizon(clock: FakeClock) -> None:
    machine, _ = make(clock)
    clock.advance(1000)
    to_webhook(machine)  # at T0+1000
    clock.advance(1000)
    machine.record_webhook_failure("boom")  # at T0+2000
    clock.advance(1000)
    to_webhook(machine)  # at T0+3000, in WEBHOOK since
    clock.advance(DAY_S + 1500)  # now T0+DAY+4500, horizon T0+4500
    st = machine.status()
    assert st.transitions_24h == ()
    assert st.failovers_24h == 0
    assert st.time_in_mode_24h == {POLLING: 0.0, WEBHOOK: DAY_S, FORCED: 0.0}
    assert st.state_since == T0 + 3000
    machine.record_webhook_failure("late")  # at T0+DAY+4500
    clock.advance(100)  # horizon T0+4600: 24 h minus 100 s of WEBHOOK, then 100 s POLLING
    st = machine.status()
    assert len(st.transitions_24h) == 1
    assert st.failovers_24h == 1
    assert st.time_in_mode_24h == {POLLING: 100.0, WEBHOOK: DAY_S - 100.0, FORCED: 0.0}


def test_partial_window_after_first_start(clock: FakeClock) -> None:
    machine, _ = make(clock)
    clock.advance(3600)
    assert machine.status().time_in_mode_24h == {POLLING: 3600.0, WEBHOOK: 0.0, FORCED: 0.0}


def test_seed_history_feeds_statistics_but_not_mode(clock: FakeClock) -> None:
    machine, seen = make(clock)
    old = [
        Transition("srv1", POLLING, WEBHOOK, "2 consecutive webhook successes", T0 - 7200),
        Transition("srv1", WEBHOOK, POLLING, "webhook failure: x", T0 - 3600),
        Transition("srv1", POLLING, WEBHOOK, "2 consecutive webhook successes", T0 - 1800),
        Transition("srv1", WEBHOOK, POLLING, "webhook failure: too old", T0 - DAY_S - 10),
    ]
    machine.seed_history(old)
    clock.advance(600)
    st = machine.status()
    assert st.mode is POLLING  # start-up always polls, whatever was persisted
    assert st.last_transition_reason == STARTUP_REASON
    assert [t.at for t in st.transitions_24h] == [T0 - 7200, T0 - 3600, T0 - 1800]
    assert st.failovers_24h == 1
    # -DAY-10 .. -7200 polling (clipped to the window), -7200..-3600 webhook,
    # -3600..-1800 polling, -1800..0 webhook (until this start), 0..600 polling.
    window_start = T0 + 600 - DAY_S
    expected_polling = (T0 - 7200 - window_start) + 1800 + 600
    assert st.time_in_mode_24h == {POLLING: expected_polling, WEBHOOK: 5400.0, FORCED: 0.0}
    assert seen == []


def test_seed_history_rejects_other_server(clock: FakeClock) -> None:
    machine, _ = make(clock)
    bad = Transition("srv2", POLLING, WEBHOOK, "r", T0 - 10)
    with pytest.raises(ValueError, match="'srv2' seeded into 'srv1'"):
        machine.seed_history([bad])


def test_hook_failure_is_logged_not_raised(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: Transition) -> None:
        raise RuntimeError("db down")

    machine = FailoverMachine("srv1", clock=clock, on_transition=broken)
    with caplog.at_level(logging.INFO, logger="bot.ingest.failover"):
        machine.record_webhook_success()
        machine.record_webhook_success()
    assert machine.mode is WEBHOOK
    messages = [r.getMessage() for r in caplog.records]
    assert "failover srv1: polling -> webhook (2 consecutive webhook successes)" in messages
    assert "failover srv1: on_transition hook failed" in messages


def test_failover_logged_as_warning(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    machine, _ = make(clock)
    to_webhook(machine)
    with caplog.at_level(logging.INFO, logger="bot.ingest.failover"):
        machine.record_webhook_failure("boom")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "failover srv1: webhook -> polling (webhook failure: boom)"


def test_thresholds_from_settings() -> None:
    settings = load_settings(
        {"WEBHOOK_SUCCESS_THRESHOLD": "3", "FAILOVER_SAFETY_SWEEP_MINUTES": "0"}, dotenv_path=None
    )
    assert FailoverThresholds.from_settings(settings) == FailoverThresholds(3, 1, 900.0, 0.0)


def test_thresholds_validated() -> None:
    with pytest.raises(ValueError, match="success_threshold must be >= 1"):
        FailoverThresholds(success_threshold=0)
    with pytest.raises(ValueError, match="safety_sweep_s must be >= 0"):
        FailoverThresholds(safety_sweep_s=-1)


def test_manager_one_machine_per_server(clock: FakeClock) -> None:
    seen: list[Transition] = []
    manager = FailoverManager(
        ["b", "a"], FailoverThresholds(success_threshold=1), clock=clock, on_transition=seen.append
    )
    manager.get("a").record_webhook_success()
    assert manager.get_status("a").mode is WEBHOOK
    assert manager.get_status("b").mode is POLLING
    assert [s.server_id for s in manager.all_status()] == ["a", "b"]
    assert [t.server_id for t in seen] == ["a"]
    assert "a" in manager and "zzz" not in manager
    assert manager.server_ids == ("b", "a")
    with pytest.raises(KeyError, match="no failover state for server 'zzz'"):
        manager.get("zzz")


def test_manager_disabled_and_duplicates(clock: FakeClock) -> None:
    manager = FailoverManager(["a"], enabled=False, clock=clock)
    assert manager.get_status("a").mode is FORCED
    with pytest.raises(ValueError, match="duplicate server id 'a'"):
        FailoverManager(["a", "a"], clock=clock)


def test_manager_seed_history_distributes(clock: FakeClock) -> None:
    manager = FailoverManager(["a", "b"], clock=clock)
    skipped = manager.seed_history(
        [
            Transition("a", WEBHOOK, POLLING, "webhook failure: x", T0 - 60),
            Transition("gone", WEBHOOK, POLLING, "webhook failure: y", T0 - 60),
        ]
    )
    assert skipped == 1
    assert manager.get_status("a").failovers_24h == 1
    assert manager.get_status("b").failovers_24h == 0
