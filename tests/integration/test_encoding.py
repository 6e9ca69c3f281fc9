"""The fast path's calldata and receipt shapes are exactly web3.py's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agentmarket.calldata import calldata, encode_call
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.tx import _format_receipt


def test_calldata_matches_web3(chain: Chain, suite: Suite) -> None:
    escrow = suite["AgentEscrow"]
    client = EscrowClient.from_suite(suite, chain.accounts[1])
    terms = client.terms(chain.accounts[2].address, 10**15, deliver_by=timedelta(days=1)).as_tuple()
    for name, args in (("create", (terms,)), ("accept", (7, terms)), ("submit", (7, terms, b"\x01" * 32))):
        expected = bytes.fromhex(getattr(escrow.functions, name)(*args)._encode_transaction_data()[2:])
        assert calldata(escrow, name, *args) == expected
        assert encode_call(getattr(escrow.functions, name)(*args)) == expected
    # a hex string for bytes32: eth_abi refuses it, web3 normalises it -> same bytes through the fallback
    fn = escrow.functions.submit(7, terms, "0x" + "01" * 32)
    assert encode_call(fn) == bytes.fromhex(fn._encode_transaction_data()[2:])


@pytest.mark.parametrize("backend", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_receipt_format_matches_web3(backend: str, request: pytest.FixtureRequest) -> None:
    from web3._utils.method_formatters import receipt_formatter
    from web3.datastructures import AttributeDict

    chain = request.getfixturevalue("chain" if backend == "embedded" else "anvil")
    suite = request.getfixturevalue("suite" if backend == "embedded" else "anvil_suite")
    client = EscrowClient.from_suite(suite, chain.accounts[1])
    deal = client.create(chain.accounts[2].address, 10**15, deliver_by=timedelta(days=1))
    tx_hash = chain.w3.eth.get_block("latest")["transactions"][0].to_0x_hex()
    del deal
    raw: Any = chain.transactor.transport.request("eth_getTransactionReceipt", [tx_hash])
    assert raw["logs"], "want a receipt with logs"
    ours, theirs = _format_receipt(raw), AttributeDict.recursive(receipt_formatter(raw))
    assert ours == theirs
    # equal is not enough: HexBytes == bytes == str compare alike; the types must be web3's too
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    for mine, web3s in zip(ours["logs"], theirs["logs"], strict=True):
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in web3s.items()}
        assert [type(t) for t in mine["topics"]] == [type(t) for t in web3s["topics"]]
