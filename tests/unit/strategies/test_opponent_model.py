"""The Bayesian opponent model recovers a time-dependent opponent's parameters; the learner plays legally."""

from __future__ import annotations

import itertools
import random

import pytest

from agentmarket.strategies import Negotiator, Role, TimeDependent, negotiate, random_preferences
from agentmarket.strategies.bargaining import Move
from agentmarket.strategies.opponent import (
    DEADLINES,
    EXPONENTS,
    BayesianBargainer,
    ConcessionPosterior,
    raw_utility,
)


@pytest.mark.parametrize(
    ("e", "d", "a", "b", "identified"),
    [
        (0.2, 1.0, -0.4, 0.55, True),
        (1.0, 0.7, -0.1, 0.6, True),
        (2.0, 1.0, 0.0, 0.35, True),
        (0.5, 0.8, -0.3, 0.7, True),
        # a conceder at its reservation by 60% of the game: (e, d) is not identified, b is
        (3.0, 0.6, 0.0, 0.35, False),
    ],
)
def test_posterior_concentrates_on_the_true_parameters(
    e: float, d: float, a: float, b: float, identified: bool
) -> None:
    """Synthetic trace of y_r = a + (b - a) f_r(e, d) + noise: the true cell gains most of the weight (or
    shares it with cells whose curves coincide on the observed rounds, e.g. a conceder already at its
    reservation), the best cell's b is the true b and the posterior band of b covers it."""
    rng = random.Random(5)
    post = ConcessionPosterior(20, noise=0.02)
    for r in range(1, 19, 2):
        f = min(1.0, r / 19 / d) ** (1 / e)
        post.observe(r, a + (b - a) * f + rng.gauss(0.0, 0.01))
    ei, di = EXPONENTS.index(e), DEADLINES.index(d)
    near = sum(
        w
        for w, c in zip(post.weights, post.cells, strict=True)
        if abs(EXPONENTS.index(c.e) - ei) <= 1 and abs(DEADLINES.index(c.d) - di) <= 1
    )
    assert (
        near > 0.6 or not identified
    )  # the 3x3 neighbourhood of the truth (prior share 9/66) holds most of the mass
    best = max(range(len(post.cells)), key=post.weights.__getitem__)
    assert abs(sum(post.cells[best].mean) - b) < 0.05  # b = a + c in the MAP cell
    mean, sd = post.final()
    assert abs(mean - b) < 2 * sd + 0.02
    assert sd < 0.6 / 2  # far tighter than the prior on c
    probs = [post.prob_final_at_least(k / 20) for k in range(-10, 21)]
    assert all(p1 >= p2 for p1, p2 in itertools.pairwise(probs))
    if sd < 0.05:  # identified (not a Boulware still far from its deadline)
        assert post.prob_final_at_least(b - 0.1) > 0.95
        assert post.prob_final_at_least(b + 0.1) < 0.05


def test_posterior_is_vague_before_data_and_tightens_with_it() -> None:
    post = ConcessionPosterior(20)
    _, sd0 = post.final()
    for r, y in [(1, -0.3), (3, -0.28), (5, -0.2), (7, -0.05)]:
        post.observe(r, y)
    _, sd1 = post.final()
    assert sd1 < sd0 / 2


def test_posterior_estimates_a_real_opponents_final_offer() -> None:
    """Against a real time-dependent seller (its offers include trade-offs, so off the model curve), the
    predicted value of its final offer from its first 7 offers (it reaches its reservation around its 8th)
    is close to the value of its last offer, for most traces."""
    errors = []
    for i in range(40):
        rng = random.Random(i)
        buyer_p = random_preferences(Role.BUYER, rng)
        seller_p = random_preferences(Role.SELLER, rng)
        e = rng.choice([0.2, 1.0, 3.0])
        seller = Negotiator(Role.SELLER, seller_p, TimeDependent(e), deadline=0.8)
        # a buyer that never accepts and never concedes: the seller's whole curve is observed
        buyer = Negotiator(Role.BUYER, buyer_p, TimeDependent(0.01))
        trace = negotiate(buyer, seller, 20, random.Random(i)).trace
        offers = [(s.round, raw_utility(buyer_p, s.terms)) for s in trace if s.actor is Role.SELLER]
        if len(offers) < 9 or any(s.action != "offer" for s in trace):
            continue
        post = ConcessionPosterior(20)
        for r, y in offers[:7]:
            post.observe(r, y)
        final_seen = offers[-1][1]
        errors.append(abs(post.final()[0] - final_seen))
    assert len(errors) >= 20
    errors.sort()
    assert errors[len(errors) // 2] < 0.03  # median
    assert errors[int(0.75 * len(errors))] < 0.15  # trade-offs throw a minority of traces off the curve


def test_learner_agreements_are_acceptable_and_it_can_walk_away() -> None:
    learner = BayesianBargainer(Role.BUYER)
    walked = 0
    for i in range(60):
        rng = random.Random(100 + i)
        bp, sp = random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)
        seller = Negotiator(Role.SELLER, sp, TimeDependent(rng.choice([0.2, 1.0, 3.0])))
        me = learner.negotiator(bp, 20, rematch_discount=0.9)
        result = negotiate(me, seller, 20, random.Random(i), Role.SELLER if i % 2 else Role.BUYER)
        learner.learn(bp, result)
        if result.agreement is not None:
            assert bp.acceptable(result.agreement.terms) and sp.acceptable(result.agreement.terms)
        walked += result.trace[-1].action == "walk"
    assert learner.rematch_value() is not None
    assert walked > 0  # with an outside option it does leave bad counterparties


def test_move_validation() -> None:
    with pytest.raises(ValueError):
        Move("offer")
    with pytest.raises(ValueError):
        Move("dance")
    with pytest.raises(ValueError):
        ConcessionPosterior(1)
    with pytest.raises(ValueError):
        Negotiator(
            Role.BUYER, random_preferences(Role.BUYER, random.Random(1)), TimeDependent(1.0), deadline=0
        )
