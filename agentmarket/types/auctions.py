"""Auctions: the four kinds, the Solidity ``DealTemplate`` a sale settles into (fields from the ABI), and
an auction and its bids as rebuilt from events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from .. import validate
from ..errors import InvalidInput
from .abi import bind, struct_spec
from .base import BPS, ETH, ZERO_ADDRESS


class AuctionKind(str, Enum):
    """The four auction singletons, by contract name."""

    ENGLISH = "EnglishAuction"
    DUTCH = "DutchAuction"
    SEALED = "SealedBidAuction"
    PROCUREMENT = "ProcurementAuction"


class AuctionStatus(IntEnum):
    """Mirror of the Solidity ``AuctionStatus`` enum."""

    NONE = 0
    ACTIVE = 1
    SETTLED = 2
    NO_SALE = 3
    CANCELLED = 4


@dataclass(frozen=True)
class DealTemplate:
    """The Solidity ``DealTemplate``: the escrow terms a sale settles into (deadlines relative to settlement)."""

    creator: str
    delivery_delay: int
    asset: str = ETH
    arbiter: str = ZERO_ADDRESS
    bond: int = 0
    terms_hash: bytes = b"\x00" * 32
    promise_delay: int = 0
    review_window: int = 3600
    ruling_window: int = 86_400
    penalty_bps_per_hour: int = 0
    penalty_cap_bps: int = 0
    arbiter_fee_bps: int = 0
    default_seller_bps: int = BPS

    def __post_init__(self) -> None:
        for name in ("creator", "asset", "arbiter"):
            object.__setattr__(self, name, validate.address(getattr(self, name), name))
        object.__setattr__(self, "terms_hash", validate.bytes32(self.terms_hash, "terms_hash"))
        for name in ("delivery_delay", "promise_delay", "review_window", "ruling_window"):
            validate.integer(getattr(self, name), name, maximum=2**40, what="seconds (int)")
        validate.amount(self.bond, "bond")
        # types only here: ranges are validate()'s (tests build out-of-range templates on purpose)
        for name in ("penalty_bps_per_hour", "penalty_cap_bps", "arbiter_fee_bps", "default_seller_bps"):
            validate.integer(getattr(self, name), name, maximum=2**32, what="basis points (int)")

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI order, ready for a web3.py contract call."""
        return tuple(getattr(self, f.py) for f in TEMPLATE_STRUCT.fields)

    @classmethod
    def from_abi(cls, value: Mapping[str, Any] | Sequence[Any]) -> DealTemplate:
        """From a decoded event/call value (a dict keyed by Solidity names, or a tuple in ABI order)."""
        kwargs = TEMPLATE_STRUCT.kwargs(value)
        kwargs["terms_hash"] = bytes(kwargs["terms_hash"])
        return cls(**kwargs)

    def hash(self) -> bytes:
        """keccak256(abi.encode(template)), equal to the contracts' ``hashTemplate``."""
        return keccak(abi_encode([TEMPLATE_ABI_TYPES], [self.as_tuple()]))

    def validate(self) -> None:
        """The checks the contracts make at creation."""
        if self.delivery_delay <= 0 or self.promise_delay > self.delivery_delay:
            raise InvalidInput(
                f"need 0 < delivery_delay and promise_delay <= delivery_delay "
                f"(got {self.promise_delay}, {self.delivery_delay})"
            )
        for name in ("penalty_cap_bps", "arbiter_fee_bps", "default_seller_bps"):
            if not 0 <= getattr(self, name) <= BPS:
                raise InvalidInput(f"{name}={getattr(self, name)} outside 0..{BPS}")
        if self.arbiter == self.creator:
            raise InvalidInput("the arbiter cannot be the auction's creator")


TEMPLATE_STRUCT = bind(DealTemplate, struct_spec("EnglishAuction", "DealTemplate"))
TEMPLATE_ABI_TYPES = TEMPLATE_STRUCT.abi_type


@dataclass(frozen=True)
class Bid:
    """One bid, commitment, reveal or procurement offer, as read from an event."""

    auction_id: int
    bidder: str
    amount: int = 0  # English/Dutch/sealed: the bid; procurement: the price
    delivery_seconds: int = 0  # procurement only
    bond: int = 0  # procurement: bond; sealed: deposit
    commitment: bytes | None = None
    revealed: bool = False
    eligible: bool = True
    score: int = 0  # procurement only
    block: int = 0
    tx_hash: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Auction:
    """One auction rebuilt from events. Fields that do not apply to its kind keep their defaults."""

    kind: AuctionKind
    id: int
    contract: str
    creator: str
    terms: DealTemplate
    status: AuctionStatus = AuctionStatus.ACTIVE
    # English
    reserve: int = 0
    start_time: int = 0
    end_time: int = 0  # English/Dutch: end; sealed: commit end; procurement: bid end
    extension: int = 0
    min_increment_bps: int = 0
    # Dutch
    start_price: int = 0
    floor_price: int = 0
    # sealed / procurement
    reveal_end: int = 0
    penalty_bps: int = 0
    vickrey: bool = False
    sealed_bids: bool = False
    # procurement
    budget: int = 0
    price_weight: int = 0
    time_weight: int = 0
    max_delivery: int = 0
    # outcome so far
    leader: str = ZERO_ADDRESS  # high bidder / best provider
    leading_amount: int = 0  # high bid / best price
    second_amount: int = 0  # sealed: second-highest eligible bid
    bids: tuple[Bid, ...] = ()
    winner: str = ZERO_ADDRESS
    price: int = 0
    deal_id: int = 0

    @property
    def asset(self) -> str:
        return self.terms.asset

    @property
    def ends_at(self) -> int:
        """Last second anything can be bid/revealed; settle opens one second later."""
        return (
            self.reveal_end
            if self.kind in (AuctionKind.SEALED, AuctionKind.PROCUREMENT)
            and (self.kind == AuctionKind.SEALED or self.sealed_bids)
            else self.end_time
        )

    def minimum_bid(self) -> int:
        """English: the smallest bid that leads now (same formula as the contract)."""
        if self.leader == ZERO_ADDRESS:
            return self.reserve
        step = self.leading_amount * self.min_increment_bps // BPS
        return self.leading_amount + (step or 1)

    def price_at(self, timestamp: int) -> int:
        """Dutch: the price a purchase in a block at ``timestamp`` pays (same integer maths as the contract)."""
        if timestamp <= self.start_time:
            return self.start_price
        if timestamp >= self.end_time:
            return self.floor_price
        return self.start_price - (self.start_price - self.floor_price) * (timestamp - self.start_time) // (
            self.end_time - self.start_time
        )

    def clearing_price(self) -> int:
        """Sealed: what the current leader would pay (Vickrey: max(second, reserve))."""
        if self.leader == ZERO_ADDRESS:
            return 0
        return max(self.second_amount, self.reserve) if self.vickrey else self.leading_amount

    def score(self, price: int, delivery_seconds: int) -> int:
        """Procurement: priceWeight * price + timeWeight * delivery (lower wins)."""
        return self.price_weight * price + self.time_weight * delivery_seconds
