"""EscrowClient: open, deliver, settle and withdraw escrow deals with pre-flight checks.

Every transition checks role, state, deadlines, balance and allowance before anything is sent (raising
:mod:`agentmarket.errors` pre-flight errors), then sends through the chain's :class:`~agentmarket.tx.Transactor`
(simulation first, so a revert surfaces as the typed contract error) and returns the :class:`~agentmarket.types.Deal`
updated from the emitted event. Deals are rebuilt from events (``deal``, ``deals``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes

from .. import validate
from ..calldata import prepare
from ..errors import (
    ContractRevert,
    InvalidInput,
    InvalidState,
    NotAuthorized,
    decode_revert,
)
from ..reads import Read, event_decoder
from ..types import (
    BPS,
    ETH,
    ZERO_ADDRESS,
    Deal,
    DealState,
    DealTerms,
    Settlement,
    to_bytes32,
    to_seconds,
    to_timestamp,
)
from .base import ContractClient, balance_of, require_eth

Deadline = int | float | datetime | timedelta
DealRef = Deal | int

_DEAL_EVENTS = (
    "DealCreated",
    "BondPosted",
    "DeliverableSubmitted",
    "FundsReleased",
    "DealAccepted",
    "DealFinalized",
    "DealDisputed",
    "DisputeResolved",
    "DisputeDefaulted",
    "DealRefunded",
    "CancelRequested",
    "DealCancelled",
    "DealRejected",
)

#: Shortest review window the client writes into terms without ``allow_short_review=True``: a buyer needs
#: time to look at a deliverable and reject or dispute it; below this a stranger that submits anything is
#: all but sure to collect by ``finalize`` before the buyer can react (issue 12, point 1).
MIN_REVIEW_WINDOW = 600


class _StaleTerms(Exception):
    """Internal: the caller's copy of a deal's terms is not the one on chain (rebuilt, then tried again)."""


@dataclass(frozen=True)
class Totals:
    """Solvency figures of one asset: balance == locked + credits + fees (absent donations)."""

    locked: int
    credits: int
    fees: int

    @property
    def accounted(self) -> int:
        return self.locked + self.credits + self.fees


@dataclass(frozen=True)
class BatchResult:
    """Outcome of ``accept_many`` / ``finalize_many``: settled deals and skipped ids with their reasons."""

    settled: list[Deal]
    skipped: list[tuple[int, ContractRevert]]
    tx_hash: str
    gas_used: int


class EscrowClient(ContractClient):
    """Client for one deployed ``AgentEscrow``, acting as ``account`` (which may be None for reads)."""

    ARTIFACT = "AgentEscrow"
    SPENDER = "escrow"
    GAS_FAMILY = "escrow"
    EVENTS = (*_DEAL_EVENTS, "DealSkipped", "PayoutCredited", "Withdrawn", "FeesCollected")
    _fee_bps: int | None = None  # read once, on first use

    # -- reads -------------------------------------------------------------------------------------------

    @property
    def fee_bps(self) -> int:
        if self._fee_bps is None:
            self._fee_bps = int(self.contract.functions.feeBps().call())
        return self._fee_bps

    @property
    def fee_recipient(self) -> str:
        return str(self.contract.functions.feeRecipient().call())

    def totals(self, asset: str = ETH) -> Totals:
        locked, credits, fees = self.contract.functions.totals(validate.address(asset, "asset")).call()
        return Totals(int(locked), int(credits), int(fees))

    def credit(self, account: str | None = None, asset: str = ETH) -> int:
        """Withdrawable credit of ``account`` (default: this client's account) in ``asset``."""
        who = validate.address(account, "account") if account is not None else self._me()
        return int(self.contract.functions.creditOf(who, validate.address(asset, "asset")).call())

    def asset_balance(self, account: str, asset: str = ETH) -> int:
        """ETH or ERC-20 balance of ``account``."""
        return balance_of(self.w3, asset, account)

    def solvency(self, asset: str = ETH) -> tuple[int, Totals]:
        """(contract balance, totals) of ``asset``; solvent when balance >= totals.accounted."""
        return self.asset_balance(self.address, asset), self.totals(asset)

    def status(self, deal_id: int) -> tuple[DealState, int, bool, bool]:
        state, submitted, buyer_c, seller_c = self.contract.functions.dealStatus(int(deal_id)).call()
        return DealState(state), int(submitted), bool(buyer_c), bool(seller_c)

    def deal(self, deal_id: int) -> Deal:
        """Rebuild deal ``deal_id`` from its events."""
        deal_id = _deal_id(deal_id)
        logs = self._logs(
            # hex strings: eth-tester does not match HexBytes topics
            [
                ["0x" + bytes(t).hex() for t, n in self._topics.items() if n in _DEAL_EVENTS],
                "0x" + int(deal_id).to_bytes(32, "big").hex(),
            ]
        )
        deals = self._fold(logs)
        if int(deal_id) not in deals:
            raise InvalidInput(f"no deal {deal_id} in escrow {self.address}")
        return deals[int(deal_id)]

    def deals(
        self,
        *,
        party: str | None = None,
        state: DealState | Iterable[DealState] | None = None,
        role: str | None = None,
    ) -> list[Deal]:
        """Every deal rebuilt from events, optionally those where ``party`` is buyer/seller/arbiter
        (or exactly ``role``), and in ``state`` (one or several)."""
        logs = self._logs()
        result = list(self._fold(logs).values())
        if party is not None:
            who = validate.address(party, "party")
            result = [d for d in result if (d.role_of(who) == role if role else d.role_of(who) is not None)]
        if state is not None:
            states = {DealState(state)} if isinstance(state, int) else {DealState(s) for s in state}
            result = [d for d in result if d.state in states]
        return sorted(result, key=lambda d: d.id)

    # -- event folding ------------------------------------------------------------------------------------

    def _decode(self, log: Any) -> tuple[str, Any] | None:
        if not log["topics"]:
            return None
        name = self._topics.get(HexBytes(log["topics"][0]))
        if name is None:
            return None
        # eth_abi directly, in web3.py's EventData shape (web3.py's own process_log is ~1 ms per log)
        return name, event_decoder(self._events[name].abi).process_log(log)

    def _fold(self, logs: Sequence[Any]) -> dict[int, Deal]:
        deals: dict[int, Deal] = {}
        for log in sorted(logs, key=lambda x: (x["blockNumber"], x["logIndex"])):
            decoded = self._decode(log)
            if decoded is None:
                continue
            name, event = decoded
            tx = "0x" + bytes(log["transactionHash"]).hex()
            deal_id = int(event["args"].get("dealId", 0))
            if name == "DealCreated":
                deals[deal_id] = self._created(event, tx)
            elif deal_id in deals:
                deals[deal_id] = self._apply(deals[deal_id], name, event["args"], tx)
        return deals

    @staticmethod
    def _created(event: Any, tx: str) -> Deal:
        args = event["args"]
        return Deal(
            id=int(args["dealId"]),
            terms=DealTerms.from_abi(args["deal"]),
            state=DealState(args["state"]),
            opened_by=to_checksum_address(args["openedBy"]),
            tx_hash=tx,
        )

    @staticmethod
    def _apply(deal: Deal, name: str, args: Any, tx: str) -> Deal:
        """The deal after event ``name`` (shared by rebuild-from-logs and post-transaction updates)."""
        t = deal.terms
        if name == "BondPosted":
            return replace(deal, terms=replace(t, bond=int(args["bond"])), state=DealState.FUNDED, tx_hash=tx)
        if name == "DeliverableSubmitted":
            # submitting rewrites the stored word: pending cancel requests lapse (as in `dealStatus`)
            return replace(
                deal,
                state=DealState.SUBMITTED,
                submitted_at=int(args["submittedAt"]),
                deliverable_hash=bytes(args["deliverableHash"]),
                buyer_cancelled=False,
                seller_cancelled=False,
                tx_hash=tx,
            )
        if name == "FundsReleased":
            return replace(
                deal,
                terms=replace(t, amount=int(args["remaining"])),
                released=deal.released + int(args["amount"]),
                tx_hash=tx,
            )
        if name in ("DealAccepted", "DealFinalized"):
            # the fee is not in the event (hot path): fee = ceil((amount - penalty) * feeBps / 10_000)
            to_seller, to_buyer = int(args["toSeller"]), int(args["toBuyer"])
            fee = t.amount - to_buyer + t.bond - to_seller
            state = DealState.ACCEPTED if name == "DealAccepted" else DealState.FINALIZED
            return replace(
                deal,
                state=state,
                tx_hash=tx,
                settlement=Settlement(to_seller=to_seller, to_buyer=to_buyer, fee=fee),
            )
        if name == "DealDisputed":
            return replace(deal, state=DealState.DISPUTED, tx_hash=tx)
        if name == "DisputeResolved":
            return replace(
                deal,
                state=DealState.RESOLVED,
                tx_hash=tx,
                settlement=Settlement(
                    to_seller=int(args["toSeller"]),
                    to_buyer=int(args["toBuyer"]),
                    to_arbiter=int(args["toArbiter"]),
                    fee=int(args["fee"]),
                ),
            )
        if name == "DisputeDefaulted":
            return replace(
                deal,
                state=DealState.RESOLVED,
                tx_hash=tx,
                settlement=Settlement(
                    to_seller=int(args["toSeller"]), to_buyer=int(args["toBuyer"]), fee=int(args["fee"])
                ),
            )
        if name == "DealRefunded":
            return replace(
                deal,
                state=DealState.REFUNDED,
                tx_hash=tx,
                settlement=Settlement(to_buyer=int(args["toBuyer"])),
            )
        if name == "DealRejected":
            return replace(
                deal,
                state=DealState.REJECTED,
                tx_hash=tx,
                settlement=Settlement(to_buyer=int(args["toBuyer"])),
            )
        if name == "CancelRequested":
            if to_checksum_address(args["party"]) == t.buyer:
                return replace(deal, buyer_cancelled=True, tx_hash=tx)
            return replace(deal, seller_cancelled=True, tx_hash=tx)
        if name == "DealCancelled":
            # the cancelling call records no flag of its own: the flags are the CancelRequested requests
            return replace(
                deal,
                state=DealState.CANCELLED,
                tx_hash=tx,
                settlement=Settlement(to_buyer=int(args["toBuyer"]), to_seller=int(args["toSeller"])),
            )
        return deal

    def _from_receipt(self, deal: Deal, receipt: Any) -> Deal:
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) != self.address:
                continue
            decoded = self._decode(log)
            if decoded is None:
                continue
            name, event = decoded
            if name in _DEAL_EVENTS and int(event["args"].get("dealId", -1)) == deal.id:
                deal = self._apply(deal, name, event["args"], tx)
        return deal

    # -- helpers ------------------------------------------------------------------------------------------

    def _current(self, ref: DealRef) -> Deal:
        """The deal as it is now: on-chain state, and terms rebuilt if the caller's copy is stale (both
        reads in one JSON-RPC batch)."""
        deal = self.deal(_deal_id(ref)) if not isinstance(ref, Deal) else ref
        return self._on_chain(deal, self.chain.transactor.read(self._status_reads(deal)), rebuild=True)

    def _status_reads(self, deal: Deal, *, now: bool = False) -> list[Read]:
        """The reads :meth:`_on_chain` needs (and, with ``now``, the pending block's timestamp last)."""
        reads = [
            Read.call(self.contract, "dealStatus", deal.id),
            Read.call(self.contract, "verifyTerms", deal.id, deal.terms.as_tuple()),
        ]
        if now:
            reads.append(Read.timestamp("pending"))
        return reads

    def _on_chain(self, deal: Deal, values: Sequence[Any], *, rebuild: bool) -> Deal:
        """``deal`` with the state read by :meth:`_status_reads`. Terms that are not the deal's on chain
        are rebuilt from events (``rebuild``) or raise :class:`_StaleTerms`."""
        (state, submitted, buyer_c, seller_c), fresh = values[0], values[1]
        if state == DealState.NONE:
            raise InvalidState(f"deal {deal.id} does not exist in escrow {self.address}")
        if not fresh:
            if not rebuild:
                raise _StaleTerms
            deal = self.deal(deal.id)
        return replace(
            deal,
            state=DealState(state),
            submitted_at=int(submitted),
            buyer_cancelled=bool(buyer_c),
            seller_cancelled=bool(seller_c),
        )

    def _transition(
        self,
        ref: DealRef,
        fn_name: str,
        *extra: Any,
        check: Callable[[Deal, int], None],
        now: bool = False,
    ) -> Deal:
        """Send ``fn_name(deal.id, terms, *extra)`` once ``check(deal, now)`` passes on the deal as it is on
        chain (``now``: the pending block's timestamp, read only when asked for). The reads and the
        simulation of the call travel in one JSON-RPC batch; whatever ``check`` raises is raised with
        nothing sent. Returns the deal updated from the transaction's own receipt."""
        deal = self.deal(_deal_id(ref)) if not isinstance(ref, Deal) else ref
        for _ in range(2):  # a second pass only when the caller's copy of the terms was stale
            seen: list[Deal] = []

            def preflight(values: list[Any], deal: Deal = deal, seen: list[Deal] = seen) -> None:
                current = self._on_chain(deal, values, rebuild=False)
                check(current, int(values[2]) if now else 0)
                seen.append(current)

            call = prepare(self.contract, fn_name, deal.id, deal.terms.as_tuple(), *extra)
            try:
                receipt = self._send(call, reads=self._status_reads(deal, now=now), check=preflight)
            except _StaleTerms:
                deal = self.deal(deal.id)
                continue
            return self._from_receipt(seen[0], receipt)
        raise InvalidState(f"the terms of deal {deal.id} do not match the chain's")

    def _require_role(self, deal: Deal, role: str, action: str) -> None:
        me = self._me()
        if getattr(deal.terms, role) != to_checksum_address(me):
            raise NotAuthorized(f"only the {role} of deal {deal.id} can {action} (you are {me})")

    @staticmethod
    def _require_state(deal: Deal, action: str, *states: DealState) -> None:
        if deal.state not in states:
            wanted = " or ".join(s.name for s in states)
            raise InvalidState(f"cannot {action} deal {deal.id}: it is {deal.state.name}, needs {wanted}")

    # -- opening -----------------------------------------------------------------------------------------

    def terms(
        self,
        seller: str,
        amount: int,
        *,
        deliver_by: Deadline,
        asset: str = ETH,
        promised_by: Deadline | None = None,
        review_window: int | timedelta = 3600,
        ruling_window: int | timedelta = 86_400,
        arbiter: str | None = None,
        arbiter_fee_bps: int = 0,
        bond: int = 0,
        terms_hash: bytes | str | None = None,
        penalty_bps_per_hour: int = 0,
        penalty_cap_bps: int = 0,
        default_seller_bps: int = BPS,
        buyer: str | None = None,
        allow_short_review: bool = False,
    ) -> DealTerms:
        """Build and validate deal terms (deadlines: unix seconds, datetime, or timedelta from now).

        ``default_seller_bps`` is the split applied if the arbiter never rules; the default 10,000 lets a
        delivery stand (see the contract's NatSpec for why).

        Safe by default: without an arbiter the buyer can :meth:`reject` a deliverable within the review
        window (refund plus the seller's bond); with one it can :meth:`dispute`. Either way the buyer needs
        time, so a review window under :data:`MIN_REVIEW_WINDOW` seconds raises :class:`InvalidInput` unless
        ``allow_short_review=True`` says the buyer accepts that risk."""
        amount = validate.amount(amount, "amount", positive=True)
        bond = validate.amount(bond, "bond")
        asset = validate.asset(self.w3, asset)
        seller = validate.address(seller, "seller", nonzero=True)
        buyer = validate.optional(validate.address, buyer, "buyer", nonzero=True)
        arbiter = validate.optional(validate.address, arbiter, "arbiter")
        penalty_bps_per_hour = validate.bps(penalty_bps_per_hour, "penalty_bps_per_hour")
        penalty_cap_bps = validate.bps(penalty_cap_bps, "penalty_cap_bps")
        arbiter_fee_bps = validate.bps(arbiter_fee_bps, "arbiter_fee_bps")
        default_seller_bps = validate.bps(default_seller_bps, "default_seller_bps")
        deliver_by, promised_by = _deadline(deliver_by, "deliver_by"), _deadline(promised_by, "promised_by")
        review_window = _duration(review_window, "review_window")
        ruling_window = _duration(ruling_window, "ruling_window")
        now = self.now()
        deliver = to_timestamp(deliver_by, now)
        promised = (
            to_timestamp(promised_by, now)
            if promised_by is not None
            else (deliver if penalty_bps_per_hour else 0)
        )
        if deliver <= now - 1:
            raise InvalidInput(
                f"deliver_by {deliver} is not in the future (chain time {now})", param="deliver_by"
            )
        if promised > deliver or (penalty_bps_per_hour and promised == 0):
            raise InvalidInput(f"promised_by {promised} must be set and not after deliver_by {deliver}")
        for name, bps in (
            ("penalty_cap_bps", penalty_cap_bps),
            ("arbiter_fee_bps", arbiter_fee_bps),
            ("default_seller_bps", default_seller_bps),
        ):
            if not 0 <= bps <= BPS:
                raise InvalidInput(f"{name}={bps} outside 0..10000")
        review = to_seconds(review_window)
        if review < MIN_REVIEW_WINDOW and not allow_short_review:
            raise InvalidInput(
                f"review_window={review}s is under {MIN_REVIEW_WINDOW}s: the buyer could not reject or dispute "
                "in time; pass allow_short_review=True to accept that"
            )
        buyer_addr = to_checksum_address(buyer or self._me())
        seller_addr = to_checksum_address(seller)
        arbiter_addr = to_checksum_address(arbiter or ZERO_ADDRESS)
        if seller_addr in (buyer_addr, ZERO_ADDRESS) or (
            arbiter_addr != ZERO_ADDRESS and arbiter_addr in (buyer_addr, seller_addr)
        ):
            raise InvalidInput("buyer, seller and arbiter must be distinct non-zero addresses")
        return DealTerms(
            buyer=buyer_addr,
            seller=seller_addr,
            amount=int(amount),
            deliver_by=deliver,
            asset=to_checksum_address(asset),
            arbiter=arbiter_addr,
            bond=int(bond),
            terms_hash=to_bytes32(terms_hash),
            promised_by=promised,
            review_window=review,
            ruling_window=to_seconds(ruling_window),
            penalty_bps_per_hour=int(penalty_bps_per_hour),
            penalty_cap_bps=int(penalty_cap_bps),
            arbiter_fee_bps=int(arbiter_fee_bps),
            default_seller_bps=int(default_seller_bps),
        )

    def create(
        self, seller: str | DealTerms, amount: int | None = None, *, approve: bool = False, **terms: Any
    ) -> Deal:
        """Open and fund a deal as buyer. Pass ready :class:`DealTerms`, or ``seller, amount`` plus the
        keyword arguments of :meth:`terms`. ``approve=True`` approves exactly the amount if needed."""
        if isinstance(seller, DealTerms):
            t = seller
        else:
            if amount is None:
                raise InvalidInput("amount is required", param="amount")
            t = self.terms(seller, amount, **terms)
        me = self._me()
        if t.buyer != to_checksum_address(me):
            raise NotAuthorized(f"the buyer of the terms is {t.buyer}; only the buyer can create the deal")

        def in_time(latest: int) -> None:
            if t.deliver_by <= latest:
                raise InvalidState(f"deliver_by {t.deliver_by} has passed (chain time {latest})")

        call = prepare(self.contract, "create", t.as_tuple())
        if t.is_eth:
            # the clock, the balance and the simulation in one JSON-RPC batch

            def preflight(values: list[Any]) -> None:
                in_time(values[0])
                require_eth(me, values[1], t.amount)

            reads = [Read.timestamp("latest"), Read.balance(me)]
            receipt = self._send(call, t.amount, gas_key="escrow.fund_eth", reads=reads, check=preflight)
        else:
            in_time(self.chain.now())
            self._ensure_funds(t.asset, t.amount, approve=approve)  # may approve first: before simulating
            receipt = self._send(call, gas_key="escrow.fund_erc20")
        return self._created_from_receipt(receipt)

    def _created_from_receipt(self, receipt: Any) -> Deal:
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        for log in receipt["logs"]:
            decoded = self._decode(log) if to_checksum_address(log["address"]) == self.address else None
            if decoded and decoded[0] == "DealCreated":
                return self._created(decoded[1], tx)
        raise InvalidState(f"transaction {tx} emitted no DealCreated")

    # -- transitions ---------------------------------------------------------------------------------------

    def post_bond(self, ref: DealRef, *, approve: bool = False) -> Deal:
        """Seller: post the bond the terms ask for."""
        deal = self._current(ref)
        self._require_role(deal, "seller", "post the bond of")
        self._require_state(deal, "post the bond of", DealState.AWAITING_BOND)
        self._before_deadline(deal, deal.terms.deliver_by, "post the bond")
        self._ensure_funds(deal.asset, deal.bond, approve=approve)
        receipt = self._send(
            self.contract.functions.postBond(deal.id, deal.terms.as_tuple()),
            value=deal.bond if deal.terms.is_eth else 0,
        )
        return self._from_receipt(deal, receipt)

    def submit(self, ref: DealRef, deliverable_hash: bytes | str) -> Deal:
        """Seller: submit the hash of the deliverable before ``deliver_by``."""
        deliverable = to_bytes32(deliverable_hash)

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "seller", "submit to")
            self._require_state(deal, "submit to", DealState.FUNDED)
            self._before_deadline(deal, deal.terms.deliver_by, "submit", now)

        return self._transition(ref, "submit", deliverable, check=check, now=True)

    def accept(self, ref: DealRef) -> Deal:
        """Buyer: accept the deliverable; the seller is paid (minus fee and any late penalty)."""

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "buyer", "accept")
            self._require_state(deal, "accept", DealState.SUBMITTED)

        return self._transition(ref, "accept", check=check)

    def release(self, ref: DealRef, amount: int) -> Deal:
        """Buyer: pay ``amount`` of the locked price to the seller now (milestones)."""
        amount = validate.amount(amount, "amount", positive=True)

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "buyer", "release funds of")
            self._require_state(
                deal,
                "release funds of",
                DealState.AWAITING_BOND,
                DealState.FUNDED,
                DealState.SUBMITTED,
                DealState.DISPUTED,
            )
            if not 0 < amount <= deal.amount:
                raise InvalidInput(f"release amount {amount} must be in 1..{deal.amount}")

        return self._transition(ref, "release", int(amount), check=check)

    def finalize(self, ref: DealRef) -> Deal:
        """Anyone: settle as accepted after the review window."""
        self._me()

        def check(deal: Deal, now: int) -> None:
            self._require_state(deal, "finalize", DealState.SUBMITTED)
            self._after_deadline(deal, deal.review_ends_at or 0, "finalize (review window still open)", now)

        return self._transition(ref, "finalize", check=check, now=True)

    def dispute(self, ref: DealRef) -> Deal:
        """Buyer: dispute within the review window (deals with an arbiter)."""

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "buyer", "dispute")
            self._require_state(deal, "dispute", DealState.SUBMITTED)
            if deal.arbiter == ZERO_ADDRESS:
                raise InvalidState(
                    f"deal {deal.id} has no arbiter, so it cannot be disputed: reject it instead"
                )
            self._before_deadline(deal, deal.review_ends_at or 0, "dispute", now)

        return self._transition(ref, "dispute", check=check, now=True)

    def reject(self, ref: DealRef) -> Deal:
        """Buyer: reject the deliverable of a deal without an arbiter within the review window; the amount
        comes back with the seller's posted bond as compensation (deals with an arbiter: :meth:`dispute`)."""

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "buyer", "reject")
            self._require_state(deal, "reject", DealState.SUBMITTED)
            if deal.arbiter != ZERO_ADDRESS:
                raise InvalidState(
                    f"deal {deal.id} has an arbiter ({deal.arbiter}): dispute it instead of rejecting"
                )
            self._before_deadline(deal, deal.review_ends_at or 0, "reject", now)

        return self._transition(ref, "reject", check=check, now=True)

    def resolve(self, ref: DealRef, seller_bps: int, bond_seller_bps: int | None = None) -> Deal:
        """Arbiter: rule. ``seller_bps`` of the amount after the arbiter fee, and ``bond_seller_bps`` of the
        bond (default: same as ``seller_bps``), go to the seller; the rest to the buyer."""
        seller_bps = validate.bps(seller_bps, "seller_bps")
        bond_bps = seller_bps if bond_seller_bps is None else validate.bps(bond_seller_bps, "bond_seller_bps")

        def check(deal: Deal, now: int) -> None:
            self._require_role(deal, "arbiter", "resolve")
            self._require_state(deal, "resolve", DealState.DISPUTED)
            self._before_deadline(deal, deal.ruling_ends_at or 0, "resolve", now)

        return self._transition(ref, "resolve", int(seller_bps), int(bond_bps), check=check, now=True)

    def settle_default(self, ref: DealRef) -> Deal:
        """Anyone: apply the terms' default split after the arbiter missed its ruling deadline."""
        self._me()

        def check(deal: Deal, now: int) -> None:
            self._require_state(deal, "settle by default", DealState.DISPUTED)
            self._after_deadline(
                deal, deal.ruling_ends_at or 0, "settle by default (arbiter may still rule)", now
            )

        return self._transition(ref, "settleDefault", check=check, now=True)

    def refund(self, ref: DealRef) -> Deal:
        """Anyone: refund the buyer (plus the seller's bond) after a missed delivery deadline."""
        self._me()

        def check(deal: Deal, now: int) -> None:
            self._require_state(deal, "refund", DealState.AWAITING_BOND, DealState.FUNDED)
            self._after_deadline(deal, deal.terms.deliver_by, "refund (delivery deadline not passed)", now)

        return self._transition(ref, "refund", check=check, now=True)

    def cancel(self, ref: DealRef) -> Deal:
        """Buyer or seller: cancel before delivery (alone while awaiting the bond, both once funded)."""
        me = to_checksum_address(self._me())

        def check(deal: Deal, now: int) -> None:
            if me not in (deal.buyer, deal.seller):
                raise NotAuthorized(f"only the buyer or seller of deal {deal.id} can cancel it")
            self._require_state(deal, "cancel", DealState.AWAITING_BOND, DealState.FUNDED)
            if (me == deal.buyer and deal.buyer_cancelled) or (me == deal.seller and deal.seller_cancelled):
                raise InvalidState(f"you already asked to cancel deal {deal.id}; waiting for the other party")

        return self._transition(ref, "cancel", check=check)

    # -- batches -----------------------------------------------------------------------------------------

    def accept_many(self, refs: Sequence[DealRef]) -> BatchResult:
        """Buyer: accept many deals in one transaction; deals that would revert are skipped and reported."""
        return self._batch("acceptMany", refs)

    def finalize_many(self, refs: Sequence[DealRef]) -> BatchResult:
        """Anyone: finalize many deals in one transaction; items that would revert are skipped."""
        return self._batch("finalizeMany", refs)

    def _batch(self, method: str, refs: Sequence[DealRef]) -> BatchResult:
        self._me()
        deals = [r if isinstance(r, Deal) else self.deal(_deal_id(r)) for r in refs]
        if not deals:
            raise InvalidInput("empty batch")
        fn = getattr(self.contract.functions, method)(
            [d.id for d in deals], [d.terms.as_tuple() for d in deals]
        )
        receipt = self._send(fn, gas_key="batch.accept_per_deal", gas_count=len(deals))
        by_id = {d.id: d for d in deals}
        settled: dict[int, Deal] = {}
        skipped: list[tuple[int, ContractRevert]] = []
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        for log in receipt["logs"]:
            decoded = self._decode(log) if to_checksum_address(log["address"]) == self.address else None
            if decoded is None:
                continue
            name, event = decoded
            deal_id = int(event["args"].get("dealId", -1))
            if name == "DealSkipped":
                skipped.append((deal_id, decode_revert(bytes(event["args"]["reason"]))))
            elif name in ("DealAccepted", "DealFinalized") and deal_id in by_id:
                settled[deal_id] = self._apply(by_id[deal_id], name, event["args"], tx)
        return BatchResult(list(settled.values()), skipped, tx, int(receipt["gasUsed"]))

    # -- credits and fees ----------------------------------------------------------------------------------

    def withdraw(self, asset: str = ETH, *, to: str | None = None, amount: int | None = None) -> int:
        """Pull this account's credited payouts in ``asset`` (to ``to``, default the account); returns what
        left the escrow (its ``Withdrawn`` event). ``amount`` withdraws only that much (``withdrawPart``):
        the credit pays whatever the transfer takes from the escrow, so with a token that taxes the sender
        on top of a transfer, name an amount whose tax fits in the credit; the rest stays credited."""
        me = self._me()
        asset = validate.asset(self.w3, asset)
        to = validate.optional(validate.address, to, "to", nonzero=True)
        part = validate.optional(validate.amount, amount, "amount", positive=True)
        credit = self.credit(me, asset)
        if credit == 0:
            raise InvalidState(f"{me} has no credit in {asset}")
        if part is not None:
            fn = self.contract.functions.withdrawPart(asset, to or to_checksum_address(me), part)
        elif to is None:
            fn = self.contract.functions.withdraw(asset)
        else:
            fn = self.contract.functions.withdrawTo(asset, to)
        receipt = self._send(fn)
        for log in receipt["logs"]:
            decoded = self._decode(log) if to_checksum_address(log["address"]) == self.address else None
            if decoded and decoded[0] == "Withdrawn":
                return int(decoded[1]["args"]["amount"])
        raise InvalidState(f"withdrawal of {asset} emitted no Withdrawn event")

    def collect_fees_to(self, to: str, asset: str = ETH) -> int:
        """Fee recipient: send the protocol fees owed in ``asset`` to ``to`` (a recipient that the token
        blocklists, or that cannot take ETH, still gets its fees out)."""
        if to_checksum_address(self._me()) != to_checksum_address(self.fee_recipient):
            raise NotAuthorized(f"only the fee recipient {self.fee_recipient} can choose where fees go")
        owed = self.totals(asset).fees
        if owed == 0:
            raise InvalidState(f"no fees owed in {asset}")
        self._send(self.contract.functions.collectFeesTo(to_checksum_address(asset), to_checksum_address(to)))
        return owed

    def collect_fees(self, asset: str = ETH) -> int:
        """Send the protocol fees owed in ``asset`` to the fee recipient (anyone may call)."""
        self._me()
        asset = validate.address(asset, "asset")
        owed = self.totals(asset).fees
        if owed == 0:
            raise InvalidState(f"no fees owed in {asset}")
        self._send(self.contract.functions.collectFees(to_checksum_address(asset)))
        return owed

    # -- deadlines -----------------------------------------------------------------------------------------

    def _before_deadline(self, deal: Deal, deadline: int, action: str, now: int | None = None) -> None:
        now = self.now() if now is None else now
        if now > deadline:
            raise InvalidState(f"too late to {action} deal {deal.id}: deadline {deadline}, chain time {now}")

    def _after_deadline(self, deal: Deal, deadline: int, action: str, now: int | None = None) -> None:
        now = self.now() if now is None else now
        if now <= deadline:
            raise InvalidState(
                f"too early to {action} for deal {deal.id}: opens after {deadline}, chain time {now}"
            )


def _deal_id(ref: Any) -> int:
    """A deal id from an int (or a :class:`Deal`); anything else is refused by name."""
    if isinstance(ref, Deal):
        return ref.id
    return validate.integer(ref, "deal", maximum=2**64 - 1, what="a Deal or a deal id (int)")


def _deadline(value: Any, param: str) -> Any:
    """A deadline as given (unix seconds, datetime, timedelta, or None); other types refused by name."""
    if value is None or isinstance(value, (datetime, timedelta)):
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)  # time.time() + 3600 is a natural way to write a deadline (not money)
    return validate.integer(value, param, maximum=2**40, what="unix seconds, datetime or timedelta")


def _duration(value: Any, param: str) -> Any:
    """A duration in whole seconds or a timedelta."""
    if isinstance(value, timedelta):
        if value.total_seconds() < 0:
            raise InvalidInput(f"{param} must not be negative", param=param)
        return value
    return validate.integer(value, param, maximum=2**40, what="seconds (int) or timedelta")
