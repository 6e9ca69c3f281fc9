"""Bidding strategies for the auction formats the contracts implement.

Every strategy implements :class:`Bidder`: given an :class:`AuctionView` (what a bidder can observe on
chain) and an ``rng`` it returns a :class:`BidAction` or ``None`` (pass). A simulator can therefore drive
all of them the same way. Amounts are integers in the asset's smallest unit.

* :class:`EnglishBidder` -- ascending: bid the minimum acceptable amount while it stays within value.
* :class:`DutchBidder` -- descending: take when the price has fallen to the shaded value.
* :class:`FirstPriceBidder` -- sealed first-price: the symmetric risk-neutral equilibrium under
  independent private values uniform on ``[0, V]``, ``b(v) = v - (v^n - r^n) / (n v^(n-1))``, i.e.
  ``(n-1)/n * v`` without reserve.
* :class:`VickreyBidder` -- sealed second-price: bid the true value (dominant strategy).
* :class:`ProcurementBidder` -- reverse auction for a provider: pick the delivery time on its cost
  curve that minimises ``cost + time_value * delivery`` (the buyer's score), ask cost plus margin.
"""

from __future__ import annotations

import enum
import itertools
import random
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "AuctionKind",
    "AuctionView",
    "BidAction",
    "Bidder",
    "CostCurve",
    "DutchBidder",
    "EnglishBidder",
    "FirstPriceBidder",
    "ProcurementBidder",
    "VickreyBidder",
    "first_price_equilibrium_bid",
    "min_next_bid",
]

BPS = 10_000


class AuctionKind(str, enum.Enum):
    """Auction formats (mirrors the on-chain auction kinds)."""

    ENGLISH = "english"
    DUTCH = "dutch"
    SEALED_FIRST_PRICE = "sealed"
    VICKREY = "vickrey"
    PROCUREMENT = "procurement"


@dataclass(frozen=True)
class AuctionView:
    """What a bidder observes about an auction at time ``now`` (unix seconds).

    ``current_price`` is the highest bid so far (English; 0 when none), the current asking price
    (Dutch) or the lowest ask so far (procurement; 0 when none); sealed formats ignore it.
    ``reserve`` is the minimum price (forward auctions) or the maximum the buyer pays (procurement).
    """

    kind: AuctionKind
    reserve: int
    current_price: int = 0
    increment_bps: int = 100
    n_bidders: int = 2
    now: int = 0
    deadline: int = 0
    leading: bool = False
    time_value_per_second: int = 0
    max_delivery_seconds: int | None = None


@dataclass(frozen=True)
class BidAction:
    """A bid (or Dutch take, or procurement ask); ``delivery_seconds`` only for procurement."""

    amount: int
    delivery_seconds: int | None = None


@runtime_checkable
class Bidder(Protocol):
    """A bidding strategy: decide on a bid given the view, or pass with ``None``."""

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """The bid to place now, or ``None``."""
        ...


def min_next_bid(view: AuctionView) -> int:
    """Smallest acceptable English bid: the reserve, else highest bid plus the increment (at least 1)."""
    if view.current_price <= 0:
        return view.reserve
    step = max(1, -(-view.current_price * view.increment_bps // BPS))
    return max(view.reserve, view.current_price + step)


def first_price_equilibrium_bid(value: int, n_bidders: int, reserve: int = 0) -> int:
    """Symmetric equilibrium first-price bid under uniform private values (floor, in integer maths).

    ``b(v) = ((n-1) v^n + r^n) / (n v^(n-1))``; equals ``(n-1)/n * v`` when ``r = 0`` and ``r`` at ``v = r``.
    Returns 0 when ``value < reserve``.
    """
    n = max(1, n_bidders)
    if value <= 0 or value < reserve:
        return 0
    bid: int = ((n - 1) * pow(value, n) + pow(reserve, n)) // (n * pow(value, n - 1))
    return max(reserve, bid)


@dataclass(frozen=True)
class EnglishBidder:
    """Bid the minimum next bid while it is at most ``value``; never outbid itself."""

    value: int

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """Minimum next bid, or ``None`` when leading or priced out."""
        if view.leading:
            return None
        amount = min_next_bid(view)
        return BidAction(amount) if amount <= self.value else None


@dataclass(frozen=True)
class DutchBidder:
    """Take the falling price once it is at most the shaded value ``(n-1)/n * value`` (first-price rule)."""

    value: int

    def shaded_value(self, n_bidders: int, reserve: int = 0) -> int:
        """The price at which this bidder takes."""
        return first_price_equilibrium_bid(self.value, n_bidders, reserve)

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """Take at ``current_price`` when it is at most the shaded value."""
        limit = self.shaded_value(view.n_bidders, view.reserve)
        if limit > 0 and view.reserve <= view.current_price <= limit:
            return BidAction(view.current_price)
        return None


@dataclass(frozen=True)
class FirstPriceBidder:
    """Sealed first-price: equilibrium shading under uniform private values."""

    value: int

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """The shaded sealed bid, or ``None`` when the value is below the reserve."""
        amount = first_price_equilibrium_bid(self.value, view.n_bidders, view.reserve)
        return BidAction(amount) if amount > 0 else None


@dataclass(frozen=True)
class VickreyBidder:
    """Sealed second-price: bid the true value (weakly dominant)."""

    value: int

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """``value``, or ``None`` when below the reserve."""
        return BidAction(self.value) if self.value >= view.reserve and self.value > 0 else None


@dataclass(frozen=True)
class CostCurve:
    """A provider's cost of delivering within ``delivery_seconds``: piecewise linear through ``points``.

    ``points`` are ``(delivery_seconds, cost)`` pairs; faster delivery usually costs more. Outside the
    first/last point the cost is flat at the end values, and deliveries faster than the first point are
    impossible.
    """

    points: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("CostCurve needs at least one point")
        ordered = tuple(sorted(self.points))
        if len({d for d, _ in ordered}) != len(ordered) or any(c < 0 or d < 0 for d, c in ordered):
            raise ValueError("CostCurve points need distinct non-negative delivery times and costs")
        object.__setattr__(self, "points", ordered)

    @property
    def fastest(self) -> int:
        """Fastest feasible delivery in seconds."""
        return self.points[0][0]

    def cost(self, delivery_seconds: int) -> int:
        """Cost (rounded up) of delivering within ``delivery_seconds``."""
        if delivery_seconds < self.fastest:
            raise ValueError("delivery faster than the cost curve allows")
        for (d0, c0), (d1, c1) in itertools.pairwise(self.points):
            if delivery_seconds <= d1:
                return c0 + -(-(c1 - c0) * (delivery_seconds - d0) // (d1 - d0))
        return self.points[-1][1]


@dataclass(frozen=True)
class ProcurementBidder:
    """A provider in a reverse auction: ask ``cost * (1 + margin_bps / 10^4)`` at its best delivery time.

    The delivery time minimises ``cost(d) + time_value_per_second * d`` over the curve's breakpoints
    (the optimum of a piecewise-linear score lies on one), within ``max_delivery_seconds``. The ask
    undercuts the lowest standing ask by the increment when that still covers ``cost + min_margin_bps``;
    otherwise it passes.
    """

    costs: CostCurve
    margin_bps: int = 1_000
    min_margin_bps: int = 0

    def best_delivery(self, view: AuctionView) -> int | None:
        """Delivery time with the lowest buyer score at cost, or ``None`` when none is allowed."""
        options = [d for d, _ in self.costs.points]
        if view.max_delivery_seconds is not None:
            options = [d for d in options if d <= view.max_delivery_seconds]
        if not options:
            return None
        return min(options, key=lambda d: (self.costs.cost(d) + view.time_value_per_second * d, d))

    def bid(self, view: AuctionView, rng: random.Random) -> BidAction | None:
        """Cost-plus ask at the best delivery time, or ``None`` when it cannot win profitably."""
        delivery = self.best_delivery(view)
        if delivery is None:
            return None
        cost = self.costs.cost(delivery)
        ask = cost + -(-cost * self.margin_bps // BPS)
        floor = cost + -(-cost * self.min_margin_bps // BPS)
        if view.current_price > 0 and not view.leading:
            step = max(1, -(-view.current_price * view.increment_bps // BPS))
            ask = min(ask, view.current_price - step)
        elif view.leading:
            return None
        if ask < floor or ask > view.reserve:
            return None
        return BidAction(ask, delivery)
