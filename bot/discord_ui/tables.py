"""Shared by the Discord embeds and the terminal renderers: name cleaning, monospace
tables, value formatting and THE stat formulas (DPM, accuracy, K/D, MVP order).

Everything here is pure and knows nothing about Discord markdown; the embed
modules escape names for prose themselves (inside code blocks only backticks
matter, and `clean_name` already removes those).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.stats import WEAPON_NAMES

if TYPE_CHECKING:  # models.py imports this module: annotations only
    from bot.discord_ui.models import PlayerStatLine, WeaponLine

# --- weapons and formulas ----------------------------------------------------

# stats-format.md §2.4: everything that explodes. Their hits count every player
# caught in a blast (hits can exceed shots), so they would inflate accuracy.
EXPLOSIVE_WEAPONS: frozenset[str] = frozenset(
    {
        "WS_GRENADE",
        "WS_PANZERFAUST",
        "WS_BAZOOKA",
        "WS_MORTAR",
        "WS_MORTAR2",
        "WS_DYNAMITE",
        "WS_AIRSTRIKE",
        "WS_ARTILLERY",
        "WS_SATCHEL",
        "WS_GRENADELAUNCHER",
        "WS_LANDMINE",
    }
)
# The syringe counts revive attempts, not damage (§2.2).
NON_AIMED_WEAPONS: frozenset[str] = EXPLOSIVE_WEAPONS | {"WS_SYRINGE"}
# Accuracy is over these only. A whitelist, so `unknown_<id>` weapons from a
# future module version cannot silently skew it.
AIMED_WEAPONS: tuple[str, ...] = tuple(w for w in WEAPON_NAMES if w not in NON_AIMED_WEAPONS)

# MVP / "best DPM" candidates must have played at least this share of the
# longest time among the candidates, so 30 s of lucky spam cannot win.
MIN_TIME_SHARE = 1 / 3
# "Best accuracy" needs this many aimed shots to count.
MIN_ACCURACY_SHOTS = 100


def dpm(damage_given: int | None, seconds: int | None) -> float | None:
    """Damage per minute = damage given / (time played in seconds / 60).

    Recomputed from the stored damage and time; the file's own dpm field is
    unreliable (stats-format.md §2.3). None when the time is unknown or zero.
    """
    if damage_given is None or not seconds or seconds <= 0:
        return None
    return damage_given * 60 / seconds


def accuracy(aimed_hits: int, aimed_shots: int) -> float | None:
    """Percent of aimed shots that hit (AIMED_WEAPONS only); None without shots."""
    if aimed_shots <= 0:
        return None
    return 100 * aimed_hits / aimed_shots


def kd_ratio(kills: int, deaths: int) -> float:
    """Kills / deaths; with no deaths the ratio is the kill count (not the module's
    kills + 1, which would rank a 5/0 above a 6/1 by a whole kill)."""
    return kills / deaths if deaths else float(kills)


def dpm_order_key(p: PlayerStatLine) -> tuple[float, int, int, str]:
    """Sort key, ascending = best first: DPM desc (unknown last), kills desc,
    deaths asc, then name so the order is stable."""
    return (-(p.dpm if p.dpm is not None else -1.0), -p.kills, p.deaths, p.name.casefold())


def eligible(players: Sequence[PlayerStatLine]) -> list[PlayerStatLine]:
    """Humans if there are any (bots only when no human played), then those who
    played at least MIN_TIME_SHARE of the longest time among them."""
    pool = [p for p in players if not p.is_bot] or list(players)
    longest = max((p.time_played_seconds or 0 for p in pool), default=0)
    enough = [p for p in pool if (p.time_played_seconds or 0) >= longest * MIN_TIME_SHARE]
    return enough or pool


def pick_mvp(players: Sequence[PlayerStatLine]) -> PlayerStatLine | None:
    """The MVP: among `eligible` players, the best `dpm_order_key` (highest DPM,
    then most kills, then fewest deaths)."""
    candidates = eligible(players)
    return min(candidates, key=dpm_order_key) if candidates else None


# --- names -------------------------------------------------------------------

_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")


def clean_name(name: str, width: int | None = None) -> str:
    """A player name that cannot break a layout: no control/format characters
    (bidi overrides, zero-width), at most one combining mark per letter (no
    "zalgo"), no backticks (they would close a code block), one line, never
    empty, and at most `width` terminal columns (clipped with "…")."""
    out: list[str] = []
    prev_mark = False
    for ch in name.replace("`", "'"):
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\v\f":
            ch, cat = " ", "Zs"
        if cat in _DROP_CATEGORIES:
            continue
        mark = cat.startswith("M")
        if mark and (prev_mark or not out):
            continue
        out.append(ch)
        prev_mark = mark
    text = _SPACES.sub(" ", "".join(out)).strip() or "?"
    return clip(text, width) if width is not None else text


def char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) == "Mn":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal/monospace columns: wide CJK characters take two, marks none."""
    return sum(char_width(ch) for ch in text)


def clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


# --- tables ------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Lines of a space-separated monospace table; `align` has one 'l' or 'r' per
    column. Cells must already be clean (see clean_name)."""
    widths = [max(display_width(c) for c in col) for col in zip(headers, *rows, strict=True)]
    return [_table_line(row, widths, align) for row in (headers, *rows)]


def _table_line(cells: Sequence[str], widths: Sequence[int], align: str) -> str:
    parts = []
    for cell, width, how in zip(cells, widths, align, strict=True):
        pad = " " * (width - display_width(cell))
        parts.append(cell + pad if how == "l" else pad + cell)
    return " ".join(parts).rstrip()


# --- value formatting -----------------------------------------------------------


def fmt_num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if digits else str(round(value))  # no separators: narrow


def fmt_int(value: int | None) -> str:
    return "-" if value is None else str(value)


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def fmt_clock(seconds: int | None) -> str:
    """M:SS like the game's clocks (minutes unpadded, may exceed 59); H:MM:SS
    from an hour on, for session totals."""
    if seconds is None:
        return "?"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}"
    return f"{sign}{minutes}:{secs:02d}"


def parse_clock(text: str | None) -> int | None:
    """'9:10' -> 550 seconds; None when it is not an M:SS clock."""
    match = re.fullmatch(r"\s*(\d+):([0-5]\d)\s*", text or "")
    return int(match[1]) * 60 + int(match[2]) if match else None


# Display names; anything else (unknown_<id>) is shown as stored.
WEAPON_LABELS: dict[str, str] = dict(
    zip(
        WEAPON_NAMES,
        "Knife|KA-BAR|Luger|Colt|MP40|Thompson|Sten|FG42|Panzerfaust|Bazooka|Flamethrower"
        "|Grenade|Mortar|Mortar (Allies)|Dynamite|Airstrike|Artillery|Satchel|Rifle grenade"
        "|Landmine|MG42|Browning|Carbine|Kar98|Garand|K43|MP34|Syringe".split("|"),
        strict=True,
    )
)


def weapon_label(weapon: str) -> str:
    return WEAPON_LABELS.get(weapon, weapon)


# --- the player tables (one definition for embeds and terminal) ---------------------


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str

    def lines(self) -> list[str]:
        return format_table(self.headers, self.rows, self.align)


# Discord shows about 56 monospace columns inside an embed before wrapping, so
# the embed tables are narrow (K/D as "kills/deaths"); the terminal gets it all.
EMBED_NAME_WIDTH = 14
TEXT_NAME_WIDTH = 22


def round_table(players: Sequence[PlayerStatLine], name_width: int = EMBED_NAME_WIDTH) -> Table:
    """One round: name, kills/deaths, damage given/received, DPM, accuracy,
    headshot kills, revives, gibs."""
    rows = tuple(
        (
            clean_name(p.name, name_width),
            f"{p.kills}/{p.deaths}",
            fmt_int(p.damage_given),
            fmt_int(p.damage_received),
            fmt_num(p.dpm),
            fmt_pct(p.accuracy),
            fmt_int(p.headshot_kills),
            fmt_int(p.revives_given),
            fmt_int(p.gibs),
        )
        for p in players
    )
    headers = ("Name", "K/D", "DMG", "RCV", "DPM", "ACC", "HS", "REV", "GIB")
    return Table(headers, rows, "lrrrrrrrr")


def session_table(
    players: Sequence[PlayerStatLine], *, start_rank: int = 1, wide: bool = False
) -> Table:
    """Session totals ranked by the caller's order (DPM). `wide` (terminal) splits
    K, D and the K/D ratio into columns and allows longer names."""
    rows = []
    for rank, p in enumerate(players, start_rank):
        kd = (str(p.kills), str(p.deaths), f"{p.kd:.2f}") if wide else (f"{p.kills}/{p.deaths}",)
        rows.append(
            (
                str(rank),
                clean_name(p.name, TEXT_NAME_WIDTH if wide else 12),
                *kd,
                fmt_int(p.damage_given),
                fmt_int(p.damage_received),
                fmt_num(p.dpm),
                fmt_pct(p.accuracy),
                fmt_int(p.headshot_kills),
                fmt_int(p.revives_given),
                fmt_minutes(p.time_played_seconds),
            )
        )
    kd_headers = ("K", "D", "K/D") if wide else ("K/D",)
    headers = ("#", "Name", *kd_headers, "DMG", "RCV", "DPM", "ACC", "HS", "REV", "TIME")
    return Table(headers, tuple(rows), "rl" + "r" * (len(headers) - 2))


def match_table(players: Sequence[PlayerStatLine], name_width: int = EMBED_NAME_WIDTH) -> Table:
    """Both-round totals of one player group, with a total row."""
    rows = [
        (
            clean_name(p.name, name_width),
            f"{p.kills}/{p.deaths}",
            fmt_int(p.damage_given),
            fmt_num(p.dpm),
        )
        for p in players
    ]
    kills = sum(p.kills for p in players)
    deaths = sum(p.deaths for p in players)
    damage = sum(p.damage_given or 0 for p in players)
    rows.append(("= total", f"{kills}/{deaths}", str(damage), ""))
    return Table(("Name", "K/D", "DMG", "DPM"), tuple(rows), "lrrr")


def fmt_minutes(seconds: int | None) -> str:
    """Time played, compact: '46m', '1h05'."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"{minutes}m"


def weapon_accuracy(weapon: str, hits: int, shots: int) -> float | None:
    """Accuracy of one weapon; None for explosives/syringe (not aimed)."""
    return accuracy(hits, shots) if weapon in AIMED_WEAPONS else None


def weapon_table(weapons: Sequence[WeaponLine]) -> Table:
    """One player's weapons, most kills first: kills, accuracy, headshot hits,
    hits and shots. Weapons only seen as a cause of death are left out."""
    used = [w for w in weapons if w.shots or w.hits or w.kills]
    used.sort(key=lambda w: (-w.kills, -w.shots, w.weapon))
    rows = tuple(
        (
            weapon_label(w.weapon),
            str(w.kills),
            fmt_pct(weapon_accuracy(w.weapon, w.hits, w.shots)),
            str(w.headshots),
            str(w.hits),
            str(w.shots),
        )
        for w in used
    )
    return Table(("Weapon", "K", "ACC", "HS", "Hits", "Shots"), rows, "lrrrrr")


def top_weapons_table(weapons: Sequence[WeaponLine], limit: int = 10) -> Table:
    """Weapons over all players: kills, accuracy, headshot hits, number of users."""
    totals: dict[str, list[int]] = {}
    users: dict[str, set[str]] = {}
    for w in weapons:
        if not (w.shots or w.hits or w.kills):
            continue
        t = totals.setdefault(w.weapon, [0, 0, 0, 0])
        t[0] += w.kills
        t[1] += w.hits
        t[2] += w.shots
        t[3] += w.headshots
        users.setdefault(w.weapon, set()).add(w.ident)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][2], kv[0]))[:limit]
    rows = tuple(
        (
            weapon_label(name),
            str(k),
            fmt_pct(weapon_accuracy(name, hits, shots)),
            str(hs),
            str(len(users[name])),
        )
        for name, (k, hits, shots, hs) in ranked
    )
    return Table(("Weapon", "K", "ACC", "HS", "Users"), rows, "lrrrr")
