"""Compare parser output with a corpus `expected.json` (shared corpus or fixtures).

Every check returns a list of human-readable mismatches; tests assert it is
empty, so one failure shows everything that differs in a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bot.stats import (
    StatsFileError,
    headers_pair,
    mark_orphan,
    parse_endstats_file,
    parse_filename,
    parse_stats_file,
    round2_only,
    round_to_json,
)
from bot.stats.model import Round

TOLERANCE_S = 6  # minutes carry 0.1 resolution (expected.json notes)
TOLERANCE_DIFF_S = 12  # twice that for R2 - R1
# Expected keys that describe the generator's scenario, not file content.
NOT_IN_FILE = {"full_guid", "lifecycle", "source", "time_played_minutes_diff", "weapons"}


@dataclass(frozen=True)
class Corpus:
    root: Path  # the folder holding expected.json
    server_id: str | None  # for legacy (unprefixed) corpora

    @property
    def expected(self) -> dict[str, Any]:
        return _load(self.root / "expected.json")

    def path(self, rel: str) -> Path:
        return self.root / rel


@cache
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def parse_cached(path: Path) -> Round:
    return parse_stats_file(path.read_bytes(), path.name)


def _player_id(p: dict[str, Any]) -> tuple[str, str]:
    return (p["guid"], p["name_ascii"])


def _compare_scalar(key: str, want: Any, got: Any, where: str, tol: float) -> list[str]:
    if key == "time_played_seconds" and want is not None and got is not None:
        ok = abs(want - got) <= tol
    elif isinstance(want, float) and isinstance(got, int | float):
        ok = abs(want - got) < 1e-9
    else:
        ok = want == got and type(want) is type(got)
    return [] if ok else [f"{where}: {key} expected {want!r}, got {got!r}"]


def compare_players(
    expected: list[dict[str, Any]], got: list[dict[str, Any]], where: str, *, r2_only: bool = False
) -> list[str]:
    """Field-by-field comparison of expected players with round_to_json players."""
    errors: list[str] = []
    by_id = {_player_id(p): p for p in got}
    if len(by_id) != len(got):
        errors.append(f"{where}: (guid, name_ascii) not unique in parser output")
    if sorted(by_id) != sorted(_player_id(p) for p in expected):
        errors.append(f"{where}: players differ: {sorted(by_id)} vs expected")
    tol = TOLERANCE_DIFF_S if r2_only else TOLERANCE_S
    for want in expected:
        pid = _player_id(want)
        mine = by_id.get(pid)
        if mine is None:
            continue
        at = f"{where} {pid}"
        for key, value in want.items():
            if key in NOT_IN_FILE or key not in mine:
                continue
            if value is None and key in ("raw_name", "name"):
                continue  # decoder-dependent in the corpus
            if r2_only and key in ("time_played_minutes", "alive_percent") and value is None:
                continue  # the corpus gives no truth for these R2-only values
            if (
                not r2_only
                and key == "time_played_seconds"
                and want.get("time_played_minutes", 0) is None
            ):
                value = None  # the file does not carry minutes: must be unknown
            errors += _compare_scalar(key, value, mine[key], at, tol)
        if mine["weapons"] != want["weapons"]:
            errors.append(f"{at}: weapons {mine['weapons']} != {want['weapons']}")
        if r2_only:
            errors += _check_r2_only_extras(want, mine, at)
    return errors


def _check_r2_only_extras(want: dict[str, Any], mine: dict[str, Any], at: str) -> list[str]:
    errors: list[str] = []
    source = {"differential": "differential", "r2_file": "r2_file"}[want["source"]]
    if mine["source"] != source:
        errors.append(f"{at}: source {mine['source']} != {source}")
    diff = want.get("time_played_minutes_diff")
    if diff is not None and abs(diff - mine["time_played_minutes"]) > 0.05 + 1e-9:
        errors.append(f"{at}: R2-only minutes {mine['time_played_minutes']} != {diff}")
    return errors


def check_header(entry: dict[str, Any], rnd: Round, where: str) -> list[str]:
    h = entry["header"]
    got = {
        "servername": rnd.server_name_raw,
        "servername_clean": rnd.server_name,
        "map": rnd.map_name,
        "config": rnd.config,
        "round": rnd.round_number,
        "defender": rnd.defender,
        "winner": rnd.winner,
        "timelimit": rnd.time_limit,
        "next_timelimit": rnd.next_time_limit,
        "duration_ms": rnd.duration_ms,
        "duration_seconds": rnd.duration_seconds,
    }
    want = dict(h)
    if want["duration_ms"] is not None and want["duration_ms"] <= 0:
        # the file's raw value; the model keeps only usable durations
        want["duration_ms"] = None
        if rnd.aborted != (h["duration_ms"] < 0):
            errors_aborted = [f"{where}: aborted flag does not follow the negative duration"]
        else:
            errors_aborted = []
    else:
        errors_aborted = []
    if want.get("duration_seconds") is None:
        # unknown in the header: the model falls back to the longest player time
        want.pop("duration_seconds", None)
    errors = errors_aborted + [
        f"{where}: header {k} {got[k]!r} != {v!r}" for k, v in want.items() if got.get(k) != v
    ]
    if entry.get("aborted") is not None and rnd.aborted != entry["aborted"]:
        errors.append(f"{where}: aborted {rnd.aborted} != {entry['aborted']}")
    return errors


def check_stats_entry(corpus: Corpus, rel: str) -> list[str]:
    """Header, players (as written) and, for R2, the R2-only view."""
    entry = corpus.expected["files"][rel]
    rnd = parse_cached(corpus.path(rel))
    out = round_to_json(rnd, corpus.server_id)
    errors = check_header(entry, rnd, rel)
    if out["server_id"] != entry["server_id"]:
        errors.append(f"{rel}: server_id {out['server_id']} != {entry['server_id']}")
    if rnd.rejected_lines or rnd.partial:
        errors.append(f"{rel}: unexpected rejected lines {rnd.rejected_lines}")
    errors += compare_players(entry["players"], out["players"], rel)
    if entry["round"] == 2:
        errors += check_r2_only(corpus, rel, rnd)
    return errors


def check_r2_only(corpus: Corpus, rel: str, r2: Round) -> list[str]:
    entry = corpus.expected["files"][rel]
    expected = entry["r2_only"]
    if entry.get("paired_r1") is None:
        orphan = mark_orphan(r2)
        errors = [] if orphan.status == "orphan_r2" else [f"{rel}: orphan status"]
        got = {(p.guid, p.name_ascii): p for p in orphan.players}
        if sorted(got) != sorted(_player_id(w) for w in expected):
            return [*errors, f"{rel}: orphan players differ"]
        for w in expected:
            p = got[_player_id(w)]
            # Without R1 only ROUNDS 0 proves an R2-only line. The corpus also
            # labels reconnects with ROUNDS 1 "r2_file": not derivable from the
            # file (a late R1 joiner has ROUNDS 1 too), so those stay "orphan".
            want = "r2_file" if w["source"] == "r2_file" and p.rounds == 0 else "orphan"
            if p.source != want:
                errors.append(f"{rel} {_player_id(w)}: orphan source {p.source} != {want}")
        return errors
    r1 = parse_cached(corpus.path(entry["paired_r1"]))
    errors = [] if headers_pair(r2, r1) else [f"{rel}: headers_pair is False"]
    paired = round2_only(r2, r1)
    out = round_to_json(paired, corpus.server_id)
    if out["status"] != "paired" or out["paired_r1"] != Path(entry["paired_r1"]).name:
        errors.append(f"{rel}: status/paired_r1 {out['status']} {out['paired_r1']}")
    return errors + compare_players(expected, out["players"], f"{rel} [R2-only]", r2_only=True)


def check_endstats_entry(corpus: Corpus, rel: str) -> list[str]:
    entry = corpus.expected["files"][rel]
    path = corpus.path(rel)
    es = parse_endstats_file(path.read_bytes(), path.name)
    return compare_endstats(entry, es, rel)


def compare_endstats(entry: dict[str, Any], es: Any, where: str) -> list[str]:
    errors: list[str] = []
    awards = [[a.title, a.player, a.value] for a in es.awards]
    if awards != entry["awards"]:
        errors.append(f"{where}: awards {awards} != {entry['awards']}")
    if [a.position for a in es.awards] != list(range(len(es.awards))):
        errors.append(f"{where}: award positions not 0..n-1")
    vs = [
        {
            "subject": b.subject,
            "subject_guid": b.subject_guid,
            "rows": [[r.opponent, r.kills, r.deaths] for r in b.rows],
        }
        for b in es.versus
    ]
    if vs != entry["vs"]:
        errors.append(f"{where}: versus blocks differ")
    return errors


def check_malformed(corpus: Corpus, rel: str) -> list[str]:
    case = corpus.expected["malformed"][rel]
    path = corpus.path(rel)
    data = path.read_bytes()
    if rel.endswith("-endstats.txt"):
        return compare_endstats(case, parse_endstats_file(data, path.name), rel)
    if case["expect"] == "reject_file":
        try:
            parse_filename(path.name)
            parse_stats_file(data, path.name)
        except StatsFileError:
            return []
        return [f"{rel}: accepted, expected reject_file"]
    rnd = parse_stats_file(data, path.name)
    out = round_to_json(rnd, corpus.server_id)
    errors: list[str] = []
    if len(rnd.players) != len(case["players"]):
        errors.append(f"{rel}: {len(rnd.players)} players, expected {len(case['players'])}")
    rejected = [r.line_number for r in rnd.rejected_lines]
    if rejected != case.get("rejected_lines", []):
        errors.append(f"{rel}: rejected lines {rejected} != {case.get('rejected_lines', [])}")
    if "header_duration_ms" in case and rnd.duration_ms != case["header_duration_ms"]:
        errors.append(f"{rel}: duration_ms {rnd.duration_ms} != {case['header_duration_ms']}")
    if len({p.key for p in rnd.players}) != len(rnd.players):
        errors.append(f"{rel}: player keys not unique")
    return errors + compare_players(case["players"], out["players"], rel)


def stats_entries(corpus: Corpus) -> list[str]:
    files = corpus.expected["files"]
    return sorted(rel for rel, e in files.items() if e["kind"] == "stats")


def endstats_entries(corpus: Corpus) -> list[str]:
    files = corpus.expected["files"]
    return sorted(rel for rel, e in files.items() if e["kind"] == "endstats")


def malformed_entries(corpus: Corpus) -> list[str]:
    return sorted(corpus.expected.get("malformed", {}))
