"""Market surveillance from chain events: markups, concentration, bid rotation and cover bidding,
exclusion. See :func:`surveil` (chain in, report out) and ``agentmarket surveil`` on the command line."""

from __future__ import annotations

from .events import ChainEvent, Order, Trade, read_events, trades_from_events
from .report import Benchmarks, Flag, SurveillanceReport, Thresholds, surveil_events
from .run import surveil

__all__ = [
    "Benchmarks",
    "ChainEvent",
    "Flag",
    "Order",
    "SurveillanceReport",
    "Thresholds",
    "Trade",
    "read_events",
    "surveil",
    "surveil_events",
    "trades_from_events",
]
