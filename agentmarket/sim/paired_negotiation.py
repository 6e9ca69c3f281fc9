"""The ``negotiated`` market with the strategy under test swapped in, for paired on-chain comparisons.

:class:`PairedNegotiated` is the :class:`~agentmarket.sim.mechanisms.Negotiated` mechanism (same
preferences, same fixed repertoire for the ``fixed`` traders, agreements become signed offers filled on
chain by the runner) with two changes that make runs *paired*:

* who meets whom, who opens and every negotiation's rng come from streams keyed by ``(seed, round, pair)``,
  never from outcomes, so two runs with the same seed face the same counterparties in the same order
  whatever the ``adaptive``-labelled traders play;
* the ``adaptive``-labelled traders play ``strategy`` -- ``"bayes"`` (:class:`BayesianBargainer`) or one
  of the fixed tactics of :data:`~agentmarket.strategies.evaluation.FIXED_TACTICS`.

An ``adaptive`` trader is only ever paired with a ``fixed`` one (:meth:`PairedNegotiated.pairs`): with
random pairs, adaptive traders met copies of themselves and a strategy was credited with how well it
trades *with itself* (two Boulware bots deadlock, two learners do not), which is not the comparison.
Traders whose negotiation fails (or who walk away) are pooled and re-paired once in the same round
(rematching); every strategy gets that second chance, but who is in the pool depends on the outcomes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..strategies import NegotiationResult, Negotiator, Role, negotiate
from ..strategies.bargaining import Responder
from ..strategies.evaluation import FIXED_TACTICS
from ..strategies.opponent import BayesianBargainer
from .mechanisms import Match, Negotiated, Trader

__all__ = ["STRATEGIES", "PairedNegotiated"]

STRATEGIES = ("bayes", *FIXED_TACTICS)


class PairedNegotiated(Negotiated):
    """``negotiated`` with outcome-independent pairing and a swappable strategy for ``adaptive`` traders."""

    def __init__(
        self,
        reference_price: int,
        seed: int,
        strategy: str,
        max_rounds: int = 12,
        rematch_discount: float = 0.9,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
        super().__init__(reference_price, max_rounds)
        self.seed = seed
        self.strategy = strategy
        self.rematch_discount = rematch_discount
        self.round = 0
        self.log: list[tuple[int, int, int, int, bool]] = []  # (round, pass, buyer, seller, agreed)

    def side(self, trader: Trader, more: bool) -> Negotiator | Responder:
        """The negotiating side of ``trader`` (``more``: a rematch follows if this negotiation fails)."""
        prefs = self.preferences(trader)
        if trader.strategy != "adaptive":
            return super().negotiator(trader, random.Random(0))  # fixed tactics draw nothing from the rng
        if self.strategy == "bayes":
            learner = trader.state.get("bayes")
            if learner is None:
                learner = BayesianBargainer(trader.role)
                trader.state["bayes"] = learner
            assert isinstance(learner, BayesianBargainer)
            return learner.negotiator(prefs, self.max_rounds, self.rematch_discount if more else None)
        return Negotiator(
            trader.role, prefs, FIXED_TACTICS[self.strategy], name=f"{self.strategy}-{trader.index}"
        )

    @staticmethod
    def pairs(buyers: Sequence[Trader], sellers: Sequence[Trader]) -> list[tuple[Trader, Trader]]:
        """Pairs in list order such that an ``adaptive`` trader always faces a ``fixed`` one (so every
        strategy under test meets the same counterparties, never a copy of itself); fixed traders left
        over are paired with each other; adaptive ones left over sit the pass out."""
        fb = [t for t in buyers if t.strategy != "adaptive"]
        fs = [t for t in sellers if t.strategy != "adaptive"]
        ab = [t for t in buyers if t.strategy == "adaptive"]
        as_ = [t for t in sellers if t.strategy == "adaptive"]
        out = list(zip(ab, fs[: len(ab)], strict=False))
        fs = fs[len(out) :]
        with_sellers = list(zip(fb, as_, strict=False))
        out += with_sellers
        fb = fb[len(with_sellers) :]
        out += list(zip(fb, fs, strict=False))
        return out

    def _learn(self, trader: Trader, result: NegotiationResult) -> None:
        learner = trader.state.get("bayes")
        if trader.strategy == "adaptive" and isinstance(learner, BayesianBargainer):
            learner.learn(self.preferences(trader), result)

    def clear(self, buyers: Sequence[Trader], sellers: Sequence[Trader], rng: random.Random) -> list[Match]:
        """Two passes of random pairs (the second among the first pass's failures); ``rng`` is not used."""
        stream = random.Random(f"paired/{self.seed}/{self.round}")
        self.round += 1
        matches: list[Match] = []
        b, s = list(buyers), list(sellers)
        for pass_ in range(2):
            stream.shuffle(b)
            stream.shuffle(s)
            failed_b, failed_s = [], []
            for i, (buyer, seller) in enumerate(self.pairs(b, s)):
                opener = Role.BUYER if stream.random() < 0.5 else Role.SELLER
                pair_rng = random.Random(f"paired/{self.seed}/{self.round}/{pass_}/{i}")
                more = pass_ == 0
                result = negotiate(
                    self.side(buyer, more), self.side(seller, more), self.max_rounds, pair_rng, opener
                )
                self._learn(buyer, result)
                self._learn(seller, result)
                self.log.append(
                    (self.round - 1, pass_, buyer.index, seller.index, result.agreement is not None)
                )
                if result.agreement is None:
                    failed_b.append(buyer)
                    failed_s.append(seller)
                    continue
                a = result.agreement
                matches.append(
                    Match(
                        buyer.index,
                        seller.index,
                        a.price,
                        a.delivery_seconds,
                        a.bond,
                        f"negotiated in {a.round + 1} moves (pass {pass_ + 1})",
                    )
                )
            paired = {t.index for pair in self.pairs(b, s) for t in pair}
            # the failed, and everyone left without a partner, get the second pass
            b = failed_b + [t for t in b if t.index not in paired]
            s = failed_s + [t for t in s if t.index not in paired]
        return matches
