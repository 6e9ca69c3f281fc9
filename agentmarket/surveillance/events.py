"""Read the market's contract events over a block range: the only input surveillance needs.

Everything here uses ``eth_getLogs`` and the ABIs shipped in the package, so it works on any chain the
suite is deployed to (embedded, anvil, a public testnet) and needs no access to the agents themselves.
Events are decoded by topic against every event of every suite contract; unknown logs are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from ..logscan import get_logs
from ..types import CANCEL_SLOTS

__all__ = ["ChainEvent", "Order", "Trade", "orders_from_events", "read_events", "trades_from_events"]


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log: which contract (suite name), which event, its arguments, where it sits."""

    contract: str
    name: str
    args: Mapping[str, Any]
    block: int
    log_index: int
    tx: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.block, self.log_index)


def _plain(value: Any) -> Any:
    """AttributeDicts and tuples from web3 into plain dicts/lists (structs stay addressable by name)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    return value


def read_events(
    w3: Web3,
    contracts: Mapping[str, Contract],
    from_block: int,
    to_block: int | str = "latest",
) -> list[ChainEvent]:
    """Every event the ``contracts`` (name -> web3 contract) emitted in [from_block, to_block], in chain
    order, read in windows the provider accepts (:func:`agentmarket.logscan.get_logs`)."""
    by_topic: dict[tuple[str, HexBytes], tuple[str, Any]] = {}
    for name, contract in contracts.items():
        for entry in contract.abi:
            abi: dict[str, Any] = dict(entry)
            if abi.get("type") == "event" and not abi.get("anonymous"):
                topic = HexBytes(event_abi_to_log_topic(abi))  # type: ignore[arg-type]
                by_topic[(str(contract.address).lower(), topic)] = (
                    name,
                    getattr(contract.events, abi["name"])(),
                )
    addresses = [c.address for c in contracts.values()]
    out: list[ChainEvent] = []
    for log in get_logs(w3, {"address": addresses}, from_block, to_block):
        if not log["topics"]:
            continue
        hit = by_topic.get((str(log["address"]).lower(), HexBytes(log["topics"][0])))
        if hit is None:
            continue
        name, event = hit
        decoded = event.process_log(log)
        out.append(
            ChainEvent(
                contract=name,
                name=str(decoded["event"]),
                args=_plain(dict(decoded["args"])),
                block=int(log["blockNumber"]),
                log_index=int(log["logIndex"]),
                tx="0x" + bytes(log["transactionHash"]).hex(),
            )
        )
    out.sort(key=lambda e: e.key)
    return out


@dataclass(frozen=True)
class Trade:
    """A trade as the escrow saw it: one deal, whoever opened it (a market contract or the buyer).

    ``unit_price`` is the deal amount over ``quantity`` when the opener reported a quantity (an offer
    fill), else the amount (one unit). ``resource`` is the offer's resource id where it is known from an
    on-chain ``OfferPosted`` (or a mapping the caller gives), else the deal's ``termsHash``."""

    deal_id: int
    block: int
    buyer: str
    seller: str
    asset: str
    amount: int
    quantity: int
    unit_price: float
    resource: str
    opened_by: str
    maker: str | None = None  # the offer's maker when the deal came from an offer fill
    taker: str | None = None
    offer_posted_block: int | None = None  # when the filled offer appeared on chain (for latency)
    settled_to_seller: int | None = None  # what the seller was paid, once settled


@dataclass
class Order:
    """An order (an on-chain posted offer) with what became of it."""

    offer_hash: str
    maker: str
    side: int
    resource: str
    price: int
    quantity: int
    block: int
    filled: int = 0
    cancelled: bool = False
    fills: list[int] = field(default_factory=list)  # deal ids
    counter: int = 0  # the maker's counter it was made under
    slot: int = 0  # its cancel slot (salt % 128): a cancel kills every order of maker, counter and slot


def orders_from_events(events: Iterable[ChainEvent]) -> dict[str, Order]:
    """Posted offers (``OfferPosted``) with their fills and cancellations, by offer hash."""
    orders: dict[str, Order] = {}
    for e in events:
        if e.name == "OfferPosted":
            o = e.args["offer"]
            orders[e.args["offerHash"]] = Order(
                offer_hash=e.args["offerHash"],
                maker=e.args["maker"],
                side=int(o.get("side", 0)),
                resource=e.args["resourceId"],
                price=int(o.get("price", 0)),
                quantity=int(o.get("quantity", 1)),
                block=e.block,
                counter=int(o.get("counter", 0)),
                slot=int(o.get("salt", 0)) % CANCEL_SLOTS,
            )
        elif e.name == "OfferFilled" and e.args["offerHash"] in orders:
            order = orders[e.args["offerHash"]]
            order.filled += int(e.args["quantity"])
            order.fills.append(int(e.args["dealId"]))
        elif e.name == "OfferCancelled":
            if e.args["offerHash"] in orders:
                orders[e.args["offerHash"]].cancelled = True
            if "slot" in e.args:  # the cancel kills the maker's whole slot of that counter
                key = (e.args["maker"], int(e.args["counter"]), int(e.args["slot"]))
                for order in orders.values():
                    if (order.maker, order.counter, order.slot) == key:
                        order.cancelled = True
    return orders


_PAID_EVENTS = {"DealAccepted", "DealFinalized", "DisputeResolved", "DisputeDefaulted"}


def trades_from_events(
    events: Iterable[ChainEvent], resources: Mapping[str, str] | None = None
) -> list[Trade]:
    """Join escrow ``DealCreated`` with the fill that opened it and the settlement that paid it."""
    events = list(events)
    orders = orders_from_events(events)
    fill_of: dict[int, tuple[str, int, str]] = {}
    for e in events:
        if e.name == "OfferFilled":
            fill_of[int(e.args["dealId"])] = (e.args["offerHash"], int(e.args["quantity"]), e.args["taker"])
    paid: dict[int, int] = {}
    for e in events:
        if e.name in _PAID_EVENTS and "toSeller" in e.args:
            paid[int(e.args["dealId"])] = int(e.args["toSeller"])
    trades: list[Trade] = []
    for e in _deal_events(events):
        deal = e.args["deal"]
        deal_id = int(e.args["dealId"])
        amount = int(deal["amount"])
        offer_hash, quantity, taker = fill_of.get(deal_id, (None, 1, None))
        order = orders.get(offer_hash) if offer_hash else None
        resource = (
            (resources or {}).get(offer_hash or "", "")
            or (order.resource if order else "")
            or str(deal.get("termsHash", ""))
        )
        trades.append(
            Trade(
                deal_id=deal_id,
                block=e.block,
                buyer=e.args["buyer"],
                seller=e.args["seller"],
                asset=deal["asset"],
                amount=amount,
                quantity=max(1, quantity),
                unit_price=amount / max(1, quantity),
                resource=resource,
                opened_by=e.args.get("openedBy", e.args["buyer"]),
                maker=order.maker if order else None,
                taker=taker,
                offer_posted_block=order.block if order else None,
                settled_to_seller=paid.get(deal_id),
            )
        )
    return trades


def _deal_events(events: Iterable[ChainEvent]) -> Iterator[ChainEvent]:
    return (e for e in events if e.name == "DealCreated")
