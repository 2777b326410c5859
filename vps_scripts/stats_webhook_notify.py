#!/usr/bin/env python3
"""Tell the ET:Legacy stats bot about new round stats files (stdlib only).

An alternative to the Lua modules for servers where you would rather run a small
service next to the game than a script inside it. It polls the game's
`gamestats/` directory every few seconds and, for every new stats or endstats
file (names checked against the anchored pattern of stats-format.md §1; logs,
`*_ws.txt` sidecars and anything else are ignored), either

  --mode webhook  posts a Discord webhook message in the bot's control channel
                  naming the file: {"username": ..., "content": "📊 `<name>`"}
                  (🏆 for endstats). The bot then fetches it over SFTP.
  --mode api      uploads the file itself: POST <API_URL>/api/ingest/stats with
                  headers X-Server-ID, X-API-Key, X-Filename and the raw bytes.

Answers: 2xx -> done. 429, 5xx or no answer -> retried with exponential backoff
(Retry-After honoured). Any other 4xx -> logged and dropped: it will never
succeed (bad key, file too large, wrong name ...).

What was sent (and what was dropped) is remembered in a small JSON state file,
written atomically, so a restart does not announce a file twice. Only files
modified within --max-age-hours are considered, so a first start does not
replay years of history; a file must also be --settle seconds old, so it is
never read while the game is still writing it.

Configuration (flag, or environment variable; flags win):
  --stats-dir DIR          ETSTATS_STATS_DIR       the gamestats directory (required)
  --mode webhook|api       ETSTATS_MODE            default webhook
  --webhook-url URL        ETSTATS_WEBHOOK_URL     Discord webhook URL (webhook mode)
  --username NAME          ETSTATS_WEBHOOK_USERNAME  default "ET Stats"
  --server-id ID           ETSTATS_SERVER_ID       our id for this server (api mode,
                                                   and for --prefix-filenames)
  --prefix-filenames       ETSTATS_PREFIX_FILENAMES=1  send "ID-<name>" instead of <name>
  --api-url URL            ETSTATS_API_URL         base URL of the bot's API (api mode)
  --api-key-file FILE      ETSTATS_API_KEY_FILE    file holding the API key (api mode)
                           ETSTATS_API_KEY         the key itself (no flag: flags show in ps)
  --state-file FILE        ETSTATS_STATE_FILE      default <stats-dir>/.etstats-notify-<mode>.json
  --interval SECONDS       ETSTATS_INTERVAL        poll interval, default 5
  --settle SECONDS         ETSTATS_SETTLE          minimum file age, default 2
  --max-age-hours HOURS    ETSTATS_MAX_AGE_HOURS   ignore older files, default 24 (0: no limit)
  --timeout SECONDS        ETSTATS_TIMEOUT         per HTTP request, default 10
  --retry-base SECONDS     ETSTATS_RETRY_BASE      first backoff, default 5 (doubles)
  --retry-max SECONDS      ETSTATS_RETRY_MAX       longest backoff, default 300
  --max-attempts N         ETSTATS_MAX_ATTEMPTS    tries per file with --once, default 5
  --once                                           one pass (plus its retries), then exit:
                                                   0 all delivered/dropped, 1 some left

Logs go to stderr. The webhook token (the part of the URL after the webhook id)
and the API key are never logged.

Example: python3 stats_webhook_notify.py --stats-dir ~/.etlegacy/legacy/gamestats \\
             --webhook-url "$URL" --server-id eu1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

VERSION = "1.0.0"
LOG = logging.getLogger("etstats_notify")
USER_AGENT = f"etstats-notify/{VERSION}"
STATS_EMOJI = "\U0001f4ca"  # 📊
ENDSTATS_EMOJI = "\U0001f3c6"  # 🏆
MAX_NAME_LENGTH = 255
STATE_VERSION = 1

# stats-format.md §1. re.ASCII: \d must not accept non-ASCII digits.
FILENAME_RE = re.compile(
    r"""(?x)  ^(?:(?P<server>[a-z][a-z0-9_]{0,31})-)?
          (?P<date>\d{4}-\d{2}-\d{2})-(?P<time>\d{6})-
          (?P<map>[A-Za-z0-9_-]+)-round-(?P<round>[12])(?P<endstats>-endstats)?\.txt$""",
    re.ASCII,
)
SERVER_ID_RE = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class StatsName:
    name: str
    server: str | None
    timestamp: datetime
    map_name: str
    round_number: int
    is_endstats: bool


def parse_name(name: str) -> StatsName | None:
    """The parsed name, or None when `name` is not a valid stats/endstats name."""
    if not name or len(name) > MAX_NAME_LENGTH:
        return None
    if any(bad in name for bad in ("/", "\\", "\x00", "..")):
        return None
    m = FILENAME_RE.fullmatch(name)  # fullmatch: '$' alone accepts a trailing newline
    if m is None:
        return None
    t = m["time"]
    try:
        stamp = datetime.strptime(f"{m['date']} {t}", "%Y-%m-%d %H%M%S")
    except ValueError:
        return None
    return StatsName(
        name=name,
        server=m["server"],
        timestamp=stamp,
        map_name=m["map"],
        round_number=int(m["round"]),
        is_endstats=m["endstats"] is not None,
    )


def display_name(name: str, server_id: str | None, prefix: bool) -> str:
    """The name to announce: the module's name, optionally prefixed with our id."""
    if prefix and server_id and name[:4].isdigit():
        return f"{server_id}-{name}"
    return name


# ------------------------------------------------------------------------ secrets


def redact_url(url: str) -> str:
    """A URL safe to log: the webhook token and any query string are hidden."""
    url = re.sub(r"(/webhooks/\d+/)[^/?#]+", r"\1***", url)
    return re.sub(r"\?.*$", "?***", url)


class RedactFilter(logging.Filter):
    """Replaces every secret in a log record's message by ***."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
        return True


def webhook_token(url: str) -> str | None:
    m = re.search(r"/webhooks/\d+/([^/?#]+)", url)
    return m.group(1) if m else None


# ----------------------------------------------------------------------- config


@dataclass
class Config:
    stats_dir: Path
    mode: str
    webhook_url: str | None
    username: str
    server_id: str | None
    prefix: bool
    api_url: str | None
    api_key: str | None
    state_file: Path
    interval: float
    settle: float
    max_age_hours: float
    timeout: float
    retry_base: float
    retry_max: float
    max_attempts: int
    once: bool


def _env_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def e(name: str, default: str | None = None) -> str | None:
        return env.get(f"ETSTATS_{name}", default)

    p = argparse.ArgumentParser(
        prog="stats_webhook_notify.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # String defaults from the environment go through `type=` like typed values,
    # so a bad ETSTATS_* number is reported as a usage error, not a traceback.
    p.add_argument("--stats-dir", default=e("STATS_DIR"), help="the gamestats directory")
    p.add_argument("--mode", choices=("webhook", "api"), default=e("MODE", "webhook"))
    p.add_argument("--webhook-url", default=e("WEBHOOK_URL"), help="Discord webhook URL")
    p.add_argument("--username", default=e("WEBHOOK_USERNAME", "ET Stats"))
    p.add_argument("--server-id", default=e("SERVER_ID"), help="our id for this server")
    p.add_argument(
        "--prefix-filenames",
        action="store_true",
        default=_env_bool(e("PREFIX_FILENAMES")),
        help="announce SERVER_ID-<name> instead of the module's name",
    )
    p.add_argument("--api-url", default=e("API_URL"), help="base URL of the bot's API")
    p.add_argument("--api-key-file", default=e("API_KEY_FILE"), help="file holding the key")
    p.add_argument("--state-file", default=e("STATE_FILE"))
    p.add_argument("--interval", type=float, default=e("INTERVAL", "5"))
    p.add_argument("--settle", type=float, default=e("SETTLE", "2"))
    p.add_argument("--max-age-hours", type=float, default=e("MAX_AGE_HOURS", "24"))
    p.add_argument("--timeout", type=float, default=e("TIMEOUT", "10"))
    p.add_argument("--retry-base", type=float, default=e("RETRY_BASE", "5"))
    p.add_argument("--retry-max", type=float, default=e("RETRY_MAX", "300"))
    p.add_argument("--max-attempts", type=int, default=e("MAX_ATTEMPTS", "5"))
    p.add_argument("--once", action="store_true", help="one pass with retries, then exit")
    p.add_argument("--version", action="version", version=VERSION)
    return p


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    parser = build_parser(env)
    a = parser.parse_args(argv)
    if not a.stats_dir:
        parser.error("--stats-dir (or ETSTATS_STATS_DIR) is required")
    if a.server_id and not SERVER_ID_RE.fullmatch(a.server_id):
        parser.error("--server-id must match [a-z][a-z0-9_]{0,31}")
    if a.prefix_filenames and not a.server_id:
        parser.error("--prefix-filenames needs --server-id")
    api_key = None
    if a.mode == "webhook":
        if not a.webhook_url:
            parser.error("--webhook-url (or ETSTATS_WEBHOOK_URL) is required in webhook mode")
    else:
        if not (a.api_url and a.server_id):
            parser.error("api mode needs --api-url and --server-id")
        api_key = env.get("ETSTATS_API_KEY") or None
        if not api_key and a.api_key_file:
            try:
                api_key = Path(a.api_key_file).read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                parser.error(f"cannot read --api-key-file: {exc.strerror}")
        if not api_key:
            parser.error("api mode needs ETSTATS_API_KEY or --api-key-file")
    stats_dir = Path(a.stats_dir).expanduser()
    state = a.state_file or str(stats_dir / f".etstats-notify-{a.mode}.json")
    return Config(
        stats_dir=stats_dir,
        mode=a.mode,
        webhook_url=a.webhook_url,
        username=a.username,
        server_id=a.server_id,
        prefix=a.prefix_filenames,
        api_url=a.api_url,
        api_key=api_key,
        state_file=Path(state).expanduser(),
        interval=max(a.interval, 0.1),
        settle=max(a.settle, 0.0),
        max_age_hours=max(a.max_age_hours, 0.0),
        timeout=max(a.timeout, 1.0),
        retry_base=max(a.retry_base, 0.0),
        retry_max=max(a.retry_max, 0.0),
        max_attempts=max(a.max_attempts, 1),
        once=a.once,
    )


# ------------------------------------------------------------------------ state


@dataclass
class State:
    """What was sent or dropped, by file name; persisted as JSON."""

    path: Path
    sent: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        state = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as exc:
            LOG.warning("state file %s unreadable (%s); starting empty", path, exc)
            return state
        if isinstance(data, dict):
            state.sent = {str(k): float(v) for k, v in dict(data.get("sent", {})).items()}
            state.dropped = {str(k): str(v) for k, v in dict(data.get("dropped", {})).items()}
        return state

    def done(self, name: str) -> bool:
        return name in self.sent or name in self.dropped

    def prune(self, existing: set[str]) -> bool:
        """Forget files that no longer exist; True when something changed."""
        before = len(self.sent) + len(self.dropped)
        self.sent = {k: v for k, v in self.sent.items() if k in existing}
        self.dropped = {k: v for k, v in self.dropped.items() if k in existing}
        return len(self.sent) + len(self.dropped) != before

    def save(self) -> None:
        """Atomic: a temporary file in the same directory, fsync, os.replace."""
        data = {"version": STATE_VERSION, "sent": self.sent, "dropped": self.dropped}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".etstats-state-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# ------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Response:
    status: int  # 0: no answer (connection refused, timeout, DNS ...)
    retry_after: float | None
    body: bytes
    error: str = ""


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
    req = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, None, resp.read(4096))
    except urllib.error.HTTPError as exc:
        try:
            payload = exc.read(4096)
        except OSError:
            payload = b""
        return Response(exc.code, _retry_after(exc.headers.get("Retry-After")), payload)
    except (urllib.error.URLError, OSError) as exc:  # TimeoutError is an OSError
        reason = getattr(exc, "reason", exc)
        return Response(0, None, b"", error=str(reason))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify(status: int) -> str:
    """'done', 'retry' or 'drop' -- the contract shared with the Lua scripts."""
    if 200 <= status < 300:
        return "done"
    if status in (0, 429) or status >= 500:
        return "retry"
    if 400 <= status < 500:
        return "drop"
    return "retry"  # 1xx/3xx: probably a wrong URL; keep the file


Poster = Callable[[str, bytes, Mapping[str, str], float], Response]


class Sender:
    """Builds and sends one request for one file."""

    def __init__(self, cfg: Config, post: Poster = http_post) -> None:
        self.cfg = cfg
        self.post = post

    def webhook_url(self) -> str:
        url = self.cfg.webhook_url or ""
        if re.search(r"[?&]wait=", url):
            return url
        return url + ("&" if "?" in url else "?") + "wait=true"

    def send(self, parsed: StatsName) -> Response:
        cfg = self.cfg
        shown = display_name(parsed.name, cfg.server_id, cfg.prefix)
        if cfg.mode == "webhook":
            emoji = ENDSTATS_EMOJI if parsed.is_endstats else STATS_EMOJI
            message = {"username": cfg.username, "content": f"{emoji} `{shown}`"}
            body = json.dumps(message, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
            return self.post(self.webhook_url(), body, headers, cfg.timeout)
        body = (cfg.stats_dir / parsed.name).read_bytes()
        headers = {
            "X-Server-ID": cfg.server_id or "",
            "X-API-Key": cfg.api_key or "",
            "X-Filename": shown,
            "Content-Type": "text/plain",
            "User-Agent": USER_AGENT,
        }
        url = (cfg.api_url or "").rstrip("/") + "/api/ingest/stats"
        return self.post(url, body, headers, cfg.timeout)


# ---------------------------------------------------------------------- watcher


@dataclass
class Pending:
    attempts: int = 0
    next_try: float = 0.0


class Notifier:
    def __init__(
        self,
        cfg: Config,
        state: State,
        sender: Sender,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.state = state
        self.sender = sender
        self.clock = clock
        self.sleep = sleep
        self.pending: dict[str, Pending] = {}

    def scan(self) -> tuple[list[StatsName], set[str]]:
        """Eligible new files (oldest first) and every valid name present."""
        now = self.clock()
        eligible: list[StatsName] = []
        present: set[str] = set()
        try:
            entries = list(os.scandir(self.cfg.stats_dir))
        except OSError as exc:
            LOG.error("cannot list %s: %s", self.cfg.stats_dir, exc.strerror)
            return [], present
        for entry in entries:
            parsed = parse_name(entry.name)
            if parsed is None:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            present.add(entry.name)
            if self.state.done(entry.name) or now - mtime < self.cfg.settle:
                continue
            if self.cfg.max_age_hours and now - mtime > self.cfg.max_age_hours * 3600:
                continue
            eligible.append(parsed)
        eligible.sort(key=lambda p: (p.timestamp, p.is_endstats, p.name))
        return eligible, present

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.cfg.retry_max, self.cfg.retry_base * 2 ** max(attempts - 1, 0))
        if retry_after is not None:
            delay = max(delay, min(retry_after, 3600.0))
        return delay

    def deliver(self, parsed: StatsName) -> str:
        """Send one file; record the outcome. Returns 'done', 'retry' or 'drop'."""
        name = parsed.name
        pending = self.pending.setdefault(name, Pending())
        pending.attempts += 1
        try:
            resp = self.sender.send(parsed)
        except OSError as exc:  # the file vanished or is unreadable
            LOG.warning("cannot read %s: %s", name, exc.strerror)
            self.pending.pop(name, None)
            return "drop"
        verdict = classify(resp.status)
        what = f"HTTP {resp.status}" if resp.status else f"no answer ({resp.error})"
        if verdict == "done":
            LOG.info("sent %s (%s)", name, what)
            self.state.sent[name] = round(self.clock(), 3)
            self.pending.pop(name, None)
        elif verdict == "drop":
            reason = resp.body[:300].decode("utf-8", "replace").replace("\n", " ")
            LOG.error("dropped %s: %s %s", name, what, reason)
            self.state.dropped[name] = f"{what} {reason}".strip()
            self.pending.pop(name, None)
        else:
            delay = self.backoff(pending.attempts, resp.retry_after)
            pending.next_try = self.clock() + delay
            LOG.warning(
                "%s failed (%s), attempt %d; retrying in %.1f s",
                name,
                what,
                pending.attempts,
                delay,
            )
        return verdict

    def run_pass(self, limit_attempts: bool) -> None:
        eligible, present = self.scan()
        changed = self.state.prune(present)
        now = self.clock()
        for parsed in eligible:
            pending = self.pending.get(parsed.name)
            if pending and pending.next_try > now:
                continue
            if limit_attempts and pending and pending.attempts >= self.cfg.max_attempts:
                continue
            if self.deliver(parsed) != "retry":
                changed = True
        # Forget retries of files that vanished or aged out (--once would
        # otherwise wait for them forever).
        eligible_names = {p.name for p in eligible}
        for name in list(self.pending):
            if name not in eligible_names:
                del self.pending[name]
        if changed:
            self.state.save()

    def waiting(self) -> list[Pending]:
        """Pending files that still have attempts left (--once)."""
        return [p for p in self.pending.values() if p.attempts < self.cfg.max_attempts]

    def run_once(self) -> int:
        self.run_pass(limit_attempts=True)
        while waiting := self.waiting():
            delay = min(p.next_try for p in waiting) - self.clock()
            if delay > 0:
                self.sleep(delay)
            self.run_pass(limit_attempts=True)
        if self.pending:
            LOG.error("%d file(s) not delivered; they will be retried next run", len(self.pending))
            return 1
        return 0

    def run_forever(self) -> None:
        while True:
            self.run_pass(limit_attempts=False)
            delay = self.cfg.interval
            if self.pending:
                soonest = min(p.next_try for p in self.pending.values()) - self.clock()
                delay = max(0.1, min(delay, soonest))
            self.sleep(delay)


# ------------------------------------------------------------------------- main


def setup_logging(secrets: Sequence[str]) -> None:
    for handler in list(LOG.handlers):
        if getattr(handler, "_etstats", False):
            LOG.removeHandler(handler)
    for flt in list(LOG.filters):
        if isinstance(flt, RedactFilter):
            LOG.removeFilter(flt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler._etstats = True  # type: ignore[attr-defined]
    LOG.addHandler(handler)
    LOG.addFilter(RedactFilter(secrets))
    LOG.setLevel(logging.INFO)


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    post: Poster = http_post,
) -> int:
    env = os.environ if env is None else env
    cfg = load_config(sys.argv[1:] if argv is None else argv, env)
    secrets = [s for s in (cfg.api_key, webhook_token(cfg.webhook_url or "")) if s]
    setup_logging(secrets)
    target = redact_url(cfg.webhook_url or "") if cfg.mode == "webhook" else cfg.api_url
    LOG.info("v%s %s mode: watching %s -> %s", VERSION, cfg.mode, cfg.stats_dir, target)
    notifier = Notifier(cfg, State.load(cfg.state_file), Sender(cfg, post))
    if cfg.once:
        return notifier.run_once()
    try:
        notifier.run_forever()
    except KeyboardInterrupt:
        LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
