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
