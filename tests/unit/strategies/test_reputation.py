"""Reputation-aware pricing: shrinkage for newcomers, better terms for strong records, refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.strategies import ReputationPolicy, ReputationView, Role

PRICE, BOND = 10**18, 3 * 10**17
policy = ReputationPolicy()


def test_newcomer_gets_neutral_terms() -> None:
    t = policy.terms(ReputationView.newcomer(), PRICE, BOND, Role.SELLER)
    assert t.accept and t.price == PRICE and t.bond == BOND and t.score == policy.prior_score


def test_strong_record_earns_a_discount_and_bond_relief() -> None:
    strong = ReputationView(count=200, weighted_score=98, total_value=200 * PRICE)
    as_seller = policy.terms(strong, PRICE, BOND, Role.SELLER)
    assert as_seller.accept and as_seller.price < PRICE and as_seller.bond < BOND
    assert as_seller.price >= PRICE * (10_000 - policy.max_discount_bps) // 10_000
    as_buyer = policy.terms(strong, PRICE, BOND, Role.BUYER)
    assert as_buyer.price > PRICE  # a buyer pays a premium to a reliable seller


def test_bad_record_is_refused_but_one_bad_rating_is_not_enough() -> None:
    assert not policy.terms(ReputationView(50, 10, 50 * PRICE), PRICE, BOND, Role.SELLER).accept
    one_bad = policy.terms(ReputationView(1, 0, PRICE), PRICE, BOND, Role.SELLER)
    assert one_bad.accept and one_bad.price > PRICE and one_bad.bond > BOND  # shrunk to 50: premium


def test_dust_ratings_do_not_count() -> None:
    strict = ReputationPolicy(min_total_value=10 * PRICE)
    farmed = ReputationView(count=1000, weighted_score=100, total_value=1000)
    assert strict.score(farmed) == strict.prior_score


def test_validation() -> None:
    with pytest.raises(ValueError):
        ReputationView(count=-1)
    with pytest.raises(ValueError):
        ReputationView(weighted_score=101)
    with pytest.raises(ValueError):
        ReputationPolicy(refuse_below=70, neutral_score=60)
    with pytest.raises(ValueError):
        policy.terms(ReputationView(), -1, 0, Role.SELLER)


views = st.builds(ReputationView, st.integers(0, 10_000), st.integers(0, 100), st.integers(0, 10**24))


@given(views, st.integers(0, 10**24), st.integers(0, 10**24))
def test_terms_are_integers_within_the_configured_bounds(view: ReputationView, price: int, bond: int) -> None:
    t = policy.terms(view, price, bond, Role.SELLER)
    assert 0 <= t.score <= 100
    assert isinstance(t.price, int) and isinstance(t.bond, int)
    assert price * (10_000 - policy.max_discount_bps) // 10_000 <= t.price
    assert t.price <= price * (10_000 + policy.max_premium_bps) // 10_000
    assert t.accept == (t.score >= policy.refuse_below)


@given(st.integers(1, 500), st.integers(0, 99), st.integers(0, 10**24))
def test_a_better_score_never_gets_worse_terms(count: int, score: int, price: int) -> None:
    worse = policy.terms(ReputationView(count, score, price), price, price, Role.SELLER)
    better = policy.terms(ReputationView(count, score + 1, price), price, price, Role.SELLER)
    assert better.score > worse.score
    assert better.accept or not worse.accept
    if worse.accept:  # a refusal carries the unadjusted terms; compare offers only
        assert better.price <= worse.price and better.bond <= worse.bond
