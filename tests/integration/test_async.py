"""The README trade in async form: AsyncMarket / AsyncAgent, on both chains, with no worker thread.

anvil: every JSON-RPC request of the synchronous pipeline is awaited through web3's AsyncHTTPProvider.
Embedded: py-evm runs in process and synchronously, so the same calls run on the loop's thread with
nothing to await (the API and the pipeline are the same; calls do not overlap there).
"""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from anvil_nodes import Node

from agentmarket import Mandate, PriceBand, resource_id
from agentmarket.aio import AsyncMarket, AsyncTransactor, async_web3, disconnect, run_sync
from agentmarket.chain import Chain
from agentmarket.errors import ChainUnavailable, MandateViolation
from agentmarket.market import Market
from agentmarket.types import ETH, DealState, content_hash

FINNEY = 10**15


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_readme_trade_async(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain: Chain = request.getfixturevalue("chain" if backend == "embedded" else "anvil")
    suite = request.getfixturevalue("suite" if backend == "embedded" else "anvil_suite")
    market = AsyncMarket(Market(chain, suite), async_web3(chain))
    sent_before = market.transactor.sent

    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("an async call went to a worker thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_threads)

    async def trade() -> None:
        mandate = Mandate(
            budget={ETH: 50 * FINNEY}, price_bands={resource_id("gpu-hour"): PriceBand(10 * FINNEY, 1_000)}
        )
        buyer = await market.agent("buyer", mandate=mandate)
        seller = await market.agent("seller")
        nonce = chain.w3.eth.get_transaction_count(buyer.address)
        with pytest.raises(MandateViolation):  # above the budget: refused before signing
            await buyer.buy(seller.agent, 60 * FINNEY, resource="gpu-hour", units=6)
        assert chain.w3.eth.get_transaction_count(buyer.address) == nonce
        deal = await buyer.buy(
            seller.agent, 20 * FINNEY, resource="gpu-hour", units=2, deliver_by=timedelta(hours=1)
        )
        deal = await seller.escrow.submit(deal, content_hash("2 GPU-hours of inference results"))
        deal = await buyer.escrow.accept(deal)
        assert deal.state == DealState.ACCEPTED
        if backend == "anvil":  # 2 fundings, buy, submit, accept: all broadcast through AsyncHTTPProvider
            assert market.transactor.sent - sent_before == 5
        assert buyer.guard.remaining() == 30 * FINNEY
        # concurrency: two agents' sends interleave on one loop
        a, b = await market.agent("a"), await market.agent("b")
        async with anyio.create_task_group() as tg:
            for x, y in ((a, b), (b, a)):
                tg.start_soon(x.buy, y.agent, FINNEY)
        assert len(await a.escrow.deals(party=a.address)) == 2
        await disconnect(chain)

    anyio.run(trade)


@pytest.mark.anvil
def test_async_calls_on_a_dead_node_raise_chain_unavailable(node: Node) -> None:
    """The awaiting transport keeps the sync path's fault semantics: a node that is gone is a typed
    ChainUnavailable (after the bounded retries), not an aiohttp exception, and nothing is half-sent."""
    chain = node.chain()
    atx = AsyncTransactor(chain.transactor)
    payer, payee = chain.accounts[0], chain.accounts[1]

    async def run() -> None:
        receipt = await atx.transact(payer, to=payee.address, value=1, gas=21_000)
        assert receipt["status"] == 1
        built = await run_sync(atx.sync.build, payer, to=payee.address, value=2, gas=21_000)
        receipt = await atx.send_built(payer, built)  # a transaction the caller built itself
        assert receipt["status"] == 1 and receipt["from"] == payer.address
        node.kill()
        with pytest.raises(ChainUnavailable):
            await atx.transact(payer, to=payee.address, value=1, gas=21_000)
        await disconnect(chain)

    anyio.run(run)
