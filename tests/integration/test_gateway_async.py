"""The gateway's async side on the embedded chain: channel reads with AsyncWeb3 on the loop, claims and
closes sent through AsyncWeb3 (agentmarket.aio), the same core as the synchronous path."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
from eth_account import Account

from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite
from agentmarket.gateway import PaymentGateway, Price
from agentmarket.gateway.x402 import ChannelRef, PaymentPayload
from agentmarket.types import ChannelStatus

PRICE = Price(1000)
ETHER = 10**18


def test_async_admission_claim_and_close_go_through_asyncweb3(
    chain: Chain, suite: Suite, tmp_path: Path
) -> None:
    payee, payer_account = Account.create(), Account.create()
    for account in (payee, payer_account):
        chain.transactor.send_value(chain.accounts[0], account.address, ETHER)
    contract = suite["PaymentChannels"]
    gateway = PaymentGateway(
        ChannelClient(chain, contract, payee),
        {"/x": PRICE},
        tmp_path / "v.sqlite",
        min_ttl=600,
        clock=chain.now,
    )
    payer = ChannelClient(chain, contract, payer_account)
    channel = payer.open(gateway.payee, 3 * PRICE.ceiling, ttl=3600)
    ref = ChannelRef(channel.id, channel.payer, channel.payee, channel.asset, channel.salt)

    def payload(amount: int, kind: str = "voucher") -> PaymentPayload:
        return PaymentPayload(
            gateway.requirements(PRICE), ref, payer.sign_voucher(channel.id, amount), type=kind
        )

    async def run() -> None:
        # a channel the gateway has never seen: its state is read on the loop with AsyncWeb3
        for n in (1, 2, 3):
            admission = await gateway.admit_async(payload(n * PRICE.ceiling), PRICE)
            gateway.settle(admission, 1, served=True)
        assert gateway._has_code[channel.payer] is False  # looked up once, with AsyncWeb3
        # above the deposit until the payer tops up; then re-read (AsyncWeb3) and accepted
        payer.top_up(channel, 2 * PRICE.ceiling)
        admission = await gateway.admit_async(payload(4 * PRICE.ceiling), PRICE)
        gateway.settle(admission, 1, served=True)
        assert gateway._states[channel.id].terms.deposit == 5 * PRICE.ceiling
        # the claimer's round and the close run in a worker thread and send through AsyncWeb3
        gateway.start_async()
        claim = gateway.aio.channels
        assert await anyio.to_thread.run_sync(lambda: gateway.claim_due(everything=True, channels=claim)) == 1
        assert gateway.aio.transactor.sent == 1
        settled = await anyio.to_thread.run_sync(
            lambda: gateway.close_channel(payload(4 * PRICE.ceiling, "close"), channels=claim)
        )
        assert settled.transaction and gateway.aio.transactor.sent == 2
        await gateway.stop_async()  # nothing left to claim: no more sends

    anyio.run(run)
    after = payer.channel(channel.id)
    assert after.status == ChannelStatus.CLOSED and after.claimed == 4 * PRICE.ceiling
    assert gateway.aio.transactor.sent == 2
