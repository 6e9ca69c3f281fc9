"""Selfish rule-followers against the pay-per-call gateway (core logic in process, embedded chain).

Rows of docs/threat-model.md, section "Pay-per-call gateway". The HTTP-level faults (replays, another
channel or payee, forged signatures, a payer who stops paying, a server crash) run against a real uvicorn
process in tests/services/test_gateway.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite
from agentmarket.gateway import ChannelPayment, PaymentDisputed, PaymentError, PaymentGateway, Price, x402
from agentmarket.gateway.client import _Session
from agentmarket.gateway.x402 import ChannelRef, PaymentPayload

PRICE = Price(1000)
ETHER = 10**18


@pytest.fixture
def parties(chain: Chain, suite: Suite, tmp_path: Path) -> tuple[PaymentGateway, ChannelClient]:
    payee, payer = Account.create(), Account.create()
    for account in (payee, payer):
        chain.transactor.send_value(chain.accounts[0], account.address, ETHER)
    contract = suite["PaymentChannels"]
    gateway = PaymentGateway(
        ChannelClient(chain, contract, payee),
        {"/x": PRICE},
        tmp_path / "v.sqlite",
        min_ttl=600,
        clock=chain.now,
    )
    return gateway, ChannelClient(chain, contract, payer)


def _payload(gateway: PaymentGateway, payer: ChannelClient, channel: object, amount: int) -> PaymentPayload:
    ch = channel
    ref = ChannelRef(ch.id, ch.payer, ch.payee, ch.asset, ch.salt)  # type: ignore[attr-defined]
    return PaymentPayload(gateway.requirements(PRICE), ref, payer.sign_voucher(ch.id, amount))  # type: ignore[attr-defined]


def test_two_requests_in_flight_on_one_voucher_serve_once(
    parties: tuple[PaymentGateway, ChannelClient],
) -> None:
    """A payer sends the same voucher twice concurrently hoping both are served: the second is refused
    until the first settles (the in-flight ceiling is reserved)."""
    gateway, payer = parties
    channel = payer.open(gateway.payee, 10 * PRICE.ceiling, ttl=3600)
    first = gateway.admit(_payload(gateway, payer, channel, PRICE.ceiling), PRICE)
    with pytest.raises(PaymentError) as busy:
        gateway.admit(_payload(gateway, payer, channel, PRICE.ceiling), PRICE)
    assert busy.value.code == x402.E_BUSY
    gateway.settle(first, 1, served=True)
    with pytest.raises(PaymentError) as stale:  # and after it settled the voucher is spent
        gateway.admit(_payload(gateway, payer, channel, PRICE.ceiling), PRICE)
    assert stale.value.code == x402.E_MISMATCH


def test_channel_about_to_expire_is_refused(parties: tuple[PaymentGateway, ChannelClient]) -> None:
    """A payer opens a channel that expires before the server could claim, hoping to reclaim the deposit
    after being served: refused while less than min_ttl remains."""
    gateway, payer = parties
    channel = payer.open(gateway.payee, 10 * PRICE.ceiling, ttl=300)
    with pytest.raises(PaymentError) as refused:
        gateway.admit(_payload(gateway, payer, channel, PRICE.ceiling), PRICE)
    assert refused.value.code == x402.E_CHANNEL_EXPIRING
    assert gateway.store.latest(channel.id) is None


def test_close_cannot_undercut_the_charges(parties: tuple[PaymentGateway, ChannelClient]) -> None:
    """A payer asks to close at less than it was charged: refused with the corrective state."""
    gateway, payer = parties
    channel = payer.open(gateway.payee, 10 * PRICE.ceiling, ttl=3600)
    gateway.settle(gateway.admit(_payload(gateway, payer, channel, PRICE.ceiling), PRICE), 1, served=True)
    low = _payload(gateway, payer, channel, 0)
    low = PaymentPayload(low.accepted, low.channel, low.voucher, type="close")
    with pytest.raises(PaymentError) as refused:
        gateway.close_channel(low)
    assert refused.value.code == x402.E_MISMATCH
    fair = _payload(gateway, payer, channel, PRICE.ceiling)
    closed = gateway.close_channel(PaymentPayload(fair.accepted, fair.channel, fair.voucher, type="close"))
    after = payer.channel(channel.id)
    assert after.claimed == PRICE.ceiling and int(closed.amount) == after.deposit - PRICE.ceiling


def test_server_cannot_inflate_the_charged_total(parties: tuple[PaymentGateway, ChannelClient]) -> None:
    """A server answers a corrective 402 claiming more was charged than any voucher the payer signed:
    the client refuses and signs nothing more."""
    gateway, payer_client = parties

    class _Payer:  # the parts of an Agent the client uses
        channels = payer_client
        address = payer_client.address

    payment = ChannelPayment(_Payer())
    channel = payer_client.open(gateway.payee, 10 * PRICE.ceiling, ttl=3600)
    session = _Session(("n", "c", "p", "a"), channel=channel, charged=PRICE.ceiling, signed=2 * PRICE.ceiling)
    forged_state = {
        "channelState": {"chargedCumulativeAmount": str(5 * PRICE.ceiling)},
        "voucherState": {
            "signedMaxClaimable": str(5 * PRICE.ceiling),
            "signature": "0x" + payer_client.sign_voucher(channel.id, 2 * PRICE.ceiling).signature.hex(),
        },
    }
    with pytest.raises(PaymentDisputed):
        payment._resync(session, gateway.requirements(PRICE, state=forged_state))
    assert session.disputed and session.charged == PRICE.ceiling
