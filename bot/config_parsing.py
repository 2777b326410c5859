"""Typed parsers for environment strings, used by bot.config (and shared with bot.registry).

Each parser takes the raw string and returns a typed value, or raises ValueError whose
message completes the sentence "VARIABLE must be ...", e.g. "a whole number >= 1".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Parser = Callable[[str], object]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_DEAD_HOURS_RE = re.compile(r"(\d{1,2})-(\d{1,2})")
_URL_PASSWORD_PARAM_RE = re.compile(r"(?i)(\bpassword=)[^&]*")


@dataclass(frozen=True, slots=True)
class DeadHours:
    """Local hours [start_hour, end_hour) with no SSH polling; may wrap midnight (22-06).

    start_hour == end_hour is empty (never dead); DEAD_HOURS itself rejects that spelling.
    """

    start_hour: int
    end_hour: int

    def __post_init__(self) -> None:
        for hour in (self.start_hour, self.end_hour):
            if not 0 <= hour <= 23:
                raise ValueError(f"hour {hour} is not in 0-23")

    @property
    def empty(self) -> bool:
        return self.start_hour == self.end_hour

    def contains(self, hour: int) -> bool:
        if self.empty:
            return False
        if self.start_hour < self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour  # wraps midnight, e.g. 22-06

    def __str__(self) -> str:
        return f"{self.start_hour:02d}-{self.end_hour:02d}"


def text(raw: str) -> str:
    return raw.strip()


def verbatim(raw: str) -> str:
    """For secrets such as passwords: surrounding spaces may be meaningful."""
    return raw


def integer(
    min_value: int, max_value: int | None = None, *, what: str = "a whole number"
) -> Callable[[str], int]:
    expected = f"{what} >= {min_value}" if max_value is None else f"{what} {min_value}-{max_value}"

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if value < min_value or (max_value is not None and value > max_value):
            raise ValueError(expected)
        return value

    return parse


def port(raw: str) -> int:
    return integer(1, 65535, what="a port number")(raw)


def positive_number(what: str = "a number") -> Callable[[str], float]:
    expected = f"{what} > 0"

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(expected)
        return value

    return parse


def boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("a boolean: true/false, 1/0, yes/no or on/off")


def choice(*options: str, upper: bool = False) -> Callable[[str], str]:
    expected = "one of " + ", ".join(options)

    def parse(raw: str) -> str:
        word = raw.strip().upper() if upper else raw.strip().lower()
        if word not in options:
            raise ValueError(expected)
        return word

    return parse


def path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def load_zone(name: str) -> ZoneInfo:
    """ZoneInfo for an IANA name; ValueError (with what is expected) when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("an IANA time zone name such as Europe/Ljubljana") from None


def timezone_name(raw: str) -> str:
    name = raw.strip()
    load_zone(name)
    return name


def snowflake(raw: str) -> int:
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or int(value) == 0:
        raise ValueError("a Discord id (a positive whole number)")
    return int(value)


def id_list(raw: str) -> tuple[int, ...]:
    """Comma-separated Discord ids; blanks (e.g. a trailing comma) are ignored."""
    try:
        return tuple(snowflake(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError("a comma-separated list of Discord ids (positive whole numbers)") from None


def dead_hours(raw: str) -> DeadHours | None:
    """`HH-HH` local hours, e.g. `02-11` = [02:00, 11:00); empty = no dead hours."""
    value = raw.strip()
    if not value:
        return None
    match = _DEAD_HOURS_RE.fullmatch(value)
    try:
        if match is None or int(match[1]) == int(match[2]):
            raise ValueError
        return DeadHours(int(match[1]), int(match[2]))
    except ValueError:
        raise ValueError(
            "HH-HH with two different hours 00-23 (e.g. 02-11), or empty for none"
        ) from None


def postgres_url(raw: str) -> str:
    value = raw.strip()
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("postgres", "postgresql"):
        raise ValueError("a postgresql:// URL")
    return value


def redact_url(url: str) -> str:
    """The URL with any password (user:password@ or ?password=) replaced by ***."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<unparseable URL>"
    if has_password:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = _URL_PASSWORD_PARAM_RE.sub(r"\1***", parts.query)
    return urlunsplit(parts._replace(query=query))
