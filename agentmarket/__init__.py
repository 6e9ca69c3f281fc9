"""agentmarket: settlement rails for autonomous agents on an EVM chain.

The main entry points are importable from the package root (loaded lazily, so ``import agentmarket``
stays cheap): :class:`Market`, :class:`Agent`, :class:`Mandate`, :class:`PriceBand`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Market": "agentmarket.market",
    "Agent": "agentmarket.agent",
    "resource_id": "agentmarket.types",
    "Mandate": "agentmarket.mandate",
    "PriceBand": "agentmarket.mandate",
    "Chain": "agentmarket.chain",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from .agent import Agent
    from .chain import Chain
    from .mandate import Mandate, PriceBand
    from .market import Market
    from .types import resource_id

__all__ = ["Agent", "Chain", "Mandate", "Market", "PriceBand", "__version__", "resource_id"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentmarket' has no attribute {name!r}")
