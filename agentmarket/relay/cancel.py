"""Maker-signed cancel messages: ``RelayCancel(bytes32 offerHash)`` signed under the OfferBook's EIP-712
domain. The relay hides the offer on such a message; only the chain (``cancel``/``incrementCounter``) makes
the signature itself unfillable, because anyone may have copied the signed offer already."""

from __future__ import annotations

from typing import Any

from ..clients.base import erc1271_accepts
from ..eip712 import Domain, StaticStruct, digest, recover, sign_digest
from ..errors import SignatureError

CANCEL_STRUCT = StaticStruct("RelayCancel", (("offerHash", "bytes32"),))


def cancel_digest(domain: Domain, offer_hash: bytes) -> bytes:
    """The EIP-712 digest a maker signs to withdraw ``offer_hash`` from relays."""
    return digest(domain, CANCEL_STRUCT.struct_hash([bytes(offer_hash)]))


def sign_cancel(key: Any, domain: Domain, offer_hash: bytes) -> bytes:
    """The maker's 65-byte signature of the cancel message for ``offer_hash``."""
    return sign_digest(key, cancel_digest(domain, offer_hash))


def verify_cancel(w3: Any, domain: Domain, offer_hash: bytes, maker: str, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless ``maker`` (its key, or its ERC-1271 wallet) signed the cancel."""
    h = cancel_digest(domain, offer_hash)
    try:
        if recover(h, signature) == maker:
            return
    except SignatureError:
        pass
    if len(bytes(w3.eth.get_code(maker))) > 0 and erc1271_accepts(w3, maker, h, signature):
        return
    raise SignatureError(f"the cancel message is not signed by the maker {maker}")
