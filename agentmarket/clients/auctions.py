"""AuctionClient: create, bid, commit, reveal, settle, reclaim and withdraw on the four auction singletons.

English (ascending, anti-sniping, outbid credits), Dutch (linear decay, first buyer wins and settles at once),
sealed-bid commit-reveal (first-price or Vickrey) and procurement (reverse, scored on price and delivery
time, open or sealed). Every sale settles into an ``AgentEscrow`` deal.

Pre-flight checks (status, time window against the next block's timestamp, minimum bid, roles, funds,
allowance) raise :mod:`agentmarket.errors` pre-flight errors before any gas is spent. Afterwards the
:class:`Auction` is rebuilt from the contract's events.

Commit secrets: :class:`SaltStore` keeps every (amount, salt, deposit) in memory and, when given a path,
in a JSON file written atomically *before* the commit transaction is sent, so an agent that crashes
between commit and reveal can still reveal (and never loses its deposit to the non-reveal penalty).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, keccak, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from .. import validate
from ..chain import Chain
from ..compiler import load_artifact
from ..errors import (
    InvalidInput,
    InvalidState,
    NotAuthorized,
    UnsafeTerms,
)
from ..logscan import deployment_block, get_logs
from ..reads import Read
from ..types import (
    BPS,
    ETH,
    ZERO_ADDRESS,
    Auction,
    AuctionKind,
    AuctionStatus,
    Bid,
    DealTemplate,
)
from .base import ContractClient, _event_decoders, require_eth

if TYPE_CHECKING:
    from typing_extensions import Self

U96 = 2**96 - 1


def deposit_bucket(amount: int, reserve: int) -> int:
    """The default sealed-bid deposit for a bid of ``amount``: the smallest ``reserve * 2**k`` >= amount.

    ``BidCommitted`` publishes the deposit, so a deposit equal to the bid publishes the bid. Every bid in
    ``(reserve * 2**(k-1), reserve * 2**k]`` posts the same deposit: an observer learns the bucket (a factor
    of two), not the bid. Pass a larger ``deposit`` to hide more (at the cost of locking more until reveal).
    """
    if amount <= 0 or reserve <= 0:
        raise InvalidInput(f"need a positive bid and reserve (bid {amount}, reserve {reserve})")
    deposit = reserve
    while deposit < amount:
        deposit *= 2
    return min(deposit, U96) if amount <= U96 else deposit


@dataclass(frozen=True)
class Secret:
    """What a sealed bidder must keep to reveal (and to reclaim an unrevealed deposit)."""

    contract: str
    auction_id: int
    bidder: str
    amount: int
    salt: bytes
    deposit: int
    commitment: bytes
    delivery_seconds: int = 0  # procurement

    def key(self) -> str:
        return f"{self.contract}:{self.auction_id}:{self.bidder}"


class SaltStore:
    """Commit secrets in memory and, when ``path`` is given, in a JSON file rewritten atomically on each
    change (temp file, fsync, rename), so a crash never leaves a half-written file."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._items: dict[str, Secret] = {}
        if self.path and self.path.is_file():
            for item in json.loads(self.path.read_text()).values():
                secret = Secret(
                    **{
                        **item,
                        "salt": bytes.fromhex(item["salt"]),
                        "commitment": bytes.fromhex(item["commitment"]),
                    }
                )
                self._items[secret.key()] = secret

    def __repr__(self) -> str:  # never print salts
        return f"SaltStore(path={self.path}, entries={len(self._items)})"

    def put(self, secret: Secret) -> None:
        with self._lock:
            self._items[secret.key()] = secret
            self._flush()

    def get(self, contract: str, auction_id: int, bidder: str) -> Secret | None:
        return self._items.get(f"{to_checksum_address(contract)}:{auction_id}:{to_checksum_address(bidder)}")

    def _flush(self) -> None:
        if self.path is None:
            return
        data = {
            k: {**s.__dict__, "salt": s.salt.hex(), "commitment": s.commitment.hex()}
            for k, s in self._items.items()
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def sealed_commitment(
    bidder: str, auction_id: int, chain_id: int, contract: str, amount: int, salt: bytes
) -> bytes:
    """keccak256(abi.encode(bidder, auctionId, chainid, contract, amount, salt)) — the sealed-bid commitment."""
    return keccak(
        abi_encode(
            ["address", "uint256", "uint256", "address", "uint256", "bytes32"],
            [to_checksum_address(bidder), auction_id, chain_id, to_checksum_address(contract), amount, salt],
        )
    )


def procurement_commitment(
    provider: str,
    auction_id: int,
    chain_id: int,
    contract: str,
    price: int,
    delivery_seconds: int,
    salt: bytes,
) -> bytes:
    """keccak256(abi.encode(provider, auctionId, chainid, contract, price, deliverySeconds, salt))."""
    return keccak(
        abi_encode(
            ["address", "uint256", "uint256", "address", "uint256", "uint256", "bytes32"],
            [
                to_checksum_address(provider),
                auction_id,
                chain_id,
                to_checksum_address(contract),
                price,
                delivery_seconds,
                salt,
            ],
        )
    )


AuctionRef = Auction | tuple[AuctionKind, int]


class AuctionClient(ContractClient):
    """Client for the four auction singletons, acting as ``account`` (None for reads only).

    One client drives all four contracts (``contracts[kind]``); every action names its auction's kind,
    so it has no single ``address``/``contract`` of its own: the base's approvals and fund checks take the
    auction contract as ``spender``.
    """

    ARTIFACT = "EnglishAuction"  # the family's first contract (``from_suite`` binds all four)
    GAS_FAMILY = "auction"

    def __init__(
        self,
        chain: Chain,
        addresses: Mapping[AuctionKind | str, str | Contract],
        account: LocalAccount | None = None,
        *,
        salts: SaltStore | str | Path | None = None,
        from_block: int | None = None,
    ):
        self._bind(chain, account, from_block)
        self.salts = salts if isinstance(salts, SaltStore) else SaltStore(salts)
        # block each known auction was created in: event rebuilds scan from there (shared by clones)
        self._origins: dict[tuple[AuctionKind, int], int] = {}
        self.contracts: dict[AuctionKind, Contract] = {}
        self._kind_topics: dict[AuctionKind, dict[HexBytes, Any]] = {}
        for kind, where in addresses.items():
            kind = AuctionKind(kind)
            address = where.address if isinstance(where, Contract) else to_checksum_address(where)
            contract = self.w3.eth.contract(address=address, abi=load_artifact(kind.value)["abi"])
            self.contracts[kind] = contract
            self._kind_topics[kind] = {
                HexBytes(event_abi_to_log_topic(e)): getattr(contract.events, e["name"])()
                for e in contract.abi
                if e["type"] == "event"
            }
        first = next(iter(self.contracts.values()), None)
        if first is not None:  # the base's default contract: the first auction kind given
            self.contract, self.address = first, first.address

    @classmethod
    def from_suite(cls, suite: Any, account: LocalAccount | None = None, **kw: Any) -> Self:
        return cls(suite.chain, {k: suite[k.value] for k in AuctionKind if k.value in suite}, account, **kw)

    def as_(self, account: LocalAccount, *, salts: SaltStore | str | Path | None = None) -> Self:
        """The same contracts acting as another account. Secrets are keyed by bidder, so the clone shares
        this client's salt store unless another store (or file path) is given."""
        clone = super().as_(account)
        if salts is not None:
            clone.salts = salts if isinstance(salts, SaltStore) else SaltStore(salts)
        return clone

    def __repr__(self) -> str:
        return f"AuctionClient(account={self.account.address if self.account else None})"

    def _decoders(self) -> dict[tuple[str, HexBytes], Any]:
        return {k: v for contract in self.contracts.values() for k, v in _event_decoders(contract).items()}

    def approve(
        self, asset: str, amount: int, *, spender: str | None = None, kind: AuctionKind | str | None = None
    ) -> Any:
        """Approve the auction contract of ``kind`` (or ``spender``) to pull exactly ``amount`` of ``asset``."""
        if spender is None:
            if kind is None:
                raise InvalidInput("name the auction kind (or spender) to approve", param="kind")
            spender = self.contracts[_kind(kind)].address
        return super().approve(asset, amount, spender=spender)

    # -- reads -------------------------------------------------------------------------------------------

    def credit(self, kind: AuctionKind, account: str | None = None, asset: str = ETH) -> int:
        who = validate.address(account, "account") if account is not None else self._me()
        asset = validate.address(asset, "asset")
        return int(self.contracts[_kind(kind)].functions.creditOf(who, asset).call())

    def auction(self, kind: AuctionKind | str, auction_id: int) -> Auction:
        """Rebuild auction ``auction_id`` of ``kind`` from its events."""
        kind = AuctionKind(kind)
        contract = self.contracts[kind]
        origin = self._origins.get(
            (kind, int(auction_id)), max(self.from_block, deployment_block(self.w3, contract.address))
        )
        logs = get_logs(
            self.w3,
            {"address": contract.address, "topics": [None, "0x" + int(auction_id).to_bytes(32, "big").hex()]},
            origin,
        )
        auction: Auction | None = None
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            event = self._kind_topics[kind].get(HexBytes(log["topics"][0]))
            if event is None:
                continue
            decoded = event.process_log(log)
            auction = self._apply(kind, contract.address, auction, decoded["event"], decoded["args"], log)
        if auction is None:
            raise InvalidInput(f"no auction {auction_id} in {kind.value} {contract.address}")
        self._origins[(kind, int(auction_id))] = min(int(x["blockNumber"]) for x in logs)
        return auction

    def refresh(self, auction: AuctionRef) -> Auction:
        if isinstance(auction, Auction):
            return self.auction(auction.kind, auction.id)
        return self.auction(*auction)

    @staticmethod
    def _apply(kind: AuctionKind, address: str, a: Auction | None, name: str, args: Any, log: Any) -> Auction:
        tx = "0x" + bytes(log["transactionHash"]).hex()
        block = int(log["blockNumber"])
        if name in (
            "EnglishAuctionCreated",
            "DutchAuctionCreated",
            "SealedAuctionCreated",
            "ProcurementCreated",
        ):
            p = args["params"]
            creator = to_checksum_address(args.get("seller") or args.get("buyer"))
            base = Auction(
                kind=kind,
                id=int(args["auctionId"]),
                contract=address,
                creator=creator,
                terms=DealTemplate.from_abi(args["terms"]),
            )
            if name == "EnglishAuctionCreated":
                return replace(
                    base,
                    reserve=p["reserve"],
                    start_time=p["startTime"],
                    end_time=p["endTime"],
                    extension=p["extension"],
                    min_increment_bps=p["minIncrementBps"],
                )
            if name == "DutchAuctionCreated":
                return replace(
                    base,
                    start_price=p["startPrice"],
                    floor_price=p["floorPrice"],
                    start_time=p["startTime"],
                    end_time=p["endTime"],
                )
            if name == "SealedAuctionCreated":
                return replace(
                    base,
                    reserve=p["reserve"],
                    end_time=p["commitEnd"],
                    reveal_end=p["revealEnd"],
                    penalty_bps=p["penaltyBps"],
                    vickrey=p["vickrey"],
                )
            return replace(
                base,
                budget=p["budget"],
                end_time=p["bidEnd"],
                reveal_end=p["revealEnd"],
                penalty_bps=p["penaltyBps"],
                sealed_bids=p["sealedBids"],
                price_weight=p["priceWeight"],
                time_weight=p["timeWeight"],
                max_delivery=p["maxDelivery"],
                reserve=0,
            )
        assert a is not None, f"{name} before the auction's creation event"
        who = (
            to_checksum_address(args["bidder"])
            if "bidder" in args
            else (to_checksum_address(args["provider"]) if "provider" in args else ZERO_ADDRESS)
        )
        if name == "BidPlaced":
            bid = Bid(a.id, who, int(args["amount"]), block=block, tx_hash=tx)
            return replace(
                a, leader=who, leading_amount=bid.amount, end_time=int(args["endTime"]), bids=(*a.bids, bid)
            )
        if name in ("BidCommitted", "OfferCommitted"):
            deposit = int(args.get("deposit", args.get("bond", 0)))
            return replace(
                a,
                bids=(
                    *a.bids,
                    Bid(
                        a.id, who, bond=deposit, commitment=bytes(args["commitment"]), block=block, tx_hash=tx
                    ),
                ),
            )
        if name == "BidRevealed":
            amount, eligible = int(args["amount"]), bool(args["eligible"])
            bids = tuple(
                replace(b, amount=amount, revealed=True, eligible=eligible, tx_hash=tx)
                if b.bidder == who and not b.revealed
                else b
                for b in a.bids
            )
            a = replace(a, bids=bids)
            if eligible:
                if amount > a.leading_amount:
                    a = replace(a, second_amount=a.leading_amount, leader=who, leading_amount=amount)
                elif amount > a.second_amount:
                    a = replace(a, second_amount=amount)
            return a
        if name == "OfferPlaced":
            bid = Bid(
                a.id,
                who,
                int(args["price"]),
                int(args["deliverySeconds"]),
                int(args["bond"]),
                score=int(args["score"]),
                block=block,
                tx_hash=tx,
            )
            return replace(a, leader=who, leading_amount=bid.amount, bids=(*a.bids, bid))
        if name == "OfferRevealed":
            price, delivery, score = int(args["price"]), int(args["deliverySeconds"]), int(args["score"])
            eligible = bool(args["eligible"])
            bids = tuple(
                replace(
                    b,
                    amount=price,
                    delivery_seconds=delivery,
                    score=score,
                    revealed=True,
                    eligible=eligible,
                    tx_hash=tx,
                )
                if b.bidder == who and not b.revealed
                else b
                for b in a.bids
            )
            a = replace(a, bids=bids)
            best = next((b for b in bids if b.bidder == a.leader), None)
            if eligible and (a.leader == ZERO_ADDRESS or best is None or score < best.score):
                a = replace(a, leader=who, leading_amount=price)
            return a
        if name == "AuctionSettled":
            winner = to_checksum_address(args["winner"])
            status = AuctionStatus.SETTLED if winner != ZERO_ADDRESS else AuctionStatus.NO_SALE
            return replace(
                a, status=status, winner=winner, price=int(args["price"]), deal_id=int(args["dealId"])
            )
        if name == "AuctionCancelled":
            return replace(a, status=AuctionStatus.CANCELLED)
        return a  # DepositReclaimed / BondReclaimed: no change to the auction itself

    # -- helpers ------------------------------------------------------------------------------------------

    def _transact(self, kind: AuctionKind, fn: Any, value: int = 0) -> Any:
        """Send ``fn`` on the ``kind`` contract through the base's pipeline, with its snapshot gas key."""
        name = str(fn.fn_name)
        key = _AUCTION_GAS_KEYS.get((kind, name)) or f"auction.{kind.name.lower()}_{name.lower()}"
        return self._send(fn, value, gas_key=key)

    def _id_from(self, kind: AuctionKind, receipt: Any) -> int:
        contract = self.contracts[kind]
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) == contract.address and log["topics"]:
                return int.from_bytes(bytes(log["topics"][1]), "big")
        raise InvalidState("no auction event in the receipt")

    def _fund(
        self, kind: AuctionKind, asset: str, amount: int, *, approve: bool, balance: int | None = None
    ) -> None:
        """The base's balance and allowance check, with the ``kind`` contract as the spender (``balance``:
        the ETH balance, already read by :meth:`_clock`)."""
        if asset == ETH and balance is not None:
            require_eth(self._me(), balance, amount)
            return
        self._ensure_funds(asset, amount, approve=approve, spender=self.contracts[kind].address)

    def _clock(self, a: Auction) -> tuple[int, int | None]:
        """The pending block's timestamp and, for an ETH auction, this account's balance: one JSON-RPC
        batch for a bid's pre-flight reads (the auction itself comes from its events)."""
        reads = [Read.timestamp("pending")]
        if a.asset == ETH:
            reads.append(Read.balance(self._me()))
        now, *balance = self.chain.transactor.read(reads)
        return int(now), (int(balance[0]) if balance else None)

    def _current(self, ref: AuctionRef) -> Auction:
        return self.refresh(ref)

    @staticmethod
    def _active(a: Auction, action: str) -> None:
        if a.status != AuctionStatus.ACTIVE:
            raise InvalidState(f"cannot {action} {a.kind.value} {a.id}: it is {a.status.name}")

    def _not_creator(self, a: Auction, action: str) -> None:
        me = to_checksum_address(self._me())
        if me == a.creator:
            raise NotAuthorized(f"the creator of {a.kind.value} {a.id} cannot {action}")

    def template(self, delivery_delay: int, **kw: Any) -> DealTemplate:
        """A :class:`DealTemplate` with this client's account as creator."""
        return DealTemplate(creator=self._me(), delivery_delay=delivery_delay, **kw)

    def _create(self, kind: AuctionKind, fn: Any, value: int = 0) -> Auction:
        receipt = self._transact(kind, fn, value)
        auction_id = self._id_from(kind, receipt)
        self._origins[(kind, auction_id)] = int(receipt["blockNumber"])
        return self.auction(kind, auction_id)

    def _check_template(self, terms: DealTemplate) -> None:
        if not isinstance(terms, DealTemplate):
            raise InvalidInput("terms must be a DealTemplate (see AuctionClient.template)", param="terms")
        validate.asset(self.w3, terms.asset, "terms.asset")
        terms.validate()
        if terms.creator != to_checksum_address(self._me()):
            raise InvalidInput(f"template creator {terms.creator} must be the sender {self._me()}")

    def _check_sale(self, kind: AuctionKind, terms: DealTemplate, min_price: int, approve: bool) -> None:
        """Sell-side auctions: the contracts require a seller bond (posted now) and an arbiter, so neither
        side can unwind a cleared sale for free; check both and the funds for the bond before sending."""
        self._check_template(terms)
        if terms.bond <= 0 or terms.arbiter == ZERO_ADDRESS:
            raise UnsafeTerms(
                f"a {kind.value} sale needs a seller bond > 0 and an arbiter in its template (bond "
                f"{terms.bond}, arbiter {terms.arbiter}): without them the winner or the seller could "
                "walk away from a cleared sale at no cost"
            )
        if terms.bond > min_price:
            raise InvalidInput(
                f"seller bond {terms.bond} above the lowest price the sale can clear at ({min_price})"
            )
        self._fund(kind, terms.asset, terms.bond, approve=approve)

    def _bond_value(self, terms: DealTemplate) -> int:
        return terms.bond if terms.asset == ETH else 0

    # -- English ---------------------------------------------------------------------------------------

    def create_english(
        self,
        terms: DealTemplate,
        *,
        reserve: int,
        start_time: int,
        end_time: int,
        extension: int = 300,
        min_increment_bps: int = 500,
        approve: bool = False,
    ) -> Auction:
        """Sell under ``terms``, posting the seller bond ``terms.bond`` now (returned if nothing sells)."""
        reserve = validate.amount(reserve, "reserve", positive=True, maximum=U96)
        start_time, end_time = _time(start_time, "start_time"), _time(end_time, "end_time")
        extension = validate.integer(extension, "extension", maximum=2**40, what="seconds (int)")
        min_increment_bps = validate.bps(min_increment_bps, "min_increment_bps")
        self._check_sale(AuctionKind.ENGLISH, terms, reserve, approve)
        if reserve <= 0 or reserve > U96:
            raise InvalidInput(f"reserve {reserve} must be in 1..2^96-1")
        if start_time < self.now() or end_time <= start_time:
            raise InvalidInput(
                f"need now <= start_time < end_time (now {self.now()}, {start_time}, {end_time})"
            )
        if not 0 <= min_increment_bps <= BPS:
            raise InvalidInput(f"min_increment_bps {min_increment_bps} outside 0..{BPS}")
        params = (reserve, start_time, end_time, extension, min_increment_bps)
        return self._create(
            AuctionKind.ENGLISH,
            self.contracts[AuctionKind.ENGLISH].functions.create(params, terms.as_tuple()),
            self._bond_value(terms),
        )

    def bid(self, auction: AuctionRef, amount: int, *, approve: bool = False) -> Auction:
        """English: bid ``amount``; raises before sending when it is over, too early, or below the minimum."""
        amount = validate.amount(amount, "amount", positive=True, maximum=U96)
        a = self._current(auction)
        self._active(a, "bid on")
        self._not_creator(a, "bid")
        now, balance = self._clock(a)
        if now < a.start_time:
            raise InvalidState(f"English {a.id} opens at {a.start_time} (next block {now})")
        if now > a.end_time:
            raise InvalidState(f"English {a.id} is over: it ended at {a.end_time} (next block {now})")
        if amount < a.minimum_bid():
            raise InvalidInput(f"bid {amount} below the minimum {a.minimum_bid()} of English {a.id}")
        if amount > U96:
            raise InvalidInput(f"bid {amount} above 2^96-1")
        self._fund(a.kind, a.asset, amount, approve=approve, balance=balance)
        value = amount if a.asset == ETH else 0
        self._transact(a.kind, self.contracts[a.kind].functions.bid(a.id, amount), value)
        return self.refresh(a)

    def cancel(self, auction: AuctionRef) -> Auction:
        """English (no bid yet) or Dutch (not bought yet): the seller cancels (a Dutch auction past its end:
        anyone); the seller bond goes back to the seller."""
        a = self._current(auction)
        self._active(a, "cancel")
        expired_dutch = a.kind == AuctionKind.DUTCH and self.now() > a.end_time
        if to_checksum_address(self._me()) != a.creator and not expired_dutch:
            raise NotAuthorized(f"only the seller {a.creator} can cancel {a.kind.value} {a.id}")
        if a.kind == AuctionKind.ENGLISH and a.leader != ZERO_ADDRESS:
            raise InvalidState(f"English {a.id} has a bid: it can no longer be cancelled")
        if a.kind not in (AuctionKind.ENGLISH, AuctionKind.DUTCH):
            raise InvalidState(f"{a.kind.value} auctions cannot be cancelled")
        self._transact(a.kind, self.contracts[a.kind].functions.cancel(a.id))
        return self.refresh(a)

    # -- Dutch -----------------------------------------------------------------------------------------

    def create_dutch(
        self,
        terms: DealTemplate,
        *,
        start_price: int,
        floor_price: int,
        start_time: int,
        end_time: int,
        approve: bool = False,
    ) -> Auction:
        """Sell under ``terms``, posting the seller bond ``terms.bond`` now (returned on cancellation)."""
        start_price = validate.amount(start_price, "start_price", positive=True, maximum=U96)
        floor_price = validate.amount(floor_price, "floor_price", positive=True, maximum=U96)
        start_time, end_time = _time(start_time, "start_time"), _time(end_time, "end_time")
        self._check_sale(AuctionKind.DUTCH, terms, floor_price, approve)
        if not 0 < floor_price <= start_price <= U96:
            raise InvalidInput(
                f"need 0 < floor_price <= start_price <= 2^96-1 ({floor_price}, {start_price})"
            )
        if start_time < self.now() or end_time <= start_time:
            raise InvalidInput(
                f"need now <= start_time < end_time (now {self.now()}, {start_time}, {end_time})"
            )
        params = (start_price, floor_price, start_time, end_time)
        return self._create(
            AuctionKind.DUTCH,
            self.contracts[AuctionKind.DUTCH].functions.create(params, terms.as_tuple()),
            self._bond_value(terms),
        )

    def dutch_price(self, auction: Auction, timestamp: int | None = None) -> int:
        """The price a purchase in the next block (or at ``timestamp``) pays, computed locally."""
        return auction.price_at(self.now() if timestamp is None else timestamp)

    def buy(self, auction: AuctionRef, *, max_price: int | None = None, approve: bool = False) -> Auction:
        """Dutch: buy at the next block's price (at most ``max_price``; ETH sends exactly that bound, the
        excess comes back in the same transaction). Returns the settled auction (``deal_id`` set)."""
        max_price = validate.optional(validate.amount, max_price, "max_price", maximum=U96)
        a = self._current(auction)
        self._active(a, "buy")
        self._not_creator(a, "buy")
        now, balance = self._clock(a)
        if now < a.start_time:
            raise InvalidState(f"Dutch {a.id} opens at {a.start_time} (next block {now})")
        if now > a.end_time:
            raise InvalidState(f"Dutch {a.id} is over: it ended at {a.end_time} (next block {now})")
        price = a.price_at(now)
        bound = price if max_price is None else max_price
        if price > bound:
            raise InvalidInput(f"Dutch {a.id} costs {price} now, above max_price {bound}")
        if to_checksum_address(self._me()) == a.terms.arbiter:
            raise NotAuthorized(f"the arbiter of Dutch {a.id} cannot buy it")
        self._fund(a.kind, a.asset, bound, approve=approve, balance=balance)
        value = bound if a.asset == ETH else 0
        self._transact(a.kind, self.contracts[a.kind].functions.buy(a.id, bound, a.terms.as_tuple()), value)
        return self.refresh(a)

    # -- sealed ----------------------------------------------------------------------------------------

    def create_sealed(
        self,
        terms: DealTemplate,
        *,
        reserve: int,
        commit_end: int,
        reveal_end: int,
        penalty_bps: int = 1000,
        vickrey: bool = True,
        approve: bool = False,
    ) -> Auction:
        """Sell under ``terms``, posting the seller bond ``terms.bond`` now (returned if nothing sells).
        ``penalty_bps`` of an unrevealed deposit goes to the winner; Vickrey auctions need it > 0."""
        reserve = validate.amount(reserve, "reserve", positive=True, maximum=U96)
        commit_end, reveal_end = _time(commit_end, "commit_end"), _time(reveal_end, "reveal_end")
        penalty_bps = validate.bps(penalty_bps, "penalty_bps")
        if not isinstance(vickrey, bool):
            raise InvalidInput("vickrey must be True or False", param="vickrey")
        self._check_sale(AuctionKind.SEALED, terms, reserve, approve)
        if reserve <= 0 or reserve > U96:
            raise InvalidInput(f"reserve {reserve} must be in 1..2^96-1")
        if commit_end < self.now() or reveal_end <= commit_end:
            raise InvalidInput(
                f"need now <= commit_end < reveal_end (now {self.now()}, {commit_end}, {reveal_end})"
            )
        if not 0 <= penalty_bps <= BPS or (vickrey and penalty_bps == 0):
            raise InvalidInput(f"penalty_bps {penalty_bps} outside 0..{BPS} (Vickrey: 1..{BPS})")
        params = (reserve, commit_end, reveal_end, penalty_bps, vickrey)
        return self._create(
            AuctionKind.SEALED,
            self.contracts[AuctionKind.SEALED].functions.create(params, terms.as_tuple()),
            self._bond_value(terms),
        )

    def commit(
        self,
        auction: AuctionRef,
        amount: int,
        *,
        deposit: int | None = None,
        salt: bytes | None = None,
        approve: bool = False,
    ) -> Secret:
        """Sealed: commit to ``amount`` with ``deposit`` (public). The default deposit is
        :func:`deposit_bucket` (the bid rounded up to ``reserve * 2**k``), so the commit does not publish
        the bid; a larger deposit hides more. The secret is stored (and written to the salt file) before the
        transaction is sent."""
        amount = validate.amount(amount, "amount", positive=True, maximum=U96)
        deposit = validate.optional(validate.amount, deposit, "deposit", positive=True, maximum=U96)
        salt = validate.optional(validate.bytes32, salt, "salt")
        a = self._current(auction)
        self._active(a, "commit to")
        self._not_creator(a, "bid")
        if a.kind != AuctionKind.SEALED:
            raise InvalidInput("commit is for sealed-bid auctions (use commit_offer for procurement)")
        if deposit is None:
            deposit = deposit_bucket(amount, a.reserve) if amount >= a.reserve > 0 else amount
        now, balance = self._clock(a)
        if now > a.end_time:
            raise InvalidState(
                f"commit phase of sealed {a.id} is over (ended {a.end_time}, next block {now})"
            )
        if not 0 < deposit <= U96 or amount > deposit:
            raise InvalidInput(f"need 0 < amount <= deposit <= 2^96-1 (amount {amount}, deposit {deposit})")
        if amount < a.reserve:
            raise InvalidInput(f"bid {amount} below the reserve {a.reserve}: it could never win")
        me = self._me()
        if any(b.bidder == me for b in a.bids):
            raise InvalidState(f"{me} already committed to sealed {a.id}")
        self._fund(a.kind, a.asset, deposit, approve=approve, balance=balance)
        salt = salt or secrets.token_bytes(32)
        contract = self.contracts[a.kind]
        commitment = sealed_commitment(me, a.id, self.chain.chain_id, contract.address, amount, salt)
        secret = Secret(contract.address, a.id, to_checksum_address(me), amount, salt, deposit, commitment)
        self.salts.put(secret)
        self._transact(
            a.kind, contract.functions.commit(a.id, commitment, deposit), deposit if a.asset == ETH else 0
        )
        return secret

    def reveal(self, auction: AuctionRef) -> Auction:
        """Sealed or sealed procurement: reveal this account's stored commitment."""
        a = self._current(auction)
        secret = self._secret(a)
        now = self.now()
        if not a.end_time < now <= a.reveal_end:
            raise InvalidState(
                f"reveal window of {a.kind.value} {a.id} is ({a.end_time}, {a.reveal_end}], next block {now}"
            )
        if any(b.bidder == secret.bidder and b.revealed for b in a.bids):
            raise InvalidState(f"{secret.bidder} already revealed in {a.kind.value} {a.id}")
        fns = self.contracts[a.kind].functions
        if a.kind == AuctionKind.SEALED:
            self._transact(a.kind, fns.reveal(a.id, secret.amount, secret.salt, secret.deposit))
        else:
            self._transact(
                a.kind, fns.reveal(a.id, secret.amount, secret.delivery_seconds, secret.salt, secret.deposit)
            )
        return self.refresh(a)

    def _secret(self, a: Auction) -> Secret:
        secret = self.salts.get(self.contracts[a.kind].address, a.id, self._me())
        if secret is None:
            raise InvalidState(f"no stored commitment of {self._me()} for {a.kind.value} {a.id}")
        return secret

    def reclaim(self, auction: AuctionRef) -> int:
        """Sealed or sealed procurement: take back this account's deposit/bond; returns the refund."""
        a = self._current(auction)
        me = to_checksum_address(self._me())
        mine = [b for b in a.bids if b.bidder == me]
        if not mine:
            raise InvalidState(f"{me} has no commitment in {a.kind.value} {a.id}")
        secret = self.salts.get(self.contracts[a.kind].address, a.id, me)
        commitment = mine[0].commitment or b"\x00" * 32
        deposit = mine[0].bond
        if not mine[0].revealed and self.now() <= a.reveal_end:
            raise InvalidState(f"unrevealed: reveal first, or reclaim after {a.reveal_end}")
        if mine[0].revealed and a.leader == me and a.status == AuctionStatus.ACTIVE:
            raise InvalidState(f"{me} leads {a.kind.value} {a.id}: reclaim after settlement")
        if secret is not None:
            commitment, deposit = secret.commitment, secret.deposit
        fn = self.contracts[a.kind].functions.reclaim(a.id, commitment, deposit)
        refund = int(self.chain.transactor.call(fn, sender=me))
        self._transact(a.kind, fn)
        return refund

    # -- procurement -------------------------------------------------------------------------------------

    def create_procurement(
        self,
        terms: DealTemplate,
        *,
        budget: int,
        bid_end: int,
        price_weight: int = 1,
        time_weight: int = 0,
        max_delivery: int = 86_400,
        sealed_bids: bool = False,
        reveal_end: int = 0,
        penalty_bps: int = 1000,
        approve: bool = False,
        allow_unprotected: bool = False,
    ) -> Auction:
        """Lock ``budget`` and open a reverse auction (min bond = ``terms.bond``).

        The buyer must be able to refuse junk: the template needs an arbiter, or a provider bond together
        with an escrow whose buyer can ``reject`` a delivery (refund plus the forfeited bond). Otherwise a
        winning provider can submit anything and collect, and :class:`~agentmarket.errors.UnsafeTerms` is
        raised before any transaction unless ``allow_unprotected=True``. A non-zero ``time_weight`` makes
        the promised delivery time bind (the contract derives the late penalty from the weights)."""
        budget = validate.amount(budget, "budget", positive=True, maximum=U96)
        price_weight = validate.integer(price_weight, "price_weight", maximum=2**64 - 1)
        time_weight = validate.integer(time_weight, "time_weight", maximum=2**64 - 1)
        max_delivery = validate.integer(max_delivery, "max_delivery", maximum=2**40)
        penalty_bps = validate.bps(penalty_bps, "penalty_bps")
        self._check_template(terms)
        if not allow_unprotected and not self._buyer_protected(terms):
            raise UnsafeTerms(
                "procurement without an arbiter"
                + ("" if terms.bond else " and without a provider bond")
                + ": a winning provider could submit junk and be paid; name an arbiter"
                + (" or require a bond (with an escrow that supports reject)" if not terms.bond else "")
                + ", or pass allow_unprotected=True"
            )
        if not 0 < budget <= U96:
            raise InvalidInput(f"budget {budget} must be in 1..2^96-1")
        if bid_end <= self.now() or (sealed_bids and reveal_end <= bid_end):
            raise InvalidInput(
                f"need now < bid_end (< reveal_end when sealed): now {self.now()}, {bid_end}, {reveal_end}"
            )
        if price_weight == 0 and time_weight == 0:
            raise InvalidInput("at least one weight must be non-zero")
        self._fund(AuctionKind.PROCUREMENT, terms.asset, budget, approve=approve)
        params = (
            budget,
            bid_end,
            reveal_end,
            penalty_bps,
            sealed_bids,
            price_weight,
            time_weight,
            max_delivery,
        )
        return self._create(
            AuctionKind.PROCUREMENT,
            self.contracts[AuctionKind.PROCUREMENT].functions.create(params, terms.as_tuple()),
            budget if terms.asset == ETH else 0,
        )

    @staticmethod
    def _buyer_protected(terms: DealTemplate) -> bool:
        """Whether a buyer who acts within its review window can refuse a delivery without paying: an
        arbiter rules on disputes, or the escrow lets the buyer ``reject`` (refund + the seller's bond)."""
        if terms.arbiter != ZERO_ADDRESS:
            return True
        escrow_abi = load_artifact("AgentEscrow")["abi"]
        can_reject = any(e.get("type") == "function" and e.get("name") == "reject" for e in escrow_abi)
        return terms.bond > 0 and can_reject

    def _check_offer(self, a: Auction, price: int, delivery_seconds: int, bond: int) -> None:
        self._active(a, "bid on")
        self._not_creator(a, "bid")
        if a.kind != AuctionKind.PROCUREMENT:
            raise InvalidInput("offers are for procurement auctions")
        if self.now() > a.end_time:
            raise InvalidState(f"procurement {a.id} bidding ended at {a.end_time} (next block {self.now()})")
        if not 0 < price <= a.budget or delivery_seconds > a.max_delivery or bond < a.terms.bond:
            raise InvalidInput(
                f"offer breaks the rules of procurement {a.id}: price in 1..{a.budget}, delivery "
                f"<= {a.max_delivery}, bond >= {a.terms.bond}"
            )

    def offer(
        self,
        auction: AuctionRef,
        price: int,
        delivery_seconds: int,
        *,
        bond: int | None = None,
        approve: bool = False,
    ) -> Auction:
        """Open procurement: offer ``price`` and ``delivery_seconds`` with ``bond`` (default: the minimum)."""
        price = validate.amount(price, "price", positive=True, maximum=U96)
        delivery_seconds = validate.integer(delivery_seconds, "delivery_seconds", maximum=2**40)
        bond = validate.optional(validate.amount, bond, "bond", maximum=U96)
        a = self._current(auction)
        bond = a.terms.bond if bond is None else bond
        self._check_offer(a, price, delivery_seconds, bond)
        if a.sealed_bids:
            raise InvalidInput(f"procurement {a.id} is sealed: use commit_offer")
        if a.leader != ZERO_ADDRESS:
            best = next(b for b in reversed(a.bids) if b.bidder == a.leader)
            if a.score(price, delivery_seconds) >= best.score:
                raise InvalidInput(f"score {a.score(price, delivery_seconds)} does not beat {best.score}")
        self._fund(a.kind, a.asset, bond, approve=approve)
        self._transact(
            a.kind,
            self.contracts[a.kind].functions.bid(a.id, price, delivery_seconds, bond),
            bond if a.asset == ETH else 0,
        )
        return self.refresh(a)

    def commit_offer(
        self,
        auction: AuctionRef,
        price: int,
        delivery_seconds: int,
        *,
        bond: int | None = None,
        salt: bytes | None = None,
        approve: bool = False,
    ) -> Secret:
        """Sealed procurement: commit to an offer; the bond is the (public) deposit."""
        price = validate.amount(price, "price", positive=True, maximum=U96)
        delivery_seconds = validate.integer(delivery_seconds, "delivery_seconds", maximum=2**40)
        bond = validate.optional(validate.amount, bond, "bond", maximum=U96)
        salt = validate.optional(validate.bytes32, salt, "salt")
        a = self._current(auction)
        bond = a.terms.bond if bond is None else bond
        self._check_offer(a, price, delivery_seconds, bond)
        if not a.sealed_bids:
            raise InvalidInput(f"procurement {a.id} is open: use offer")
        me = to_checksum_address(self._me())
        if any(b.bidder == me for b in a.bids):
            raise InvalidState(f"{me} already committed to procurement {a.id}")
        self._fund(a.kind, a.asset, bond, approve=approve)
        salt = salt or secrets.token_bytes(32)
        contract = self.contracts[a.kind]
        commitment = procurement_commitment(
            me, a.id, self.chain.chain_id, contract.address, price, delivery_seconds, salt
        )
        secret = Secret(contract.address, a.id, me, price, salt, bond, commitment, delivery_seconds)
        self.salts.put(secret)
        self._transact(
            a.kind, contract.functions.commit(a.id, commitment, bond), bond if a.asset == ETH else 0
        )
        return secret

    # -- settlement and credits ----------------------------------------------------------------------------

    def settle(self, auction: AuctionRef) -> Auction:
        """Anyone: close an ended English, sealed or procurement auction into its escrow deal."""
        a = self._current(auction)
        self._active(a, "settle")
        if a.kind == AuctionKind.DUTCH:
            raise InvalidInput("Dutch auctions settle when bought")
        if self.now() <= a.ends_at:
            raise InvalidState(
                f"{a.kind.value} {a.id} ends at {a.ends_at}: settle after it (next block {self.now()})"
            )
        self._transact(a.kind, self.contracts[a.kind].functions.settle(a.id, a.terms.as_tuple()))
        return self.refresh(a)

    def withdraw(self, kind: AuctionKind, asset: str = ETH, *, to: str | None = None) -> int:
        """Pull this account's credits (outbid bids, refused payouts) from ``kind``'s contract."""
        kind = _kind(kind)
        asset = validate.asset(self.w3, asset)
        to = validate.optional(validate.address, to, "to", nonzero=True)
        amount = self.credit(kind, asset=asset)
        if amount == 0:
            raise InvalidState(f"{self._me()} has no credit in {asset} at {kind.value}")
        fns = self.contracts[kind].functions
        asset = to_checksum_address(asset)
        self._transact(
            kind, fns.withdraw(asset) if to is None else fns.withdrawTo(asset, to_checksum_address(to))
        )
        return amount


def _time(value: Any, param: str) -> int:
    """A unix timestamp (int seconds); refused by name otherwise."""
    return validate.integer(value, param, maximum=2**40 - 1, what="unix seconds (int)")


def _kind(kind: Any) -> AuctionKind:
    try:
        return AuctionKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in AuctionKind)
        raise InvalidInput(f"kind {kind!r} is not an auction kind ({known})", param="kind") from None


# (auction, function) -> gas-snapshot key; other calls use auction.<kind>_<function> (estimated until
# `make gas` measures them)
_AUCTION_GAS_KEYS: dict[tuple[AuctionKind, str], str] = {
    (AuctionKind.ENGLISH, "bid"): "auction.english_bid_outbid",
    (AuctionKind.DUTCH, "buy"): "auction.dutch_buy",
    (AuctionKind.PROCUREMENT, "bid"): "auction.procurement_bid",
    (AuctionKind.SEALED, "commit"): "auction.sealed_commit",
    (AuctionKind.SEALED, "reveal"): "auction.sealed_reveal",
    (AuctionKind.ENGLISH, "settle"): "auction.settle",
    (AuctionKind.SEALED, "settle"): "auction.settle",
    (AuctionKind.PROCUREMENT, "settle"): "auction.settle",
}
