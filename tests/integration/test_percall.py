"""The per-call path (an agent calling ``buy``, ``submit``, ``accept`` one at a time): pre-flight reads
travel in one JSON-RPC batch with the simulation, the receipt comes back with the send where the node mines
on arrival, events are decoded without web3.py's processors -- and every guarantee of the slow path holds.

Round trips are counted by recording what the Transactor's transport sends to the real node (the calls go
through unchanged); speed itself is measured by ``scripts/bench.py --only api``, never asserted here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hexbytes import HexBytes
from rpcproxy import RPCProxy

from agentmarket import Market
from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.errors import InvalidState, NotAuthorized
from agentmarket.reads import Read, event_decoder
from agentmarket.types import DealState

PRICE = 10**12


class Recorder:
    """Records the methods of every JSON-RPC batch the transport sends (then sends it unchanged)."""

    def __init__(self, chain: Chain, monkeypatch: pytest.MonkeyPatch):
        self.batches: list[list[str]] = []
        transport = chain.transactor.transport
        original = transport.batch

        def batch(calls: Any) -> list[Any]:
            self.batches.append([method for method, _ in calls])
            return original(calls)

        monkeypatch.setattr(transport, "batch", batch)

    def clear(self) -> None:
        self.batches.clear()


def _market(kind: str, request: pytest.FixtureRequest) -> Market:
    chain: Chain = request.getfixturevalue("chain" if kind == "embedded" else "anvil")
    suite: Suite = request.getfixturevalue("suite" if kind == "embedded" else "anvil_suite")
    return Market(chain, suite)


@pytest.mark.anvil
def test_a_checked_transition_is_two_round_trips_on_anvil(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = _market("anvil", request)
    buyer, seller = market.agents(2, fund=10**17)
    buyer.escrow.accept(seller.escrow.submit(buyer.buy(seller, PRICE), b"first"))  # nonces read once
    deal = buyer.buy(seller, PRICE)
    recorder = Recorder(market.chain, monkeypatch)

    deal = seller.escrow.submit(deal, b"result")
    # state + terms + clock + simulation in one batch; the send answers with the receipt
    assert recorder.batches == [
        ["eth_call", "eth_call", "eth_getBlockByNumber", "eth_call"],
        ["eth_sendRawTransactionSync"],
    ]
    recorder.clear()
    deal = buyer.escrow.accept(deal)
    assert recorder.batches == [["eth_call", "eth_call", "eth_call"], ["eth_sendRawTransactionSync"]]
    assert deal.state == DealState.ACCEPTED
    receipt = market.chain.w3.eth.get_transaction_receipt(HexBytes(deal.tx_hash))
    assert receipt["from"] == buyer.address  # the deal was read from the caller's own transaction
    assert market.escrow.status(deal.id)[0] == DealState.ACCEPTED


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_a_refused_transition_sends_nothing(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = _market(kind, request)
    buyer, seller = market.agents(2, fund=10**17)
    deal = buyer.buy(seller, PRICE)
    nonces = {a.address: market.chain.w3.eth.get_transaction_count(a.address) for a in (buyer, seller)}
    recorder = Recorder(market.chain, monkeypatch)
    with pytest.raises(InvalidState, match="FUNDED, needs SUBMITTED"):
        buyer.escrow.accept(deal)  # nothing submitted yet: the batched state read says so
    with pytest.raises(NotAuthorized):
        buyer.escrow.submit(deal, b"x")  # the buyer is not the seller
    sent = [m for batch in recorder.batches for m in batch if m.startswith("eth_sendRaw")]
    assert sent == []
    for address, nonce in nonces.items():
        assert market.chain.w3.eth.get_transaction_count(address, "pending") == nonce
    assert seller.escrow.submit(deal, b"x").state == DealState.SUBMITTED  # and the nonce was not burnt


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_stale_terms_are_rebuilt_before_sending(kind: str, request: pytest.FixtureRequest) -> None:
    market = _market(kind, request)
    buyer, seller = market.agents(2, fund=10**17)
    deal = buyer.buy(seller, PRICE)
    stale = replace(deal, terms=replace(deal.terms, amount=PRICE + 1))  # not the deal's terms on chain
    submitted = seller.escrow.submit(stale, b"result")
    assert submitted.terms == deal.terms
    assert submitted.state == DealState.SUBMITTED


def test_events_decode_as_web3_decodes_them(chain: Chain, suite: Suite) -> None:
    """Every escrow event of a few lifecycles (structs, addresses, bytes, skipped batch items) decodes to
    exactly what web3.py's ``process_log`` returns."""
    market = Market(chain, suite)
    buyer, seller = market.agents(2, fund=10**17)
    done = seller.escrow.submit(buyer.buy(seller, PRICE), b"a")
    buyer.escrow.accept(done)
    open_deal = buyer.buy(seller, PRICE)
    buyer.escrow.cancel(open_deal)  # CancelRequested: an address argument
    later = seller.escrow.submit(buyer.buy(seller, PRICE), b"b")
    buyer.escrow.accept_many([later, done])  # `done` is skipped: DealSkipped carries revert bytes
    escrow = buyer.escrow
    logs = chain.w3.eth.get_logs({"address": escrow.address, "fromBlock": 0, "toBlock": "latest"})
    seen = set()
    for log in logs:
        name = escrow._topics.get(HexBytes(log["topics"][0]))
        if name is None:
            continue
        web3_event = escrow._events[name].process_log(log)
        fast = event_decoder(escrow._events[name].abi).process_log(log)
        assert fast == web3_event
        assert type(fast["args"]) is type(web3_event["args"])
        seen.add(name)
    assert {"DealCreated", "DeliverableSubmitted", "DealAccepted", "CancelRequested", "DealSkipped"} <= seen


def test_reads_decode_as_web3_calls_them(chain: Chain, suite: Suite) -> None:
    market = Market(chain, suite)
    buyer, seller = market.agents(2, fund=10**17)
    deal = buyer.buy(seller, PRICE)
    contract = buyer.escrow.contract
    reads = [
        Read.call(contract, "dealStatus", deal.id),
        Read.call(contract, "verifyTerms", deal.id, deal.terms.as_tuple()),
        Read.call(contract, "totals", deal.terms.asset),
        Read.call(contract, "feeRecipient"),
        Read.balance(buyer.address),
    ]
    values = chain.transactor.read(reads)
    assert values[0] == tuple(contract.functions.dealStatus(deal.id).call())
    assert values[1] is True
    assert values[2] == tuple(contract.functions.totals(deal.terms.asset).call())
    assert values[3] == contract.functions.feeRecipient().call()
    assert values[4] == chain.w3.eth.get_balance(buyer.address)


# -- a node without eth_sendRawTransactionSync ----------------------------------------------------------------


@pytest.fixture
def older_node(anvil: Chain) -> Iterator[RPCProxy]:
    """An endpoint in front of the test's anvil that answers ``eth_sendRawTransactionSync`` as a node
    without EIP-7966 does (method not found) and forwards everything else."""

    def intercept(call: dict[str, Any]) -> dict[str, Any] | None:
        if call["method"] != "eth_sendRawTransactionSync":
            return None
        return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32601, "message": "Method not found"}}

    proxy = RPCProxy(str(anvil.url), intercept=intercept).start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.anvil
def test_a_node_without_the_sync_send_gets_ordinary_sends(anvil: Chain, older_node: RPCProxy) -> None:
    seen = older_node.seen
    keys = ["0x" + bytes(a.key).hex() for a in anvil.accounts[:2]]
    chain = Chain.connect(older_node.url, keys=keys)
    try:
        sender, receiver = chain.accounts
        first = chain.transactor.send_value(sender, receiver.address, 1)
        second = chain.transactor.send_value(sender, receiver.address, 2)
        assert first["status"] == second["status"] == 1
        assert anvil.w3.eth.get_transaction(first["transactionHash"])["value"] == 1
        sends = [m for m in seen if m.startswith("eth_sendRaw")]
        # asked once, refused, then the ordinary send (receipt polled) for this and every later transaction
        assert sends == ["eth_sendRawTransactionSync", "eth_sendRawTransaction", "eth_sendRawTransaction"]
    finally:
        chain.close()


@pytest.mark.anvil
def test_interval_mining_polls_for_receipts() -> None:
    chain = Chain.anvil(accounts=2, args=["--block-time", "1"])
    try:
        assert chain.transactor._instant_receipts() is False  # automine is off: no waiting send
        sender, receiver = chain.accounts
        receipt = chain.transactor.send_value(sender, receiver.address, 1)
        assert receipt["status"] == 1
    finally:
        chain.close()


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_an_offer_fill_batches_its_preflight_reads(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book's flags, the clock, the maker's counter, the taker's balance and the maker's deposit go to
    the node in one batch; web3 carries no pre-flight call of its own (only the fill chain's log lookup)."""
    market = _market(kind, request)
    maker, taker = market.agents(2, fund=10**17)
    signed = maker.offers.offer("sell", "gpu-hour", PRICE, 5)
    taker.offers.fill(signed, 1)  # warm-up: the escrow's address, nonces, fees are cached after this
    recorder = Recorder(market.chain, monkeypatch)
    via_web3 = web3_methods(market.chain, monkeypatch)
    fill = taker.offers.fill(signed, 2)
    assert recorder.batches[0] == [
        "eth_call",  # offerStatus
        "eth_getBlockByNumber",  # the pending block's clock
        "eth_call",  # counterOf(maker)
        "eth_getBalance",  # the taker's leg
        "eth_call",  # depositOf(maker)
    ]
    assert "eth_call" not in via_web3 and "eth_getBalance" not in via_web3, via_web3
    assert (fill.quantity, fill.filled, fill.taker) == (2, 3, taker.address)
    assert taker.offers.status(signed.offer).filled == 3


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_a_channel_open_batches_its_preflight_reads(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock, the channel's slot and the payer's balance in one batch, before the send."""
    market = _market(kind, request)
    payer, payee = market.agents(2, fund=10**17)
    payer.channels.open(payee.address, PRICE, ttl=3600)  # warm-up
    recorder = Recorder(market.chain, monkeypatch)
    via_web3 = web3_methods(market.chain, monkeypatch)
    channel = payer.channels.open(payee.address, 2 * PRICE, ttl=3600)
    assert recorder.batches[0] == ["eth_getBlockByNumber", "eth_call", "eth_getBalance"]
    assert "eth_call" not in via_web3 and "eth_getBalance" not in via_web3, via_web3
    assert (channel.payer, channel.payee, channel.deposit) == (payer.address, payee.address, 2 * PRICE)
    assert payer.channels.onchain(channel.id)[1] == 2 * PRICE


def web3_methods(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON-RPC methods sent through ``chain.w3``'s provider from now on (not the transport's batches)."""
    methods: list[str] = []
    provider = chain.w3.provider
    original = provider.make_request

    def make_request(method: Any, params: Any) -> Any:
        methods.append(str(method))
        return original(method, params)

    monkeypatch.setattr(provider, "make_request", make_request)
    return methods


@pytest.mark.parametrize("kind", ["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def test_an_english_bid_batches_its_clock_and_balance(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bid's clock and the bidder's balance in one batch (the auction itself comes from its events)."""
    market = _market(kind, request)
    seller, arbiter, bidder = market.agents(3, fund=10**17)
    terms = seller.auctions.template(
        7200,
        promise_delay=3600,
        terms_hash=b"\x42" * 32,
        review_window=3600,
        ruling_window=3600,
        arbiter=arbiter.address,
        bond=PRICE,
    )
    start = seller.auctions.now() + 60
    auction = seller.auctions.create_english(
        terms, reserve=PRICE, start_time=start, end_time=start + 3600, approve=True
    )
    market.chain.advance_time(120)
    recorder = Recorder(market.chain, monkeypatch)
    via_web3 = web3_methods(market.chain, monkeypatch)
    after = bidder.auctions.bid(auction, 2 * PRICE)
    assert ["eth_getBlockByNumber", "eth_getBalance"] in recorder.batches
    assert "eth_getBalance" not in via_web3, via_web3
    assert (after.leader, after.leading_amount) == (bidder.address, 2 * PRICE)
