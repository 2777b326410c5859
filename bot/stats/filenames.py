"""Stats and endstats file names (stats-format.md §1).

One anchored pattern, never a split on '-': map names and dates contain dashes.
The timestamp is fixed width and the `-round-N(-endstats)?.txt` tail is anchored
at the end, so the map is everything in between (greedy: the last `-round-`
wins). Server ids start with a letter and have no dash, so a name starting with
four digits and a dash is a legacy (unprefixed) name.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.stats.model import StatsFileError, StatsFileName

# re.ASCII: without it \d would also accept non-ASCII digits such as '٢'.
FILENAME_RE = re.compile(
    r"""(?x)  ^(?:(?P<server>[a-z][a-z0-9_]{0,31})-)?
          (?P<date>\d{4}-\d{2}-\d{2})-(?P<time>\d{6})-
          (?P<map>[A-Za-z0-9_-]+)-round-(?P<round>[12])(?P<endstats>-endstats)?\.txt$""",
    re.ASCII,
)
MAX_NAME_LENGTH = 255


def _check_basename(name: object) -> str:
    if not isinstance(name, str):
        raise StatsFileError(f"file name is not a string: {type(name).__name__}")
    if not name:
        raise StatsFileError("empty file name")
    if len(name) > MAX_NAME_LENGTH:
        raise StatsFileError(f"file name longer than {MAX_NAME_LENGTH} characters")
    for bad in ("/", "\\", "\x00", ".."):
        if bad in name:
            raise StatsFileError(f"file name must be a bare basename (contains {bad!r})")
    return name


def parse_filename(name: str) -> StatsFileName:
    """Validate and parse a stats/endstats file name; StatsFileError otherwise."""
    name = _check_basename(name)
    # fullmatch: '$' alone would also accept a trailing newline.
    m = FILENAME_RE.fullmatch(name)
    if m is None:
        raise StatsFileError(f"not a stats file name: {name!r}")
    year, month, day = (int(x) for x in m["date"].split("-"))
    t = m["time"]
    hour, minute, second = int(t[0:2]), int(t[2:4]), int(t[4:6])
    if hour > 23 or minute > 59 or second > 59:
        raise StatsFileError(f"impossible time {t} in file name {name!r}")
    try:
        timestamp = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise StatsFileError(f"impossible date {m['date']} in file name {name!r}") from exc
    return StatsFileName(
        basename=name,
        server_id=m["server"],
        timestamp=timestamp,
        map_name=m["map"],
        round_number=int(m["round"]),
        is_endstats=m["endstats"] is not None,
    )


def is_valid_filename(name: str) -> bool:
    """True when `parse_filename` would accept the name."""
    try:
        parse_filename(name)
    except StatsFileError:
        return False
    return True
