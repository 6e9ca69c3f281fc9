"""The paired harness really pairs, its statistics are right, and a small comparison runs quickly."""

from __future__ import annotations

import random
import statistics

import pytest

from agentmarket.strategies.evaluation import (
    FIXED_TACTICS,
    compare,
    default_strategies,
    draw_games,
    evaluate,
    paired_summary,
    t_quantile,
)


def test_games_depend_only_on_the_seed() -> None:
    assert draw_games(3, 12) == draw_games(3, 12)
    assert draw_games(3, 12) != draw_games(4, 12)
    # every stratum gets the same share of first counterparties
    firsts = [g.opponent for g in draw_games(3, 40)]
    assert all(firsts.count(t) == 10 for t in FIXED_TACTICS)


def test_strategies_face_identical_counterparties() -> None:
    """Swapping our strategy leaves every opponent draw unchanged: same tactic, deadline, rng stream and
    (when the opponent opens, so its first offer cannot depend on ours) the same first offer."""
    runs = evaluate(default_strategies(), [7, 8], n_games=24)
    names = list(runs.outcomes)
    for seed in runs.seeds:
        games = draw_games(seed, 24)
        ref = runs.outcomes[names[0]][seed]
        for name in names[1:]:
            other = runs.outcomes[name][seed]
            for g, o1, o2 in zip(games, ref, other, strict=True):
                assert o1.opponent == o2.opponent == g.opponent
                assert o1.faced[0] == o2.faced[0]
                k = min(len(o1.faced), len(o2.faced))
                assert o1.faced[:k] == o2.faced[:k]  # the rematch queue is the same too
                if g.opener.value == "seller":
                    assert o1.opponent_first_offers[0] == o2.opponent_first_offers[0] is not None


def test_same_strategy_twice_gives_zero_difference() -> None:
    strategies = default_strategies()
    runs = evaluate({"a": strategies["bayes"], "b": strategies["bayes"]}, [1, 2, 3], n_games=16)
    c = paired_summary(runs.seed_means("a"), runs.seed_means("b"))
    assert c.diff == 0 and c.diff_lo == 0 and c.diff_hi == 0 and c.rel == 0


def test_t_quantile_matches_tables() -> None:
    # Student t 0.975 quantiles (standard tables)
    for df, q in [(5, 2.5706), (9, 2.2622), (29, 2.0452), (100, 1.9840)]:
        assert t_quantile(0.975, df) == pytest.approx(q, abs=2e-3)


def test_paired_summary_is_a_ratio_of_means_with_a_covering_interval() -> None:
    a, b = [1.0, 2.0, 3.0, 10.0], [1.0, 1.0, 1.0, 1.0]
    c = paired_summary(a, b)
    assert c.rel == pytest.approx(statistics.fmean(a) / statistics.fmean(b) - 1)  # not mean of ratios
    assert c.diff == pytest.approx(3.0)
    # coverage check: the t-interval covers a known mean difference about 95% of the time
    rng = random.Random(0)
    hits = 0
    for _ in range(400):
        x = [rng.gauss(0.5, 0.2) for _ in range(30)]
        y = [xi - 0.1 + rng.gauss(0, 0.05) for xi in x]
        s = paired_summary(x, y)
        hits += s.diff_lo <= 0.1 <= s.diff_hi
    assert 0.91 <= hits / 400 <= 0.99


def test_small_comparison_runs_and_reports_every_baseline() -> None:
    runs = evaluate(default_strategies(), [1, 2, 3], n_games=20)
    table = compare(runs, "bayes")
    assert set(FIXED_TACTICS) <= set(table) and "average" in table
    assert sum(k.startswith("best:") for k in table) == 1
    for c in table.values():
        assert c.n == 3 and c.diff_lo <= c.diff <= c.diff_hi
    assert compare(runs, "bandit", opponent="conceder", price=True)["average"].n == 3
