"""Surveillance over a deployed suite: read the window's events, run the screens."""

from __future__ import annotations

from ..deploy import Suite
from .events import read_events
from .report import Benchmarks, SurveillanceReport, Thresholds, surveil_events


def surveil(
    suite: Suite,
    from_block: int = 0,
    to_block: int | None = None,
    *,
    benchmarks: Benchmarks | None = None,
    thresholds: Thresholds | None = None,
) -> SurveillanceReport:
    """Screen the market between ``from_block`` and ``to_block`` (default: the latest block) using only
    the suite contracts' events, plus whatever off-chain ``benchmarks`` the caller has."""
    w3 = suite.chain.w3
    end = int(w3.eth.block_number) if to_block is None else to_block
    events = read_events(w3, suite.contracts, from_block, end)
    return surveil_events(events, from_block, end, benchmarks, thresholds)
