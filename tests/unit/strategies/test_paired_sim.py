"""The simulator's paired negotiated market: adaptive traders meet only fixed ones, and the first-pass
counterparties do not depend on the strategy under test."""

from __future__ import annotations

from agentmarket.sim.paired_negotiation import STRATEGIES, PairedNegotiated
from agentmarket.sim.runner import OffChainSim, SimConfig


def _run(seed: int, strategy: str) -> tuple[OffChainSim, PairedNegotiated]:
    cfg = SimConfig(agents=8, rounds=2, mechanism="negotiated", seed=seed)
    sim = OffChainSim(cfg)
    mech = PairedNegotiated(cfg.reference_price, seed, strategy)
    sim.mechanism = mech
    sim.run()
    return sim, mech


def test_adaptive_traders_only_meet_fixed_ones_and_first_passes_are_identical() -> None:
    for seed in (1, 2):
        first_passes = []
        for strategy in STRATEGIES:
            sim, mech = _run(seed, strategy)
            label = {t.index: t.strategy for t in [*sim.buyers, *sim.sellers]}
            assert mech.log
            for _, _, b, s, _ in mech.log:
                assert not (label[b] == "adaptive" and label[s] == "adaptive")
            first_passes.append([(r, b, s) for r, p, b, s, _ in mech.log if p == 0])
        assert all(fp == first_passes[0] for fp in first_passes)


def test_paired_scores_are_the_adaptive_traders_trades_and_a_strategy_ties_itself() -> None:
    from agentmarket.sim.paired_negotiation import paired_market_scores

    a = paired_market_scores([3, 4], 8, 3, strategies=("bayes", "boulware"))
    b = paired_market_scores([3, 4], 8, 3, strategies=("bayes", "boulware"))
    assert a.utility == b.utility and a.price == b.price  # deterministic per seed
    for st in ("bayes", "boulware"):
        assert a.negotiations[st] > 0
        assert a.settled[st] == a.agreements[st] > 0  # off chain every agreement is a trade
        assert all(0 <= u <= 1 for u in a.utility[st])
    assert a.utility["bayes"] != a.utility["boulware"]  # the strategy under test changes the score
