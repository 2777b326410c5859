"""A Round (and optionally its EndStats) as plain JSON-ready data.

The required shape is fixed (see `round_to_json`); extra keys only add to it.
Players are sorted by key so the output is deterministic although player
lines come in hash order. Weapons from unknown bits (`unknown_<id>` in the
model, §2.4) are listed under `unknown_weapons` keyed by the bare id ("28"),
so `weapons` only ever holds WS_* names; the player totals (kills, deaths,
headshots) are sums over both, as in the model.
"""

from __future__ import annotations

from typing import Any

from bot.stats.model import EXTENDED_FIELD_NAMES, EndStats, PlayerStats, Round, WeaponStats

# Extended fields copied as extra player keys (the required ones are among them).
_EXTRA_FIELDS = EXTENDED_FIELD_NAMES


def _weapon_json(w: WeaponStats) -> dict[str, int]:
    return {
        "hits": w.hits,
        "shots": w.shots,
        "kills": w.kills,
        "deaths": w.deaths,
        "headshots": w.headshots,
    }


def _weapons_json(p: PlayerStats) -> tuple[dict[str, Any], dict[str, Any]]:
    """(WS_* weapons, unknown weapons keyed by bare id as in expected.json: "28")."""
    known: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for name, w in p.weapons.items():
        if name.startswith("unknown_"):
            unknown[name.removeprefix("unknown_")] = _weapon_json(w)
        else:
            known[name] = _weapon_json(w)
    return known, unknown


def player_to_json(p: PlayerStats) -> dict[str, Any]:
    """One player: the required keys first, then every other model value."""
    known, unknown = _weapons_json(p)
    out: dict[str, Any] = {
        "guid": p.guid,
        "name": p.name,
        "is_bot": p.is_bot,
        "team": p.team,
        "kills": p.kills,
        "deaths": p.deaths,
        "headshots": p.headshots,
        "headshot_kills": p.headshot_kills,
        "damage_given": p.damage_given,
        "damage_received": p.damage_received,
        "team_damage_given": p.team_damage_given,
        "team_damage_received": p.team_damage_received,
        "gibs": p.gibs,
        "self_kills": p.self_kills,
        "team_kills": p.team_kills,
        "revives_given": p.revives_given,
        "times_revived": p.times_revived,
        "xp": p.xp,
        "time_played_seconds": p.time_played_seconds,
        "weapons": known,
        # extras
        "key": p.key,
        "raw_name": p.raw_name,
        "name_ascii": p.name_ascii,
        "rounds": p.rounds,
        "source": p.source,
        "shots": p.shots,
        "hits": p.hits,
        "unknown_weapons": unknown,
    }
    for field in _EXTRA_FIELDS:
        out.setdefault(field, getattr(p, field))
    return out


def _awards(endstats: EndStats | None) -> list[list[str]]:
    if endstats is None:
        return []
    return [[a.title, a.player, a.value] for a in endstats.awards]


def _versus(endstats: EndStats | None) -> list[dict[str, Any]]:
    if endstats is None:
        return []
    return [
        {
            "subject": b.subject,
            "subject_guid": b.subject_guid,
            "rows": [[r.opponent, r.kills, r.deaths] for r in b.rows],
        }
        for b in endstats.versus
    ]


def round_to_json(
    round: Round,  # shadows the builtin: the name is part of the agreed signature
    server_id: str | None = None,
    endstats: EndStats | None = None,
) -> dict[str, Any]:
    """The round as a dict: {server_id, filename, map, round, status, paired_r1,
    defender, winner, duration_seconds, players: [...], awards: [[title, player,
    value], ...]} plus extras. `server_id` defaults to the file name's prefix."""
    rnd = round
    players = sorted(rnd.players, key=lambda p: p.key)
    return {
        "server_id": server_id if server_id is not None else rnd.file.server_id,
        "filename": rnd.file.basename,
        "map": rnd.map_name,
        "round": rnd.round_number,
        "status": rnd.status,
        "paired_r1": rnd.paired_r1,
        "defender": rnd.defender,
        "winner": rnd.winner,
        "duration_seconds": rnd.duration_seconds,
        "players": [player_to_json(p) for p in players],
        "awards": _awards(endstats),
        # extras
        "filename_map": rnd.file.map_name,
        "timestamp": rnd.file.timestamp.isoformat(sep=" "),
        "server_name": rnd.server_name,
        "server_name_raw": rnd.server_name_raw,
        "config": rnd.config,
        "time_limit": rnd.time_limit,
        "next_time_limit": rnd.next_time_limit,
        "duration_ms": rnd.duration_ms,
        "aborted": rnd.aborted,
        "partial": rnd.partial,
        "rejected_lines": [{"line": r.line_number, "reason": r.reason} for r in rnd.rejected_lines],
        "endstats_filename": endstats.file.basename if endstats is not None else None,
        "versus": _versus(endstats),
    }


def endstats_to_json(endstats: EndStats, server_id: str | None = None) -> dict[str, Any]:
    """An endstats file on its own (the `parse` verb on an -endstats.txt file)."""
    return {
        "server_id": server_id if server_id is not None else endstats.file.server_id,
        "filename": endstats.file.basename,
        "map": endstats.file.map_name,
        "round": endstats.file.round_number,
        "awards": _awards(endstats),
        "versus": _versus(endstats),
        "skipped_lines": [
            {"line": r.line_number, "reason": r.reason} for r in endstats.skipped_lines
        ],
    }
