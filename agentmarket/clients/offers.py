"""OffersClient: build, sign, verify, post, fill and cancel multi-issue offers that open escrow deals.

An :class:`Offer` is a frozen dataclass mirroring the Solidity struct; a :class:`SignedOffer` adds the
maker's EIP-712 signature and the domain (chain id, OfferBook address) it is valid for. Both serialise to
JSON (amounts as decimal strings, bytes as 0x-hex) so agents can pass them over any channel.

Every sending method checks before sending (domain, expiry, cancellation, counter, remaining quantity,
taker, signature, balances, deposits and allowances) and raises :mod:`agentmarket.errors` pre-flight
errors before any gas is spent; afterwards it returns domain objects read from the emitted events (a
:class:`Fill` carries the escrow :class:`~agentmarket.types.Deal` that was opened).

:class:`OfferBookView` follows ``OfferPosted``/``OfferFilled``/``OfferCancelled``/``CounterIncremented`` and
answers "best offers for resource X in asset Y", sorted by price.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from .. import validate
from ..eip712 import Domain, recover, sign_digest
from ..errors import (
    ContractRevert,
    InsufficientAllowance,
    InsufficientFunds,
    InvalidInput,
    InvalidState,
    NotAuthorized,
    SignatureError,
    UnsafeTerms,
    decode_revert,
)
from ..logscan import get_logs
from ..reads import Read
from ..types import (
    BPS,
    CANCEL_SLOTS,
    ETH,
    OFFER_STRUCT,
    OFFER_TYPEHASH,
    UINT128_MAX,
    ZERO_ADDRESS,
    Deal,
    Offer,
    Side,
    resource_id,
    to_bytes32,
    to_seconds,
    to_timestamp,
)
from ..types.offers import _hex
from .base import (
    ERC1271_MAGIC,  # noqa: F401 - re-exported: part of this module's names
    ContractClient,
    allowance_of,
    balance_of,
    erc1271_accepts,
)
from .escrow import EscrowClient

DOMAIN_NAME = "AgentMarket OfferBook"
DOMAIN_VERSION = "1"
UINT64_MAX = 2**64 - 1

Deadline = int | float | datetime | timedelta


# A stranger filling an open buy request risks at least this share of the price as its bond.
MIN_OPEN_BUY_BOND_BPS = 1_000


def default_bond_per_unit(unit_price: int) -> int:
    """The seller bond per unit the client puts on an open buy request when none is given:
    MIN_OPEN_BUY_BOND_BPS of the unit price, rounded up (at least 1 wei)."""
    return max(1, -(-int(unit_price) * MIN_OPEN_BUY_BOND_BPS // BPS))


def unsafe_terms(offer: Offer) -> str | None:
    """Why ``offer`` lets a counterparty gain at its maker's or another taker's expense without risking
    anything of comparable value, or None. Only open buy requests (any taker) can be unsafe:
    - with no arbiter, any stranger can fill it, submit junk and collect unless the buyer holds a bond of
      at least MIN_OPEN_BUY_BOND_BPS of the price that the seller forfeits;
    - with no seller bond at all, a searcher takes the start unit of every honest seller's fill with a
      1-unit fill of its own for gas alone (signed fill v2: the loser reverts `EscrowDealExists`), and the
      buyer's price for that unit stays locked until it disputes; a per-unit bond makes each blocking fill
      put up capital that a junk delivery forfeits."""
    if offer.side != Side.BUY or offer.taker != ZERO_ADDRESS:
        return None
    if offer.arbiter == ZERO_ADDRESS and offer.bond_per_unit * BPS < offer.unit_price * MIN_OPEN_BUY_BOND_BPS:
        return (
            "an open buy request with no arbiter, no designated taker and a seller bond below"
            f" {MIN_OPEN_BUY_BOND_BPS / 100:g}% of the price lets any stranger fill it, deliver junk and"
            " collect; set arbiter=, taker= or bond_per_unit=, or pass allow_unsafe=True"
        )
    if offer.bond_per_unit == 0:
        return (
            "an open buy request with no seller bond lets a searcher block its sellers' fills for gas only"
            " (a 1-unit fill takes their start); set bond_per_unit= (default: "
            f"{MIN_OPEN_BUY_BOND_BPS / 100:g}% of the unit price) or taker=, or pass allow_unsafe=True"
        )
    return None


def _require_safe(offer: Offer, allow_unsafe: bool) -> None:
    reason = None if allow_unsafe else unsafe_terms(offer)
    if reason is not None:
        raise UnsafeTerms(reason)


@dataclass(frozen=True)
class SignedOffer:
    """An offer, its maker's signature and the domain (chain id, OfferBook) the signature is bound to."""

    offer: Offer
    signature: bytes
    domain: Domain

    @property
    def hash(self) -> bytes:
        """The EIP-712 digest (the offer's id in the OfferBook; computed once: the dataclass is frozen)."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = self.offer.digest(self.domain)
            object.__setattr__(self, "_hash", cached)
        return cached

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer": self.offer.to_dict(),
            "signature": _hex(self.signature),
            "domain": self.domain.as_dict(),
            "hash": _hex(self.hash),
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> SignedOffer:
        try:
            sig = bytes.fromhex(str(value["signature"]).removeprefix("0x"))
            signed = cls(Offer.from_dict(value["offer"]), sig, Domain.from_dict(value["domain"]))
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"malformed signed offer: {exc}") from None
        claimed = value.get("hash")
        if claimed is not None and str(claimed).lower() != _hex(signed.hash):
            raise InvalidInput(f"hash {claimed} does not match the offer's digest {_hex(signed.hash)}")
        return signed

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> SignedOffer:
        return cls.from_dict(json.loads(text))

    def verify(self) -> str:
        """Recover the ECDSA signer locally and check it is the maker (EOA makers; for contract wallets use
        :meth:`OffersClient.verify_signature`). Returns the maker; raises :class:`SignatureError`."""
        signer = recover(self.hash, self.signature)
        if signer != self.offer.maker:
            raise SignatureError(f"offer signed by {signer}, not by its maker {self.offer.maker}")
        return signer


OfferRef = Offer | SignedOffer


@dataclass(frozen=True)
class OfferStatus:
    """One offer digest: its fill chain's end (from ``OfferFilled`` events) and the book's flags."""

    filled: int  # units filled so far: where the next fill starts
    posted: bool  # posted on chain (fills need no signature)
    cancelled: bool
    last: FillLink | None = None  # the latest fill (what ``fillAfter`` needs), None before the head fill


@dataclass(frozen=True)
class FillLink:
    """A fill of an offer as the proof of where the next one starts (the contract's ``FillLink``)."""

    start: int
    quantity: int
    deal: Deal  # the deal it opened, with its current terms

    def as_tuple(self) -> tuple[int, int, tuple[Any, ...]]:
        return (self.start, self.quantity, self.deal.terms.as_tuple())


#: Top bit of every keyed escrow deal id (``DealLib.KEYED``): keyed ids never meet the sequential ones.
KEYED_DEAL_BIT = 1 << 255


def fill_deal_id(book: str, offer_hash: bytes, start: int) -> int:
    """The escrow deal id of the fill of ``offer_hash`` (in OfferBook ``book``) that starts at unit ``start``:
    keccak256(abi.encode(book, keccak256(abi.encode(offerHash, start)))) with the top bit set (computed
    locally; :meth:`OffersClient.fill_deal_id` asks the contract)."""
    key = keccak(bytes(offer_hash) + int(start).to_bytes(32, "big"))
    word = keccak(bytes(12) + bytes.fromhex(to_checksum_address(book)[2:]) + key)
    return int.from_bytes(word, "big") | KEYED_DEAL_BIT


#: The ``FillLink`` of a head fill in ``fillMany`` (quantity 0 means "starts at unit 0").
NO_LINK: tuple[int, int, tuple[Any, ...]] = (
    0,
    0,
    (ZERO_ADDRESS,) * 4 + (0,) * 2 + (b"\x00" * 32,) + (0,) * 8,
)


@dataclass(frozen=True)
class Fill:
    """A fill: ``quantity`` units of offer ``offer_hash`` taken by ``taker``, opening escrow ``deal``."""

    offer_hash: bytes
    quantity: int
    filled: int  # the offer's total filled quantity after this fill
    taker: str
    deal: Deal
    tx_hash: str
    gas_used: int


@dataclass(frozen=True)
class FillManyResult:
    """Outcome of ``fill_many``: fills in item order, and skipped items with their decoded reasons."""

    fills: list[Fill]
    skipped: list[tuple[int, bytes, ContractRevert]]  # (item index, offer hash, reason)
    tx_hash: str
    gas_used: int


@dataclass(frozen=True)
class Posted:
    """An offer posted on chain (as read back from ``OfferPosted``)."""

    offer: Offer
    offer_hash: bytes
    tx_hash: str
    gas_used: int


@dataclass(frozen=True)
class TxResult:
    """A transaction that changed offer state without a richer domain object (cancel, counter, deposit)."""

    tx_hash: str
    gas_used: int
    offer_hash: bytes | None = None
    counter: int | None = None
    balance: int | None = None


_BOOK_EVENTS = (
    "OfferPosted",
    "OfferFilled",
    "OfferCancelled",
    "CounterIncremented",
    "Deposited",
    "Withdrawn",
    "FillSkipped",
)


def _tx(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


class OffersClient(ContractClient):
    """Client for one deployed ``OfferBook``, acting as ``account`` (None for reads and verification)."""

    ARTIFACT = "OfferBook"
    EVENTS = _BOOK_EVENTS
    GAS_FAMILY = "offers"
    GAS_KEYS = {"incrementCounter": "offers.cancel_all"}  # noqa: RUF012 - read-only class table
    _domain: Domain | None = None
    _escrow: EscrowClient | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Offers built through this client (and its ``as_`` clones, which share the dict) that may still
        # be live, per maker: the slot picker keeps new offers out of their cancel slots (free_slot).
        self._made: dict[str, dict[bytes, Offer]] = {}

    # -- reads -----------------------------------------------------------------------------------------

    @property
    def domain(self) -> Domain:
        """The EIP-712 domain of this OfferBook (chain id + address)."""
        if self._domain is None:
            self._domain = Domain(DOMAIN_NAME, DOMAIN_VERSION, self.chain.chain_id, self.address)
        return self._domain

    @property
    def escrow(self) -> EscrowClient:
        """Client of the escrow deals are opened in (same account)."""
        if self._escrow is None:
            self._escrow = EscrowClient(
                self.chain, str(self.contract.functions.escrow().call()), self.account
            )
        elif self.account is not None and self._escrow.account is not self.account:
            self._escrow = self._escrow.as_(self.account)
        return self._escrow

    def hash(self, offer: OfferRef) -> bytes:
        """EIP-712 digest of ``offer`` under this OfferBook's domain."""
        return (offer.offer if isinstance(offer, SignedOffer) else offer).digest(self.domain)

    def status(self, offer: OfferRef) -> OfferStatus:
        """Flags from the book (``cancelled``: its cancel slot of its counter is cancelled, or the counter
        moved past it; never reverts to False), filled quantity and latest fill from its ``OfferFilled``
        events."""
        o = offer.offer if isinstance(offer, SignedOffer) else offer
        posted, cancelled = self.contract.functions.offerStatus(o.as_tuple()).call()
        last = self.last_fill(self.hash(o))
        return OfferStatus(last.start + last.quantity if last else 0, bool(posted), bool(cancelled), last)

    def last_fill(self, offer: OfferRef | bytes) -> FillLink | None:
        """The latest fill of an offer (the end of its fill chain), from ``OfferFilled`` events; None when
        it has none. Its deal's terms are rebuilt from the escrow's events (current after releases)."""
        h = offer if isinstance(offer, bytes) else self.hash(offer)
        topic = next(t for t, n in self._topics.items() if n == "OfferFilled")
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": self.from_block,
                "toBlock": "latest",
                # hex strings: eth-tester does not match HexBytes topics
                "topics": ["0x" + bytes(topic).hex(), "0x" + bytes(h).hex()],
            }
        )
        best: tuple[int, int, int] | None = None  # (filled, quantity, deal id)
        for log in logs:
            args = self._events["OfferFilled"].process_log(log)["args"]
            filled = int(args["filled"])
            if best is None or filled > best[0]:
                best = (filled, int(args["quantity"]), int(args["dealId"]))
        if best is None:
            return None
        filled, quantity, deal_id = best
        return FillLink(filled - quantity, quantity, self.escrow.deal(deal_id))

    def remaining(self, offer: OfferRef) -> int:
        """Units still fillable now (0 if expired, cancelled or voided by the counter): the chain's
        ``remainingFrom`` at the end of the offer's fill chain."""
        o = offer.offer if isinstance(offer, SignedOffer) else offer
        start = self.status(o).filled
        return int(self.contract.functions.remainingFrom(o.as_tuple(), start).call())

    def fill_deal_id(self, offer: OfferRef | bytes, start: int) -> int:
        """The escrow deal id of the fill of an offer that starts at unit ``start``."""
        h = offer if isinstance(offer, bytes) else self.hash(offer)
        return int(self.contract.functions.fillDealId(h, int(start)).call())

    def counter(self, maker: str | None = None) -> int:
        who = validate.address(maker, "maker") if maker is not None else self._me()
        return int(self.contract.functions.counterOf(who).call())

    def cancelled_slots(self, maker: str | None = None) -> tuple[int, int]:
        """(counter, cancelled-slot bitmap) of ``maker`` (default: this account): bit ``s`` set means every
        offer of the maker with that counter and cancel slot ``s`` is cancelled."""
        who = validate.address(maker, "maker") if maker is not None else self._me()
        counter, slots = self.contract.functions.cancelledSlots(who).call()
        return int(counter), int(slots)

    def free_slot(self, maker: str | None = None, *, now: int | None = None) -> tuple[int, int]:
        """(slot, counter): a cancel slot for a new offer of ``maker`` (default: this account) under its
        current counter, drawn at random among the slots that are neither cancelled on chain nor used by an
        offer this client (or an ``as_`` clone of it) built for the maker that may still be live (same counter, not expired, slot not
        cancelled; offers filled to the end keep their slot until they expire). So a later ``cancel`` of
        the new offer kills it alone. When every uncancelled slot holds such an offer (more than 128 live
        offers), the least used one is shared: a cancel then kills every offer in it. Raises
        :class:`InvalidState` when all 128 slots of the counter are cancelled (``cancel_all`` frees them)."""
        who = to_checksum_address(maker) if maker is not None else self._me()
        counter, cancelled = self.cancelled_slots(who)
        open_slots = [s for s in range(CANCEL_SLOTS) if not cancelled >> s & 1]
        if not open_slots:
            raise InvalidState(
                f"all {CANCEL_SLOTS} cancel slots of {who}'s counter {counter} are cancelled: cancel_all() "
                "starts a new counter with every slot free"
            )
        made = self._made.setdefault(who, {})
        if made and now is None:
            now = self.now()
        for h, o in list(made.items()):
            if o.counter != counter or o.expiry < (now or 0) or cancelled >> o.cancel_slot & 1:
                del made[h]
        used = Counter(o.cancel_slot for o in made.values())
        free = [s for s in open_slots if s not in used]
        if free:
            return secrets.choice(free), counter
        return min(open_slots, key=lambda s: used[s]), counter

    def deposit_of(self, account: str | None = None) -> int:
        who = validate.address(account, "account") if account is not None else self._me()
        return int(self.contract.functions.depositOf(who).call())

    # -- build, sign, verify -----------------------------------------------------------------------------

    def build(
        self,
        side: Side | str,
        resource: str | bytes,
        unit_price: int,
        quantity: int,
        *,
        asset: str = ETH,
        expiry: Deadline = timedelta(hours=1),
        min_fill: int = 1,
        bond_per_unit: int | None = None,
        delivery: int | timedelta = 3600,
        grace: int | timedelta = 3600,
        review_window: int | timedelta = 3600,
        ruling_window: int | timedelta = 86_400,
        penalty_bps_per_hour: int = 0,
        penalty_cap_bps: int = 0,
        arbiter: str | None = None,
        arbiter_fee_bps: int = 0,
        default_seller_bps: int = BPS,
        taker: str | None = None,
        terms_hash: bytes | str | None = None,
        salt: int | None = None,
        counter: int | None = None,
        maker: str | None = None,
        allow_unsafe: bool = False,
    ) -> Offer:
        """Build and validate an offer. ``side``: ``Side.SELL``/``"sell"`` or ``Side.BUY``/``"buy"``;
        ``resource``: a name (hashed) or a bytes32 id; ``expiry``: unix seconds, datetime, or timedelta from
        the chain's time; ``counter`` defaults to the maker's current one (read from the chain); ``salt`` to
        128 random bits whose low 7 bits are a cancel slot of its own (:meth:`free_slot`: cancelling the
        offer later kills it alone; an explicit ``salt`` whose slot is cancelled under the current counter
        raises :class:`InvalidState`); ``bond_per_unit`` to :func:`default_bond_per_unit` of the price on an open buy
        request (no ``taker``), else 0. Terms that let a stranger collect without risk (see :func:`unsafe_terms`) raise
        :class:`~agentmarket.errors.UnsafeTerms` unless ``allow_unsafe=True``."""
        if isinstance(side, str):
            try:
                side = Side[side.upper()]
            except KeyError:
                raise InvalidInput(f"side must be 'sell' or 'buy', got {side!r}") from None
        maker_addr = validate.address(maker, "maker", nonzero=True) if maker is not None else self._me()
        unit_price = validate.amount(unit_price, "unit_price", positive=True)
        quantity = validate.integer(quantity, "quantity", minimum=1)
        min_fill = validate.integer(min_fill, "min_fill", minimum=1)
        if bond_per_unit is None:
            # an open buy request gets a seller bond by default (unsafe_terms: fills blocked for gas)
            open_buy = side == Side.BUY and taker is None
            bond_per_unit = default_bond_per_unit(unit_price) if open_buy else 0
        bond_per_unit = validate.amount(bond_per_unit, "bond_per_unit")
        asset = validate.asset(self.w3, asset)
        arbiter = validate.optional(validate.address, arbiter, "arbiter")
        taker = validate.optional(validate.address, taker, "taker")
        penalty_bps_per_hour = validate.bps(penalty_bps_per_hour, "penalty_bps_per_hour")
        penalty_cap_bps = validate.bps(penalty_cap_bps, "penalty_cap_bps")
        arbiter_fee_bps = validate.bps(arbiter_fee_bps, "arbiter_fee_bps")
        default_seller_bps = validate.bps(default_seller_bps, "default_seller_bps")
        salt = validate.optional(validate.integer, salt, "salt")
        counter = validate.optional(validate.integer, counter, "counter")
        if not isinstance(resource, (str, bytes)) or not resource:
            raise InvalidInput(f"resource must be a non-empty name or id, got {resource!r}", param="resource")
        now = self.now() if isinstance(expiry, timedelta) else None
        if salt is None:
            slot, current = self.free_slot(maker_addr, now=now)
            salt = secrets.randbits(128) & ~(CANCEL_SLOTS - 1) | slot
        else:
            current, cancelled = self.cancelled_slots(maker_addr)
            if (counter is None or counter == current) and cancelled >> (salt % CANCEL_SLOTS) & 1:
                raise InvalidState(
                    f"salt {salt} is in cancel slot {salt % CANCEL_SLOTS}, which {maker_addr} cancelled under "
                    f"counter {current}: the offer would be dead (pass another salt, or salt=None)"
                )
        offer = Offer(
            maker=maker_addr,
            side=Side(side),
            resource_id=resource_id(resource),
            unit_price=int(unit_price),
            quantity=int(quantity),
            expiry=to_timestamp(expiry, now),
            asset=to_checksum_address(asset),
            terms_hash=to_bytes32(terms_hash),
            min_fill=int(min_fill),
            bond_per_unit=int(bond_per_unit),
            delivery_seconds=to_seconds(delivery),
            grace_seconds=to_seconds(grace),
            review_window=to_seconds(review_window),
            ruling_window=to_seconds(ruling_window),
            penalty_bps_per_hour=int(penalty_bps_per_hour),
            penalty_cap_bps=int(penalty_cap_bps),
            arbiter=arbiter or ZERO_ADDRESS,
            arbiter_fee_bps=int(arbiter_fee_bps),
            default_seller_bps=int(default_seller_bps),
            taker=taker or ZERO_ADDRESS,
            salt=int(salt),
            counter=current if counter is None else int(counter),
        )
        offer.validate()
        _require_safe(offer, allow_unsafe)
        if offer.counter == current:  # keep later offers out of its slot while it may be live
            self._made.setdefault(maker_addr, {})[offer.digest(self.domain)] = offer
        return offer

    def sign(
        self, offer: Offer, *, key: LocalAccount | None = None, allow_unsafe: bool = False
    ) -> SignedOffer:
        """Sign ``offer`` for this OfferBook's domain with ``key`` (default: this client's account).
        The key must be the maker's, unless the maker is a contract wallet (ERC-1271) that judges it.
        Unsafe terms (:func:`unsafe_terms`) raise :class:`~agentmarket.errors.UnsafeTerms` unless
        ``allow_unsafe=True``."""
        _require_safe(offer, allow_unsafe)
        signer = key or self.account
        if signer is None:
            raise NotAuthorized("no key to sign with (pass key= or use .as_(account))")
        if to_checksum_address(signer.address) != offer.maker and not self._has_code(offer.maker):
            raise NotAuthorized(f"{signer.address} cannot sign for maker {offer.maker}")
        return SignedOffer(offer, sign_digest(signer, offer.digest(self.domain)), self.domain)

    def offer(
        self, side: Side | str, resource: str | bytes, unit_price: int, quantity: int, **terms: Any
    ) -> SignedOffer:
        """:meth:`build` then :meth:`sign` (``allow_unsafe`` goes to both)."""
        offer = self.build(side, resource, unit_price, quantity, **terms)
        return self.sign(offer, allow_unsafe=bool(terms.get("allow_unsafe", False)))

    def verify_signature(self, signed: SignedOffer) -> None:
        """Check the signature as the contract will: low-s ECDSA by the maker, else the maker's ERC-1271
        ``isValidSignature`` (called on chain). Raises :class:`SignatureError`."""
        if signed.domain != self.domain:
            raise SignatureError(
                f"offer signed for chain {signed.domain.chain_id} / {signed.domain.verifying_contract}, "
                f"this book is chain {self.domain.chain_id} / {self.address}"
            )
        try:
            if recover(signed.hash, signed.signature) == signed.offer.maker:
                return
        except SignatureError:
            if not self._has_code(signed.offer.maker):
                raise
        if self._has_code(signed.offer.maker):
            if erc1271_accepts(self.w3, signed.offer.maker, signed.hash, signed.signature):
                return
            raise SignatureError(f"contract wallet {signed.offer.maker} refuses the signature")
        raise SignatureError(f"signature is not by the maker {signed.offer.maker}")

    def check(self, offer: OfferRef, quantity: int | None = None, *, taker: str | None = None) -> int:
        """Everything ``fill`` checks, without sending: domain, expiry, cancellation, counter, taker,
        remaining and minimum fill, signature. Returns the quantity a fill would take (default: the rest).
        Raises InvalidState / InvalidInput / NotAuthorized / SignatureError."""
        return self._check(offer, quantity, taker=taker)[0]

    def _check(
        self,
        offer: OfferRef,
        quantity: int | None = None,
        *,
        taker: str | None = None,
        extra: Sequence[Read] = (),
    ) -> tuple[int, FillLink | None, list[Any]]:
        """:meth:`check`, returning also the offer's latest fill and the decoded ``extra`` reads. The book's
        flags, the maker's counter, the pending block's clock and ``extra`` go to the node in one JSON-RPC
        batch (one round trip where web3 took one each); the fill chain comes from one log lookup."""
        signed = offer if isinstance(offer, SignedOffer) else None
        o = signed.offer if signed else offer
        assert isinstance(o, Offer)
        if signed is not None and signed.domain != self.domain:
            raise SignatureError(
                f"offer is bound to chain {signed.domain.chain_id} / {signed.domain.verifying_contract}, "
                f"not to this book (chain {self.domain.chain_id} / {self.address})"
            )
        h = o.digest(self.domain)
        reads = [
            Read.call(self.contract, "offerStatus", o.as_tuple()),
            Read.timestamp("pending"),
            Read.call(self.contract, "counterOf", o.maker),
            *extra,
        ]
        (posted, cancelled), now, current, *values = self.chain.transactor.read(reads)
        last = self.last_fill(h)
        st = OfferStatus(last.start + last.quantity if last else 0, bool(posted), bool(cancelled), last)
        if now > o.expiry:
            raise InvalidState(f"offer {_hex(h)} expired at {o.expiry} (chain time {now})")
        if o.counter != current:
            raise InvalidState(
                f"offer {_hex(h)} was signed with counter {o.counter}; the maker's is {current}"
            )
        if st.cancelled:
            raise InvalidState(
                f"offer {_hex(h)} was cancelled by its maker (cancel slot {o.cancel_slot} of counter {current})"
            )
        who = to_checksum_address(taker or self._me())
        if o.taker != ZERO_ADDRESS and o.taker != who:
            raise NotAuthorized(f"offer {_hex(h)} is reserved for taker {o.taker}")
        if who == o.maker:
            raise NotAuthorized("a maker cannot fill its own offer")
        rest = o.quantity - st.filled
        q = rest if quantity is None else validate.integer(quantity, "quantity", minimum=1)
        if q <= 0 or q > rest:
            raise InvalidInput(f"cannot fill {q} of offer {_hex(h)}: {rest} remaining")
        if q < o.min_fill and q != rest:
            raise InvalidInput(f"fill of {q} is below the offer's minimum fill {o.min_fill}")
        if o.arbiter != ZERO_ADDRESS and o.arbiter == who:
            raise InvalidInput("the offer's arbiter cannot be its taker")
        if not st.posted:
            if signed is None:
                raise SignatureError(f"offer {_hex(h)} is not posted on chain: a signature is needed")
            self.verify_signature(signed)
        return q, last, values

    # -- sending -----------------------------------------------------------------------------------------

    def fill(self, offer: OfferRef, quantity: int | None = None, *, approve: bool = False) -> Fill:
        """Fill ``quantity`` units (default: all remaining) of a signed or posted offer as the taker, opening
        an escrow deal. Pays the taker's leg (ETH value or ERC-20 allowance; ``approve=True`` approves exactly
        what is missing)."""
        o = offer.offer if isinstance(offer, SignedOffer) else offer
        # an ETH offer's legs (the taker's balance, the maker's deposit) ride in the checks' batch
        extra = [Read.balance(self._me()), Read.call(self.contract, "depositOf", o.maker)] if o.is_eth else []
        q, last, legs = self._check(offer, quantity, extra=extra)
        self._ensure_legs(o, q, approve=approve, balances=legs or None)
        sig = offer.signature if isinstance(offer, SignedOffer) else b""
        value = o.taker_leg(q) if o.is_eth else 0
        # the head fill starts at unit 0; a later one proves where the chain ends with the latest fill
        fn = (
            self.contract.functions.fill(o.as_tuple(), sig, q)
            if last is None
            else self.contract.functions.fillAfter(o.as_tuple(), sig, q, last.as_tuple())
        )
        receipt = self._send(
            fn,
            value=value,
            gas_key="offers.fill_signed_eth" if o.is_eth else "offers.fill_signed_erc20",
        )
        fills = self._fills_from_receipt(receipt)
        if len(fills) != 1:
            raise InvalidState(f"transaction {_tx(receipt)} emitted {len(fills)} fills")
        return fills[0]

    def fill_many(
        self, items: Sequence[tuple[OfferRef, int]], *, approve: bool = False, preflight: bool = False
    ) -> FillManyResult:
        """Fill many offers in one transaction; items that would revert on chain are skipped and reported
        (``preflight=True`` checks every item first and raises instead). ETH legs are summed into the value."""
        self._me()
        if not items:
            raise InvalidInput("empty batch")
        calls: list[tuple[Any, bytes, int, Any]] = []
        value = 0
        per_asset: dict[str, int] = {}
        for ref, q in items:
            q = validate.integer(q, "quantity", minimum=1)
            o = ref.offer if isinstance(ref, SignedOffer) else ref
            if o.is_eth:
                value += o.taker_leg(int(q))
            else:
                per_asset[o.asset] = per_asset.get(o.asset, 0) + o.taker_leg(int(q))
            last = self._check(ref, q)[1] if preflight else self.last_fill(o.digest(self.domain))
            link = NO_LINK if last is None else last.as_tuple()
            calls.append((o.as_tuple(), ref.signature if isinstance(ref, SignedOffer) else b"", int(q), link))
        self._ensure_balance(ETH, value)
        for asset, amount in per_asset.items():
            self._ensure_allowance(asset, self._me(), amount, approve=approve, whose="your")
        receipt = self._send(
            self.contract.functions.fillMany(calls),
            value=value,
            gas_key="offers.fill_signed_erc20",  # per item: the dearer of the two fill figures
            gas_count=len(calls),
        )
        skipped = []
        for log in receipt["logs"]:
            decoded = self._decode(log)
            if decoded and decoded[0] == "FillSkipped":
                args = decoded[1]["args"]
                skipped.append(
                    (int(args["index"]), bytes(args["offerHash"]), decode_revert(bytes(args["reason"])))
                )
        return FillManyResult(
            self._fills_from_receipt(receipt), skipped, _tx(receipt), int(receipt["gasUsed"])
        )

    def post(self, offer: Offer, *, allow_unsafe: bool = False) -> Posted:
        """Post ``offer`` on chain as its maker (discoverable from events; fills need no signature).
        Unsafe terms (:func:`unsafe_terms`) need ``allow_unsafe=True``."""
        me = to_checksum_address(self._me())
        if offer.maker != me:
            raise NotAuthorized(f"only the maker {offer.maker} can post this offer")
        offer.validate()
        _require_safe(offer, allow_unsafe)
        h = self.hash(offer)
        st = self.status(offer)
        if st.cancelled:
            raise InvalidState(f"offer {_hex(h)} was cancelled (its cancel slot, or by the counter)")
        if st.posted:
            raise InvalidState(f"offer {_hex(h)} is already posted")
        if self.now() > offer.expiry:
            raise InvalidState(f"offer expired at {offer.expiry}")
        if offer.counter != self.counter(me):
            raise InvalidState(f"offer counter {offer.counter} is stale (current {self.counter(me)})")
        receipt = self._send(self.contract.functions.post(offer.as_tuple()))
        for log in receipt["logs"]:
            decoded = self._decode(log)
            if decoded and decoded[0] == "OfferPosted":
                args = decoded[1]["args"]
                return Posted(
                    Offer.from_abi(args["offer"]),
                    bytes(args["offerHash"]),
                    _tx(receipt),
                    int(receipt["gasUsed"]),
                )
        raise InvalidState(f"transaction {_tx(receipt)} emitted no OfferPosted")

    def cancel(self, offer: OfferRef) -> TxResult:
        """Cancel ``offer`` as its maker (its unfilled rest can no longer be filled). The chain cancels the
        offer's cancel slot (``offer.cancel_slot``) of the maker's current counter: every other offer of
        this maker with the same counter and slot dies too. Offers built by :meth:`build` with a random salt
        get a slot of their own (:meth:`free_slot`), so by default this kills exactly this offer. There is
        no un-cancel. Raises :class:`InvalidState` when the offer is not of the current counter (an older
        one is void already; a later one cannot be cancelled ahead) or is already cancelled."""
        o = offer.offer if isinstance(offer, SignedOffer) else offer
        if o.maker != to_checksum_address(self._me()):
            raise NotAuthorized(f"only the maker {o.maker} can cancel this offer")
        h = self.hash(o)
        current, cancelled = self.cancelled_slots(o.maker)
        if o.counter != current:
            raise InvalidState(
                f"offer {_hex(h)} carries counter {o.counter}, the maker's is {current}: "
                + ("it is void already" if o.counter < current else "it cannot be cancelled ahead")
            )
        if cancelled >> o.cancel_slot & 1:
            raise InvalidState(f"offer {_hex(h)} is already cancelled (slot {o.cancel_slot})")
        # the first cancel of a maker whose account word is zero costs the most: budget for it
        receipt = self._send(self.contract.functions.cancel(o.as_tuple()), gas_key="offers.cancel_first")
        return TxResult(_tx(receipt), int(receipt["gasUsed"]), offer_hash=h, counter=current)

    def cancel_all(self) -> TxResult:
        """Void every offer this account signed or posted so far (bumps its counter)."""
        receipt = self._send(self.contract.functions.incrementCounter())
        counter = None
        for log in receipt["logs"]:
            decoded = self._decode(log)
            if decoded and decoded[0] == "CounterIncremented":
                counter = int(decoded[1]["args"]["counter"])
        return TxResult(_tx(receipt), int(receipt["gasUsed"]), counter=counter)

    def deposit(self, amount: int, *, for_: str | None = None) -> TxResult:
        """Deposit ETH (the maker's ETH leg: bonds of sell offers, prices of buy requests)."""
        amount = validate.amount(amount, "amount", positive=True)
        for_ = validate.optional(validate.address, for_, "for_", nonzero=True)
        self._ensure_balance(ETH, amount)
        fn = self.contract.functions.deposit() if for_ is None else self.contract.functions.depositFor(for_)
        receipt = self._send(fn, value=amount)
        return TxResult(_tx(receipt), int(receipt["gasUsed"]), balance=self.deposit_of(for_ or self._me()))

    def withdraw(self, amount: int | None = None, *, to: str | None = None) -> TxResult:
        """Withdraw ``amount`` wei (default: all) of this account's deposit, at any time."""
        amount = validate.optional(validate.amount, amount, "amount", positive=True)
        to = validate.optional(validate.address, to, "to", nonzero=True)
        balance = self.deposit_of()
        amount = balance if amount is None else amount
        if amount <= 0 or amount > balance:
            raise InsufficientFunds(f"deposit is {balance} wei, cannot withdraw {amount}")
        fn = (
            self.contract.functions.withdraw(amount)
            if to is None
            else self.contract.functions.withdrawTo(to, amount)
        )
        receipt = self._send(fn)
        return TxResult(_tx(receipt), int(receipt["gasUsed"]), balance=balance - amount)

    def publish(self, offer: Offer | SignedOffer, *, relay: Any) -> SignedOffer:
        """Sign ``offer`` (unless signed) and post it to an offer relay (a ``RelayClient`` or its URL)."""
        from ..relay.client import publish

        return publish(self, offer, relay)

    def fill_from_relay(self, relay: Any, resource: str | bytes, quantity: int, **filters: Any) -> Fill:
        """Query a relay for the best live offers, check them on chain in price order, fill the first that
        passes (see :func:`agentmarket.relay.client.fill_from_relay` for the filters)."""
        from ..relay.client import fill_from_relay

        return fill_from_relay(self, relay, resource, quantity, **filters)

    def book(self) -> OfferBookView:
        """A view of the offer book that follows the chain's events (call ``sync()`` to catch up)."""
        view = OfferBookView(self)
        view.sync()
        return view

    # -- helpers ---------------------------------------------------------------------------------------------

    def _has_code(self, address: str) -> bool:
        return len(bytes(self.w3.eth.get_code(to_checksum_address(address)))) > 0

    def _ensure_balance(
        self, asset: str, amount: int, who: str | None = None, *, balance: int | None = None
    ) -> None:
        """Raise unless ``who`` (default: this account) holds ``amount`` of ``asset`` (``balance``: already
        read)."""
        if amount == 0:
            return
        who = who or self._me()
        if balance is None:
            balance = balance_of(self.w3, asset, who)
        if balance < amount:
            raise InsufficientFunds(f"{who} holds {balance} of {asset}, needs {amount}")

    def _ensure_allowance(self, asset: str, who: str, amount: int, *, approve: bool, whose: str) -> None:
        if amount == 0:
            return
        self._ensure_balance(asset, amount, who)
        allowance = allowance_of(self.w3, asset, who, self.address)
        if allowance >= amount:
            return
        if approve and whose == "your":
            self.approve(asset, amount)
            return
        raise InsufficientAllowance(
            f"the OfferBook may spend {allowance} of {asset} for {whose} account {who}, "
            f"needs {amount}" + (" (pass approve=True)" if whose == "your" else "")
        )

    def _ensure_legs(self, o: Offer, q: int, *, approve: bool, balances: Sequence[int] | None = None) -> None:
        """Raise unless both legs of filling ``q`` units can be paid. ``balances``: the taker's ETH balance
        and the maker's deposit, already read (an ETH offer; :meth:`fill` batches them with its checks)."""
        taker_leg, maker_leg = o.taker_leg(q), o.maker_leg(q)
        if o.price(q) > UINT128_MAX or o.bond(q) > UINT128_MAX:
            raise InvalidInput("price or bond of this fill exceeds uint128")
        if o.is_eth:
            self._ensure_balance(ETH, taker_leg, balance=None if balances is None else int(balances[0]))
            if maker_leg:
                deposit = self.deposit_of(o.maker) if balances is None else int(balances[1])
                if deposit < maker_leg:
                    raise InsufficientFunds(
                        f"the maker {o.maker} has {deposit} wei deposited, the fill needs {maker_leg} from it"
                    )
        else:
            self._ensure_allowance(o.asset, self._me(), taker_leg, approve=approve, whose="your")
            self._ensure_allowance(o.asset, o.maker, maker_leg, approve=False, whose="the maker's")

    def _decode(self, log: Any) -> tuple[str, Any] | None:
        if to_checksum_address(log["address"]) != self.address or not log["topics"]:
            return None
        name = self._topics.get(HexBytes(log["topics"][0]))
        if name is None:
            return None
        return name, self._events[name].process_log(log)

    def _fills_from_receipt(self, receipt: Any) -> list[Fill]:
        tx, gas = _tx(receipt), int(receipt["gasUsed"])
        escrow = self.escrow
        deals: dict[int, Deal] = {}
        fills = []
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) == escrow.address:
                decoded = escrow._decode(log)
                if decoded and decoded[0] == "DealCreated":
                    deal = escrow._created(decoded[1], tx)
                    deals[deal.id] = deal
                continue
            mine = self._decode(log)
            if mine and mine[0] == "OfferFilled":
                a = mine[1]["args"]
                fills.append(
                    Fill(
                        bytes(a["offerHash"]),
                        int(a["quantity"]),
                        int(a["filled"]),
                        to_checksum_address(a["taker"]),
                        deals[int(a["dealId"])],
                        tx,
                        gas,
                    )
                )
        return fills


# -- the offer book view ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookEntry:
    """One offer as the book knows it."""

    offer: Offer
    offer_hash: bytes
    filled: int = 0
    cancelled: bool = False  # its slot of its counter was cancelled (by any offer's cancel), or counter past
    posted: bool = False
    signature: bytes | None = None  # for signed offers added from off-chain channels

    @property
    def remaining(self) -> int:
        return self.offer.quantity - self.filled

    def is_live(self, now: int, counter: int) -> bool:
        return (
            not self.cancelled
            and self.remaining > 0
            and now <= self.offer.expiry
            and self.offer.counter == counter
        )

    @property
    def ref(self) -> OfferRef:
        """What to pass to ``OffersClient.fill``."""
        return self.offer


class OfferBookView:
    """Offers known from ``OfferPosted`` events (and signed offers added with :meth:`add`), kept current with
    ``OfferFilled``/``OfferCancelled``/``CounterIncremented``. :meth:`offers` filters by resource, side, asset
    and maker and sorts by unit price (sell offers cheapest first, buy requests highest first)."""

    def __init__(self, client: OffersClient):
        self.client = client
        self._entries: dict[bytes, BookEntry] = {}
        self._signed: dict[bytes, SignedOffer] = {}
        self._filled: dict[bytes, int] = {}
        self._cancelled: set[tuple[str, int, int]] = set()  # (maker, counter, slot)
        self._counters: dict[str, int] = {}
        self._next_block = client.from_block

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[BookEntry]:
        return iter(self._entries.values())

    def get(self, offer_hash: bytes) -> BookEntry | None:
        return self._entries.get(bytes(offer_hash))

    def counter(self, maker: str) -> int:
        return self._counters.get(to_checksum_address(maker), 0)

    def _is_cancelled(self, offer: Offer) -> bool:
        """As the chain's ``offerStatus(offer).cancelled``: its slot of its counter was cancelled, or its
        maker's counter moved past it."""
        key = (offer.maker, offer.counter, offer.cancel_slot)
        return key in self._cancelled or offer.counter < self.counter(offer.maker)

    def add(self, signed: SignedOffer) -> BookEntry:
        """Add a signed offer received off chain (its fills and cancellation are already tracked)."""
        if signed.domain != self.client.domain:
            raise SignatureError("offer signed for another OfferBook or chain")
        signed.verify()
        h = signed.hash
        self._signed[h] = signed
        entry = self._entries.get(h) or BookEntry(signed.offer, h)
        entry = replace(
            entry,
            filled=self._filled.get(h, 0),
            cancelled=self._is_cancelled(signed.offer),
            signature=signed.signature,
        )
        self._entries[h] = entry
        return entry

    def signed(self, offer_hash: bytes) -> OfferRef:
        """The fillable reference of an entry: its SignedOffer if it came signed, else the posted offer."""
        h = bytes(offer_hash)
        return self._signed.get(h) or self._entries[h].offer

    def sync(self) -> int:
        """Fold the events since the last sync; returns how many were applied."""
        w3 = self.client.w3
        head = int(w3.eth.block_number)
        if head < self._next_block:
            return 0
        logs = get_logs(w3, {"address": self.client.address}, self._next_block, head)
        applied = 0
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            decoded = self.client._decode(log)
            if decoded is None:
                continue
            name, event = decoded
            args = event["args"]
            applied += 1
            if name == "OfferPosted":
                h = bytes(args["offerHash"])
                offer = Offer.from_abi(args["offer"])
                old = self._entries.get(h)
                self._entries[h] = (
                    replace(old, posted=True)
                    if old
                    else BookEntry(
                        offer,
                        h,
                        filled=self._filled.get(h, 0),
                        cancelled=self._is_cancelled(offer),
                        posted=True,
                    )
                )
            elif name == "OfferFilled":
                h = bytes(args["offerHash"])
                self._filled[h] = int(args["filled"])
                if h in self._entries:
                    self._entries[h] = replace(self._entries[h], filled=int(args["filled"]))
            elif name == "OfferCancelled":
                # the slot dies: every entry of the maker with that counter and slot, not only this hash
                key = (to_checksum_address(args["maker"]), int(args["counter"]), int(args["slot"]))
                self._cancelled.add(key)
                for h, e in self._entries.items():
                    if not e.cancelled and self._is_cancelled(e.offer):
                        self._entries[h] = replace(e, cancelled=True)
            elif name == "CounterIncremented":
                maker_addr = to_checksum_address(args["maker"])
                self._counters[maker_addr] = int(args["counter"])
                for h, e in self._entries.items():
                    if e.offer.maker == maker_addr and not e.cancelled and self._is_cancelled(e.offer):
                        self._entries[h] = replace(e, cancelled=True)
            else:
                applied -= 1
        self._next_block = head + 1
        return applied

    def offers(
        self,
        *,
        resource: str | bytes | None = None,
        side: Side | str | None = None,
        asset: str | None = None,
        maker: str | None = None,
        live: bool = True,
        now: int | None = None,
    ) -> list[BookEntry]:
        """Entries matching the filters, sorted by unit price (ascending; buy requests descending when
        ``side`` is BUY). ``live`` (default) keeps only fillable offers (not cancelled, expired,
        counter-voided or exhausted)."""
        rid = resource_id(resource) if resource is not None else None
        s = Side[side.upper()] if isinstance(side, str) else side
        a = to_checksum_address(asset) if asset is not None else None
        m = to_checksum_address(maker) if maker is not None else None
        when = self.client.now() if live and now is None else now
        result = []
        for e in self._entries.values():
            o = e.offer
            if (
                (rid is not None and o.resource_id != rid)
                or (s is not None and o.side != s)
                or (a is not None and o.asset != a)
                or (m is not None and o.maker != m)
            ):
                continue
            if live and not e.is_live(int(when or 0), self.counter(o.maker)):
                continue
            result.append(e)
        descending = s == Side.BUY
        return sorted(
            result, key=lambda e: (-e.offer.unit_price if descending else e.offer.unit_price, e.offer.expiry)
        )

    def best(self, side: Side | str, resource: str | bytes, asset: str = ETH) -> BookEntry | None:
        """The best live offer: the cheapest sell offer, or the highest buy request."""
        found = self.offers(resource=resource, side=side, asset=asset)
        return found[0] if found else None


__all__ = [
    "OFFER_STRUCT",
    "OFFER_TYPEHASH",
    "BookEntry",
    "Fill",
    "FillManyResult",
    "Offer",
    "OfferBookView",
    "OfferStatus",
    "OffersClient",
    "Posted",
    "Side",
    "SignedOffer",
    "TxResult",
    "resource_id",
]
