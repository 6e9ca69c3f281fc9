"""CallMarketClient: batches of a uniform-price call market, cleared off chain and verified on chain.

A batch trades one resource (an escrow :class:`~agentmarket.clients.auctions.DealTemplate`, ``bond`` per
unit) during a window. Makers submit bids and asks (price in ticks per unit, quantity); funds are locked in
their market account. After the window anyone clears: :func:`compute_clearing` finds the uniform price off
chain (midpoint of the equilibrium interval, ties at the price filled in order-id order) and the contract
verifies it in one pass. Settlement pairs fills in id order into escrow deals, in chunks::

    cm = CallMarketClient.from_suite(suite, opener)
    batch = cm.open_batch("gpu-hour/h100", closes_in=60, delivery_delay=3600)
    cm.as_(buyer).submit_bid(batch, price_ticks=120, quantity=2)
    cm.as_(seller).submit_ask(batch, price_ticks=100, quantity=2)
    # ... after the window
    cm.clear(batch)                      # computes and submits the equilibrium price
    trades = cm.settle(batch)            # chunks until every order is processed
    [(t.buyer, t.seller, t.quantity, t.amount, t.deal_id) for t in trades]

Every check that can fail on chain (window, state, deadlines, funds, allowance, maker) raises a
:mod:`agentmarket.errors` pre-flight error before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from ..errors import InsufficientAllowance, InsufficientFunds, InvalidInput, InvalidState, NotAuthorized
from ..types import ETH, ZERO_ADDRESS, DealTemplate
from .base import ContractClient, balance_of
from .offers import Side, resource_id

__all__ = [
    "BatchStatus",
    "CallBatch",
    "CallMarketClient",
    "CallOrder",
    "CallTrade",
    "Clearing",
    "Side",
    "compute_clearing",
]

U32 = 2**32 - 1
U64 = 2**64 - 1
U128 = 2**128 - 1
MAX_TICK_EXP = 30

_BATCH_EVENTS = (
    "BatchOpened",
    "OrderPlaced",
    "OrderCancelled",
    "BatchCleared",
    "TradeSettled",
    "BatchDone",
    "OrderReclaimed",
)


class BatchStatus(IntEnum):
    """Mirror of the Solidity ``BatchStatus`` enum."""

    NONE = 0
    OPEN = 1  # orders while now <= close_time; then waiting to be cleared
    CLEARED = 2  # price verified; settlement in progress
    DONE = 3  # every order settled or released


@dataclass(frozen=True)
class CallOrder:
    """One bid (``Side.BUY``) or ask (``Side.SELL``) of a batch, as placed."""

    batch_id: int
    side: Side
    id: int
    maker: str
    price_ticks: int
    quantity: int
    cancelled: bool = False
    reclaimed: bool = False
    tx_hash: str | None = field(default=None, compare=False)

    @property
    def is_bid(self) -> bool:
        return self.side == Side.BUY


@dataclass(frozen=True)
class CallTrade:
    """``quantity`` units of bid ``bid_id`` paired with ask ``ask_id`` into escrow deal ``deal_id``
    (0: both orders were the same maker's, a no-op). ``amount`` is what the buyer paid into the deal."""

    batch_id: int
    deal_id: int
    bid_id: int
    ask_id: int
    buyer: str
    seller: str
    quantity: int
    amount: int
    bond: int
    tx_hash: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Clearing:
    """The uniform-price equilibrium of a batch's live orders: price (ticks), volume and each order's fill
    (keyed by ``(side, order id)``; orders left out have fill 0)."""

    price_ticks: int
    volume: int
    fills: Mapping[tuple[Side, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class CallBatch:
    """One batch rebuilt from its events (and status read from the contract)."""

    id: int
    opener: str
    terms: DealTemplate
    close_time: int
    settle_by: int
    tick_exp: int
    status: BatchStatus = BatchStatus.OPEN
    bids: tuple[CallOrder, ...] = ()
    asks: tuple[CallOrder, ...] = ()
    price_ticks: int = 0
    volume: int = 0
    trades: tuple[CallTrade, ...] = ()
    expired: bool = False

    @property
    def asset(self) -> str:
        return self.terms.asset

    @property
    def tick(self) -> int:
        return int(10**self.tick_exp)

    @property
    def bond_per_unit(self) -> int:
        return int(self.terms.bond)

    @property
    def price(self) -> int:
        """Clearing price per unit in asset units (0 until cleared)."""
        return self.price_ticks * self.tick

    def live(self) -> tuple[list[CallOrder], list[CallOrder]]:
        """(bids, asks) that take part in the clearing: not cancelled, not the arbiter's."""
        arbiter = self.terms.arbiter

        def ok(o: CallOrder) -> bool:
            return not o.cancelled and (arbiter == ZERO_ADDRESS or o.maker != arbiter)

        return [o for o in self.bids if ok(o)], [o for o in self.asks if ok(o)]


def _nth_unit(orders: Sequence[tuple[int, int]], n: int) -> int | None:
    """The price of the ``n``-th unit (1-based) of ``orders`` (already in priority order), or None."""
    seen = 0
    for price, qty in orders:
        seen += qty
        if seen >= n:
            return price
    return None


def compute_clearing(bids: Iterable[CallOrder], asks: Iterable[CallOrder]) -> Clearing:
    """The equilibrium the contract accepts, for the live orders given (see ``ICallMarket``).

    Volume V is the largest min(D(p), S(p)); the price is the midpoint (rounded down) of the equilibrium
    interval [max(a_V, b_(V+1)), min(b_V, a_(V+1))] of unit prices; at V = 0 a separating price. Fills:
    better-priced orders in full, orders at the price in id order until V is reached.
    """
    bid_list = sorted(bids, key=lambda o: o.id)
    ask_list = sorted(asks, key=lambda o: o.id)
    by_bid = sorted(((o.price_ticks, o.quantity) for o in bid_list), key=lambda x: -x[0])
    by_ask = sorted(((o.price_ticks, o.quantity) for o in ask_list), key=lambda x: x[0])
    volume = 0
    for p in {o.price_ticks for o in bid_list} | {o.price_ticks for o in ask_list}:
        demand = sum(q for price, q in by_bid if price >= p)
        supply = sum(q for price, q in by_ask if price <= p)
        volume = max(volume, min(demand, supply))
    if volume == 0:
        top = by_bid[0][0] if by_bid else None
        bottom = by_ask[0][0] if by_ask else None
        if top is not None and bottom is not None:
            price = (top + bottom) // 2
        else:
            price = top if top is not None else (bottom if bottom is not None else 0)
    else:
        b_v, a_v = _nth_unit(by_bid, volume), _nth_unit(by_ask, volume)
        b_next, a_next = _nth_unit(by_bid, volume + 1), _nth_unit(by_ask, volume + 1)
        assert b_v is not None and a_v is not None
        lo = max(a_v, b_next if b_next is not None else 0)
        hi = min(b_v, a_next if a_next is not None else U64)
        price = (lo + hi) // 2
    fills: dict[tuple[Side, int], int] = {}
    for side, orders in ((Side.BUY, bid_list), (Side.SELL, ask_list)):

        def better(x: int, side: Side = side) -> bool:
            return x > price if side == Side.BUY else x < price

        strict = sum(o.quantity for o in orders if better(o.price_ticks))
        tie = volume - strict
        for o in orders:
            if better(o.price_ticks):
                fills[(side, o.id)] = o.quantity
            elif o.price_ticks == price and volume:
                take = min(o.quantity, tie)
                tie -= take
                fills[(side, o.id)] = take
            else:
                fills[(side, o.id)] = 0
    return Clearing(price, volume, fills)


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


BatchRef = CallBatch | int


class CallMarketClient(ContractClient):
    """Client for the ``CallMarket`` singleton, acting as ``account`` (None for reads only)."""

    ARTIFACT = "CallMarket"
    SPENDER = "call market"
    EVENTS = (*_BATCH_EVENTS, "Deposited", "Withdrawn")
    _max_orders: int | None = None  # read once, on first use

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # block each known batch was opened in: its lookups scan from there (shared by as_() clones)
        self._origins: dict[int, int] = {}

    # -- reads -------------------------------------------------------------------------------------------

    def credit_of(self, who: str | None = None, asset: str = ETH) -> int:
        """The market credit of ``who`` (default: this client's account) in ``asset``: refunds of
        processed orders and deposits, withdrawable or spendable on orders."""
        owner = to_checksum_address(who or self._me())
        return int(self.contract.functions.creditOf(owner, to_checksum_address(asset)).call())

    def locked_in_orders(self, ref: BatchRef) -> int:
        """What the batch's unprocessed orders still hold (their locks, less units already paired)."""
        b = self.batch(ref)
        fns = self.contract.functions
        bid_cursor, ask_cursor, bid_paired, ask_paired = fns.progressOf(b.id).call()
        total = 0
        for side, book, cursor, paired in (
            (Side.BUY, b.bids, bid_cursor, bid_paired),
            (Side.SELL, b.asks, ask_cursor, ask_paired),
        ):
            for o in book:
                maker, _, qty = fns.orderOf(b.id, int(side), o.id).call()
                if int(maker, 16) == 0:
                    continue
                units = qty - (paired if o.id == cursor else 0)
                total += units * (o.price_ticks * b.tick if side == Side.BUY else b.bond_per_unit)
        return total

    def batch(self, ref: BatchRef) -> CallBatch:
        """Rebuild batch ``ref`` from its events; its status from the contract."""
        batch_id = ref.id if isinstance(ref, CallBatch) else int(ref)
        topics = [
            ["0x" + bytes(t).hex() for t, n in self._topics.items() if n in _BATCH_EVENTS],
            "0x" + batch_id.to_bytes(32, "big").hex(),
        ]
        origin = self._origins.get(batch_id)
        logs = self._logs(topics, from_block=origin)
        try:
            batch = self._fold(batch_id, logs)
        except InvalidInput:
            if origin is None:
                raise
            # the remembered first block is stale: a reorg (or a test's snapshot revert) reopened the batch
            # at another height; read again from the deployment block
            del self._origins[batch_id]
            logs = self._logs(topics, from_block=None)
            batch = self._fold(batch_id, logs)
        if logs:
            self._origins[batch_id] = min(int(x["blockNumber"]) for x in logs)
        info = self.contract.functions.batchInfo(batch_id).call()
        return replace(batch, status=BatchStatus(info[7]))

    def batches(self) -> list[CallBatch]:
        """Every batch opened so far (ids 1 .. nextBatchId - 1)."""
        return [self.batch(i) for i in range(1, int(self.contract.functions.nextBatchId().call()))]

    def trades(self, ref: BatchRef) -> list[CallTrade]:
        """The settled pairs of a batch (each with its escrow deal id), in settlement order."""
        return list(self.batch(ref).trades)

    def compute_clearing(self, ref: BatchRef) -> Clearing:
        """The equilibrium of the batch's live orders (what :meth:`clear` submits)."""
        batch = self.batch(ref) if isinstance(ref, int) else ref
        bids, asks = batch.live()
        return compute_clearing(bids, asks)

    # -- event folding -----------------------------------------------------------------------------------

    def _decode(self, log: Any) -> tuple[str, Any] | None:
        if not log["topics"]:
            return None
        name = self._topics.get(HexBytes(log["topics"][0]))
        if name is None:
            return None
        return name, self._events[name].process_log(log)

    def _fold(self, batch_id: int, logs: Sequence[Any]) -> CallBatch:
        batch: CallBatch | None = None
        bids: dict[int, CallOrder] = {}
        asks: dict[int, CallOrder] = {}
        trades: list[CallTrade] = []
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            decoded = self._decode(log)
            if decoded is None:
                continue
            name, event = decoded
            args = event["args"]
            tx = _tx(log)
            if name == "BatchOpened":
                params = args["params"]
                close, window, tick_exp = (
                    (params["closeTime"], params["settleWindow"], params["tickExp"])
                    if isinstance(params, Mapping)
                    else params
                )
                batch = CallBatch(
                    id=batch_id,
                    opener=to_checksum_address(args["opener"]),
                    terms=DealTemplate.from_abi(args["terms"]),
                    close_time=int(close),
                    settle_by=int(close) + int(window),
                    tick_exp=int(tick_exp),
                )
            elif batch is None:
                continue
            elif name == "OrderPlaced":
                side = Side(args["side"])
                order = CallOrder(
                    batch_id,
                    side,
                    int(args["orderId"]),
                    to_checksum_address(args["maker"]),
                    int(args["priceTicks"]),
                    int(args["quantity"]),
                    tx_hash=tx,
                )
                (bids if side == Side.BUY else asks)[order.id] = order
            elif name in ("OrderCancelled", "OrderReclaimed"):
                book = bids if Side(args["side"]) == Side.BUY else asks
                oid = int(args["orderId"])
                if oid in book and name == "OrderCancelled":
                    book[oid] = replace(book[oid], cancelled=True)
                elif oid in book:
                    book[oid] = replace(book[oid], reclaimed=True)
            elif name == "BatchCleared":
                batch = replace(batch, price_ticks=int(args["priceTicks"]), volume=int(args["volume"]))
            elif name == "TradeSettled":
                q = int(args["quantity"])
                bid, ask = bids[int(args["bidId"])], asks[int(args["askId"])]
                deal_id = int(args["dealId"])
                trades.append(
                    CallTrade(
                        batch_id,
                        deal_id,
                        bid.id,
                        ask.id,
                        bid.maker,
                        ask.maker,
                        q,
                        batch.price * q if deal_id else 0,
                        batch.bond_per_unit * q if deal_id else 0,
                        tx_hash=tx,
                    )
                )
            elif name == "BatchDone":
                batch = replace(batch, status=BatchStatus.DONE, expired=bool(args["expired"]))
        if batch is None:
            raise InvalidInput(f"no batch {batch_id} in call market {self.address}")
        return replace(
            batch,
            bids=tuple(bids[i] for i in sorted(bids)),
            asks=tuple(asks[i] for i in sorted(asks)),
            trades=tuple(trades),
        )

    # -- batches ---------------------------------------------------------------------------------------

    def open_batch(
        self,
        resource: str | bytes | DealTemplate,
        *,
        closes_in: int | None = None,
        close_time: int | None = None,
        settle_window: int = 3600,
        tick_exp: int = 0,
        **terms: Any,
    ) -> CallBatch:
        """Open a batch for ``resource`` (a name, a 32-byte terms hash, or a ready template whose
        ``creator`` is this account). ``terms`` are :class:`DealTemplate` fields (``delivery_delay``,
        ``bond`` per unit, ``asset``, ``arbiter``, ...). Orders until ``close_time`` (or now +
        ``closes_in``); clearing and settlement until ``settle_window`` seconds after it."""
        me = to_checksum_address(self._me())
        if isinstance(resource, DealTemplate):
            template = resource
        else:
            terms.setdefault("delivery_delay", 3600)
            template = DealTemplate(creator=me, terms_hash=resource_id(resource), **terms)
        template.validate()
        if template.creator != me:
            raise NotAuthorized(f"the template's creator is {template.creator}; only it can open the batch")
        now = self.now()
        if close_time is None:
            close_time = now + (closes_in if closes_in is not None else 300)
        if close_time < now:
            raise InvalidInput(f"close_time {close_time} is in the past (next block {now})")
        if not 0 < settle_window <= U32:
            raise InvalidInput(f"settle_window {settle_window} must be in 1..2^32-1 seconds")
        if not 0 <= tick_exp <= MAX_TICK_EXP:
            raise InvalidInput(f"tick_exp {tick_exp} outside 0..{MAX_TICK_EXP}")
        receipt = self._send(
            self.contract.functions.openBatch(template.as_tuple(), (close_time, settle_window, tick_exp))
        )
        for log in receipt["logs"]:
            decoded = self._decode(log) if to_checksum_address(log["address"]) == self.address else None
            if decoded and decoded[0] == "BatchOpened":
                batch_id = int(decoded[1]["args"]["batchId"])
                self._origins[batch_id] = int(receipt["blockNumber"])
                return self.batch(batch_id)
        raise InvalidState(f"transaction {_tx(receipt)} emitted no BatchOpened")

    def _current(self, ref: BatchRef) -> CallBatch:
        return self.batch(ref)

    # -- orders ----------------------------------------------------------------------------------------

    def submit_bid(
        self, batch: BatchRef, price_ticks: int, quantity: int = 1, *, approve: bool = False
    ) -> CallOrder:
        """Bid for ``quantity`` units at most ``price_ticks`` ticks each. Locks price x tick x quantity,
        taken from this account's market credit first, the rest sent (ETH value) or pulled (ERC-20, with
        ``approve=True`` approving exactly the shortfall)."""
        return self._submit(Side.BUY, batch, price_ticks, quantity, approve)

    def submit_ask(
        self, batch: BatchRef, price_ticks: int, quantity: int = 1, *, approve: bool = False
    ) -> CallOrder:
        """Ask for ``quantity`` units at least ``price_ticks`` ticks each; locks the bond (bond per unit x
        quantity) like a bid locks its price."""
        return self._submit(Side.SELL, batch, price_ticks, quantity, approve)

    def _submit(self, side: Side, ref: BatchRef, price_ticks: int, quantity: int, approve: bool) -> CallOrder:
        b = self._current(ref)
        self._require_window(b, "submit to")
        if not 0 < price_ticks <= U64 or not 0 < quantity <= U32:
            raise InvalidInput(
                f"need 0 < price_ticks < 2^64 and 0 < quantity < 2^32 ({price_ticks}, {quantity})"
            )
        if price_ticks * b.tick * quantity > U128:
            raise InvalidInput(f"{quantity} units at {price_ticks} ticks do not fit 128 bits")
        lock = price_ticks * b.tick * quantity if side == Side.BUY else b.bond_per_unit * quantity
        if lock > U128:
            raise InvalidInput(f"the bond of {quantity} units does not fit 128 bits")
        count = len(b.bids if side == Side.BUY else b.asks)
        if count >= self.max_orders:
            raise InvalidState(f"batch {b.id} holds {count} {side.name.lower()} orders, the most it can")
        shortfall = max(0, lock - self.credit_of(asset=b.asset))
        self._fund(b.asset, shortfall, approve)
        fns = self.contract.functions
        fn = (fns.submitBid if side == Side.BUY else fns.submitAsk)(b.id, price_ticks, quantity)
        receipt = self._send(fn, value=shortfall if b.asset == ETH else 0)
        for log in receipt["logs"]:
            decoded = self._decode(log) if to_checksum_address(log["address"]) == self.address else None
            if decoded and decoded[0] == "OrderPlaced":
                args = decoded[1]["args"]
                return CallOrder(
                    b.id,
                    Side(args["side"]),
                    int(args["orderId"]),
                    to_checksum_address(args["maker"]),
                    int(args["priceTicks"]),
                    int(args["quantity"]),
                    tx_hash=_tx(receipt),
                )
        raise InvalidState(f"transaction {_tx(receipt)} emitted no OrderPlaced")

    @property
    def max_orders(self) -> int:
        """Most orders one side of a batch can hold."""
        if self._max_orders is None:
            self._max_orders = int(self.contract.functions.MAX_ORDERS().call())
        return self._max_orders

    def _fund(self, asset: str, amount: int, approve: bool) -> None:
        if amount == 0:
            return
        me = self._me()
        held = balance_of(self.w3, asset, me)
        if held < amount:
            raise InsufficientFunds(f"{me} holds {held} of {asset}, needs {amount} more for this order")
        if asset != ETH:
            allowed = int(self._token(asset).functions.allowance(me, self.address).call())
            if allowed < amount:
                if not approve:
                    raise InsufficientAllowance(
                        f"call market {self.address} may pull {allowed} of {asset} for {me}, needs {amount} "
                        "(pass approve=True)"
                    )
                self.approve(asset, amount)

    def cancel(self, order: CallOrder) -> CallOrder:
        """The maker cancels its order while the window is open; its lock is released."""
        b = self._current(order.batch_id)
        self._require_window(b, "cancel in")
        if to_checksum_address(self._me()) != order.maker:
            raise NotAuthorized(f"only the maker {order.maker} can cancel order {order.id}")
        book = b.bids if order.side == Side.BUY else b.asks
        if order.id >= len(book) or book[order.id].cancelled:
            raise InvalidState(f"{order.side.name} order {order.id} of batch {b.id} is not live")
        self._send(self.contract.functions.cancel(b.id, int(order.side), order.id))
        return replace(order, cancelled=True)

    # -- clearing and settlement ---------------------------------------------------------------------------

    def clear(self, ref: BatchRef, price_ticks: int | None = None) -> CallBatch:
        """Anyone, after the window: submit the equilibrium price (computed here unless given; the contract
        rejects any other) and return the cleared batch."""
        b = self._current(ref)
        self._me()
        if b.status != BatchStatus.OPEN:
            raise InvalidState(f"batch {b.id} is {b.status.name}: only an open batch can be cleared")
        self._require_settle_window(b, "clear")
        price = self.compute_clearing(b).price_ticks if price_ticks is None else price_ticks
        if not 0 <= price <= U64:
            raise InvalidInput(f"price_ticks {price} outside 0..2^64-1")
        self._send(self.contract.functions.clear(b.id, b.terms.as_tuple(), price))
        return self.batch(b.id)

    def settle_chunk(self, ref: BatchRef, max_steps: int = 100) -> tuple[list[CallTrade], bool]:
        """One settlement transaction of at most ``max_steps`` steps (a step opens one deal or finishes one
        order). Returns the trades it settled and whether the batch is done."""
        b = self._current(ref)
        self._me()
        if b.status != BatchStatus.CLEARED:
            raise InvalidState(f"batch {b.id} is {b.status.name}: settle needs a cleared batch")
        self._require_settle_window(b, "settle")
        if max_steps <= 0:
            raise InvalidInput("max_steps must be positive")
        receipt = self._send(self.contract.functions.settle(b.id, b.terms.as_tuple(), max_steps))
        tx = _tx(receipt)
        after = self.batch(b.id)
        return [t for t in after.trades if t.tx_hash == tx], after.status == BatchStatus.DONE

    def settle(self, ref: BatchRef, *, chunk: int = 100) -> list[CallTrade]:
        """Settle a cleared batch completely, ``chunk`` steps per transaction; returns every trade of it."""
        done = False
        while not done:
            _, done = self.settle_chunk(ref, chunk)
        return self.trades(ref)

    def clear_and_settle(self, ref: BatchRef, *, chunk: int = 100) -> CallBatch:
        """:meth:`clear` then :meth:`settle`; returns the finished batch."""
        b = self.clear(ref)
        self.settle(b, chunk=chunk)
        return self.batch(b.id)

    def release(self, ref: BatchRef, *, chunk: int = 500) -> CallBatch:
        """Anyone, after the settlement deadline: release every order not yet processed (their locks return
        to the makers' accounts); returns the finished batch."""
        b = self._current(ref)
        self._me()
        if b.status == BatchStatus.DONE:
            raise InvalidState(f"batch {b.id} is already done")
        self._require_expired(b)
        done = False
        while not done:
            fn = self.contract.functions.release(b.id, chunk)
            done = bool(self.chain.transactor.call(fn, sender=self._me())[1])
            self._send(fn)
        return self.batch(b.id)

    def reclaim(self, order: CallOrder) -> None:
        """Anyone, after the settlement deadline: release one unprocessed order."""
        b = self._current(order.batch_id)
        self._me()
        self._require_expired(b)
        maker, _, _ = self.contract.functions.orderOf(b.id, int(order.side), order.id).call()
        if int(maker, 16) == 0:
            raise InvalidState(f"order {order.id} of batch {b.id} was already processed or cancelled")
        self._send(self.contract.functions.reclaim(b.id, int(order.side), order.id))

    # -- accounts -------------------------------------------------------------------------------------------

    def deposit(self, amount: int, asset: str = ETH, *, approve: bool = False) -> int:
        """Credit ``amount`` of ``asset`` to this account at the market; returns the new credit."""
        if amount <= 0:
            raise InvalidInput("deposit amount must be positive")
        self._fund(asset, amount, approve)
        asset = to_checksum_address(asset)
        value = amount if asset == ETH else 0
        self._send(self.contract.functions.deposit(asset, amount), value=value)
        return self.credit_of(asset=asset)

    def withdraw(self, asset: str = ETH, amount: int | None = None, *, to: str | None = None) -> int:
        """Withdraw ``amount`` (default: all) of this account's credit; returns the amount of credit spent
        (while the market holds less or more of a token than its books, held / owed of it is sent)."""
        me = self._me()
        free = self.credit_of(me, asset)
        amount = free if amount is None else amount
        if amount <= 0 or amount > free:
            raise InvalidState(f"{me} has {free} free in {asset} at the call market, asked for {amount}")
        asset = to_checksum_address(asset)
        receiver = me if to is None else to_checksum_address(to)
        self._send(self.contract.functions.withdrawPart(asset, receiver, amount))
        return amount

    # -- deadlines ------------------------------------------------------------------------------------------

    def _require_window(self, b: CallBatch, action: str) -> None:
        now = self.now()
        if now > b.close_time:
            raise InvalidState(
                f"too late to {action} batch {b.id}: its window closed at {b.close_time} (next block {now})"
            )

    def _require_settle_window(self, b: CallBatch, action: str) -> None:
        now = self.now()
        if now <= b.close_time:
            raise InvalidState(
                f"too early to {action} batch {b.id}: its window is open until {b.close_time} (next block {now})"
            )
        if now > b.settle_by:
            raise InvalidState(
                f"too late to {action} batch {b.id}: the deadline {b.settle_by} passed (next block {now}); release it"
            )

    def _require_expired(self, b: CallBatch) -> None:
        now = self.now()
        if now <= b.settle_by:
            raise InvalidState(f"batch {b.id} can be released after {b.settle_by} (next block {now})")
