"""English, Dutch and sealed-bid auctions under random play (docs/design.md §6.1, §6.2, §6.4, §6.5, §6.9, §6.10).

Sellers: two EOAs. Bidders/buyers: three EOAs; sealed bids commit, reveal (their own, a misremembered
one, or a copy of a rival's commitment), settle first-price or Vickrey and reclaim deposits (penalised when
never revealed) (a seller may try to bid on its own auction and must be
refused). Assets: ETH, a plain ERC-20 and a 1% fee-on-transfer token. Rules create auctions (also with
invalid parameters), bid, buy at the falling price with a maximum and with overpayment, cancel, settle
(also with stale terms), withdraw credits and jump time (also to exactly the start/end - 1, at, + 1).
Every failure is predicted (typed error and arguments), simulated, then mined to show it changes nothing.

Sales bind both sides (docs/design.md §6.12): a seller posts its bond at creation (templates without a bond or an
arbiter are refused), the bond moves into the escrow deal at settlement (Funded, so neither side cancels
alone: an `unwind` rule has the winner or the seller try) and comes back when nothing sells. A Sybil/shill
actor: the seller's own two bidders commit a ladder in a sealed auction and reveal only the rung just under
the leader; invariant 12 is checked after every step (a seller never receives a forfeit, every forfeit a
shill pays goes to the winner, and a walk-away never returns anything to the party walking away).

After every step: each auction contract's balance per asset equals the held high bids plus the credits
(§6.1), English high bids grow by at least the increment and the outbid party's credit grows by exactly
its bid (§6.4), a sealed auction's winner pays max(second bid, reserve) under Vickrey and only the
committer can reveal (§6.6), the Dutch price never rises, stays in [floor, start] and matches the formula (§6.5),
statuses move forward and settle once, each settlement opened exactly one escrow deal with the terms
the model derives (the escrow stays solvent), every view and every balance (ETH including gas) equals the
model, and the auctions AuctionClient folds from the events equal the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from helpers import Driver, as_uint, encode_call
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from machine import FOT_BPS, ChainMachine, run_machine

from agentmarket.chain import Chain
from agentmarket.clients.auctions import Auction, AuctionClient, AuctionKind, AuctionStatus, DealTemplate
from agentmarket.deploy import Suite
from agentmarket.types import BPS, ETH, ZERO_ADDRESS, DealTerms

pytestmark = pytest.mark.anvil

HOUR = 3600
MINT = 10**27
MAX = 2**256 - 1
AS = AuctionStatus
EN, DU, SE = AuctionKind.ENGLISH, AuctionKind.DUTCH, AuctionKind.SEALED


@dataclass
class MBid:
    amount: int
    salt: bytes
    deposit: int  # what arrived (fee-on-transfer: less than sent)
    commitment: bytes
    revealed: bool = False
    eligible: bool = False


@dataclass
class MAuction:
    kind: AuctionKind
    id: int
    seller: str
    terms: DealTemplate
    status: AuctionStatus
    start: int
    end: int
    # English
    reserve: int = 0
    extension: int = 0
    inc_bps: int = 0
    high_bidder: str = ZERO_ADDRESS
    high_bid: int = 0
    # Dutch
    start_price: int = 0
    floor_price: int = 0
    last_price: int | None = None
    # sealed (start = commit end, end = reveal end)
    penalty_bps: int = 0
    vickrey: bool = False
    second_bid: int = 0
    bids: dict[str, MBid] | None = None
    bond: int = 0  # the seller's bond as it arrived, held until settlement

    def clearing(self) -> int:
        if not self.vickrey:
            return self.high_bid
        return max(self.second_bid, self.reserve)  # §6.6

    @property
    def asset(self) -> str:
        return self.terms.asset

    def price(self, t: int) -> int:
        if t <= self.start:
            return self.start_price
        if t >= self.end:
            return self.floor_price
        return self.start_price - (self.start_price - self.floor_price) * (t - self.start) // (
            self.end - self.start
        )

    def minimum(self) -> int:
        if self.high_bidder == ZERO_ADDRESS:
            return self.reserve
        step = self.high_bid * self.inc_bps // BPS
        return self.high_bid + (step or 1)


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.fast = fast = Driver(chain)
        a = chain.accounts
        self.owner, self.b1, self.b2, self.s1, self.s2, self.arb, self.b3 = (
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[5],
            a[6],
        )
        self.shills = (a[7], a[8])  # the Sybil ring: bidders that secretly act for the auction's seller
        self.en, self.du, self.escrow = suite["EnglishAuction"], suite["DutchAuction"], suite["AgentEscrow"]
        self.se = suite["SealedBidAuction"]
        self.contracts = {EN: self.en, DU: self.du, SE: self.se}
        self.client = AuctionClient.from_suite(suite)
        self.token = fast.deploy(self.owner, "MockERC20", "Mock USD", "mUSD", 18)
        self.fot = fast.deploy(self.owner, "FeeOnTransferToken", FOT_BPS)
        self.assets = [ETH, self.token.address, self.fot.address]
        self.tokens = {self.token.address: self.token, self.fot.address: self.fot}
        self.eoas: dict[str, LocalAccount] = {x.address: x for x in a[:9]}
        for t in self.tokens.values():
            for h in (self.b1, self.b2, self.b3, self.s1, self.s2, *self.shills):
                self.must(self.owner, t.address, t.encode_abi("mint", args=[h.address, MINT]))
                for c in (self.en, self.du, self.se):
                    self.must(h, t.address, t.encode_abi("approve", args=[c.address, MAX]))
        self.client.from_block = fast.block_number()
        self.people = [
            x.address
            for x in (self.owner, self.b1, self.b2, self.b3, self.s1, self.s2, self.arb, *self.shills)
        ]
        self.holders = [*self.people, self.en.address, self.du.address, self.se.address, self.escrow.address]
        self.balance_keys = [(t, h) for t in self.tokens for h in self.holders]
        self.balance_calls = [
            (t, encode_call("balanceOf(address)", ["address"], [h])) for t, h in self.balance_keys
        ]
        self.credit_keys = [(k, p, x) for k in (EN, DU, SE) for p in self.people for x in self.assets]
        self.static_calls = [
            (
                self.contracts[k].address,
                encode_call("creditOf(address,address)", ["address", "address"], [p, x]),
            )
            for k, p, x in self.credit_keys
        ]
        self.static_calls += [
            (self.escrow.address, encode_call("totals(address)", ["address"], [x])) for x in self.assets
        ]
        self.static_calls += [(self.escrow.address, encode_call("nextDealId()", [], []))]

    def must(self, account: LocalAccount, to: str, data: Any, value: int = 0) -> None:
        assert self.fast.send(account, to, data, value).ok


class AuctionsMachine(ChainMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        e = self.e = self.env
        self.auctions: dict[tuple[AuctionKind, int], MAuction] = {}
        ids = self.fast.calls(
            [
                (e.en.address, encode_call("nextAuctionId()", [], [])),
                (e.du.address, encode_call("nextAuctionId()", [], [])),
                (e.se.address, encode_call("nextAuctionId()", [], [])),
                (e.escrow.address, encode_call("nextDealId()", [], [])),
            ]
        )
        self.next_id = {EN: as_uint(ids[0]), DU: as_uint(ids[1]), SE: as_uint(ids[2])}
        self.next_deal = as_uint(ids[3])
        self.credits: dict[tuple[AuctionKind, str, str], int] = {}
        self.deals: dict[int, DealTerms | None] = {}
        self.balances = self._read([])[1]
        self.gas_base: dict[str, int] = {}
        self.seen: dict[tuple[AuctionKind, int], int] = {}
        self.settled: dict[tuple[AuctionKind, int], int] = {}
        self.client_view: dict[tuple[AuctionKind, int], Auction] = {}
        # invariant 12: deal state per exact sale deal (Funded until both parties ask to cancel), who asked,
        # and forfeits received per address / paid by the seller's shills
        self.deal_state: dict[int, tuple[int, bool, bool]] = {}
        self.forfeit_income: dict[str, int] = {}
        self.shill_forfeits: dict[tuple[AuctionKind, int], int] = {}
        e.client._origins.clear()  # the client caches creation blocks; the chain was reverted under it

    # -- plumbing ---------------------------------------------------------------------------------------

    def act(
        self,
        kind: AuctionKind,
        actor: str,
        data: Any,
        value: int = 0,
        expect: tuple[str, dict[str, Any]] | None = None,
    ) -> Any:
        signer, to = self.e.eoas[actor], self.e.contracts[kind].address
        self.fast.tick()
        if expect is not None:
            err = self.fast.simulate(signer.address, to, data, value)
            self.assert_error(err, expect[0], expect[1])
            assert not self.fast.send(signer, to, data, value, tick=False).ok
            self.gas(signer.address)
            return None
        receipt = self.fast.send(signer, to, data, value, tick=False)
        if not receipt.ok:
            raise AssertionError(f"unexpected revert: {self.fast.simulate(signer.address, to, data, value)}")
        self.gas(signer.address)
        self.balances[(signer.address, ETH)] -= value
        self._fold(kind, receipt)
        return receipt

    def _fold(self, kind: AuctionKind, receipt: Any) -> None:
        c = self.e.contracts[kind]
        topics = self.e.client._kind_topics[kind]
        for lg in receipt["logs"]:
            if lg["address"] != c.address or len(lg["topics"]) < 2:
                continue
            event = topics.get(lg["topics"][0])
            if event is None:
                continue
            decoded = event.process_log(lg)
            if "auctionId" not in decoded["args"]:
                continue  # PayoutCredited / Withdrawn
            key = (kind, int(decoded["args"]["auctionId"]))
            if decoded["event"] == "AuctionSettled":
                self.settled[key] = self.settled.get(key, 0) + 1
            self.client_view[key] = self.e.client._apply(
                kind, c.address, self.client_view.get(key), decoded["event"], decoded["args"], lg
            )

    def now(self) -> int:
        return self.fast.now + 1

    def name(self, who: str) -> str:
        e = self.e
        return {
            "b1": e.b1.address,
            "b2": e.b2.address,
            "b3": e.b3.address,
            "s1": e.s1.address,
            "s2": e.s2.address,
            "x1": e.shills[0].address,
            "x2": e.shills[1].address,
        }[who]

    def pick(self, kind: AuctionKind, i: int) -> MAuction | None:
        """Usually an active auction of ``kind``, sometimes any of that kind."""
        keys = sorted(k for k in self.auctions if k[0] == kind)
        live = [k for k in keys if self.auctions[k].status == AS.ACTIVE]
        if live and i % 4:
            return self.auctions[live[(i // 4) % len(live)]]
        return self.auctions[keys[(i // 4) % len(keys)]] if keys else None

    def credit(self, kind: AuctionKind, who: str, asset: str, amount: int) -> None:
        key = (kind, who, asset)
        self.credits[key] = self.credits.get(key, 0) + amount

    # -- creation ----------------------------------------------------------------------------------------

    @staticmethod
    def unprotected(terms: DealTemplate, min_price: int) -> tuple[str, dict[str, Any]] | None:
        """§6.12: a sale needs a seller bond (at most the lowest clearing price) and an arbiter."""
        if terms.bond == 0 or terms.arbiter == ZERO_ADDRESS:
            return ("AuctionUnprotectedSale", {"bond": terms.bond, "arbiter": terms.arbiter})
        if terms.bond > min_price:
            return ("AuctionBondAbovePrice", {"bond": terms.bond, "minimumPrice": min_price})
        return None

    def post_bond(self, kind: AuctionKind, seller: str, terms: DealTemplate) -> tuple[Any, int]:
        """(msg.value, bond that arrives) of a sale's creation; ERC-20 bonds move from the seller now."""
        c = self.e.contracts[kind].address
        if terms.asset == ETH:
            self.balances[(c, ETH)] += terms.bond
            return terms.bond, terms.bond
        arrived = self.arrives(terms.asset, terms.bond)
        self.balances[(seller, terms.asset)] -= terms.bond
        self.balances[(c, terms.asset)] += arrived
        return 0, arrived

    def bond_back(self, a: MAuction) -> None:
        """Nothing sold: the seller (an EOA, it accepts the push) gets its bond back."""
        c = self.e.contracts[a.kind].address
        self.balances[(c, a.asset)] -= a.bond
        self.balances[(a.seller, a.asset)] += self.arrives(a.asset, a.bond)
        a.bond = 0

    def into_escrow(self, a: MAuction, price: int) -> bool:
        """Settlement sends price + bond to the escrow in one transfer; True when it all arrives."""
        c, esc, total = self.e.contracts[a.kind].address, self.e.escrow.address, price + a.bond
        self.balances[(c, a.asset)] -= total
        arrived = self.arrives(a.asset, total)
        self.balances[(esc, a.asset)] = self.balances.get((esc, a.asset), 0) + arrived
        return arrived == total

    @st.composite
    def _template(draw: Any) -> dict[str, Any]:
        return {
            "asset": draw(st.integers(0, 2)),
            "arbiter": draw(st.sampled_from([False, True, True, True])),
            "bond": draw(st.sampled_from([0, 1, 1, 5, 1000])),
            "promise": draw(st.sampled_from([0, 60])),
            "delivery": draw(st.sampled_from([60, HOUR])),
            "bad": draw(st.sampled_from([False] * 9 + [True])),
        }

    def template(self, seller: str, p: dict[str, Any]) -> DealTemplate:
        return DealTemplate(
            creator=seller,
            delivery_delay=0 if p["bad"] else p["delivery"],
            asset=self.e.assets[p["asset"]],
            arbiter=self.e.arb.address if p["arbiter"] else ZERO_ADDRESS,
            bond=p["bond"],
            promise_delay=p["promise"],
            arbiter_fee_bps=100,
        )

    @rule(
        seller=st.sampled_from(["s1", "s2"]),
        t=_template(),
        reserve=st.sampled_from([0] + [1, 1000, 10**15] * 3),
        start_in=st.sampled_from([-1] + [0, 0, 30] * 3),
        duration=st.sampled_from([0] + [60, HOUR] * 4),
        extension=st.sampled_from([0, 30, 300]),
        inc=st.sampled_from([10_001] + [0, 500] * 4),
    )
    def create_english(
        self,
        seller: str,
        t: dict[str, Any],
        reserve: int,
        start_in: int,
        duration: int,
        extension: int,
        inc: int,
    ) -> None:
        s = self.name(seller)
        terms = self.template(s, t)
        start = self.now() + start_in
        end = start + duration
        data = self.e.en.encode_abi("create", args=[(reserve, start, end, extension, inc), terms.as_tuple()])
        expect = None
        if reserve == 0:
            expect = ("AuctionInvalidAmount", {"amount": 0})
        elif start < self.now() or end <= start:
            expect = ("AuctionInvalidTimes", {"start": start, "end": end, "now": self.now()})
        elif inc > BPS:
            expect = ("AuctionInvalidBps", {"bps": inc})
        elif t["bad"]:
            expect = ("AuctionInvalidTerms", {})
        else:
            expect = self.unprotected(terms, reserve)
        if expect:
            self.act(EN, s, data, 0, expect)
            return
        value, bond = self.post_bond(EN, s, terms)
        self.act(EN, s, data, value)
        aid = self.next_id[EN]
        self.next_id[EN] += 1
        self.auctions[(EN, aid)] = MAuction(
            EN,
            aid,
            s,
            terms,
            AS.ACTIVE,
            start,
            end,
            reserve=reserve,
            extension=extension,
            inc_bps=inc,
            bond=bond,
        )

    @rule(
        seller=st.sampled_from(["s1", "s2"]),
        t=_template(),
        start_price=st.sampled_from([2**96] + [1000, 10**15] * 4),
        floor=st.sampled_from([0] + [1, 500, 10**14] * 3),
        start_in=st.sampled_from([-1] + [0, 0, 30] * 3),
        duration=st.sampled_from([0] + [60, HOUR] * 4),
    )
    def create_dutch(
        self, seller: str, t: dict[str, Any], start_price: int, floor: int, start_in: int, duration: int
    ) -> None:
        s = self.name(seller)
        terms = self.template(s, t)
        start = self.now() + start_in
        end = start + duration
        data = self.e.du.encode_abi("create", args=[(start_price, floor, start, end), terms.as_tuple()])
        expect = None
        if floor == 0 or floor > start_price or start_price > 2**96 - 1:
            expect = ("AuctionInvalidAmount", {"amount": 0 if floor == 0 else start_price})
        elif start < self.now() or end <= start:
            expect = ("AuctionInvalidTimes", {"start": start, "end": end, "now": self.now()})
        elif t["bad"]:
            expect = ("AuctionInvalidTerms", {})
        else:
            expect = self.unprotected(terms, floor)
        if expect:
            self.act(DU, s, data, 0, expect)
            return
        value, bond = self.post_bond(DU, s, terms)
        self.act(DU, s, data, value)
        aid = self.next_id[DU]
        self.next_id[DU] += 1
        self.auctions[(DU, aid)] = MAuction(
            DU, aid, s, terms, AS.ACTIVE, start, end, start_price=start_price, floor_price=floor, bond=bond
        )

    # -- English ------------------------------------------------------------------------------------------

    @precondition(lambda self: any(k[0] == EN for k in self.auctions))
    @rule(
        i=st.integers(0, 10**6),
        bidder=st.sampled_from(["b1", "b2", "b3", "s1"]),
        how=st.sampled_from(["min", "min", "above", "below", "wrong_value"]),
    )
    def bid(self, i: int, bidder: str, how: str) -> None:
        a = self.pick(EN, i)
        assert a is not None
        who = self.name(bidder)
        minimum = a.minimum()
        # a fee-on-transfer bid must send enough that what arrives still reaches the minimum
        gross = minimum if a.asset != self.e.fot.address else -(-minimum * BPS // (BPS - FOT_BPS))
        amount = {"min": gross, "above": gross * 2 + 7, "below": max(minimum - 1, 1), "wrong_value": gross}[
            how
        ]
        if how == "below" and a.asset == self.e.fot.address:
            amount = max(minimum - 1, 1)
        value = amount if a.asset == ETH else 0
        if how == "wrong_value":
            value = value + 1 if a.asset == ETH else 1
        data = self.e.en.encode_abi("bid", args=[a.id, amount])
        expect = None
        if a.status != AS.ACTIVE:
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif self.now() < a.start:
            expect = ("AuctionNotOpen", {"auctionId": a.id, "opensAt": a.start, "now": self.now()})
        elif self.now() > a.end:
            expect = ("AuctionBiddingClosed", {"auctionId": a.id, "closedAt": a.end, "now": self.now()})
        elif who == a.seller:
            expect = ("AuctionUnauthorized", {"auctionId": a.id, "caller": who})
        elif value != (amount if a.asset == ETH else 0):
            expect = ("AuctionWrongValue", {"expected": amount if a.asset == ETH else 0, "sent": value})
        elif self.arrives(a.asset, amount) < minimum:
            expect = (
                "AuctionBidTooLow",
                {"auctionId": a.id, "bid": self.arrives(a.asset, amount), "minimum": minimum},
            )
        if expect:
            self.act(EN, who, data, value, expect)
            return
        self.act(EN, who, data, value)
        received = self.arrives(a.asset, amount)
        c = self.e.en.address
        if a.asset == ETH:
            self.balances[(c, ETH)] += amount
        else:
            self.balances[(who, a.asset)] -= amount
            self.balances[(c, a.asset)] += received
        assert received >= minimum  # §6.4: the high bid grows by at least the increment
        if a.high_bidder != ZERO_ADDRESS:
            self.credit(EN, a.high_bidder, a.asset, a.high_bid)  # §6.4: exactly the outbid amount
        a.high_bidder, a.high_bid = who, received
        if a.end - self.fast.now < a.extension:
            a.end += a.extension

    def sale_deal(self, a: MAuction, buyer: str, price: int, exact: bool) -> None:
        t = a.terms
        now = self.fast.now
        terms = DealTerms(
            buyer=buyer,
            seller=a.seller,
            amount=price,
            deliver_by=now + t.delivery_delay,
            asset=t.asset,
            arbiter=t.arbiter,
            bond=a.bond,
            terms_hash=t.terms_hash,
            promised_by=now + t.promise_delay,
            review_window=t.review_window,
            ruling_window=t.ruling_window,
            penalty_bps_per_hour=t.penalty_bps_per_hour,
            penalty_cap_bps=t.penalty_cap_bps,
            arbiter_fee_bps=t.arbiter_fee_bps,
            default_seller_bps=t.default_seller_bps,
        )
        self.deals[self.next_deal] = terms if exact else None
        if exact:
            self.deal_state[self.next_deal] = (2, False, False)  # Funded: the bond is posted (§6.12)
        self.next_deal += 1
        a.bond = 0  # now backing the deal

    @precondition(lambda self: self.auctions)
    @rule(
        kind=st.sampled_from([EN, DU]),
        i=st.integers(0, 10**6),
        by_seller=st.sampled_from([True] * 3 + [False]),
    )
    def cancel(self, kind: AuctionKind, i: int, by_seller: bool) -> None:
        a = self.pick(kind, i)
        if a is None:
            return
        who = a.seller if by_seller else self.e.b1.address
        data = self.e.contracts[kind].encode_abi("cancel", args=[a.id])
        expect = None
        if a.status != AS.ACTIVE or (kind == EN and a.high_bidder != ZERO_ADDRESS):
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif who != a.seller and (kind == EN or self.now() <= a.end):  # Dutch: anyone after the end
            expect = ("AuctionUnauthorized", {"auctionId": a.id, "caller": who})
        if expect:
            self.act(kind, who, data, 0, expect)
            return
        self.act(kind, who, data)
        a.status = AS.CANCELLED
        self.bond_back(a)

    @precondition(lambda self: any(k[0] == EN for k in self.auctions))
    @rule(i=st.integers(0, 10**6), stale=st.sampled_from([False] * 5 + [True]))
    def settle_english(self, i: int, stale: bool) -> None:
        a = self.pick(EN, i)
        assert a is not None
        who = self.e.b3.address
        terms = DealTemplate(**{**a.terms.__dict__, "bond": a.terms.bond + 1}) if stale else a.terms
        data = self.e.en.encode_abi("settle", args=[a.id, terms.as_tuple()])
        expect = None
        if a.status != AS.ACTIVE:
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif self.now() <= a.end:
            expect = ("AuctionNotEnded", {"auctionId": a.id, "endsAt": a.end, "now": self.now()})
        elif stale:
            expect = ("AuctionTermsMismatch", {"auctionId": a.id})
        if expect:
            self.act(EN, who, data, 0, expect)
            return
        self.act(EN, who, data)
        if a.high_bidder == ZERO_ADDRESS:
            a.status = AS.NO_SALE
            self.bond_back(a)
            return
        a.status = AS.SETTLED
        self.sale_deal(a, a.high_bidder, a.high_bid, self.into_escrow(a, a.high_bid))

    # -- Dutch ----------------------------------------------------------------------------------------------

    @precondition(lambda self: any(k[0] == DU for k in self.auctions))
    @rule(
        i=st.integers(0, 10**6),
        buyer=st.sampled_from(["b1", "b2", "s1", "s2"]),
        max_choice=st.sampled_from(["exact", "above", "below"]),
        pay=st.sampled_from(["exact", "over", "under"]),
        stale=st.sampled_from([False] * 9 + [True]),
    )
    def buy(self, i: int, buyer: str, max_choice: str, pay: str, stale: bool) -> None:
        a = self.pick(DU, i)
        assert a is not None
        who = self.name(buyer)
        price = a.price(self.now())
        max_price = {"exact": price, "above": price + 10, "below": price - 1}[max_choice]
        value = 0
        if a.asset == ETH:
            value = {"exact": price, "over": price + 12345, "under": price - 1}[pay]
        terms = DealTemplate(**{**a.terms.__dict__, "bond": a.terms.bond + 1}) if stale else a.terms
        data = self.e.du.encode_abi("buy", args=[a.id, max_price, terms.as_tuple()])
        expect = None
        if a.status != AS.ACTIVE:
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif self.now() < a.start:
            expect = ("AuctionNotOpen", {"auctionId": a.id, "opensAt": a.start, "now": self.now()})
        elif self.now() > a.end:
            expect = ("AuctionBiddingClosed", {"auctionId": a.id, "closedAt": a.end, "now": self.now()})
        elif stale:
            expect = ("AuctionTermsMismatch", {"auctionId": a.id})
        elif price > max_price:
            expect = ("AuctionPriceAboveMax", {"auctionId": a.id, "price": price, "maxPrice": max_price})
        elif who == a.seller:
            expect = ("AuctionUnauthorized", {"auctionId": a.id, "caller": who})
        elif a.asset == ETH and value < price:
            expect = ("AuctionBidTooLow", {"auctionId": a.id, "bid": value, "minimum": price})
        if expect:
            self.act(DU, who, data, value, expect)
            return
        self.act(DU, who, data, value)
        assert a.floor_price <= price <= a.start_price  # §6.5
        a.status = AS.SETTLED
        esc, c = self.e.escrow.address, self.e.du.address
        self.balances[(c, a.asset)] -= a.bond  # the seller's bond moves into the deal
        if a.asset == ETH:
            self.balances[(esc, ETH)] += price + a.bond
            self.balances[(who, ETH)] += value - price  # §6.5: overpayment returned (an EOA accepts it)
            exact = True
        else:
            self.balances[(who, a.asset)] -= price
            arrived = self.arrives(a.asset, price) + self.arrives(a.asset, a.bond)
            self.balances[(esc, a.asset)] += arrived
            exact = arrived == price + a.bond
        self.sale_deal(a, who, price, exact)

    # -- sealed bids (§6.6) -------------------------------------------------------------------------------------

    @rule(
        seller=st.sampled_from(["s1", "s2"]),
        t=_template(),
        reserve=st.sampled_from([0] + [1, 1000, 10**15] * 3),
        commit_in=st.sampled_from([0] + [30, 600] * 4),
        reveal_len=st.sampled_from([0] + [30, 600] * 4),
        penalty=st.sampled_from([10_001] + [0, 2500] * 4),
        vickrey=st.booleans(),
    )
    def create_sealed(
        self,
        seller: str,
        t: dict[str, Any],
        reserve: int,
        commit_in: int,
        reveal_len: int,
        penalty: int,
        vickrey: bool,
    ) -> None:
        s = self.name(seller)
        terms = self.template(s, t)
        commit_end = self.now() + commit_in
        reveal_end = commit_end + reveal_len
        data = self.e.se.encode_abi(
            "create", args=[(reserve, commit_end, reveal_end, penalty, vickrey), terms.as_tuple()]
        )
        expect = None
        if reserve == 0:
            expect = ("AuctionInvalidAmount", {"amount": 0})
        elif commit_end <= self.now() or reveal_end <= commit_end:
            expect = ("AuctionInvalidTimes", {"start": commit_end, "end": reveal_end, "now": self.now()})
        elif penalty > BPS or (vickrey and penalty == 0):
            expect = ("AuctionInvalidBps", {"bps": penalty})
        elif t["bad"]:
            expect = ("AuctionInvalidTerms", {})
        else:
            expect = self.unprotected(terms, reserve)
        if expect:
            self.act(SE, s, data, 0, expect)
            return
        value, bond = self.post_bond(SE, s, terms)
        self.act(SE, s, data, value)
        aid = self.next_id[SE]
        self.next_id[SE] += 1
        self.auctions[(SE, aid)] = MAuction(
            SE,
            aid,
            s,
            terms,
            AS.ACTIVE,
            commit_end,
            reveal_end,
            reserve=reserve,
            penalty_bps=penalty,
            vickrey=vickrey,
            bids={},
            bond=bond,
        )

    @precondition(
        lambda self: any(
            k[0] == SE and v.status == AS.ACTIVE and v.start >= self.now() for k, v in self.auctions.items()
        )
    )
    @rule(data=st.data())
    def sealed_round(self, data: Any) -> None:
        """A whole sealed round on an auction still taking commits (random rules alone rarely line one up):
        commits, the move into the reveal window, reveals (own, wrong, copied), the end, settle, reclaims.
        Every sub-step goes through the same predicted-and-checked rules."""
        live = sorted(
            k
            for k, v in self.auctions.items()
            if k[0] == SE and v.status == AS.ACTIVE and v.start >= self.now()
        )
        key = data.draw(st.sampled_from(live))
        index = 4 * sorted(k for k in self.auctions if k[0] == SE).index(key)  # i % 4 == 0: pick by position
        amounts = st.sampled_from(["below", "reserve", "double", "huge"])
        deposits = st.sampled_from(["exact", "more", "less"])
        for bidder in data.draw(st.lists(st.sampled_from(["b1", "b2", "b3"]), min_size=1, max_size=4)):
            self.commit(index, bidder, data.draw(amounts), data.draw(deposits))
        a = self.auctions[key]
        if a.start + 1 > self.fast.now + 1:
            self.fast.jump(a.start - self.fast.now)  # next transaction: commit end + 1
        for bidder in data.draw(st.lists(st.sampled_from(["b1", "b2", "b3"]), max_size=4)):
            self.reveal(index, bidder, data.draw(st.sampled_from(["own", "own", "copy", "wrong_amount"])))
        if data.draw(st.booleans()):
            if a.end + 1 > self.fast.now + 1:
                self.fast.jump(a.end - self.fast.now)
            self.settle_sealed(index, False)
            for bidder in data.draw(st.lists(st.sampled_from(["b1", "b2", "b3"]), max_size=3)):
                self.reclaim(index, bidder, False)

    def commitment(self, bidder: str, aid: int, amount: int, salt: bytes) -> bytes:
        return keccak(
            encode(
                ["address", "uint256", "uint256", "address", "uint256", "bytes32"],
                [bidder, aid, self.fast.chain_id, self.e.se.address, amount, salt],
            )
        )

    @precondition(lambda self: any(k[0] == SE for k in self.auctions))
    @rule(
        i=st.integers(0, 10**6),
        bidder=st.sampled_from(["b1", "b2", "b3", "s1"]),
        amount=st.sampled_from(["below", "reserve", "double", "huge"]),
        deposit=st.sampled_from(["exact", "more", "less", "zero"]),
    )
    def commit(self, i: int, bidder: str, amount: str, deposit: str) -> None:
        a = self.pick(SE, i)
        assert a is not None and a.bids is not None
        who = self.name(bidder)
        bid = {
            "below": max(a.reserve - 1, 1),
            "reserve": a.reserve,
            "double": 2 * a.reserve + 3,
            "huge": 10 * a.reserve + 11,
        }[amount]
        dep = {"exact": bid, "more": bid + 1000, "less": bid - 1, "zero": 0}[deposit]
        if a.asset == self.e.fot.address and deposit != "zero":
            dep = -(-dep * BPS // (BPS - FOT_BPS))  # send enough that the bid amount arrives
        salt = keccak(text=f"{who}{a.id}{bid}")
        c = self.commitment(who, a.id, bid, salt)
        value = dep if a.asset == ETH else 0
        data = self.e.se.encode_abi("commit", args=[a.id, c, dep])
        expect = None
        if a.status != AS.ACTIVE:
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif self.now() > a.start:
            expect = ("AuctionBiddingClosed", {"auctionId": a.id, "closedAt": a.start, "now": self.now()})
        elif who == a.seller:
            expect = ("AuctionUnauthorized", {"auctionId": a.id, "caller": who})
        elif who in a.bids:
            expect = ("AuctionAlreadyCommitted", {"auctionId": a.id, "bidder": who})
        elif self.arrives(a.asset, dep) == 0:
            expect = ("AuctionInvalidAmount", {"amount": 0})
        if expect:
            self.act(SE, who, data, value, expect)
            return
        self.act(SE, who, data, value)
        got = self.arrives(a.asset, dep)
        c_addr = self.e.se.address
        if a.asset == ETH:
            self.balances[(c_addr, ETH)] += dep
        else:
            self.balances[(who, a.asset)] -= dep
            self.balances[(c_addr, a.asset)] += got
        a.bids[who] = MBid(bid, salt, got, c)

    @precondition(lambda self: any(k[0] == SE for k in self.auctions))
    @rule(
        i=st.integers(0, 10**6),
        bidder=st.sampled_from(["b1", "b2", "b3"]),
        how=st.sampled_from(["own", "own", "own", "copy", "wrong_amount", "wrong_deposit"]),
    )
    def reveal(self, i: int, bidder: str, how: str) -> None:
        """Reveal a commitment: one's own (maybe misremembered), or a copy of someone else's."""
        a = self.pick(SE, i)
        assert a is not None and a.bids is not None
        who = self.name(bidder)
        source = who
        if how == "copy":
            others = sorted(b for b in a.bids if b != who)
            if not others:
                return
            source = others[0]
        b = a.bids.get(source)
        amount, salt, dep = (b.amount, b.salt, b.deposit) if b else (a.reserve, b"\x00" * 32, a.reserve)
        if how == "wrong_amount":
            amount += 1
        elif how == "wrong_deposit":
            dep += 1
        data = self.e.se.encode_abi("reveal", args=[a.id, amount, salt, dep])
        mine = a.bids.get(who)
        expect = None
        if self.now() <= a.start or self.now() > a.end:
            expect = (
                "AuctionRevealWindow",
                {"auctionId": a.id, "opensAfter": a.start, "closesAt": a.end, "now": self.now()},
            )
        elif mine is None:
            expect = ("AuctionNoCommitment", {"auctionId": a.id, "bidder": who})
        elif mine.revealed:
            expect = ("AuctionAlreadyRevealed", {"auctionId": a.id, "bidder": who})
        elif how != "own":
            expect = ("AuctionInvalidReveal", {"auctionId": a.id, "bidder": who})  # §6.6: only the committer
        if expect:
            self.act(SE, who, data, 0, expect)
            return
        self.act(SE, who, data)
        assert mine is not None
        mine.revealed = True
        mine.eligible = a.reserve <= mine.amount <= mine.deposit
        if mine.eligible:
            if mine.amount > a.high_bid:
                if a.high_bid:
                    a.second_bid = a.high_bid
                a.high_bidder, a.high_bid = who, mine.amount
            elif mine.amount > a.second_bid:
                a.second_bid = mine.amount

    @precondition(lambda self: any(k[0] == SE for k in self.auctions))
    @rule(i=st.integers(0, 10**6), stale=st.sampled_from([False] * 5 + [True]))
    def settle_sealed(self, i: int, stale: bool) -> None:
        a = self.pick(SE, i)
        assert a is not None
        terms = DealTemplate(**{**a.terms.__dict__, "bond": a.terms.bond + 1}) if stale else a.terms
        data = self.e.se.encode_abi("settle", args=[a.id, terms.as_tuple()])
        expect = None
        if a.status != AS.ACTIVE:
            expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
        elif self.now() <= a.end:
            expect = ("AuctionNotEnded", {"auctionId": a.id, "endsAt": a.end, "now": self.now()})
        elif stale:
            expect = ("AuctionTermsMismatch", {"auctionId": a.id})
        who = self.e.b3.address
        if expect:
            self.act(SE, who, data, 0, expect)
            return
        self.act(SE, who, data)
        if a.high_bidder == ZERO_ADDRESS:
            a.status = AS.NO_SALE
            self.bond_back(a)
            return
        a.status = AS.SETTLED
        price = a.clearing()
        assert price <= a.high_bid
        self.sale_deal(a, a.high_bidder, price, self.into_escrow(a, price))

    @precondition(lambda self: any(k[0] == SE for k in self.auctions))
    @rule(
        i=st.integers(0, 10**6),
        bidder=st.sampled_from(["b1", "b2", "b3"]),
        wrong=st.sampled_from([False] * 4 + [True]),
    )
    def reclaim(self, i: int, bidder: str, wrong: bool) -> None:
        a = self.pick(SE, i)
        assert a is not None and a.bids is not None
        who = self.name(bidder)
        b = a.bids.get(who)
        commitment = b.commitment if b else b"\x00" * 32
        dep = (b.deposit if b else 1) + (1 if wrong else 0)
        data = self.e.se.encode_abi("reclaim", args=[a.id, commitment, dep])
        expect = None
        penalty = 0
        if b is None:
            expect = ("AuctionNoCommitment", {"auctionId": a.id, "bidder": who})
        elif b.revealed:
            refund = b.deposit
            if a.high_bidder == who:
                if a.status == AS.ACTIVE:
                    expect = ("AuctionInvalidState", {"auctionId": a.id, "status": int(a.status)})
                elif a.status == AS.SETTLED:
                    refund -= a.clearing()
        elif self.now() <= a.end:
            expect = ("AuctionNotEnded", {"auctionId": a.id, "endsAt": a.end, "now": self.now()})
        elif wrong:
            expect = ("AuctionInvalidReveal", {"auctionId": a.id, "bidder": who})
        else:
            # §6.12: the forfeit goes to the winner (none without one), never to the seller
            penalty = b.deposit * a.penalty_bps // BPS if a.high_bidder != ZERO_ADDRESS else 0
            refund = b.deposit - penalty
        if expect:
            self.act(SE, who, data, 0, expect)
            return
        self.act(SE, who, data)
        del a.bids[who]
        c_addr = self.e.se.address
        for to, amount in ((a.high_bidder, penalty), (who, refund)):
            if amount:
                self.balances[(c_addr, a.asset)] -= amount
                self.balances[(to, a.asset)] += self.arrives(a.asset, amount)
        if penalty:
            self.forfeit_income[a.high_bidder] = self.forfeit_income.get(a.high_bidder, 0) + penalty
            if who in (x.address for x in self.e.shills):
                key = (SE, a.id)
                self.shill_forfeits[key] = self.shill_forfeits.get(key, 0) + penalty

    # -- Sybil ring and walk-aways (§6.12) ----------------------------------------------------------------------

    @precondition(
        lambda self: any(
            k[0] == SE and v.status == AS.ACTIVE and v.start >= self.now() for k, v in self.auctions.items()
        )
    )
    @rule(data=st.data())
    def shill_round(self, data: Any) -> None:
        """The seller's own bidders (x1, x2) commit a ladder next to honest bidders, wait for the honest
        reveals and reveal only the rung just under the leader; the other rung is never revealed. Then the
        auction settles and everyone reclaims: the unrevealed rung's forfeit must reach the winner."""
        live = sorted(
            k
            for k, v in self.auctions.items()
            if k[0] == SE and v.status == AS.ACTIVE and v.start >= self.now()
        )
        key = data.draw(st.sampled_from(live))
        index = 4 * sorted(k for k in self.auctions if k[0] == SE).index(key)
        a = self.auctions[key]
        assert a.bids is not None
        # honest bids mostly above the rungs, so the ring usually has a rung to reveal and one to abandon
        honest = data.draw(st.lists(st.sampled_from(["b1", "b2", "b3"]), min_size=1, max_size=3, unique=True))
        for bidder in honest:
            self.commit(index, bidder, data.draw(st.sampled_from(["double", "huge", "huge"])), "more")
        for shill in ("x1", "x2"):
            rung = data.draw(st.sampled_from(["reserve", "double"]))
            self.commit(index, shill, rung, data.draw(st.sampled_from(["exact", "more"])))
        if a.start + 1 > self.fast.now + 1:
            self.fast.jump(a.start - self.fast.now)
        for bidder in honest:
            self.reveal(index, bidder, "own")
        rungs = [x for x in ("x1", "x2") if self.name(x) in a.bids]
        under = [x for x in rungs if a.bids[self.name(x)].amount < a.high_bid]
        if under:
            self.reveal(index, max(under, key=lambda x: a.bids[self.name(x)].amount), "own")
        if a.end + 1 > self.fast.now + 1:
            self.fast.jump(a.end - self.fast.now)
        deal_id = self.next_deal
        self.settle_sealed(index, False)
        for bidder in [*rungs, *honest]:
            self.reclaim(index, bidder, False)
        if self.deal_state.get(deal_id, (0,))[0] == 2:  # the winner, then maybe the seller, walk away
            live = sorted(d for d, v in self.deal_state.items() if v[0] == 2)
            self.unwind(live.index(deal_id), True)
            if data.draw(st.booleans()):
                self.unwind(live.index(deal_id), False)

    @precondition(lambda self: any(v[0] == 2 for v in self.deal_state.values()))
    @rule(i=st.integers(0, 10**6), by_buyer=st.booleans())
    def unwind(self, i: int, by_buyer: bool) -> None:
        """The winner or the seller of a cleared sale cancels the escrow deal on its own: the request is only
        recorded (the deal stays Funded, nothing moves); a cancel both ask for returns price and bond."""
        live = sorted(d for d, v in self.deal_state.items() if v[0] == 2)
        deal_id = live[i % len(live)]
        terms = self.deals[deal_id]
        assert terms is not None
        who = terms.buyer if by_buyer else terms.seller
        data = self.e.escrow.encode_abi("cancel", args=[deal_id, terms.as_tuple()])
        self.fast.tick()
        receipt = self.fast.send(self.e.eoas[who], self.e.escrow.address, data, 0, tick=False)
        assert receipt.ok, self.fast.simulate(who, self.e.escrow.address, data, 0)
        self.gas(who)
        _, buyer_asked, seller_asked = self.deal_state[deal_id]
        if (buyer_asked or by_buyer) and (seller_asked or not by_buyer):
            # the cancelling call records no flag of its own: only the earlier request stays set
            self.deal_state[deal_id] = (9, buyer_asked, seller_asked)
            esc = self.e.escrow.address
            for to, amount in ((terms.buyer, terms.amount), (terms.seller, terms.bond)):
                self.balances[(esc, terms.asset)] -= amount
                self.balances[(to, terms.asset)] += self.arrives(terms.asset, amount)
        else:
            self.deal_state[deal_id] = (2, buyer_asked or by_buyer, seller_asked or not by_buyer)

    # -- credits and time -------------------------------------------------------------------------------------

    @rule(
        kind=st.sampled_from([EN, DU, SE]), who=st.sampled_from(["b1", "b2", "b3"]), asset=st.integers(0, 2)
    )
    def withdraw(self, kind: AuctionKind, who: str, asset: int) -> None:
        addr, a = self.name(who), self.e.assets[asset]
        data = self.e.contracts[kind].encode_abi("withdraw", args=[a])
        amount = self.credits.get((kind, addr, a), 0)
        if amount == 0:
            self.act(kind, addr, data, 0, ("CreditsNothingToWithdraw", {"account": addr, "asset": a}))
            return
        self.act(kind, addr, data)
        self.credits[(kind, addr, a)] = 0
        c = self.e.contracts[kind].address
        self.balances[(c, a)] -= amount
        self.balances[(addr, a)] += self.arrives(a, amount)

    @rule(seconds=st.one_of(st.integers(1, 90), st.sampled_from([HOUR, 2 * HOUR])))
    def wait(self, seconds: int) -> None:
        self.fast.jump(seconds)

    @precondition(lambda self: self.auctions)
    @rule(
        i=st.integers(0, 10**6), which=st.sampled_from(["start", "end"]), offset=st.sampled_from([-1, 0, 1])
    )
    def wait_for_boundary(self, i: int, which: str, offset: int) -> None:
        keys = sorted(self.auctions)
        a = self.auctions[keys[i % len(keys)]]
        target = (a.start if which == "start" else a.end) + offset
        if target - 1 > self.fast.now:
            self.fast.jump(target - 1 - self.fast.now)

    # -- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def books_agree(self) -> None:
        self.count_step()
        e = self.e
        keys = sorted(self.auctions)
        calls = list(e.static_calls)
        calls += [
            (e.contracts[k].address, encode_call("getAuction(uint256)", ["uint256"], [i])) for k, i in keys
        ]
        bid_keys = [(i, b) for k, i in keys if k == SE for b in e.people[1:4]]
        calls += [
            (e.se.address, encode_call("bidOf(uint256,address)", ["uint256", "address"], [i, b]))
            for i, b in bid_keys
        ]
        calls += [
            (e.du.address, encode_call("priceAt(uint256,uint256)", ["uint256", "uint256"], [i, self.now()]))
            for k, i in keys
            if k == DU
        ]
        deal_ids = sorted(i for i, t in self.deals.items() if t is not None)
        calls += [
            (
                e.escrow.address,
                bytes.fromhex(e.escrow.encode_abi("verifyTerms", args=[i, self.deals[i].as_tuple()])[2:]),
            )
            for i in deal_ids
        ]
        watched = sorted(self.deal_state)
        calls += [(e.escrow.address, encode_call("dealStatus(uint256)", ["uint256"], [i])) for i in watched]
        raw, balances = self._read(calls)
        k = 0
        for key in e.credit_keys:
            assert as_uint(raw[k]) == self.credits.get(key, 0), f"credit {key}"
            k += 1
        for a in e.assets:
            locked, credits, fees = (as_uint(raw[k], j) for j in range(3))
            assert balances[(e.escrow.address, a)] == locked + credits + fees, f"escrow insolvent in {a}"
            k += 1
        assert as_uint(raw[k]) == self.next_deal, "settlements and escrow deals disagree"
        k += 1
        # §6.1 per auction contract and asset: balance == held high bids + credits
        for kind in (EN, DU, SE):
            c = e.contracts[kind].address
            for a in e.assets:
                if kind == SE:  # unreclaimed deposits, less the prices already sent to the escrow
                    held = sum(
                        b.deposit
                        for x in self.auctions.values()
                        if x.kind == SE and x.asset == a
                        for b in (x.bids or {}).values()
                    )
                    held -= sum(
                        x.clearing()
                        for x in self.auctions.values()
                        if x.kind == SE
                        and x.asset == a
                        and x.status == AS.SETTLED
                        and x.high_bidder in (x.bids or {})
                    )
                else:
                    held = sum(
                        x.high_bid
                        for x in self.auctions.values()
                        if x.kind == kind and x.asset == a and x.status == AS.ACTIVE
                    )
                # sellers' bonds, held until the sale settles or the auction closes unsold
                held += sum(x.bond for x in self.auctions.values() if x.kind == kind and x.asset == a)
                owed = sum(v for (kk, _, x), v in self.credits.items() if kk == kind and x == a)
                assert balances[(c, a)] == held + owed, f"{kind.value} insolvent in {a}"
        for key in keys:
            m = self.auctions[key]
            w = [as_uint(raw[k], j) for j in range(12)]
            if key[0] == SE:
                # seller, asset, highBidder, highBid, secondBid, reserve, commitEnd, revealEnd, penaltyBps, vickrey, status
                got = (w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10])
                want = (
                    m.high_bid,
                    m.second_bid,
                    m.reserve,
                    m.start,
                    m.end,
                    m.penalty_bps,
                    int(m.vickrey),
                    int(m.status),
                )
                assert int(w[2]) == int(m.high_bidder, 16)
            elif key[0] == EN:
                # seller, asset, highBidder, highBid, reserve, startTime, endTime, extension, minIncrementBps, status
                got = (w[3], w[4], w[5], w[6], w[7], w[8], w[9])
                want = (m.high_bid, m.reserve, m.start, m.end, m.extension, m.inc_bps, int(m.status))
                assert int(w[2]) == int(m.high_bidder, 16)
            else:
                # seller, asset, startPrice, floorPrice, startTime, endTime, status
                got = (w[2], w[3], w[4], w[5], w[6])
                want = (m.start_price, m.floor_price, m.start, m.end, int(m.status))
            assert got == want, f"{key}: chain {got}, model {want}"
            status = int(m.status)
            assert status >= self.seen.get(key, 0) and (
                self.seen.get(key, 1) == 1 or status == self.seen[key]
            )
            self.seen[key] = status
            assert self.settled.get(key, 0) == (1 if m.status in (AS.SETTLED, AS.NO_SALE) else 0)
            v = self.client_view[key]
            assert (v.status, v.leader, v.leading_amount, v.end_time) == (
                m.status,
                m.high_bidder,
                m.high_bid,
                m.start if key[0] == SE else m.end,
            ), f"client {v} != model {m}"
            if key[0] == SE:
                assert v.second_amount == m.second_bid
            k += 1
        for i, b in bid_keys:
            mb = (self.auctions[(SE, i)].bids or {}).get(b)
            committed, revealed, amount, deposit = (as_uint(raw[k], j) for j in range(4))
            want_bid = (
                (0, 0, 0, 0)
                if mb is None
                else (
                    1,
                    int(mb.revealed),
                    min(mb.amount, 2**96 - 1) if mb.revealed else 0,
                    mb.deposit if mb.revealed else 0,
                )
            )
            assert (committed, revealed, amount, deposit) == want_bid, f"bid of {b} in {i}"
            k += 1
        for key in keys:
            if key[0] != DU:
                continue
            m = self.auctions[key]
            price = as_uint(raw[k])
            k += 1
            assert price == m.price(self.now()) and m.floor_price <= price <= m.start_price  # §6.5
            if m.last_price is not None:
                assert price <= m.last_price, "Dutch price rose"
            m.last_price = price
        for i in deal_ids:
            assert as_uint(raw[k]) == 1, f"deal {i}: stored terms differ from the auction's"
            k += 1
        # §6.12: a one-sided cancel never unwinds a cleared sale (the deal stays Funded until both ask)
        for i in watched:
            state, _, buyer_asked, seller_asked = (as_uint(raw[k], j) for j in range(4))
            assert (state, bool(buyer_asked), bool(seller_asked)) == self.deal_state[i], f"deal {i}"
            k += 1
        # §6.12: forfeits never reach a seller; what the seller's shills forfeit goes to an honest winner
        for seller in (e.s1.address, e.s2.address):
            assert self.forfeit_income.get(seller, 0) == 0, f"seller {seller} received a forfeit"
        for key, paid in self.shill_forfeits.items():
            m = self.auctions[key]
            assert m.high_bidder not in (m.seller, ZERO_ADDRESS) and paid > 0
        for key, value in balances.items():
            if key[0] == e.escrow.address:
                continue
            assert value == self.balances[key], f"balance {key}: chain {value}, model {self.balances[key]}"

    def teardown(self) -> None:
        try:
            for (kind, i), m in self.auctions.items():
                rebuilt = self.e.client.auction(kind, i)
                assert (rebuilt.status, rebuilt.leader, rebuilt.leading_amount) == (
                    m.status,
                    m.high_bidder,
                    m.high_bid,
                )
        finally:
            super().teardown()


@pytest.mark.anvil
def test_auctions_machine(request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite) -> None:
    AuctionsMachine.env = Env(anvil, anvil_suite)
    # long profile (`make fuzz`): 300 examples of up to 50 steps, >= 10,000 steps for the auctions family
    run_machine(request, AuctionsMachine, AuctionsMachine.env.fast, long=(300, 50))
