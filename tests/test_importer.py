"""The importer against a real PostgreSQL: values, pairing, sessions, endstats, ledger."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from bot.db.export import export_rounds
from bot.importer import Importer
from tests.stats.corpus_check import Corpus, compare_players
from tests.stats.test_corpus import FIXTURE_CORPORA, SHARED_CORPORA

ALL_CORPORA = FIXTURE_CORPORA + SHARED_CORPORA
TZ = ZoneInfo("Europe/Ljubljana")


def make(pool: asyncpg.Pool) -> Importer:
    return Importer(pool, timezone_for=lambda _s: TZ)


def corpus_files(corpus: Corpus) -> list[tuple[str, str, bytes]]:
    """(server_id, rel path, bytes) of every stats and endstats file in a corpus."""
    out = []
    for rel, entry in corpus.expected["files"].items():
        path = corpus.path(rel)
        if path.is_file():
            out.append((entry["server_id"], rel, path.read_bytes()))
    return out


async def import_all(importer: Importer, files: list[tuple[str, str, bytes]]) -> None:
    for server_id, rel, data in files:
        result = await importer.import_file(server_id, Path(rel).name, data)
        assert result.outcome == "imported", (rel, result)


async def exported(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    return {r["filename"]: r async for r in export_rounds(pool)}


def _expect_round(corpus: Corpus, rel: str, got: dict[str, Any]) -> list[str]:
    entry = corpus.expected["files"][rel]
    r1 = entry.get("paired_r1")
    if entry["round"] == 1:
        return compare_players(entry["players"], got["players"], rel)
    if r1 is not None and corpus.path(r1).is_file():
        errors = [] if got["status"] == "paired" else [f"{rel}: status {got['status']}"]
        if got["paired_r1"] != Path(r1).name:
            errors.append(f"{rel}: paired with {got['paired_r1']}, want {r1}")
        return errors + compare_players(entry["r2_only"], got["players"], rel, r2_only=True)
    errors = [] if got["status"] == "orphan_r2" else [f"{rel}: status {got['status']}"]
    return errors + compare_players(entry["players"], got["players"], rel)


def corpus_id(corpus: Corpus) -> str:
    return f"{corpus.root.parent.parent.name}/{corpus.root.parent.name}/{corpus.root.name}"


@pytest.mark.parametrize("corpus", ALL_CORPORA, ids=corpus_id)
async def test_corpus_round_trips_through_the_database(pool: asyncpg.Pool, corpus: Corpus) -> None:
    files = corpus_files(corpus)
    await import_all(make(pool), sorted(files, key=lambda f: Path(f[1]).name))
    rounds = await exported(pool)
    errors: list[str] = []
    for rel, entry in corpus.expected["files"].items():
        name = Path(rel).name
        if entry["kind"] == "stats" and corpus.path(rel).is_file():
            errors += _expect_round(corpus, rel, rounds[name])
        elif entry["kind"] == "endstats" and corpus.path(rel).is_file():
            linked = Path(entry["links_to"]).name
            if corpus.path(entry["links_to"]).is_file():
                got = rounds[linked]
                if (got["endstats_filename"], got["awards"], got["versus"]) != (
                    name,
                    entry["awards"],
                    entry["vs"],
                ):
                    errors.append(f"{rel}: endstats not linked to {linked} as expected")
    assert errors == []


async def _truncate(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "TRUNCATE rounds, player_round_stats, weapon_round_stats, endstats, round_awards, "
        "round_vs_stats, processed_files, gaming_sessions, round_outbox, servers "
        "RESTART IDENTITY CASCADE"
    )


async def _sessions(pool: asyncpg.Pool) -> set[frozenset[str]]:
    rows = await pool.fetch(
        "SELECT array_agg(filename ORDER BY filename) AS f FROM rounds GROUP BY gaming_session_id"
    )
    return {frozenset(r["f"]) for r in rows}


@pytest.mark.parametrize("corpus", FIXTURE_CORPORA[:1] + SHARED_CORPORA[:1], ids=corpus_id)
async def test_any_import_order_gives_the_same_database(pool: asyncpg.Pool, corpus: Corpus) -> None:
    files = sorted(corpus_files(corpus), key=lambda f: Path(f[1]).name)
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    snapshots = []
    for order in (files, files[::-1], shuffled):
        await _truncate(pool)
        await import_all(make(pool), order)
        snapshots.append((await exported(pool), await _sessions(pool)))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    statuses = {r["status"] for r in snapshots[0][0].values()}
    assert "paired" in statuses  # the corpus has pairs: the comparison is not vacuous
