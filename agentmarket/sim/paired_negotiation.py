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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..strategies import NegotiationResult, Negotiator, Role, Terms, negotiate
from ..strategies.bargaining import Responder
from ..strategies.evaluation import FIXED_TACTICS
from ..strategies.opponent import BayesianBargainer
from .mechanisms import Match, Negotiated, Trader

if TYPE_CHECKING:
    from ..market import Market

__all__ = ["STRATEGIES", "PairedNegotiated", "PairedScores", "paired_market_scores"]

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


@dataclass
class PairedScores:
    """Per strategy, one score per seed (the ``adaptive`` traders' mean per trader-round), plus counts."""

    seeds: list[int]
    utility: dict[str, list[float]] = field(default_factory=dict)  # multi-issue utility, no trade: 0
    price: dict[str, list[float]] = field(default_factory=dict)  # price score only, no trade: 0
    agreements: dict[str, int] = field(default_factory=dict)  # adaptive-side agreements reached
    settled: dict[str, int] = field(default_factory=dict)  # of those, trades that settled (ACCEPTED)
    negotiations: dict[str, int] = field(default_factory=dict)  # negotiations an adaptive trader joined


def paired_market_scores(
    seeds: Sequence[int],
    agents: int,
    rounds: int,
    *,
    market: Market | None = None,
    strategies: Sequence[str] = STRATEGIES,
    progress: bool = False,
) -> PairedScores:
    """Run the ``negotiated`` market once per (seed, strategy) -- on ``market`` (one deployed suite, fresh
    agents every run; agreements settled on chain) or off chain when ``market`` is None -- and score the
    ``adaptive`` traders from the trades that settled: per seed, the mean over adaptive trader-rounds of
    the multi-issue utility of their trades (a round without a trade scores the reservation utility, 0)
    and of the price score alone. Same seed = same values, labels and first-pass counterparties for
    every strategy (the paired design); the strategy is the only thing that changes."""
    from .runner import ComputeMarketSim, OffChainSim, SimConfig

    out = PairedScores(list(seeds))
    for st in strategies:
        out.utility[st], out.price[st] = [], []
        out.agreements[st] = out.settled[st] = out.negotiations[st] = 0
    for seed in seeds:
        for st in strategies:
            cfg = SimConfig(agents=agents, rounds=rounds, mechanism="negotiated", seed=seed)
            sim = OffChainSim(cfg) if market is None else ComputeMarketSim(market, cfg)
            mech = PairedNegotiated(cfg.reference_price, seed, st)
            sim.mechanism = mech
            result = sim.run()
            traders = {t.index: t for t in [*sim.buyers, *sim.sellers]}
            by_address = {sim.agents[i].address: t for i, t in traders.items()}
            adaptive = {i for i, t in traders.items() if t.strategy == "adaptive"}
            for _, _, b, s, agreed in mech.log:
                sides = (b in adaptive) + (s in adaptive)
                out.negotiations[st] += sides
                out.agreements[st] += sides * agreed
            total = price_total = 0.0
            for rec in result.trades:
                for addr in (rec.buyer, rec.seller):
                    t = by_address[addr]
                    if t.strategy != "adaptive" or rec.state != "ACCEPTED":
                        continue
                    out.settled[st] += 1
                    prefs = mech.preferences(t)
                    total += prefs.utility(Terms(rec.price, rec.delivery_seconds, rec.bond))
                    price_total += prefs.price.score(rec.price)
            slots = max(1, len(adaptive) * rounds)
            out.utility[st].append(total / slots)
            out.price[st].append(price_total / slots)
        if progress:
            import sys

            line = " ".join(f"{st} {out.utility[st][-1]:.3f}" for st in strategies)
            print(f"seed {seed}: {line}", file=sys.stderr)
    return out
