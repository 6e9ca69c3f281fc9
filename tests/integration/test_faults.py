"""Client-side faults (issue 9): node dies mid-workflow, stuck transactions, flaky RPC, key hygiene."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from anvil_nodes import Node
from eth_account import Account

from agentmarket.errors import ChainUnavailable, ContractRevert
from agentmarket.rpc import HTTPTransport, RetryPolicy
from agentmarket.tx import Sent, TxRequest

pytestmark = pytest.mark.anvil


def test_node_dies_after_landing_then_retry_is_recognised_not_repeated(
    node: Node, reverter_artifact: Any
) -> None:
    chain = node.chain()
    tx, buyer = chain.transactor, chain.accounts[0]
    reverter = chain.w3.eth.contract(
        address=tx.deploy(buyer, reverter_artifact)["contractAddress"], abi=reverter_artifact["abi"]
    )
    sent = tx.transact(buyer, reverter.functions.ok(), gas=60_000, key="trade-1", wait=False)
    assert isinstance(sent, Sent)
    state = node.rpc("anvil_dumpState")  # the node persisted the block holding our tx ...
    node.kill()  # ... and died before we read the receipt
    with pytest.raises(ChainUnavailable) as caught:
        tx.wait(sent, timeout=5)
    assert caught.value.pending == [sent]
    with pytest.raises(ChainUnavailable):  # a retry while it is still down fails the same typed way
        tx.transact(buyer, reverter.functions.ok(), gas=60_000, key="trade-1")

    node.start()
    node.rpc("anvil_loadState", [state])
    receipt = tx.transact(buyer, reverter.functions.ok(), gas=60_000, key="trade-1")  # the agent retries
    assert receipt["status"] == 1
    assert "0x" + bytes(receipt["transactionHash"]).hex() == sent.tx_hash  # recognised by hash
    assert reverter.functions.counter().call() == 1  # not repeated
    assert chain.w3.eth.get_transaction_count(buyer.address) == sent.nonce + 1
    # and the nonce manager resynced: the next action goes through normally
    tx.transact(buyer, reverter.functions.ok(), gas=60_000)
    assert reverter.functions.counter().call() == 2


def test_node_dies_before_mining_then_fresh_chain_gets_the_action_once(reverter_artifact: Any) -> None:
    node = Node("--no-mining")
    node.start()
    try:
        chain = node.chain()
        tx, payer, payee = chain.transactor, chain.accounts[0], chain.accounts[1]
        before = chain.w3.eth.get_balance(payee.address)
        sent = tx.transact(payer, to=payee.address, value=12345, gas=21_000, wait=False)
        node.kill()
        with pytest.raises(ChainUnavailable) as caught:
            tx.wait(sent, timeout=5)
        node.start()  # a fresh chain: the pending transaction is gone
        handle = caught.value.pending[0]
        resumed = tx.resume(handle, wait=False)
        assert isinstance(resumed, Sent)
        node.rpc("evm_mine")
        receipt = tx.wait(resumed, timeout=10)
        assert receipt["status"] == 1
        assert chain.w3.eth.get_balance(payee.address) == before + 12345
        again = tx.resume(handle)  # resuming twice recognises the mined one
        assert again["transactionHash"] == receipt["transactionHash"]
        assert chain.w3.eth.get_transaction_count(payer.address) == 1
    finally:
        node.kill()


def test_stuck_transaction_is_replaced_with_bumped_fees(reverter_artifact: Any) -> None:
    node = Node("--no-mining")
    node.start()
    try:
        chain = node.chain()
        tx, payer, payee = chain.transactor, chain.accounts[0], chain.accounts[1]
        sent = tx.transact(payer, to=payee.address, value=1, gas=21_000, wait=False)
        assert isinstance(sent, Sent)
        first_hash, first_fee, first_tip = sent.tx_hash, sent.max_fee, sent.tip
        result: dict[str, Any] = {}

        def waiter() -> None:
            try:
                result["receipt"] = tx.wait(sent, timeout=20, replace_after=0.3)
            except BaseException as exc:
                result["error"] = exc

        thread = threading.Thread(target=waiter)
        thread.start()
        deadline = time.monotonic() + 15
        while sent.replacements == 0 and time.monotonic() < deadline:  # the miner only "wakes up" later
            time.sleep(0.05)
        assert sent.replacements >= 1, "no replacement within the bound"
        pool = node.rpc("txpool_content")
        pooled = [t for by_nonce in pool["pending"].values() for t in by_nonce.values()]  # type: ignore[index]
        assert len(pooled) == 1 and pooled[0]["hash"] != first_hash  # replaced in the pool, same nonce
        node.rpc("evm_mine")
        thread.join(20)
        assert "error" not in result, result.get("error")
        receipt = result["receipt"]
        assert "0x" + bytes(receipt["transactionHash"]).hex() == sent.tx_hash != first_hash
        assert sent.max_fee * 10 >= first_fee * 11 and sent.tip * 10 >= first_tip * 11  # >= +10% both fields
        assert chain.w3.eth.get_transaction_count(payer.address) == 1  # one nonce, mined once
    finally:
        node.kill()


# -- flaky RPC: a tiny JSON-RPC server that fails on command ----------------------------------------


class _Flaky(BaseHTTPRequestHandler):
    script: ClassVar[list[str]] = []  # per request: "503", "sleep", "ok"
    seen: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        action = self.script.pop(0) if self.script else "ok"
        self.seen.append(action)
        if action == "503":
            self.send_response(503)
            self.end_headers()
            return
        if action == "sleep":
            time.sleep(0.5)
        items = body if isinstance(body, list) else [body]
        answer = [{"jsonrpc": "2.0", "id": i["id"], "result": "0x2a"} for i in items]
        data = json.dumps(answer if isinstance(body, list) else answer[0]).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_transient_rpc_errors_are_retried_with_backoff(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.script[:] = ["503", "503", "ok"]
    transport = HTTPTransport(url, policy=RetryPolicy(attempts=4, initial=0.01))
    assert transport.request("eth_chainId") == "0x2a"
    assert handler.seen == ["503", "503", "ok"]


def test_rpc_errors_are_bounded_then_surfaced(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.script[:] = ["503"] * 10
    transport = HTTPTransport(url, policy=RetryPolicy(attempts=3, initial=0.01))
    with pytest.raises(ChainUnavailable, match="3 attempts"):
        transport.request("eth_chainId")
    assert handler.seen == ["503"] * 3


def test_rpc_timeouts_are_retried_then_surfaced(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.script[:] = ["sleep", "ok"]
    transport = HTTPTransport(url, policy=RetryPolicy(attempts=2, initial=0.01), timeout=(1.0, 0.2))
    assert transport.request("eth_chainId") == "0x2a"  # first attempt timed out, second answered
    handler.script[:] = ["sleep"] * 5
    with pytest.raises(ChainUnavailable):
        transport.request("eth_chainId")


def test_dead_endpoint_raises_chain_unavailable_quickly() -> None:
    from agentmarket.chain import free_port

    transport = HTTPTransport(f"http://127.0.0.1:{free_port()}", policy=RetryPolicy(attempts=2, initial=0.01))
    with pytest.raises(ChainUnavailable):
        transport.batch([("eth_blockNumber", []), ("eth_chainId", [])])


# -- key hygiene ---------------------------------------------------------------------------------------------

KNOWN_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def _texts(obj: Any) -> list[str]:
    out = [repr(obj), str(obj)]
    if isinstance(obj, BaseException):
        out += [repr(a) for a in obj.args] + [repr(vars(obj))]
    return out


def test_private_keys_never_in_repr_str_logs_or_exceptions(
    node: Node, reverter_artifact: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chain = node.chain()
    tx = chain.transactor
    agent = Account.from_key(KNOWN_KEY)
    tx.send_value(chain.accounts[0], agent.address, 10**18)
    reverter = chain.w3.eth.contract(
        address=tx.deploy(agent, reverter_artifact)["contractAddress"], abi=reverter_artifact["abi"]
    )
    seen: list[Any] = [tx, chain, tx.transport, tx._signer(agent), TxRequest(agent, reverter.functions.ok())]
    seen.append(tx.transact(agent, reverter.functions.ok(), gas=60_000, wait=False))
    seen += tx.transact_many([TxRequest(agent, reverter.functions.ok(), gas=60_000)] * 3, wait=False)
    with pytest.raises(ContractRevert) as reverted:  # simulated revert
        tx.transact(agent, reverter.functions.customError(7))
    seen.append(reverted.value)
    with pytest.raises(ContractRevert) as mined:  # mined revert, decoded by replay
        tx.transact(agent, reverter.functions.customError(8), gas=100_000)
    seen.append(mined.value)
    with pytest.raises(Exception) as rejected:  # node rejects: insufficient funds
        tx.transact(agent, to=agent.address, value=10**30, gas=21_000)
    seen.append(rejected.value)
    pending = tx.transact(agent, reverter.functions.ok(), gas=60_000, wait=False)
    node.kill()
    with pytest.raises(ChainUnavailable) as down:
        tx.wait(pending, timeout=5)  # type: ignore[arg-type]
    seen.append(down.value)
    with pytest.raises(ValueError) as malformed:  # a malformed key: no echo of the material
        Account.from_key(KNOWN_KEY[:-2] + "zz")
    seen.append(malformed.value)
    secret = KNOWN_KEY[2:].lower()
    corpus = "\n".join(t for obj in seen for t in _texts(obj)) + caplog.text
    assert secret not in corpus.lower()
    assert secret.upper() not in corpus
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(tx._signer(agent))
