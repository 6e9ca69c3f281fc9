"""Agents in threads: every public client is safe to share across threads on every chain.

On the embedded chain (py-evm, not thread-safe, no mempool) requests are serialised and one account's
nonces reach the node in order; on anvil the node does that itself. Either way no transaction is lost and
a returned deal is the caller's own.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agentmarket import Market
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.types import DealState

TRADES = 3


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_agents_in_threads_lose_nothing_and_get_their_own_deals(
    kind: str, request: pytest.FixtureRequest
) -> None:
    chain: Chain = request.getfixturevalue("chain" if kind == "embedded" else "anvil")
    suite: Suite = request.getfixturevalue("suite" if kind == "embedded" else "anvil_suite")
    market = Market(chain, suite)
    buyers = market.agents(3, fund=10**17)
    seller = market.agent(fund=10**17)  # shared by every thread: its nonces interleave
    failures: list[BaseException] = []
    settled: list[Any] = []
    lock = threading.Lock()

    def trade(buyer: Any) -> None:
        try:
            for _ in range(TRADES):
                deal = buyer.buy(seller, 10**12)
                assert deal.buyer == buyer.address, "a returned deal belongs to another transaction"
                deal = seller.escrow.submit(deal, b"result")
                deal = buyer.escrow.accept(deal)
                with lock:
                    settled.append(deal)
        except BaseException as exc:  # collected: a thread's exception would vanish otherwise
            with lock:
                failures.append(exc)

    # three agents, plus two more threads sharing the first agent (one account, three threads)
    threads = [threading.Thread(target=trade, args=(b,)) for b in [*buyers, buyers[0], buyers[0]]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures[:3]
    assert len(settled) == 5 * TRADES
    assert len({d.id for d in settled}) == len(settled)
    assert all(d.state == DealState.ACCEPTED for d in settled)
    for deal in settled:  # the chain agrees with what each thread was told
        assert market.escrow.status(deal.id)[0] == DealState.ACCEPTED
