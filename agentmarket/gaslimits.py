"""Gas limits for known operations, from the committed gas snapshot, so the fast path skips eth_estimateGas.

``gas-snapshot.json`` maps an operation key (``escrow.accept``) to the full-transaction gasUsed measured
by ``make gas``. A transaction sent with ``gas_key=`` gets ``ceil(figure * margin) + headroom`` as its
limit: enough for cold storage slots and slightly different arguments. gasUsed is not the limit a call
needs: a contract may require ``gasleft()`` above a reserve (AgentEscrow forwards 30k to a payout receiver
and checks for ~42.5k first, the 63/64 rule), hence the fixed headroom. Unused gas is refunded, so a
generous limit costs nothing but block space accounting. Unknown keys fall back to estimation (which also simulates the call).
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

SNAPSHOT_FILE = "gas-snapshot.json"  # written by `make gas` (tools/gas)
GAS_SNAPSHOT_ENV = "AGENTMARKET_GAS_SNAPSHOT"
DEFAULT_MARGIN = 1.3
DEFAULT_HEADROOM = 50_000  # covers gas *reserved* but not used, e.g. the escrow keeps 42.5k for payouts


def find_snapshot(start: Path | None = None) -> Path | None:
    """``$AGENTMARKET_GAS_SNAPSHOT``, else the package's own copy (package data; in a checkout a symlink to
    the committed ``gas-snapshot.json``), else the nearest ``gas-snapshot.json`` above ``start``/the cwd.

    The package's copy comes before the cwd: an installed client must use the figures measured for the
    contracts it ships, not whatever file of that name sits in the user's project.
    """
    override = os.environ.get(GAS_SNAPSHOT_ENV)
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    here = (start or Path.cwd()).resolve()
    for base in [package, package.parent, here, *here.parents]:
        candidate = base / SNAPSHOT_FILE
        if candidate.is_file():
            return candidate
    return None


class GasTable:
    """Operation key -> gas limit (snapshot figure x margin + headroom); thread-safe, loaded lazily."""

    def __init__(
        self,
        figures: dict[str, int] | None = None,
        *,
        path: Path | str | None = None,
        margin: float = DEFAULT_MARGIN,
        headroom: int = DEFAULT_HEADROOM,
    ):
        if margin < 1.0:
            raise ValueError("gas margin must be >= 1.0")
        self.margin, self.headroom = margin, headroom
        self._path = Path(path) if path else None
        self._figures: dict[str, int] | None = dict(figures) if figures is not None else None
        self._lock = threading.Lock()
        # (key, count) -> limit: every send asks, and loading under the lock then multiplying cost more
        # than the rest of building a batch transaction; cleared by register()
        self._limits: dict[tuple[str, int], int | None] = {}

    def _load(self) -> dict[str, int]:
        with self._lock:
            if self._figures is None:
                path = self._path or find_snapshot()
                figures: dict[str, int] = {}
                if path is not None and path.is_file():
                    try:
                        figures = {k: int(v) for k, v in json.loads(path.read_text()).items()}
                    except (OSError, ValueError):
                        figures = {}
                self._figures = figures
            return self._figures

    def figure(self, key: str) -> int | None:
        """The committed gasUsed of ``key`` (None when unknown)."""
        return self._load().get(key)

    def limit(self, key: str, count: int = 1) -> int | None:
        """The gas limit to send ``key`` with (``count`` times a per-item figure, for batches), or None
        when the key is unknown (then estimate)."""
        cached = self._limits.get((key, count), -1)
        if cached != -1:
            return cached
        figures = self._load()
        with self._lock:  # read and cache together: a concurrent register() cannot leave a stale limit
            figure = figures.get(key)
            limit = (
                None if figure is None else math.ceil(figure * max(1, count) * self.margin) + self.headroom
            )
            self._limits[(key, count)] = limit
        return limit

    def register(self, key: str, gas_used: int) -> None:
        """Add or override a figure at run time (e.g. an operation measured by the application)."""
        figures = self._load()
        with self._lock:
            figures[key] = int(gas_used)
            self._limits.clear()

    def keys(self) -> list[str]:
        return sorted(self._load())
