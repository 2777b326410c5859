"""The alert state machines with an injected clock: one alert per event, no repeats while the
condition lasts, recovery re-arms."""

from __future__ import annotations

from bot.ingest.alert_rules import Alert, AlertKind, AlertRules, Observation, alert_text
from bot.ingest.failover import (
    RESET_REASON,
    FailoverMachine,
    FailoverMode,
    FailoverThresholds,
    Transition,
)
from bot.ingest.health import Health, HealthVerdict

HOUR = 3600.0
WEBHOOK, POLLING, FORCED = FailoverMode.WEBHOOK, FailoverMode.POLLING, FailoverMode.FORCED_POLLING


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def obs(
    state: Health = Health.HEALTHY,
    mode: FailoverMode = WEBHOOK,
    active: bool = False,
    server_id: str = "eu1",
) -> Observation:
    return Observation(server_id, HealthVerdict(state, f"because {state}"), mode, active)


def kinds(alerts: list[Alert]) -> list[AlertKind]:
    return [a.kind for a in alerts]


def test_down_is_alerted_once_and_recovery_rearms_it() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    assert rules.observe(obs(Health.HEALTHY)) == []
    (down,) = rules.observe(obs(Health.DOWN))
    assert (down.kind, down.detail, down.at, down.server_id) == (
        AlertKind.DOWN,
        "because down",
        clock.now,
        "eu1",
    )
    for _ in range(5):
        clock.now += 60
        assert rules.observe(obs(Health.DOWN)) == []
    assert kinds(rules.observe(obs(Health.HEALTHY))) == [AlertKind.RECOVERED]
    assert rules.observe(obs(Health.HEALTHY)) == []
    assert kinds(rules.observe(obs(Health.DOWN))) == [AlertKind.DOWN]


def test_session_ending_while_down_keeps_the_alert_until_contact() -> None:
    rules = AlertRules(clock=Clock())
    rules.observe(obs(Health.DOWN))
    assert rules.observe(obs(Health.IDLE)) == []
    assert rules.observe(obs(Health.DOWN)) == []  # the same outage: no repeat
    assert kinds(rules.observe(obs(Health.DEGRADED))) == [AlertKind.RECOVERED]


def test_disabling_a_down_server_clears_it_silently() -> None:
    rules = AlertRules(clock=Clock())
    rules.observe(obs(Health.DOWN))
    assert rules.observe(obs(Health.DISABLED)) == []
    assert rules.observe(obs(Health.HEALTHY)) == []


def test_servers_are_independent() -> None:
    rules = AlertRules(clock=Clock())
    assert kinds(rules.observe(obs(Health.DOWN, server_id="eu1"))) == [AlertKind.DOWN]
    assert kinds(rules.observe(obs(Health.DOWN, server_id="eu2"))) == [AlertKind.DOWN]
    assert rules.observe(obs(Health.DOWN, server_id="eu1")) == []


def test_failover_transitions() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    startup = Transition("eu1", POLLING, WEBHOOK, "2 consecutive webhook successes", clock.now)
    assert rules.on_transition(startup) == []
    fail = Transition("eu1", WEBHOOK, POLLING, "webhook failure: parse error", clock.now)
    (alert,) = rules.on_transition(fail)
    assert (alert.kind, alert.detail) == (AlertKind.FAILOVER, "webhook failure: parse error")
    assert rules.observe(obs(mode=POLLING)) == []
    (back,) = rules.on_transition(startup)
    assert back.kind is AlertKind.WEBHOOK_BACK
    assert rules.observe(obs(mode=WEBHOOK)) == []  # the loop does not say it twice


def test_operator_reset_is_not_a_failover() -> None:
    rules = AlertRules(clock=Clock())
    assert rules.on_transition(Transition("eu1", WEBHOOK, POLLING, RESET_REASON, 0.0)) == []
    assert rules.on_transition(Transition("eu1", POLLING, POLLING, RESET_REASON, 0.0)) == []
    assert rules.on_transition(Transition("eu1", POLLING, WEBHOOK, "2 successes", 0.0)) == []


def test_webhook_back_is_noticed_by_the_loop_when_a_transition_was_missed() -> None:
    rules = AlertRules(clock=Clock())
    rules.on_transition(Transition("eu1", WEBHOOK, POLLING, "heartbeat timeout", 0.0))
    assert kinds(rules.observe(obs(mode=WEBHOOK))) == [AlertKind.WEBHOOK_BACK]


def test_long_backup_during_a_session_alerts_once() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    assert rules.observe(obs(mode=POLLING, active=True)) == []
    clock.now += HOUR - 1
    assert rules.observe(obs(mode=POLLING, active=True)) == []
    clock.now += 1
    (alert,) = rules.observe(obs(mode=POLLING, active=True))
    assert alert.kind is AlertKind.LONG_BACKUP
    assert alert.detail == "SSH polling has been the only path for 1 h 00 min of an active session"
    clock.now += HOUR
    assert rules.observe(obs(mode=POLLING, active=True)) == []
    assert kinds(rules.observe(obs(mode=WEBHOOK, active=True))) == [AlertKind.WEBHOOK_BACK]


def test_long_backup_counts_only_continuous_activity() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    rules.observe(obs(mode=POLLING, active=True))
    clock.now += 0.75 * HOUR
    rules.observe(obs(mode=POLLING, active=False))  # the session ended
    clock.now += 0.25 * HOUR
    assert rules.observe(obs(mode=POLLING, active=True)) == []  # a new one begins
    clock.now += 0.75 * HOUR
    assert rules.observe(obs(mode=POLLING, active=True)) == []


def test_forced_polling_never_alerts_as_a_backup() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    rules.observe(obs(mode=FORCED, active=True))
    clock.now += 5 * HOUR
    assert rules.observe(obs(mode=FORCED, active=True)) == []


def test_a_failover_restarts_the_backup_hour() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock, backup_limit_s=HOUR)
    rules.observe(obs(mode=POLLING, active=True))
    clock.now += 0.9 * HOUR
    rules.on_transition(Transition("eu1", WEBHOOK, POLLING, "heartbeat timeout", clock.now))
    rules.observe(obs(mode=POLLING, active=True))
    clock.now += 0.5 * HOUR
    assert rules.observe(obs(mode=POLLING, active=True)) == []
    clock.now += 0.5 * HOUR
    assert kinds(rules.observe(obs(mode=POLLING, active=True))) == [AlertKind.LONG_BACKUP]


def test_fed_by_a_real_failover_machine() -> None:
    clock = Clock()
    rules = AlertRules(clock=clock)
    alerts: list[Alert] = []
    machine = FailoverMachine(
        "eu1",
        FailoverThresholds(),
        clock=clock,
        on_transition=lambda t: alerts.extend(rules.on_transition(t)),
    )
    machine.record_webhook_success()
    machine.record_webhook_success()
    clock.now += 1000
    machine.check_heartbeat(True)
    clock.now += 901
    machine.check_heartbeat(True)
    machine.record_webhook_success()
    machine.record_webhook_success()
    assert kinds(alerts) == [AlertKind.FAILOVER, AlertKind.WEBHOOK_BACK]
    assert alerts[0].detail.startswith("heartbeat timeout: no webhook success for 901 s")


def test_alert_texts() -> None:
    def text(kind: AlertKind, detail: str = "why") -> str:
        return alert_text(Alert("eu1", kind, detail, 0.0), "EU 1")

    assert text(AlertKind.DOWN) == "🔴 **EU 1** (`eu1`) is down: why."
    assert text(AlertKind.RECOVERED) == "🟢 **EU 1** (`eu1`) is back: why."
    assert text(AlertKind.FAILOVER).endswith("SSH polling is now the backup path. Reason: why")
    assert "probably dead" in text(AlertKind.LONG_BACKUP)
    assert text(AlertKind.WEBHOOK_BACK).endswith(
        "the webhook works again and is primary; SSH polling is off."
    )
