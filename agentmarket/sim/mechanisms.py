"""Price discovery for the simulated compute market: who trades with whom, at what price.

Every mechanism is pure Python over the traders' private limits and strategy state and returns
:class:`Match` es; the simulator then locks and settles each match on chain. Each trader holds one
GPU-hour per round: a provider sells at most one, a buyer buys at most one.

Strategies are split into ``adaptive`` (learns from its own outcomes) and ``fixed`` (a textbook bot):

==============  =============================================  ==============================================
mechanism       fixed                                          adaptive
==============  =============================================  ==============================================
negotiated      Boulware / linear / Conceder tactic             UCB1 bandit over concession exponents
offers          ZI-C posting random quotes within its limit     ZIP margin learner (Cliff 1997)
english         bid the minimum increment up to value           UCB1 over the bid limit (fraction of value)
dutch           take at the (n-1)/n shaded value                UCB1 over the take fraction
sealed          first-price equilibrium shading (n-1)/n         UCB1 over the shading fraction
vickrey         bid the true value                              UCB1 over the shading fraction
procurement     provider asks cost + 10% (floor)                UCB1 over the provider's margin floor
==============  =============================================  ==============================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..strategies import (
    UCB1,
    AdaptiveBargainer,
    AuctionKind,
    AuctionView,
    ContinuousDoubleAuction,
    CostCurve,
    DutchBidder,
    EnglishBidder,
    FirstPriceBidder,
    IssueRange,
    Negotiator,
    Preferences,
    ProcurementBidder,
    Role,
    Side,
    VickreyBidder,
    Weights,
    ZICTrader,
    ZIPTrader,
    boulware,
    conceder,
    linear,
    negotiate,
)

MECHANISMS = ("negotiated", "offers", "call", "english", "dutch", "sealed", "vickrey", "procurement")
ORDERS = ("efficient", "random")
HOUR = 3600
SHADES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MARGINS_BPS = (0, 500, 1_000, 2_000, 3_500, 5_000)


@dataclass
class Trader:
    """One simulated agent: role, private limit (value or cost), strategy label and learning state."""

    index: int
    role: Role
    limit: int
    strategy: str  # "adaptive" | "fixed"
    state: dict[str, object] = field(default_factory=dict)
    cap: int | None = None  # guardrail: a buyer never quotes above this (its mandate's band ceiling)
    units: int = 1  # GPU-hours it wants (buyer) or offers (provider) now: one multi-unit order (offers, call)

    @property
    def is_buyer(self) -> bool:
        return self.role is Role.BUYER

    @property
    def quote_limit(self) -> int:
        """The most a buyer quotes (its value, capped by its band) or the least a seller asks (its cost).

        Guardrails act here, before matching: a capped buyer bids at most the cap, so no match is found
        and then refused (which removed both sides of a trade).
        """
        if self.is_buyer and self.cap is not None:
            return min(self.limit, self.cap)
        return self.limit


@dataclass(frozen=True)
class Match:
    """A trade found by a mechanism: buyer and seller (trader indices), price and terms."""

    buyer: int
    seller: int
    price: int
    delivery_seconds: int = HOUR
    bond: int = 0
    reference: str = ""  # e.g. the auction or quote the price came from
    quantity: int = 1  # units traded at ``price`` each (multi-unit orders)


Learn = Callable[[Trader, float], None]


def _bandit(trader: Trader, n_arms: int) -> UCB1:
    bandit = trader.state.get("bandit")
    if bandit is None:
        bandit = UCB1(n_arms, c=0.3)
        trader.state["bandit"] = bandit
    assert isinstance(bandit, UCB1)
    return bandit


class Mechanism:
    """Base: ``clear(buyers, sellers, rng)`` returns the round's matches; ``learn`` feeds outcomes back."""

    name = ""
    strategic_roles: tuple[str, ...] = ("buyer", "provider")  # roles whose strategy label changes behaviour

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        raise NotImplementedError

    def outcome(self, trader: Trader, surplus: int, traded: bool) -> None:
        """Tell a trader what it earned this round (surplus in wei, 0 when it did not trade)."""
        choice = trader.state.pop("arm", None)
        if choice is None:
            return
        bandit = _bandit(trader, 1)
        bandit.update(int(choice), max(0.0, min(1.0, surplus / max(1, trader.limit))))  # type: ignore[call-overload]


# -- bilateral negotiation --------------------------------------------------------------------------------


class Negotiated(Mechanism):
    """Random pairs bargain over price, delivery time and bond (alternating offers)."""

    name = "negotiated"
    FIXED_TACTICS = (boulware(0.2), linear(), conceder(3.0))

    def __init__(self, reference_price: int, max_rounds: int = 12):
        self.ref = reference_price
        self.max_rounds = max_rounds

    def preferences(self, trader: Trader) -> Preferences:
        ref, lim = self.ref, trader.limit
        if trader.is_buyer:
            return Preferences(
                IssueRange(worst=lim, best=lim // 2),
                IssueRange(worst=12 * HOUR, best=HOUR),
                IssueRange(worst=0, best=ref // 2),
                Weights(0.7, 0.2, 0.1),
            )
        return Preferences(
            IssueRange(worst=lim, best=lim * 8 // 5),
            IssueRange(worst=HOUR, best=12 * HOUR),
            IssueRange(worst=ref // 2, best=0),
            Weights(0.7, 0.2, 0.1),
        )

    def negotiator(self, trader: Trader, rng: random.Random) -> Negotiator:
        prefs = self.preferences(trader)
        if trader.strategy == "adaptive":
            learner = trader.state.get("bargainer")
            if learner is None:
                learner = AdaptiveBargainer(trader.role)
                trader.state["bargainer"] = learner
            assert isinstance(learner, AdaptiveBargainer)
            choice = learner.choose(rng)
            trader.state["choice"] = choice
            return learner.negotiator(prefs, choice, name=f"adaptive-{trader.index}")
        tactic = self.FIXED_TACTICS[trader.index % len(self.FIXED_TACTICS)]
        return Negotiator(trader.role, prefs, tactic, name=f"fixed-{trader.index}")

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        b, s = list(buyers), list(sellers)
        rng.shuffle(b)
        rng.shuffle(s)
        matches = []
        for buyer, seller in zip(b, s, strict=False):
            result = negotiate(
                self.negotiator(buyer, rng),
                self.negotiator(seller, rng),
                self.max_rounds,
                rng,
                opener=Role.BUYER if rng.random() < 0.5 else Role.SELLER,
            )
            for t in (buyer, seller):
                choice = t.state.pop("choice", None)
                if choice is not None:
                    learner = t.state["bargainer"]
                    assert isinstance(learner, AdaptiveBargainer)
                    learner.learn(choice, result.utility_for(self.preferences(t)))  # type: ignore[arg-type]
            if result.agreement is not None:
                a = result.agreement
                matches.append(
                    Match(
                        buyer.index,
                        seller.index,
                        a.price,
                        a.delivery_seconds,
                        a.bond,
                        f"negotiated in {a.round + 1} moves",
                    )
                )
        return matches


# -- continuous double auction (posted offers) --------------------------------------------------------------


class Offers(Mechanism):
    """A continuous double auction with a persistent limit order book: standing quotes (signed offers)
    are filled by crossing shouts of the other side.

    The day runs until quotes stop crossing: no remaining buyer's quote limit reaches a remaining
    seller's cost, or max(``quiet_min``, ``quiet`` x traders) shouts in a row passed without a trade; at most
    ``steps_per_agent`` shouts per trader. Its length scales with the market instead of a fixed count.
    """

    name = "offers"

    def __init__(
        self, steps_per_agent: int = 200, *, book: bool = True, quiet: int | None = 10, quiet_min: int = 2_000
    ):
        self.steps_per_agent = steps_per_agent
        self.quiet = quiet
        self.quiet_min = quiet_min
        self.book = book
        self.halt: Callable[[int], bool] | None = None  # circuit breaker on trade prices (set by the runner)
        self.halt_quote: Callable[[bool, int, int], bool] | None = None  # ... on quotes (is_bid, price, who)
        self.halted = False  # the breaker stopped continuous trading in the last clear()
        self.reopen: Mechanism | None = None  # the call auction that re-opens a halted market
        self.reopen_price: int | None = None  # its uniform price (the band's new reference)

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        everyone = [*buyers, *sellers]
        lo = min(t.quote_limit for t in everyone) // 2
        hi = max(t.quote_limit for t in everyone) * 3 // 2
        bots: list[ZICTrader | ZIPTrader] = []
        for t in everyone:
            side = Side.BUY if t.is_buyer else Side.SELL
            if t.strategy == "adaptive":
                zip_trader = t.state.get("zip")
                if zip_trader is None:
                    zip_trader = ZIPTrader(side, t.quote_limit, rng)
                    t.state["zip"] = zip_trader
                assert isinstance(zip_trader, ZIPTrader)
                zip_trader.limit = t.quote_limit  # values move with demand shocks; a cap bounds the quote
                bots.append(zip_trader)
            elif t.quote_limit < t.limit:
                # the band binds (value above the cap): willing to pay more than allowed, it bids the cap
                bots.append(ZICTrader(side, t.quote_limit, t.quote_limit, hi))
            else:
                bots.append(ZICTrader(side, t.quote_limit, lo, hi))
        cda = ContinuousDoubleAuction(bots, [t.units for t in everyone])
        halt = self.halt
        trades = cda.run_day(
            0,
            rng,
            self.steps_per_agent * len(everyone),
            book=self.book,
            quiet=max(self.quiet_min, self.quiet * len(everyone)) if self.quiet is not None else None,
            vectorize=len(everyone) >= 100,  # NumPy pays off from about 50 learners
            halt=(lambda tr: halt(tr.price)) if halt is not None else None,
            halt_quote=(lambda side, p, who: hq(side is Side.BUY, p, everyone[who].index))
            if (hq := self.halt_quote) is not None
            else None,
        )
        matches = [
            Match(
                everyone[tr.buyer].index,
                everyone[tr.seller].index,
                tr.price,
                reference=f"step {tr.step}",
                quantity=tr.quantity,
            )
            for tr in trades
        ]
        self.halted = cda.halted
        self.reopen_price = None
        if cda.halted and self.reopen is not None:
            # volatility interruption (limit-up/limit-down): continuous trading stops and the rest of the
            # round re-opens as one call auction. As on an exchange, the re-opening auction discovers the
            # price outside the old band (caps lifted for it); the band is then re-centred on that price.
            rest = cda.last_units  # who still holds units, and how many
            waiting = [t for i, t in enumerate(everyone) if i in rest]
            saved = {t.index: (t.cap, t.units) for t in waiting}
            for i, t in enumerate(everyone):
                if i in rest:
                    t.cap, t.units = None, rest[i]
            try:
                reopened = self.reopen.clear(
                    [t for t in waiting if t.is_buyer], [t for t in waiting if not t.is_buyer], rng
                )
            finally:
                for t in waiting:
                    t.cap, t.units = saved[t.index]
            if reopened:
                self.reopen_price = reopened[0].price
            matches += reopened
        return matches

    def outcome(self, trader: Trader, surplus: int, traded: bool) -> None:
        """ZIP learns inside the auction from every shout; nothing to add."""


# -- forward auctions: each provider auctions its GPU-hour, buyers bid ----------------------------------------


def auction_order(
    owners: Sequence[Trader], order: str, rng: random.Random, *, ascending: bool
) -> list[Trader]:
    """The order in which sequential single-unit auctions run: ``efficient`` sorts the owners by their
    limit (cheapest reserve first for forward auctions, highest budget first for procurement), so the
    first units go to the traders the competitive allocation would pick; ``random`` shuffles them."""
    if order not in ORDERS:
        raise ValueError(f"unknown auction order {order!r} (choose from {', '.join(ORDERS)})")
    out = list(owners)
    if order == "random":
        rng.shuffle(out)
    else:
        out.sort(key=lambda t: (t.limit if ascending else -t.limit, t.index))
    return out


class ForwardAuction(Mechanism):
    """Sequential single-unit auctions, one per provider (reserve = its cost); cheapest reserve first
    (``order="efficient"``, the default) or in random order (``order="random"``)."""

    strategic_roles = ("buyer",)  # providers only set their cost as the reserve

    def __init__(
        self, kind: AuctionKind, increment_bps: int = 500, dutch_steps: int = 60, order: str = "efficient"
    ):
        self.order = order
        self.kind = kind
        self.name = kind.value
        self.increment_bps = increment_bps
        self.dutch_steps = dutch_steps

    def _limit(self, buyer: Trader, rng: random.Random) -> int:
        """The buyer's bidding limit this auction: its value (fixed) or value x learned fraction (adaptive)."""
        if buyer.strategy != "adaptive":
            return buyer.quote_limit
        if "arm" not in buyer.state:
            buyer.state["arm"] = _bandit(buyer, len(SHADES)).select(rng)
        return int(buyer.quote_limit * SHADES[int(buyer.state["arm"])])  # type: ignore[call-overload]

    # -- the bidding policies the on-chain auction house asks for (see agentmarket.sim.onchain) ----------

    def bid_limit(self, buyer: Trader, rng: random.Random) -> int:
        """English: the most this buyer bids (its value, or value x learned fraction when adaptive)."""
        return self._limit(buyer, rng)

    def take_price(self, buyer: Trader, reserve: int, n: int, rng: random.Random) -> int:
        """Dutch: the falling price at which this buyer takes (0: never)."""
        if buyer.strategy == "adaptive":
            return self._limit(buyer, rng)
        return DutchBidder(buyer.quote_limit).shaded_value(n, reserve)

    def sealed_bid(self, buyer: Trader, reserve: int, n: int, rng: random.Random) -> int | None:
        """Sealed first-price / Vickrey: the amount this buyer commits to (None: no bid)."""
        if buyer.strategy == "adaptive":
            amount: int | None = self._limit(buyer, rng)
        else:
            bidder = (
                VickreyBidder(buyer.quote_limit)
                if self.kind is AuctionKind.VICKREY
                else FirstPriceBidder(buyer.quote_limit)
            )
            action = bidder.bid(self._view(reserve, 0, n), rng)
            amount = action.amount if action is not None else None
        return amount if amount is not None and amount >= reserve else None

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        remaining = list(buyers)
        matches: list[Match] = []
        for seller in auction_order(sellers, self.order, rng, ascending=True):
            if not remaining:
                break
            result = getattr(self, f"_{self.kind.name.lower()}")(seller, remaining, rng)
            if result is not None:
                winner, price = result
                remaining = [b for b in remaining if b.index != winner.index]
                matches.append(Match(winner.index, seller.index, price, reference=f"{self.name} auction"))
        return matches

    def _view(self, reserve: int, price: int, n: int, leading: bool = False) -> AuctionView:
        return AuctionView(self.kind, reserve, price, self.increment_bps, n, leading=leading)

    def _english(self, seller: Trader, buyers: list[Trader], rng: random.Random) -> tuple[Trader, int] | None:
        limits = {b.index: self._limit(b, rng) for b in buyers}
        leader: Trader | None = None
        price = 0
        while True:
            moved = False
            for b in rng.sample(buyers, len(buyers)):
                action = EnglishBidder(limits[b.index]).bid(
                    self._view(seller.limit, price, len(buyers), leader is b), rng
                )
                if action is not None:
                    leader, price, moved = b, action.amount, True
            if not moved:
                break
        return (leader, price) if leader is not None else None

    def _dutch(self, seller: Trader, buyers: list[Trader], rng: random.Random) -> tuple[Trader, int] | None:
        start = max(b.quote_limit for b in buyers) * 3 // 2
        floor = seller.limit
        if start <= floor:
            return None
        for step in range(self.dutch_steps + 1):
            price = start - (start - floor) * step // self.dutch_steps
            for b in rng.sample(buyers, len(buyers)):
                if b.strategy == "adaptive":
                    take = self._limit(b, rng) >= price
                else:
                    take = (
                        DutchBidder(b.quote_limit).bid(self._view(floor, price, len(buyers)), rng) is not None
                    )
                if take:
                    return b, price
        return None

    def _sealed(
        self, seller: Trader, buyers: list[Trader], rng: random.Random, second_price: bool = False
    ) -> tuple[Trader, int] | None:
        bids: list[tuple[int, float, Trader]] = []
        for b in buyers:
            view = self._view(seller.limit, 0, len(buyers))
            if b.strategy == "adaptive":
                amount = self._limit(b, rng)
                action_amount = amount if amount >= seller.limit else None
            else:
                bidder = VickreyBidder(b.quote_limit) if second_price else FirstPriceBidder(b.quote_limit)
                action = bidder.bid(view, rng)
                action_amount = action.amount if action is not None else None
            if action_amount is not None and action_amount >= seller.limit:
                bids.append((action_amount, rng.random(), b))
        if not bids:
            return None
        bids.sort(key=lambda x: (x[0], x[1]), reverse=True)
        top, _, winner = bids[0]
        if second_price:
            return winner, max(seller.limit, bids[1][0] if len(bids) > 1 else seller.limit)
        return winner, top

    def _sealed_first_price(
        self, seller: Trader, buyers: list[Trader], rng: random.Random
    ) -> tuple[Trader, int] | None:
        return self._sealed(seller, buyers, rng)

    def _vickrey(self, seller: Trader, buyers: list[Trader], rng: random.Random) -> tuple[Trader, int] | None:
        return self._sealed(seller, buyers, rng, second_price=True)

    def outcome(self, trader: Trader, surplus: int, traded: bool) -> None:
        if trader.is_buyer:
            super().outcome(trader, surplus, traded)


# -- procurement: each buyer runs a reverse auction, providers ask --------------------------------------------


class Procurement(Mechanism):
    """Sequential reverse auctions, one per buyer (maximum price = its value); lowest ask wins."""

    name = "procurement"
    strategic_roles = ("provider",)  # buyers only set their value as the maximum price

    def __init__(self, increment_bps: int = 500, order: str = "efficient"):
        self.increment_bps = increment_bps
        self.order = order

    def bidder(self, seller: Trader, rng: random.Random) -> ProcurementBidder:
        """The provider's asking strategy this round (fixed: cost + 10%; adaptive: learned margin floor)."""
        return self._bidder(seller, rng)

    def _bidder(self, seller: Trader, rng: random.Random) -> ProcurementBidder:
        curve = CostCurve(((HOUR, seller.limit),))
        if seller.strategy != "adaptive":
            return ProcurementBidder(curve, margin_bps=1_000, min_margin_bps=1_000)
        if "arm" not in seller.state:
            seller.state["arm"] = _bandit(seller, len(MARGINS_BPS)).select(rng)
        floor = MARGINS_BPS[int(seller.state["arm"])]  # type: ignore[call-overload]
        return ProcurementBidder(curve, margin_bps=max(floor, 1_000), min_margin_bps=floor)

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        remaining = list(sellers)
        matches: list[Match] = []
        for buyer in auction_order(buyers, self.order, rng, ascending=False):
            if not remaining:
                break
            bidders = {s.index: self._bidder(s, rng) for s in remaining}
            leader: Trader | None = None
            price = 0
            while True:
                moved = False
                for s in rng.sample(remaining, len(remaining)):
                    view = AuctionView(
                        AuctionKind.PROCUREMENT,
                        buyer.quote_limit,
                        price,
                        self.increment_bps,
                        len(remaining),
                        leading=leader is s,
                    )
                    action = bidders[s.index].bid(view, rng)
                    if action is not None and (price == 0 or action.amount < price):
                        leader, price, moved = s, action.amount, True
                if not moved:
                    break
            if leader is not None:
                remaining = [s for s in remaining if s.index != leader.index]
                matches.append(Match(buyer.index, leader.index, price, reference="procurement auction"))
        return matches

    def outcome(self, trader: Trader, surplus: int, traded: bool) -> None:
        if not trader.is_buyer:
            super().outcome(trader, surplus, traded)


# -- call market: a uniform-price batch double auction ---------------------------------------------------------

CALL_SHADES = (0.9, 0.95, 0.98, 1.0)

Quote = tuple[Trader, int]  # (trader, price in wei per GPU-hour), in submission (order-id) order


def call_matches(bids: Sequence[Quote], asks: Sequence[Quote], tick: int = 1) -> list[Match]:
    """The CallMarket contract's clearing in Python: each quote is an order for its trader's ``units``;
    order ids are the positions in ``bids`` / ``asks`` (submission order), prices are in ``tick`` units.
    The uniform price and fills come from :func:`agentmarket.clients.callmarket.compute_clearing` (the one
    Python copy of the contract's rule: midpoint of the equilibrium interval, ties at the price filled in
    id order); filled bids and asks are paired in id order, a unit at a time, as the contract settles them
    (one match per pair, for the units they share)."""
    from ..clients.callmarket import CallOrder, Side, compute_clearing  # the clients import web3: lazily

    def orders(side: Side, quotes: Sequence[Quote]) -> list[CallOrder]:
        return [CallOrder(0, side, i, "", price // tick, t.units) for i, (t, price) in enumerate(quotes)]

    clearing = compute_clearing(orders(Side.BUY, bids), orders(Side.SELL, asks))
    filled_b = [(t, f) for i, (t, _) in enumerate(bids) if (f := clearing.fills.get((Side.BUY, i), 0))]
    filled_a = [(t, f) for i, (t, _) in enumerate(asks) if (f := clearing.fills.get((Side.SELL, i), 0))]
    price = clearing.price_ticks * tick
    out: list[Match] = []
    kb = ka = 0
    used_b = used_a = 0  # units of the current bid / ask already paired
    while kb < len(filled_b) and ka < len(filled_a):
        (b, fb), (a, fa) = filled_b[kb], filled_a[ka]
        q = min(fb - used_b, fa - used_a)
        out.append(Match(b.index, a.index, price, reference="call auction", quantity=q))
        used_b += q
        used_a += q
        if used_b == fb:
            kb, used_b = kb + 1, 0
        if used_a == fa:
            ka, used_a = ka + 1, 0
    if kb < len(filled_b) or ka < len(filled_a):
        raise RuntimeError("call clearing filled different quantities on the two sides")
    return out


class Call(Mechanism):
    """A call market: every trader submits one order for the round, one uniform price clears them all.

    Buyers bid strategically (shaded): fixed buyers bid ``value x (1 - 1/(2n))`` (the shading that
    vanishes as the market grows, Rustichini-Satterthwaite-Williams 1994), adaptive buyers learn their
    shade with UCB1 over :data:`CALL_SHADES`; sellers ask their cost plus the mirror margin. Bids are
    capped at a guarded buyer's band ceiling. Orders arrive in a random order, which is their order id:
    ties at the clearing price are filled in that order (the contract's rule). On chain the same quotes
    go to the CallMarket contract (:mod:`agentmarket.sim.callhouse`); off chain :func:`call_matches`.
    """

    name = "call"

    def _shade(self, t: Trader, n: int, rng: random.Random) -> float:
        if t.strategy == "adaptive":
            if "arm" not in t.state:
                t.state["arm"] = _bandit(t, len(CALL_SHADES)).select(rng)
            return CALL_SHADES[int(t.state["arm"])]  # type: ignore[call-overload]
        return 1.0 - 1.0 / (2 * max(1, n))

    def quotes(
        self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random
    ) -> tuple[list[Quote], list[Quote]]:
        """The round's strategic bids and asks, each side in its (random) submission order."""
        n = len(buyers) + len(sellers)
        bids = [(b, int(b.quote_limit * self._shade(b, n, rng))) for b in buyers]
        asks = [(s, int(s.limit * (2.0 - self._shade(s, n, rng)))) for s in sellers]
        rng.shuffle(bids)
        rng.shuffle(asks)
        return [q for q in bids if q[1] > 0], [q for q in asks if q[1] > 0]

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        return call_matches(*self.quotes(buyers, sellers, rng))


def build(name: str, reference_price: int, *, order: str = "efficient") -> Mechanism:
    """The mechanism called ``name`` (see :data:`MECHANISMS`); ``order`` for sequential auctions."""
    if name == "negotiated":
        return Negotiated(reference_price)
    if name == "offers":
        return Offers()
    if name == "call":
        return Call()
    if name == "procurement":
        return Procurement(order=order)
    kinds = {
        "english": AuctionKind.ENGLISH,
        "dutch": AuctionKind.DUTCH,
        "sealed": AuctionKind.SEALED_FIRST_PRICE,
        "vickrey": AuctionKind.VICKREY,
    }
    if name in kinds:
        return ForwardAuction(kinds[name], order=order)
    raise ValueError(f"unknown mechanism {name!r} (choose from {', '.join(MECHANISMS)})")
