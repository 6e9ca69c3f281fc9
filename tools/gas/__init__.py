"""Gas snapshot: named scenarios measuring full-transaction gasUsed on the embedded chain.

Each contract family registers its scenarios in a module of this package with :func:`scenario`. A
development tool, not part of the installed package (issue 13): clients read the snapshot through
:mod:`agentmarket.gaslimits`.
``make gas`` writes ``gas-snapshot.json``; a test re-measures and fails when a figure rises.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentmarket.chain import Chain
from agentmarket.deploy import Suite, deploy_suite
from agentmarket.gaslimits import SNAPSHOT_FILE

__all__ = [
    "CODE_SIZE_LIMIT",
    "SNAPSHOT_FILE",
    "GasEnv",
    "measure",
    "read_snapshot",
    "regressions",
    "scenario",
]

FIXED_START = 2_000_000_000  # 2033-05-18: later than any wall clock these runs see


@dataclass
class GasEnv:
    """A fresh suite on the embedded chain; scenarios run from the same snapshot, in isolation."""

    chain: Chain
    suite: Suite


Scenario = Callable[[GasEnv], int]
SCENARIOS: dict[str, Scenario] = {}


def scenario(key: str) -> Callable[[Scenario], Scenario]:
    """Register ``fn`` as the measurement of snapshot key ``key`` (returns full-tx gasUsed)."""

    def register(fn: Scenario) -> Scenario:
        if key in SCENARIOS:
            raise ValueError(f"gas scenario {key} registered twice")
        SCENARIOS[key] = fn
        return fn

    return register


def load_scenarios() -> dict[str, Scenario]:
    """Import every scenario module of this package."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(SCENARIOS.items()))


def measure(keys: list[str] | None = None) -> dict[str, int]:
    """Run the scenarios (all, or ``keys``), each from the same fresh-suite snapshot."""
    scenarios = load_scenarios()
    chain = Chain.embedded()
    # Start from a fixed future time so block timestamps, and the calldata bytes of every deadline derived
    # from them, are the same in every run: zero bytes cost less calldata gas than non-zero ones.
    chain.travel_to(max(chain.now() + 1, FIXED_START))
    env = GasEnv(chain, deploy_suite(chain, write=False, reuse=False))
    base = chain.snapshot()
    results: dict[str, int] = {}
    for key, fn in scenarios.items():
        if keys is not None and key not in keys:
            continue
        results[key] = int(fn(env))
        chain.revert(base)
    for key, size in bytecode_sizes(env.suite).items():
        if keys is None or key in keys:
            results[key] = size
    return results


#: EIP-170 limit on deployed runtime code; ``bytecode.<Contract>`` keys are compared against the snapshot
#: like gas (a rise fails) and must stay under this.
CODE_SIZE_LIMIT = 24_576


def bytecode_sizes(suite: Suite) -> dict[str, int]:
    """``bytecode.<Contract>``: deployed runtime size in bytes of every contract of ``suite``."""
    w3 = suite.chain.w3
    return {
        f"bytecode.{name}": len(w3.eth.get_code(c.address)) for name, c in sorted(suite.contracts.items())
    }


def read_snapshot(path: Path | str = SNAPSHOT_FILE) -> dict[str, int]:
    path = Path(path)
    return {k: int(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}


def write_snapshot(figures: dict[str, int], path: Path | str = SNAPSHOT_FILE) -> None:
    Path(path).write_text(json.dumps(dict(sorted(figures.items())), indent=2) + "\n")


def regressions(measured: dict[str, int], committed: dict[str, int]) -> list[str]:
    """Lines naming each key whose gas rose above the committed figure, or that has no figure yet."""
    problems = []
    for key, gas in sorted(measured.items()):
        if key not in committed:
            problems.append(f"{key}: {gas} measured but not in {SNAPSHOT_FILE} (run `make gas`)")
        elif gas > committed[key]:
            problems.append(f"{key}: {gas} > committed {committed[key]} (+{gas - committed[key]})")
    return problems
