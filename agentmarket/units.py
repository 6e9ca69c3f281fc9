"""Exact conversions between human amounts and the integers contracts take.

Every amount agentmarket accepts is an ``int`` in the asset's smallest unit (wei for ETH, 10**-6 USDC for a
6-decimals token). These helpers turn a human figure into that integer *exactly*: they go through
``Decimal`` and refuse a figure with more decimals than the asset has, instead of rounding (``2.7`` as a
float never silently becomes 2 wei, ``1.1 * 10**18`` never becomes 1100000000000000128).

    from agentmarket.units import ether, to_units
    alice.buy(bob, ether("0.01"))
    usdc_amount = to_units("12.5", 6)      # 12_500_000
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import InvalidAmount

WEI_PER_ETH = 10**18
"""Wei in one ether (an amount; :data:`agentmarket.types.ETH` is the asset address of native ETH)."""

__all__ = ["ether", "from_units", "gwei", "to_units"]


def to_units(value: str | int | float | Decimal, decimals: int) -> int:
    """``value`` (e.g. ``"12.5"``) times ``10**decimals``, exactly; raises :class:`InvalidAmount` when the
    figure has more than ``decimals`` decimal places or is not a finite number. Floats are read through
    their shortest repr (``2.7`` means 2.7), never through their binary expansion."""
    if isinstance(value, bool):
        raise InvalidAmount(f"amount {value!r} is a bool, not a number", param="value")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
        raise InvalidAmount(f"decimals must be an int in 0..77, got {decimals!r}", param="decimals")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidAmount(f"amount {value!r} is not a number", param="value") from None
    if not number.is_finite():
        raise InvalidAmount(f"amount {value!r} is not finite", param="value")
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(
            f"amount {value!r} has more than {decimals} decimal places (it would be rounded)", param="value"
        )
    return int(scaled)


def from_units(amount: int, decimals: int) -> Decimal:
    """The human figure of ``amount`` smallest units (``from_units(12_500_000, 6) == Decimal("12.5")``)."""
    return Decimal(int(amount)).scaleb(-decimals)


def ether(value: str | int | float | Decimal) -> int:
    """Wei in ``value`` ether (``ether("0.01") == 10**16``)."""
    return to_units(value, 18)


def gwei(value: str | int | float | Decimal) -> int:
    """Wei in ``value`` gwei."""
    return to_units(value, 9)
