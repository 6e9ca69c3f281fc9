"""Market-quality statistics computed from trades and bids: pure functions, no chain access.

Every function takes plain sequences (prices and quantities as integers in the asset's smallest unit,
or floats where a ratio is meant) so that it can be checked against hand-computed figures and reused
on data from any source. The surveillance report (:mod:`agentmarket.surveillance.report`) applies them
to what :mod:`agentmarket.surveillance.events` read from the chain.

References for the collusion screens:
- Lerner index: (p - mc) / p, the textbook markup measure.
- HHI and CR4: concentration over volume shares (HHI on a 0..10,000 scale, as antitrust agencies use).
- Bajari & Ye (2003), "Deciding between competition and collusion", REStat: in a competitive
  procurement market bids are independent once costs are controlled for (conditional independence) and
  exchangeable across bidders; a ring's residuals are correlated.
- Porter & Zona (1993), "Detection of bid rigging in procurement auctions", JPE: a ring's losing
  (cover) bids are not explained by costs the way competitive losing bids are; they sit just above the
  designated winner.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..sim.stats import mean_ci95 as _sim_mean_ci95

K = TypeVar("K", bound=Hashable)

__all__ = [
    "BidIndependence",
    "RotationStats",
    "bid_independence",
    "concentration",
    "cover_bid_gaps",
    "cr",
    "hhi",
    "lerner",
    "mean_ci95",
    "profit_gain",
    "rotation_stats",
    "shares",
]


def mean_ci95(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and the two ends of its 95% t-interval (the simulator's t quantiles,
    :func:`agentmarket.sim.stats.t975`). One value gives an interval of zero width."""
    if not values:
        raise ValueError("mean_ci95 needs at least one value")
    mean, (lo, hi) = _sim_mean_ci95(values)
    return mean, lo, hi


def shares(volumes: Mapping[K, int] | Mapping[K, float]) -> dict[K, float]:
    """Each participant's share of the total (0..1). Participants with zero volume are dropped."""
    total = float(sum(volumes.values()))
    if total <= 0:
        return {}
    return {k: v / total for k, v in volumes.items() if v > 0}


def hhi(volumes: Mapping[K, int] | Mapping[K, float]) -> float:
    """Herfindahl-Hirschman index on the 0..10,000 scale (shares in percent, squared, summed).

    10,000 is a monopoly; n equal participants give 10,000 / n. US agencies call a market above 1,800
    highly concentrated (2023 merger guidelines)."""
    return sum((100.0 * s) ** 2 for s in shares(volumes).values())


def cr(volumes: Mapping[K, int] | Mapping[K, float], k: int = 4) -> float:
    """Concentration ratio: the combined share (0..1) of the ``k`` largest participants."""
    return sum(sorted(shares(volumes).values(), reverse=True)[:k])


def concentration(volumes: Mapping[K, int] | Mapping[K, float]) -> dict[str, float]:
    """HHI, CR4 and the number of active participants, as one record."""
    return {"hhi": hhi(volumes), "cr4": cr(volumes, 4), "participants": float(len(shares(volumes)))}


def lerner(price: float, marginal_cost: float) -> float:
    """Lerner index (p - mc) / p. Zero under perfect competition, 1 - 1/|elasticity| for a monopolist."""
    if price <= 0:
        raise ValueError("lerner needs a positive price")
    return (price - marginal_cost) / price


def profit_gain(profit: float, nash_profit: float, monopoly_profit: float) -> float:
    """Calvano et al.'s Δ: where a profit sits between the one-shot Nash (0) and joint monopoly (1)."""
    if monopoly_profit == nash_profit:
        raise ValueError("monopoly and Nash profits coincide: profit gain undefined")
    return (profit - nash_profit) / (monopoly_profit - nash_profit)


@dataclass(frozen=True)
class RotationStats:
    """How wins spread over bidders in a sequence of auctions.

    ``longest_run`` is the longest streak of one winner; ``distinct_in_window`` the mean number of
    distinct winners in every window of ``window`` consecutive auctions (a ring rotating through k members
    shows exactly k, a competitive market with a cost leader shows fewer); ``rotation_regularity`` is the
    share of consecutive auctions whose winner differs from the previous winner *and* had not won within
    the last ``window - 1`` auctions (1.0 for a strict rotation); ``win_rates`` and ``participation`` are
    per bidder (wins per auction entered, and auctions entered per auction held)."""

    auctions: int
    longest_run: int
    distinct_in_window: float
    rotation_regularity: float
    win_rates: dict[str, float]
    participation: dict[str, float]
    window: int


def rotation_stats(
    winners: Sequence[str], bidders_per_auction: Sequence[Sequence[str]], window: int
) -> RotationStats:
    """Winner runs and rotation regularity over auctions in time order (see :class:`RotationStats`)."""
    if len(winners) != len(bidders_per_auction):
        raise ValueError("one winner per auction")
    if window < 2:
        raise ValueError("window must be at least 2")
    n = len(winners)
    longest = run = 0
    for i, w in enumerate(winners):
        run = run + 1 if i and winners[i - 1] == w else 1
        longest = max(longest, run)
    windows = [len(set(winners[i : i + window])) for i in range(max(0, n - window + 1))]
    distinct = sum(windows) / len(windows) if windows else float(len(set(winners)))
    regular = 0
    for i in range(1, n):
        recent = winners[max(0, i - window + 1) : i]
        if winners[i] not in recent:
            regular += 1
    entered: Counter[str] = Counter(b for bidders in bidders_per_auction for b in set(bidders))
    wins: Counter[str] = Counter(winners)
    return RotationStats(
        auctions=n,
        longest_run=longest,
        distinct_in_window=distinct,
        rotation_regularity=regular / (n - 1) if n > 1 else 0.0,
        win_rates={b: wins[b] / entered[b] for b in entered},
        participation={b: entered[b] / n for b in entered} if n else {},
        window=window,
    )


def cover_bid_gaps(bids_per_auction: Sequence[Mapping[str, int]]) -> list[float]:
    """Per auction (lowest bid wins), the gap between the winning and the runner-up bid relative to the
    winning bid. Cover bidding shows as gaps clustered just above zero: losers bid "just above" the
    designated winner so that the buyer sees competition; honest bids spread with their costs."""
    gaps: list[float] = []
    for bids in bids_per_auction:
        if len(bids) < 2:
            continue
        low, second = sorted(bids.values())[:2]
        if low > 0:
            gaps.append((second - low) / low)
    return gaps


@dataclass(frozen=True)
class BidIndependence:
    """Bajari-Ye conditional-independence screen for one pair of bidders.

    ``correlation`` is the Pearson correlation of the two bidders' residual bids (bid minus the cost
    the screen was given, over their common auctions); ``p_value`` comes from a permutation test of that
    correlation (the share of random re-pairings at least as correlated). Competitive bids, driven by
    independent private costs, give correlations near zero."""

    pair: tuple[str, str]
    auctions: int
    correlation: float
    p_value: float


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        # A constant residual series (e.g. a bidder who always bids the same markup over cost) carries no
        # information about dependence.
        return 0.0
    return sxy / math.sqrt(sxx * syy)


def bid_independence(
    bids_per_auction: Sequence[Mapping[str, int]],
    costs_per_auction: Sequence[Mapping[str, int]] | None = None,
    *,
    min_common: int = 6,
    permutations: int = 400,
    seed: int = 0,
) -> list[BidIndependence]:
    """Pairwise conditional-independence tests (Bajari-Ye) over auctions both bidders entered.

    Residual = bid / cost - 1 when the bidder's cost in that auction is known (the simulator knows it;
    a regulator would use a cost proxy), else bid relative to the auction's median bid. Pairs with
    fewer than ``min_common`` common auctions are skipped."""
    rng = random.Random(seed)
    residuals: dict[str, dict[int, float]] = {}
    for i, bids in enumerate(bids_per_auction):
        med = sorted(bids.values())[len(bids) // 2] if bids else 0
        costs = costs_per_auction[i] if costs_per_auction is not None else {}
        for bidder, bid in bids.items():
            base = costs.get(bidder) or med
            if base > 0:
                residuals.setdefault(bidder, {})[i] = bid / base - 1.0
    names = sorted(residuals)
    out: list[BidIndependence] = []
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            common = sorted(set(residuals[a]) & set(residuals[b]))
            if len(common) < min_common:
                continue
            xs = [residuals[a][i] for i in common]
            ys = [residuals[b][i] for i in common]
            r = _pearson(xs, ys)
            shuffled = list(ys)
            hits = 0
            for _ in range(permutations):
                rng.shuffle(shuffled)
                if abs(_pearson(xs, shuffled)) >= abs(r) - 1e-12:
                    hits += 1
            out.append(BidIndependence((a, b), len(common), r, (hits + 1) / (permutations + 1)))
    return out
