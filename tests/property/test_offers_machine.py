"""OfferBook under random play (docs/design.md §6.1, §6.2, §6.3, §6.7, §6.9).

Makers: two EOAs and an ERC-1271 wallet that approves or refuses what its owner signs (toggled at
random). Takers: two EOAs and a stranger. Offers to sell and to buy, in ETH (maker legs paid from the
maker's deposit), a plain ERC-20 and a 1% fee-on-transfer token (legs pulled straight into the escrow),
with partial fills, minimum fills, designated takers, expiries, posted (on-chain) offers and signed
ones whose signature is valid or forged/replayed: signed by someone else, for another contract, for
another chain id, a high-s twin, all zeros. Rules fill (alone and in fillMany with a shared ETH budget),
post, cancel, bump the counter, deposit and withdraw, and jump time. Failures are predicted from the
model (typed error and arguments), simulated, then mined to show they change nothing.

Fills form one chain per offer digest (signed fill v2): the head fill starts at unit 0, every later one
(``fillAfter``) at the end of the previous, proven by that fill's deal; takers also race with a stale start
(a head fill, or a link that is no longer the end) and must get ``EscrowDealExists``.

Cancels are per cancel slot (issue 12): ``cancel`` marks the offer's slot (``salt % 128``) of its maker's
current counter, killing every offer of that maker, counter and slot (salts are drawn from a few slots
often, so distinct offers share slots); ``incrementCounter`` clears the slots with the bump; a cancel of an
offer of another counter reverts ``OfferStaleCounter``. ``offerStatus(offer).cancelled`` is "its slot of
its counter is cancelled, or its counter is past", so it never turns back to False.

After every step: filled <= quantity and each offer's status and ``remainingFrom`` (at the chain's end)
equal the model (a cancelled, expired or stale-counter offer has nothing remaining and cannot be filled),
counters and deposits equal the model, the OfferBook's ETH balance equals the sum of deposits, the escrow
stays solvent per asset, fills never touch the escrow's sequential counter, each opened deal sits under
the id keyed by (digest, start) with the terms the model derives from the offer, the units and the fill
time, and every actor's balance (ETH including gas) equals the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from helpers import Driver, as_uint, encode_call
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from machine import FOT_BPS, ChainMachine, run_machine

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import Offer, OffersClient, Side, fill_deal_id
from agentmarket.deploy import Suite
from agentmarket.eip712 import Domain
from agentmarket.errors import decode_revert
from agentmarket.types import BPS, CANCEL_SLOTS, ETH, ZERO_ADDRESS, DealTerms
from agentmarket.vouchers import sign_digest

pytestmark = pytest.mark.anvil

# `make fuzz`: 250 examples x 50 steps, at least 10,000 checked steps for this contract family
LONG = (250, 50)

HOUR = 3600
MINT = 10**27
MAX = 2**256 - 1
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIG_KINDS = ["valid"] * 7 + ["stranger", "other_contract", "other_chain", "high_s", "zero"]


@dataclass
class Status:
    """Per offer digest: the book's posted flag, and the fill chain (in the escrow's keyed deals).
    Cancellation is not per digest: see ``OffersMachine.cancelled`` (per maker, counter and slot)."""

    filled: int = 0  # the chain's end: where the next fill starts
    posted: bool = False
    links: list[tuple[int, int, DealTerms]] = field(default_factory=list)  # (start, quantity, terms) per fill


@dataclass
class MOffer:
    """One signed copy of an offer. The status belongs to the digest, not the copy: a maker who signs the
    same fields and salt twice has made one offer (two signatures of it), so the copies share one Status."""

    offer: Offer
    hash: bytes
    sig: bytes
    sig_ok: bool
    status: Status

    @property
    def filled(self) -> int:
        return self.status.filled

    @filled.setter
    def filled(self, value: int) -> None:
        self.status.filled = value

    @property
    def posted(self) -> bool:
        return self.status.posted

    @posted.setter
    def posted(self, value: bool) -> None:
        self.status.posted = value


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.fast = fast = Driver(chain)
        a = chain.accounts
        self.owner, self.m1, self.m2, self.t1, self.t2, self.arb, self.stranger, self.op = (
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[5],
            a[6],
            a[8],
        )
        # The Sybil ring: m2 and this second address are one owner (self-fills, replays of its keys).
        self.sybil = a[7]
        self.ring = (self.m2.address, self.sybil.address)
        self.book = suite["OfferBook"]
        self.escrow = suite["AgentEscrow"]
        self.client = OffersClient.from_suite(suite, self.stranger)
        self.fee_bps = int(self.escrow.functions.feeBps().call())
        self.token = fast.deploy(self.owner, "MockERC20", "Mock USD", "mUSD", 18)
        self.fot = fast.deploy(self.owner, "FeeOnTransferToken", FOT_BPS)
        self.wallet = fast.deploy(self.owner, "MockERC1271Wallet", self.op.address, True)
        self.assets = [ETH, self.token.address, self.fot.address]
        self.tokens = {self.token.address: self.token, self.fot.address: self.fot}
        self.eoas: dict[str, LocalAccount] = {
            x.address: x
            for x in (
                self.owner,
                self.m1,
                self.m2,
                self.t1,
                self.t2,
                self.arb,
                self.stranger,
                self.op,
                self.sybil,
            )
        }
        self.keys = {x.address: x.key for x in self.eoas.values()}
        self.keys[self.wallet.address] = self.op.key
        book = self.book.address
        for t in self.tokens.values():
            for h in (self.m1, self.m2, self.t1, self.t2, self.stranger, self.sybil):
                self.must(self.owner, t.address, t.encode_abi("mint", args=[h.address, MINT]))
                self.must(h, t.address, t.encode_abi("approve", args=[book, MAX]))
            self.must(self.owner, t.address, t.encode_abi("mint", args=[self.wallet.address, MINT]))
            self.must(
                self.op,
                self.wallet.address,
                self.wallet.encode_abi(
                    "execute", args=[t.address, t.encode_abi("approve", args=[book, MAX])]
                ),
            )
        self.domain = self.client.domain
        self.foreign_contract = Domain(
            self.domain.name, self.domain.version, self.domain.chain_id, self.escrow.address
        )
        self.foreign_chain = Domain(self.domain.name, self.domain.version, self.domain.chain_id + 1, book)
        self.people = [
            x.address
            for x in (self.owner, self.m1, self.m2, self.t1, self.t2, self.stranger, self.op, self.sybil)
        ]
        self.people.append(self.wallet.address)
        self.holders = [*self.people, book, self.escrow.address]
        self.balance_keys = [(t, h) for t in self.tokens for h in self.holders]
        self.balance_calls = [
            (t, encode_call("balanceOf(address)", ["address"], [h])) for t, h in self.balance_keys
        ]
        self.makers = [self.m1.address, self.m2.address, self.wallet.address]
        self.static_calls = [
            (self.escrow.address, encode_call("totals(address)", ["address"], [x])) for x in self.assets
        ]
        self.static_calls += [
            (book, encode_call("counterOf(address)", ["address"], [m])) for m in self.makers
        ]
        self.static_calls += [
            (book, encode_call("cancelledSlots(address)", ["address"], [m])) for m in self.makers
        ]
        self.static_calls += [
            (book, encode_call("depositOf(address)", ["address"], [h])) for h in self.people
        ]
        self.static_calls += [(self.escrow.address, encode_call("nextDealId()", [], []))]
        self.escrow_client = EscrowClient.from_suite(suite)

    def must(self, account: LocalAccount, to: str, data: Any, value: int = 0) -> None:
        assert self.fast.send(account, to, data, value).ok


class OffersMachine(ChainMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        e = self.e = self.env
        self.offers: list[MOffer] = []
        self.status: dict[bytes, Status] = {}  # per digest, shared by every signed copy of one offer
        self.counters = {m: 0 for m in e.makers}
        self.cancel_bits = dict.fromkeys(e.makers, 0)  # per maker: cancelled slots of its current counter
        self.deposits = {h: 0 for h in e.people}
        self.approving = True
        raw, self.balances = self._read([(e.escrow.address, encode_call("nextDealId()", [], []))])
        self.next_deal = as_uint(raw[0])  # fills never move it (their deals are keyed)
        self.deals: dict[int, DealTerms] = {}  # keyed deal id -> stored terms (model-derived, or read back)
        self.ring_locked = dict.fromkeys(e.assets, 0)  # in deals between the ring's own addresses
        self.ring_start = self.ring_value()
        self.gas_base: dict[str, int] = {}

    # -- plumbing ---------------------------------------------------------------------------------------

    def act(
        self,
        actor: str,
        data: Any,
        value: int = 0,
        expect: tuple[str, dict[str, Any]] | None = None,
        to: str | None = None,
    ) -> Any:
        e = self.e
        to = to or e.book.address
        if actor in e.eoas:
            signer, to_, payload = e.eoas[actor], to, data
        else:
            signer, to_, payload = e.op, actor, e.wallet.encode_abi("execute", args=[to, data])
        self.fast.tick()
        if expect is not None:
            err = self.fast.simulate(signer.address, to_, payload, value)
            self.assert_error(err, expect[0], expect[1])
            assert not self.fast.send(signer, to_, payload, value, tick=False).ok
            self.gas(signer.address)
            return None
        receipt = self.fast.send(signer, to_, payload, value, tick=False)
        if not receipt.ok:
            raise AssertionError(
                f"unexpected revert: {self.fast.simulate(signer.address, to_, payload, value)}"
            )
        self.gas(signer.address)
        self.balances[(signer.address, ETH)] -= value
        return receipt

    def now(self) -> int:
        return self.fast.now + 1

    def name(self, who: str) -> str:
        e = self.e
        return {
            "m1": e.m1.address,
            "m2": e.m2.address,
            "wallet": e.wallet.address,
            "t1": e.t1.address,
            "t2": e.t2.address,
            "stranger": e.stranger.address,
            "sybil": e.sybil.address,
        }[who]

    # -- offers --------------------------------------------------------------------------------------------

    def sign(self, offer: Offer, kind: str) -> bytes:
        e = self.e
        domain, key = e.domain, e.keys[offer.maker]
        if kind == "stranger":
            key = e.stranger.key
        elif kind == "other_contract":
            domain = e.foreign_contract
        elif kind == "other_chain":
            domain = e.foreign_chain
        elif kind == "zero":
            return b"\x00" * 65
        sig = sign_digest(bytes(key), offer.digest(domain))
        if kind == "high_s":
            sig = (
                sig[:32] + (N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes([55 - sig[64]])
            )
        return sig

    def sig_valid(self, m: MOffer) -> bool:
        """What the OfferBook's check says: ECDSA for EOAs, ERC-1271 (only while approving) for the wallet."""
        return m.sig_ok and (m.offer.maker != self.e.wallet.address or self.approving)

    @rule(
        maker=st.sampled_from(["m1", "m2", "wallet"]),
        side=st.sampled_from([Side.SELL, Side.BUY]),
        asset=st.integers(0, 2),
        price=st.one_of(st.integers(1, 1000), st.integers(10**12, 10**16)),
        quantity=st.integers(1, 20),
        min_fill=st.integers(1, 5),
        bond=st.sampled_from([0, 0, 7, 10**12]),
        ttl=st.integers(1, 3 * HOUR),
        designated=st.sampled_from([None] * 4 + ["t1"]),
        stale_counter=st.sampled_from([False] * 9 + [True]),
        kind=st.sampled_from(SIG_KINDS),
        arbiter=st.booleans(),
        delivery=st.sampled_from([0, 60, HOUR]),
        # often one of 4 slots (distinct offers share a cancel slot), else any of the 128
        salt=st.one_of(
            st.integers(0, 2**32),
            st.tuples(st.integers(0, 2**20), st.integers(0, 3)).map(lambda t: t[0] * 128 + t[1]),
        ),
    )
    def make_offer(
        self,
        maker: str,
        side: Side,
        asset: int,
        price: int,
        quantity: int,
        min_fill: int,
        bond: int,
        ttl: int,
        designated: str | None,
        stale_counter: bool,
        kind: str,
        arbiter: bool,
        delivery: int,
        salt: int,
    ) -> None:
        """A maker signs an offer off chain (no transaction)."""
        e = self.e
        maker_addr = self.name(maker)
        counter = self.counters[maker_addr] + (1 if stale_counter else 0)
        offer = Offer(
            maker=maker_addr,
            side=side,
            resource_id=b"\x01" * 32,
            unit_price=price,
            quantity=quantity,
            expiry=self.now() + ttl,
            asset=e.assets[asset],
            min_fill=min(min_fill, quantity),
            bond_per_unit=bond,
            delivery_seconds=delivery,
            grace_seconds=HOUR,
            arbiter=e.arb.address if arbiter else ZERO_ADDRESS,
            arbiter_fee_bps=100,
            taker=self.name(designated) if designated else ZERO_ADDRESS,
            salt=salt,
            counter=counter,
        )
        h = offer.digest(e.domain)
        status = self.status.setdefault(h, Status())
        self.offers.append(MOffer(offer, h, self.sign(offer, kind), kind == "valid", status))

    def cancelled(self, m: MOffer) -> bool:
        """The model of ``offerStatus(offer).cancelled``: the offer's slot of its counter is cancelled, or
        the maker's counter moved past it (cancel kills a whole slot; cancel_all clears the slots)."""
        o = m.offer
        current = self.counters[o.maker]
        return o.counter < current or (
            o.counter == current and bool(self.cancel_bits[o.maker] >> (o.salt % CANCEL_SLOTS) & 1)
        )

    def pick(self, i: int) -> MOffer:
        return self.offers[i % len(self.offers)]

    def fill_error(
        self, m: MOffer, taker: str, q: int, value: int, start: int | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """The revert a fill of ``q`` units from ``start`` (default: the chain's end) must hit, in the
        contract's order of checks; None when it goes through."""
        start = m.filled if start is None else start
        o, h = m.offer, m.hash
        if self.now() > o.expiry:
            return ("OfferExpired", {"offerHash": h, "expiry": o.expiry, "now": self.now()})
        if o.taker != ZERO_ADDRESS and o.taker != taker:
            return ("OfferWrongTaker", {"offerHash": h, "taker": o.taker, "caller": taker})
        if o.maker == taker:
            return ("OfferSelfFill", {"offerHash": h, "maker": o.maker})
        if o.counter != self.counters[o.maker]:
            return (
                "OfferStaleCounter",
                {"offerHash": h, "counter": o.counter, "current": self.counters[o.maker]},
            )
        if self.cancelled(m):
            return ("OfferIsCancelled", {"offerHash": h})
        remaining = o.quantity - start
        if q == 0 or q > remaining:
            return ("OfferOverfill", {"offerHash": h, "quantity": q, "remaining": remaining})
        if q < o.min_fill and q != remaining:
            return ("OfferBelowMinFill", {"offerHash": h, "quantity": q, "minFill": o.min_fill})
        if start != m.filled:  # a stale start (another fill took it): the escrow refuses the key
            stale_error = ("EscrowDealExists", {"dealId": fill_deal_id(self.e.book.address, h, start)})
        else:
            stale_error = None
        if not m.posted and not self.sig_valid(m):
            return ("OfferInvalidSignature", {"offerHash": h, "maker": o.maker})
        price, bond = o.unit_price * q, o.bond_per_unit * q
        if o.asset == ETH:
            taker_leg = price if o.side == Side.SELL else bond
            if value != taker_leg:
                return ("OfferWrongValue", {"expected": taker_leg, "sent": value})
            maker_leg = bond if o.side == Side.SELL else price
            if maker_leg > self.deposits[o.maker]:
                return (
                    "OfferInsufficientDeposit",
                    {"account": o.maker, "balance": self.deposits[o.maker], "needed": maker_leg},
                )
        elif value != 0:
            return ("OfferWrongValue", {"expected": 0, "sent": value})
        return stale_error

    def apply_fill(self, m: MOffer, taker: str, q: int, receipt: Any) -> None:
        """Move the legs and record the deal the escrow must have opened (at the current time) under the
        id keyed by (digest, start)."""
        e, o = self.e, m.offer
        price, bond = o.unit_price * q, o.bond_per_unit * q
        buyer, seller = (taker, o.maker) if o.side == Side.SELL else (o.maker, taker)
        start = m.filled
        m.filled += q
        esc = e.escrow.address
        exact = True
        internal = buyer in e.ring and seller in e.ring  # a Sybil self-fill: both legs are the ring's
        if o.asset == ETH:
            maker_leg = bond if o.side == Side.SELL else price
            self.deposits[o.maker] -= maker_leg
            self.balances[(e.book.address, ETH)] -= maker_leg
            self.balances[(esc, ETH)] += price + bond
            if internal:
                self.ring_locked[ETH] += price + bond
        else:
            for who, leg in ((buyer, price), (seller, bond)):
                if leg:
                    self.balances[(who, o.asset)] -= leg
                    arrived = leg - leg * FOT_BPS // BPS if o.asset == e.fot.address else leg
                    self.balances[(esc, o.asset)] += arrived
                    exact = exact and arrived == leg
                    if internal:
                        self.ring_locked[o.asset] += arrived
        promised = self.fast.now + o.delivery_seconds
        terms = DealTerms(
            buyer=buyer,
            seller=seller,
            amount=price,
            deliver_by=promised + o.grace_seconds,
            asset=o.asset,
            arbiter=o.arbiter,
            bond=bond,
            terms_hash=o.fill_terms_hash(start, q),
            promised_by=promised,
            review_window=o.review_window,
            ruling_window=o.ruling_window,
            penalty_bps_per_hour=o.penalty_bps_per_hour,
            penalty_cap_bps=o.penalty_cap_bps,
            arbiter_fee_bps=o.arbiter_fee_bps,
            default_seller_bps=o.default_seller_bps,
        )
        deal_id = fill_deal_id(e.book.address, m.hash, start)
        opened = self.opened(receipt)
        assert deal_id in opened, f"no deal under the keyed id of {m.hash.hex()} from {start}"
        if exact:
            assert opened[deal_id] == terms, f"deal {deal_id}: event {opened[deal_id]} != model {terms}"
        else:
            # fee-on-transfer: the escrow split what arrived pro rata; the rest of the terms are the model's
            assert replace(opened[deal_id], amount=price, bond=bond) == terms
            terms = opened[deal_id]
        self.deals[deal_id] = terms
        m.status.links.append((start, q, terms))

    def opened(self, receipt: Any) -> dict[int, DealTerms]:
        """Deal id -> terms of every ``DealCreated`` in ``receipt``."""
        e = self.e
        out: dict[int, DealTerms] = {}
        for lg in receipt["logs"]:
            if lg["address"] != e.escrow.address:
                continue
            decoded = e.escrow_client._decode(lg)
            if decoded is not None and decoded[0] == "DealCreated":
                deal = e.escrow_client._created(decoded[1], "")
                out[deal.id] = deal.terms
        return out

    def fill_call(self, m: MOffer, q: int, start: int) -> Any:
        """``fill`` (head) or ``fillAfter`` from ``start``, linking the model's fill that ended there."""
        book = self.e.book
        if start == 0:
            return book.encode_abi("fill", args=[m.offer.as_tuple(), m.sig, q])
        return book.encode_abi("fillAfter", args=[m.offer.as_tuple(), m.sig, q, self.link(m, start)])

    def link(self, m: MOffer, start: int) -> tuple[Any, ...]:
        """The FillLink of the model's fill of ``m`` that ends at ``start`` (0: none, a head-fill item)."""
        if start == 0:
            return (0, 0, (ZERO_ADDRESS,) * 4 + (0, 0, b"\x00" * 32) + (0,) * 8)
        for s0, q0, terms in m.status.links:
            if s0 + q0 == start:
                return (s0, q0, terms.as_tuple())
        raise AssertionError(f"no fill of {m.hash.hex()} ends at {start}")

    QTY = st.sampled_from(["one", "min", "all", "over", "zero", "below_min"])

    def quantity(self, m: MOffer, choice: str) -> int:
        rem = m.offer.quantity - m.filled
        return {
            "one": 1,
            "min": m.offer.min_fill,
            "all": rem,
            "over": rem + 1,
            "zero": 0,
            "below_min": max(m.offer.min_fill - 1, 1),
        }[choice]

    def taker_value(self, m: MOffer, q: int) -> int:
        o = m.offer
        if o.asset != ETH:
            return 0
        return o.unit_price * q if o.side == Side.SELL else o.bond_per_unit * q

    @precondition(lambda self: self.offers)
    @rule(
        i=st.integers(0, 10**6),
        taker=st.sampled_from(["t1", "t2", "stranger", "m1", "sybil"]),
        qty=QTY,
        wrong_value=st.sampled_from([False] * 9 + [True]),
        stale=st.sampled_from([False] * 5 + [True]),
    )
    def fill(self, i: int, taker: str, qty: str, wrong_value: bool, stale: bool) -> None:
        """A fill from the chain's end, or (``stale``) from a start an earlier fill already took: the
        taker that lost a race (head fill, or a link that is no longer the end)."""
        m = self.pick(i)
        start = m.filled
        if stale and m.status.links:
            start = m.status.links[i % len(m.status.links)][0]
        self.fill_as(m, self.name(taker), qty, wrong_value, start)

    def fill_as(
        self, m: MOffer, t: str, qty: str, wrong_value: bool = False, start: int | None = None
    ) -> None:
        """``t`` fills ``m`` from ``start`` (default: the chain's end): a predicted revert, or the fill
        applied to the model."""
        start = m.filled if start is None else start
        q = self.quantity(m, qty)
        value = self.taker_value(m, q) + (1 if wrong_value else 0)
        data = self.fill_call(m, q, start)
        expect = self.fill_error(m, t, q, value, start)
        if expect:
            self.act(t, data, value, expect)
            return
        receipt = self.act(t, data, value)
        self.apply_fill(m, t, q, receipt)

    @precondition(lambda self: self.offers)
    @rule(
        items=st.lists(st.tuples(st.integers(0, 10**6), QTY), min_size=1, max_size=4),
        taker=st.sampled_from(["t1", "t2"]),
        extra=st.sampled_from([0, 0, 5]),
        short=st.booleans(),
    )
    def fill_many(self, items: list[tuple[int, str]], taker: str, extra: int, short: bool) -> None:
        """fillMany: items that fail are skipped; unspent ETH goes back to the taker."""
        t = self.name(taker)
        chosen = [(self.pick(i), self.quantity(self.pick(i), c)) for i, c in items]
        legs = [self.taker_value(m, q) for m, q in chosen]
        budget = sum(legs) + extra - (legs[0] if short and legs[0] else 0)
        # every item links the chain's end as it is before the batch (what a client builds): a second item
        # of one offer in the same batch starts where the first did, and loses to it (EscrowDealExists)
        starts = [m.filled for m, _ in chosen]
        data = self.e.book.encode_abi(
            "fillMany",
            args=[
                [
                    (m.offer.as_tuple(), m.sig, q, self.link(m, s0))
                    for (m, q), s0 in zip(chosen, starts, strict=True)
                ]
            ],
        )
        # predict item by item (state changes as items fill)
        saved = [(m, m.filled, dict(self.deposits)) for m, _ in chosen]
        expected: list[tuple[int, str | None]] = []
        remaining_budget = budget
        plan = []
        for k, (m, q) in enumerate(chosen):
            if legs[k] > remaining_budget:
                expected.append((k, "OfferWrongValue"))
                continue
            why = self.fill_error(m, t, q, legs[k], starts[k])
            if why is None:
                # the escrow may still refuse the deal; model its checks on the offer terms used here
                expected.append((k, None))
                remaining_budget -= legs[k]
                plan.append((m, q))
                m.filled += q
                o = m.offer
                if o.asset == ETH:
                    self.deposits[o.maker] -= o.bond_per_unit * q if o.side == Side.SELL else o.unit_price * q
            else:
                expected.append((k, why[0]))
        for m, filled, _deposits in saved:
            m.filled = filled
        self.deposits = saved[0][2] if saved else self.deposits
        receipt = self.act(t, data, budget)
        seen: list[tuple[int, str | None]] = []
        for lg in receipt["logs"]:
            decoded = self.e.client._decode(lg) if lg["address"] == self.e.book.address else None
            if decoded is None:
                continue
            name, ev = decoded
            if name == "FillSkipped":
                seen.append((int(ev["args"]["index"]), decode_revert(bytes(ev["args"]["reason"])).error_name))
            elif name == "OfferFilled":
                idx = next(
                    k
                    for k, (m, _) in enumerate(chosen)
                    if m.hash == bytes(ev["args"]["offerHash"])
                    and (k, None) in expected
                    and (k, None) not in seen
                )
                seen.append((idx, None))
        assert sorted(seen, key=lambda x: x[0]) == expected, f"fillMany {seen} != model {expected}"
        for m, q in plan:
            self.apply_fill(m, t, q, receipt)
        refund = budget - sum(self.taker_value(m, q) for m, q in plan)
        self.balances[(t, ETH)] += refund

    @precondition(lambda self: self.offers)
    @rule(i=st.integers(0, 10**6), by_maker=st.sampled_from([True] * 4 + [False]))
    def post(self, i: int, by_maker: bool) -> None:
        m = self.pick(i)
        o = m.offer
        sender = o.maker if by_maker else self.e.stranger.address
        data = self.e.book.encode_abi("post", args=[o.as_tuple()])
        expect = None
        if sender != o.maker:
            expect = ("OfferNotMaker", {"offerHash": m.hash, "maker": o.maker, "caller": sender})
        elif m.posted:
            expect = ("OfferAlreadyPosted", {"offerHash": m.hash})
        elif self.now() > o.expiry:
            expect = ("OfferExpired", {"offerHash": m.hash, "expiry": o.expiry, "now": self.now()})
        elif o.counter != self.counters[o.maker]:
            expect = (
                "OfferStaleCounter",
                {"offerHash": m.hash, "counter": o.counter, "current": self.counters[o.maker]},
            )
        elif self.cancelled(m):
            expect = ("OfferIsCancelled", {"offerHash": m.hash})
        if expect:
            self.act(sender, data, 0, expect)
            return
        self.act(sender, data)
        m.posted = True

    @precondition(lambda self: self.offers)
    @rule(i=st.integers(0, 10**6), by_maker=st.sampled_from([True] * 4 + [False]))
    def cancel(self, i: int, by_maker: bool) -> None:
        m = self.pick(i)
        sender = m.offer.maker if by_maker else self.e.stranger.address
        data = self.e.book.encode_abi("cancel", args=[m.offer.as_tuple()])
        if sender != m.offer.maker:
            self.act(
                sender,
                data,
                0,
                ("OfferNotMaker", {"offerHash": m.hash, "maker": m.offer.maker, "caller": sender}),
            )
            return
        current = self.counters[m.offer.maker]
        if m.offer.counter != current:  # older: void already; later: cannot be marked ahead
            self.act(
                sender,
                data,
                0,
                ("OfferStaleCounter", {"offerHash": m.hash, "counter": m.offer.counter, "current": current}),
            )
            return
        self.act(sender, data)
        self.cancel_bits[m.offer.maker] |= 1 << (m.offer.salt % CANCEL_SLOTS)  # the whole slot dies

    @rule(maker=st.sampled_from(["m1", "m2", "wallet"]))
    def increment_counter(self, maker: str) -> None:
        addr = self.name(maker)
        self.act(addr, self.e.book.encode_abi("incrementCounter", args=[]))
        self.counters[addr] += 1
        self.cancel_bits[addr] = 0  # every slot free under the new counter; older offers die by the counter

    @rule(who=st.sampled_from(["m1", "m2", "wallet", "t1"]), amount=st.sampled_from([1, 10**14, 10**17]))
    def deposit(self, who: str, amount: int) -> None:
        addr = self.name(who)
        if addr == self.e.wallet.address:  # a third party funds the wallet's deposit
            self.act(self.e.stranger.address, self.e.book.encode_abi("depositFor", args=[addr]), amount)
        else:
            self.act(addr, self.e.book.encode_abi("deposit", args=[]), amount)
        self.deposits[addr] += amount
        self.balances[(self.e.book.address, ETH)] += amount

    @rule(who=st.sampled_from(["m1", "m2", "t1"]), share=st.sampled_from([0, 1, 2]))
    def withdraw(self, who: str, share: int) -> None:
        addr = self.name(who)
        balance = self.deposits[addr]
        amount = [balance // 2, balance, balance + 1][share]
        data = self.e.book.encode_abi("withdraw", args=[amount])
        if amount > balance:
            self.act(
                addr,
                data,
                0,
                ("OfferInsufficientDeposit", {"account": addr, "balance": balance, "needed": amount}),
            )
            return
        self.act(addr, data)
        self.deposits[addr] -= amount
        self.balances[(self.e.book.address, ETH)] -= amount
        self.balances[(addr, ETH)] += amount

    @rule(approving=st.booleans())
    def wallet_approves(self, approving: bool) -> None:
        e = self.e
        self.act(e.owner.address, e.wallet.encode_abi("setApproving", args=[approving]), to=e.wallet.address)
        self.approving = approving

    @rule(seconds=st.one_of(st.integers(1, 120), st.sampled_from([HOUR, 3 * HOUR])))
    def wait(self, seconds: int) -> None:
        self.fast.jump(seconds)

    @precondition(lambda self: self.offers)
    @rule(i=st.integers(0, 10**6), offset=st.sampled_from([-1, 0, 1]))
    def wait_for_expiry(self, i: int, offset: int) -> None:
        target = self.pick(i).offer.expiry + offset
        if target - 1 > self.fast.now:
            self.fast.jump(target - 1 - self.fast.now)

    # -- the Sybil ring: m2 and a second address with one owner --------------------------------------------

    def ring_value(self) -> dict[str, int]:
        """Per asset: what the ring holds (balances, OfferBook deposits) plus what it locked in deals with
        itself (it gets that back whichever way those deals settle)."""
        e = self.e
        value = dict.fromkeys(e.assets, 0)
        for a in e.assets:
            value[a] = sum(self.balances[(r, a)] for r in e.ring) + self.ring_locked[a]
        value[ETH] += sum(self.deposits[r] for r in e.ring)
        return value

    @precondition(lambda self: any(m.offer.maker == self.e.m2.address for m in self.offers))
    @rule(i=st.integers(0, 10**6), qty=QTY)
    def sybil_self_fill(self, i: int, qty: str) -> None:
        """The ring fills its own offer from its second address. The contract cannot tell the addresses
        apart (only maker == taker is refused), but every leg is paid in full: no value appears
        (``ring_creates_no_value``)."""
        own = [m for m in self.offers if m.offer.maker == self.e.m2.address]
        self.fill_as(own[i % len(own)], self.e.sybil.address, qty)

    @precondition(lambda self: self.offers)
    @rule(
        i=st.integers(0, 10**6),
        tweak=st.sampled_from(["taker", "price", "quantity", "expiry", "counter", "bond"]),
        qty=st.sampled_from(["one", "all"]),
    )
    def sybil_replay(self, i: int, tweak: str, qty: str) -> None:
        """The ring reuses a maker's signature on terms it prefers (itself as designated taker, half the
        price, one more unit, a later expiry, the next counter, no bond): another digest, so the signature
        is refused unless that exact offer was itself signed/posted and validated."""
        m = self.pick(i)
        o = m.offer
        change: dict[str, Any] = {
            "taker": {"taker": self.e.sybil.address},
            "price": {"unit_price": max(o.unit_price // 2, 1)},
            "quantity": {"quantity": o.quantity + 1},
            "expiry": {"expiry": o.expiry + HOUR},
            "counter": {"counter": o.counter + 1},
            "bond": {"bond_per_unit": 0},
        }[tweak]
        forged = replace(o, **change)
        if forged == o:
            return
        h = forged.digest(self.e.domain)
        copy = MOffer(forged, h, m.sig, False, self.status.setdefault(h, Status()))
        self.offers.append(copy)
        self.fill_as(copy, self.e.sybil.address, qty)

    @invariant()
    def ring_creates_no_value(self) -> None:
        """docs/design.md §6.12: following the rules, the ring ends with at most what it started with, per asset."""
        now = self.ring_value()
        for a, start in self.ring_start.items():
            assert now[a] <= start, f"the Sybil ring gained in {a}: {now[a] - start}"

    # -- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def books_agree(self) -> None:
        self.count_step()
        e = self.e
        book = e.book.address
        calls = list(e.static_calls)
        calls += [
            (book, bytes.fromhex(e.book.encode_abi("offerStatus", args=[m.offer.as_tuple()])[2:]))
            for m in self.offers
        ]
        calls += [
            (book, bytes.fromhex(e.book.encode_abi("remainingFrom", args=[m.offer.as_tuple(), m.filled])[2:]))
            for m in self.offers
        ]
        deal_ids = sorted(self.deals)
        calls += [
            (
                e.escrow.address,
                bytes.fromhex(e.escrow.encode_abi("verifyTerms", args=[i, self.deals[i].as_tuple()])[2:]),
            )
            for i in deal_ids
        ]
        raw, balances = self._read(calls)
        k = 0
        for a in e.assets:  # §6.1 for the escrow the fills opened deals in
            locked, credits, fees = (as_uint(raw[k], j) for j in range(3))
            assert balances[(e.escrow.address, a)] == locked + credits + fees, f"escrow insolvent in {a}"
            k += 1
        for mk in e.makers:
            assert as_uint(raw[k]) == self.counters[mk]
            k += 1
        for mk in e.makers:
            counter, bits = (as_uint(raw[k], j) for j in range(2))
            assert (counter, bits) == (self.counters[mk], self.cancel_bits[mk]), f"cancel slots of {mk}"
            k += 1
        for h in e.people:
            assert as_uint(raw[k]) == self.deposits[h], f"deposit of {h}"
            k += 1
        assert as_uint(raw[k]) == self.next_deal, "a fill moved the escrow's sequential deal counter"
        k += 1
        assert balances[(book, ETH)] == sum(self.deposits.values()), "OfferBook ETH != sum of deposits"
        for m in self.offers:
            posted, cancelled = (as_uint(raw[k], j) for j in range(2))
            assert (bool(posted), bool(cancelled)) == (m.posted, self.cancelled(m)), m
            assert m.filled <= m.offer.quantity  # §6.3 (the chain: each link's start is the previous end)
            assert sum(q for _, q, _ in m.status.links) == m.filled
            k += 1
        for m in self.offers:
            live = (
                not self.cancelled(m)
                and self.fast.now <= m.offer.expiry
                and m.offer.counter == self.counters[m.offer.maker]
            )
            assert as_uint(raw[k]) == (m.offer.quantity - m.filled if live else 0), f"remaining of {m}"
            k += 1
        for i in deal_ids:
            assert as_uint(raw[k]) == 1, f"deal {i} terms differ from the offer's"
            k += 1
        for key, value in balances.items():
            if key[0] == e.escrow.address:
                continue  # the escrow's own balance is checked against its totals above
            assert value == self.balances[key], f"balance {key}: chain {value}, model {self.balances[key]}"
        for key in list(self.balances):
            if key[0] == e.escrow.address:
                self.balances[key] = balances[key]


@pytest.mark.anvil
def test_offers_machine(request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite) -> None:
    OffersMachine.env = Env(anvil, anvil_suite)
    run_machine(request, OffersMachine, OffersMachine.env.fast, long=LONG)
