"""Call market: uniform-price batches, on-chain verification of the clearing, chunked settlement into
escrow deals, expiry exits, ERC-20 batches, client pre-flight; one run on anvil.

Solvency (docs/design.md §6.1) is checked at the end of every test that moves money: the market's balance of the
asset equals the makers' credits plus the locks still held by unprocessed orders, and the escrow is solvent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from helpers import assert_escrow_solvent, deploy, mint

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.base import balance_of
from agentmarket.clients.callmarket import (
    BatchStatus,
    CallBatch,
    CallMarketClient,
    CallOrder,
    Side,
    compute_clearing,
)
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import ETH, DealState

E = errors.revert_class
HOUR = 3600
TICK = 10**12  # tick_exp 12


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.chain, self.suite = chain, suite
        self.opener, *self.makers = chain.accounts[:10]
        start = chain.w3.eth.block_number + 1
        self.cm = CallMarketClient(chain, suite["CallMarket"], self.opener, from_block=start)
        self.escrow = EscrowClient(chain, suite["AgentEscrow"], self.opener, from_block=start)

    def m(self, i: int) -> CallMarketClient:
        return self.cm.as_(self.makers[i])

    def open(self, closes_in: int = 100, **terms: Any) -> CallBatch:
        terms.setdefault("tick_exp", 12)
        return self.cm.open_batch("gpu-hour/h100", closes_in=closes_in, settle_window=HOUR, **terms)

    def place(
        self, batch: CallBatch, bids: Iterable[tuple[int, int, int]], asks: Iterable[tuple[int, int, int]]
    ) -> None:
        """(maker index, price ticks, quantity) per order, in that order (ids follow)."""
        for i, p, q in bids:
            self.m(i).submit_bid(batch, p, q)
        for i, p, q in asks:
            self.m(i).submit_ask(batch, p, q)

    def close(self, batch: CallBatch) -> None:
        self.chain.travel_to(batch.close_time + 1)

    def solvent(self, batches: Iterable[CallBatch], asset: str = ETH) -> None:
        held = balance_of(self.chain.w3, asset, self.cm.address)
        credits = sum(self.cm.credit_of(a.address, asset) for a in self.chain.accounts)
        locked = sum(self.cm.locked_in_orders(b) for b in batches)
        assert held == credits + locked, f"market holds {held}, credits {credits} + locked {locked}"
        assert_escrow_solvent(self.escrow, [asset])


@pytest.fixture
def env(chain: Chain, suite: Suite) -> Env:
    return Env(chain, suite)


def test_uniform_price_midpoint_fills_deals_and_refunds(env: Env) -> None:
    b = env.open()
    # bid units 120 120 110 100 100 100; ask units 90 90 105 105 130: V = 3, interval [105, 105]
    env.place(b, [(0, 120, 2), (1, 110, 1), (2, 100, 3)], [(3, 90, 2), (4, 105, 2), (5, 130, 1)])
    before = {i: env.cm.credit_of(env.makers[i].address) for i in range(6)}
    env.close(b)
    b = env.cm.clear(b)
    assert (b.price_ticks, b.volume, b.status) == (105, 3, BatchStatus.CLEARED)
    trades = env.cm.settle(b)
    assert [(t.bid_id, t.ask_id, t.quantity) for t in trades] == [(0, 0, 2), (1, 1, 1)]
    for t in trades:
        deal = env.escrow.deal(t.deal_id)
        assert deal.state == DealState.FUNDED and deal.opened_by == env.cm.address
        assert (deal.buyer, deal.seller, deal.amount) == (t.buyer, t.seller, 105 * TICK * t.quantity)
    credit = {i: env.cm.credit_of(env.makers[i].address) - before[i] for i in range(6)}
    # each bid pays the uniform price, the rest of its lock comes back; the unfilled bid gets it all
    assert credit[0] == 2 * (120 - 105) * TICK and credit[1] == 5 * TICK and credit[2] == 300 * TICK
    assert env.cm.batch(b.id).status == BatchStatus.DONE
    env.solvent([b])


def test_ties_at_the_price_fill_in_id_order(env: Env) -> None:
    b = env.open()
    # supply 3 units at 50; three bids at exactly 80 for 2 units each: the price is 80 (bid side long)
    env.place(b, [(0, 80, 2), (1, 80, 2), (2, 80, 2)], [(3, 50, 3)])
    env.close(b)
    clearing = env.cm.compute_clearing(b.id)
    assert (clearing.price_ticks, clearing.volume) == (80, 3)
    assert [clearing.fills[(Side.BUY, i)] for i in range(3)] == [2, 1, 0]
    b = env.cm.clear(b)
    trades = env.cm.settle(b)
    assert [(t.bid_id, t.quantity) for t in trades] == [(0, 2), (1, 1)]
    assert env.cm.credit_of(env.makers[1].address) == 80 * TICK  # its unfilled unit
    env.solvent([b])


def test_every_wrong_price_is_rejected_with_the_right_error(env: Env) -> None:
    b = env.open()
    env.place(b, [(0, 120, 2), (1, 110, 1), (2, 100, 3)], [(3, 90, 2), (4, 104, 1), (5, 130, 1)])
    env.close(b)
    right = env.cm.compute_clearing(b.id).price_ticks  # interval [104, 110] -> 107
    assert right == 107
    fn = env.cm.contract.functions
    for p in range(85, 135):
        if p == right:
            continue
        with pytest.raises((E("CallNotEquilibrium"), E("CallPriceRule"))) as info:
            env.chain.transactor.call(fn.clear(b.id, b.terms.as_tuple(), p), sender=env.opener.address)
        if 104 <= p <= 110:  # an equilibrium, but not the midpoint: the error names the right one
            assert info.value.error_name == "CallPriceRule" and info.value.expectedTicks == right
        else:
            assert info.value.error_name == "CallNotEquilibrium"
    assert env.cm.clear(b).price_ticks == right


def test_no_cross_clears_empty_and_refunds_everything(env: Env) -> None:
    b = env.open()
    env.place(b, [(0, 50, 1), (1, 60, 2)], [(2, 70, 1), (3, 80, 5)])
    env.close(b)
    b = env.cm.clear(b)
    assert b.volume == 0 and 60 <= b.price_ticks <= 70
    assert env.cm.settle(b) == []
    assert env.cm.credit_of(env.makers[1].address) == 120 * TICK
    env.solvent([b])


def test_chunked_settlement_matches_one_shot_and_keeps_progress(env: Env) -> None:
    b = env.open()
    bids = [(i % 4, 100 + 3 * i, 1 + i % 3) for i in range(8)]
    asks = [(4 + i % 4, 90 + 2 * i, 1 + (i + 1) % 3) for i in range(8)]
    env.place(b, bids, asks)
    env.close(b)
    expected = env.cm.compute_clearing(b.id)
    b = env.cm.clear(b)
    assert (b.price_ticks, b.volume) == (expected.price_ticks, expected.volume)
    steps = 0
    done = False
    while not done:
        _, done = env.cm.settle_chunk(b, 1)
        steps += 1
    trades = env.cm.trades(b)
    assert steps > len(trades) >= 2 and sum(t.quantity for t in trades) == b.volume
    for side, book in ((Side.BUY, "bid_id"), (Side.SELL, "ask_id")):
        for (s, oid), fill in expected.fills.items():
            if s == side:
                assert sum(t.quantity for t in trades if getattr(t, book) == oid) == fill
    with pytest.raises(errors.InvalidState):
        env.cm.settle_chunk(b, 5)
    env.solvent([b])


def test_bonded_batch_locks_bonds_and_deals_carry_them(env: Env) -> None:
    bond = 7 * TICK
    b = env.open(bond=bond)
    env.place(b, [(0, 100, 2)], [(1, 80, 3)])
    assert env.cm.locked_in_orders(b) == 200 * TICK + 3 * bond
    env.close(b)
    b = env.cm.clear(b)
    (trade,) = env.cm.settle(b)
    deal = env.escrow.deal(trade.deal_id)
    assert (deal.amount, deal.bond, deal.state) == (
        80 * TICK * 2,
        2 * bond,
        DealState.FUNDED,
    )  # ask side long at 80
    assert env.cm.credit_of(env.makers[1].address) == bond  # the unsold unit's bond
    env.solvent([b])


def test_window_and_deadline_boundaries(env: Env) -> None:
    b = env.open(closes_in=50)
    fns, tx = env.cm.contract.functions, env.chain.transactor
    env.chain.set_next_timestamp(b.close_time)  # the last second of the window still takes orders
    tx.transact(env.makers[0], fns.submitBid(b.id, 100, 1), value=100 * TICK)
    env.chain.set_next_timestamp(b.close_time + 1)
    with pytest.raises(E("CallWindowClosed")):
        tx.transact(env.makers[1], fns.submitAsk(b.id, 90, 1), gas=300_000)
    tx.transact(env.makers[1], fns.deposit(ETH, 0), value=1, gas=300_000)  # moves the clock on
    env.chain.travel_to(b.settle_by + 1)
    with pytest.raises(E("CallDeadlinePassed")):
        tx.call(fns.clear(b.id, b.terms.as_tuple(), 100), sender=env.opener.address)
    b = env.cm.release(b)
    assert b.status == BatchStatus.DONE and b.expired
    assert env.cm.credit_of(env.makers[0].address) == 100 * TICK
    env.solvent([b])


def test_clear_too_early_and_release_too_early(env: Env) -> None:
    b = env.open(closes_in=500)
    env.place(b, [(0, 100, 1)], [(1, 90, 1)])
    fns, tx = env.cm.contract.functions, env.chain.transactor
    with pytest.raises(E("CallWindowOpen")):
        tx.call(fns.clear(b.id, b.terms.as_tuple(), 95), sender=env.opener.address)
    with pytest.raises(E("CallDeadlineNotReached")):
        tx.call(fns.release(b.id, 10), sender=env.opener.address)
    with pytest.raises(errors.InvalidState):
        env.cm.clear(b)


def test_partially_settled_batch_expires_and_everything_comes_back(env: Env) -> None:
    b = env.open()
    env.place(b, [(0, 100, 3), (1, 100, 1)], [(2, 90, 1), (3, 90, 1), (4, 95, 2)])
    env.close(b)
    b = env.cm.clear(b)
    env.cm.settle_chunk(b, 1)  # one deal, bid 0 still has units to pair
    assert len(env.cm.trades(b)) == 1
    env.chain.travel_to(b.settle_by + 1)
    with pytest.raises(errors.InvalidState):
        env.cm.settle_chunk(b, 10)
    # bid 0 (partly paired) released on its own; the walk releases the rest
    env.cm.reclaim(b.bids[0])
    assert env.cm.credit_of(env.makers[0].address) == 2 * 100 * TICK + (100 - b.price_ticks) * TICK
    with pytest.raises(errors.InvalidState):
        env.cm.reclaim(b.bids[0])
    b = env.cm.release(b)
    assert b.status == BatchStatus.DONE and b.expired
    assert env.cm.credit_of(env.makers[1].address) == 100 * TICK
    env.solvent([b])


def test_arbiter_orders_are_void(env: Env) -> None:
    arbiter = env.makers[8]
    b = env.open(arbiter=arbiter.address)
    env.place(b, [(0, 100, 1), (8, 150, 1)], [(1, 90, 1)])
    env.close(b)
    bids, _ = env.cm.batch(b.id).live()
    assert [o.maker for o in bids] == [env.makers[0].address]
    b = env.cm.clear(b)
    (trade,) = env.cm.settle(b)
    assert trade.buyer == env.makers[0].address and b.price_ticks == 95
    assert env.cm.credit_of(arbiter.address) == 150 * TICK
    env.solvent([b])


def test_cancel_in_window_and_credit_reuse(env: Env) -> None:
    b = env.open()
    order = env.m(0).submit_bid(b, 100, 2)
    env.m(0).cancel(order)
    assert env.cm.credit_of(env.makers[0].address) == 200 * TICK
    # the credit pays the next order: no value sent
    bal = env.chain.w3.eth.get_balance(env.makers[0].address)
    again = env.m(0).submit_bid(b, 50, 4)
    assert env.cm.credit_of(env.makers[0].address) == 0 and again.id == 1
    receipt = env.chain.w3.eth.get_transaction(again.tx_hash)
    assert receipt["value"] == 0 and env.chain.w3.eth.get_balance(env.makers[0].address) < bal
    with pytest.raises(errors.NotAuthorized):
        env.m(1).cancel(again)
    with pytest.raises(E("CallNotMaker")):
        env.chain.transactor.call(
            env.cm.contract.functions.cancel(b.id, 1, again.id), sender=env.makers[1].address
        )


def test_erc20_batch_pulls_locks_and_settles(env: Env) -> None:
    token = deploy(env.chain, "MockERC20", "Mock USD", "mUSD", 18)
    mint(env.chain, token, env.makers[:4], 10**24)
    b = env.open(asset=token.address)
    with pytest.raises(errors.InsufficientAllowance):
        env.m(0).submit_bid(b, 100, 2)
    env.m(0).submit_bid(b, 100, 2, approve=True)
    env.m(1).submit_ask(b, 90, 2)
    env.close(b)
    b = env.cm.clear(b)
    (trade,) = env.cm.settle(b)
    deal = env.escrow.deal(trade.deal_id)
    assert deal.asset == token.address and deal.amount == 2 * 95 * TICK
    env.m(0).withdraw(token.address)
    assert env.cm.credit_of(env.makers[0].address, token.address) == 0
    env.solvent([b], token.address)


def test_client_preflight_raises_before_sending(env: Env) -> None:
    b = env.open()
    poor = env.chain.new_account()
    client = env.cm.as_(poor)
    nonce = env.chain.w3.eth.get_transaction_count(poor.address)
    with pytest.raises(errors.InsufficientFunds):
        client.submit_bid(b, 100, 1)
    with pytest.raises(errors.InvalidInput):
        client.submit_bid(b, 0, 1)
    with pytest.raises(errors.InvalidState):
        client.withdraw()
    with pytest.raises(errors.InvalidState):
        client.settle_chunk(b)
    assert env.chain.w3.eth.get_transaction_count(poor.address) == nonce


def test_compute_clearing_reference_examples() -> None:
    def orders(side: Side, spec: list[tuple[int, int]]) -> list[CallOrder]:
        return [
            CallOrder(1, side, i, "0x" + "00" * 19 + f"{i + 1:02x}", p, q) for i, (p, q) in enumerate(spec)
        ]

    # one bid, one ask: the midpoint
    c = compute_clearing(orders(Side.BUY, [(100, 1)]), orders(Side.SELL, [(60, 1)]))
    assert (c.price_ticks, c.volume) == (80, 1)
    # excluded (V+1)-th bid above the marginal ask bounds the price from below
    c = compute_clearing(orders(Side.BUY, [(100, 1), (90, 1)]), orders(Side.SELL, [(10, 1), (95, 1)]))
    assert (c.price_ticks, c.volume) == (92, 1)  # interval [max(10, 90), min(100, 95)] = [90, 95]


@pytest.mark.anvil
def test_anvil_batch_round_trip_and_typed_revert(anvil: Chain, anvil_suite: Suite) -> None:
    cm = CallMarketClient.from_suite(anvil_suite, anvil.accounts[0])
    b = cm.open_batch("gpu-hour/h100", closes_in=30, tick_exp=12)
    cm.as_(anvil.accounts[1]).submit_bid(b, 120, 2)
    cm.as_(anvil.accounts[2]).submit_ask(b, 100, 2)
    anvil.advance_time(31)
    with pytest.raises(E("CallPriceRule")):
        anvil.transactor.call(
            cm.contract.functions.clear(b.id, b.terms.as_tuple(), 101), sender=anvil.accounts[0].address
        )
    b = cm.clear(b)
    (trade,) = cm.settle(b)
    assert (b.price_ticks, trade.quantity, trade.amount) == (110, 2, 2 * 110 * TICK)
    assert EscrowClient.from_suite(anvil_suite).deal(trade.deal_id).state == DealState.FUNDED


def test_an_order_left_ready_by_one_chunk_is_paired_by_the_next(env: Env) -> None:
    """Regression (found by the property machine): a bid loaded in one settle call and paired in the next
    must be read back from storage (the walk word keeps only its fill and paired units)."""
    b = env.open()
    env.place(b, [(0, 100, 2)], [(1, 200, 1), (2, 90, 1), (3, 90, 1)])
    env.close(b)
    b = env.cm.clear(b)
    _, done = env.cm.settle_chunk(b, 1)  # loads bid 0 (ready) and finishes ask 0 (unfilled): 1 step
    assert not done and env.cm.trades(b) == []
    _, done = env.cm.settle_chunk(b, 1)
    (trade,) = env.cm.trades(b)
    assert (trade.buyer, trade.seller, trade.amount) == (
        env.makers[0].address,
        env.makers[2].address,
        95 * TICK,
    )  # midpoint of [90, 100]
    env.cm.settle(b)
    assert [t.ask_id for t in env.cm.trades(b)] == [1, 2]
    env.solvent([b])


def test_agents_and_market_reach_the_call_market(env: Env) -> None:
    from agentmarket.agent import Agent
    from agentmarket.market import Market

    buyer = Agent(env.makers[0], env.chain, env.suite, name="buyer")
    seller = Agent(env.makers[1], env.chain, env.suite, name="seller")
    b = env.open()
    buyer.call.submit_bid(b, 100, 1)
    seller.call.submit_ask(b, 80, 1)
    env.close(b)
    view = Market(env.chain, env.suite).call_market
    assert view.compute_clearing(b.id).price_ticks == 90
    assert buyer.call.clear(b).price_ticks == 90
