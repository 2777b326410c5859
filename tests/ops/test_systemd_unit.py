"""The shipped systemd unit: rendered for a checkout, and clean under `systemd-analyze verify`.

`systemd-analyze verify` exits 0 on unknown keys and most mistakes, so the lint reads its
output: any line about our unit fails the test. Lines about other units on the machine
(which verify may load as dependencies) are not ours to fix and are ignored.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli_ops import REPO_ROOT, UnitParams, render_unit, unit_params, venv_python
from bot.config import ConfigError, Settings, load_settings

SERVICE = "etl-stats-bot"
# A line that names some unit (or unit file) at its start: "x.service: ..." or "/p/x.service:12".
_UNIT_LINE = re.compile(
    r"^(?:\S*/)?(?P<unit>[\w@.:\\-]+\.(?:service|socket|target|mount|automount|timer|path"
    r"|slice|scope|device|swap))\b"
)


def verify(unit_file: Path) -> list[str]:
    """The output lines of `systemd-analyze verify` that are about `unit_file`'s unit."""
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze is missing: apt-get install systemd"
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0"}
    env.pop("SYSTEMD_UNIT_PATH", None)
    result = subprocess.run(
        [systemd_analyze, "verify", "--man=no", "--generators=no", "--recursive-errors=no",
         str(unit_file)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    lines = (result.stdout + result.stderr).splitlines()
    ours = [line for line in lines if _about(line, unit_file.name)]
    if result.returncode != 0 and not ours:
        ours = [f"exit status {result.returncode}", *lines]
    return ours


def _about(line: str, unit_name: str) -> bool:
    match = _UNIT_LINE.match(line.strip())
    return match is None or match.group("unit") == unit_name


def settings_with(tmp_path: Path, **extra: str) -> Settings:
    env = {"DATA_DIR": str(tmp_path / "data"), **extra}
    return load_settings(env, dotenv_path=None)


def args(user: str = "etlstats", service: str = SERVICE) -> argparse.Namespace:
    return argparse.Namespace(user=user, service_name=service)


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_rendered_unit_verifies_cleanly(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, LOG_FILE=str(tmp_path / "logs" / "bot.log"))
    text = render_unit(unit_params(args(), settings))
    unit = tmp_path / f"{SERVICE}.service"
    unit.write_text(text)
    assert verify(unit) == []
    d = directives(text)
    assert d["User"] == ["etlstats"]
    assert d["WorkingDirectory"] == [str(REPO_ROOT)]
    assert d["EnvironmentFile"] == [str(REPO_ROOT / ".env")]
    assert d["ExecStart"] == [f"{venv_python()} -m bot run"]
    assert Path(sys.prefix) in venv_python().parents and os.access(venv_python(), os.X_OK)
    assert d["ReadWritePaths"] == [f"{tmp_path / 'data'} {tmp_path / 'logs'}"]
    assert d["Type"] == ["simple"] and d["Restart"] == ["on-failure"]
    assert d["TimeoutStopSec"] == ["20"] and d["KillSignal"] == ["SIGTERM"]
    assert d["ProtectSystem"] == ["strict"] and d["ProtectHome"] == ["read-only"]
    assert d["CapabilityBoundingSet"] == [""] and d["UMask"] == ["0077"]
    assert d["MemoryDenyWriteExecute"] == ["yes"] and d["NoNewPrivileges"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@" not in text.replace("multi-user.target", "")  # every placeholder filled


def test_the_lint_is_not_vacuous(tmp_path: Path) -> None:
    good = render_unit(unit_params(args(), settings_with(tmp_path)))
    unit = tmp_path / f"{SERVICE}.service"
    unit.write_text(good.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    assert any("Unknown key 'ProtectSytem'" in line for line in verify(unit))
    missing = tmp_path / "no-such-python"
    unit.write_text(good.replace(f"ExecStart={venv_python()}", f"ExecStart={missing}"))
    assert any(f"Command {missing} is not executable" in line for line in verify(unit))


def test_data_dir_is_resolved_against_the_checkout(tmp_path: Path) -> None:
    relative = unit_params(args("stats", "stats.service"), load_settings({}, dotenv_path=None))
    assert relative.service_name == "stats" and relative.user == "stats"
    assert relative.read_write_paths == (REPO_ROOT / "data",)
    inside = settings_with(tmp_path, LOG_FILE=str(tmp_path / "data" / "log" / "bot.log"))
    assert unit_params(args(), inside).read_write_paths == (tmp_path / "data",)


@pytest.mark.parametrize(
    ("user", "service", "problem"),
    [("Root Admin", SERVICE, "--user"), ("etlstats", "bad/name", "--service-name")],
)
def test_bad_names_are_refused(tmp_path: Path, user: str, service: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        unit_params(args(user, service), settings_with(tmp_path))


def test_paths_that_need_quoting_are_refused(tmp_path: Path) -> None:
    params = UnitParams("etlstats", SERVICE, tmp_path / "my bot", venv_python(), (tmp_path,))
    with pytest.raises(ConfigError, match="contains blanks"):
        render_unit(params)


def test_percent_signs_are_escaped_for_systemd(tmp_path: Path) -> None:
    params = UnitParams("etlstats", SERVICE, REPO_ROOT, venv_python(), (tmp_path / "50%",))
    assert f"ReadWritePaths={tmp_path}/50%%\n" in render_unit(params)


def test_verb_prints_the_unit_and_hints_on_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_DIR", "LOG_FILE"))}
    env |= {"PYTHONPATH": str(REPO_ROOT), "DATA_DIR": "state-dir-that-does-not-exist"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "systemd-unit", "--user", "bot", "--service-name", "stats"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    d = directives(result.stdout)
    assert d["User"] == ["bot"] and d["SyslogIdentifier"] == ["stats"]
    assert d["ReadWritePaths"] == [str(REPO_ROOT / "state-dir-that-does-not-exist")]
    assert d["Environment"] == [
        "XDG_RUNTIME_DIR=%t/stats",
        "MPLCONFIGDIR=%C/stats/matplotlib",
    ]
    assert "note: create" in result.stderr and "state-dir-that-does-not-exist" in result.stderr
