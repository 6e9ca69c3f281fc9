"""Escrow deals: the Solidity ``Deal`` struct (:class:`DealTerms`, fields from the ABI), the deal states
and a deal as rebuilt from events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from .abi import bind, struct_spec
from .base import BPS, ETH, ZERO_ADDRESS, ZERO_HASH, to_bytes32

# -- escrow --------------------------------------------------------------------------------------------


class DealState(IntEnum):
    """Mirror of the Solidity ``DealState`` enum (values only increase during a deal's life)."""

    NONE = 0
    AWAITING_BOND = 1
    FUNDED = 2
    SUBMITTED = 3
    DISPUTED = 4
    ACCEPTED = 5
    FINALIZED = 6
    RESOLVED = 7
    REFUNDED = 8
    CANCELLED = 9
    REJECTED = 10

    @property
    def is_active(self) -> bool:
        return DealState.AWAITING_BOND <= self <= DealState.DISPUTED

    @property
    def is_terminal(self) -> bool:
        return self >= DealState.ACCEPTED


def protocol_fee(value: int, fee_bps: int) -> int:
    """The escrow's protocol fee on a payout of ``value``: rounded up (``DealLib.feeOn``), so splitting a
    payout into small pieces never rounds the fee away."""
    return -(-value * fee_bps // 10_000)


@dataclass(frozen=True)
class DealTerms:
    """The Solidity ``Deal`` struct: what the escrow hashes and what every call passes back."""

    buyer: str
    seller: str
    amount: int
    deliver_by: int
    asset: str = ETH
    arbiter: str = ZERO_ADDRESS
    bond: int = 0
    terms_hash: bytes = ZERO_HASH
    promised_by: int = 0
    review_window: int = 3600
    ruling_window: int = 86_400
    penalty_bps_per_hour: int = 0
    penalty_cap_bps: int = 0
    arbiter_fee_bps: int = 0
    default_seller_bps: int = BPS

    def __post_init__(self) -> None:
        for name in ("buyer", "seller", "asset", "arbiter"):
            object.__setattr__(self, name, to_checksum_address(getattr(self, name)))
        object.__setattr__(self, "terms_hash", to_bytes32(self.terms_hash))

    def as_tuple(self) -> tuple[Any, ...]:
        """ABI order, ready for a web3.py contract call."""
        return tuple(getattr(self, f.py) for f in DEAL_STRUCT.fields)

    @classmethod
    def from_abi(cls, value: Mapping[str, Any] | tuple[Any, ...] | list[Any]) -> DealTerms:
        """From a decoded event/call value (a dict keyed by Solidity names, or a tuple in ABI order)."""
        kwargs = DEAL_STRUCT.kwargs(value)
        kwargs["terms_hash"] = bytes(kwargs["terms_hash"])
        return cls(**kwargs)

    def hash(self) -> bytes:
        """keccak256(abi.encode(deal)), equal to the contract's ``hashDeal``."""
        return keccak(abi_encode([DEAL_ABI_TYPES], [self.as_tuple()]))

    @property
    def is_eth(self) -> bool:
        return self.asset == ETH

    def late_penalty(self, submitted_at: int) -> int:
        """The late-delivery penalty for a submission at ``submitted_at`` (same formula as the contract)."""
        if self.penalty_bps_per_hour == 0 or submitted_at <= self.promised_by:
            return 0
        penalty = self.amount * self.penalty_bps_per_hour * (submitted_at - self.promised_by) // (3600 * BPS)
        return min(penalty, self.amount * self.penalty_cap_bps // BPS)


DEAL_STRUCT = bind(DealTerms, struct_spec("AgentEscrow", "Deal"))
DEAL_ABI_TYPES = DEAL_STRUCT.abi_type


@dataclass(frozen=True)
class Settlement:
    """Where the money went when a deal (or part of it) settled."""

    to_seller: int = 0
    to_buyer: int = 0
    to_arbiter: int = 0
    fee: int = 0


@dataclass(frozen=True)
class Deal:
    """One escrow deal as rebuilt from events (and checked against the on-chain views)."""

    id: int
    terms: DealTerms
    state: DealState
    opened_by: str = ZERO_ADDRESS
    submitted_at: int = 0
    deliverable_hash: bytes | None = None
    buyer_cancelled: bool = False
    seller_cancelled: bool = False
    released: int = 0  # total released early (before fee)
    settlement: Settlement | None = None
    tx_hash: str | None = field(default=None, compare=False)  # the transaction that produced this view

    # conveniences
    @property
    def buyer(self) -> str:
        return self.terms.buyer

    @property
    def seller(self) -> str:
        return self.terms.seller

    @property
    def arbiter(self) -> str:
        return self.terms.arbiter

    @property
    def asset(self) -> str:
        return self.terms.asset

    @property
    def amount(self) -> int:
        return self.terms.amount

    @property
    def bond(self) -> int:
        return self.terms.bond

    @property
    def review_ends_at(self) -> int | None:
        """Last second the buyer can dispute; finalize opens one second later."""
        return self.submitted_at + self.terms.review_window if self.submitted_at else None

    @property
    def ruling_ends_at(self) -> int | None:
        """Last second the arbiter can rule; the default split opens one second later."""
        if not self.submitted_at:
            return None
        return self.submitted_at + self.terms.review_window + self.terms.ruling_window

    @property
    def locked(self) -> int:
        """What the escrow holds for this deal right now."""
        if self.state == DealState.AWAITING_BOND:
            return self.terms.amount
        if self.state.is_active:
            return self.terms.amount + self.terms.bond
        return 0

    def role_of(self, address: str) -> str | None:
        """``"buyer"``, ``"seller"``, ``"arbiter"`` or None."""
        address = to_checksum_address(address)
        for role in ("buyer", "seller", "arbiter"):
            if getattr(self.terms, role) == address and address != ZERO_ADDRESS:
                return role
        return None

    def with_(self, **changes: Any) -> Deal:
        return replace(self, **changes)
