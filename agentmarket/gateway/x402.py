"""x402 v2 message shapes for agentmarket's channel scheme, and their HTTP header encoding.

The three messages are x402 v2's (``specs/x402-specification-v2.md`` §5): :class:`PaymentRequired` (the
402 answer: ``x402Version``, ``error``, ``resource``, ``accepts``), :class:`PaymentPayload` (what the
client sends: ``x402Version``, ``accepted``, ``payload``) and :class:`SettlementResponse` (``success``,
``transaction``, ``network``, ``payer``, ``amount``, ``extra``). Over HTTP they travel base64-encoded JSON
in the ``PAYMENT-REQUIRED``, ``PAYMENT-SIGNATURE`` and ``PAYMENT-RESPONSE`` headers; a 402 also carries
the PaymentRequired JSON as its body.

The scheme is :data:`SCHEME` (``"agentmarket-channel"``), not x402's ``batch-settlement``: the voucher
semantics are the same (a cumulative ceiling = charged so far + this request's maximum; the server charges
the actual amount) but the channel contract, its EIP-712 types and its life cycle are agentmarket's
(docs/gateway.md lists every difference).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import InvalidInput
from ..types import Voucher

X402_VERSION = 2
SCHEME = "agentmarket-channel"
HEADER_REQUIRED = "PAYMENT-REQUIRED"
HEADER_SIGNATURE = "PAYMENT-SIGNATURE"
HEADER_RESPONSE = "PAYMENT-RESPONSE"
VOUCHER_TYPE = "Voucher(bytes32 channelId,uint256 amount)"

# Error codes of the 402 body (``error``), after batch-settlement's names where one exists.
E_REQUIRED = "payment_required"
E_MALFORMED = "invalid_payload"
E_SCHEME = "unsupported_scheme"
E_NETWORK = "invalid_network"
E_CHANNEL_NOT_FOUND = "invalid_agentmarket_channel_channel_not_found"
E_CHANNEL_MISMATCH = "invalid_agentmarket_channel_channel_mismatch"
E_CHANNEL_EXPIRING = "invalid_agentmarket_channel_channel_expiring"
E_SIGNATURE = "invalid_agentmarket_channel_signature"
E_EXCEEDS_BALANCE = "invalid_agentmarket_channel_cumulative_exceeds_balance"
E_MISMATCH = "invalid_agentmarket_channel_cumulative_amount_mismatch"
E_BUSY = "invalid_agentmarket_channel_channel_busy"
E_CLOSE_PENDING = "invalid_agentmarket_channel_close_pending"


def network_of(chain_id: int) -> str:
    """CAIP-2 network id of an EVM chain (``eip155:<chainId>``)."""
    return f"eip155:{int(chain_id)}"


def chain_id_of(network: str) -> int:
    """The chain id in a CAIP-2 ``eip155:<id>`` network id."""
    prefix, _, rest = str(network).partition(":")
    if prefix != "eip155" or not rest.isdigit():
        raise InvalidInput(f"network {network!r} is not an eip155:<chainId> id")
    return int(rest)


def encode_header(message: dict[str, Any]) -> str:
    """Base64 of the compact JSON of ``message`` (the x402 v2 HTTP header encoding)."""
    return base64.b64encode(compact_json(message).encode()).decode("ascii")


def compact_json(value: Any) -> str:
    """``value`` as JSON without spaces (what the headers carry)."""
    return json.dumps(value, separators=(",", ":"))


def decode_header(value: str | bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_header`; raises :class:`InvalidInput` on anything else."""
    try:
        raw = base64.b64decode(value, validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"payment header is not base64 JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise InvalidInput("payment header JSON is not an object")
    return data


@dataclass(frozen=True)
class PaymentRequirements:
    """One entry of ``accepts``: how to pay for one request of a route.

    ``amount`` is the most this request can cost (x402's per-request maximum): ``unit_price * max_units``.
    ``extra`` carries the channel terms: ``channelContract``, ``unit``, ``unitPrice``, ``maxUnits``, the
    EIP-712 ``name``/``version``/``voucherType``, ``minDeposit``, ``minExpirySeconds`` and, in a corrective
    402, ``channelState``/``voucherState``.
    """

    network: str
    amount: int
    asset: str
    pay_to: str
    extra: dict[str, Any]
    scheme: str = SCHEME
    max_timeout_seconds: int = 60

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "network": self.network,
            "amount": str(self.amount),
            "asset": self.asset,
            "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": self.extra,
        }

    @cached_property
    def json_text(self) -> str:
        """:meth:`to_json` as compact JSON, encoded once (a client sends the same requirements with every
        voucher; ``extra`` must not be mutated after the first use)."""
        return compact_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentRequirements:
        try:
            return cls(
                network=str(data["network"]),
                amount=int(data["amount"]),
                asset=str(data["asset"]),
                pay_to=str(data["payTo"]),
                extra=dict(data.get("extra") or {}),
                scheme=str(data["scheme"]),
                max_timeout_seconds=int(data.get("maxTimeoutSeconds", 60)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed PaymentRequirements: {exc!r}") from None

    @property
    def chain_id(self) -> int:
        return chain_id_of(self.network)

    @property
    def contract(self) -> str:
        return str(self.extra["channelContract"])

    @property
    def unit_price(self) -> int:
        return int(self.extra["unitPrice"])


@dataclass(frozen=True)
class PaymentRequired:
    """The 402 answer: why payment is required and the ways to pay (``accepts``)."""

    resource: dict[str, Any]
    accepts: list[PaymentRequirements]
    error: str = E_REQUIRED
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "x402Version": X402_VERSION,
            "error": self.error,
            "resource": self.resource,
            "accepts": [a.to_json() for a in self.accepts],
            "extensions": {},
        }
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentRequired:
        try:
            return cls(
                resource=dict(data.get("resource") or {}),
                accepts=[PaymentRequirements.from_json(a) for a in data["accepts"]],
                error=str(data.get("error", "")),
                message=str(data.get("message", "")),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed PaymentRequired: {exc!r}") from None

    def ours(self) -> PaymentRequirements | None:
        """The entry of our scheme, if the server offers it."""
        return next((a for a in self.accepts if a.scheme == SCHEME), None)


@dataclass(frozen=True)
class ChannelRef:
    """The channel key a voucher is for (agentmarket's ``ChannelKey`` plus its id)."""

    channel_id: bytes
    payer: str
    payee: str
    asset: str
    salt: int

    def to_json(self) -> dict[str, Any]:
        return {
            "channelId": "0x" + self.channel_id.hex(),
            "payer": self.payer,
            "payee": self.payee,
            "asset": self.asset,
            "salt": str(self.salt),
        }

    @cached_property
    def json_text(self) -> str:
        """:meth:`to_json` as compact JSON, encoded once."""
        return compact_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelRef:
        try:
            cid = bytes.fromhex(str(data["channelId"]).removeprefix("0x"))
            if len(cid) != 32:
                raise ValueError("channelId is not 32 bytes")
            return cls(cid, str(data["payer"]), str(data["payee"]), str(data["asset"]), int(data["salt"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed channel: {exc!r}") from None


@dataclass(frozen=True)
class PaymentPayload:
    """What the client sends in ``PAYMENT-SIGNATURE``: the requirements it accepted and a payload of
    ``type`` ``"voucher"`` (pay for this request) or ``"close"`` (end the channel at ``voucher.amount``,
    a zero-charge voucher equal to the charged total; the server closes on chain and skips the handler)."""

    accepted: PaymentRequirements
    channel: ChannelRef
    voucher: Voucher
    type: str = "voucher"
    resource: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "x402Version": X402_VERSION,
            "resource": self.resource,
            "accepted": self.accepted.to_json(),
            "payload": {
                "type": self.type,
                "channel": self.channel.to_json(),
                "voucher": {
                    "channelId": self.voucher.channel_hex,
                    "maxClaimableAmount": str(self.voucher.amount),
                    "signature": "0x" + self.voucher.signature.hex(),
                },
            },
        }

    def header(self) -> str:
        """The ``PAYMENT-SIGNATURE`` value: :meth:`to_json` encoded, with the requirements' and the
        channel's JSON encoded once per session rather than per request (the same text ``encode_header``
        gives: tests check it)."""
        v = self.voucher
        text = (
            f'{{"x402Version":{X402_VERSION},"resource":{compact_json(self.resource)},'
            f'"accepted":{self.accepted.json_text},"payload":{{"type":{compact_json(self.type)},'
            f'"channel":{self.channel.json_text},"voucher":{{"channelId":"{v.channel_hex}",'
            f'"maxClaimableAmount":"{v.amount}","signature":"0x{v.signature.hex()}"}}}}}}'
        )
        return base64.b64encode(text.encode()).decode("ascii")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PaymentPayload:
        try:
            if int(data.get("x402Version", 0)) != X402_VERSION:
                raise InvalidInput(f"x402Version {data.get('x402Version')!r} is not {X402_VERSION}")
            payload = data["payload"]
            v = payload["voucher"]
            voucher = Voucher.from_json(
                {"channelId": v["channelId"], "amount": v["maxClaimableAmount"], "signature": v["signature"]}
            )
            kind = str(payload.get("type", "voucher"))
            if kind not in ("voucher", "close"):
                raise InvalidInput(f"payload type {kind!r} is not voucher or close")
            return cls(
                accepted=PaymentRequirements.from_json(data["accepted"]),
                channel=ChannelRef.from_json(payload["channel"]),
                voucher=voucher,
                type=kind,
                resource=dict(data.get("resource") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"malformed PaymentPayload: {exc!r}") from None

    @classmethod
    def from_header(cls, value: str | bytes) -> PaymentPayload:
        return cls.from_json(decode_header(value))


def paid_response_header(
    network: str,
    payer: str,
    charge: int,
    channel_id: bytes,
    balance: int,
    claimed: int,
    charged: int,
    signed: int,
) -> bytes:
    """The ``PAYMENT-RESPONSE`` of a paid request, base64 bytes: exactly ``SettlementResponse(True, network,
    payer, extra={"chargedAmount": ..., "channelState": {...}}).header()`` (tests check it), written
    directly because every paid call sends one. ``network`` and ``payer`` are the gateway's own
    ``eip155:<id>`` and checksummed address (nothing to escape); the rest are integers and hex."""
    text = (
        f'{{"success":true,"transaction":"","network":"{network}","payer":"{payer}","amount":"",'
        f'"extra":{{"chargedAmount":"{charge}","channelState":{{"channelId":"0x{channel_id.hex()}",'
        f'"balance":"{balance}","totalClaimed":"{claimed}","chargedCumulativeAmount":"{charged}",'
        f'"signedMaxClaimable":"{signed}"}}}}}}'
    )
    return base64.b64encode(text.encode())


@dataclass(frozen=True)
class SettlementResponse:
    """``PAYMENT-RESPONSE``: for a paid request ``transaction`` and ``amount`` are empty (nothing moved on
    chain) and ``extra`` holds ``chargedAmount`` and ``channelState``; for a close they are the close
    transaction and the amount refunded to the payer."""

    success: bool
    network: str
    payer: str
    transaction: str = ""
    amount: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "success": self.success,
            "transaction": self.transaction,
            "network": self.network,
            "payer": self.payer,
            "amount": self.amount,
            "extra": self.extra,
        }
        if self.error_reason:
            out["errorReason"] = self.error_reason
        return out

    def header(self) -> str:
        return encode_header(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SettlementResponse:
        try:
            return cls(
                success=bool(data["success"]),
                network=str(data["network"]),
                payer=str(data.get("payer", "")),
                transaction=str(data.get("transaction", "")),
                amount=str(data.get("amount", "")),
                extra=dict(data.get("extra") or {}),
                error_reason=str(data.get("errorReason", "")),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed SettlementResponse: {exc!r}") from None

    @classmethod
    def from_header(cls, value: str | bytes) -> SettlementResponse:
        return cls.from_json(decode_header(value))
