"""Values every domain type shares: the native-ETH asset address, basis points, time and bytes32
conversions, content hashes and resource ids.

Amounts are integers in the asset's smallest unit; times are unix seconds (UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eth_utils import keccak

ETH = "0x0000000000000000000000000000000000000000"
"""The asset address that stands for native ETH."""
ZERO_ADDRESS = ETH
ZERO_HASH = b"\x00" * 32
BPS = 10_000


# -- shared helpers -----------------------------------------------------------------------------------


def to_timestamp(value: float | datetime | timedelta, now: int | None = None) -> int:
    """An absolute unix timestamp from seconds (absolute), a ``datetime`` (naive = UTC) or a
    ``timedelta`` (relative to ``now``, the chain's time)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, timedelta):
        if now is None:
            raise ValueError("a relative deadline (timedelta) needs the chain's current time")
        return int(now + value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected seconds, datetime or timedelta, got {type(value).__name__}")
    return int(value)


def to_seconds(value: float | timedelta) -> int:
    """A duration in whole seconds from seconds or a ``timedelta``."""
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected seconds or timedelta, got {type(value).__name__}")
    return int(value)


def to_bytes32(value: bytes | str | None) -> bytes:
    """32 bytes from raw bytes (right-padded if shorter), a 0x-hex string, or None (zero)."""
    if value is None:
        return ZERO_HASH
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) > 32:
        raise ValueError(f"{len(raw)} bytes do not fit in bytes32")
    return raw.ljust(32, b"\x00")


def content_hash(data: bytes | str) -> bytes:
    """keccak256 of a deliverable or spec (what goes on chain instead of the content)."""
    return keccak(data.encode() if isinstance(data, str) else data)


def resource_id(name: str | bytes) -> bytes:
    """The bytes32 id of a resource, the one definition every client, offer and mandate band uses.

    A 32-byte value (raw, or ``0x`` + 64 hex digits) is already an id and is returned as is; any other
    name (text, or bytes of another length) is hashed: ``keccak256(name)``. So ``resource_id("gpu-hour")
    == resource_id(b"gpu-hour")``, and an id never changes when passed through again.
    """
    if isinstance(name, (bytes, bytearray)):
        raw = bytes(name)
        return raw if len(raw) == 32 else keccak(raw)
    if not isinstance(name, str):
        raise TypeError(f"a resource is a name or a 32-byte id, got {type(name).__name__}")
    if len(name) == 66 and name[:2] in ("0x", "0X"):
        try:
            return bytes.fromhex(name[2:])
        except ValueError:
            pass
    return keccak(text=name)
