"""Parser throughput on one core, over a generated in-memory corpus.

Run from the repository root:  python -m bench.bench_parse [n_pairs]
(or python bench/bench_parse.py). Prints files/s for: R1 parsing, R2 parsing
plus the differential against its (already parsed) R1, and endstats parsing.
Each figure is the best of several passes, to damp noise from other load.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_corpus import generate_corpus
from bot.stats import (
    headers_pair,
    parse_endstats_file,
    parse_stats_file,
    round2_only,
)

SERVERS = ["eu1", "eu2", "na1"]
PASSES = 5


def _best_rate(count: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


Files = list[tuple[str, bytes]]


def _describe(r1: Files, r2: Files, es: Files) -> None:
    players = sum(len(parse_stats_file(d, n).players) for n, d in r1) / len(r1)
    weapons = sum(len(p.weapons) for n, d in r1 for p in parse_stats_file(d, n).players) / (
        players * len(r1)
    )
    print(f"corpus: {len(r1) + len(r2)} stats files ({len(r1)} R1, {len(r2)} R2),")
    print(
        f"        {len(es)} endstats files; R1: {players:.1f} players, {weapons:.1f} weapons each"
    )


def _measure(r1: Files, r2: Files, es: Files) -> tuple[float, float, float]:
    """Best-of-PASSES files/s for R1, R2 + differential, endstats."""

    def r1_pass() -> None:
        for n, d in r1:  # results dropped, as a poller would after storing them
            parse_stats_file(d, n)

    parsed_r1 = [parse_stats_file(d, n) for n, d in r1]
    # The parsed R1s stay alive for the whole run: keep the collector from
    # re-walking them on every pass (a poller holds one R1 at a time).
    gc.freeze()

    def r2_pass() -> None:
        for (n, d), first in zip(r2, parsed_r1, strict=True):
            round2_only(parse_stats_file(d, n), first)

    def es_pass() -> None:
        for n, d in es:
            parse_endstats_file(d, n)

    return (
        _best_rate(len(r1), r1_pass),
        _best_rate(len(r2), r2_pass),
        _best_rate(len(es), es_pass),
    )


def main(n_pairs: int = 1200) -> None:
    files = generate_corpus(n_pairs, SERVERS, seed=1)
    r1 = [(n, d) for n, d in files if n.endswith("-round-1.txt")]
    r2 = [(n, d) for n, d in files if n.endswith("-round-2.txt")]
    es = [(n, d) for n, d in files if n.endswith("-endstats.txt")]
    _describe(r1, r2, es)
    # generate_corpus lists each match's R1 and R2 together: pair them in order
    sources: Counter[str] = Counter()
    for (n1, d1), (n2, d2) in zip(r1, r2, strict=True):
        a, b = parse_stats_file(d1, n1), parse_stats_file(d2, n2)
        assert headers_pair(b, a) and a.file.server_id == b.file.server_id
        sources.update(p.source for p in round2_only(b, a).players)
    print(f"R2-only sources: {dict(sources)}")
    r1_rate, r2_rate, es_rate = _measure(r1, r2, es)
    print(f"R1 parse:                {r1_rate:9.0f} files/s")
    print(f"R2 parse + differential: {r2_rate:9.0f} files/s")
    print(f"endstats parse:          {es_rate:9.0f} files/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1200)
