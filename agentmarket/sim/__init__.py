"""Multi-agent compute market simulation: private costs and values, strategies, on-chain settlement.

See :mod:`agentmarket.sim.runner` (:func:`run`, :class:`SimConfig`) and :mod:`agentmarket.sim.mechanisms`.
"""

from agentmarket.sim.mechanisms import MECHANISMS, Match, Mechanism, Trader, build
from agentmarket.sim.runner import (
    CircuitBreaker,
    ComputeMarketSim,
    OffChainSim,
    RoundStats,
    SimConfig,
    SimResult,
    TradeRecord,
    run,
    run_seeds,
)
from agentmarket.sim.shock import SCENARIOS, Shock

__all__ = [
    "MECHANISMS",
    "SCENARIOS",
    "CircuitBreaker",
    "ComputeMarketSim",
    "Match",
    "Mechanism",
    "OffChainSim",
    "RoundStats",
    "Shock",
    "SimConfig",
    "SimResult",
    "TradeRecord",
    "Trader",
    "build",
    "run",
    "run_seeds",
]
