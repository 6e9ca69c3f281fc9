"""Payment channels: a channel as rebuilt from its events (its key's members from the ABI's
``ChannelKey``) and the payer's cumulative :class:`Voucher`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .abi import struct_spec

if TYPE_CHECKING:
    from ..vouchers import ChannelTerms

UINT256_MAX = 2**256 - 1
CHANNEL_KEY_STRUCT = struct_spec("PaymentChannels", "ChannelKey")
"""``ChannelKey(payer, payee, asset, salt)``: what identifies a channel; every member is a :class:`Channel` field."""


def bytes32(value: bytes | str) -> bytes:
    """Exactly 32 bytes from raw bytes or 0x-hex (:class:`~agentmarket.errors.InvalidInput` otherwise)."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise InvalidInput(f"expected 32 bytes, got {len(raw)}")
    return raw


class ChannelStatus(IntEnum):
    """Mirror of the Solidity enum ``ChannelStatus``."""

    NONE = 0
    OPEN = 1
    CLOSED = 2
    RECLAIMED = 3


@dataclass(frozen=True)
class Channel:
    """A channel as rebuilt from its events (equals the on-chain ``channel(id)`` view)."""

    id: bytes
    payer: str
    payee: str
    asset: str
    salt: int
    deposit: int
    claimed: int
    expiry: int
    status: ChannelStatus
    opened_block: int = 0

    def __repr__(self) -> str:
        return (
            f"Channel(id={self.id_hex}, payer={self.payer}, payee={self.payee}, asset={self.asset}, "
            f"deposit={self.deposit}, claimed={self.claimed}, expiry={self.expiry}, status={self.status.name})"
        )

    @property
    def id_hex(self) -> str:
        return "0x" + self.id.hex()

    @property
    def key(self) -> tuple[Any, ...]:
        """The ``ChannelKey`` tuple the contract takes (members in the ABI's order)."""
        return tuple(getattr(self, f.py) for f in CHANNEL_KEY_STRUCT.fields)

    @property
    def remaining(self) -> int:
        """Deposit not yet paid to the payee."""
        return self.deposit - self.claimed

    @property
    def is_open(self) -> bool:
        return self.status == ChannelStatus.OPEN

    def terms(self) -> ChannelTerms:
        """What a payee's :class:`~agentmarket.vouchers.VoucherStore` needs to accept vouchers."""
        from ..vouchers import ChannelTerms  # the store's module imports these types

        return ChannelTerms(
            self.id, self.payer, self.payee, self.asset, self.deposit, self.expiry, self.claimed
        )


@dataclass(frozen=True)
class Voucher:
    """A signed promise: the payer owes ``amount`` in total (cumulative) on channel ``channel_id``."""

    channel_id: bytes
    amount: int
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_id", bytes32(self.channel_id))
        object.__setattr__(self, "signature", bytes(self.signature))
        if not 0 <= int(self.amount) <= UINT256_MAX:
            raise InvalidInput(f"voucher amount {self.amount} is not a uint256")

    @property
    def channel_hex(self) -> str:
        return "0x" + self.channel_id.hex()

    def to_json(self) -> dict[str, Any]:
        return {
            "channelId": self.channel_hex,
            "amount": str(self.amount),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Voucher:
        try:
            return cls(bytes32(data["channelId"]), int(data["amount"]), bytes.fromhex(data["signature"][2:]))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput(f"malformed voucher JSON: {exc}") from None


if not set(CHANNEL_KEY_STRUCT.names) <= set(Channel.__dataclass_fields__):
    raise TypeError(f"Channel lacks ChannelKey members {CHANNEL_KEY_STRUCT.names}")
