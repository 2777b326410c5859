"""Logging: one format with the server id, LOG_FILE rotation, and no secret in any line."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.config import ConfigError, load_settings
from bot.logging_setup import (
    CHATTY_LOGGERS,
    LineFormatter,
    RedactingFilter,
    Redactor,
    ServerIdFilter,
    secrets_of,
    setup_logging,
)
from tests.conftest import FIXTURES, REPO_ROOT

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8"
DB_PASSWORD = "pg-Pa55%2Fword"  # as written in the URL; the server sees "pg-Pa55/word"
PG_PASSWORD = "other-pg-secret"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +(?P<logger>\S+) "
    r"\[(?P<server>[^\]]+)\] (?P<message>.*)$"
)


def capture(secrets: Sequence[str] = ()) -> tuple[logging.Logger, io.StringIO]:
    """A private logger whose one handler is set up like the process's."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    handler.addFilter(ServerIdFilter())
    handler.setFormatter(LineFormatter())
    logger = logging.getLogger(f"bot.test_{id(buf)}")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.DEBUG
    return logger, buf


def parsed(buf: io.StringIO) -> list[dict[str, str]]:
    lines = buf.getvalue().splitlines()
    return [m.groupdict() for m in map(LINE.match, lines) if m]


# --- the redactor -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect postgresql://bot:hunter2xyz@db.example:5432/stats failed",
         "connect postgresql://bot:***@db.example:5432/stats failed"),
        ("dsn host=db user=bot password=hunter2xyz sslmode=require",
         "dsn host=db user=bot password=*** sslmode=require"),
        ("headers {'X-API-Key': 'k-123456789', 'X-Server-ID': 'eu1'}",
         "headers {'X-API-Key': '***', 'X-Server-ID': 'eu1'}"),
        ("curl -H X-API-Key:abcdef0123", "curl -H X-API-Key:***"),
        ("Authorization: Bearer eyJhbGciOi.J9x", "Authorization: Bearer ***"),
        ("{'Authorization': 'Bot sometoken1234'}", "{'Authorization': 'Bot ***'}"),
        ("https://discord.com/api/webhooks/123456789/AbC-dEf_123 -> 204",
         "https://discord.com/api/webhooks/123456789/*** -> 204"),
        (f"login with {TOKEN}", "login with ***"),
        ("[eu1] imported eu1-2025-03-03-214223-etl_frostbite-round-1.txt (12 players)",
         "[eu1] imported eu1-2025-03-03-214223-etl_frostbite-round-1.txt (12 players)"),
        ("POSTGRES_PASSWORD must be set, got a hidden value",
         "POSTGRES_PASSWORD must be set, got a hidden value"),
    ],
)  # fmt: skip
def test_patterns_are_redacted_and_ordinary_text_is_not(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_known_secrets_in_every_spelling() -> None:
    settings = load_settings(
        {
            "DISCORD_TOKEN": "plain-token-value",
            "POSTGRES_PASSWORD": PG_PASSWORD,
            "DATABASE_URL": f"postgresql://bot:{DB_PASSWORD}@db/stats",
        },
        dotenv_path=None,
    )
    redact = Redactor(secrets_of(settings))
    assert set(secrets_of(settings)) == {
        "plain-token-value", PG_PASSWORD, DB_PASSWORD, "pg-Pa55/word", "pg-Pa55%252Fword",
    }  # fmt: skip
    text = "token plain-token-value, pw pg-Pa55/word and pg-Pa55%2Fword, other-pg-secret."
    assert redact(text) == "token ***, pw *** and ***, ***."


def test_short_values_are_not_treated_as_secrets() -> None:
    settings = load_settings({"POSTGRES_PASSWORD": "abc"}, dotenv_path=None)
    assert secrets_of(settings) == [] and Redactor(["abc"])("abc def") == "abc def"


def test_filter_scrubs_arguments_tracebacks_and_stacks() -> None:
    logger, buf = capture(["s3cret-value"])
    logger.info("token=%s url=%s", "s3cret-value", "postgresql://u:pw12345@h/db")
    try:
        raise RuntimeError("failed with s3cret-value")
    except RuntimeError:
        logger.exception("[eu1] boom")
    logger.warning("where", stack_info=True, extra={"note": "s3cret-value"})
    out = buf.getvalue()
    assert "s3cret-value" not in out and "pw12345" not in out
    assert "token=*** url=postgresql://u:***@h/db" in out
    assert "RuntimeError: failed with ***" in out and "Traceback (most recent call last)" in out
    assert "Stack (most recent call last)" in out


# --- the format ------------------------------------------------------------------------


def test_server_id_from_extra_prefix_or_none() -> None:
    logger, buf = capture()
    logger.warning("[%s] rejected %s: %s", "eu1", "x.txt", "not a stats file")
    logger.info("sftp[%s]: connected to %s", "eu2", "et@host:22")
    logger.info("imported %s", "y.txt", extra={"server_id": "na1"})
    logger.info("pollers started for %d server(s)", 2)
    logging.getLogger("asyncssh").handlers = logger.handlers  # a library's record
    logging.getLogger("asyncssh").propagate = False
    try:
        logging.getLogger("asyncssh").warning("[eu1] not ours to interpret")
    finally:
        logging.getLogger("asyncssh").handlers, logging.getLogger("asyncssh").propagate = [], True
    rows = parsed(buf)
    assert [(r["level"], r["server"], r["message"]) for r in rows] == [
        ("WARNING", "eu1", "rejected x.txt: not a stats file"),
        ("INFO", "eu2", "sftp[eu2]: connected to et@host:22"),
        ("INFO", "na1", "imported y.txt"),
        ("INFO", "-", "pollers started for 2 server(s)"),
        ("WARNING", "-", "[eu1] not ours to interpret"),
    ]
    assert rows[0]["logger"] == logger.name and rows[4]["logger"] == "asyncssh"


# --- setup_logging in this process -----------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    hook, showwarning = sys.excepthook, warnings.showwarning
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers, root.level = handlers, level
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    sys.excepthook, warnings.showwarning = hook, showwarning


def test_setup_installs_stderr_and_a_rotating_file(tmp_path: Path, restore_logging: None) -> None:
    log_file = tmp_path / "logs" / "bot.log"
    settings = load_settings({"LOG_LEVEL": "debug", "LOG_FILE": str(log_file)}, dotenv_path=None)
    before = list(logging.getLogger().handlers)
    setup_logging(settings)
    handlers = setup_logging(settings)  # again: replaces its own handlers, keeps pytest's
    root = logging.getLogger()
    assert root.handlers == [*before, *handlers] and root.level == logging.DEBUG
    stream, rotating = handlers
    assert isinstance(stream, logging.StreamHandler) and stream.stream is sys.stderr
    assert isinstance(rotating, logging.handlers.RotatingFileHandler)
    assert (rotating.maxBytes, rotating.backupCount) == (10 * 1024 * 1024, 5)
    assert all(logging.getLogger(n).level == logging.WARNING for n in CHATTY_LOGGERS)
    logging.getLogger("bot.ingest.pipeline").debug("[%s] stored %s", "eu3", "z.txt")
    logging.getLogger("asyncssh").info("chatter that must not appear")
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1 and LINE.match(lines[0])["server"] == "eu3"


def test_unwritable_log_file_is_a_configuration_error(
    tmp_path: Path, restore_logging: None
) -> None:
    (tmp_path / "file").write_text("")
    settings = load_settings({"LOG_FILE": str(tmp_path / "file" / "bot.log")}, dotenv_path=None)
    with pytest.raises(ConfigError, match=r"LOG_FILE .* cannot be opened for writing"):
        setup_logging(settings)


# --- whole processes ---------------------------------------------------------------------


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':')[0]}:{password}@{host}"))


@pytest.fixture
def secret_env(db_dsn: str, tmp_path: Path) -> dict[str, str]:
    ours = ("POSTGRES_", "DATABASE_", "SERVERS_CONFIG_FILE", "SSH_", "LOG_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return env | {
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": with_password(db_dsn, DB_PASSWORD),  # trust auth: accepted, ignored
        "POSTGRES_PASSWORD": PG_PASSWORD,
        "DISCORD_TOKEN": TOKEN,
        "LOG_LEVEL": "DEBUG",
        "LOG_FILE": str(tmp_path / "logs" / "bot.log"),
    }


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (TOKEN, DB_PASSWORD, "pg-Pa55/word", PG_PASSWORD):
            assert secret not in text


def test_cli_runs_log_no_secret(secret_env: dict[str, str], tmp_path: Path) -> None:
    malformed = FIXTURES / "stats" / "multi" / "malformed"
    migrate = run(["-m", "bot", "migrate"], secret_env, tmp_path)
    imported = run(["-m", "bot", "import", str(malformed)], secret_env, tmp_path)
    assert migrate.returncode == 0 and imported.returncode == 0, migrate.stderr + imported.stderr
    log_text = Path(secret_env["LOG_FILE"]).read_text()
    assert_no_secret(migrate.stderr, imported.stderr, imported.stdout, log_text)
    rows = [LINE.match(line) for line in log_text.splitlines()]
    ingest = [m for m in rows if m and m["logger"] == "bot.importer"]
    assert ingest and all(m["server"] == "eu1" for m in ingest)  # every ingest line has its id
    rejected = [m["message"] for m in ingest if m["message"].startswith("rejected ")]
    assert rejected[0].startswith("rejected eu1-2025-03-02-121100-supply-round-1.txt: ")
    assert any(m and m["level"] == "DEBUG" for m in rows)  # LOG_LEVEL=DEBUG took effect
    # stderr and LOG_FILE carry the same lines in the same format
    assert [line for line in imported.stderr.splitlines() if "bot.importer" in line] == [
        line for line in log_text.splitlines() if "bot.importer" in line
    ]


LEAKY_PROCESS = """
import logging, os, warnings
from bot.config import load_settings
from bot.logging_setup import setup_logging
setup_logging(load_settings(dotenv_path=None))
url, token = os.environ["DATABASE_URL"], os.environ["DISCORD_TOKEN"]
logging.getLogger("aiohttp.client").warning("GET /gateway headers=%r", {"Authorization": token})
logging.getLogger("asyncpg.pool").error("cannot connect to %s", url)
try:
    raise ConnectionError(f"handshake with {url} using {os.environ['POSTGRES_PASSWORD']}")
except ConnectionError:
    logging.getLogger("discord.client").exception("[eu1] reconnecting")
warnings.warn(f"deprecated token {token}")
raise RuntimeError(f"crash while holding {token}")
"""


def test_library_records_warnings_and_crashes_are_scrubbed(
    secret_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(["-c", LEAKY_PROCESS], secret_env, tmp_path)
    log_text = Path(secret_env["LOG_FILE"]).read_text()
    assert result.returncode == 1  # the crash still ends the process
    assert_no_secret(result.stderr, log_text)
    for text in (result.stderr, log_text):
        assert "aiohttp.client [-] GET /gateway headers={'Authorization': '***'}" in text
        assert "asyncpg.pool [-] cannot connect to postgresql://postgres:***@/" in text
        assert "ConnectionError: handshake with postgresql://postgres:***@/" in text
        assert "py.warnings [-]" in text and "UserWarning: deprecated token ***" in text
        assert "CRITICAL bot [-] uncaught exception" in text
        assert "RuntimeError: crash while holding ***" in text
