"""A small pure-Python continuous double auction (CDA) for testing trading strategies.

Not the on-chain simulator: this harness exists to measure strategies quickly and reproducibly.

Rules (Gode & Sunder 1993, Cliff 1997): each trading day every trader holds one unit. At each step a
trader still holding its unit is drawn at random and shouts its quote. A bid at or above the standing
ask (or an ask at or below the standing bid) trades at the standing quote's price; the traders leave
for the day and the book is cleared. Otherwise the shout becomes the standing quote if it improves it.
Every trader observes every shout (:class:`~agentmarket.strategies.traders.MarketEvent`). A day ends
after ``steps_per_day`` shouts or as soon as no remaining buyer values a unit at or above a remaining
seller's cost.

Metrics: allocative efficiency = realised surplus / maximum surplus (the competitive-equilibrium
surplus); Smith's alpha = root-mean-square deviation of trade prices from the equilibrium price, as a
fraction of it.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agentmarket.strategies.traders import MarketEvent, Side, Trader, ZIPBatch, ZIPTrader

__all__ = [
    "ContinuousDoubleAuction",
    "Equilibrium",
    "MarketResult",
    "Trade",
    "competitive_equilibrium",
    "max_surplus",
    "smith_alpha",
]


@dataclass(frozen=True)
class Trade:
    """A unit traded on ``day`` at ``price`` between traders ``buyer`` and ``seller`` (indices)."""

    day: int
    step: int
    price: int
    buyer: int
    seller: int
    value: int
    cost: int
    quantity: int = 1  # units traded (multi-unit orders)

    @property
    def surplus(self) -> int:
        """Gains from this trade: (buyer value minus seller cost) per unit, times the units."""
        return (self.value - self.cost) * self.quantity


@dataclass(frozen=True)
class Equilibrium:
    """Competitive equilibrium of one-unit demand and supply: quantity and the price interval."""

    quantity: int
    price_low: int
    price_high: int

    @property
    def price(self) -> int:
        """Midpoint of the equilibrium price interval (integer)."""
        return (self.price_low + self.price_high) // 2


def competitive_equilibrium(values: Sequence[int], costs: Sequence[int]) -> Equilibrium:
    """Where the demand step curve (values, high to low) crosses supply (costs, low to high)."""
    v = sorted(values, reverse=True)
    c = sorted(costs)
    q = 0
    while q < min(len(v), len(c)) and v[q] >= c[q]:
        q += 1
    if q == 0:
        low = c[0] if c else 0
        high = v[0] if v else 0
        return Equilibrium(0, min(low, high), max(low, high))
    low = max(c[q - 1], v[q] if q < len(v) else c[q - 1])
    high = min(v[q - 1], c[q] if q < len(c) else v[q - 1])
    return Equilibrium(q, min(low, high), max(low, high))


def max_surplus(values: Sequence[int], costs: Sequence[int]) -> int:
    """Largest total surplus any allocation of one-unit traders can realise."""
    v = sorted(values, reverse=True)
    c = sorted(costs)
    return sum(max(0, a - b) for a, b in zip(v, c, strict=False))


def smith_alpha(prices: Sequence[int], equilibrium_price: int) -> float:
    """RMS deviation of ``prices`` from ``equilibrium_price``, relative to it (0 = perfect)."""
    if not prices or equilibrium_price == 0:
        return math.nan
    return math.sqrt(sum((p - equilibrium_price) ** 2 for p in prices) / len(prices)) / equilibrium_price


@dataclass(frozen=True)
class MarketResult:
    """All trades of a run, with per-day helpers."""

    trades: tuple[Trade, ...]
    days: int
    equilibrium: Equilibrium
    max_surplus_per_day: int

    @property
    def realised_surplus(self) -> int:
        """Total surplus of all trades."""
        return sum(t.surplus for t in self.trades)

    @property
    def efficiency(self) -> float:
        """Allocative efficiency over the whole run, in ``[0, 1]``."""
        best = self.max_surplus_per_day * self.days
        return self.realised_surplus / best if best else 1.0

    def day_trades(self, day: int) -> tuple[Trade, ...]:
        """Trades of one day."""
        return tuple(t for t in self.trades if t.day == day)

    def day_efficiency(self, day: int) -> float:
        """Allocative efficiency of one day."""
        if not self.max_surplus_per_day:
            return 1.0
        return sum(t.surplus for t in self.day_trades(day)) / self.max_surplus_per_day

    def day_alpha(self, day: int) -> float:
        """Smith's alpha of one day's trade prices (NaN when the day had no trade)."""
        return smith_alpha([t.price for t in self.day_trades(day)], self.equilibrium.price)


class ContinuousDoubleAuction:
    """Runs trading days over a fixed population of traders (see module docstring)."""

    def __init__(self, traders: Sequence[Trader], units: Sequence[int] | None = None) -> None:
        self.traders = list(traders)
        # multi-unit orders: units each trader holds per day (every unit at its one limit); default 1
        self.units = [1] * len(self.traders) if units is None else list(units)
        if len(self.units) != len(self.traders) or min(self.units, default=1) < 1:
            raise ValueError("units: one count >= 1 per trader")
        self.buyers = [i for i, t in enumerate(self.traders) if t.side is Side.BUY]
        self.sellers = [i for i, t in enumerate(self.traders) if t.side is Side.SELL]
        if not self.buyers or not self.sellers:
            raise ValueError("a double auction needs buyers and sellers")
        values = [self.traders[i].limit for i in self.buyers for _ in range(self.units[i])]
        costs = [self.traders[i].limit for i in self.sellers for _ in range(self.units[i])]
        self.equilibrium = competitive_equilibrium(values, costs)
        self.max_surplus = max_surplus(values, costs)
        self._by_bid: list[tuple[int, int]] = []  # (limit, trader), best first: set by run_day
        self._by_ask: list[tuple[int, int]] = []

    @staticmethod
    def _best(
        heap: list[tuple[int, int, int, int]], standing: dict[int, int], sign: int
    ) -> tuple[int, int] | None:
        """Best standing (price, trader) of one side: price priority, then time; stale entries dropped."""
        while heap:
            key, _, who, price = heap[0]
            if standing.get(who) == price and key == sign * price:
                return price, who
            heapq.heappop(heap)
        return None

    def _can_trade(self, active: set[int]) -> bool:
        """Some remaining buyer's limit reaches some remaining seller's. Walks the limits sorted once per
        day (:meth:`run_day`): traders only leave during a day, so this skips the few that traded instead
        of scanning every trader after every trade."""
        bid = next((limit for limit, i in self._by_bid if i in active), None)
        ask = next((limit for limit, i in self._by_ask if i in active), None)
        return bid is not None and ask is not None and bid >= ask

    def run_day(
        self,
        day: int,
        rng: random.Random,
        steps_per_day: int,
        *,
        book: bool = False,
        halt: Callable[[Trade], bool] | None = None,
        halt_quote: Callable[[Side, int, int], bool] | None = None,
        active: set[int] | None = None,
        quiet: int | None = None,
        vectorize: bool = False,
    ) -> list[Trade]:
        """One trading day; returns its trades.

        ``book=False`` is the AURORA rule of Gode & Sunder / Cliff (the book is cleared after every trade,
        only the best bid and ask stand). ``book=True`` keeps a persistent limit order book as an exchange
        does: every trader's latest quote stands until it trades or is replaced, and a crossing shout
        trades against the best standing quote of the other side (price priority, then time).
        ``halt`` is asked after every trade (a circuit breaker): True ends continuous trading at once;
        :attr:`last_active` and :attr:`last_quotes` then hold who still holds a unit and their standing
        quotes (for a re-opening call auction). ``halt_quote(side, price, trader)`` is asked the same after every
        shout that met a standing quote of the other side without reaching it (a limit state: quotes pinned at a price band). ``active`` restricts the day to these traders.
        ``quiet``: the day also ends after this many shouts in a row without a trade (the quotes have
        stopped crossing). ``vectorize``: update the ZIP traders together (:class:`ZIPBatch`).

        Multi-unit orders (``units`` of the constructor): a shout is an order for all the units the trader
        still holds; a crossing shout trades ``min`` of its units and the standing order's at the standing
        price; with a book, the rest of the order meets the next price level in the following step (one
        level per step, at the same limit) and stands in the book once nothing crosses it. A trader
        leaves the day when its units are gone; a standing order with units left keeps its place. :attr:`last_units` holds what is left.
        """
        active = set(range(len(self.traders))) if active is None else set(active)
        left = list(self.units)  # units each trader still holds today
        self._by_bid = sorted(((self.traders[i].limit, i) for i in self.buyers), reverse=True)
        self._by_ask = sorted((self.traders[i].limit, i) for i in self.sellers)
        standing: dict[int, int] = {}  # trader -> standing quote (book=True)
        bids: list[tuple[int, int, int, int]] = []  # heaps of (sort key, time, trader, price), lazily pruned
        asks: list[tuple[int, int, int, int]] = []
        best_bid: tuple[int, int] | None = None  # (price, trader)
        best_ask: tuple[int, int] | None = None
        trades: list[Trade] = []
        learners = [i for i, t in enumerate(self.traders) if getattr(t, "learns", True)]
        batch: ZIPBatch | None = None
        zips = [t for i in learners if isinstance(t := self.traders[i], ZIPTrader)]
        if vectorize and zips and len(zips) == len(learners):
            batch = ZIPBatch(zips, rng)
            for i in learners:
                if i not in active:
                    batch.leave(self.traders[i])  # type: ignore[arg-type]
        can_trade = self._can_trade(active)
        order = sorted(active)
        self.halted = False
        last_trade = 0
        sweep: tuple[int, int] | None = None  # (trader, limit price) of a multi-unit order still crossing
        for step in range(steps_per_day):
            if not can_trade or (quiet is not None and step - last_trade > quiet):
                break
            if sweep is not None:  # the rest of a marketable multi-unit order takes the next level
                (who, price), sweep = sweep, None
                trader = self.traders[who]
            else:
                who = rng.choice(order)
                trader = self.traders[who]
                zip_ = batch is not None and isinstance(trader, ZIPTrader)
                price = batch.price(trader) if zip_ else trader.quote(rng)  # type: ignore[union-attr,arg-type]
            shout = price
            deal = False
            blocked = False  # the shout met a standing quote of the other side and did not reach it
            if book:
                standing.pop(who, None)
                if trader.side is Side.BUY:
                    best = self._best(asks, standing, 1)
                    if best is not None and price >= best[0]:
                        deal, price, buyer, seller = True, best[0], who, best[1]
                else:
                    best = self._best(bids, standing, -1)
                    if best is not None and price <= best[0]:
                        deal, price, buyer, seller = True, best[0], best[1], who
                blocked = best is not None and not deal
                if not deal:
                    standing[who] = price
                    heapq.heappush(
                        bids if trader.side is Side.BUY else asks,
                        (price if trader.side is Side.SELL else -price, step, who, price),
                    )
            elif trader.side is Side.BUY:
                blocked = best_ask is not None and price < best_ask[0]
                if best_ask is not None and price >= best_ask[0]:
                    deal, price = True, best_ask[0]
                    buyer, seller = who, best_ask[1]
                elif best_bid is None or price > best_bid[0]:
                    best_bid = (price, who)
            else:
                blocked = best_bid is not None and price > best_bid[0]
                if best_bid is not None and price <= best_bid[0]:
                    deal, price = True, best_bid[0]
                    buyer, seller = best_bid[1], who
                elif best_ask is None or price < best_ask[0]:
                    best_ask = (price, who)
            trade: Trade | None = None
            gone: list[int] = []
            if deal:
                q = min(left[buyer], left[seller])
                trade = Trade(
                    day, step, price, buyer, seller, self.traders[buyer].limit, self.traders[seller].limit, q
                )
                trades.append(trade)
                last_trade = step
                left[buyer] -= q
                left[seller] -= q
                gone = [i for i in (buyer, seller) if not left[i]]
                if book and left[who]:
                    sweep = (who, shout)  # next step: the order's rest, at its limit, meets the next level
                active -= set(gone)
                for i in gone:
                    standing.pop(i, None)
                best_bid = best_ask = None
                can_trade = self._can_trade(active)
                order = sorted(active)
            if batch is not None and deal:
                for i in gone:
                    if isinstance(t := self.traders[i], ZIPTrader):
                        batch.leave(t)
            event = MarketEvent(trader.side, price, deal)
            if batch is not None:
                batch.observe(event)
            else:
                for i in learners:
                    self.traders[i].observe(event, i in active, rng)
            if (trade is not None and halt is not None and halt(trade)) or (
                blocked and halt_quote is not None and halt_quote(trader.side, price, who)
            ):
                self.halted = True
                break
        if batch is not None:
            batch.write_back()
        self.last_active = active
        self.last_units = {i: left[i] for i in active}
        self.last_quotes = {i: q for i, q in standing.items() if i in active}
        return trades

    def run(self, days: int, rng: random.Random, steps_per_day: int = 500) -> MarketResult:
        """Run ``days`` trading days and collect every trade."""
        trades: list[Trade] = []
        for day in range(days):
            trades.extend(self.run_day(day, rng, steps_per_day))
        return MarketResult(tuple(trades), days, self.equilibrium, self.max_surplus)
