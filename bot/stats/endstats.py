"""Endstats file parser (stats-format.md §6).

Lines are split on TAB before anything else and never stripped as a whole:
names cleaned to the empty string are legal (`\\t3\\t1`, `VS_HEADER\\t\\tGUID`).
Damaged lines are skipped and recorded in `EndStats.skipped_lines`; only
StatsFileError (bad name, binary data, oversized file) leaves the parser.
"""

from __future__ import annotations

import re

from bot.stats.colors import decode_lenient
from bot.stats.filenames import parse_filename
from bot.stats.model import Award, EndStats, RejectedLine, StatsFileError, VersusBlock, VersusRow

MAX_FILE_SIZE = 1 << 20
MAX_COUNT = 2**31 - 1
BOM = b"\xef\xbb\xbf"
VS_HEADER = "VS_HEADER"

# Titles in the order the current module writes them, then the three that exist
# in its title table but are not emitted any more (§6).
KNOWN_AWARD_TITLES: tuple[str, ...] = (
    "Most damage given",
    "Most damage received",
    "Most team damage given",
    "Most team damage received",
    "Most teamkills",
    "Most selfkills",
    "Most deaths",
    "Most kills per minute",
    "Most doublekills",
    "Most multikills",
    "Quickest multikill w/ light weapons",
    "Farthest riflenade kill",
    "Most light weapon kills",
    "Most pistol kills",
    "Most rifle kills",
    "Most riflenade kills",
    "Most sniper kills",
    "Most knife kills",
    "Most air support kills",
    "Most mine kills",
    "Most grenade kills",
    "Most panzer kills",
    "Most mortar kills",
    "Most panzer deaths",
    "Mortarmagnet",
    "Most MG42 kills",
    "Most MG42 deaths",
    "Most revives",
    "Most revived",
    "Best K/D ratio",
    "Most dynamites planted",
    "Most dynamites defused",
    "Longest killing spree",
    "Longest death spree",
    "Most objectives stolen",
    "Most objectives returned",
    "Most corpse gibs",
    "Most kill assists",
    "Most killsteals",
    "Most headshot kills",
    "Tank/Meatshield (Refuses to die)",
    "Full respawn king",
    "Least time dead (What spawn?)",
    "Most playtime denied",
    "Highest light weapons accuracy",
    "Highest headshot accuracy",
    "Most headshots",
    "Most bullets fired",
    # in the module's table, not emitted by the current version
    "Most damage per minute",
    "Most useful kills (>Half respawn time left)",
    "Most useless kills",
)
_KNOWN_TITLES = frozenset(KNOWN_AWARD_TITLES)

# The first number in the value text: "3214", "2.3333333333333", "21.39 m",
# "3 kills in 2.14s" -> 3, "Damage received vs death ratio: 4.05x" -> 4.05.
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
# Control bytes never occur in an ASCII-cleaned file (TAB, LF, CR aside).
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def value_number(value: str) -> float | None:
    """The first number in an award's value text (for sorting), or None."""
    m = _NUMBER_RE.search(value)
    if m is None:
        return None
    number = float(m.group())
    return number if number - number == 0.0 else None


def _count(text: str) -> int | None:
    # str.isdigit accepts non-ASCII digits ('²', '٣'): require ASCII too.
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_COUNT else None


def _lines(data: object) -> tuple[list[str], str]:
    """Decoded complete lines (CR stripped) and the unterminated tail."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StatsFileError(f"endstats data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_FILE_SIZE:
        raise StatsFileError(f"{len(data)} bytes: too big for an endstats file")
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if not data:
        raise StatsFileError("empty endstats file (may still be being written)", retryable=True)
    if _BINARY_BYTES.search(data):
        raise StatsFileError("binary data (control bytes): not an endstats file")
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()
    lines = [decode_lenient(ln[:-1] if ln.endswith(b"\r") else ln) for ln in raw_lines]
    return lines, decode_lenient(tail)


def _award(fields: list[str], position: int) -> tuple[Award | None, str]:
    """An award line, or (None, reason) when it must be skipped."""
    title = fields[0]
    if len(fields) != 3:
        return None, f"award line with {len(fields)} fields, expected 3"
    player, value = fields[1], fields[2]
    number = value_number(value)
    if title not in _KNOWN_TITLES:
        if _count(player) is not None and _count(value) is not None:
            return None, "head-to-head row before any VS_HEADER"
        if number is None:
            return None, "unknown award title with a non-numeric value"
    if not value.strip():
        return None, "award without a value"
    return Award(position, title, player, value, number), ""


def _versus_row(fields: list[str]) -> tuple[VersusRow | None, str]:
    if len(fields) != 3:
        return None, f"head-to-head row with {len(fields)} fields, expected 3"
    kills, deaths = _count(fields[1]), _count(fields[2])
    if kills is None or deaths is None:
        return None, "head-to-head row with a non-numeric count"
    return VersusRow(fields[0], kills, deaths), ""


def _versus_header(fields: list[str]) -> tuple[VersusBlock | None, str]:
    if len(fields) != 3:
        return None, f"VS_HEADER with {len(fields)} fields, expected 3"
    guid = fields[2].strip().upper()
    if not guid or not guid.isascii() or not guid.replace("_", "").isalnum():
        return None, "VS_HEADER without a valid GUID"
    return VersusBlock(fields[1], guid), ""


def _parse(data: object, filename: str) -> EndStats:
    fname = parse_filename(filename)
    if not fname.is_endstats:
        raise StatsFileError(f"{filename} is a stats file, not an endstats file")
    lines, tail = _lines(data)
    es = EndStats(file=fname)
    block: VersusBlock | None = None
    in_versus = False  # the award block ends at the first VS_HEADER
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        reason = ""
        if fields[0] == VS_HEADER:
            in_versus = True
            block, reason = _versus_header(fields)
            if block is not None:
                es.versus.append(block)
        elif not in_versus:
            award, reason = _award(fields, len(es.awards))
            if award is not None:
                es.awards.append(award)
        elif block is None:
            reason = "head-to-head row without a valid VS_HEADER"
        else:
            row, reason = _versus_row(fields)
            if row is not None:
                block.rows.append(row)
        if reason:
            es.skipped_lines.append(RejectedLine(number, reason))
        else:
            es.line_count += 1
    if tail:  # still being written, or cut: a cut number would be wrong, drop it
        if not lines:
            raise StatsFileError("no complete line (may still be being written)", retryable=True)
        es.skipped_lines.append(RejectedLine(len(lines) + 1, "truncated: no final LF"))
    if es.line_count == 0:
        raise StatsFileError("no usable award or head-to-head line: not an endstats file")
    return es


def parse_endstats_file(data: bytes, filename: str) -> EndStats:
    """Parse one endstats file; damaged lines land in `skipped_lines`."""
    try:
        return _parse(data, filename)
    except StatsFileError:
        raise
    except Exception as exc:  # defensive: a parser bug must not crash the poller
        raise StatsFileError(f"unexpected endstats error: {type(exc).__name__}: {exc}") from exc
