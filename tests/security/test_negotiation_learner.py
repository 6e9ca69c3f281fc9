"""What a selfish counterparty gains against the Bayesian negotiation learner (docs/threat-model.md,
"Negotiation learner").

- a hardliner that never concedes cannot push the learner below its reservation utility, and when the
  market offers another counterparty the learner leaves instead of taking a deal worth less than that;
- a bluffer that concedes fast to plant a rosy forecast and then retreats to its opening demand gets no
  agreement below the learner's reservation (the forecast only moves what the learner *asks*);
- a strategy module cannot make the protocol record an agreement its side could not accept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from agentmarket.strategies import Negotiator, Role, Terms, TimeDependent, negotiate, random_preferences
from agentmarket.strategies.bargaining import Move, offer_for_target
from agentmarket.strategies.opponent import BayesianBargainer
from agentmarket.strategies.utility import Preferences


def _learner_with_history(n: int = 20) -> BayesianBargainer:
    learner = BayesianBargainer(Role.BUYER)
    for i in range(n):
        rng = random.Random(500 + i)
        bp, sp = random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)
        result = negotiate(learner.negotiator(bp, 20), Negotiator(Role.SELLER, sp, TimeDependent(1.0)), 20)
        learner.learn(bp, result)
    return learner


def test_hardliner_gets_nothing_below_reservation_and_loses_the_deal_when_a_rematch_exists() -> None:
    learner = _learner_with_history()
    rematch = learner.rematch_value()
    assert rematch is not None
    walked = accepted_below = 0
    for i in range(40):
        rng = random.Random(i)
        bp, sp = random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)
        hardliner = Negotiator(Role.SELLER, sp, TimeDependent(0.02))  # concedes only in the very last rounds
        for discount in (None, 0.9):
            me = learner.negotiator(bp, 20, discount)
            result = negotiate(me, hardliner, 20, random.Random(i), Role.BUYER if i % 2 else Role.SELLER)
            u = result.utility_for(bp)
            assert u >= bp.reservation - 1e-12
            if result.agreement is not None:
                assert bp.acceptable(result.agreement.terms)
                if discount is not None and me.outside is not None and u < me.outside - 1e-9:
                    accepted_below += 1
            elif discount is not None:
                walked += 1
    assert accepted_below == 0  # with a rematch on offer, never settles for less than it is worth
    assert walked > 0


@dataclass
class Bluffer:
    """Concedes fast for ``feint`` offers (to plant a low reservation in the learner's model), then goes back
    to its opening demand and holds it."""

    role: Role
    preferences: Preferences
    feint: int = 4
    made: int = 0

    def respond(self, round: int, max_rounds: int, standing: Terms | None, rng: random.Random) -> Move:
        self.made += 1
        if round == max_rounds - 1 and standing is not None and self.preferences.acceptable(standing):
            return Move("accept")
        level = max(self.preferences.reservation, 1.0 - 0.2 * self.made) if self.made <= self.feint else 1.0
        return Move("offer", offer_for_target(self.preferences, level, standing))


def test_bluffer_cannot_push_the_learner_below_reservation() -> None:
    learner = _learner_with_history()
    for i in range(40):
        rng = random.Random(1000 + i)
        bp, sp = random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)
        result = negotiate(learner.negotiator(bp, 20), Bluffer(Role.SELLER, sp), 20, random.Random(i))
        assert result.utility_for(bp) >= bp.reservation - 1e-12
        if result.agreement is not None:
            assert bp.acceptable(result.agreement.terms) and sp.acceptable(result.agreement.terms)


@dataclass
class AcceptsAnything:
    role: Role
    preferences: Preferences

    def respond(self, round: int, max_rounds: int, standing: Terms | None, rng: random.Random) -> Move:
        return Move("accept") if standing is not None else Move("offer", self.preferences.ideal())


def test_protocol_refuses_an_acceptance_its_side_cannot_accept() -> None:
    rng = random.Random(3)
    bp, sp = random_preferences(Role.BUYER, rng), random_preferences(Role.SELLER, rng)
    seller = Negotiator(Role.SELLER, sp, TimeDependent(0.2))  # opens at its ideal: out of the buyer's range
    assert not bp.acceptable(sp.ideal())
    with pytest.raises(ValueError, match="cannot accept"):
        negotiate(AcceptsAnything(Role.BUYER, bp), seller, 20, random.Random(0), Role.SELLER)
