"""The gateway's async side (agentmarket.aio): channel reads, claims and closes run on the event loop with
their JSON-RPC awaited (anvil: AsyncHTTPProvider; embedded: in process), the same core as the synchronous
path."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pytest
from eth_account import Account

from agentmarket.aio import AsyncTransactor, run_sync
from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite
from agentmarket.gateway import PaymentGateway, Price
from agentmarket.gateway.x402 import ChannelRef, PaymentPayload
from agentmarket.types import ChannelStatus

PRICE = Price(1000)
ETHER = 10**18


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_async_admission_claim_and_close_on_the_loop(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    chain: Chain = request.getfixturevalue("chain" if backend == "embedded" else "anvil")
    suite: Suite = request.getfixturevalue("suite" if backend == "embedded" else "anvil_suite")
    awaited = AsyncTransactor(chain.transactor)  # counts the sends awaited on the loop (none embedded)
    before = awaited.sent
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
        assert gateway._has_code[channel.payer] is False  # looked up once, on the loop
        # above the deposit until the payer tops up; then re-read (on the loop) and accepted
        payer.top_up(channel, 2 * PRICE.ceiling)
        admission = await gateway.admit_async(payload(4 * PRICE.ceiling), PRICE)
        gateway.settle(admission, 1, served=True)
        assert gateway._states[channel.id].terms.deposit == 5 * PRICE.ceiling
        # the claimer's round and the close run on the loop, their sends awaited
        gateway.start_async()
        claim = gateway.aio.channels
        assert await run_sync(functools.partial(gateway.claim_due, everything=True, channels=claim)) == 1
        settled = await run_sync(
            functools.partial(gateway.close_channel, payload(4 * PRICE.ceiling, "close"), channels=claim)
        )
        assert settled.transaction
        await gateway.stop_async()  # nothing left to claim: no more sends; closes the loop's sessions

    anyio.run(run)
    after = payer.channel(channel.id)
    assert after.status == ChannelStatus.CLOSED and after.claimed == 4 * PRICE.ceiling
    assert awaited.sent - before == (0 if backend == "embedded" else 2)  # the claimMany and the close
