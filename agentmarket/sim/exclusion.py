"""Exclusion by speed, on chain: a few fast buyers act several times per round and take the posted offers
before the slow, small buyers act once; the same agents in a batch (call) market compete on price only.

Every round, providers post sell offers (two units each, at cost plus a margin). Large buyers want four
units, small buyers one; all draw private per-unit values. Supply is short of demand, so who trades is
decided by the mechanism:
- ``offers`` (continuous, posted offers): fast buyers fill the cheapest offers they value, one unit per
  action, several actions before a slow buyer acts once; slow buyers then act in random order.
- ``call`` (the uniform-price call market contract): every buyer and provider submits within the window
  and the batch clears at one price, so speed buys nothing; who trades depends on values only (buyers
  bid their values; asks are at cost plus the same 10% margin as the posted offers).

Reported per run: fill rate of small and large buyers' intramarginal units (units that trade in the
efficient allocation), the buyers' volume HHI, efficiency (realised over maximum surplus), and whether
surveillance raised its speed-dominance or exclusion flags, from the chain's events.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..clients.callmarket import CallMarketClient
from ..clients.offers import OffersClient, Side
from ..deploy import Suite
from ..surveillance import Benchmarks, surveil
from ..surveillance.events import read_events, trades_from_events
from ..surveillance.metrics import hhi
from ..types import ETH

__all__ = ["ExclusionRun", "run_exclusion"]

REFERENCE = 10**15
TICK_EXP = 11  # call market prices in ticks of 1e11 wei: 1e-4 of the reference price


@dataclass(frozen=True)
class ExclusionRun:
    seed: int
    mechanism: str
    rounds: int
    small_fill_rate: float
    large_fill_rate: float
    buyer_hhi: float
    efficiency: float
    flagged: bool
    flags: tuple[str, ...]


def _efficient_units(values: dict[str, list[int]], costs: list[int]) -> tuple[Counter[str], int]:
    """Units each buyer trades in the efficient allocation, and the maximum surplus."""
    bids = sorted(((v, b) for b, vs in values.items() for v in vs), reverse=True)
    asks = sorted(costs)
    units: Counter[str] = Counter()
    surplus = 0
    for (v, b), c in zip(bids, asks, strict=False):
        if v < c:
            break
        units[b] += 1
        surplus += v - c
    return units, surplus


def run_exclusion(
    suite: Suite,
    seed: int,
    *,
    rounds: int = 4,
    mechanism: str = "offers",
    providers: int = 3,
    fast: int = 2,
    slow: int = 4,
    speed: int = 4,
) -> ExclusionRun:
    """One run of ``rounds`` rounds with the chain's accounts: providers first, then fast, then slow."""
    rng = random.Random(seed)
    accounts = suite.chain.accounts
    if len(accounts) < 1 + providers + fast + slow:
        raise ValueError(f"need {1 + providers + fast + slow} funded accounts, chain has {len(accounts)}")
    sellers = [OffersClient.from_suite(suite, a) for a in accounts[1 : 1 + providers]]
    fast_b = [OffersClient.from_suite(suite, a) for a in accounts[1 + providers : 1 + providers + fast]]
    slow_b = [
        OffersClient.from_suite(suite, a)
        for a in accounts[1 + providers + fast : 1 + providers + fast + slow]
    ]
    demand: dict[str, int] = {
        c.account.address: (4 if c in fast_b else 1) for c in fast_b + slow_b if c.account
    }
    large = {c.account.address for c in fast_b if c.account}
    w3 = suite.chain.w3
    start = int(w3.eth.block_number) + 1
    wanted: Counter[str] = Counter()
    realised = 0
    maximum = 0
    resource = f"gpu-hour/exclusion/{seed}/{mechanism}"
    for _ in range(rounds):
        costs: dict[str, int] = {
            s.account.address: int(REFERENCE * rng.uniform(0.7, 1.0)) for s in sellers if s.account
        }
        values: dict[str, list[int]] = {
            b: [int(REFERENCE * rng.uniform(0.9, 1.6)) for _ in range(n)] for b, n in demand.items()
        }
        units, best = _efficient_units(values, [c for c in costs.values() for _ in range(2)])
        wanted.update(units)
        maximum += best
        if mechanism == "offers":
            realised += _offers_round(sellers, fast_b, slow_b, costs, values, resource, rng, speed)
        elif mechanism == "call":
            realised += _call_round(suite, sellers, fast_b + slow_b, costs, values, resource)
        else:
            raise ValueError(f"unknown mechanism {mechanism!r} (offers, call)")
    end = int(w3.eth.block_number)
    report = surveil(
        suite,
        start,
        end,
        benchmarks=Benchmarks(
            demand=dict(wanted), capacity=demand, intramarginal={b: wanted[b] > 0 for b in demand}
        ),
    )
    trades = trades_from_events(read_events(w3, suite.contracts, start, end))
    bought: Counter[str] = Counter()
    for t in trades:
        bought[t.buyer] += t.quantity
    rates = {b: min(1.0, bought[b] / wanted[b]) for b in demand if wanted[b] > 0}
    small = [r for b, r in rates.items() if b not in large]
    big = [r for b, r in rates.items() if b in large]
    screens = tuple(f.screen for f in report.flags if f.screen in ("speed_dominance", "exclusion"))
    return ExclusionRun(
        seed=seed,
        mechanism=mechanism,
        rounds=rounds,
        small_fill_rate=sum(small) / len(small) if small else 0.0,
        large_fill_rate=sum(big) / len(big) if big else 0.0,
        buyer_hhi=hhi(bought),
        efficiency=realised / maximum if maximum else 1.0,
        flagged=bool(screens),
        flags=screens,
    )


def _offers_round(
    sellers: list[OffersClient],
    fast: list[OffersClient],
    slow: list[OffersClient],
    costs: dict[str, int],
    values: dict[str, list[int]],
    resource: str,
    rng: random.Random,
    speed: int,
) -> int:
    """Providers post; fast buyers take ``speed`` actions each before any slow buyer acts. Returns the
    surplus realised (values minus costs of the traded units)."""
    book: list[tuple[int, Any, str]] = []  # (price, offer, seller)
    for s in sellers:
        assert s.account is not None
        me = s.account.address
        offer = s.build("sell", resource, int(costs[me] * 1.1), 2, asset=ETH)
        s.post(offer)
        book.append((offer.unit_price, offer, me))
    remaining = {id(o): 2 for _, o, _ in book}
    left = {b: sorted(v, reverse=True) for b, v in values.items()}
    surplus = 0

    def act(buyer: OffersClient) -> bool:
        nonlocal surplus
        assert buyer.account is not None
        me = buyer.account.address
        if not left[me]:
            return False
        for price, offer, seller in sorted(book, key=lambda x: x[0]):
            if remaining[id(offer)] and left[me][0] >= price:
                buyer.fill(offer, 1)
                remaining[id(offer)] -= 1
                surplus += left[me].pop(0) - costs[seller]
                return True
        return False

    for _ in range(speed):
        for b in fast:
            act(b)
    for b in rng.sample(slow, len(slow)):
        act(b)
    for s in sellers:
        for _, offer, seller in book:
            if s.account is not None and seller == s.account.address and remaining[id(offer)]:
                s.cancel(offer)
    return surplus


def _call_round(
    suite: Suite,
    sellers: list[OffersClient],
    buyers: list[OffersClient],
    costs: dict[str, int],
    values: dict[str, list[int]],
    resource: str,
) -> int:
    """One batch of the call market: providers ask (two units at cost plus the same 10% margin as their
    posted offers), every buyer bids its value for each unit it wants, in any order and at any speed;
    the batch clears at one price. Returns the surplus of the units that traded."""
    chain = suite.chain
    tick = 10**TICK_EXP
    opener = CallMarketClient.from_suite(suite, chain.accounts[0])
    batch = opener.open_batch(resource, closes_in=600, tick_exp=TICK_EXP, delivery_delay=3600)
    worth: dict[tuple[Side, int], int] = {}
    for s in sellers:
        assert s.account is not None
        me = s.account.address
        order = opener.as_(s.account).submit_ask(batch, -(-int(costs[me] * 1.1) // tick), 2)
        worth[(Side.SELL, order.id)] = costs[me]
    for b in buyers:
        assert b.account is not None
        client = opener.as_(b.account)
        for value in values[b.account.address]:
            order = client.submit_bid(batch, value // tick, 1)
            worth[(Side.BUY, order.id)] = value
    chain.travel_to(batch.close_time + 1)
    clearing = opener.compute_clearing(batch.id)
    opener.clear_and_settle(batch.id)
    surplus = 0
    for (side, oid), filled in clearing.fills.items():
        surplus += filled * worth[(side, oid)] * (1 if side == Side.BUY else -1)
    return surplus
