"""Data model of a parsed round (stats-format.md §1-§6). Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class StatsFileError(ValueError):
    """A file (or file name) that is not a usable stats/endstats file.

    `reason` is one human-readable line. `retryable` is True when the file may
    still be being written (empty file), so a poller should look again later.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class StatsFileName:
    """A validated stats or endstats file name (§1)."""

    basename: str
    server_id: str | None  # the prefix, None for legacy names
    timestamp: datetime  # naive: the game server's local wall clock
    map_name: str
    round_number: int  # 1 or 2
    is_endstats: bool


@dataclass(slots=True)
class WeaponStats:
    hits: int = 0
    shots: int = 0
    kills: int = 0
    deaths: int = 0
    headshots: int = 0


# Extended fields after the TAB (§2.3), in file order. (name, kind) where kind
# is "int" or "float". None on a PlayerStats means "unknown" (older layouts,
# -nan), never zero.
EXTENDED_FIELDS: tuple[tuple[str, str], ...] = (
    ("damage_given", "int"),
    ("damage_received", "int"),
    ("team_damage_given", "int"),
    ("team_damage_received", "int"),
    ("gibs", "int"),
    ("self_kills", "int"),
    ("team_kills", "int"),
    ("team_gibs", "int"),
    ("alive_percent", "float"),
    ("xp", "int"),
    ("killing_spree", "int"),
    ("death_spree", "int"),
    ("kill_assists", "int"),
    ("kill_steals", "int"),
    ("headshot_kills", "int"),
    ("objectives_stolen", "int"),
    ("objectives_returned", "int"),
    ("dynamites_planted", "int"),
    ("dynamites_defused", "int"),
    ("times_revived", "int"),
    ("bullets_fired", "int"),
    ("dpm_module", "float"),
    ("time_played_minutes", "float"),
    ("tank_ratio", "float"),
    ("time_dead_ratio", "float"),
    ("time_dead_minutes", "float"),
    ("kd_ratio", "float"),
    ("useful_kills", "int"),
    ("denied_playtime", "int"),
    ("multikill_2", "int"),
    ("multikill_3", "int"),
    ("multikill_4", "int"),
    ("multikill_5", "int"),
    ("multikill_6", "int"),
    ("useless_kills", "int"),
    ("full_selfkills", "int"),
    ("repairs_constructions", "int"),
    ("revives_given", "int"),
)
EXTENDED_FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in EXTENDED_FIELDS)

# In an R2 file these hold R1+R2 (§5): R2-only = R2 - R1.
CUMULATIVE_FIELDS: frozenset[str] = frozenset(
    {
        "damage_given",
        "damage_received",
        "team_damage_given",
        "team_damage_received",
        "gibs",
        "self_kills",
        "team_kills",
        "team_gibs",
        "bullets_fired",
        "time_played_minutes",
    }
)
# alive_percent (8) is cumulative too, but is converted through alive minutes.
# Derived/mixed fields: recomputed from other values, never subtracted.
DERIVED_FIELDS: frozenset[str] = frozenset(
    {"dpm_module", "tank_ratio", "time_dead_ratio", "kd_ratio"}
)


@dataclass(slots=True)
class PlayerStats:
    """One player line. In an R2 file values are as written (cumulative where
    §5 says so) until `round2_only` produces the R2-only view."""

    guid: str  # GUID8, upper case
    raw_name: str  # decoded leniently, colour codes kept
    name: str  # display name: colour codes removed
    name_ascii: str  # the game's cleaning: matches endstats rows
    is_bot: bool
    rounds: int
    team: int  # 1 Axis, 2 Allies, 3 Spectator
    weapons: dict[str, WeaponStats] = field(default_factory=dict)
    # extended fields, None = unknown
    damage_given: int | None = None
    damage_received: int | None = None
    team_damage_given: int | None = None
    team_damage_received: int | None = None
    gibs: int | None = None
    self_kills: int | None = None
    team_kills: int | None = None
    team_gibs: int | None = None
    alive_percent: float | None = None
    xp: int | None = None
    killing_spree: int | None = None
    death_spree: int | None = None
    kill_assists: int | None = None
    kill_steals: int | None = None
    headshot_kills: int | None = None
    objectives_stolen: int | None = None
    objectives_returned: int | None = None
    dynamites_planted: int | None = None
    dynamites_defused: int | None = None
    times_revived: int | None = None
    bullets_fired: int | None = None
    dpm_module: float | None = None
    time_played_minutes: float | None = None
    tank_ratio: float | None = None
    time_dead_ratio: float | None = None
    time_dead_minutes: float | None = None
    kd_ratio: float | None = None
    useful_kills: int | None = None
    denied_playtime: int | None = None
    multikill_2: int | None = None
    multikill_3: int | None = None
    multikill_4: int | None = None
    multikill_5: int | None = None
    multikill_6: int | None = None
    useless_kills: int | None = None
    full_selfkills: int | None = None
    repairs_constructions: int | None = None
    revives_given: int | None = None
    # where R2 values came from: "file" (R1, or R2 as written), "differential",
    # "r2_file" (joined in R2 / session restart), "orphan" (cumulative, unsplit)
    source: str = "file"
    # Set by the parser only when the default key would not be unique in the
    # file: humans sharing a GUID8 under different names get "GUID8:name" (like
    # bots); lines that still collide (same GUID8 and name, different bytes) get
    # "#2", "#3", ... appended in the order of their raw line bytes.
    key_override: str | None = None

    @property
    def key(self) -> str:
        """Identity within a round: GUID8 for humans, GUID8 + name for bots (§4);
        `key_override` when the parser had to disambiguate."""
        if self.key_override is not None:
            return self.key_override
        return f"{self.guid}:{self.name}" if self.is_bot else self.guid

    @property
    def kills(self) -> int:
        return sum(w.kills for w in self.weapons.values())

    @property
    def deaths(self) -> int:
        return sum(w.deaths for w in self.weapons.values())

    @property
    def headshots(self) -> int:
        return sum(w.headshots for w in self.weapons.values())

    @property
    def shots(self) -> int:
        return sum(w.shots for w in self.weapons.values())

    @property
    def hits(self) -> int:
        return sum(w.hits for w in self.weapons.values())

    @property
    def time_played_seconds(self) -> int | None:
        if self.time_played_minutes is None:
            return None
        return round(self.time_played_minutes * 60)


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line_number: int  # 1-based line number in the file (header is line 1)
    reason: str


@dataclass(slots=True)
class Round:
    """A parsed stats file. `status`: "complete" (R1), "paired" (R2 turned
    into R2-only values by round2_only) or "orphan_r2" (R2 without R1:
    cumulative values, kept out of per-round aggregates)."""

    file: StatsFileName
    server_name_raw: str
    server_name: str  # colour codes removed
    map_name: str  # from the header: authoritative
    config: str
    round_number: int
    defender: int
    winner: int
    time_limit: str  # "M:SS" as written
    time_limit_seconds: int | None
    next_time_limit: str  # R1: the time to beat. R2: garbage, never used
    duration_ms: int | None  # None = unknown (absent, zero or negative)
    aborted: bool  # negative duration: map change / shutdown before intermission
    players: list[PlayerStats] = field(default_factory=list)
    rejected_lines: list[RejectedLine] = field(default_factory=list)
    partial: bool = False  # last line had no LF (truncated / still being written)
    status: str = "complete"
    paired_r1: str | None = None  # basename of the R1 file, when paired

    @property
    def duration_seconds(self) -> int | None:
        """Header duration, else the largest player time, else the time limit (§2.1)."""
        if self.duration_ms is not None:
            return self.duration_ms // 1000
        times = [p.time_played_seconds for p in self.players if p.time_played_seconds]
        if times:
            return max(times)
        return self.time_limit_seconds


@dataclass(frozen=True, slots=True)
class Award:
    position: int  # 0-based order in the file; titles can repeat
    title: str
    player: str
    value: str  # as written
    value_number: float | None  # leading number, for sorting


@dataclass(frozen=True, slots=True)
class VersusRow:
    opponent: str
    kills: int
    deaths: int


@dataclass(slots=True)
class VersusBlock:
    subject: str
    subject_guid: str  # full GUID, upper case
    rows: list[VersusRow] = field(default_factory=list)


@dataclass(slots=True)
class EndStats:
    file: StatsFileName
    awards: list[Award] = field(default_factory=list)
    versus: list[VersusBlock] = field(default_factory=list)
    line_count: int = 0  # lines kept; the bigger of two competing files wins
    skipped_lines: list[RejectedLine] = field(default_factory=list)
