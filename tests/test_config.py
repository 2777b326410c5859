"""bot.config: defaults, parsing, validation messages, secrets, .env loading."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from bot.config import ConfigError, DeadHours, Settings, load_settings


def _problems(env: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def _one_problem(env: dict[str, str]) -> str:
    problems = _problems(env)
    assert len(problems) == 1, problems
    return problems[0]


# ---- defaults ---------------------------------------------------------------------------


def test_defaults_from_empty_environment() -> None:
    s = load_settings({})
    assert s.database_url is None
    assert s.postgres_port == 5432
    assert s.postgres_ssl_mode == "disable"
    assert (s.postgres_min_pool, s.postgres_max_pool) == (1, 10)
    assert s.data_dir == Path("data")
    assert s.servers_config_file == Path("servers.json")
    assert s.servers_config_file_explicit is False
    assert s.default_timezone == "Europe/Ljubljana"
    assert s.ssh_port == 22
    assert s.ssh_known_hosts == Path.home() / ".ssh" / "known_hosts"
    assert s.ssh_insecure_skip_host_key is False
    assert (s.round_match_window_minutes, s.session_gap_minutes) == (45, 60)
    assert (s.max_import_attempts, s.startup_lookback_hours) == (5, 168)
    assert s.ssh_max_concurrency_per_host == 4
    assert (s.ssh_connect_timeout, s.ssh_operation_timeout) == (15.0, 30.0)
    assert (s.ssh_active_interval, s.ssh_idle_interval) == (60, 600)
    assert (s.ssh_grace_period_minutes, s.voice_active_min_players) == (30, 4)
    assert s.dead_hours == DeadHours(2, 11)
    assert s.control_channel_id is None
    assert (s.webhook_rate_limit, s.webhook_rate_window) == (5, 60)
    assert s.smart_failover_enabled is True
    assert (s.webhook_success_threshold, s.webhook_failure_threshold) == (2, 1)
    assert (s.webhook_heartbeat_timeout, s.failover_safety_sweep_minutes) == (900, 30)
    assert s.discord_token is None
    assert s.command_prefix == "!"
    assert s.admin_user_ids == () and s.admin_role_ids == ()
    assert s.round_autopost_enabled is True
    assert s.posts_per_minute_per_server == 5
    assert (s.api_enabled, s.api_host, s.api_port) == (False, "127.0.0.1", 8080)
    assert s.api_max_body_bytes == 1_048_576
    assert (s.api_rate_limit_per_server, s.api_rate_limit_global) == (10, 100)
    assert (s.log_level, s.log_file) == ("INFO", None)


def test_settings_constructor_defaults_match_loader() -> None:
    assert Settings() == load_settings({})


def test_every_env_field_is_read() -> None:
    env = {
        "POSTGRES_PORT": "6543",
        "SSH_CONNECT_TIMEOUT": "2.5",
        "STATS_CHANNEL_ID": "1187000000000000001",
        "LOG_FILE": "~/bot.log",
        "API_HOST": "  0.0.0.0  ",
        "COMMAND_PREFIX": "?",
        "WEBHOOK_TRIGGER_USERNAME": "ETL Notifier",
        "SERVERS_CONFIG_FILE": "/etc/etl/servers.json",
    }
    s = load_settings(env)
    assert s.postgres_port == 6543
    assert s.ssh_connect_timeout == 2.5
    assert s.stats_channel_id == 1187000000000000001
    assert s.log_file == Path.home() / "bot.log"
    assert s.api_host == "0.0.0.0"
    assert s.command_prefix == "?"
    assert s.webhook_trigger_username == "ETL Notifier"
    assert s.servers_config_file == Path("/etc/etl/servers.json")
    assert s.servers_config_file_explicit is True


def test_empty_value_counts_as_unset() -> None:
    s = load_settings({"POSTGRES_PORT": "", "STATS_CHANNEL_ID": "  ", "LOG_LEVEL": ""})
    assert (s.postgres_port, s.stats_channel_id, s.log_level) == (5432, None, "INFO")


def test_settings_is_frozen() -> None:
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.api_port = 1  # type: ignore[misc]


# ---- bad values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "SSH_ACTIVE_INTERVAL",
            "abc",
            "SSH_ACTIVE_INTERVAL must be a whole number of seconds >= 5, got 'abc'",
        ),
        ("SSH_ACTIVE_INTERVAL", "4", "SSH_ACTIVE_INTERVAL must be a whole number of seconds >= 5"),
        ("POSTGRES_PORT", "70000", "POSTGRES_PORT must be a port number 1-65535, got '70000'"),
        ("API_PORT", "0", "API_PORT must be a port number 1-65535, got '0'"),
        ("SSH_PORT", "22.5", "SSH_PORT must be a port number 1-65535, got '22.5'"),
        ("POSTGRES_MIN_POOL", "0", "POSTGRES_MIN_POOL must be a whole number >= 1, got '0'"),
        ("WEBHOOK_SUCCESS_THRESHOLD", "-1", "WEBHOOK_SUCCESS_THRESHOLD must be a whole number"),
        ("SESSION_GAP_MINUTES", "0", "SESSION_GAP_MINUTES must be a whole number of minutes >= 1"),
        ("SSH_CONNECT_TIMEOUT", "0", "SSH_CONNECT_TIMEOUT must be a number of seconds > 0"),
        ("SSH_OPERATION_TIMEOUT", "nan", "SSH_OPERATION_TIMEOUT must be a number of seconds > 0"),
        ("API_ENABLED", "maybe", "API_ENABLED must be a boolean: true/false, 1/0, yes/no"),
        ("POSTGRES_SSL_MODE", "prefer", "POSTGRES_SSL_MODE must be one of disable, require, "),
        ("LOG_LEVEL", "TRACE", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "DEFAULT_TIMEZONE must be an IANA time zone name"),
        ("STATS_CHANNEL_ID", "#general", "STATS_CHANNEL_ID must be a Discord id"),
        ("ALERT_ROLE_ID", "0", "ALERT_ROLE_ID must be a Discord id (a positive whole number)"),
        ("ADMIN_ROLE_IDS", "12,abc", "ADMIN_ROLE_IDS must be a comma-separated list of Discord"),
        ("DEAD_HOURS", "2am-11am", "DEAD_HOURS must be HH-HH with two different hours 00-23"),
        ("DEAD_HOURS", "24-06", "DEAD_HOURS must be HH-HH"),
        ("DEAD_HOURS", "05-05", "DEAD_HOURS must be HH-HH"),
        ("DATABASE_URL", "mysql://u@h/db", "DATABASE_URL must be a postgresql:// URL"),
    ],
)
def test_bad_value_message_names_variable(name: str, raw: str, message: str) -> None:
    problem = _one_problem({name: raw})
    assert problem.startswith(message)
    assert problem.endswith(f"got {raw!r}") or name == "DATABASE_URL"


def test_all_errors_collected_in_one_exception() -> None:
    env = {"API_PORT": "http", "SSH_IDLE_INTERVAL": "1", "API_ENABLED": "nope"}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid configuration (3 problems):"
    assert lines[1] == "  - SSH_IDLE_INTERVAL must be a whole number of seconds >= 5, got '1'"
    assert (
        lines[2]
        == "  - API_ENABLED must be a boolean: true/false, 1/0, yes/no or on/off, got 'nope'"
    )
    assert lines[3] == "  - API_PORT must be a port number 1-65535, got 'http'"
    assert len(info.value.problems) == 3


def test_pool_max_below_min() -> None:
    problem = _one_problem({"POSTGRES_MIN_POOL": "5", "POSTGRES_MAX_POOL": "2"})
    assert problem == "POSTGRES_MAX_POOL must be >= POSTGRES_MIN_POOL (5), got 2"


def test_pool_cross_check_skipped_when_a_value_is_invalid() -> None:
    problems = _problems({"POSTGRES_MIN_POOL": "x", "POSTGRES_MAX_POOL": "2"})
    assert problems == ("POSTGRES_MIN_POOL must be a whole number >= 1, got 'x'",)


def test_interval_and_counts_accept_documented_minimums() -> None:
    env = {
        "SSH_ACTIVE_INTERVAL": "5",
        "FAILOVER_SAFETY_SWEEP_MINUTES": "0",
        "STARTUP_LOOKBACK_HOURS": "0",
        "SSH_GRACE_PERIOD_MINUTES": "0",
    }
    s = load_settings(env)
    assert s.ssh_active_interval == 5
    assert s.failover_safety_sweep_minutes == 0
    assert s.startup_lookback_hours == 0
    assert s.ssh_grace_period_minutes == 0


# ---- booleans, choices, id lists --------------------------------------------------------


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "Yes", "on", " on "])
def test_boolean_true_spellings(raw: str) -> None:
    assert load_settings({"API_ENABLED": raw}).api_enabled is True


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "NO", "off"])
def test_boolean_false_spellings(raw: str) -> None:
    assert load_settings({"SMART_FAILOVER_ENABLED": raw}).smart_failover_enabled is False


def test_choices_are_case_insensitive_and_normalised() -> None:
    s = load_settings({"LOG_LEVEL": "debug", "POSTGRES_SSL_MODE": "REQUIRE"})
    assert (s.log_level, s.postgres_ssl_mode) == ("DEBUG", "require")


def test_id_lists() -> None:
    s = load_settings({"ADMIN_USER_IDS": "111, 222,333,", "ADMIN_ROLE_IDS": "444"})
    assert s.admin_user_ids == (111, 222, 333)
    assert s.admin_role_ids == (444,)


# ---- DEAD_HOURS -------------------------------------------------------------------------


def test_dead_hours_default_is_02_to_11() -> None:
    dead = load_settings({}).dead_hours
    assert dead == DeadHours(2, 11)
    assert [h for h in range(24) if dead.contains(h)] == list(range(2, 11))


def test_dead_hours_wrap_around_midnight() -> None:
    dead = load_settings({"DEAD_HOURS": "22-06"}).dead_hours
    assert dead == DeadHours(22, 6)
    assert [h for h in range(24) if dead.contains(h)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert str(dead) == "22-06"


def test_dead_hours_single_digit_hours() -> None:
    assert load_settings({"DEAD_HOURS": "3-7"}).dead_hours == DeadHours(3, 7)


def test_dead_hours_empty_means_none() -> None:
    assert load_settings({"DEAD_HOURS": ""}).dead_hours is None
    assert load_settings({"DEAD_HOURS": "   "}).dead_hours is None


def test_dead_hours_dataclass_validates_and_equal_hours_are_empty() -> None:
    with pytest.raises(ValueError, match="hour 24 is not in 0-23"):
        DeadHours(22, 24)
    empty = DeadHours(5, 5)
    assert empty.empty is True
    assert not any(empty.contains(h) for h in range(24))


# ---- database -----------------------------------------------------------------------------


def test_embedded_db_when_nothing_configured() -> None:
    assert load_settings({}).use_embedded_db is True
    assert load_settings({"POSTGRES_PORT": "5433", "DATA_DIR": "/srv/x"}).use_embedded_db is True


@pytest.mark.parametrize(
    "name",
    ["DATABASE_URL", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"],
)
def test_any_database_variable_disables_embedded_db(name: str) -> None:
    value = "postgresql://h/db" if name == "DATABASE_URL" else "x"
    assert load_settings({name: value}).use_embedded_db is False


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_ssl_verify_modes_require_root_cert(mode: str) -> None:
    problem = _one_problem({"POSTGRES_SSL_MODE": mode})
    assert problem == (
        "POSTGRES_SSL_ROOT_CERT must be set to the CA certificate file "
        f"when POSTGRES_SSL_MODE is {mode}"
    )
    s = load_settings({"POSTGRES_SSL_MODE": mode, "POSTGRES_SSL_ROOT_CERT": "/etc/ca.pem"})
    assert s.postgres_ssl_root_cert == Path("/etc/ca.pem")


def test_ssl_require_needs_no_root_cert() -> None:
    assert load_settings({"POSTGRES_SSL_MODE": "require"}).postgres_ssl_root_cert is None


def test_database_url_redacted() -> None:
    s = load_settings({"DATABASE_URL": "postgresql://bot:s3cret@db.lan:5432/etl?sslmode=require"})
    assert s.database_url_redacted() == "postgresql://bot:***@db.lan:5432/etl?sslmode=require"
    q = load_settings({"DATABASE_URL": "postgres://db.lan/etl?user=bot&password=s3cret"})
    assert q.database_url_redacted() == "postgres://db.lan/etl?user=bot&password=***"
    assert load_settings({}).database_url_redacted() is None


# ---- secrets -----------------------------------------------------------------------------

_SECRETS = {
    "DISCORD_TOKEN": "MTE4.token-value.XYZ",
    "POSTGRES_PASSWORD": "pg-pass-123",
    "DATABASE_URL": "postgresql://bot:url-pass-456@db.lan/etl",
}


def test_secrets_not_in_repr() -> None:
    s = load_settings(_SECRETS)
    assert s.discord_token == "MTE4.token-value.XYZ"
    assert s.postgres_password == "pg-pass-123"
    text = repr(s) + str(s)
    for secret in ("MTE4.token-value.XYZ", "pg-pass-123", "url-pass-456"):
        assert secret not in text


def test_secrets_not_in_error_messages() -> None:
    env = {**_SECRETS, "DATABASE_URL": "mysql://bot:url-pass-456@db.lan/etl", "API_PORT": "x"}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value)
    assert "url-pass-456" not in text
    assert "DATABASE_URL must be a postgresql:// URL, got 'mysql://bot:***@db.lan/etl'" in text


# ---- .env loading ------------------------------------------------------------------------


def test_dotenv_loaded_without_overriding_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SSH_PORT=2200\nAPI_PORT=9000\nLOG_LEVEL=debug\n")
    monkeypatch.setattr(os, "environ", {"API_PORT": "9100"})
    s = load_settings(dotenv_path=dotenv)
    assert s.ssh_port == 2200  # from .env
    assert s.api_port == 9100  # the real environment wins
    assert s.log_level == "DEBUG"


def test_dotenv_path_none_and_missing_file_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", {"SSH_PORT": "2022"})
    assert load_settings(dotenv_path=None).ssh_port == 2022
    assert load_settings(dotenv_path=tmp_path / "missing.env").ssh_port == 2022


def test_given_env_mapping_ignores_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SSH_PORT=2200\n")
    assert load_settings({}, dotenv_path=dotenv).ssh_port == 22


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    names = {f.name.upper() for f in dataclasses.fields(Settings) if "parse" in f.metadata}
    missing = sorted(n for n in names if f"{n}=" not in example)
    assert missing == []
