"""Fast local signing of EIP-1559 transactions.

eth-account's ``sign_transaction`` validates and normalises a dict through several layers (~0.9 ms per
transaction here even with coincurve). The fast path builds the EIP-2718 type-2 payload itself (RLP of
the fixed field list), hashes it with keccak and signs with coincurve (libsecp256k1, low-s normalised),
which yields byte-identical raw transactions (a unit test checks against eth-account) about 5x faster.

Keys stay inside :class:`Signer` objects whose ``repr`` shows only the address.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from eth_hash.auto import keccak

coincurve: ModuleType | None
try:
    import coincurve
except ImportError:  # pragma: no cover - coincurve is a declared dependency
    coincurve = None


def _to_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        return bytes.fromhex(text)
    raise TypeError(f"cannot convert {type(value).__name__} to bytes")


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded


def _rlp_item(value: int | bytes) -> bytes:
    """RLP of an unsigned integer or a byte string (pyrlp's generic encoder infers types per call and
    was half the signing time)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("RLP integers are unsigned")
        value = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length(len(value), 0x80) + value


def rlp_list(items: list[Any]) -> bytes:
    """RLP of a flat list of ints/bytes, where an element may itself be such a list."""
    payload = b"".join(rlp_list(i) if isinstance(i, list) else _rlp_item(i) for i in items)
    return _rlp_length(len(payload), 0xC0) + payload


class Signer:
    """Signs type-2 transactions for one account. Holds the key; never prints it."""

    __slots__ = ("_account", "_sign", "address")

    def __init__(self, account: Any):
        self.address: str = account.address
        self._account = account
        key = getattr(account, "key", None)
        self._sign: Callable[..., bytes] | None
        if coincurve is not None and key is not None:
            private = coincurve.PrivateKey(bytes(key))
            self._sign = private.sign_recoverable
        else:  # an external signer (hardware, KMS): no key here, it signs through sign_transaction
            self._sign = None

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle key material by accident
        raise TypeError("Signer objects hold a private key and cannot be pickled")

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        """``(raw, tx_hash)`` of the signed EIP-1559 transaction ``tx`` (eth-account style keys)."""
        if self._sign is None or tx.get("accessList"):
            signed = self._account.sign_transaction(tx)
            return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
        fields = [
            int(tx["chainId"]),
            int(tx["nonce"]),
            int(tx["maxPriorityFeePerGas"]),
            int(tx["maxFeePerGas"]),
            int(tx["gas"]),
            _to_bytes(tx.get("to")),
            int(tx.get("value", 0)),
            _to_bytes(tx.get("data", b"")),
            [],
        ]
        digest = keccak(b"\x02" + rlp_list(fields))
        signature = self._sign(digest, hasher=None)
        fields += [
            signature[64],
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
        ]
        raw = b"\x02" + rlp_list(fields)
        return raw, "0x" + keccak(raw).hex()
