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
