"""Continuous-double-auction traders: ZI-C (baseline) and ZIP (adaptive).

* :class:`ZICTrader` -- zero-intelligence constrained (Gode & Sunder 1993): shouts uniformly at random
  but never at a loss (a buyer bids in ``[price_min, value]``, a seller asks in ``[cost, price_max]``).
* :class:`ZIPTrader` -- zero-intelligence plus (Cliff 1997): keeps a profit margin ``mu`` on its limit
  price (``p = limit * (1 + mu)``; ``mu >= 0`` for sellers, ``-1 <= mu <= 0`` for buyers) and after every
  shout in the market moves its price towards a perturbed target with the Widrow-Hoff rule plus
  momentum::

      delta = beta * (tau - p);   G = gamma * G + (1 - gamma) * delta;   mu = (p + G) / limit - 1

  Sellers raise the margin when a deal happens at a price at or above theirs, and lower it (while
  still holding a unit) when a bid at or below their price was accepted or an ask at or below theirs was
  rejected; buyers mirror that.

Each trader holds one unit per trading day. Prices are integers; the margin and learning state are floats.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MarketEvent", "Side", "Trader", "ZICTrader", "ZIPBatch", "ZIPTrader"]


class Side(str, enum.Enum):
    """Side of a shout."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class MarketEvent:
    """A shout as every trader sees it: side, price and whether it produced a deal."""

    side: Side
    price: int
    deal: bool


class Trader(Protocol):
    """A CDA trader with one private limit price (value for buyers, cost for sellers)."""

    @property
    def side(self) -> Side:
        """Buy or sell."""
        ...

    @property
    def limit(self) -> int:
        """Private value (buyer) or cost (seller)."""
        ...

    def quote(self, rng: random.Random) -> int:
        """Price of this trader's next shout; never beyond its limit."""
        ...

    def observe(self, event: MarketEvent, active: bool, rng: random.Random) -> None:
        """Learn from a shout; ``active`` is whether this trader still holds its unit today."""
        ...


@dataclass(frozen=True)
class ZICTrader:
    """Gode-Sunder budget-constrained random trader."""

    side: Side
    limit: int
    price_min: int
    price_max: int
    learns = False  # observe() is a no-op: the auction skips it (O(traders) per shout otherwise)

    def __post_init__(self) -> None:
        if not self.price_min <= self.limit <= self.price_max:
            raise ValueError("ZICTrader needs price_min <= limit <= price_max")

    def quote(self, rng: random.Random) -> int:
        """Uniform in ``[price_min, value]`` (buyer) or ``[cost, price_max]`` (seller)."""
        if self.side is Side.BUY:
            return rng.randint(self.price_min, self.limit)
        return rng.randint(self.limit, self.price_max)

    def observe(self, event: MarketEvent, active: bool, rng: random.Random) -> None:
        """ZI-C does not learn."""


class ZIPTrader:
    """Cliff's ZIP trader (see module docstring).

    ``beta`` (learning rate), ``gamma`` (momentum) and the initial margin are drawn from ``rng`` in the
    ranges Cliff used unless given. ``relative_jitter`` bounds the relative target perturbation ``R``
    and ``absolute_jitter`` the absolute one ``A`` (as a fraction of the limit price).
    """

    learns = True  # the auction feeds it every shout

    def __init__(
        self,
        side: Side,
        limit: int,
        rng: random.Random,
        *,
        beta: float | None = None,
        gamma: float | None = None,
        margin: float | None = None,
        relative_jitter: float = 0.05,
        absolute_jitter: float = 0.02,
    ) -> None:
        if limit <= 0:
            raise ValueError("ZIPTrader needs a positive limit price")
        self.side = side
        self.limit = limit
        self.beta = beta if beta is not None else rng.uniform(0.1, 0.5)
        self.gamma = gamma if gamma is not None else rng.uniform(0.0, 0.1)
        if margin is None:
            m = rng.uniform(0.05, 0.35)
            margin = m if side is Side.SELL else -m
        self.margin = self._clamp(margin)
        self.relative_jitter = relative_jitter
        self.absolute_jitter = absolute_jitter
        self._momentum = 0.0

    def _clamp(self, margin: float) -> float:
        return max(0.0, margin) if self.side is Side.SELL else min(0.0, max(-1.0, margin))

    @property
    def price(self) -> int:
        """Current shout price, rounded inside the limit."""
        exact = self.limit * (1.0 + self.margin)
        if self.side is Side.SELL:
            return max(self.limit, math.ceil(exact))
        return max(0, min(self.limit, math.floor(exact)))

    def quote(self, rng: random.Random) -> int:
        """The current price ``limit * (1 + margin)``."""
        return self.price

    def _move_towards(self, q: int, up: bool, rng: random.Random) -> None:
        if up:
            r = rng.uniform(1.0, 1.0 + self.relative_jitter)
            a = rng.uniform(0.0, self.absolute_jitter * self.limit)
        else:
            r = rng.uniform(1.0 - self.relative_jitter, 1.0)
            a = rng.uniform(-self.absolute_jitter * self.limit, 0.0)
        target = r * q + a
        p = self.limit * (1.0 + self.margin)
        delta = self.beta * (target - p)
        self._momentum = self.gamma * self._momentum + (1.0 - self.gamma) * delta
        self.margin = self._clamp((p + self._momentum) / self.limit - 1.0)

    def observe(self, event: MarketEvent, active: bool, rng: random.Random) -> None:
        """Cliff's update rules."""
        p, q = self.limit * (1.0 + self.margin), event.price
        if self.side is Side.SELL:
            if event.deal:
                if p <= q:
                    self._move_towards(q, up=True, rng=rng)
                elif active and event.side is Side.BUY:
                    self._move_towards(q, up=False, rng=rng)
            elif active and event.side is Side.SELL and p >= q:
                self._move_towards(q, up=False, rng=rng)
        else:
            if event.deal:
                if p >= q:
                    self._move_towards(q, up=False, rng=rng)
                elif active and event.side is Side.SELL:
                    self._move_towards(q, up=True, rng=rng)
            elif active and event.side is Side.BUY and p <= q:
                self._move_towards(q, up=True, rng=rng)


class _Side:
    """One side's ZIP state as arrays (sellers or buyers)."""

    def __init__(self, traders: list[ZIPTrader], np: Any) -> None:
        self.traders = traders
        self.limit = np.array([float(t.limit) for t in traders])
        self.margin = np.array([t.margin for t in traders])
        self.beta = np.array([t.beta for t in traders])
        self.gamma = np.array([t.gamma for t in traders])
        self.momentum = np.array([t._momentum for t in traders])
        self.rel = np.array([t.relative_jitter for t in traders])
        self.abs = np.array([t.absolute_jitter for t in traders]) * self.limit
        self.active = np.ones(len(traders), dtype=bool)
        self.step = (1.0 - self.gamma) * self.beta  # momentum's share of each move
        self.pool: Any = np.empty((0, 2, len(traders)))  # uniform draws generated ahead (ZIPBatch._draws)
        self.drawn = 0


class ZIPBatch:
    """Many :class:`ZIPTrader` s updated together with NumPy: the same rules as :meth:`ZIPTrader.observe`
    (Cliff 1997), a few vector operations per shout instead of one Python call per trader, so a market
    of hundreds of learners stays cheap. Jitter comes from a NumPy generator seeded from ``rng`` (the
    draws differ from the scalar path's, the distribution is the same). :meth:`write_back` stores the
    margins and momenta in the traders again."""

    def __init__(self, traders: list[ZIPTrader], rng: random.Random) -> None:
        import numpy as np

        self.np = np
        self.sellers = _Side([t for t in traders if t.side is Side.SELL], np)
        self.buyers = _Side([t for t in traders if t.side is Side.BUY], np)
        self.slot: dict[int, tuple[_Side, int]] = {}
        for group in (self.sellers, self.buyers):
            for k, t in enumerate(group.traders):
                self.slot[id(t)] = (group, k)
        self.gen = np.random.default_rng(rng.getrandbits(64))

    def price(self, trader: ZIPTrader) -> int:
        """The trader's current shout price (as :attr:`ZIPTrader.price`)."""
        group, k = self.slot[id(trader)]
        limit, exact = int(group.limit[k]), float(group.limit[k] * (1.0 + group.margin[k]))
        if group is self.sellers:
            return max(limit, math.ceil(exact))
        return max(0, min(limit, math.floor(exact)))

    def leave(self, trader: ZIPTrader) -> None:
        """The trader traded: it no longer holds a unit today."""
        group, k = self.slot[id(trader)]
        group.active[k] = False

    def observe(self, event: MarketEvent) -> None:
        """Apply one shout to every trader in the batch (Cliff's rules, as in :meth:`ZIPTrader.observe`)."""
        q = float(event.price)
        shout_sell = event.side is Side.SELL
        s, b = self.sellers, self.buyers
        if event.deal:
            ps = s.limit * (1.0 + s.margin)
            up = ps <= q
            down = ~up & s.active if not shout_sell else None
            self._move(s, ps, up, down, q, sell=True)
            pb = b.limit * (1.0 + b.margin)
            down = pb >= q
            up = ~down & b.active if shout_sell else None
            self._move(b, pb, up, down, q, sell=False)
        elif shout_sell:
            ps = s.limit * (1.0 + s.margin)
            self._move(s, ps, None, s.active & (ps >= q), q, sell=True)
        else:
            pb = b.limit * (1.0 + b.margin)
            self._move(b, pb, b.active & (pb <= q), None, q, sell=False)

    def _move(self, g: _Side, p: Any, up: Any, down: Any, q: float, *, sell: bool) -> None:
        # Whole-array arithmetic, written back under the mask: with a few hundred traders a side, a
        # dozen operations on full arrays cost less than gathering and scattering the moving subset.
        np = self.np
        if up is None and down is None:
            return
        if down is None:
            mask, sign = up, 1.0
        elif up is None:
            mask, sign = down, -1.0
        else:
            mask, sign = up | down, np.where(up, 1.0, -1.0)
        if not mask.any():
            return
        r1, r2 = self._draws(g)
        target = (1.0 + sign * (g.rel * r1)) * q + sign * (g.abs * r2)
        mom = g.gamma * g.momentum + g.step * (target - p)
        m = (p + mom) / g.limit - 1.0
        m = np.maximum(0.0, m) if sell else np.clip(m, -1.0, 0.0)
        np.copyto(g.momentum, mom, where=mask)
        np.copyto(g.margin, m, where=mask)

    def _draws(self, g: _Side) -> tuple[Any, Any]:
        """Two uniform draws per trader of ``g``, taken from a block generated ahead (one generator call
        per 256 moves instead of two per move)."""
        if g.drawn >= len(g.pool):
            g.pool = self.gen.random((256, 2, g.limit.size))
            g.drawn = 0
        block = g.pool[g.drawn]
        g.drawn += 1
        return block[0], block[1]

    def write_back(self) -> None:
        for g in (self.sellers, self.buyers):
            for k, t in enumerate(g.traders):
                t.margin = float(g.margin[k])
                t._momentum = float(g.momentum[k])
