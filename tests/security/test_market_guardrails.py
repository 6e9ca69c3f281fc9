"""What a selfish rule-follower gains from the simulator's exchange guardrails (docs/threat-model.md)."""

from __future__ import annotations

import random

from agentmarket.agent import resource_id
from agentmarket.chain import Chain
from agentmarket.clients.callmarket import CallMarketClient
from agentmarket.deploy import Suite
from agentmarket.mandate import Mandate, PriceBand
from agentmarket.market import Market
from agentmarket.sim import CircuitBreaker, Trader
from agentmarket.sim.callhouse import CallHouse
from agentmarket.sim.mechanisms import Call, Offers
from agentmarket.strategies import Role
from agentmarket.types import ETH


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


def test_a_buyer_cannot_bid_above_its_band_in_the_on_chain_call_market(chain: Chain, suite: Suite) -> None:
    """On the CallMarket contract a buyer's bid is the unit price its mandate checks: a bid above its
    band's ceiling is refused before it is signed, so no order and no lock reach the contract, and the
    batch clears without it."""
    market = Market(chain, suite)
    seller, buyer = market.agents(2, fund=10**18, prefix="sec")
    buyer.with_mandate(
        Mandate(budget={ETH: 10**18}, price_bands={resource_id("gpu-hour"): PriceBand(10**15, 1_000)})
    )
    house = CallHouse(market, {0: seller, 1: buyer}, Call())
    held = house.held()
    sales = house.run_round(
        [Trader(1, Role.BUYER, 10**16, "fixed")],
        [Trader(0, Role.SELLER, 10**15, "fixed")],
        0,
        random.Random(1),
    )
    assert sales == [] and house.refused == 1
    cm = CallMarketClient.from_suite(suite)
    batch = cm.batch(house.batches[0])
    assert batch.bids == () and len(batch.asks) == 1 and house.held() == held
