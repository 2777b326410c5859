"""Which R1 each R2 belongs to (stats-format.md §5), as a pure function.

The importer recomputes the pairing of one server's map around every new
round, so importing the same files in any order gives the same pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class PairingCandidate:
    round_id: int
    filename: str
    round_number: int
    played_at: datetime  # time-zone aware: comparisons survive midnight and DST
    time_limit: str  # header field 6
    next_time_limit: str  # header field 7 (meaningful on R1 only)


def assign_pairings(
    rounds: Iterable[PairingCandidate],
    window: timedelta,
    fixed: Mapping[int, int | None] | None = None,
) -> dict[int, int | None]:
    """Map every R2 round id to its R1 round id, or None for an orphan.

    R2s are taken in chronological order; each takes the latest R1 strictly
    before it, within `window`, whose field 7 equals the R2's field 6 and that
    no earlier R2 has taken. `fixed` R2s keep the R1 they have (their R1 is
    reserved): used for rounds at the edge of the loaded time range.
    """
    fixed = fixed or {}
    ordered = sorted(rounds, key=lambda r: (r.played_at, r.filename))
    r1s = [r for r in ordered if r.round_number == 1]
    taken: set[int] = {r1 for r1 in fixed.values() if r1 is not None}
    result: dict[int, int | None] = {}
    for r2 in (r for r in ordered if r.round_number == 2):
        if r2.round_id in fixed:
            result[r2.round_id] = fixed[r2.round_id]
            continue
        match = _latest_r1(r2, r1s, window, taken)
        if match is not None:
            taken.add(match)
        result[r2.round_id] = match
    return result


def _latest_r1(
    r2: PairingCandidate, r1s: list[PairingCandidate], window: timedelta, taken: set[int]
) -> int | None:
    for r1 in reversed(r1s):
        if r1.played_at >= r2.played_at:
            continue
        if r2.played_at - r1.played_at > window:
            break
        if r1.round_id not in taken and r1.next_time_limit == r2.time_limit:
            return r1.round_id
    return None
