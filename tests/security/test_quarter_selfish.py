"""Selfish providers against the quarterly procurement assistant's choice rule (no chain needed: the rule is
pure; the on-chain consequences of late, short and missing deliveries are in tests/integration/test_quarter.py)."""

from __future__ import annotations

import random

from agentmarket.sim.quarter import Belief, estimate_provider


def test_a_wash_traded_perfect_rating_does_not_outweigh_the_agents_own_failures() -> None:
    """A provider that paid itself through a Sybil buyer for a 100 rating, then failed the assistant three
    times, ranks below an unrated provider that delivered three times on time."""
    rng = random.Random(0)
    washed = Belief(kept=1.0, missed=4.0, delivered=2.0, undelivered=3.5)  # three failures seen
    honest = Belief(kept=4.0, missed=1.0, delivered=5.0, undelivered=0.5)  # three on time seen
    kept_w, share_w = estimate_provider(washed, 100.0, rng, sample=False)
    kept_h, share_h = estimate_provider(honest, None, rng, sample=False)
    assert kept_w < kept_h and share_w < share_h


def test_a_good_rating_helps_only_until_the_record_speaks() -> None:
    """With no record of its own the rating decides; one failure observed moves the estimate down."""
    rng = random.Random(0)
    fresh = estimate_provider(Belief(), 95.0, rng, sample=False)[0]
    after_failure = estimate_provider(Belief(kept=1.0, missed=2.0), 95.0, rng, sample=False)[0]
    unrated = estimate_provider(Belief(), None, rng, sample=False)[0]
    assert fresh > unrated and after_failure < fresh
