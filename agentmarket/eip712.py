"""EIP-712 typed-data helpers: domains, struct hashes, digests, signing and recovery.

Two paths that give the same bytes:

* the canonical one, through eth-account's ``encode_typed_data`` (:func:`typed_data`, :func:`digest_of`),
  which any wallet or other library reproduces from the JSON message;
* a fast one for static structs (every member an atomic type, as in the contracts' offer and voucher
  structs): the struct hash is ``keccak256(typehash ‖ abi.encode(values))`` and the digest
  ``keccak256(0x1901 ‖ domainSeparator ‖ structHash)`` (:class:`StaticStruct`, :func:`digest`), signed and
  recovered with coincurve. Tests check the two paths (and the contracts) agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak, to_checksum_address

from .errors import SignatureError

try:  # safe-pysha3's C keccak (eth-tester[py-evm] -> eth-hash[pysha3]): ~1 us a hash, ~10x pycryptodome
    from sha3 import keccak_256 as _keccak_256

    def fast_keccak(data: bytes) -> bytes:
        """keccak256 of ``data`` (the hot-path hash: voucher digests, recovered addresses)."""
        return _keccak_256(data).digest()  # type: ignore[no-any-return]
except ImportError:  # pragma: no cover - PyPy, where eth-tester installs pycryptodome instead
    try:
        from Crypto.Hash import keccak as _keccak_mod

        def fast_keccak(data: bytes) -> bytes:
            """keccak256 of ``data`` (the hot-path hash: voucher digests, recovered addresses)."""
            return bytes(_keccak_mod.new(digest_bits=256, data=data).digest())
    except ImportError:

        def fast_keccak(data: bytes) -> bytes:
            """keccak256 of ``data`` (the hot-path hash: voucher digests, recovered addresses)."""
            return bytes(keccak(data))


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """EIP-55 form of a domain's contract (cached: every signed offer or voucher off the wire carries one)."""
    return to_checksum_address(address)


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain as OpenZeppelin's ``EIP712`` builds it (name, version, chainId, verifyingContract)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifying_contract", _checksum(self.verifying_contract))
        object.__setattr__(self, "chain_id", int(self.chain_id))

    def as_dict(self) -> dict[str, Any]:
        """The ``domain`` member of a typed-data message."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Domain:
        return cls(
            str(value["name"]), str(value["version"]), int(value["chainId"]), str(value["verifyingContract"])
        )

    @property
    def separator(self) -> bytes:
        """``_domainSeparatorV4()`` of the contract."""
        return domain_separator(self)


_SEPARATORS: dict[Domain, bytes] = {}


def domain_separator(domain: Domain) -> bytes:
    """keccak256(abi.encode(EIP712Domain typehash, name hash, version hash, chainId, verifyingContract))."""
    cached = _SEPARATORS.get(domain)
    if cached is None:
        cached = keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    DOMAIN_TYPEHASH,
                    keccak(text=domain.name),
                    keccak(text=domain.version),
                    domain.chain_id,
                    domain.verifying_contract,
                ],
            )
        )
        _SEPARATORS[domain] = cached
    return cached


@dataclass(frozen=True)
class StaticStruct:
    """An EIP-712 struct type whose members are all atomic (no strings, bytes, arrays or nested structs)."""

    name: str
    fields: tuple[tuple[str, str], ...]  # (name, solidity type) in declaration order

    @property
    def type_string(self) -> str:
        return f"{self.name}(" + ",".join(f"{t} {n}" for n, t in self.fields) + ")"

    @property
    def typehash(self) -> bytes:
        return keccak(text=self.type_string)

    @property
    def types(self) -> list[dict[str, str]]:
        """The ``types[name]`` member of a typed-data message."""
        return [{"name": n, "type": t} for n, t in self.fields]

    def struct_hash(self, values: Sequence[Any]) -> bytes:
        """hashStruct: keccak256(typehash ‖ encodeData), where encodeData of atomic members is abi.encode."""
        return keccak(self.typehash + abi_encode([t for _, t in self.fields], list(values)))


def digest(domain: Domain, struct_hash: bytes) -> bytes:
    """The EIP-712 digest ``keccak256(0x1901 ‖ domainSeparator ‖ structHash)`` (``_hashTypedDataV4``)."""
    return keccak(b"\x19\x01" + domain_separator(domain) + struct_hash)


def typed_data(struct: StaticStruct, domain: Domain, message: Mapping[str, Any]) -> dict[str, Any]:
    """The full EIP-712 JSON message (``eth_signTypedData_v4`` shape) for ``message``."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, struct.name: struct.types},
        "primaryType": struct.name,
        "domain": domain.as_dict(),
        "message": dict(message),
    }


def digest_of(full_message: Mapping[str, Any]) -> bytes:
    """The digest of a full typed-data message, computed by eth-account's ``encode_typed_data``."""
    return bytes(_hash_eip191_message(encode_typed_data(full_message=dict(full_message))))


# -- signing and recovery (coincurve) ---------------------------------------------------------------


def _key_bytes(key: Any) -> bytes:
    """Raw 32-byte private key from a LocalAccount, eth-keys key, bytes or hex string."""
    inner = getattr(key, "key", key)  # LocalAccount.key -> HexBytes
    if hasattr(inner, "to_bytes"):
        inner = inner.to_bytes()
    if isinstance(inner, str):
        inner = bytes.fromhex(inner.removeprefix("0x"))
    raw = bytes(inner)
    if len(raw) != 32:
        raise SignatureError("expected a 32-byte private key")
    return raw


_PRIVATE_KEYS: dict[bytes, PrivateKey] = {}


def private_key(key: Any) -> PrivateKey:
    """A coincurve key from a LocalAccount, eth-keys key, bytes, hex string or coincurve key (cached)."""
    if isinstance(key, PrivateKey):
        return key
    raw = _key_bytes(key)
    pk = _PRIVATE_KEYS.get(raw)
    if pk is None:
        pk = PrivateKey(raw)
        if len(_PRIVATE_KEYS) < 1024:
            _PRIVATE_KEYS[raw] = pk
    return pk


def sign_digest(key: Any, message_digest: bytes) -> bytes:
    """65-byte (r ‖ s ‖ v) signature of a 32-byte digest, low-s, v in {27, 28} (what ``ecrecover`` takes).

    ``key`` may also be an external eth-account-compatible signer without a raw key (hardware, KMS): it
    signs through its ``unsafe_sign_hash``."""
    if getattr(key, "key", None) is None and hasattr(key, "unsafe_sign_hash"):
        signed = key.unsafe_sign_hash(message_digest)
        v = int(signed.v)
        return (
            int(signed.r).to_bytes(32, "big")
            + int(signed.s).to_bytes(32, "big")
            + bytes([v if v >= 27 else v + 27])
        )
    sig = private_key(key).sign_recoverable(message_digest, hasher=None)  # r ‖ s ‖ recid, s already low
    return sig[:64] + bytes([sig[64] + 27])


def _public_key(message_digest: bytes, signature: bytes) -> bytes:
    """The uncompressed public key that signed ``message_digest``, checked like ``ECDSA.tryRecover``."""
    if len(signature) != 65:
        raise SignatureError(f"an ECDSA signature is 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if s > SECP256K1_HALF_N:
        raise SignatureError("malleable signature: s is in the upper half of the curve order")
    if v not in (27, 28) or not 0 < r < SECP256K1_N or s == 0:
        raise SignatureError("invalid signature values (v must be 27/28, 0 < r, s < n)")
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), message_digest, hasher=None
        )
    except Exception as exc:
        raise SignatureError(f"signature does not recover to a key: {exc}") from None
    return bytes(public.format(compressed=False))


def recover(message_digest: bytes, signature: bytes) -> str:
    """The address that signed ``message_digest``; rejects malformed, high-s and bad-v signatures
    like OpenZeppelin's ``ECDSA.tryRecover`` (raises :class:`SignatureError`)."""
    return _address_of(_public_key(message_digest, signature))


def recover_raw(message_digest: bytes, signature: bytes) -> bytes:
    """:func:`recover` as the 20 raw address bytes (no checksum formatting: the fast path for comparisons)."""
    return _raw_address_of(_public_key(message_digest, signature))


@lru_cache(maxsize=65_536)
def _raw_address_of(uncompressed_public_key: bytes) -> bytes:
    return fast_keccak(uncompressed_public_key[1:])[-20:]


@lru_cache(maxsize=65_536)
def _address_of(uncompressed_public_key: bytes) -> str:
    return to_checksum_address(_raw_address_of(uncompressed_public_key))


def sign_typed_data(account: Any, full_message: Mapping[str, Any]) -> bytes:
    """Sign a full typed-data message through eth-account (the canonical, slower path)."""
    signed = Account.sign_typed_data(_key_bytes(account), full_message=dict(full_message))
    return bytes(signed.signature)
