"""The transaction fast path on both backends: snapshot gas limits, pipelined handles, batches, nonces."""

from __future__ import annotations

from typing import Any

import pytest
from web3.contract import Contract

from agentmarket.chain import Chain
from agentmarket.errors import ContractRevert, TransactionReverted
from agentmarket.tx import Sent, TxRequest


@pytest.fixture
def reverter(any_chain: Chain, reverter_artifact: Any) -> Contract:
    receipt = any_chain.transactor.deploy(any_chain.accounts[0], reverter_artifact)
    return any_chain.w3.eth.contract(address=receipt["contractAddress"], abi=reverter_artifact["abi"])


@pytest.fixture
def no_estimates(any_chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every eth_estimateGas the transactor would run."""
    calls: list[Any] = []
    original = any_chain.transactor.estimate

    def spy(tx: dict[str, Any]) -> int:
        calls.append(tx)
        return original(tx)

    monkeypatch.setattr(any_chain.transactor, "estimate", spy)
    return calls


def test_gas_key_skips_estimation_and_unknown_keys_estimate(
    any_chain: Chain, reverter: Contract, no_estimates: list[Any]
) -> None:
    tx = any_chain.transactor
    tx.gas_table.register("reverter.ok", 45_000)
    receipt = tx.transact(any_chain.accounts[0], reverter.functions.ok(), gas_key="reverter.ok")
    assert receipt["status"] == 1 and no_estimates == []
    assert any_chain.w3.eth.get_transaction(receipt["transactionHash"])["gas"] == tx.gas_limit("reverter.ok")
    tx.transact(any_chain.accounts[0], reverter.functions.ok(), gas_key="not.in.snapshot")
    assert len(no_estimates) == 1
    assert reverter.functions.counter().call() == 2


def test_pipelined_handles_then_wait_all(any_chain: Chain, reverter: Contract) -> None:
    tx = any_chain.transactor
    handles = [
        tx.transact(any_chain.accounts[i % 3], reverter.functions.ok(), gas=60_000, wait=False)
        for i in range(12)
    ]
    assert all(isinstance(h, Sent) for h in handles)
    receipts = tx.wait_all(handles)
    assert [r["status"] for r in receipts] == [1] * 12
    assert all(h.mined for h in handles)
    assert reverter.functions.counter().call() == 12


def test_transact_many_one_batch_in_order(any_chain: Chain, reverter: Contract) -> None:
    tx, a, b = any_chain.transactor, any_chain.accounts[1], any_chain.accounts[2]
    start = {x.address: any_chain.w3.eth.get_transaction_count(x.address) for x in (a, b)}
    requests = [TxRequest(a if i % 2 else b, reverter.functions.ok(), gas=60_000) for i in range(20)]
    receipts = tx.transact_many(requests)
    assert len(receipts) == 20 and all(r["status"] == 1 for r in receipts)
    nonces = [any_chain.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts]
    assert nonces[1::2] == list(range(start[a.address], start[a.address] + 10))
    assert reverter.functions.counter().call() == 20


def test_transact_many_larger_than_one_post_lands_in_nonce_order(
    any_chain: Chain, reverter: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole batch is signed, then sent as one batch that the transport splits into several posts
    (its max_batch): every transaction lands, in nonce order."""
    tx, a = any_chain.transactor, any_chain.accounts[1]
    if hasattr(tx.transport, "max_batch"):
        monkeypatch.setattr(tx.transport, "max_batch", 7)
    start = any_chain.w3.eth.get_transaction_count(a.address)
    receipts = tx.transact_many([TxRequest(a, reverter.functions.ok(), gas=60_000) for _ in range(30)])
    assert [r["status"] for r in receipts] == [1] * 30
    nonces = [any_chain.w3.eth.get_transaction(r["transactionHash"])["nonce"] for r in receipts]
    assert nonces == list(range(start, start + 30))
    assert reverter.functions.counter().call() == 30


def test_unsimulated_revert_is_decoded_by_replay(any_chain: Chain, reverter: Contract) -> None:
    tx = any_chain.transactor
    with pytest.raises(ContractRevert) as caught:
        tx.transact(any_chain.accounts[0], reverter.functions.customError(42), gas=100_000)
    assert caught.value.error_name == "ReverterCustom" and caught.value.code == 42
    assert caught.value.tx_hash  # it was mined: the replay found the reason
    results = tx.transact_many(
        [
            TxRequest(any_chain.accounts[0], reverter.functions.ok(), gas=60_000),
            TxRequest(any_chain.accounts[0], reverter.functions.bareError(), gas=60_000),
            TxRequest(any_chain.accounts[0], reverter.functions.ok(), gas=60_000),
        ],
        return_exceptions=True,
    )
    assert results[0]["status"] == 1 and results[2]["status"] == 1
    assert isinstance(results[1], ContractRevert) and results[1].error_name == "ReverterBare"


def test_out_of_gas_limit_is_reported(any_chain: Chain, reverter: Contract) -> None:
    with pytest.raises(TransactionReverted, match="out of gas"):
        any_chain.transactor.transact(any_chain.accounts[0], reverter.functions.ok(), gas=22_000)


def test_nonce_resync_after_another_sender_used_the_account(any_chain: Chain, reverter: Contract) -> None:
    tx, account = any_chain.transactor, any_chain.accounts[0]
    tx.transact(account, reverter.functions.ok(), gas=60_000)  # local nonce now cached
    other = type(tx)(any_chain)  # another process, same key
    other.transact(account, reverter.functions.ok(), gas=60_000)
    other.transact(account, reverter.functions.ok(), gas=60_000)
    receipt = tx.transact(account, reverter.functions.ok(), gas=60_000)  # "nonce too low" -> resync, re-sign
    assert receipt["status"] == 1
    assert reverter.functions.counter().call() == 4


def test_rejected_send_in_a_batch_does_not_stall_later_nonces(any_chain: Chain, reverter: Contract) -> None:
    tx = any_chain.transactor
    poor = any_chain.new_account(fund=10**17)
    results = tx.transact_many(
        [
            TxRequest(poor, reverter.functions.ok(), gas=60_000),
            TxRequest(poor, to=poor.address, value=10**20, gas=21_000),  # rejected
            TxRequest(poor, reverter.functions.ok(), gas=60_000),
        ],
        return_exceptions=True,
    )
    assert results[0]["status"] == 1 and isinstance(results[1], Exception)
    if not isinstance(results[2], Exception):  # accepted above the gap: the gap was filled
        assert results[2]["status"] == 1
    again = tx.transact(poor, reverter.functions.ok(), gas=60_000)  # the manager is consistent
    assert again["status"] == 1


def test_idempotency_key_returns_the_first_outcome(any_chain: Chain, reverter: Contract) -> None:
    tx = any_chain.transactor
    first = tx.transact(any_chain.accounts[0], reverter.functions.ok(), gas=60_000, key="deal-7")
    second = tx.transact(any_chain.accounts[0], reverter.functions.ok(), gas=60_000, key="deal-7")
    assert first["transactionHash"] == second["transactionHash"]
    assert reverter.functions.counter().call() == 1
