"""Bid rotation in procurement, on chain: a ring of providers takes turns winning sealed procurement
auctions with cover bids, against a control where the same providers bid competitively.

Each round a buyer opens a sealed procurement auction (price-only scoring, a budget above every cost).
Every provider draws a private cost (uniform around the reference price). Competitive providers bid
their cost plus a small random margin. The ring designates the next member in its rotation, which bids
high (a share of the budget); the other members bid "cover" bids a little above it, so the buyer sees
competition. Surveillance reads only the auctions' events (commit, reveal, settle) and is given the
providers' costs per auction, as a cost-auditing regulator would have them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from ..clients.auctions import AuctionClient
from ..deploy import Suite
from ..surveillance import Benchmarks, Thresholds, surveil
from ..types import ETH

__all__ = ["RotationRun", "run_rotation"]

REFERENCE = 10**16  # 0.01 ETH: mean provider cost per job
BID_WINDOW = 600
REVEAL_WINDOW = 600


@dataclass(frozen=True)
class RotationRun:
    """One run of ``auctions`` procurement auctions: ring or control, what the buyer paid, the flags."""

    seed: int
    ring: bool
    auctions: int
    mean_price_over_cost: float  # winner's price / winner's cost - 1, averaged
    flagged: bool
    flags: tuple[str, ...]
    rotation_regularity: float
    cover_share: float
    dependent_pairs: int
    from_block: int
    to_block: int


def run_rotation(
    suite: Suite,
    buyer: LocalAccount,
    providers: list[LocalAccount],
    seed: int,
    *,
    ring: bool,
    arbiter: str,
    auctions: int = 10,
    markup: float = 0.35,
    cover: tuple[float, float] = (0.002, 0.015),
    margin: tuple[float, float] = (0.02, 0.12),
    thresholds: Thresholds | None = None,
) -> RotationRun:
    """Run ``auctions`` sealed procurement auctions on ``suite``; the whole provider set is the ring when
    ``ring`` (a complete cartel), else everyone bids competitively. ``arbiter`` rules the escrow deals."""
    rng = random.Random(seed)
    chain = suite.chain
    w3 = chain.w3
    client = AuctionClient.from_suite(suite, buyer)
    bidders = [client.as_(p) for p in providers]
    start = int(w3.eth.block_number) + 1
    costs_per_auction: list[dict[str, int]] = []
    markups: list[float] = []
    for k in range(auctions):
        costs: dict[str, int] = {p.address: int(REFERENCE * rng.uniform(0.8, 1.2)) for p in providers}
        budget = 2 * REFERENCE
        now = client.now()
        # An arbiter in the terms: the client refuses procurement a provider could collect from unchecked.
        terms = client.template(3_600, asset=ETH, arbiter=arbiter)
        auction = client.create_procurement(
            terms,
            budget=budget,
            bid_end=now + BID_WINDOW,
            sealed_bids=True,
            reveal_end=now + BID_WINDOW + REVEAL_WINDOW,
        )
        if ring:
            designated = providers[k % len(providers)].address
            high = int(max(costs[designated] * (1 + markup), costs[designated]))
            bids: dict[str, int] = {designated: min(high, budget)}
            for p in providers:
                if p.address != designated:
                    bids[p.address] = min(budget, int(high * (1 + rng.uniform(*cover))))
        else:
            bids = {
                p.address: min(budget, int(costs[p.address] * (1 + rng.uniform(*margin)))) for p in providers
            }
        for bidder in bidders:
            assert bidder.account is not None
            bidder.commit_offer(auction, bids[bidder.account.address], 3_600)
        chain.advance_time(BID_WINDOW + 1)
        for bidder in bidders:
            bidder.reveal(auction)
        chain.advance_time(REVEAL_WINDOW + 1)
        settled = client.settle(auction)
        winner = settled.leader
        costs_per_auction.append(costs)
        markups.append(bids[winner] / costs[winner] - 1)
        for bidder in bidders:
            if bidder.account is not None and bidder.account.address != winner:
                bidder.reclaim(settled)
    end = int(w3.eth.block_number)
    report = surveil(
        suite, start, end, benchmarks=Benchmarks(procurement_costs=costs_per_auction), thresholds=thresholds
    )
    rot = report.rotation
    screens = tuple(f.screen for f in report.flags if f.scope == "procurement")
    return RotationRun(
        seed=seed,
        ring=ring,
        auctions=auctions,
        mean_price_over_cost=sum(markups) / len(markups),
        flagged=bool(screens),
        flags=screens,
        rotation_regularity=float(rot.get("rotation_regularity", 0.0)),
        cover_share=float(rot.get("cover_share", 0.0)),
        dependent_pairs=len(rot.get("dependent_pairs", [])),
        from_block=start,
        to_block=end,
    )
