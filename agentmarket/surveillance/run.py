"""Surveillance over a deployed suite: read the window's events, run the screens."""

from __future__ import annotations

from ..deploy import Suite
from ..logscan import deployment_block
from .events import read_events
from .report import Benchmarks, SurveillanceReport, Thresholds, surveil_events


def surveil(
    suite: Suite,
    from_block: int | None = None,
    to_block: int | None = None,
    *,
    benchmarks: Benchmarks | None = None,
    thresholds: Thresholds | None = None,
) -> SurveillanceReport:
    """Screen the market between ``from_block`` and ``to_block`` (default: the latest block) using only
    the suite contracts' events, plus whatever off-chain ``benchmarks`` the caller has. ``from_block``
    defaults to the earliest deployment block the suite's manifest records."""
    w3 = suite.chain.w3
    if from_block is None:
        from_block = deployment_block(w3, list(suite.addresses.values()))
    end = int(w3.eth.block_number) if to_block is None else to_block
    events = read_events(w3, suite.contracts, from_block, end)
    return surveil_events(events, from_block, end, benchmarks, thresholds)
