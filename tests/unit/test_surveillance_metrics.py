"""Surveillance statistics against hand-computed figures and constructed bid patterns."""

from __future__ import annotations

import random

import pytest

from agentmarket.surveillance.metrics import (
    bid_independence,
    cover_bid_gaps,
    cr,
    hhi,
    lerner,
    mean_ci95,
    profit_gain,
    rotation_stats,
)


def test_hhi_and_cr4_by_hand() -> None:
    assert hhi({"a": 1}) == pytest.approx(10_000)
    assert hhi({"a": 1, "b": 1, "c": 1, "d": 1}) == pytest.approx(2_500)
    # shares 50/30/20 -> 2500 + 900 + 400
    assert hhi({"a": 50, "b": 30, "c": 20}) == pytest.approx(3_800)
    assert cr({"a": 40, "b": 30, "c": 10, "d": 10, "e": 10}, 4) == pytest.approx(0.9)
    assert hhi({}) == 0 and hhi({"a": 0}) == 0


def test_lerner_and_profit_gain() -> None:
    assert lerner(2.0, 1.0) == pytest.approx(0.5)
    assert lerner(1.0, 1.0) == 0
    with pytest.raises(ValueError):
        lerner(0, 1)
    assert profit_gain(0.3, 0.2, 0.4) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        profit_gain(1, 1, 1)


def test_mean_ci95_uses_the_t_quantile() -> None:
    mean, _lo, hi = mean_ci95([1.0, 2.0, 3.0])
    # sd = 1, n = 3, t(2) = 4.303 -> half width 4.303 / sqrt(3)
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.303 / 3**0.5)
    assert mean_ci95([5.0]) == (5.0, 5.0, 5.0)
    with pytest.raises(ValueError):
        mean_ci95([])


def test_strict_rotation_is_perfectly_regular_and_random_winners_are_not() -> None:
    ring = ["a", "b", "c"] * 6
    bidders = [["a", "b", "c"]] * len(ring)
    s = rotation_stats(ring, bidders, window=3)
    assert s.rotation_regularity == 1.0 and s.longest_run == 1 and s.distinct_in_window == 3
    assert s.win_rates == {"a": pytest.approx(1 / 3), "b": pytest.approx(1 / 3), "c": pytest.approx(1 / 3)}
    rng = random.Random(3)
    rand = [rng.choice("abc") for _ in range(200)]
    r = rotation_stats(rand, [["a", "b", "c"]] * 200, window=3)
    # winner not among the previous two: (2/3)^2 for iid uniform winners over three bidders
    assert r.rotation_regularity == pytest.approx(4 / 9, abs=0.08)
    with pytest.raises(ValueError):
        rotation_stats(["a"], [], window=3)


def test_cover_gaps() -> None:
    assert cover_bid_gaps([{"a": 100, "b": 101, "c": 150}, {"a": 10}]) == [pytest.approx(0.01)]


def test_bid_independence_separates_tracking_bids_from_independent_ones() -> None:
    rng = random.Random(11)
    auctions, costs = [], []
    for _ in range(30):
        c = {x: rng.randint(90, 110) for x in "abcd"}
        lead = c["a"] * (1 + rng.uniform(0.2, 0.5))
        bids = {
            "a": int(lead),
            "b": int(lead * 1.01),  # b covers a: its bid tracks a's, not its own cost
            "c": int(c["c"] * (1 + rng.uniform(0.02, 0.1))),
            "d": int(c["d"] * (1 + rng.uniform(0.02, 0.1))),
        }
        auctions.append(bids)
        costs.append(c)
    pairs = {p.pair: p for p in bid_independence(auctions, costs, permutations=300)}
    assert pairs[("a", "b")].p_value < 0.01 and pairs[("a", "b")].correlation > 0.5
    assert pairs[("c", "d")].p_value > 0.01
