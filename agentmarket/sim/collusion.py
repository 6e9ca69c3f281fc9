"""Tacit collusion on chain: Q-learning pricing agents (Calvano et al. 2020) post offers, buyers fill them,
and surveillance has to tell the collusive runs from the competitive ones from the events alone.

Training happens off chain (:mod:`agentmarket.strategies.qlearning`): the collusive agents discount the
future (delta = 0.95) and have one-period memory. The competitive control is myopic best responders on
the same grid (each firm best-responds to the rival's last price, converging to the one-shot Nash price);
myopic Q-learners (delta = 0) are run for comparison. The policies then run the measured phase on
chain: every period each firm
posts a sell offer at its policy's price for the last period's prices, each buyer picks a firm (or the
outside good) with the logit probabilities of the stage game and fills one unit, and unfilled offers are
cancelled at the end of the period. The surveillance report is computed from the chain's events over the
run's blocks, with the competitive benchmark a regulator would estimate (the one-shot Nash price and the
firms' marginal cost).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from ..clients.offers import OffersClient, resource_id
from ..deploy import Suite
from ..strategies.qlearning import (
    LogitBertrand,
    QLearningConfig,
    Session,
    best_response_sessions,
    train_sessions,
)
from ..surveillance import Benchmarks, SurveillanceReport, Thresholds, surveil
from ..types import ETH

__all__ = ["CollusionRun", "run_collusion"]

PRICE_UNIT = 10**15  # one unit of the stage game's price = 0.001 ETH per unit of compute


@dataclass(frozen=True)
class CollusionRun:
    """One measured run: which learners, their off-chain profit gain, what happened on chain, the flags."""

    seed: int
    collusive: bool
    control: str  # "" for the collusive learners, else the control's kind
    profit_gain: float  # Δ of the trained policies' limit cycle (off chain)
    onchain_profit_gain: float  # Δ of the firms' realised per-period profit on chain
    trades: int
    mean_price: float  # in stage-game units
    flagged: bool
    flags: tuple[str, ...]
    from_block: int
    to_block: int


def _resource(seed: int, collusive: bool) -> str:
    return f"gpu-hour/collusion/{'q' if collusive else 'myopic'}/{seed}"


def run_collusion(
    suite: Suite,
    firms: tuple[LocalAccount, LocalAccount],
    buyers: list[LocalAccount],
    seeds: list[int],
    *,
    collusive: bool,
    control: str = "best_response",
    periods: int = 6,
    game: LogitBertrand | None = None,
    cfg: QLearningConfig | None = None,
    thresholds: Thresholds | None = None,
    sessions: list[Session] | None = None,
) -> list[CollusionRun]:
    """Train (unless ``sessions`` are given), then run each seed's policies on chain and screen it.

    ``collusive``: Q-learners with memory and delta = 0.95. Otherwise the ``control``:
    ``"best_response"`` (myopic best responders, the competitive benchmark) or ``"myopic_q"``
    (Q-learners with delta = 0, reported for comparison: not reliably competitive, see
    :mod:`agentmarket.strategies.qlearning`)."""
    game = game or LogitBertrand()
    cfg = cfg or QLearningConfig()
    if sessions is None:
        if collusive:
            sessions = train_sessions(seeds, game, cfg)
        elif control == "best_response":
            sessions = best_response_sessions(seeds, game, cfg)
        elif control == "myopic_q":
            sessions = train_sessions(seeds, game, QLearningConfig(**{**cfg.__dict__, "delta": 0.0}))
        else:
            raise ValueError(f"control must be 'best_response' or 'myopic_q', got {control!r}")
    p_n, p_m = game.nash_price(), game.monopoly_price()
    pi_n, pi_m = game.symmetric_profit(p_n), game.symmetric_profit(p_m)
    makers = [OffersClient.from_suite(suite, f) for f in firms]
    takers = [OffersClient.from_suite(suite, b) for b in buyers]
    w3 = suite.chain.w3
    runs: list[CollusionRun] = []
    for session in sessions:
        rng = random.Random(session.seed)
        resource = _resource(session.seed, collusive)
        start = int(w3.eth.block_number) + 1
        last = session.cycle[0]
        profits = [0.0, 0.0]
        prices_paid: list[float] = []
        for _ in range(periods):
            actions = session.act(last)
            prices = session.prices(actions)
            offers: list[Any] = []
            for maker, price in zip(makers, prices, strict=True):
                offer = maker.build("sell", resource, round(price * PRICE_UNIT), len(buyers), asset=ETH)
                maker.post(offer)
                offers.append(offer)
            shares = _logit_shares(game, prices)
            for taker in takers:
                choice = _draw(rng, shares)
                if choice is None:
                    continue  # the outside good
                taker.fill(offers[choice], 1)
                profits[choice] += prices[choice] - game.c
                prices_paid.append(prices[choice])
            for maker, offer in zip(makers, offers, strict=True):
                if maker.remaining(offer) > 0:
                    maker.cancel(offer)
            last = actions
        end = int(w3.eth.block_number)
        # Realised profit per firm and period, scaled to the stage game's unit mass of consumers.
        realised = sum(profits) / (2 * periods * len(buyers))
        rid = "0x" + resource_id(resource).hex()
        report: SurveillanceReport = surveil(
            suite,
            start,
            end,
            benchmarks=Benchmarks(
                competitive_price={rid: p_n * PRICE_UNIT},
                marginal_cost={m.account.address: game.c * PRICE_UNIT for m in makers if m.account},
            ),
            thresholds=thresholds,
        )
        pricing_flags = tuple(f.screen for f in report.flags if f.scope == rid)
        runs.append(
            CollusionRun(
                seed=session.seed,
                collusive=collusive,
                control="" if collusive else control,
                profit_gain=session.profit_gain,
                onchain_profit_gain=(realised - pi_n) / (pi_m - pi_n),
                trades=len(prices_paid),
                mean_price=sum(prices_paid) / len(prices_paid) if prices_paid else math.nan,
                flagged="supracompetitive_pricing" in pricing_flags,
                flags=pricing_flags,
                from_block=start,
                to_block=end,
            )
        )
    return runs


def _logit_shares(game: LogitBertrand, prices: tuple[float, ...]) -> list[float]:
    e = [math.exp((game.a - p) / game.mu) for p in prices]
    total = sum(e) + math.exp(game.a0 / game.mu)
    return [x / total for x in e]


def _draw(rng: random.Random, shares: list[float]) -> int | None:
    u = rng.random()
    acc = 0.0
    for i, s in enumerate(shares):
        acc += s
        if u < acc:
            return i
    return None
