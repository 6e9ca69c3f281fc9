"""Additive utility, issue ranges and integer rounding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.strategies import IssueRange, Preferences, Terms, Weights

BIG = 10**24


def prefs(reservation: float = 0.1) -> Preferences:
    return Preferences(
        price=IssueRange(worst=120 * 10**16, best=60 * 10**16),
        delivery=IssueRange(worst=86_400, best=600),
        bond=IssueRange(worst=0, best=50 * 10**16),
        weights=Weights(3, 1, 1),
        reservation=reservation,
    )


def test_weights_normalise_and_reject_nonsense() -> None:
    w = Weights(3, 1, 1)
    assert w.as_tuple() == pytest.approx((0.6, 0.2, 0.2))
    with pytest.raises(ValueError):
        Weights(-1, 1, 1)
    with pytest.raises(ValueError):
        Weights(0, 0, 0)


def test_issue_range_direction_and_reservation() -> None:
    price = IssueRange(worst=100, best=50)  # a buyer: lower is better
    assert not price.increasing
    assert price.score(50) == 1.0 and price.score(100) == 0.0 and price.score(75) == 0.5
    assert price.within(100) and not price.within(101)
    with pytest.raises(ValueError):
        IssueRange(5, 5)


def test_ideal_is_worth_one_and_worst_zero() -> None:
    p = prefs()
    assert p.utility(p.ideal()) == pytest.approx(1.0)
    assert p.utility(Terms(120 * 10**16, 86_400, 0)) == 0.0
    assert not p.acceptable(Terms(121 * 10**16, 600, 50 * 10**16))  # price beyond the buyer's max


@given(st.integers(-BIG, BIG), st.integers(0, 10**7), st.integers(-BIG, BIG), st.floats(0, 0.99))
def test_utility_always_in_unit_interval(price: int, delivery: int, bond: int, res: float) -> None:
    u = prefs(res).utility(Terms(price, delivery, bond))
    assert 0.0 <= u <= 1.0


@given(st.integers(-BIG, BIG), st.integers(-BIG, BIG), st.floats(0, 1))
def test_value_at_rounds_in_the_sides_favour(a: int, b: int, score: float) -> None:
    if a == b:
        return
    r = IssueRange(worst=a, best=b)
    value = r.value_at(score)
    assert r.within(value)
    assert r.score(value) >= score - 1e-9
