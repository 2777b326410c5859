"""Build stats/endstats file content for unit tests."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_HEADER = b"^1Test ^7Server\\supply\\legacy3\\1\\1\\2\\12:00\\9:13\\552345"
R1_NAME = "eu1-2025-03-02-120000-supply-round-1.txt"
R2_NAME = "eu1-2025-03-02-121500-supply-round-2.txt"

Weapons = dict[int, tuple[int, int, int, int, int]]


def extended(**overrides: float | int | str) -> list[str]:
    """38 extended fields (as text), realistic defaults, named overrides."""
    from bot.stats.model import EXTENDED_FIELDS

    defaults: dict[str, str] = {
        name: ("0.0" if kind == "float" else "0") for name, kind in EXTENDED_FIELDS
    }
    defaults.update(
        damage_given="1500",
        damage_received="1200",
        alive_percent="90.0",
        xp="30",
        time_played_minutes="9.2",
        time_dead_minutes="0.9",
        bullets_fired="300",
    )
    for key, value in overrides.items():
        defaults[key] = str(value)
    return [defaults[name] for name, _ in EXTENDED_FIELDS]


def player_line(
    guid: str = "EF8DAA0B",
    name: bytes | str = "Brick",
    rounds: int | str = 1,
    team: int | str = 1,
    weapons: Weapons | None = None,
    ext: Sequence[str] | None = (),
) -> bytes:
    """A player line without LF. `ext=None` omits the TAB section; `()` = defaults."""
    weapons = {4: (10, 40, 2, 1, 3)} if weapons is None else weapons
    mask = sum(1 << bit for bit in weapons)
    groups = "".join(" " + " ".join(map(str, weapons[b])) for b in sorted(weapons))
    raw_name = name.encode("utf-8") if isinstance(name, str) else name
    head = f"{guid}\\".encode() + raw_name + f"\\{rounds}\\{team}\\{mask}{groups} ".encode()
    if ext is None:
        return head.rstrip(b" ")
    fields = extended() if len(ext) == 0 else list(ext)
    return head + b"\t" + "\t".join(fields).encode()


def stats_file(*lines: bytes, header: bytes = DEFAULT_HEADER) -> bytes:
    return b"".join(line + b"\n" for line in (header, *lines))
