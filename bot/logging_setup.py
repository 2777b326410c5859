"""The process's logging: one line format, secrets scrubbed, library chatter toned down.

Line format (stderr always, which journald captures; LOG_FILE optionally, rotated):

    2025-06-01 21:42:23,123 WARNING bot.importer [eu1] rejected eu1-...txt: not a stats file
    2025-06-01 21:42:24,456 INFO    bot.runner [-] stopping: draining in-flight imports

The bracketed field is the game server id, so `grep '\\[eu1\\]'` finds every line about one
server. `ServerIdFilter` fills it from, in order:

1. `extra={"server_id": ...}` on the call (the explicit, preferred way for new code);
2. the message conventions already used in bot/: a leading `[eu1]` ("[%s] rejected ...") or a
   leading `word[eu1]` ("sftp[%s]: connected ..."). Only records of the `bot` loggers are read
   this way, so a library line that happens to start with brackets is left alone;
3. otherwise `-`.

A leading `[eu1] ` is then dropped from the message text so the id is not printed twice.

`RedactingFilter` sits on every handler (not on loggers), so records of any library
(asyncpg, aiohttp, discord.py, asyncssh) are scrubbed too, tracebacks included.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from bot.config import Settings

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(server_id)s] %(message)s"
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
NO_SERVER = "-"
REDACTED = "***"
# Shorter "secrets" would blank out ordinary words all over the log.
MIN_SECRET_LENGTH = 4

# Loggers that narrate every connection or heartbeat at INFO: at least WARNING always.
CHATTY_LOGGERS = ("asyncssh", "pgserver", "discord.gateway")

_SERVER_ID = r"[a-z][a-z0-9_]{0,31}"  # registry's rule for server ids
_PREFIX_RE = re.compile(rf"^(?:[A-Za-z_]+)?\[({_SERVER_ID})\]")

# (pattern, replacement) pairs for secrets whose value we do not know in advance.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host (DSNs, proxy URLs)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+@"), rf"\1{REDACTED}@"),
    # password=... in libpq keyword DSNs and URL queries
    (re.compile(r"(?i)\b(password=)[^\s&'\",;]+"), rf"\1{REDACTED}"),
    # X-API-Key: value / 'X-API-Key': 'value' / x-api-key=value
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",;]+"), rf"\1{REDACTED}"),
    # Authorization: Bot|Bearer|Basic <token>, and any bare "Bearer <token>"
    (
        re.compile(
            r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:(?:bot|bearer|basic)\s+)?)"
            r"[^\s'\",;]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    # Discord webhook URLs carry their token in the path
    (re.compile(r"(?i)(discord(?:app)?\.com/api/(?:v\d+/)?webhooks/\d+/)[\w-]+"), rf"\1{REDACTED}"),
    # anything shaped like a Discord bot token (id.timestamp.hmac)
    (re.compile(r"\b[MNO][\w-]{23,27}\.[\w-]{6}\.[\w-]{27,}"), REDACTED),
)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values in the settings, in the spellings they may appear in a log."""
    found = [settings.discord_token, settings.postgres_password]
    if settings.database_url:
        try:
            found.append(urlsplit(settings.database_url).password)
        except ValueError:
            pass
        found.extend(m.group(1) for m in re.finditer(r"password=([^&]+)", settings.database_url))
    spellings: set[str] = set()
    for secret in filter(None, found):
        # DSNs carry the password percent-encoded; users may paste either form.
        spellings.update({secret, quote(secret, safe=""), unquote(secret)})
    return [s for s in spellings if len(s) >= MIN_SECRET_LENGTH]


class Redactor:
    """Replaces known secret values and secret-shaped patterns with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        known = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, known))) if known else None

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class RedactingFilter(logging.Filter):
    """Scrubs the rendered message, the traceback and the stack of every record it sees.

    It renders `msg % args` itself and stores the result (args cleared), so no later
    formatter can re-insert a secret from the arguments.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: log what we have rather than nothing
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def server_id_of(record: logging.LogRecord) -> str:
    """The game server a record is about (see the module docstring), or '-'."""
    explicit = getattr(record, "server_id", None)
    if explicit:
        return str(explicit)
    if record.name == "bot" or record.name.startswith("bot."):
        match = _PREFIX_RE.match(record.getMessage())
        if match:
            return match.group(1)
    return NO_SERVER


class ServerIdFilter(logging.Filter):
    """Sets `record.server_id` for the format; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.server_id = server_id_of(record)
        return True


class LineFormatter(logging.Formatter):
    """LOG_FORMAT, without repeating a leading `[id] ` that is already the server field."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        server_id = getattr(record, "server_id", NO_SERVER)  # unset without ServerIdFilter
        message = record.message.rstrip("\n")  # captured warnings end with a newline
        if server_id != NO_SERVER and message.startswith(f"[{server_id}] "):
            message = message[len(server_id) + 3 :]
        # A copy: other handlers (a test runner's capture, say) keep the record as it was.
        line = logging.makeLogRecord({**record.__dict__, "message": message})
        line.server_id = server_id
        return super().formatMessage(line)


class PoolReconnectFilter(logging.Filter):
    """asyncpg's pool warns with a full traceback on every failed reconnect during a
    database outage; say it in one line that names the database instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            cause = record.exc_info[1]
            what = record.getMessage().removesuffix("; retrying")
            record.msg = "database unreachable: %s (%s); retrying"
            record.args = (what, str(cause) or repr(cause))
            record.exc_info = record.exc_text = None
        return True


def _equip(handler: logging.Handler, redactor: Redactor, level: int) -> logging.Handler:
    handler.setLevel(level)
    handler.addFilter(RedactingFilter(redactor))  # first: later filters see clean text
    handler.addFilter(ServerIdFilter())
    handler.setFormatter(LineFormatter())
    handler._etl_stats = True  # type: ignore[attr-defined]  # ours, to replace on a re-setup
    return handler


def _file_handler(path: Path) -> logging.Handler:
    from bot.config import ConfigError  # late: bot.config does not need logging

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        raise ConfigError(
            f"LOG_FILE {str(path)!r} cannot be opened for writing: {exc.strerror or exc}"
        ) from None


def setup_logging(settings: Settings) -> list[logging.Handler]:
    """Install the process's handlers on the root logger; safe to call again.

    Only handlers installed by an earlier call are replaced, so a test runner's capture
    handlers stay. Returns the handlers installed.
    """
    level = getattr(logging, settings.log_level, logging.INFO)
    redactor = Redactor(secrets_of(settings))
    handlers = [_equip(logging.StreamHandler(sys.stderr), redactor, level)]
    if settings.log_file is not None:
        handlers.append(_equip(_file_handler(settings.log_file), redactor, level))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_etl_stats", False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    pool_logger = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, PoolReconnectFilter) for f in pool_logger.filters):
        pool_logger.addFilter(PoolReconnectFilter())
    logging.captureWarnings(True)  # warnings get the same format and the same scrubbing
    sys.excepthook = _log_uncaught
    return handlers


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """A crash's traceback goes through the handlers too, so it is scrubbed and in LOG_FILE."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, exc, tb))
