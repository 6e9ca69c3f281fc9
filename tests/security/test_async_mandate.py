"""Concurrent spending through the async client cannot beat the mandate (threat model: agentmarket.aio).

A selfish controller of an agent (or a prompt-injected LLM driving its MCP tools) fires many spending calls
at once, hoping that on one event loop each call checks the budget before any of them records its spend.
The mandate is authorised where transactions are signed, with no I/O between the check and the record, so
exactly as many calls go through as the budget covers, and the refused ones send nothing.
"""

from __future__ import annotations

import anyio
import pytest

from agentmarket import Mandate
from agentmarket.aio import AsyncMarket, disconnect
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import MandateViolation
from agentmarket.market import Market
from agentmarket.types import ETH

FINNEY = 10**15
CALLS = 6
COVERED = 3


@pytest.mark.anvil
def test_concurrent_buys_spend_at_most_the_budget(anvil: Chain, anvil_suite: Suite) -> None:
    market = AsyncMarket(Market(anvil, anvil_suite))

    async def race() -> None:
        buyer = await market.agent("buyer", mandate=Mandate(budget={ETH: COVERED * FINNEY}))
        seller = await market.agent("seller")
        outcomes: list[object] = []

        async def buy() -> None:
            try:
                outcomes.append(await buyer.buy(seller.agent, FINNEY))
            except MandateViolation as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(CALLS):
                tg.start_soon(buy)
        deals = [o for o in outcomes if not isinstance(o, MandateViolation)]
        assert len(deals) == COVERED and len(outcomes) == CALLS
        assert buyer.guard.spent(ETH) == COVERED * FINNEY and buyer.guard.remaining(ETH) == 0
        assert anvil.w3.eth.get_transaction_count(buyer.address) == COVERED  # refusals sent nothing
        assert len(await buyer.escrow.deals(party=buyer.address)) == COVERED
        await disconnect(anvil)

    anyio.run(race)


@pytest.mark.anvil
def test_cancelling_a_buy_after_its_broadcast_does_not_give_its_budget_back(
    anvil: Chain, anvil_suite: Suite
) -> None:
    """An MCP client (or any async caller) can cancel a call at any await. Cancelled after the transaction
    went out, the spend may still land: the budget stays spent (only an unsent or failed transaction gives
    it back), so cancelling and retrying cannot buy past the mandate."""
    market = AsyncMarket(Market(anvil, anvil_suite))
    view = market.transactor.sync

    async def race() -> None:
        buyer = await market.agent("buyer", mandate=Mandate(budget={ETH: 2 * FINNEY}))
        seller = await market.agent("seller")
        anvil.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        view._instant = None  # the node no longer mines on arrival: ask again
        try:
            with anyio.move_on_after(60) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(buyer.buy, seller.agent, 2 * FINNEY)
                    while anvil.w3.eth.get_transaction_count(buyer.address, "pending") == 0:
                        await anyio.sleep(0.02)  # broadcast, not mined: the buy is waiting for it
                    tg.cancel_scope.cancel()
            assert not scope.cancelled_caught
            assert buyer.guard.spent(ETH) == 2 * FINNEY  # still counted: the deal may (and will) land
            with pytest.raises(MandateViolation):
                await buyer.buy(seller.agent, FINNEY)  # the retry is refused
        finally:
            anvil.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            view._instant = None
        anvil.mine()
        assert len(await buyer.escrow.deals(party=buyer.address)) == 1  # it did land

    async def run() -> None:
        try:
            await race()
        finally:
            await disconnect(anvil)

    anyio.run(run)
