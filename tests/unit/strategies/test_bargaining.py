"""Alternating-offers bargaining: agreements respect both sides, offers trade issues off, runs are seeded."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmarket.strategies import (
    Agreement,
    ImitationMode,
    IssueRange,
    Negotiator,
    Preferences,
    Role,
    Terms,
    TimeDependent,
    TitForTat,
    Weights,
    negotiate,
    offer_for_target,
    random_preferences,
)
from agentmarket.strategies.concession import Tactic

TACTICS: list[Tactic] = [
    TimeDependent(0.2),
    TimeDependent(1.0),
    TimeDependent(3.0),
    TitForTat(ImitationMode.ABSOLUTE),
    TitForTat(ImitationMode.RELATIVE, deadline=TimeDependent(0.5)),
]


def pair(seed: int) -> tuple[Preferences, Preferences]:
    rng = random.Random(seed)
    return random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 10**6),
    st.sampled_from(TACTICS),
    st.sampled_from(TACTICS),
    st.integers(1, 40),
    st.sampled_from(list(Role)),
    st.floats(0, 0.2),
)
def test_agreements_lie_within_both_reservations(
    seed: int, bt: Tactic, tactic_s: Tactic, rounds: int, opener: Role, noise: float
) -> None:
    bp, sp = pair(seed)
    result = negotiate(
        Negotiator(Role.BUYER, bp, bt, noise=noise),
        Negotiator(Role.SELLER, sp, tactic_s, noise=noise),
        rounds,
        random.Random(seed),
        opener=opener,
    )
    assert len(result.trace) <= rounds
    actors = [s.actor for s in result.trace]
    assert all(a is not b for a, b in itertools.pairwise(actors))  # strictly alternating
    assert actors[0] is opener
    a = result.agreement
    if a is None:
        assert all(s.action == "offer" for s in result.trace)
        return
    assert isinstance(a.price, int) and isinstance(a.bond, int) and isinstance(a.delivery_seconds, int)
    assert sp.price.worst <= a.price <= bp.price.worst  # seller's floor, buyer's ceiling
    assert bp.acceptable(a.terms) and sp.acceptable(a.terms)
    assert result.trace[-1].action == "accept" and result.trace[-1].terms == a.terms
    assert a.proposer is result.trace[-1].actor.other and a.round == len(result.trace) - 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(TACTICS), st.integers(2, 30))
def test_own_offers_never_get_better_for_the_proposer(seed: int, tactic: Tactic, rounds: int) -> None:
    bp, sp = pair(seed)
    result = negotiate(
        Negotiator(Role.BUYER, bp, tactic), Negotiator(Role.SELLER, sp, TimeDependent(1.0)), rounds
    )
    mine = [s.buyer_utility for s in result.trace if s.actor is Role.BUYER and s.action == "offer"]
    # each offer is worth at least its (non-increasing) target; rounding may add a hair
    assert all(u >= bp.reservation - 1e-9 for u in mine)
    assert mine[0] == pytest.approx(1.0, abs=1e-6)


@given(st.integers(0, 10**6), st.floats(0, 1))
def test_offer_for_target_is_worth_the_target(seed: int, target: float) -> None:
    bp, sp = pair(seed)
    opp = sp.ideal()
    offer = offer_for_target(bp, target, opp)
    assert bp.in_range(offer)
    assert bp.utility(offer) >= target - 1e-6


def test_trade_off_keeps_the_heavy_issue_and_concedes_the_light_one() -> None:
    buyer = Preferences(
        price=IssueRange(worst=100, best=50),
        delivery=IssueRange(worst=10_000, best=1_000),
        bond=IssueRange(worst=0, best=40),
        weights=Weights(0.7, 0.2, 0.1),
    )
    seller_ideal = Terms(price=150, delivery_seconds=20_000, bond=0)
    offer = offer_for_target(buyer, 0.6, seller_ideal)
    scores = buyer.scores(offer)
    # price matters most to this buyer: it is kept better than delivery and bond
    assert scores[0] > scores[1] >= scores[2]
    assert 0.6 <= buyer.utility(offer) <= 0.61  # integer rounding on a 50-unit price scale
    # closer to the seller than a uniform concession at the same utility
    uniform = buyer.terms_from_scores((0.6, 0.6, 0.6))
    seller = Preferences(
        price=IssueRange(worst=40, best=150),
        delivery=IssueRange(worst=500, best=20_000),
        bond=IssueRange(worst=40, best=0),
        weights=Weights(0.3, 0.4, 0.3),
    )
    assert seller.utility(offer) > seller.utility(uniform)


def test_same_seed_same_trace_and_noise_uses_the_rng() -> None:
    bp, sp = pair(7)
    b = Negotiator(Role.BUYER, bp, TimeDependent(0.5), noise=0.1)
    s = Negotiator(Role.SELLER, sp, TimeDependent(1.0), noise=0.1)
    r1 = negotiate(b, s, 20, random.Random(3))
    r2 = negotiate(b, s, 20, random.Random(3))
    r3 = negotiate(b, s, 20, random.Random(4))
    assert r1 == r2
    assert r1.trace != r3.trace


def test_conceder_meets_boulware_on_the_boulware_side() -> None:
    """Averaged over scenarios, the tougher side ends with more utility."""
    tough, soft = [], []
    for seed in range(60):
        bp, sp = pair(seed)
        r = negotiate(
            Negotiator(Role.BUYER, bp, TimeDependent(0.2)), Negotiator(Role.SELLER, sp, TimeDependent(3.0))
        )
        if r.agreement is not None:
            tough.append(bp.utility(r.agreement.terms))
            soft.append(sp.utility(r.agreement.terms))
    assert len(tough) > 40
    assert sum(tough) / len(tough) > sum(soft) / len(soft) + 0.1


def test_validation_and_agreement_fields() -> None:
    bp, sp = pair(1)
    b, s = Negotiator(Role.BUYER, bp, TimeDependent(1)), Negotiator(Role.SELLER, sp, TimeDependent(1))
    with pytest.raises(ValueError):
        negotiate(s, b)
    with pytest.raises(ValueError):
        negotiate(b, s, 0)
    assert negotiate(b, s, 1).agreement is None  # nobody may answer the only offer
    a = Agreement(price=10**18, delivery_seconds=3600, bond=10**17, round=5, proposer=Role.SELLER)
    assert a.as_dict() == {
        "price": 10**18,
        "delivery_seconds": 3600,
        "bond": 10**17,
        "round": 5,
        "proposer": "seller",
    }
    assert a.terms == Terms(10**18, 3600, 10**17)
