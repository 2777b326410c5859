"""Pure parsing of ET:Legacy round stats files (see shared/docs/stats-format.md).

No I/O: callers pass bytes and the file's basename.

Public API
----------
parse_filename(name) -> StatsFileName       validate/parse a stats or endstats name (§1)
is_valid_filename(name) -> bool             the same, as a predicate
parse_stats_file(data, filename) -> Round   one stats file (§2-§4, §7)
parse_endstats_file(data, filename) -> EndStats   one endstats file (§6)
round2_only(r2, r1) -> Round                R2-only values of a paired R2 (§5)
headers_pair(r2, r1) -> bool                the §5 header check (R2 field 6 == R1 field 7)
mark_orphan(r2) -> Round                    an R2 without R1, flagged "orphan_r2"
round_to_json(round, server_id=None, endstats=None) -> dict   JSON-ready view
strip_colors(text), ascii_clean(raw)        the §3 name forms
StatsFileError                              the only exception the parsers raise

Model classes: Round, PlayerStats, WeaponStats, RejectedLine, StatsFileName,
EndStats, Award, VersusBlock, VersusRow; EXTENDED_FIELDS, CUMULATIVE_FIELDS,
DERIVED_FIELDS; WEAPON_NAMES, KNOWN_AWARD_TITLES.
"""

from bot.stats.colors import ascii_clean, strip_colors
from bot.stats.differential import headers_pair, mark_orphan, round2_only
from bot.stats.endstats import KNOWN_AWARD_TITLES, parse_endstats_file
from bot.stats.filenames import is_valid_filename, parse_filename
from bot.stats.jsonout import round_to_json
from bot.stats.model import (
    CUMULATIVE_FIELDS,
    DERIVED_FIELDS,
    EXTENDED_FIELD_NAMES,
    EXTENDED_FIELDS,
    Award,
    EndStats,
    PlayerStats,
    RejectedLine,
    Round,
    StatsFileError,
    StatsFileName,
    VersusBlock,
    VersusRow,
    WeaponStats,
)
from bot.stats.parser import WEAPON_NAMES, parse_stats_file

__all__ = [
    "CUMULATIVE_FIELDS",
    "DERIVED_FIELDS",
    "EXTENDED_FIELDS",
    "EXTENDED_FIELD_NAMES",
    "KNOWN_AWARD_TITLES",
    "WEAPON_NAMES",
    "Award",
    "EndStats",
    "PlayerStats",
    "RejectedLine",
    "Round",
    "StatsFileError",
    "StatsFileName",
    "VersusBlock",
    "VersusRow",
    "WeaponStats",
    "ascii_clean",
    "headers_pair",
    "is_valid_filename",
    "mark_orphan",
    "parse_endstats_file",
    "parse_filename",
    "parse_stats_file",
    "round2_only",
    "round_to_json",
    "strip_colors",
]
