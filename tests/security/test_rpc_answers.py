"""A node (or whatever sits between agent and node) answers the per-call path's send-and-receipt call with
a receipt of another transaction: the client must not hand its caller someone else's deal.

The per-call path takes a receipt from ``eth_sendRawTransactionSync`` where the node mines on arrival. A
hostile or buggy endpoint could answer with any receipt; the Transactor keeps it only when its hash is the
hash of the bytes it signed, and otherwise polls for its own transaction's receipt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rpcproxy import RPCProxy

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import DealState

PRICE = 10**12


@pytest.mark.anvil
def test_a_receipt_of_another_transaction_is_not_taken(anvil: Chain, anvil_suite: Suite) -> None:
    escrow = anvil_suite["AgentEscrow"].address
    victim, other, seller = anvil.accounts[1], anvil.accounts[2], anvil.accounts[3]
    theirs = EscrowClient(anvil, escrow, other).create(seller.address, PRICE, deliver_by=timedelta(hours=1))
    stolen: dict[str, Any] = {}

    def intercept(call: dict[str, Any]) -> dict[str, Any] | None:
        if call["method"] != "eth_sendRawTransactionSync":
            return None
        # really send the caller's transaction, but answer with the receipt of the other buyer's deal
        proxy.forward({**call, "method": "eth_sendRawTransaction"})
        receipt = proxy.forward(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [theirs.tx_hash]}
        )["result"]
        stolen["receipt"] = receipt
        return {"jsonrpc": "2.0", "id": call["id"], "result": receipt}

    proxy = RPCProxy(str(anvil.url), intercept=intercept).start()
    chain = Chain.connect(proxy.url, keys=["0x" + bytes(victim.key).hex()])
    try:
        assert chain.transactor._instant_receipts()  # the proxy forwards anvil's version and automine
        mine = EscrowClient(chain, escrow, chain.accounts[0]).create(
            seller.address, PRICE, deliver_by=timedelta(hours=1)
        )
    finally:
        chain.close()
        proxy.close()
    assert stolen, "the lying answer was given"
    assert mine.buyer == victim.address
    assert mine.id != theirs.id and mine.tx_hash != theirs.tx_hash
    assert "eth_getTransactionReceipt" in proxy.seen  # the client polled for its own receipt
    assert EscrowClient(anvil, escrow).deal(mine.id).buyer == victim.address
    assert EscrowClient(anvil, escrow).status(mine.id)[0] == DealState.FUNDED
