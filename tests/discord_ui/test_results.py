"""Round outcome, stopwatch result, map grouping and totals (models.py, text.py wording)."""

from __future__ import annotations

from bot.discord_ui import text
from bot.discord_ui.models import (
    combine,
    group_matches,
    match_groups,
    stopwatch_result,
    top_performers,
)
from tests.discord_ui.factories import player, r2_of, rnd

AXIS, ALLIES = 1, 2


def test_r1_objective_done_sets_the_time_to_beat() -> None:
    r1 = rnd(defender=AXIS, winner=ALLIES, next_time_limit="9:10")
    assert r1.attackers == ALLIES and r1.objective_done is True
    lines = text.round_outcome_lines(r1)
    assert lines[0] == "Allies attacked, Axis defended."
    assert "time to beat 9:10" in lines[1]


def test_r1_full_hold() -> None:
    r1 = rnd(defender=AXIS, winner=AXIS, next_time_limit="10:00")
    assert r1.objective_done is False
    assert "Full hold" in text.round_outcome_lines(r1)[1]


def test_r2_attackers_are_the_same_side_and_beat_the_clock() -> None:
    r2 = r2_of(rnd(defender=ALLIES, winner=AXIS), winner=AXIS, duration_seconds=482)
    assert r2.attackers == AXIS and r2.objective_done is True
    assert "Axis beat the clock (9:10) in 8:02" in text.round_outcome_lines(r2)[1]


def test_no_winner_is_no_result() -> None:
    r = rnd(winner=0, aborted=True, duration_seconds=None)
    assert r.objective_done is None
    assert "No result" in text.round_outcome_lines(r)[-1]
    assert "map change" in text.duration_line(r)


def test_stopwatch_r2_attackers_faster_win() -> None:
    r1 = rnd(defender=AXIS, winner=ALLIES, next_time_limit="9:10")
    r2 = r2_of(r1, winner=ALLIES, duration_seconds=482)  # Allies side attacks again
    res = stopwatch_result(r1, r2)
    assert res is not None
    assert (res.winner, res.r1_time, res.r2_time) == ("second", 550, 482)
    summary = text.stopwatch_summary(res)
    assert summary.startswith("Defend-first team (Axis in R1) wins the map: beat 9:10 in 8:02")


def test_stopwatch_time_stands_when_r2_attackers_fail() -> None:
    r1 = rnd(defender=AXIS, winner=ALLIES, next_time_limit="9:10")
    r2 = r2_of(r1, winner=AXIS, duration_seconds=550)
    res = stopwatch_result(r1, r2)
    assert res is not None and res.winner == "first" and res.r2_time is None
    assert text.stopwatch_summary(res) == (
        "Attack-first team (Allies in R1) wins the map: their 9:10 was not beaten."
    )


def test_stopwatch_double_full_hold_is_a_draw_and_no_winner_is_undecided() -> None:
    r1 = rnd(defender=AXIS, winner=AXIS, next_time_limit="10:00")
    held = stopwatch_result(r1, r2_of(r1, winner=AXIS))
    assert held is not None and held.winner == "draw" and held.r1_time is None
    cut = stopwatch_result(r1, r2_of(r1, winner=0))
    assert cut is not None and cut.winner == "undecided"
    after_hold = stopwatch_result(r1, r2_of(r1, winner=ALLIES, duration_seconds=300))
    assert after_hold is not None and after_hold.winner == "second"
    assert "after a full hold" in text.stopwatch_summary(after_hold)


def test_group_matches_pairs_r2_with_its_r1_and_keeps_orphans() -> None:
    r1 = rnd(id=1)
    r2 = r2_of(r1)
    lone = rnd(id=7, map_name="radar", played_at=r2.played_at.replace(hour=23))
    orphan = rnd(
        id=9, round_number=2, status="orphan_r2", map_name="supply", played_at=lone.played_at
    )
    matches = group_matches([orphan, r2, lone, r1])
    assert [(m.r1, m.r2) for m in matches] == [(r1, r2), (lone, None), (None, orphan)]
    assert text.match_summary(matches[2]).startswith("Round 1 missing.")
    assert text.match_summary(matches[1]).startswith("Round 2 not played.")


def test_match_groups_sum_r1_and_r2_only_per_group() -> None:
    r1 = rnd(defender=AXIS, winner=ALLIES)
    # Alice attacks first (Allies in R1, Axis in R2); Bob defends first.
    r1_players = [player("Alice", team=ALLIES, kills=5), player("Bob", team=AXIS, kills=2)]
    r2_players = [
        player("Alice", team=AXIS, kills=3, damage_given=None),
        player("Bob", team=ALLIES, kills=7),
        player("Late", team=AXIS, kills=1),  # joined in R2 on the R1 attackers' side
        player("Spec", team=3, kills=1),  # spectator in both: no group
    ]
    first, second = match_groups(r1, r1_players, r2_players)
    assert {p.name: p.kills for p in first} == {"Alice": 8, "Late": 1}
    assert {p.name: p.kills for p in second} == {"Bob": 9}
    alice = next(p for p in first if p.name == "Alice")
    assert alice.damage_given == 2000 and alice.rounds == 2  # unknown + n = n


def test_combine_keeps_unknown_unknown() -> None:
    a = player("A", revives_given=None)
    b = player("A", revives_given=None, kills=1)
    total = combine([a, b])
    assert total.revives_given is None and total.kills == 11


def test_top_performers_use_thresholds_and_prefer_humans() -> None:
    few_shots = player("Sniper", aimed_hits=9, aimed_shots=10, kills=1)
    steady = player("Steady", aimed_hits=40, aimed_shots=100, kills=20, revives_given=7)
    bot = player("[BOT]X", is_bot=True, kills=99)
    tops = {t.title: (t.player.name, t.value) for t in top_performers([few_shots, steady, bot])}
    assert tops["Most kills"] == ("Steady", "20")
    assert tops["Best accuracy"] == ("Steady", "40%")  # 10 shots are below the minimum
    assert tops["Most revives"] == ("Steady", "7")
    assert "[BOT]X" not in {name for name, _ in tops.values()}
