"""Bidders: limits respected, equilibrium shading, truthful Vickrey, revenue equivalence, procurement."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.strategies import (
    AuctionKind,
    AuctionView,
    Bidder,
    CostCurve,
    DutchBidder,
    EnglishBidder,
    FirstPriceBidder,
    ProcurementBidder,
    VickreyBidder,
    first_price_equilibrium_bid,
    min_next_bid,
)

WEI = 10**18
amounts = st.integers(0, 10**6 * WEI)
rng = random.Random(0)


def test_every_strategy_satisfies_the_protocol() -> None:
    curve = CostCurve(((600, 10),))
    for b in (
        EnglishBidder(1),
        DutchBidder(1),
        FirstPriceBidder(1),
        VickreyBidder(1),
        ProcurementBidder(curve),
    ):
        assert isinstance(b, Bidder)


def test_min_next_bid() -> None:
    assert min_next_bid(AuctionView(AuctionKind.ENGLISH, reserve=100)) == 100
    assert (
        min_next_bid(AuctionView(AuctionKind.ENGLISH, reserve=100, current_price=1000, increment_bps=500))
        == 1050
    )
    assert min_next_bid(AuctionView(AuctionKind.ENGLISH, reserve=0, current_price=3, increment_bps=1)) == 4


@given(amounts, amounts, amounts, st.integers(0, 5000), st.booleans())
def test_english_bids_the_minimum_and_never_above_value(
    value: int, reserve: int, high: int, inc: int, leading: bool
) -> None:
    view = AuctionView(AuctionKind.ENGLISH, reserve, high, inc, leading=leading)
    action = EnglishBidder(value).bid(view, rng)
    if action is None:
        assert leading or min_next_bid(view) > value
    else:
        assert not leading and action.amount == min_next_bid(view) <= value


def test_english_ascending_auction_goes_to_the_highest_value_at_about_the_second() -> None:
    values = [700 * WEI, 1000 * WEI, 850 * WEI]
    bidders = [EnglishBidder(v) for v in values]
    high, leader = 0, -1
    changed = True
    while changed:
        changed = False
        for i, b in enumerate(bidders):
            view = AuctionView(AuctionKind.ENGLISH, 100 * WEI, high, 100, 3, leading=i == leader)
            action = b.bid(view, rng)
            if action is not None:
                high, leader, changed = action.amount, i, True
    assert leader == 1
    assert 850 * WEI <= high <= 850 * WEI * 101 // 100 + 1


@given(amounts, st.integers(1, 20), amounts, amounts)
def test_dutch_never_takes_above_the_shaded_value(value: int, n: int, reserve: int, price: int) -> None:
    bidder = DutchBidder(value)
    action = bidder.bid(AuctionView(AuctionKind.DUTCH, reserve, price, n_bidders=n), rng)
    if action is not None:
        assert action.amount == price <= bidder.shaded_value(n, reserve) <= value


def test_dutch_takes_once_the_price_falls_to_the_shaded_value() -> None:
    bidder = DutchBidder(1000)
    taken = None
    for price in range(2000, 0, -10):
        if bidder.bid(AuctionView(AuctionKind.DUTCH, 0, price, n_bidders=4), rng):
            taken = price
            break
    assert taken == 750  # (n-1)/n * value


@given(st.integers(1, 10**30), st.integers(1, 30), st.integers(0, 10**30))
def test_first_price_shading_is_bounded_and_monotone(value: int, n: int, reserve: int) -> None:
    b = first_price_equilibrium_bid(value, n, reserve)
    if value < reserve:
        assert b == 0
        return
    assert reserve <= b <= value
    assert first_price_equilibrium_bid(value + 1, n, reserve) >= b
    if reserve == 0:
        assert b == (n - 1) * value // n


def test_first_price_and_vickrey_earn_the_same_expected_revenue() -> None:
    """Revenue equivalence under uniform private values: both ~ (n-1)/(n+1) of the top value."""
    r = random.Random(5)
    n, top = 4, 10**6
    fp, sp = [], []
    for _ in range(3000):
        values = [r.randint(0, top) for _ in range(n)]
        view = AuctionView(AuctionKind.SEALED_FIRST_PRICE, 0, n_bidders=n)
        bids = sorted(a.amount for v in values if (a := FirstPriceBidder(v).bid(view, r)) is not None)
        fp.append(bids[-1] if bids else 0)
        truthful = sorted(a.amount for v in values if (a := VickreyBidder(v).bid(view, r)) is not None)
        sp.append(truthful[-2] if len(truthful) > 1 else 0)
    expected = top * (n - 1) / (n + 1)
    assert statistics.mean(fp) == pytest.approx(expected, rel=0.03)
    assert statistics.mean(sp) == pytest.approx(expected, rel=0.03)


def test_vickrey_is_truthful_above_reserve() -> None:
    view = AuctionView(AuctionKind.VICKREY, reserve=500)
    action = VickreyBidder(800).bid(view, rng)
    assert action is not None and action.amount == 800
    assert VickreyBidder(499).bid(view, rng) is None


def test_cost_curve_interpolates_and_rejects_impossible_delivery() -> None:
    curve = CostCurve(((3600, 100 * WEI), (600, 300 * WEI), (86_400, 80 * WEI)))
    assert curve.fastest == 600
    assert curve.cost(600) == 300 * WEI and curve.cost(3600) == 100 * WEI
    assert curve.cost(2100) == 200 * WEI
    assert curve.cost(10**9) == 80 * WEI
    with pytest.raises(ValueError):
        curve.cost(599)
    with pytest.raises(ValueError):
        CostCurve(((1, 2), (1, 3)))


def test_procurement_asks_cost_plus_margin_at_the_best_delivery_for_the_buyer() -> None:
    curve = CostCurve(((600, 300 * WEI), (3600, 100 * WEI), (86_400, 80 * WEI)))
    bidder = ProcurementBidder(curve, margin_bps=1000)
    patient = AuctionView(AuctionKind.PROCUREMENT, reserve=1000 * WEI, time_value_per_second=0)
    a = bidder.bid(patient, rng)
    assert a is not None and a.delivery_seconds == 86_400 and a.amount == 88 * WEI
    # a buyer valuing time at 0.01/s prefers 1h (100 + 36) to 24h (80 + 864) and 10 min (300 + 6)
    hurried = AuctionView(AuctionKind.PROCUREMENT, reserve=1000 * WEI, time_value_per_second=WEI // 100)
    a = bidder.bid(hurried, rng)
    assert a is not None and a.delivery_seconds == 3600 and a.amount == 110 * WEI
    capped = AuctionView(AuctionKind.PROCUREMENT, reserve=1000 * WEI, max_delivery_seconds=599)
    assert bidder.bid(capped, rng) is None


def test_procurement_undercuts_but_never_below_cost_floor() -> None:
    bidder = ProcurementBidder(CostCurve(((3600, 100),)), margin_bps=2000, min_margin_bps=500)
    view = AuctionView(AuctionKind.PROCUREMENT, reserve=200, current_price=110, increment_bps=100)
    a = bidder.bid(view, rng)
    assert a is not None and a.amount == 108  # 110 - 1% rounded up, above the 105 floor
    assert bidder.bid(AuctionView(AuctionKind.PROCUREMENT, 200, current_price=105), rng) is None
    assert bidder.bid(AuctionView(AuctionKind.PROCUREMENT, 200, current_price=150, leading=True), rng) is None
    assert bidder.bid(AuctionView(AuctionKind.PROCUREMENT, reserve=119), rng) is None  # ask 120 > reserve


@given(st.integers(1, 10**24), st.integers(0, 5000), st.integers(0, 10**25), st.integers(0, 10**25))
def test_procurement_never_bids_below_cost_or_above_reserve(
    cost: int, margin: int, reserve: int, low: int
) -> None:
    bidder = ProcurementBidder(CostCurve(((60, cost),)), margin_bps=margin)
    a = bidder.bid(AuctionView(AuctionKind.PROCUREMENT, reserve, current_price=low), rng)
    if a is not None:
        assert cost <= a.amount <= reserve
        assert low == 0 or a.amount < low
