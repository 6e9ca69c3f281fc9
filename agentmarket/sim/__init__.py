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
)

__all__ = [
    "MECHANISMS",
    "CircuitBreaker",
    "ComputeMarketSim",
    "Match",
    "Mechanism",
    "OffChainSim",
    "RoundStats",
    "SimConfig",
    "SimResult",
    "TradeRecord",
    "Trader",
    "build",
    "run",
]
