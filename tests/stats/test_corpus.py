"""Every corpus file against its expected.json, field by field.

Two sources: the committed fixtures (always) and, when it exists, the shared
corpus in the folder `shared` beside the repository root. Without it, its
parametrization is simply empty: no skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stats.corpus_check import (
    Corpus,
    check_endstats_entry,
    check_malformed,
    check_stats_entry,
    endstats_entries,
    malformed_entries,
    stats_entries,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "stats"


def _corpora(base: Path) -> list[Corpus]:
    found = []
    if (base / "multi" / "expected.json").is_file():
        found.append(Corpus(base / "multi", None))
    if (base / "legacy" / "expected.json").is_file():
        # legacy names carry no server prefix: these files all come from eu1
        found.append(Corpus(base / "legacy", "eu1"))
    return found


FIXTURE_CORPORA = _corpora(FIXTURES)
SHARED_CORPORA = _corpora(SHARED_CORPUS)


def _params(corpora: list[Corpus], lister) -> list:
    return [
        pytest.param(c, rel, id=f"{c.root.parent.name}/{c.root.name}/{rel}")
        for c in corpora
        for rel in lister(c)
    ]


def test_fixtures_are_present() -> None:
    # the committed fixtures must always be found, or the suite would be hollow
    assert [c.root.name for c in FIXTURE_CORPORA] == ["multi", "legacy"]
    assert len(stats_entries(FIXTURE_CORPORA[0])) == 9
    assert len(malformed_entries(FIXTURE_CORPORA[0])) == 16


@pytest.mark.parametrize(("corpus", "rel"), _params(FIXTURE_CORPORA, stats_entries))
def test_fixture_stats_file(corpus: Corpus, rel: str) -> None:
    assert check_stats_entry(corpus, rel) == []


@pytest.mark.parametrize(("corpus", "rel"), _params(FIXTURE_CORPORA, endstats_entries))
def test_fixture_endstats_file(corpus: Corpus, rel: str) -> None:
    assert check_endstats_entry(corpus, rel) == []


@pytest.mark.parametrize(("corpus", "rel"), _params(FIXTURE_CORPORA, malformed_entries))
def test_fixture_malformed_case(corpus: Corpus, rel: str) -> None:
    assert check_malformed(corpus, rel) == []


def _unlisted(corpus: Corpus) -> list[str]:
    """Corpus files that expected.json does not describe (they would go untested)."""
    listed = set(corpus.expected["files"]) | set(corpus.expected.get("malformed", {}))
    on_disk = {p.relative_to(corpus.root).as_posix() for p in corpus.root.rglob("*.txt")}
    return sorted(on_disk - listed)


@pytest.mark.parametrize("corpus", FIXTURE_CORPORA, ids=lambda c: c.root.name)
def test_fixture_files_all_described(corpus: Corpus) -> None:
    assert _unlisted(corpus) == []


# The shared corpus tests exist only where the corpus does: an empty
# parametrization would be reported as a skip.
if SHARED_CORPORA:

    @pytest.mark.parametrize("corpus", SHARED_CORPORA, ids=lambda c: c.root.name)
    def test_shared_files_all_described(corpus: Corpus) -> None:
        assert _unlisted(corpus) == []

    @pytest.mark.parametrize(("corpus", "rel"), _params(SHARED_CORPORA, stats_entries))
    def test_shared_stats_file(corpus: Corpus, rel: str) -> None:
        assert check_stats_entry(corpus, rel) == []

    @pytest.mark.parametrize(("corpus", "rel"), _params(SHARED_CORPORA, endstats_entries))
    def test_shared_endstats_file(corpus: Corpus, rel: str) -> None:
        assert check_endstats_entry(corpus, rel) == []

    @pytest.mark.parametrize(("corpus", "rel"), _params(SHARED_CORPORA, malformed_entries))
    def test_shared_malformed_case(corpus: Corpus, rel: str) -> None:
        assert check_malformed(corpus, rel) == []
