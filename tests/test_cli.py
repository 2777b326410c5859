"""`python -m bot ...` as an operator runs it: real subprocesses, real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parent / "fixtures" / "stats"
MULTI = FIX / "multi" / "stats"
R1 = MULTI / "eu1-2025-03-03-214223-etl_frostbite-round-1.txt"
R2 = MULTI / "eu1-2025-03-03-215401-etl_frostbite-round-2.txt"


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no database settings and no .env (cwd is tmp_path)."""
    ours = ("POSTGRES_", "DATABASE_", "SERVERS_CONFIG_FILE", "SSH_")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    keep["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return keep


async def test_import_then_export(db_dsn: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "DATABASE_URL": db_dsn}
    (tmp_path / "notes.log").write_text("not a stats file")  # ignored inside a directory
    legacy = FIX / "legacy" / "stats" / "eu1"
    first = run_cli("import", str(MULTI), str(tmp_path), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "imported 13, duplicates 0, rejected 0"
    again = run_cli("import", str(R1), env=env, cwd=tmp_path)
    assert again.stdout.strip() == "imported 0, duplicates 1, rejected 0"
    no_server = run_cli("import", str(legacy), env=env, cwd=tmp_path)
    assert no_server.returncode == 0
    assert (
        "rejected 5 (5× legacy file name (no server prefix): pass --server ID)" in no_server.stdout
    )
    legacy_ok = run_cli("import", str(legacy), "--server", "eu1", env=env, cwd=tmp_path)
    assert legacy_ok.stdout.strip() == "imported 5, duplicates 0, rejected 0"

    out = run_cli("export", "--server", "eu1", env=env, cwd=tmp_path)
    rounds = [json.loads(line) for line in out.stdout.splitlines()]
    by_name = {r["filename"]: r for r in rounds}
    assert {r["server_id"] for r in rounds} == {"eu1"}
    assert by_name[R2.name]["status"] == "paired"
    assert by_name[R2.name]["paired_r1"] == R1.name


async def test_rejected_files_are_counted_with_reasons(
    db_dsn: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "DATABASE_URL": db_dsn}
    malformed = FIX / "multi" / "malformed"
    names = [
        "eu1-2025-03-02-121100-supply-round-1.txt",  # not a stats file
        "eu1-2025-03-02-121300-supply-round-1.txt",  # too few header fields
        "eu1-2025-03-02-120000-supply-round-1.txt",  # fine
    ]
    result = run_cli("import", *(str(malformed / n) for n in names), env=env, cwd=tmp_path)
    assert result.returncode == 0
    line = result.stdout.strip()
    assert line.startswith("imported 1, duplicates 0, rejected 2 (")
    assert "not a stats file" in line and "header" in line


def test_parse_prints_round_json_and_the_differential(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    plain = run_cli("parse", str(R2), env=cli_env, cwd=tmp_path)
    diff = run_cli("parse", str(R2), "--r1", str(R1), env=cli_env, cwd=tmp_path)
    cumulative, r2_only = json.loads(plain.stdout), json.loads(diff.stdout)
    assert (cumulative["status"], r2_only["status"]) == ("complete", "paired")
    assert r2_only["paired_r1"] == R1.name
    kills = {p["guid"]: p["kills"] for p in cumulative["players"]}
    only = {p["guid"]: p["kills"] for p in r2_only["players"]}
    assert only["9DD9E94E"] == 4 and kills["9DD9E94E"] == 17  # expected.json values


def test_parse_of_a_bad_file_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = FIX / "multi" / "malformed" / "eu1-2025-03-02-121100-supply-round-1.txt"
    result = run_cli("parse", str(bad), env=cli_env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "not a stats file" in result.stderr


def test_bad_configuration_names_the_variable(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "SESSION_GAP_MINUTES": "soon", "DATABASE_URL": "postgresql://x@127.0.0.1/x"}
    result = run_cli("servers", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "SESSION_GAP_MINUTES" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "DATABASE_URL": "postgresql://bot:secret@127.0.0.1:1/stats"}
    result = run_cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to PostgreSQL")
    assert "secret" not in result.stderr


def test_servers_lists_the_registry(cli_env: dict[str, str], tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "servers.json.example"
    env = {**cli_env, "SERVERS_CONFIG_FILE": str(example)}
    result = run_cli("servers", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("eu1") and "sftp" in lines[0]
    assert lines[1].startswith("na1") and "push-only" in lines[1]
