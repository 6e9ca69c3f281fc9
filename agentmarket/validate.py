"""Argument checks shared by every public entry point, written once.

Each check returns the normalised value (an ``int``, a checksummed address, 32 bytes) or raises an
:class:`~agentmarket.errors.InvalidInput` subclass whose ``param`` names the argument. They run before
anything is built, signed or sent, so a refused call costs no gas and consumes no nonce.

Amounts are exact integers in the asset's smallest unit. ``bool`` (``True`` would lock 1 wei) and
``float`` (``2.7`` would lock 2 wei, ``1.1 * 10**18`` is 1100000000000000128) are refused with a pointer
to :mod:`agentmarket.units`; a ``Decimal`` is accepted only when integral; numeric strings are refused
(``"1000"`` is more often a mistake for ``1000 * 10**18`` than for 1000 wei).

Addresses are 0x + 40 hex digits; an all-lower or all-upper address is accepted (no checksum to check), a
mixed-case one must match its EIP-55 checksum (a typo in one character is caught). Assets other than ETH
(the zero address) must hold contract code: checked once per chain connection and address, then cached.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from .errors import InvalidAddress, InvalidAmount, InvalidInput, NotAContract

__all__ = [
    "UINT256_MAX",
    "address",
    "amount",
    "asset",
    "bps",
    "bytes32",
    "integer",
    "require_code",
]

UINT256_MAX = 2**256 - 1
ETH = "0x0000000000000000000000000000000000000000"
_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UNITS_HINT = "use an int in the smallest unit, e.g. agentmarket.units.ether('2.7') or to_units('12.5', 6)"


def integer(
    value: Any,
    param: str,
    *,
    minimum: int = 0,
    maximum: int = UINT256_MAX,
    what: str = "an integer",
) -> int:
    """``value`` as an ``int`` in ``minimum..maximum``; bool, float, str and fractional Decimal refused."""
    if isinstance(value, bool):
        raise InvalidAmount(f"{param}={value!r} is a bool, not {what} ({_UNITS_HINT})", param=param)
    if isinstance(value, float):
        raise InvalidAmount(f"{param}={value!r} is a float, not {what}: {_UNITS_HINT}", param=param)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise InvalidAmount(f"{param}={value!r} is not integral: {_UNITS_HINT}", param=param)
        value = int(value)
    elif isinstance(value, str):
        raise InvalidAmount(
            f"{param}={value!r} is a string; pass an int (numeric strings are refused: {_UNITS_HINT})",
            param=param,
        )
    elif not isinstance(value, int):
        raise InvalidAmount(f"{param} must be {what}, got {type(value).__name__}", param=param)
    number = int(value)
    if not minimum <= number <= maximum:
        bound = f"at least {minimum}" if number < minimum else f"at most {maximum}"
        raise InvalidAmount(f"{param}={number} must be {bound}", param=param)
    return number


def amount(value: Any, param: str = "amount", *, positive: bool = False, maximum: int = UINT256_MAX) -> int:
    """An amount in the asset's smallest unit (``positive``: at least 1)."""
    return integer(value, param, minimum=1 if positive else 0, maximum=maximum, what="an int amount")


def bps(value: Any, param: str, *, maximum: int = 10_000) -> int:
    """Basis points in ``0..maximum`` (10,000 = 100%)."""
    return integer(value, param, maximum=maximum, what="basis points (int)")


@functools.lru_cache(maxsize=65_536)
def checksum(raw: str) -> ChecksumAddress:
    """EIP-55 form of a hex address, cached: a keccak per call was a tenth of the simulator's Python time
    at 1,000 agents (mandate checks, offer building and signing look up the same addresses)."""
    return to_checksum_address(raw)


def address(value: Any, param: str, *, nonzero: bool = False) -> ChecksumAddress:
    """A checksummed address from a hex string, or from an object with an ``address`` (Agent, account,
    contract). Mixed case must be a valid EIP-55 checksum; ``nonzero`` refuses the zero address."""
    raw = getattr(value, "address", value) if not isinstance(value, (str, bytes)) else value
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 20:
        raw = "0x" + bytes(raw).hex()
    if not isinstance(raw, str):
        raise InvalidAddress(f"{param} must be an address string, got {type(value).__name__}", param=param)
    if not _HEX_ADDRESS.fullmatch(raw):
        shown = raw if len(raw) <= 50 else raw[:47] + "..."
        raise InvalidAddress(f"{param}={shown!r} is not an address (0x + 40 hex digits)", param=param)
    body = raw[2:]
    checksummed = checksum(raw)
    if body != body.lower() and body != body.upper() and raw != checksummed:
        raise InvalidAddress(
            f"{param}={raw} fails its EIP-55 checksum (a mistyped character?); expected {checksummed}",
            param=param,
        )
    if nonzero and checksummed == ETH:
        raise InvalidAddress(f"{param} must not be the zero address", param=param)
    return checksummed


# w3 connection -> addresses known to hold code; a contract's code does not go away in normal operation.
_CODE: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_CODE_LOCK = threading.Lock()


def require_code(w3: Any, value: str, param: str, *, what: str = "a contract") -> str:
    """``value`` (already checksummed) if it holds code on ``w3``'s chain, else :class:`NotAContract`.
    A positive answer is cached per connection."""
    with _CODE_LOCK:
        known = _CODE.setdefault(w3, set())
        if value in known:
            return value
    if not bytes(w3.eth.get_code(value)):
        raise NotAContract(f"{param}={value} has no contract code on this chain (not {what})", param=param)
    with _CODE_LOCK:
        known.add(value)
    return value


def asset(w3: Any, value: Any, param: str = "asset") -> str:
    """An asset: ETH (the zero address) or an address holding contract code (an ERC-20 token).
    Token symbols (``"USDC"``) are refused: pass the token's address."""
    if isinstance(value, str) and not value.startswith("0x"):
        raise InvalidAddress(
            f"{param}={value!r} is not an address: assets are token contract addresses "
            "(ETH is agentmarket.types.ETH, the zero address)",
            param=param,
        )
    checked = address(value, param)
    return checked if checked == ETH else require_code(w3, checked, param, what="an ERC-20 token")


def bytes32(value: Any, param: str, *, allow_none: bool = True) -> bytes:
    """32 bytes from raw bytes (right-padded when shorter), a 0x-hex string, or None (zero)."""
    if value is None and allow_none:
        return b"\x00" * 32
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidInput(f"{param}={value!r} is not hex", param=param) from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise InvalidInput(
            f"{param} must be bytes or a 0x-hex string, got {type(value).__name__}", param=param
        )
    if len(raw) > 32:
        raise InvalidInput(f"{param} is {len(raw)} bytes; at most 32 fit", param=param)
    return raw.ljust(32, b"\x00")


def optional(check: Callable[..., Any], value: Any, *args: Any, **kwargs: Any) -> Any:
    """``check(value, ...)`` unless ``value`` is None."""
    return None if value is None else check(value, *args, **kwargs)
