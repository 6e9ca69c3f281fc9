"""x402 message encoding of the gateway: the hand-assembled ``PAYMENT-SIGNATURE`` equals the generic one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentmarket.gateway import x402
from agentmarket.gateway.x402 import ChannelRef, PaymentPayload, PaymentRequirements
from agentmarket.types import Voucher

ADDR = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=60, deadline=None)
@given(
    url=st.text(max_size=40),
    amount=st.integers(min_value=0, max_value=2**256 - 1),
    salt=st.integers(min_value=0, max_value=2**256 - 1),
    cid=st.binary(min_size=32, max_size=32),
    sig=st.binary(min_size=65, max_size=65),
    kind=st.sampled_from(["voucher", "close"]),
    unit=st.text(max_size=10),
    payee=ADDR,
)
def test_payment_header_is_the_encoding_of_to_json(
    url: str, amount: int, salt: int, cid: bytes, sig: bytes, kind: str, unit: str, payee: str
) -> None:
    """The cached fragments (requirements, channel key) change nothing on the wire, and decode back."""
    requirements = PaymentRequirements(
        "eip155:31337",
        10**12,
        "0x" + "00" * 20,
        payee,
        {"channelContract": payee, "unit": unit, "maxUnits": 3},
    )
    ref = ChannelRef(cid, payee, payee, "0x" + "00" * 20, salt)
    payload = PaymentPayload(requirements, ref, Voucher(cid, amount, sig), type=kind, resource={"url": url})
    payload.header()  # fills the caches; the second call uses them
    assert payload.header() == x402.encode_header(payload.to_json())
    assert PaymentPayload.from_header(payload.header()) == payload


U256 = st.integers(min_value=0, max_value=2**256 - 1)


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(min_value=1, max_value=2**64),
    payer=ADDR,
    cid=st.binary(min_size=32, max_size=32),
    charge=U256,
    balance=U256,
    claimed=U256,
    charged=U256,
    signed=U256,
)
def test_paid_response_header_is_the_encoding_of_to_json(
    chain_id: int, payer: str, cid: bytes, charge: int, balance: int, claimed: int, charged: int, signed: int
) -> None:
    """The server's hand-written ``PAYMENT-RESPONSE`` is byte for byte the generic encoding, and a client
    reads it back with the same values."""
    network = x402.network_of(chain_id)
    fast = x402.paid_response_header(network, payer, charge, cid, balance, claimed, charged, signed)
    state = {
        "channelId": "0x" + cid.hex(),
        "balance": str(balance),
        "totalClaimed": str(claimed),
        "chargedCumulativeAmount": str(charged),
        "signedMaxClaimable": str(signed),
    }
    generic = x402.SettlementResponse(
        True, network, payer, extra={"chargedAmount": str(charge), "channelState": state}
    )
    assert fast.decode() == generic.header()
    assert x402.SettlementResponse.from_header(fast) == generic


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_fast_keccak_is_keccak256(data: bytes) -> None:
    """The hot-path hash of voucher digests (safe-pysha3's C keccak) is eth-utils' keccak256."""
    from eth_utils.crypto import keccak

    from agentmarket.eip712 import fast_keccak

    assert fast_keccak(data) == bytes(keccak(data))
