"""Offers: the Solidity ``Offer`` struct (fields, order and types from the OfferBook ABI), its EIP-712
hashing and JSON form, and the :class:`Side` enum.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from eth_utils import keccak, to_checksum_address

from ..eip712 import Domain, StaticStruct, domain_separator, fast_keccak, typed_data
from ..errors import InvalidInput
from .abi import bind, struct_spec
from .base import BPS, ETH, ZERO_ADDRESS, ZERO_HASH, to_bytes32

UINT128_MAX = 2**128 - 1
#: Cancel slots per maker and counter (``OfferLib.CANCEL_SLOTS``): an offer's slot is ``salt % CANCEL_SLOTS``,
#: and ``OfferBook.cancel`` kills every offer of its maker with the same counter and slot.
CANCEL_SLOTS = 128


class Side(IntEnum):
    """Mirror of the Solidity ``Side`` enum: which side of the trade the maker is on."""

    SELL = 0  # the maker sells; the taker buys and pays the price; the maker posts the bond
    BUY = 1  # the maker requests to buy and pays the price; the taker sells and posts the bond


@lru_cache(maxsize=65_536)
def _checksum(address: str) -> str:
    """EIP-55 checksum (cached: it is a keccak per call, the hottest step of building an offer)."""
    return to_checksum_address(address)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _word(kind: str, value: Any) -> bytes:
    if kind == "address":
        return b"\x00" * 12 + bytes.fromhex(value[2:])
    if kind == "bytes32":
        return bytes(value)
    return int(value).to_bytes(32, "big")


@dataclass(frozen=True)
class Offer:
    """A multi-issue offer (mirror of the Solidity ``Offer`` struct). Amounts in the asset's smallest unit,
    durations in seconds, ``expiry`` a unix timestamp (inclusive)."""

    maker: str
    side: Side
    resource_id: bytes
    unit_price: int
    quantity: int
    expiry: int
    asset: str = ETH
    terms_hash: bytes = ZERO_HASH
    min_fill: int = 1
    bond_per_unit: int = 0
    delivery_seconds: int = 3600
    grace_seconds: int = 3600
    review_window: int = 3600
    ruling_window: int = 86_400
    penalty_bps_per_hour: int = 0
    penalty_cap_bps: int = 0
    arbiter: str = ZERO_ADDRESS
    arbiter_fee_bps: int = 0
    default_seller_bps: int = BPS
    taker: str = ZERO_ADDRESS
    salt: int = 0
    counter: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            for name in ("maker", "asset", "arbiter", "taker"):
                value = getattr(self, name)
                set_(self, name, _checksum(value if isinstance(value, str) else to_checksum_address(value)))
            set_(self, "side", Side(int(self.side)))
            set_(self, "resource_id", to_bytes32(self.resource_id))
            set_(self, "terms_hash", to_bytes32(self.terms_hash))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"malformed offer: {exc}") from None
        for py, kind, bound in _UINT_BOUNDS:
            value = getattr(self, py)
            if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput(f"{py} must be an integer, got {type(value).__name__}")
            if not 0 <= value < bound:
                raise InvalidInput(f"{py}={value} does not fit {kind}")

    # -- encodings -------------------------------------------------------------------------------

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI order, ready for a web3.py contract call."""
        return tuple(
            int(v) if isinstance(v, Side) else v for v in (getattr(self, py) for py, _, _ in _FIELDS)
        )

    @classmethod
    def from_abi(cls, value: Mapping[str, Any] | Sequence[Any]) -> Offer:
        """From a decoded event/call value (dict keyed by Solidity names, or a tuple in ABI order)."""
        return cls(**OFFER_SPEC.kwargs(value))

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` member (Solidity names)."""
        return {
            sol: (int(v) if isinstance(v, Side) else v)
            for (py, sol, _), v in zip(_FIELDS, (getattr(self, py) for py, _, _ in _FIELDS), strict=True)
        }

    def fill_terms_hash(self, start: int, quantity: int) -> bytes:
        """termsHash of the deal a fill of ``quantity`` units from unit ``start`` opens:
        keccak256(abi.encode(termsHash, start, quantity)) (the contract's ``OfferLib.fillTermsHash``)."""
        return keccak(self.terms_hash + int(start).to_bytes(32, "big") + int(quantity).to_bytes(32, "big"))

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full typed-data JSON (``eth_signTypedData_v4``) a wallet would sign."""
        return typed_data(OFFER_STRUCT, domain, self.message())

    def struct_hash(self) -> bytes:
        """EIP-712 hashStruct(offer) = keccak256(typehash ‖ 22 words), equal to ``OfferLib.structHash``
        (computed once per offer: the dataclass is frozen)."""
        cached = self.__dict__.get("_struct_hash")
        if cached is None:
            words = b"".join(_word(kind, getattr(self, py)) for py, _, kind in _FIELDS)
            cached = fast_keccak(OFFER_TYPEHASH + words)
            object.__setattr__(self, "_struct_hash", cached)
        return cached

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest (what is signed; the OfferBook's key for the offer's fill status)."""
        return fast_keccak(b"\x19\x01" + domain_separator(domain) + self.struct_hash())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: integers as decimal strings (no precision loss in other languages), bytes as hex."""
        out: dict[str, Any] = {}
        for py, sol, kind in _FIELDS:
            value = getattr(self, py)
            if kind == "bytes32":
                out[sol] = _hex(value)
            elif kind == "address":
                out[sol] = value
            else:
                out[sol] = str(int(value))
        return out

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Offer:
        """Inverse of :meth:`to_dict` (accepts Solidity or Python field names, ints or decimal strings)."""
        kwargs: dict[str, Any] = {}
        for py, sol, kind in _FIELDS:
            raw = value[sol] if sol in value else value.get(py)
            if raw is None:
                continue
            if kind.startswith("uint"):
                try:
                    raw = int(raw, 0) if isinstance(raw, str) else int(raw)
                except ValueError:
                    raise InvalidInput(f"{sol}={raw!r} is not an integer") from None
            kwargs[py] = raw
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise InvalidInput(f"incomplete offer: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Offer:
        return cls.from_dict(json.loads(text))

    # -- economics ---------------------------------------------------------------------------------

    @property
    def cancel_slot(self) -> int:
        """The cancel slot of this offer (the low 7 bits of its salt): cancelling it cancels the slot, so
        every offer of the same maker, counter and slot dies with it."""
        return self.salt % CANCEL_SLOTS

    @property
    def is_eth(self) -> bool:
        return self.asset == ETH

    def price(self, quantity: int | None = None) -> int:
        """Price of ``quantity`` units (default: the whole offer)."""
        return self.unit_price * (self.quantity if quantity is None else int(quantity))

    def bond(self, quantity: int | None = None) -> int:
        """Seller bond for ``quantity`` units (default: the whole offer)."""
        return self.bond_per_unit * (self.quantity if quantity is None else int(quantity))

    def taker_leg(self, quantity: int) -> int:
        """What the taker pays for a fill of ``quantity``: the price (sell offer) or the bond (buy request)."""
        return self.price(quantity) if self.side == Side.SELL else self.bond(quantity)

    def maker_leg(self, quantity: int) -> int:
        """What the maker pays for a fill of ``quantity``: the bond (sell offer) or the price (buy request)."""
        return self.bond(quantity) if self.side == Side.SELL else self.price(quantity)

    def parties(self, taker: str) -> tuple[str, str]:
        """(buyer, seller) of a fill by ``taker``."""
        taker = to_checksum_address(taker)
        return (taker, self.maker) if self.side == Side.SELL else (self.maker, taker)

    def validate(self) -> None:
        """Check the terms can open an escrow deal (raises :class:`InvalidInput`)."""
        if self.quantity == 0:
            raise InvalidInput("quantity must be positive")
        if self.min_fill > self.quantity:
            raise InvalidInput(f"min_fill {self.min_fill} exceeds quantity {self.quantity}")
        if self.unit_price == 0:
            raise InvalidInput("unit_price must be positive")
        if self.delivery_seconds + self.grace_seconds == 0:
            raise InvalidInput(
                "delivery_seconds + grace_seconds must be positive (the deal needs a deadline)"
            )
        for name in ("penalty_cap_bps", "arbiter_fee_bps", "default_seller_bps"):
            if getattr(self, name) > BPS:
                raise InvalidInput(f"{name}={getattr(self, name)} above 10000")
        if self.price() > UINT128_MAX or self.bond() > UINT128_MAX:
            raise InvalidInput("price or bond of the whole quantity exceeds uint128")
        if self.maker == ZERO_ADDRESS:
            raise InvalidInput("maker must be set")
        if self.arbiter != ZERO_ADDRESS and self.arbiter in (self.maker, self.taker):
            raise InvalidInput("the arbiter must differ from the maker and the designated taker")
        if self.taker == self.maker:
            raise InvalidInput("the designated taker cannot be the maker")


OFFER_SPEC = bind(Offer, struct_spec("OfferBook", "Offer"))
# (python name, solidity name, solidity type), in struct order
_FIELDS: tuple[tuple[str, str, str], ...] = tuple((f.py, f.sol, f.abi_type) for f in OFFER_SPEC.fields)
# (python name, solidity type, 2**bits) of the uint members wider than the enum (checked per offer)
_UINT_BOUNDS = tuple(
    (py, kind, 2 ** int(kind[4:])) for py, _, kind in _FIELDS if kind.startswith("uint") and kind != "uint8"
)
OFFER_STRUCT = StaticStruct("Offer", tuple((sol, kind) for _, sol, kind in _FIELDS))
OFFER_TYPEHASH = OFFER_STRUCT.typehash
