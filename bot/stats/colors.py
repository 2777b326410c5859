"""Quake colour codes and the game's name cleaning (stats-format.md §3).

The game's rule, as its string cleaner applies it left to right: a `^` followed
by any character other than `^` is a colour code and both characters go; a `^`
followed by `^` (or at the very end) is a literal character, and scanning then
resumes at the *second* `^`, which may itself start a code. So `M^^oose84`
becomes `M^ose84` (the second `^` eats the `o`), exactly as the corpus shows.
A left-to-right, non-overlapping `\\^[^^]` substitution reproduces that scan.
"""

from __future__ import annotations

import re

_COLOR_RE = re.compile(r"\^[^^]")
_COLOR_RE_BYTES = re.compile(rb"\^[^^]")
# Every byte outside printable ASCII 0x20-0x7E: what the game's cleaner drops.
_NON_PRINTABLE = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E)


def strip_colors(text: str) -> str:
    """Remove colour codes, keep everything else (the display name)."""
    if "^" not in text:
        return text
    return _COLOR_RE.sub("", text)


def strip_colors_bytes(raw: bytes) -> bytes:
    """`strip_colors` on undecoded bytes."""
    if b"^" not in raw:
        return raw
    return _COLOR_RE_BYTES.sub(b"", raw)


def ascii_clean(raw: bytes | str) -> str:
    """The game's own cleaning: colour codes removed, then every byte outside
    0x20-0x7E dropped. This is the form the endstats module writes.

    Works on bytes because the game cleans bytes: a multi-byte UTF-8 character
    vanishes entirely. A str is encoded as UTF-8 first.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return strip_colors_bytes(raw).translate(None, _NON_PRINTABLE).decode("ascii")


def decode_lenient(raw: bytes) -> str:
    """Decode a name field: UTF-8 when valid, else Latin-1.

    Latin-1 maps every byte to one code point, so it never fails and loses
    nothing (the bytes can be recovered exactly); Windows clients commonly send
    cp1252/Latin-1 names, for which it is also the right reading. Replacement
    characters would destroy the original bytes instead.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
