"""The call market under random play (docs/design.md §6.1, §6.2, §6.9, §6.10, §6.12).

Makers: four EOAs (bids and asks, so self-pairs happen) and, in some batches, the template's arbiter
(whose orders are void). Rules open batches (with or without a seller bond per unit), submit bids and
asks (exact value, excess credited, or paid from credit), cancel (also as a non-maker), close the window,
clear (with the right price, or a wrong one that must be refused with the predicted error), settle in
chunks of 1-5 steps, expire and release in chunks, and withdraw credits (also more than held).

The model is independent of the contract's arithmetic: the equilibrium comes from a unit-expansion
reference (sort every unit, V = the largest k with the k-th bid >= the k-th ask, price = midpoint of the
equilibrium interval), and the settlement walk (fills in id order, pairing, credits) is replayed in Python.

After every step: the market's ETH balance equals the credits plus the locks of unprocessed orders
(solvency), every credit equals the model, each order is processed at most once and the status only moves
forward, the cleared price and volume equal the reference, every trade (bid, ask, quantity, deal) equals the
model's and every deal is opened once with the model's buyer, seller, amount and bond, and the batch the
client rebuilds from events equals the model (§6.10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from helpers import Driver, as_uint, encode_call
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from machine import ChainMachine, run_machine
from web3.logs import DISCARD

from agentmarket.chain import Chain
from agentmarket.clients.callmarket import BatchStatus, CallMarketClient, Side
from agentmarket.deploy import Suite
from agentmarket.types import ETH, ZERO_ADDRESS

pytestmark = pytest.mark.anvil

TICK_EXP = 9
TICK = 10**TICK_EXP
WINDOW = 40
SETTLE_WINDOW = 200
U64 = 2**64 - 1


def reference(bids: list[MOrder], asks: list[MOrder]) -> tuple[int, int]:
    """(volume, price) by unit expansion; at volume 0 the price the client submits."""
    b = sorted((o.price for o in bids for _ in range(o.qty)), reverse=True)
    a = sorted(o.price for o in asks for _ in range(o.qty))
    v = 0
    while v < min(len(b), len(a)) and b[v] >= a[v]:
        v += 1
    if v == 0:
        if b and a:
            return 0, (b[0] + a[0]) // 2
        return 0, (b[0] if b else a[0] if a else 0)
    lo = max(a[v - 1], b[v] if len(b) > v else 0)
    hi = min(b[v - 1], a[v] if len(a) > v else U64)
    return v, (lo + hi) // 2


@dataclass
class MOrder:
    side: Side
    id: int
    maker: str
    price: int
    qty: int
    live: bool = True  # not cancelled and not processed
    fill: int = 0
    paired: int = 0


@dataclass
class MBatch:
    id: int
    close: int
    settle_by: int
    bond: int
    arbiter: str
    terms: tuple[Any, ...]
    status: BatchStatus = BatchStatus.OPEN
    bids: list[MOrder] = field(default_factory=list)
    asks: list[MOrder] = field(default_factory=list)
    price: int = 0
    volume: int = 0
    cursor: dict[Side, int] = field(default_factory=lambda: {Side.BUY: 0, Side.SELL: 0})
    ready: dict[Side, bool] = field(default_factory=lambda: {Side.BUY: False, Side.SELL: False})
    trades: list[tuple[int, int, int, bool]] = field(default_factory=list)  # bid, ask, qty, real deal
    settled_once: bool = False  # a settle step ran (only then may a cleared batch expire in the model)

    def book(self, side: Side) -> list[MOrder]:
        return self.bids if side == Side.BUY else self.asks

    def unit_lock(self, o: MOrder) -> int:
        return o.price * TICK if o.side == Side.BUY else self.bond

    def locked(self) -> int:
        return sum(self.unit_lock(o) * (o.qty - o.paired) for o in self.bids + self.asks if o.live)


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.fast = Driver(chain)
        a = chain.accounts
        self.opener, self.makers, self.arbiter = a[0], list(a[1:5]), a[5]
        self.eoas: dict[str, LocalAccount] = {x.address: x for x in a[:6]}
        self.market, self.escrow = suite["CallMarket"], suite["AgentEscrow"]
        self.client = CallMarketClient.from_suite(suite)
        self.people = [x.address for x in (*self.makers, self.arbiter)]


class CallMarketMachine(ChainMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        e = self.e = self.env
        self.batch: MBatch | None = None
        self.done: list[MBatch] = []
        self.credits = dict(zip(e.people, self._credits(), strict=False))
        self.next_deal = as_uint(
            self.fast.calls([(e.escrow.address, encode_call("nextDealId()", [], []))])[0]
        )
        self.next_batch = as_uint(
            self.fast.calls([(e.market.address, encode_call("nextBatchId()", [], []))])[0]
        )
        self.base_balance = self.fast.eth_balances([e.market.address])[0]
        self.held = 0  # what the model says the market holds beyond base_balance
        self.base_credits = sum(self.credits.values())
        e.client.from_block = self.fast.block_number() + 1

    # -- plumbing -----------------------------------------------------------------------------------------

    def _credits(self) -> list[int]:
        e = self.e
        calls = [
            (e.market.address, encode_call("creditOf(address,address)", ["address", "address"], [p, ETH]))
            for p in e.people
        ]
        return [as_uint(r) for r in self.fast.calls(calls)]

    def act(self, sender: str, fn: Any, value: int = 0, expect: str | None = None) -> Any:
        data = fn._encode_transaction_data()
        signer, to = self.e.eoas[sender], self.e.market.address
        self.fast.tick()
        err = self.fast.simulate(signer.address, to, data, value)
        if expect is not None:
            assert err is not None and err.error_name == expect, f"expected {expect}, got {err}"
            assert not self.fast.send(signer, to, data, value, tick=False).ok
            return None
        assert err is None, f"unexpected revert {err}"
        receipt = self.fast.send(signer, to, data, value, tick=False)
        assert receipt.ok
        return receipt

    def credit(self, who: str, amount: int) -> None:
        self.credits[who] = self.credits.get(who, 0) + amount

    # -- rules ------------------------------------------------------------------------------------------------

    @precondition(lambda self: self.batch is None)
    @rule(bond=st.sampled_from([0, 0, 3 * TICK]), with_arbiter=st.booleans())
    def open_batch(self, bond: int, with_arbiter: bool) -> None:
        e = self.e
        arbiter = e.arbiter.address if with_arbiter else ZERO_ADDRESS
        terms = (e.opener.address, arbiter, ETH, bond, b"\x33" * 32, 0, 3600, 3600, 3600, 0, 0, 0, 10_000)
        close = self.fast.now + 1 + WINDOW
        self.act(e.opener.address, e.market.functions.openBatch(terms, (close, SETTLE_WINDOW, TICK_EXP)))
        self.batch = MBatch(self.next_batch, close, close + SETTLE_WINDOW, bond, arbiter, terms)
        self.next_batch += 1

    @precondition(lambda self: self.batch is not None and self.fast.now < self.batch.close)
    @rule(
        bid=st.booleans(),
        who=st.integers(0, 4),
        price=st.integers(1, 20),
        qty=st.integers(1, 3),
        pay=st.sampled_from(["exact", "exact", "excess", "credit"]),
    )
    def submit(self, bid: bool, who: int, price: int, qty: int, pay: str) -> None:
        b, e = self.batch, self.e
        assert b is not None
        maker = e.people[who]
        side = Side.BUY if bid else Side.SELL
        price = price + 4 if bid else price  # overlapping ranges: bids 5..24, asks 1..20, so books cross
        lock = price * TICK * qty if bid else b.bond * qty
        value = {"exact": lock, "excess": lock + 5 * TICK, "credit": 0}[pay]
        fns = e.market.functions
        fn = (fns.submitBid if bid else fns.submitAsk)(b.id, price, qty)
        if value < lock and self.credits[maker] < lock - value:
            self.act(maker, fn, value, expect="CallInsufficientFunds")
            return
        self.act(maker, fn, value)
        self.credit(maker, value - lock)  # the excess is credited; a shortfall came out of the credit
        self.held += value
        book = b.book(side)
        book.append(MOrder(side, len(book), maker, price, qty))

    @precondition(
        lambda self: (
            self.batch is not None
            and self.fast.now < self.batch.close
            and sum(o.live for o in self.batch.bids + self.batch.asks) >= 4
        )
    )
    @rule(data=st.data(), as_maker=st.booleans())
    def cancel(self, data: st.DataObject, as_maker: bool) -> None:
        b = self.batch
        assert b is not None
        live = [o for o in b.bids + b.asks if o.live]
        if not live:
            return
        o = data.draw(st.sampled_from(live))
        sender = o.maker if as_maker else next(p for p in self.e.people if p != o.maker)
        fn = self.e.market.functions.cancel(b.id, int(o.side), o.id)
        if not as_maker:
            self.act(sender, fn, expect="CallNotMaker")
            return
        self.act(sender, fn)
        o.live = False
        self.credit(o.maker, b.unit_lock(o) * o.qty)

    @precondition(
        lambda self: (
            self.batch is not None
            and self.fast.now <= self.batch.close
            and sum(o.live for o in self.batch.bids + self.batch.asks) >= 3
        )
    )
    @rule()
    def close_window(self) -> None:
        assert self.batch is not None
        self.fast.jump(self.batch.close - self.fast.now + 1)

    @precondition(
        lambda self: (
            self.batch is not None
            and self.batch.status == BatchStatus.OPEN
            and self.batch.close < self.fast.now + 1 <= self.batch.settle_by
        )
    )
    @rule(wrong=st.sampled_from([0, 0, 0, -1, 1, -3, 3]))
    def clear(self, wrong: int) -> None:
        b = self.batch
        assert b is not None
        bids = [o for o in b.bids if o.live and o.maker != b.arbiter]
        asks = [o for o in b.asks if o.live and o.maker != b.arbiter]
        volume, price = reference(bids, asks)
        fn = self.e.market.functions.clear
        if wrong and volume and price + wrong >= 0:
            self.fast.tick()  # simulate on the block the clearing would be mined in
            err = self.fast.simulate(
                self.e.opener.address,
                self.e.market.address,
                fn(b.id, b.terms, price + wrong)._encode_transaction_data(),
            )
            assert err is not None and err.error_name in ("CallNotEquilibrium", "CallPriceRule"), err
            return
        self.act(self.e.opener.address, fn(b.id, b.terms, price))
        b.status, b.price, b.volume = BatchStatus.CLEARED, price, volume
        for _side, orders, better in (
            (Side.BUY, bids, lambda x: x > price),
            (Side.SELL, asks, lambda x: x < price),
        ):
            tie = volume - sum(o.qty for o in orders if better(o.price))
            for o in orders:
                if better(o.price):
                    o.fill = o.qty
                elif o.price == price and volume:
                    o.fill = min(o.qty, tie)
                    tie -= o.fill

    @precondition(
        lambda self: (
            self.batch is not None
            and self.batch.status == BatchStatus.CLEARED
            and self.fast.now + 1 <= self.batch.settle_by
        )
    )
    @rule(chunk=st.integers(1, 5))
    def settle(self, chunk: int) -> None:
        b = self.batch
        assert b is not None
        receipt = self.act(self.e.opener.address, self.e.market.functions.settle(b.id, b.terms, chunk))
        b.settled_once = True
        expected = self._walk(b, chunk)
        got = [
            (
                int(ev["args"]["bidId"]),
                int(ev["args"]["askId"]),
                int(ev["args"]["quantity"]),
                int(ev["args"]["dealId"]) != 0,
            )
            for ev in self.e.market.events.TradeSettled().process_receipt(
                _own(receipt, self.e.market.address), errors=DISCARD
            )
        ]
        assert got == expected
        b.trades.extend(expected)
        self.stats["trades"] = self.stats.get("trades", 0) + len(expected)
        self.stats["self_pairs"] = self.stats.get("self_pairs", 0) + sum(1 for t in expected if not t[3])
        deals = self.e.escrow.events.DealCreated().process_receipt(
            _own(receipt, self.e.escrow.address), errors=DISCARD
        )
        real = [t for t in expected if t[3]]
        assert [int(d["args"]["dealId"]) for d in deals] == list(
            range(self.next_deal, self.next_deal + len(real))
        )
        for d, (bid, ask, q, _) in zip(deals, real, strict=False):
            deal = d["args"]["deal"]
            assert (deal["buyer"], deal["seller"]) == (b.bids[bid].maker, b.asks[ask].maker)
            assert (deal["amount"], deal["bond"]) == (b.price * TICK * q, b.bond * q)
            self.held -= b.price * TICK * q + b.bond * q
        self.next_deal += len(real)

    def _walk(self, b: MBatch, steps: int) -> list[tuple[int, int, int, bool]]:
        """The contract's settlement walk, replayed on the model; the trades of ``steps`` steps."""
        out: list[tuple[int, int, int, bool]] = []
        taken = 0
        while taken < steps:
            loaded = False
            for side in (Side.BUY, Side.SELL):
                book = b.book(side)
                if not b.ready[side] and b.cursor[side] < len(book):
                    o = book[b.cursor[side]]
                    if not o.live:
                        b.cursor[side] += 1
                        taken += 1
                    elif o.fill == 0:
                        self._finish(b, o)
                        b.cursor[side] += 1
                        taken += 1
                    else:
                        b.ready[side] = True
                    loaded = True
                    break
            if loaded:
                continue
            if b.ready[Side.BUY] and b.ready[Side.SELL]:
                bid, ask = b.bids[b.cursor[Side.BUY]], b.asks[b.cursor[Side.SELL]]
                q = min(bid.fill - bid.paired, ask.fill - ask.paired)
                bid.paired += q
                ask.paired += q
                real = bid.maker != ask.maker
                if real:
                    self.credit(bid.maker, (bid.price - b.price) * TICK * q)
                else:
                    self.credit(bid.maker, bid.price * TICK * q + b.bond * q)
                out.append((bid.id, ask.id, q, real))
                for o in (bid, ask):
                    if o.paired == o.fill:
                        self._finish(b, o)
                        b.ready[o.side] = False
                        b.cursor[o.side] += 1
                taken += 1
                continue
            b.status = BatchStatus.DONE
            break
        if (
            b.status != BatchStatus.DONE
            and not any(b.ready.values())
            and b.cursor[Side.BUY] == len(b.bids)
            and b.cursor[Side.SELL] == len(b.asks)
        ):
            b.status = BatchStatus.DONE
        if b.status == BatchStatus.DONE:
            self._retire(b)
        return out

    def _finish(self, b: MBatch, o: MOrder) -> None:
        """An order leaves the book: the lock of its untraded units returns to its maker."""
        self.credit(o.maker, b.unit_lock(o) * (o.qty - o.fill))
        o.paired = o.qty  # nothing left locked
        o.live = False

    def _retire(self, b: MBatch) -> None:
        self.done.append(b)
        self.batch = None

    @precondition(
        lambda self: (
            self.batch is not None
            and self.batch.close < self.fast.now <= self.batch.settle_by
            and (self.batch.status == BatchStatus.OPEN or self.batch.settled_once)
        )
    )
    @rule()
    def expire(self) -> None:
        assert self.batch is not None
        self.fast.jump(self.batch.settle_by - self.fast.now + 1)

    @precondition(lambda self: self.batch is not None and self.fast.now + 1 > self.batch.settle_by)
    @rule(chunk=st.integers(1, 6))
    def release(self, chunk: int) -> None:
        b = self.batch
        assert b is not None
        self.act(self.e.opener.address, self.e.market.functions.release(b.id, chunk))
        released = 0
        for side in (Side.BUY, Side.SELL):
            book = b.book(side)
            while released < chunk and b.cursor[side] < len(book):
                o = book[b.cursor[side]]
                if o.live:
                    self.credit(o.maker, b.unit_lock(o) * (o.qty - o.paired))
                    o.paired, o.live = o.qty, False
                b.cursor[side] += 1
                b.ready[side] = False
                released += 1
        if b.cursor[Side.BUY] == len(b.bids) and b.cursor[Side.SELL] == len(b.asks):
            b.status = BatchStatus.DONE
            self._retire(b)

    @precondition(lambda self: any(self.credits.values()))
    @rule(who=st.integers(0, 4), share=st.sampled_from([1, 2, 0]))
    def withdraw(self, who: int, share: int) -> None:
        maker = self.e.people[who]
        held = self.credits.get(maker, 0)
        amount = held // share if share else held + 1  # 0: more than held (all of it is sent)
        fn = self.e.market.functions.withdrawPart(ETH, maker, amount)
        if held == 0:
            self.act(maker, fn, expect="CreditsNothingToWithdraw")
        else:
            self.act(maker, fn)
            sent = min(amount, held)
            self.credits[maker] -= sent
            self.held -= sent

    # -- invariants ----------------------------------------------------------------------------------------------

    @invariant()
    def solvent_and_credits_match(self) -> None:
        self.count_step()
        e = self.e
        assert self._credits() == [self.credits.get(p, 0) for p in e.people]
        balance = self.fast.eth_balances([e.market.address])[0] - self.base_balance
        locked = self.batch.locked() if self.batch else 0
        assert balance == self.held == sum(self.credits.values()) - self.base_credits + locked

    @invariant()
    def status_and_price_match(self) -> None:
        b = self.batch
        if b is None:
            return
        info = self.e.market.functions.batchInfo(b.id).call()
        assert (BatchStatus(info[7]), info[8], info[9]) == (b.status, b.price, b.volume)

    def teardown(self) -> None:
        try:
            for b in [*self.done, *([self.batch] if self.batch else [])]:
                rebuilt = self.e.client.batch(b.id)
                assert rebuilt.status == b.status and (rebuilt.price_ticks, rebuilt.volume) == (
                    b.price,
                    b.volume,
                )
                assert [(t.bid_id, t.ask_id, t.quantity, t.deal_id != 0) for t in rebuilt.trades] == b.trades
                assert [o.maker for o in rebuilt.bids] == [o.maker for o in b.bids]
        finally:
            super().teardown()


def _own(receipt: Any, address: str) -> Any:
    """The receipt with only the logs of ``address`` (so events of other contracts do not warn)."""
    return {**receipt, "logs": [log for log in receipt["logs"] if log["address"] == address]}


@pytest.mark.anvil
def test_call_market_machine(request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite) -> None:
    CallMarketMachine.env = Env(anvil, anvil_suite)
    # long profile (`make fuzz`): 150 examples of up to 80 steps, >= 10,000 steps (100 x 80 stopped at 8,000)
    run_machine(request, CallMarketMachine, CallMarketMachine.env.fast, default=(8, 50), long=(150, 80))
    # how much settling the random run did (printed with -s; the tests above cover fixed cases)
    print(f"call market machine: {CallMarketMachine.stats}")
