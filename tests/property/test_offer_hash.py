"""The Python offer hash and EIP-712 digest equal the contract's for random offers, and the fast path
(manual word encoding + coincurve) equals eth-account's ``encode_typed_data`` and signing."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.chain import Chain
from agentmarket.clients.offers import Offer, OffersClient, Side
from agentmarket.deploy import Suite
from agentmarket.eip712 import SECP256K1_N, digest_of, recover, sign_digest

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def uint(bits: int) -> Any:
    return st.one_of(st.integers(0, 2**bits - 1), st.sampled_from([0, 1, 2**bits - 1]))


offers = st.builds(
    Offer,
    maker=addresses,
    side=st.sampled_from(list(Side)),
    resource_id=st.binary(min_size=32, max_size=32),
    unit_price=uint(128),
    quantity=uint(64),
    expiry=uint(40),
    asset=addresses,
    terms_hash=st.binary(min_size=32, max_size=32),
    min_fill=uint(64),
    bond_per_unit=uint(128),
    delivery_seconds=uint(32),
    grace_seconds=uint(32),
    review_window=uint(32),
    ruling_window=uint(32),
    penalty_bps_per_hour=uint(16),
    penalty_cap_bps=uint(16),
    arbiter=addresses,
    arbiter_fee_bps=uint(16),
    default_seller_bps=uint(16),
    taker=addresses,
    salt=uint(256),
    counter=uint(64),
)


@given(offer=offers)
def test_python_digest_equals_contract_and_eth_account(_embedded: tuple[Chain, Suite], offer: Offer) -> None:
    _, suite = _embedded
    client = OffersClient.from_suite(suite)
    onchain = bytes(client.contract.functions.hashOffer(offer.as_tuple()).call())
    assert offer.digest(client.domain) == onchain
    assert digest_of(offer.typed_data(client.domain)) == onchain
    assert Offer.from_json(offer.to_json()) == offer
    assert Offer.from_abi(offer.as_tuple()) == offer


@given(offer=offers, key=st.integers(1, SECP256K1_N - 1))
def test_fast_signing_matches_eth_account(_embedded: tuple[Chain, Suite], offer: Offer, key: int) -> None:
    _, suite = _embedded
    client = OffersClient.from_suite(suite)
    account = Account.from_key(key.to_bytes(32, "big"))
    fast = sign_digest(account, offer.digest(client.domain))
    slow = Account.sign_typed_data(account.key, full_message=offer.typed_data(client.domain)).signature
    assert fast == bytes(slow)  # RFC 6979: deterministic, low-s, same v
    assert recover(offer.digest(client.domain), fast) == account.address


def test_domain_separator_matches_contract(_embedded: tuple[Chain, Suite]) -> None:
    chain, suite = _embedded
    client = OffersClient.from_suite(suite)
    assert client.domain.separator == bytes(client.contract.functions.domainSeparator().call())
    fields = client.contract.functions.eip712Domain().call()
    assert (fields[1], fields[2], fields[3], fields[4]) == (
        client.domain.name,
        client.domain.version,
        chain.chain_id,
        client.address,
    )
