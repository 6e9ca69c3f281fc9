"""What a selfish rule-follower gains from the simulator's exchange guardrails (docs/threat-model.md)."""

from __future__ import annotations

import random

from agentmarket.sim import CircuitBreaker, Trader
from agentmarket.sim.mechanisms import Call, Offers
from agentmarket.strategies import Role


def test_one_bidder_repeating_the_limit_price_cannot_halt_the_market() -> None:
    """A buyer that wants a call auction (or a halt) cannot force one by shouting the band's ceiling
    again and again: the limit state needs bids from several different traders."""
    breaker = CircuitBreaker(100, 0.5)
    breaker.limit_up = 120
    assert not any(breaker.observe_quote(True, 120, who=7) for _ in range(50))
    assert breaker.fired == 0
    assert breaker.observe_quote(True, 120, who=8) is False
    assert breaker.observe_quote(True, 121, who=9)  # a real pile-up: three buyers at the limit


def test_a_capped_buyer_cannot_buy_above_its_band_by_bidding_more() -> None:
    """Guardrails cap quotes before matching: however high its value, a capped buyer's trades in the
    continuous market are at or under the cap (nothing is matched above it and then refused)."""
    rng = random.Random(3)
    buyers = [Trader(100 + i, Role.BUYER, 10_000 + 5_000 * i, "fixed", cap=9_000) for i in range(6)]
    sellers = [Trader(i, Role.SELLER, 4_000 + 500 * i, "fixed") for i in range(6)]
    offers = Offers()
    for m in offers.clear(buyers, sellers, rng):
        assert m.price <= 9_000


def test_shading_in_the_call_market_does_not_buy_a_lower_price_for_the_winner_alone() -> None:
    """One uniform price: a buyer that shades its bid pays the same price as everyone else when it
    still trades, and risks not trading; it cannot get a private discount."""
    rng = random.Random(5)
    buyers = [Trader(100 + i, Role.BUYER, 10_000 + 1_000 * i, "fixed") for i in range(8)]
    sellers = [Trader(i, Role.SELLER, 6_000 + 800 * i, "fixed") for i in range(8)]
    matches = Call().clear(buyers, sellers, rng)
    assert matches and len({m.price for m in matches}) == 1
