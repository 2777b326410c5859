"""bot.registry: servers.json parsing, registry lookups, legacy env fallback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_settings
from bot.registry import (
    ServerConfig,
    ServerRegistry,
    SSHTarget,
    load_registry,
    parse_servers,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "servers.json.example"
TZ = "Europe/Ljubljana"


def _ssh(**overrides: Any) -> dict[str, Any]:
    entry = {
        "ssh_host": "eu1.example.org",
        "ssh_user": "et",
        "ssh_key_path": "/keys/eu1",
        "known_hosts": "/keys/known_hosts",
        "remote_stats_path": "/srv/et/gamestats",
    }
    entry.update(overrides)
    return entry


def _parse(servers: Any) -> ServerRegistry:
    return parse_servers({"servers": servers}, default_tz=TZ, source="servers.json")


def _problems(servers: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        _parse(servers)
    return info.value.problems


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(data))
    return path


# ---- the example file ---------------------------------------------------------------------


def test_example_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/bot")
    registry = load_registry(load_settings({"SERVERS_CONFIG_FILE": str(EXAMPLE)}))
    assert registry.ids == ("eu1", "na1")
    eu1, na1 = registry.get("eu1"), registry.get("na1")
    assert eu1.server_name == "EU #1 Stopwatch"
    assert eu1.timezone == ZoneInfo("Europe/Ljubljana")
    assert eu1.ssh == SSHTarget(
        host="eu1.example.org",
        port=22,
        user="etlstats",
        key_path=Path("/home/bot/.ssh/etlstats_eu1"),
        known_hosts=Path("/home/bot/.ssh/known_hosts"),
        remote_stats_path="/home/et/.etlegacy/legacy/gamestats",
        insecure_skip_host_key=False,
    )
    assert eu1.trigger_webhook_ids == (1187654321098765432,)
    assert eu1.stats_channel_id == 1187000000000000001
    assert eu1.voice_channel_ids == (1187000000000000002, 1187000000000000003)
    assert na1 == ServerConfig("na1", "NA #1", True, ZoneInfo("America/New_York"), None)
    assert registry.pollable() == (eu1,)
    assert registry.by_webhook_id(1187654321098765432) is eu1


# ---- registry behaviour -------------------------------------------------------------------


def test_registry_lookups() -> None:
    registry = _parse(
        [
            {"server_id": "eu1", **_ssh(), "trigger_webhook_ids": [11, "12"]},
            {"server_id": "eu2", "enabled": False, **_ssh(), "trigger_webhook_ids": [21]},
            {"server_id": "na1"},
        ]
    )
    assert len(registry) == 3
    assert [s.server_id for s in registry] == ["eu1", "eu2", "na1"]
    assert registry.ids == ("eu1", "eu2", "na1")
    assert "eu2" in registry and "xx" not in registry
    assert [s.server_id for s in registry.enabled()] == ["eu1", "na1"]
    assert [s.server_id for s in registry.pollable()] == ["eu1"]
    assert registry.by_webhook_id(12).server_id == "eu1"
    assert registry.by_webhook_id(21).server_id == "eu2"  # disabled servers still resolve
    assert registry.by_webhook_id(99) is None
    assert registry.all_webhook_ids == frozenset({11, 12, 21})
    assert repr(registry) == "ServerRegistry(['eu1', 'eu2', 'na1'])"


def test_get_unknown_server_message() -> None:
    registry = _parse([{"server_id": "eu1"}])
    with pytest.raises(KeyError) as info:
        registry.get("nope")
    assert info.value.args[0] == "unknown server 'nope' (known: eu1)"
    with pytest.raises(KeyError, match="none configured"):
        ServerRegistry().get("eu1")


def test_registry_is_immutable() -> None:
    registry = _parse([{"server_id": "eu1"}])
    with pytest.raises(AttributeError, match="immutable"):
        registry._servers = ()  # type: ignore[misc]


def test_registry_constructor_rejects_duplicates() -> None:
    a = ServerConfig("eu1", "a", True, ZoneInfo(TZ), None, trigger_webhook_ids=(5,))
    b = ServerConfig("eu2", "b", True, ZoneInfo(TZ), None, trigger_webhook_ids=(5,))
    with pytest.raises(ValueError, match="duplicate server_id 'eu1'"):
        ServerRegistry([a, a])
    with pytest.raises(ValueError, match="webhook id 5 belongs to both 'eu1' and 'eu2'"):
        ServerRegistry([a, b])


# ---- entry defaults and values ------------------------------------------------------------


def test_defaults_for_a_minimal_entry() -> None:
    server = _parse([{"server_id": "eu1"}]).get("eu1")
    assert server == ServerConfig(
        server_id="eu1",
        server_name="eu1",
        enabled=True,
        timezone=ZoneInfo(TZ),
        ssh=None,
        trigger_webhook_ids=(),
        stats_channel_id=None,
        voice_channel_ids=(),
    )
    assert server.pollable is False


def test_bare_list_accepted_and_default_tz_applied() -> None:
    registry = parse_servers([{"server_id": "us1"}], default_tz="America/Chicago", source="x")
    assert registry.get("us1").timezone == ZoneInfo("America/Chicago")


def test_ssh_entry_with_port_and_home_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/bot")
    entry = {"server_id": "eu1", **_ssh(ssh_port=2222, ssh_key_path="~/.ssh/k")}
    ssh = _parse([entry]).get("eu1").ssh
    assert ssh is not None
    assert (ssh.port, ssh.key_path) == (2222, Path("/home/bot/.ssh/k"))


def test_insecure_skip_allows_missing_known_hosts() -> None:
    entry = {"server_id": "eu1", **_ssh(ssh_insecure_skip_host_key=True)}
    del entry["known_hosts"]
    ssh = _parse([entry]).get("eu1").ssh
    assert ssh is not None
    assert (ssh.known_hosts, ssh.insecure_skip_host_key) == (None, True)


def test_comment_keys_are_allowed() -> None:
    data = {"_comment": "top", "servers": [{"server_id": "eu1", "_note": "hi"}]}
    assert parse_servers(data, default_tz=TZ, source="s").ids == ("eu1",)


def test_empty_server_list_is_an_empty_registry() -> None:
    assert len(_parse([])) == 0


# ---- errors --------------------------------------------------------------------------------


def test_bad_port_message_names_file_entry_and_field() -> None:
    problems = _problems([{"server_id": "eu1"}, {"server_id": "eu2", **_ssh(ssh_port="abc")}])
    assert problems == (
        "servers.json: servers[1] (id 'eu2'): field 'ssh_port': "
        "expected an integer 1-65535, got 'abc'",
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("server_name", "", "expected a non-empty string, got ''"),
        ("enabled", "yes", "expected true or false, got 'yes'"),
        ("timezone", "Mars/Olympus", "expected an IANA time zone name such as Europe/Ljubljana"),
        ("stats_channel_id", "general", "expected a Discord id (integer or string of digits)"),
        ("stats_channel_id", True, "expected a Discord id (integer or string of digits) or null"),
        ("voice_channel_ids", 5, "expected a list of Discord ids (integers or strings of digits)"),
        ("trigger_webhook_ids", [1, -2], "expected a list of Discord ids"),
        ("trigger_webhook_ids", [7, "7"], 'expected a list of distinct Discord ids, got [7, "7"]'),
    ],
)
def test_bad_field_values(field: str, value: object, expected: str) -> None:
    (problem,) = _problems([{"server_id": "eu1", field: value}])
    assert problem.startswith(f"servers.json: servers[0] (id 'eu1'): field '{field}': {expected}")


def test_bad_timezone_message() -> None:
    (problem,) = _problems([{"server_id": "eu1", "timezone": "Europe/Atlantis"}])
    assert problem == (
        "servers.json: servers[0] (id 'eu1'): field 'timezone': "
        "expected an IANA time zone name such as Europe/Ljubljana, got 'Europe/Atlantis'"
    )


@pytest.mark.parametrize("server_id", ["EU1", "1eu", "eu-1", "a" * 33, ""])
def test_bad_server_ids(server_id: str) -> None:
    (problem,) = _problems([{"server_id": server_id}])
    assert "field 'server_id': expected a lowercase letter then up to 31" in problem
    assert problem.startswith("servers.json: servers[0]")


def test_missing_server_id() -> None:
    assert _problems([{"server_name": "x"}]) == (
        "servers.json: servers[0]: field 'server_id' is required",
    )


def test_unknown_keys() -> None:
    assert _problems([{"server_id": "eu1", "ssh_hots": "x", "colour": 1}]) == (
        "servers.json: servers[0] (id 'eu1'): unknown field 'ssh_hots'",
        "servers.json: servers[0] (id 'eu1'): unknown field 'colour'",
    )
    with pytest.raises(
        ConfigError, match=re.escape("servers.json: unknown top-level field 'server'")
    ):
        parse_servers({"servers": [], "server": {}}, default_tz=TZ, source="servers.json")


def test_entry_not_an_object_and_top_level_shape() -> None:
    assert _problems(["eu1"]) == ("servers.json: servers[0]: expected an object, got 'eu1'",)
    with pytest.raises(ConfigError, match=r'expected an object \{"servers": \[...\]\}'):
        parse_servers({"srv": []}, default_tz=TZ, source="servers.json")


def test_duplicate_server_ids() -> None:
    problems = _problems([{"server_id": "eu1"}, {"server_id": "na1"}, {"server_id": "eu1"}])
    assert problems == (
        "servers.json: servers[2] (id 'eu1'): duplicate server_id, "
        "already used by servers[0] (id 'eu1')",
    )


def test_duplicate_webhook_ids_across_servers() -> None:
    problems = _problems(
        [
            {"server_id": "eu1", "trigger_webhook_ids": [100, 200]},
            {"server_id": "eu2", "trigger_webhook_ids": ["200"]},
        ]
    )
    assert problems == (
        "servers.json: servers[1] (id 'eu2'): field 'trigger_webhook_ids': "
        "webhook id 200 already belongs to server 'eu1'",
    )


def test_partial_ssh_group_names_missing_fields() -> None:
    (problem,) = _problems([{"server_id": "eu1", "ssh_host": "h", "ssh_port": 22}])
    assert problem.startswith(
        "servers.json: servers[0] (id 'eu1'): incomplete SSH settings, missing "
        "'ssh_user', 'ssh_key_path', 'known_hosts', 'remote_stats_path' (give all of"
    )
    assert problem.endswith("or none for a push-only server)")


def test_known_hosts_required_unless_insecure() -> None:
    entry = {"server_id": "eu1", **_ssh()}
    del entry["known_hosts"]
    (problem,) = _problems([entry])
    assert "incomplete SSH settings, missing 'known_hosts'" in problem


def test_all_problems_collected_across_entries() -> None:
    with pytest.raises(ConfigError) as info:
        _parse([{"server_id": "eu1", "enabled": 1}, {"server_id": "BAD"}, 7])
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid servers.json (3 problems):"
    assert lines[1] == "  - servers.json: servers[0] (id 'eu1'): field 'enabled': " + (
        "expected true or false, got 1"
    )
    assert lines[2].startswith("  - servers.json: servers[1] (id 'BAD'): field 'server_id'")
    assert lines[3] == "  - servers.json: servers[2]: expected an object, got 7"


# ---- files and the legacy fallback ---------------------------------------------------------


def test_load_registry_from_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"servers": [{"server_id": "eu1", "timezone": "Asia/Tokyo"}]})
    registry = load_registry(load_settings({"SERVERS_CONFIG_FILE": str(path)}))
    assert registry.get("eu1").timezone == ZoneInfo("Asia/Tokyo")


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text('{\n  "servers": [\n    {"server_id": "eu1",}\n  ]\n}\n')
    with pytest.raises(ConfigError) as info:
        load_registry(load_settings({"SERVERS_CONFIG_FILE": str(path)}))
    assert str(info.value).startswith(f"{path}: invalid JSON at line 3, column 25:")


def test_file_errors_are_prefixed_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"server_id": "eu1", "ssh_port": 22}])
    with pytest.raises(ConfigError) as info:
        load_registry(load_settings({"SERVERS_CONFIG_FILE": str(path)}))
    assert info.value.problems[0].startswith(f"{path}: servers[0] (id 'eu1'): incomplete SSH")


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    settings = load_settings({"SERVERS_CONFIG_FILE": str(missing), "SSH_HOST": "h"})
    with pytest.raises(ConfigError) as info:
        load_registry(settings)
    assert (
        str(info.value)
        == f"SERVERS_CONFIG_FILE is set to {str(missing)!r}, but that file does not exist"
    )


def test_missing_default_file_without_legacy_vars_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    registry = load_registry(load_settings({}))
    assert len(registry) == 0
    assert registry.ids == ()


_LEGACY = {
    "SSH_HOST": "game.example.org",
    "SSH_PORT": "2222",
    "SSH_USER": "et",
    "SSH_KEY_PATH": "/keys/id_ed25519",
    "SSH_KNOWN_HOSTS": "/keys/known_hosts",
    "REMOTE_STATS_PATH": "/srv/et/gamestats",
    "DEFAULT_TIMEZONE": "Europe/Berlin",
}


def test_legacy_env_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    registry = load_registry(load_settings(_LEGACY))
    assert registry.ids == ("legacy",)
    assert registry.get("legacy") == ServerConfig(
        server_id="legacy",
        server_name="legacy",
        enabled=True,
        timezone=ZoneInfo("Europe/Berlin"),
        ssh=SSHTarget(
            host="game.example.org",
            port=2222,
            user="et",
            key_path=Path("/keys/id_ed25519"),
            known_hosts=Path("/keys/known_hosts"),
            remote_stats_path="/srv/et/gamestats",
            insecure_skip_host_key=False,
        ),
    )


def test_legacy_env_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in _LEGACY.items() if k not in ("SSH_USER", "REMOTE_STATS_PATH")}
    with pytest.raises(ConfigError) as info:
        load_registry(load_settings(env))
    assert str(info.value) == (
        "servers.json does not exist and the single-server settings are incomplete: "
        "missing SSH_USER, REMOTE_STATS_PATH (set all of SSH_HOST, SSH_USER, SSH_KEY_PATH, "
        "REMOTE_STATS_PATH, or create servers.json)"
    )


def test_file_wins_over_legacy_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, {"servers": [{"server_id": "eu1"}]})
    assert load_registry(load_settings(_LEGACY)).ids == ("eu1",)
