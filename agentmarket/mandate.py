"""Spend mandates: the limits an agent's owner sets, enforced before anything is signed or sent.

A :class:`Mandate` is pure data; a :class:`MandateGuard` applies it to a stream of intended payments and
keeps the running totals. A breach raises :class:`~agentmarket.errors.MandateViolation` and records
nothing, so a refused payment never counts against the budget.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from . import validate
from .errors import InvalidInput, MandateViolation
from .types import ETH


@dataclass(frozen=True)
class PriceBand:
    """Refuse to pay more than ``max_premium_bps`` above ``reference_unit_price`` for a resource."""

    reference_unit_price: int
    max_premium_bps: int = 1_000

    def __post_init__(self) -> None:
        validate.amount(self.reference_unit_price, "reference_unit_price")
        validate.integer(self.max_premium_bps, "max_premium_bps", what="basis points (int)")

    @property
    def ceiling(self) -> int:
        return self.reference_unit_price * (10_000 + self.max_premium_bps) // 10_000


@dataclass(frozen=True)
class Mandate:
    """What an agent may spend. ``None`` means "no limit" for that dimension.

    Amounts are integers in each asset's smallest unit; budgets are per asset address (ETH is the
    zero address).
    """

    budget: Mapping[str, int] | None = None
    max_per_deal: Mapping[str, int] | None = None
    allowed_assets: frozenset[str] | None = None
    price_bands: Mapping[bytes, PriceBand] = field(default_factory=dict)  # resource id -> band
    max_actions: int | None = None  # rate limit: at most this many spends ...
    per_seconds: float = 60.0  # ... within this sliding window

    def __post_init__(self) -> None:
        for name in ("budget", "max_per_deal"):
            mapping = getattr(self, name)
            if mapping is None:
                continue
            if not isinstance(mapping, Mapping):
                raise InvalidInput(f"{name} must map asset addresses to amounts", param=name)
            for asset, limit in mapping.items():
                validate.address(asset, f"{name} key")
                validate.amount(limit, f"{name}[{asset}]")
        if self.allowed_assets is not None:
            if isinstance(self.allowed_assets, str) or not isinstance(self.allowed_assets, Iterable):
                raise InvalidInput("allowed_assets must be a set of asset addresses", param="allowed_assets")
            for asset in self.allowed_assets:
                validate.address(asset, "allowed_assets")
        if not isinstance(self.price_bands, Mapping):
            raise InvalidInput("price_bands must map resource ids to PriceBand", param="price_bands")
        for key, band in self.price_bands.items():
            # A band keyed by a name ("gpu-hour") would never match the 32-byte id a purchase carries and
            # would silently not apply: refuse it instead.
            if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
                raise InvalidInput(
                    f"price_bands key {key!r} is not a 32-byte resource id "
                    f"(fix: key it by agentmarket.resource_id({key!r}))",
                    param="price_bands",
                )
            if not isinstance(band, PriceBand):
                raise InvalidInput(f"price_bands[{key.hex()}] must be a PriceBand", param="price_bands")
        if self.max_actions is not None:
            validate.integer(self.max_actions, "max_actions", minimum=1)
        if (
            isinstance(self.per_seconds, bool)
            or not isinstance(self.per_seconds, (int, float))
            or not self.per_seconds > 0
        ):
            raise InvalidInput(
                f"per_seconds must be a positive number, got {self.per_seconds!r}", param="per_seconds"
            )


class MandateGuard:
    """Applies a :class:`Mandate`: call :meth:`authorise` before signing; it raises or records the spend."""

    def __init__(self, mandate: Mandate, *, clock: Callable[[], float] = time.monotonic):
        self.mandate = mandate
        self._clock = clock
        self._spent: dict[str, int] = {}
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def spent(self, asset: str = ETH) -> int:
        """Total authorised so far in ``asset``."""
        return self._spent.get(validate.checksum(asset), 0)

    def remaining(self, asset: str = ETH) -> int | None:
        """Budget left in ``asset`` (None when unlimited)."""
        budget = _lookup(self.mandate.budget, asset)
        return None if budget is None else budget - self.spent(asset)

    def check(
        self, amount: int, asset: str = ETH, *, resource: bytes | None = None, unit_price: int | None = None
    ) -> None:
        """Raise :class:`MandateViolation` if spending ``amount`` of ``asset`` is not allowed."""
        amount, asset = validate.amount(amount), validate.address(asset, "asset")
        with self._lock:
            self._check(amount, asset, resource, unit_price)

    def authorise(
        self, amount: int, asset: str = ETH, *, resource: bytes | None = None, unit_price: int | None = None
    ) -> None:
        """Check, then record the spend (atomically)."""
        amount, asset = validate.amount(amount), validate.address(asset, "asset")
        with self._lock:
            self._check(amount, asset, resource, unit_price)
            self._spent[asset] = self._spent.get(asset, 0) + amount
            self._recent.append(self._clock())

    def refund(self, amount: int, asset: str = ETH) -> None:
        """Give back budget for a spend that did not happen (e.g. the transaction failed)."""
        asset = validate.checksum(asset)
        with self._lock:
            self._spent[asset] = max(0, self._spent.get(asset, 0) - int(amount))

    def _check(self, amount: int, asset: str, resource: bytes | None, unit_price: int | None) -> None:
        m = self.mandate
        if amount < 0:
            raise InvalidInput(f"amount {amount} is negative")
        if m.allowed_assets is not None and asset not in {validate.checksum(a) for a in m.allowed_assets}:
            raise MandateViolation(f"asset {asset} is not allowed by the mandate")
        cap = _lookup(m.max_per_deal, asset)
        if cap is not None and amount > cap:
            raise MandateViolation(f"{amount} exceeds the per-deal cap of {cap} for {asset}")
        budget = _lookup(m.budget, asset)
        if budget is not None and self._spent.get(asset, 0) + amount > budget:
            raise MandateViolation(
                f"{amount} would exceed the budget for {asset}: {self._spent.get(asset, 0)} of {budget} spent"
            )
        if resource is not None and unit_price is not None and resource in m.price_bands:
            band = m.price_bands[resource]
            if unit_price > band.ceiling:
                raise MandateViolation(
                    f"unit price {unit_price} is above the band ceiling {band.ceiling} "
                    f"(reference {band.reference_unit_price} + {band.max_premium_bps} bps)"
                )
        if m.max_actions is not None:
            now = self._clock()
            while self._recent and now - self._recent[0] >= m.per_seconds:
                self._recent.popleft()
            if len(self._recent) >= m.max_actions:
                raise MandateViolation(f"rate limit: {m.max_actions} spends per {m.per_seconds:g}s reached")


def _lookup(mapping: Mapping[str, int] | None, asset: str) -> int | None:
    if mapping is None:
        return None
    wanted = validate.checksum(asset)
    for key, value in mapping.items():
        if validate.checksum(key) == wanted:
            return int(value)
    return 0  # a mapping that names assets gives the others no allowance
