"""Stats file parser (stats-format.md §2-§4, §7).

The file is handled as bytes: BOM and trailing CRs are stripped and lines are
split on the ASCII separators before anything is decoded, so odd bytes in a
name can never shift a number. Name fields are decoded UTF-8 first, Latin-1 as
a per-field fallback (see `colors.decode_lenient`).

Speed: numbers are looked up in tables of canonical values (a dict hit is
canonical, finite and in range by construction); a miss falls back to bulk
int()/float() with range checks, and anything doubtful to a field-by-field
pass that decides between "reject the line" and "unknown value (None)".
Only StatsFileError leaves `parse_stats_file`.
"""

from __future__ import annotations

from collections import defaultdict

from bot.stats.colors import ascii_clean, decode_lenient, strip_colors
from bot.stats.filenames import parse_filename
from bot.stats.model import (
    EXTENDED_FIELDS,
    PlayerStats,
    RejectedLine,
    Round,
    StatsFileError,
    StatsFileName,
    WeaponStats,
)

MAX_FILE_SIZE = 1 << 20  # a bigger file is not a stats file (§7)
MAX_COUNTER = 2**31 - 1  # a 32-bit game counter cannot exceed this
MAX_MASK = 2**64 - 1  # room for weapon ids a future module might add
# Game time is a 32-bit millisecond counter: no time column can exceed this.
MAX_MINUTES = MAX_COUNTER / 60000
BOM = b"\xef\xbb\xbf"

WEAPON_NAMES: tuple[str, ...] = (
    "WS_KNIFE", "WS_KNIFE_KBAR", "WS_LUGER", "WS_COLT", "WS_MP40", "WS_THOMPSON",
    "WS_STEN", "WS_FG42", "WS_PANZERFAUST", "WS_BAZOOKA", "WS_FLAMETHROWER",
    "WS_GRENADE", "WS_MORTAR", "WS_MORTAR2", "WS_DYNAMITE", "WS_AIRSTRIKE",
    "WS_ARTILLERY", "WS_SATCHEL", "WS_GRENADELAUNCHER", "WS_LANDMINE", "WS_MG42",
    "WS_BROWNING", "WS_CARBINE", "WS_KAR98", "WS_GARAND", "WS_K43", "WS_MP34",
    "WS_SYRINGE",
)  # fmt: skip
N_EXTENDED = len(EXTENDED_FIELDS)  # 38
# Floats whose garbage (-nan, inf, text) means "unknown" but keeps the line.
DERIVED_FLOAT_INDEXES = frozenset({8, 21, 23, 24, 26})
# Time columns: needed for rates, so garbage there rejects the line.
TIME_INDEXES = frozenset({22, 25})

_mask_cache: dict[bytes, tuple[str, ...]] = {}
_name_cache: dict[bytes, tuple[str, str, str]] = {}
_guid_cache: dict[bytes, str] = {}
_CACHE_LIMIT = 4096

# Lookup tables for the values that make up nearly every field: a dict hit is
# ~3x cheaper than int()/float() on bytes, and a hit is by construction
# canonical, finite and in range. Misses (big or odd values) take the checked
# path. ~20k entries, about 2 MB.
_INT_TABLE: dict[bytes, int] = {str(i).encode(): i for i in range(10000)}
_FLOAT_TABLE: dict[bytes, float] = {
    f"{i // 10}.{i % 10}".encode(): float(f"{i // 10}.{i % 10}") for i in range(10000)
}
_INT_LOOKUP = _INT_TABLE.__getitem__
_INT_GET = _INT_TABLE.get
_FLOAT_LOOKUP = _FLOAT_TABLE.__getitem__


class _Reject(Exception):
    """A player line that must be dropped; `reason` goes into RejectedLine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def weapon_name(weapon_id: int) -> str:
    """WS_* name of a weapon id; `unknown_<id>` beyond the known table (§2.4)."""
    return WEAPON_NAMES[weapon_id] if weapon_id < len(WEAPON_NAMES) else f"unknown_{weapon_id}"


# Names of the set bits of each byte of a 32-bit mask: decoding a new mask is
# four lookups instead of a loop over 28 bits (masks vary from line to line).
_BYTE_NAMES = tuple(
    tuple(tuple(weapon_name(8 * k + b) for b in range(8) if v >> b & 1) for v in range(256))
    for k in range(4)
)


def _mask_names(mask_b: bytes) -> tuple[str, ...]:
    """Weapon names for the set bits of a mask field, in increasing bit order."""
    names = _mask_cache.get(mask_b)
    if names is None:
        mask = int(mask_b) if mask_b.isdigit() and len(mask_b) <= 20 else -1
        if not 0 <= mask <= MAX_MASK:
            raise _Reject(f"bad weapon mask {mask_b[:40]!r}")
        b0, b1, b2, b3 = _BYTE_NAMES
        names = b0[mask & 255] + b1[mask >> 8 & 255] + b2[mask >> 16 & 255] + b3[mask >> 24 & 255]
        if mask >> 32:  # beyond any module so far: unknown weapons 32..63
            names += tuple(weapon_name(b) for b in range(32, mask.bit_length()) if mask >> b & 1)
        if len(_mask_cache) >= _CACHE_LIMIT:
            _mask_cache.clear()
        _mask_cache[mask_b] = names
    return names


def _names(raw: bytes) -> tuple[str, str, str]:
    """(raw_name, display name, ASCII key) of a name field (cached: names repeat)."""
    got = _name_cache.get(raw)
    if got is None:
        text = decode_lenient(raw)
        got = (text, strip_colors(text), ascii_clean(raw))
        if len(_name_cache) >= _CACHE_LIMIT:
            _name_cache.clear()
        _name_cache[raw] = got
    return got


def _counter(raw: bytes, what: str) -> int:
    value = _INT_GET(raw)
    if value is not None:
        return value
    # bytes.isdigit is ASCII-only and False for b"", "-5", "+5", "1_0", " 5".
    if not raw.isdigit():
        raise _Reject(f"{what}: not a non-negative integer: {raw[:40]!r}")
    # The length test also keeps int() clear of its 4300-digit ValueError.
    if len(raw) > 10 or int(raw) > MAX_COUNTER:
        raise _Reject(f"{what}: {raw[:40]!r} exceeds 2^31-1")
    return int(raw)


def _guid(raw: bytes) -> str:
    guid = _guid_cache.get(raw)
    if guid is None:
        # GUID8 is hex for humans, OMNIBOT... for bots; "NO_GUID" exists on some servers.
        if not 0 < len(raw) <= 32 or not (raw.isalnum() or raw.replace(b"_", b"").isalnum()):
            raise _Reject(f"bad GUID {raw[:40]!r}")
        guid = raw.decode("ascii").upper()
        if len(_guid_cache) >= _CACHE_LIMIT:
            _guid_cache.clear()
        _guid_cache[raw] = guid
    return guid


def _checked_ints(nums: list[bytes], what: str) -> list[int]:
    """int() over fields that missed the lookup table, with the §7 range rule."""
    if any(b"+" in x or b"_" in x for x in nums):  # int() accepts these, the game never writes them
        raise _Reject(f"non-numeric value in {what}")
    try:
        vals = list(map(int, nums))
    except ValueError:  # also: more than 4300 digits
        raise _Reject(f"non-numeric value in {what}") from None
    if min(vals) < 0 or max(vals) > MAX_COUNTER:
        raise _Reject(f"{what}: counter out of range 0..2^31-1")
    return vals


def _parse_weapons(block: bytes) -> dict[str, WeaponStats]:
    nums = block.split()
    if not nums:
        raise _Reject("missing weapon mask")
    names = _mask_names(nums[0])
    if len(nums) != 1 + 5 * len(names):
        raise _Reject(f"mask has {len(names)} weapons but {len(nums) - 1} values follow")
    del nums[0]
    # No strict= on the zip: the length test above already guarantees 5 values
    # per name, and strict zips cost ~10% of the line here.
    try:
        it = map(_INT_LOOKUP, nums)
        return dict(zip(names, map(WeaponStats, it, it, it, it, it)))  # noqa: B905
    except KeyError:
        it = iter(_checked_ints(nums, "weapon block"))
        return dict(zip(names, map(WeaponStats, it, it, it, it, it)))  # noqa: B905


def _is_finite(x: float) -> bool:
    return x - x == 0.0  # False for nan and +-inf, no function call


def _parse_extended(ext: bytes) -> list[int | float | None]:
    """The 38 TAB fields in file order; missing ones (older layouts) are None."""
    f = ext.split(b"\t")
    if len(f) < N_EXTENDED:
        return _parse_extended_slow(f)
    try:  # table lookups: every value found is canonical, finite and in range
        return [
            *map(_INT_LOOKUP, f[0:8]),
            _FLOAT_LOOKUP(f[8]),
            *map(_INT_LOOKUP, f[9:21]),
            *map(_FLOAT_LOOKUP, f[21:27]),
            *map(_INT_LOOKUP, f[27:38]),
        ]
    except KeyError:
        return _parse_extended_checked(f, ext)


def _parse_extended_checked(f: list[bytes], ext: bytes) -> list[int | float | None]:
    """Bulk int()/float() with range checks; the field-by-field pass on doubt."""
    if b"+" in ext or b"_" in ext:
        return _parse_extended_slow(f)
    try:
        a = list(map(int, f[0:8]))
        ap = float(f[8])
        b = list(map(int, f[9:21]))
        fl = list(map(float, f[21:27]))
        c = list(map(int, f[27:38]))
    except ValueError:
        return _parse_extended_slow(f)
    ints = a + b + c
    if min(ints) < 0 or max(ints) > MAX_COUNTER:
        return _parse_extended_slow(f)  # to name the offending field
    if not (0.0 <= fl[1] <= MAX_MINUTES and 0.0 <= fl[4] <= MAX_MINUTES):
        return _parse_extended_slow(f)
    vals: list[int | float | None] = [*a, ap, *b, *fl, *c]
    for i in DERIVED_FLOAT_INDEXES:
        if not _is_finite(vals[i]):  # type: ignore[arg-type]
            vals[i] = None
    return vals


def _parse_extended_slow(f: list[bytes]) -> list[int | float | None]:
    """Field-by-field: names the field that rejects the line, Nones the rest."""
    vals: list[int | float | None] = [None] * N_EXTENDED
    for i, ((name, kind), raw) in enumerate(zip(EXTENDED_FIELDS, f, strict=False)):
        if kind == "int":
            vals[i] = _counter(raw.strip(), f"field {i} ({name})")
            continue
        try:
            x: float | None = float(raw)
        except ValueError:
            x = None
        if i in TIME_INDEXES:
            if x is None or not 0.0 <= x <= MAX_MINUTES:
                raise _Reject(f"field {i} ({name}): bad time {raw[:40]!r}")
            vals[i] = x
        else:
            vals[i] = x if x is not None and _is_finite(x) else None
    return vals


def _parse_player(line: bytes) -> PlayerStats:
    parts = line.split(b"\\", 4)
    if len(parts) != 5:
        raise _Reject(f"expected 5 backslash-separated parts, found {len(parts)}")
    guid_b, name_b, rounds_b, team_b, rest = parts
    guid = _guid(guid_b)
    rounds = _counter(rounds_b, "rounds")
    team = _INT_GET(team_b)
    if team is None or not 1 <= team <= 3:
        raise _Reject(f"team {team_b[:40]!r} is not 1, 2 or 3")
    block, _, ext_b = rest.partition(b"\t")
    weapons = _parse_weapons(block)
    # Older layouts: no TAB section (or an empty one): every value unknown.
    ext = _parse_extended(ext_b) if ext_b else []
    raw_name, name, name_ascii = _names(name_b)
    is_bot = guid.startswith("OMNIBOT")
    return PlayerStats(guid, raw_name, name, name_ascii, is_bot, rounds, team, weapons, *ext)


def _header_int(raw: bytes, what: str) -> int:
    value = raw.strip()
    if not value.isdigit() or len(value) > 9:
        raise StatsFileError(f"header {what} is not a small integer: {raw[:40]!r}")
    return int(value)


def _parse_duration(fields: list[bytes]) -> tuple[int | None, bool]:
    """(duration_ms or None, aborted) from header field 8 (§2.1)."""
    if len(fields) < 9:
        return None, False
    raw = fields[8].strip()
    digits = raw[1:] if raw.startswith(b"-") else raw
    if not digits.isdigit() or len(digits) > 18:
        return None, False  # unreadable: unknown, not a reason to drop the round
    value = int(raw)
    if value < 0:
        return None, True  # map change / shutdown before intermission
    if value == 0:
        return None, False
    # Older modules wrote seconds; no round lasts under 7.2 s or over 2 h.
    return (value if value > 7200 else value * 1000), False


def _clock_seconds(text: str) -> int | None:
    """'M:SS' -> seconds (minutes unpadded, may exceed 59); None if malformed."""
    minutes, sep, seconds = text.partition(":")
    if not sep or not 0 < len(minutes) <= 6 or len(seconds) != 2:
        return None
    if not (minutes + seconds).isascii() or not (minutes + seconds).isdigit():
        return None  # str.isdigit alone would accept '²' or '٣'
    return int(minutes) * 60 + int(seconds) if int(seconds) <= 59 else None


def _parse_header(line: bytes, fname: StatsFileName) -> Round:
    fields = line.split(b"\\")
    if len(fields) < 8:
        raise StatsFileError(f"header has {len(fields)} fields, a stats header has 8 or 9")
    round_number = _header_int(fields[3], "round")
    if round_number not in (1, 2):
        raise StatsFileError(f"header round {round_number} is not 1 or 2")
    if round_number != fname.round_number:
        raise StatsFileError(
            f"header round {round_number} contradicts file name round {fname.round_number}"
        )
    map_name = decode_lenient(fields[1]).strip()
    if not map_name:
        raise StatsFileError("header has an empty map name")
    server_raw = decode_lenient(fields[0])
    time_limit = decode_lenient(fields[6]).strip()
    duration_ms, aborted = _parse_duration(fields)
    return Round(
        file=fname,
        server_name_raw=server_raw,
        server_name=strip_colors(server_raw),
        map_name=map_name,
        config=decode_lenient(fields[2]),
        round_number=round_number,
        defender=_header_int(fields[4], "defender"),
        winner=_header_int(fields[5], "winner"),
        time_limit=time_limit,
        time_limit_seconds=_clock_seconds(time_limit),
        next_time_limit=decode_lenient(fields[7]).strip(),
        duration_ms=duration_ms,
        aborted=aborted,
    )


def _split_lines(data: object) -> tuple[list[bytes], bytes]:
    """Complete lines (CR stripped) and the unterminated tail (b"" if none)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StatsFileError(f"stats data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_FILE_SIZE:
        raise StatsFileError(f"{len(data)} bytes: too big for a stats file")
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if not data:
        raise StatsFileError("empty file (may still be being written)", retryable=True)
    if b"\x00" in data:
        raise StatsFileError("binary data (NUL bytes): not a stats file")
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with LF, as every complete file does
    if b"\r" in data:
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if not lines:
        raise StatsFileError("no complete header line (may still be being written)", retryable=True)
    return lines, tail


def _disambiguate(players: list[PlayerStats], raw_lines: list[bytes]) -> None:
    """Make every PlayerStats.key unique (see PlayerStats.key_override)."""
    names_by_guid: defaultdict[str, set[str]] = defaultdict(set)
    for p in players:
        if not p.is_bot:
            names_by_guid[p.guid].add(p.name)
    for p in players:
        if not p.is_bot and len(names_by_guid[p.guid]) > 1:
            p.key_override = f"{p.guid}:{p.name}"
    groups: defaultdict[str, list[tuple[bytes, PlayerStats]]] = defaultdict(list)
    for p, line in zip(players, raw_lines, strict=True):
        groups[p.key].append((line, p))
    used = set(groups)
    for key, members in groups.items():
        # Line order is hash order (arbitrary): sort by bytes so keys are stable.
        members.sort(key=lambda m: m[0])
        n = 1
        for _, p in members[1:]:
            n += 1
            while f"{key}#{n}" in used:
                n += 1
            p.key_override = f"{key}#{n}"
            used.add(p.key_override)


def _parse(data: object, filename: str) -> Round:
    fname = parse_filename(filename)
    if fname.is_endstats:
        raise StatsFileError(f"{filename} is an endstats file, not a stats file")
    lines, tail = _split_lines(data)
    rnd = _parse_header(lines[0], fname)
    seen: set[bytes] = set()
    players, raw_lines, rejected = rnd.players, [], rnd.rejected_lines
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            rejected.append(RejectedLine(number, "empty line"))
            continue
        if line in seen:
            continue  # byte-identical repeat of an earlier line: keep one copy
        seen.add(line)
        try:
            players.append(_parse_player(line))
        except _Reject as exc:
            rejected.append(RejectedLine(number, exc.reason))
            continue
        raw_lines.append(line)
    if tail:
        rnd.partial = True
        rejected.append(RejectedLine(len(lines) + 1, "truncated: last line has no final LF"))
    if len({p.key for p in players}) != len(players):
        _disambiguate(players, raw_lines)
    return rnd


def parse_stats_file(data: bytes, filename: str) -> Round:
    """Parse one stats file. `filename` is the basename (§1), validated first.

    Raises StatsFileError (and nothing else) when the name or the file is not
    usable; damaged player lines are dropped into `Round.rejected_lines`.
    """
    try:
        return _parse(data, filename)
    except StatsFileError:
        raise
    except Exception as exc:  # defensive: a parser bug must not crash the poller
        raise StatsFileError(f"unexpected parser error: {type(exc).__name__}: {exc}") from exc


def _check_field_order() -> None:
    # Player lines are built positionally for speed: the dataclass must list
    # the extended fields right after `weapons`, in file order.
    names = list(PlayerStats.__dataclass_fields__)
    start = names.index("weapons") + 1
    if tuple(names[start : start + N_EXTENDED]) != tuple(n for n, _ in EXTENDED_FIELDS):
        raise RuntimeError("PlayerStats field order no longer matches EXTENDED_FIELDS")


_check_field_order()
