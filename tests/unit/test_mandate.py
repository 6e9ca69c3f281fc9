"""Spend mandates refuse before anything is signed, and refused spends do not count."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.errors import InvalidInput, MandateViolation
from agentmarket.mandate import ETH, Mandate, MandateGuard, PriceBand

TOKEN = "0x00000000000000000000000000000000000000AA"  # EIP-55 valid (all-caps letters here)
GPU = b"gpu-h100".ljust(32, b"\0")


def test_budget_cap_and_refused_spend_does_not_count():
    guard = MandateGuard(Mandate(budget={ETH: 100}, max_per_deal={ETH: 60}))
    guard.authorise(60)
    with pytest.raises(MandateViolation, match="per-deal cap"):
        guard.authorise(61)
    with pytest.raises(MandateViolation, match="budget"):
        guard.authorise(41)
    assert guard.spent() == 60 and guard.remaining() == 40
    guard.authorise(40)
    assert guard.remaining() == 0


def test_assets_not_named_in_a_budget_get_nothing():
    guard = MandateGuard(Mandate(budget={ETH: 100}))
    with pytest.raises(MandateViolation):
        guard.authorise(1, TOKEN)


def test_allowed_assets():
    guard = MandateGuard(Mandate(allowed_assets=frozenset({TOKEN})))
    guard.authorise(5, TOKEN.lower())
    with pytest.raises(MandateViolation, match="not allowed"):
        guard.authorise(5, ETH)


def test_price_band():
    guard = MandateGuard(Mandate(price_bands={GPU: PriceBand(1_000, 2_000)}))
    guard.authorise(10, resource=GPU, unit_price=1_200)
    with pytest.raises(MandateViolation, match="band ceiling 1200"):
        guard.authorise(10, resource=GPU, unit_price=1_201)


def test_rate_limit_sliding_window():
    now = [0.0]
    guard = MandateGuard(Mandate(max_actions=2, per_seconds=10), clock=lambda: now[0])
    guard.authorise(1)
    guard.authorise(1)
    with pytest.raises(MandateViolation, match="rate limit"):
        guard.authorise(1)
    now[0] = 10.0
    guard.authorise(1)


def test_refund_restores_budget():
    guard = MandateGuard(Mandate(budget={ETH: 10}))
    guard.authorise(10)
    guard.refund(4)
    guard.authorise(4)


def test_bad_mandates():
    with pytest.raises(InvalidInput):
        Mandate(budget={"not-an-address": 1})
    with pytest.raises(InvalidInput):
        Mandate(budget={ETH: -1})
    with pytest.raises(InvalidInput):
        MandateGuard(Mandate()).authorise(-1)


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=40), st.integers(min_value=0, max_value=500))
def test_spent_never_exceeds_budget(amounts, budget):
    guard = MandateGuard(Mandate(budget={ETH: budget}))
    for amount in amounts:
        with contextlib.suppress(MandateViolation):
            guard.authorise(amount)
        assert guard.spent() <= budget
