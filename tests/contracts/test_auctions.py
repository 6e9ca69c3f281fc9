"""Auction singletons: English, Dutch, sealed-bid (first-price / Vickrey) and procurement.

Happy paths, every revert, t-1/t/t+1 boundaries, ties, hostile receivers, no-bid and reserve-not-met
outcomes, copied commitments, client pre-flight, and docs/design.md §6 invariants 4 (English increments and
credits), 5 (Dutch price), 6 (sealed reveal and Vickrey price) and 1 (solvency, checked after every test
for every auction contract and asset).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import assert_escrow_solvent, deploy, gas_cost, mint, send
from web3.logs import DISCARD

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.auctions import (
    AuctionClient,
    AuctionKind,
    AuctionStatus,
    DealTemplate,
    SaltStore,
    sealed_commitment,
)
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import ETH, ZERO_ADDRESS, DealState

E18 = 10**18
HOUR = 3600
SELLER_BOND = E18 // 10
E = errors.revert_class
EN, DU, SE, PR = AuctionKind.ENGLISH, AuctionKind.DUTCH, AuctionKind.SEALED, AuctionKind.PROCUREMENT


@pytest.fixture(scope="module")
def mocks(_embedded: tuple[Chain, Suite]) -> dict[str, Any]:
    chain, _ = _embedded
    out = {
        "token": deploy(chain, "MockERC20", "Mock USD", "mUSD", 18),
        "reverting": deploy(chain, "RevertingReceiver"),
        "burner": deploy(chain, "GasBurningReceiver"),
    }
    mint(chain, out["token"], chain.accounts[1:8], 1000 * E18)
    return out


class Env:
    def __init__(self, chain: Chain, suite: Suite, mocks: dict[str, Any]):
        self.chain, self.w3, self.suite, self.mocks = chain, chain.w3, suite, mocks
        self.owner, self.seller, self.alice, self.bob, self.carol, self.arbiter, self.other = chain.accounts[
            :7
        ]
        # event scans start at this test's first block (eth-tester's get_logs walks every block in range)
        start = chain.w3.eth.block_number + 1
        self.client = AuctionClient.from_suite(suite, self.seller, from_block=start)
        self.escrow = EscrowClient(chain, suite["AgentEscrow"], self.owner, from_block=start)
        self.c = {k: suite[k.value] for k in AuctionKind}

    def as_(self, account: Any, **kw: Any) -> AuctionClient:
        return self.client.as_(account, **kw)

    def send(self, account: Any, fn: Any, value: int = 0) -> Any:
        """Simulate on the pending block (typed revert), then send with a fixed gas limit."""
        return send(self.chain, account, fn, value)

    def reverts(self, name: str, account: Any, fn: Any, value: int = 0) -> Any:
        with pytest.raises(E(name)) as info:
            self.send(account, fn, value)
        return info.value

    def at(self, timestamp: int) -> None:
        self.chain.set_next_timestamp(timestamp)

    def terms(self, creator: Any = None, **kw: Any) -> DealTemplate:
        creator = creator or self.seller
        base: dict[str, Any] = {
            "creator": creator.address,
            "delivery_delay": 2 * HOUR,
            "promise_delay": HOUR,
            "terms_hash": b"\x42" * 32,
            "review_window": HOUR,
            "ruling_window": HOUR,
            # sales must bind both sides: a seller bond posted at creation and an arbiter (docs/design.md §6.12)
            "arbiter": self.arbiter.address,
            "bond": SELLER_BOND,
        }
        base.update(kw)
        return DealTemplate(**base)

    def bal(self, who: Any, asset: str = ETH) -> int:
        address = who if isinstance(who, str) else who.address
        return self.escrow.asset_balance(address, asset)

    def events(self, kind: AuctionKind, receipt: Any, name: str) -> list[Any]:
        return list(getattr(self.c[kind].events, name)().process_receipt(receipt, errors=DISCARD))

    def cost(self, receipt: Any) -> int:
        return gas_cost(receipt)

    # -- builders -------------------------------------------------------------------------------------------

    def english(
        self,
        *,
        reserve: int = E18,
        start: int | None = None,
        duration: int = HOUR,
        extension: int = 300,
        bps: int = 500,
        **kw: Any,
    ) -> Any:
        now = self.client.now()
        start = now + 10 if start is None else start
        return self.client.create_english(
            self.terms(**kw),
            reserve=reserve,
            start_time=start,
            end_time=start + duration,
            extension=extension,
            min_increment_bps=bps,
            approve=True,
        )

    def dutch(self, *, start_price: int = 2 * E18, floor: int = E18, duration: int = 1000, **kw: Any) -> Any:
        now = self.client.now()
        return self.client.create_dutch(
            self.terms(**kw),
            start_price=start_price,
            floor_price=floor,
            start_time=now + 10,
            end_time=now + 10 + duration,
            approve=True,
        )

    def sealed(self, *, reserve: int = E18 // 2, vickrey: bool = True, penalty: int = 1000, **kw: Any) -> Any:
        now = self.client.now()
        return self.client.create_sealed(
            self.terms(**kw),
            reserve=reserve,
            commit_end=now + 600,
            reveal_end=now + 1200,
            penalty_bps=penalty,
            vickrey=vickrey,
            approve=True,
        )

    def procurement(
        self, *, sealed: bool = False, budget: int = 5 * E18, bond: int = E18 // 10, **kw: Any
    ) -> Any:
        now = self.client.now()
        buyer = self.as_(self.seller)
        return buyer.create_procurement(
            self.terms(bond=bond, delivery_delay=HOUR, promise_delay=0, **kw),
            budget=budget,
            bid_end=now + 600,
            reveal_end=now + 1200 if sealed else 0,
            sealed_bids=sealed,
            price_weight=1,
            time_weight=10**14,
            max_delivery=86_400,
            penalty_bps=2000,
        )


@pytest.fixture
def env(chain: Chain, suite: Suite, mocks: dict[str, Any]) -> Iterator[Env]:
    e = Env(chain, suite, mocks)
    yield e
    for kind in AuctionKind:
        if int(e.c[kind].functions.nextAuctionId().call()) == 1:
            continue
        for asset in (ETH, mocks["token"].address):
            balance, owed = e.bal(e.c[kind].address, asset), _owed(e, kind, asset)
            assert balance == owed, f"{kind.value} insolvent in {asset}: balance {balance} != owed {owed}"
    assert_escrow_solvent(e.escrow, (ETH,))


def _owed(e: Env, kind: AuctionKind, asset: str) -> int:
    """docs/design.md §6.1 for an auction contract: what it owes in ``asset`` (locked bids/deposits/budgets plus
    credits), rebuilt from events and views independently of the contract's own bookkeeping."""
    contract = e.c[kind]
    auctions = []
    for auction_id in range(1, int(contract.functions.nextAuctionId().call())):
        with contextlib.suppress(errors.InvalidInput):  # created before this test's first block (none today)
            auctions.append(e.client.auction(kind, auction_id))
    holders = {e.mocks["reverting"].address, e.mocks["burner"].address}
    for a in auctions:
        holders |= {a.creator} | {b.bidder for b in a.bids}
    owed = sum(int(contract.functions.creditOf(h, asset).call()) for h in holders) if auctions else 0
    for a in auctions:
        view = contract.functions.getAuction(a.id).call()
        if kind in (EN, SE):  # docs/design.md §6.10: the client's rebuild equals the on-chain view
            assert (view[2], view[3]) == (a.leader, a.leading_amount) and AuctionStatus(view[-2]) == a.status
        if a.asset != asset:
            continue
        if kind in (EN, DU, SE) and a.status == AuctionStatus.ACTIVE:
            owed += a.terms.bond  # the seller's bond, held until settlement (standard tokens: as sent)
        if kind == EN and a.status == AuctionStatus.ACTIVE:
            owed += a.leading_amount
        elif kind == SE:
            for b in a.bids:
                committed, _, _, _ = contract.functions.bidOf(a.id, b.bidder).call()
                if committed:
                    owed += b.bond - (
                        a.price if a.status == AuctionStatus.SETTLED and b.bidder == a.winner else 0
                    )
        elif kind == PR:
            if a.status == AuctionStatus.ACTIVE:
                owed += a.budget
                if not a.sealed_bids and a.leader != ZERO_ADDRESS:
                    owed += next(b.bond for b in reversed(a.bids) if b.bidder == a.leader)
            if a.sealed_bids:
                for b in a.bids:
                    settled_winner = a.status == AuctionStatus.SETTLED and b.bidder == a.winner
                    if _proc_committed(e, a.id, b.bidder) and not settled_winner:
                        owed += b.bond
    return owed


def _proc_committed(e: Env, auction_id: int, provider: str) -> bool:
    # the record mapping is private: a reclaimed record emitted BondReclaimed
    logs = (
        e.c[PR]
        .events.BondReclaimed()
        .get_logs(from_block=e.client.from_block, argument_filters={"auctionId": auction_id})
    )
    return not any(log["args"]["provider"] == provider for log in logs)


# =================================================================================================
# English
# =================================================================================================


def test_english_happy_path_outbid_credit_and_settle_into_escrow(env: Env) -> None:
    a = env.english()
    env.chain.travel_to(a.start_time)
    alice, bob = env.as_(env.alice), env.as_(env.bob)
    a = alice.bid(a, E18)
    minimum = a.minimum_bid()
    assert minimum == E18 + E18 * 500 // 10_000 == env.c[EN].functions.minimumBid(a.id).call()
    credit_before = alice.credit(EN)
    a = bob.bid(a, minimum)
    # invariant 4: the high bid grew by at least the increment; the outbid party's credit grew by exactly its bid
    assert a.leading_amount - E18 >= E18 * 500 // 10_000
    assert alice.credit(EN) - credit_before == E18
    view = env.c[EN].functions.getAuction(a.id).call()
    assert (view[2], view[3]) == (env.bob.address, minimum)
    env.chain.travel_to(a.end_time + 1)
    a = env.as_(env.other).settle(a)  # permissionless
    assert a.status == AuctionStatus.SETTLED and a.winner == env.bob.address and a.price == minimum
    deal = env.escrow.deal(a.deal_id)
    t = deal.terms
    settled_at = env.chain.now()
    assert (t.buyer, t.seller, t.amount, t.asset) == (env.bob.address, env.seller.address, minimum, ETH)
    assert (t.promised_by, t.deliver_by) == (settled_at + HOUR, settled_at + 2 * HOUR)
    assert (
        t.terms_hash == b"\x42" * 32
        and deal.state == DealState.FUNDED
        and deal.opened_by == env.c[EN].address
    )
    before = env.bal(env.alice)
    receipt = env.send(env.alice, env.c[EN].functions.withdraw(ETH))
    assert env.bal(env.alice) == before + E18 - env.cost(receipt)
    env.reverts("AuctionInvalidState", env.other, env.c[EN].functions.settle(a.id, a.terms.as_tuple()))


def test_english_bid_window_boundaries(env: Env) -> None:
    a = env.english(extension=0)
    f = env.c[EN].functions
    env.at(a.start_time - 1)
    env.reverts("AuctionNotOpen", env.alice, f.bid(a.id, E18), E18)
    env.at(a.start_time)
    env.send(env.alice, f.bid(a.id, E18), E18)
    env.at(a.end_time)
    env.send(env.bob, f.bid(a.id, 2 * E18), 2 * E18)  # t == end: still open
    env.at(a.end_time + 1)
    env.reverts("AuctionBiddingClosed", env.carol, f.bid(a.id, 3 * E18), 3 * E18)
    env.at(a.end_time)
    env.reverts("AuctionNotEnded", env.other, f.settle(a.id, a.terms.as_tuple()))
    env.at(a.end_time + 1)
    env.send(env.other, f.settle(a.id, a.terms.as_tuple()))


def test_english_anti_sniping_extension(env: Env) -> None:
    a = env.english(extension=300)
    f = env.c[EN].functions
    env.at(a.end_time - 300)  # exactly `extension` left: no extension
    r = env.send(env.alice, f.bid(a.id, E18), E18)
    assert env.events(EN, r, "BidPlaced")[0]["args"]["endTime"] == a.end_time
    env.at(a.end_time - 299)  # less than `extension` left: the end moves `extension` later
    r = env.send(env.bob, f.bid(a.id, 2 * E18), 2 * E18)
    assert env.events(EN, r, "BidPlaced")[0]["args"]["endTime"] == a.end_time + 300
    env.at(a.end_time + 1)  # the old end has passed, the new one has not
    env.send(env.carol, f.bid(a.id, 3 * E18), 3 * E18)
    assert env.client.refresh(a).end_time == a.end_time + 600  # still inside the last 300 s: extended again


def test_english_reserve_increment_tie_and_value_reverts(env: Env) -> None:
    a = env.english(reserve=E18, bps=1000)
    env.chain.travel_to(a.start_time)
    f = env.c[EN].functions
    env.reverts("AuctionBidTooLow", env.alice, f.bid(a.id, E18 - 1), E18 - 1)
    env.reverts("AuctionWrongValue", env.alice, f.bid(a.id, E18), E18 - 1)
    env.reverts("AuctionUnauthorized", env.seller, f.bid(a.id, E18), E18)
    env.send(env.alice, f.bid(a.id, E18), E18)
    # tie: an equal bid never outbids, the earlier bidder keeps the lead
    err = env.reverts("AuctionBidTooLow", env.bob, f.bid(a.id, E18), E18)
    assert err.minimum == E18 + E18 // 10
    env.reverts("AuctionBidTooLow", env.bob, f.bid(a.id, E18 + E18 // 10 - 1), E18 + E18 // 10 - 1)
    env.send(env.bob, f.bid(a.id, E18 + E18 // 10), E18 + E18 // 10)
    # zero increment still needs +1 wei
    b = env.english(bps=0)
    env.chain.travel_to(b.start_time)
    env.send(env.alice, f.bid(b.id, E18), E18)
    env.reverts("AuctionBidTooLow", env.bob, f.bid(b.id, E18), E18)
    env.send(env.bob, f.bid(b.id, E18 + 1), E18 + 1)
    env.reverts("AuctionInvalidState", env.alice, f.bid(999, E18), E18)


def test_english_cancel_rules_and_no_bid(env: Env) -> None:
    f = env.c[EN].functions
    a = env.english()
    env.reverts("AuctionUnauthorized", env.alice, f.cancel(a.id))
    env.send(env.seller, f.cancel(a.id))
    env.reverts("AuctionInvalidState", env.alice, f.bid(a.id, E18), E18)
    env.reverts("AuctionInvalidState", env.seller, f.cancel(a.id))
    b = env.english()
    env.chain.travel_to(b.start_time)
    env.as_(env.alice).bid(b, E18)
    env.reverts("AuctionInvalidState", env.seller, f.cancel(b.id))  # only before the first bid
    with pytest.raises(errors.InvalidState):
        env.client.cancel(b)
    c = env.english()
    env.chain.travel_to(c.end_time + 1)
    c = env.client.settle(c)
    assert c.status == AuctionStatus.NO_SALE and c.deal_id == 0
    env.reverts("AuctionTermsMismatch", env.other, f.settle(b.id, env.terms(delivery_delay=999).as_tuple()))


def test_english_create_validation(env: Env) -> None:
    f = env.c[EN].functions
    now = env.client.now()
    t = env.terms().as_tuple()
    env.reverts("AuctionInvalidAmount", env.seller, f.create((0, now + 5, now + 100, 0, 0), t))
    env.reverts("AuctionInvalidTimes", env.seller, f.create((1, now + 100, now + 100, 0, 0), t))
    env.reverts("AuctionInvalidTimes", env.seller, f.create((1, now - 1, now + 100, 0, 0), t))
    env.reverts("AuctionInvalidBps", env.seller, f.create((1, now + 5, now + 100, 0, 10_001), t))
    for bad in (
        env.terms(delivery_delay=0),
        env.terms(promise_delay=3 * HOUR),
        env.terms(arbiter=env.seller.address),
        env.terms(penalty_cap_bps=10_001),
        env.terms(creator=env.alice),
    ):
        env.reverts(
            "AuctionInvalidTerms", env.seller, f.create((1, now + 5, now + 100, 0, 0), bad.as_tuple())
        )
    assert env.c[EN].functions.hashTemplate(t).call() == env.terms().hash()


def test_english_reverting_bidder_cannot_freeze_and_withdraws_elsewhere(env: Env) -> None:
    hostile = env.mocks["reverting"]
    a = env.english()
    env.chain.travel_to(a.start_time)
    f = env.c[EN].functions
    env.send(
        env.alice,
        hostile.functions.execute(env.c[EN].address, f.bid(a.id, E18)._encode_transaction_data()),
        E18,
    )
    env.as_(env.bob).bid(a, 2 * E18)  # outbidding the hostile contract costs nothing extra
    assert env.c[EN].functions.creditOf(hostile.address, ETH).call() == E18
    env.chain.travel_to(a.end_time + 1)
    assert env.client.settle(a).status == AuctionStatus.SETTLED
    before = env.bal(env.carol)
    env.send(
        env.alice,
        hostile.functions.execute(
            env.c[EN].address, f.withdrawTo(ETH, env.carol.address)._encode_transaction_data()
        ),
    )
    assert env.bal(env.carol) == before + E18
    env.reverts("CreditsNothingToWithdraw", env.alice, f.withdraw(ETH))


def test_english_void_sale_when_winner_is_arbiter_or_market_removed(env: Env) -> None:
    a = env.english(arbiter=env.arbiter.address)
    env.chain.travel_to(a.start_time)
    env.as_(env.arbiter).bid(a, E18)
    env.chain.travel_to(a.end_time + 1)
    a = env.client.settle(a)
    assert a.status == AuctionStatus.NO_SALE and env.as_(env.arbiter).credit(EN) == E18
    b = env.english()
    env.chain.travel_to(b.start_time)
    env.as_(env.alice).bid(b, E18)
    env.chain.travel_to(b.end_time + 1)
    # issue 12, point 11: delisting a market (announced MARKET_DELAY ahead) does not void its pending sales
    env.send(env.owner, env.escrow.contract.functions.setMarket(env.c[EN].address, False))
    b = env.client.settle(b)
    assert b.status == AuctionStatus.SETTLED and b.winner == env.alice.address and b.deal_id


def test_english_erc20_bids_and_settlement(env: Env) -> None:
    token = env.mocks["token"].address
    a = env.english(asset=token)
    env.chain.travel_to(a.start_time)
    alice, bob = env.as_(env.alice), env.as_(env.bob)
    with pytest.raises(errors.InsufficientAllowance):
        alice.bid(a, E18)
    alice.bid(a, E18, approve=True)
    bob.bid(a, 2 * E18, approve=True)
    assert alice.credit(EN, asset=token) == E18
    env.reverts("AuctionWrongValue", env.carol, env.c[EN].functions.bid(a.id, 3 * E18), 1)
    env.chain.travel_to(a.end_time + 1)
    escrow_before = env.bal(env.escrow.address, token)
    a = env.client.settle(a)
    assert env.bal(env.escrow.address, token) == escrow_before + 2 * E18 + SELLER_BOND  # price + bond
    assert env.escrow.deal(a.deal_id).terms.amount == 2 * E18
    assert alice.withdraw(EN, token) == E18


def test_english_client_preflight_spends_no_gas(env: Env) -> None:
    a = env.english()
    alice = env.as_(env.alice)
    nonce = env.w3.eth.get_transaction_count(env.alice.address)
    with pytest.raises(errors.InvalidState):
        alice.bid(a, E18)  # not open yet
    env.chain.travel_to(a.start_time)
    with pytest.raises(errors.InvalidInput):
        alice.bid(a, E18 - 1)  # below the reserve
    with pytest.raises(errors.NotAuthorized):
        env.client.bid(a, E18)  # the seller
    with pytest.raises(errors.InvalidState):
        alice.settle(a)  # not ended
    alice.bid(a, E18)
    with pytest.raises(errors.InvalidInput):
        env.as_(env.bob).bid(a, E18 + 1)  # below the increment
    env.chain.travel_to(a.end_time + 1)
    with pytest.raises(errors.InvalidState):
        env.as_(env.bob).bid(a, 5 * E18)  # over
    assert env.w3.eth.get_transaction_count(env.alice.address) == nonce + 1


# =================================================================================================
# Dutch
# =================================================================================================


def test_dutch_price_curve_matches_contract_and_never_rises(env: Env) -> None:
    a = env.dutch(start_price=2 * E18 + 7, floor=E18 + 3, duration=997)
    f = env.c[DU].functions
    last = None
    for t in [
        a.start_time - 5,
        a.start_time,
        *range(a.start_time + 1, a.end_time + 3, 37),
        a.end_time,
        a.end_time + 1,
    ]:
        local = a.price_at(t)
        assert local == f.priceAt(a.id, t).call()
        assert a.floor_price <= local <= a.start_price  # invariant 5
        assert last is None or local <= last
        last = local
    env.chain.travel_to(a.start_time + 123)
    assert env.client.dutch_price(a, env.chain.now()) == f.currentPrice(a.id).call()


def test_dutch_buy_overpayment_returned_and_single_winner(env: Env) -> None:
    a = env.dutch()
    env.chain.travel_to(a.start_time + 400)
    t = a.start_time + 500
    env.at(t)
    price = a.price_at(t)
    before = env.bal(env.alice)
    r = env.send(env.alice, env.c[DU].functions.buy(a.id, 3 * E18, a.terms.as_tuple()), 3 * E18)
    assert env.bal(env.alice) == before - price - env.cost(r)  # overpayment back in the same transaction
    a = env.client.refresh(a)
    assert (a.status, a.winner, a.price) == (AuctionStatus.SETTLED, env.alice.address, price)
    deal = env.escrow.deal(a.deal_id)
    assert (deal.terms.buyer, deal.terms.seller, deal.terms.amount) == (
        env.alice.address,
        env.seller.address,
        price,
    )
    env.reverts(
        "AuctionInvalidState", env.bob, env.c[DU].functions.buy(a.id, 3 * E18, a.terms.as_tuple()), 3 * E18
    )
    with pytest.raises(errors.InvalidState):
        env.as_(env.bob).buy(a)


def test_dutch_boundaries_and_reverts(env: Env) -> None:
    a = env.dutch()
    f = env.c[DU].functions
    t = a.terms.as_tuple()
    env.at(a.start_time - 1)
    env.reverts("AuctionNotOpen", env.alice, f.buy(a.id, 3 * E18, t), 3 * E18)
    env.at(a.start_time)
    env.reverts("AuctionPriceAboveMax", env.alice, f.buy(a.id, 2 * E18 - 1, t), 3 * E18)
    env.at(a.start_time)
    env.reverts("AuctionBidTooLow", env.alice, f.buy(a.id, 2 * E18, t), 2 * E18 - 1)
    env.reverts("AuctionUnauthorized", env.seller, f.buy(a.id, 3 * E18, t), 3 * E18)
    env.reverts(
        "AuctionTermsMismatch", env.alice, f.buy(a.id, 3 * E18, env.terms(bond=1).as_tuple()), 3 * E18
    )
    env.at(a.end_time + 1)
    env.reverts("AuctionBiddingClosed", env.alice, f.buy(a.id, 3 * E18, t), 3 * E18)
    env.at(a.end_time)
    env.send(env.alice, f.buy(a.id, E18, t), E18)  # t == end: floor price
    assert env.client.refresh(a).price == E18
    b = env.dutch()
    env.reverts("AuctionUnauthorized", env.alice, f.cancel(b.id))
    assert env.client.cancel(b).status == AuctionStatus.CANCELLED
    env.reverts(
        "AuctionInvalidAmount",
        env.seller,
        f.create((E18, 2 * E18, env.client.now() + 5, env.client.now() + 50), t),
    )
    c = env.dutch(arbiter=env.arbiter.address)
    env.chain.travel_to(c.start_time)
    env.reverts("AuctionDealUnavailable", env.arbiter, f.buy(c.id, 3 * E18, c.terms.as_tuple()), 3 * E18)


@pytest.mark.parametrize("receiver", ["reverting", "burner"])
def test_dutch_hostile_buyer_overpayment_is_credited(env: Env, receiver: str) -> None:
    hostile = env.mocks[receiver]
    a = env.dutch()
    env.chain.travel_to(a.start_time)
    f = env.c[DU].functions
    env.at(a.start_time + 1)
    price = a.price_at(a.start_time + 1)
    env.send(
        env.alice,
        hostile.functions.execute(
            env.c[DU].address, f.buy(a.id, 3 * E18, a.terms.as_tuple())._encode_transaction_data()
        ),
        3 * E18,
    )
    assert f.creditOf(hostile.address, ETH).call() == 3 * E18 - price
    assert env.client.refresh(a).winner == hostile.address


def test_dutch_erc20_buy_goes_straight_to_escrow(env: Env) -> None:
    token = env.mocks["token"].address
    a = env.dutch(asset=token)
    env.chain.travel_to(a.start_time + 100)
    alice = env.as_(env.alice)
    with pytest.raises(errors.InvalidInput):
        alice.buy(a, max_price=1)
    before = env.bal(env.escrow.address, token)
    a = alice.buy(a, max_price=2 * E18, approve=True)
    assert env.bal(env.escrow.address, token) == before + a.price + SELLER_BOND  # price + seller bond
    assert env.bal(env.c[DU].address, token) == 0


# =================================================================================================
# Sealed bid
# =================================================================================================


def _commit_all(env: Env, a: Any, bids: list[tuple[Any, int, int]]) -> dict[str, AuctionClient]:
    clients = {}
    for account, amount, deposit in bids:
        client = env.as_(account)
        client.commit(a, amount, deposit=deposit)
        clients[account.address] = client
    return clients


def test_sealed_vickrey_winner_pays_second_price_and_losers_reclaim(env: Env) -> None:
    a = env.sealed(reserve=E18 // 2)
    clients = _commit_all(
        env, a, [(env.alice, 3 * E18, 5 * E18), (env.bob, 2 * E18, 2 * E18), (env.carol, E18, 4 * E18)]
    )
    env.chain.travel_to(a.end_time + 1)
    for c in clients.values():
        c.reveal(a)
    a = env.client.refresh(a)
    assert (a.leader, a.leading_amount, a.second_amount) == (env.alice.address, 3 * E18, 2 * E18)
    assert env.c[SE].functions.clearingPrice(a.id).call() == a.clearing_price() == 2 * E18
    # a revealed loser reclaims at once
    assert clients[env.carol.address].reclaim(a) == 4 * E18
    with pytest.raises(errors.InvalidState):
        clients[env.alice.address].reclaim(a)  # the leader waits for settlement
    env.reverts("AuctionInvalidState", env.alice, env.c[SE].functions.reclaim(a.id, b"\x00" * 32, 0))
    env.chain.travel_to(a.reveal_end + 1)
    a = env.client.settle(a)
    assert (a.winner, a.price) == (env.alice.address, 2 * E18)  # invariant 6: max(second, reserve)
    assert env.escrow.deal(a.deal_id).terms.amount == 2 * E18
    assert clients[env.alice.address].reclaim(a) == 3 * E18  # deposit 5 minus price 2
    assert clients[env.bob.address].reclaim(a) == 2 * E18
    env.reverts("AuctionNoCommitment", env.bob, env.c[SE].functions.reclaim(a.id, b"\x00" * 32, 0))


def test_sealed_first_price_and_single_bid_vickrey_pays_reserve(env: Env) -> None:
    a = env.sealed(vickrey=False)
    clients = _commit_all(env, a, [(env.alice, 3 * E18, 3 * E18), (env.bob, 2 * E18, 2 * E18)])
    env.chain.travel_to(a.end_time + 1)
    for c in clients.values():
        c.reveal(a)
    env.chain.travel_to(a.reveal_end + 1)
    assert env.client.settle(a).price == 3 * E18
    b = env.sealed(reserve=E18, vickrey=True)
    _commit_all(env, b, [(env.alice, 3 * E18, 3 * E18)])
    env.chain.travel_to(b.end_time + 1)
    env.as_(env.alice).reveal(b)
    env.chain.travel_to(b.reveal_end + 1)
    assert env.client.settle(b).price == E18


def test_sealed_tie_first_revealed_wins_and_pays_tied_amount(env: Env) -> None:
    a = env.sealed()
    clients = _commit_all(env, a, [(env.bob, 2 * E18, 2 * E18), (env.alice, 2 * E18, 2 * E18)])
    env.chain.travel_to(a.end_time + 1)
    clients[env.bob.address].reveal(a)
    clients[env.alice.address].reveal(a)
    env.chain.travel_to(a.reveal_end + 1)
    a = env.client.settle(a)
    assert (a.winner, a.price) == (env.bob.address, 2 * E18)


def test_sealed_reserve_not_met_and_no_bids(env: Env) -> None:
    a = env.sealed(reserve=5 * E18)
    alice = env.as_(env.alice)
    with pytest.raises(errors.InvalidInput):
        alice.commit(a, E18)  # pre-flight: could never win
    f = env.c[SE].functions
    commitment = f.commitmentOf(env.alice.address, a.id, E18, b"\x01" * 32).call()
    env.send(env.alice, f.commit(a.id, commitment, E18), E18)
    env.chain.travel_to(a.end_time + 1)
    r = env.send(env.alice, f.reveal(a.id, E18, b"\x01" * 32, E18))
    assert env.events(SE, r, "BidRevealed")[0]["args"]["eligible"] is False
    env.chain.travel_to(a.reveal_end + 1)
    a = env.client.settle(a)
    assert a.status == AuctionStatus.NO_SALE
    assert env.send(env.alice, f.reclaim(a.id, b"\x00" * 32, 0))
    b = env.sealed()
    env.chain.travel_to(b.reveal_end + 1)
    assert env.client.settle(b).status == AuctionStatus.NO_SALE


def test_sealed_copied_commitment_cannot_be_revealed_by_copier(env: Env) -> None:
    a = env.sealed()
    f = env.c[SE].functions
    salt = b"\x09" * 32
    commitment = sealed_commitment(
        env.alice.address, a.id, env.chain.chain_id, env.c[SE].address, 3 * E18, salt
    )
    assert commitment == f.commitmentOf(env.alice.address, a.id, 3 * E18, salt).call()
    env.send(env.alice, f.commit(a.id, commitment, 3 * E18), 3 * E18)
    env.send(env.bob, f.commit(a.id, commitment, 3 * E18), 3 * E18)  # copied from the mempool / event
    env.chain.travel_to(a.end_time + 1)
    env.reverts("AuctionInvalidReveal", env.bob, f.reveal(a.id, 3 * E18, salt, 3 * E18))
    env.reverts("AuctionInvalidReveal", env.alice, f.reveal(a.id, 3 * E18, b"\x08" * 32, 3 * E18))
    env.reverts("AuctionInvalidReveal", env.alice, f.reveal(a.id, 3 * E18, salt, 2 * E18))
    env.send(env.alice, f.reveal(a.id, 3 * E18, salt, 3 * E18))
    env.reverts("AuctionAlreadyRevealed", env.alice, f.reveal(a.id, 3 * E18, salt, 3 * E18))
    env.reverts("AuctionNoCommitment", env.carol, f.reveal(a.id, 3 * E18, salt, 3 * E18))
    # the copier never revealed: it loses the penalty after the reveal window
    env.chain.travel_to(a.reveal_end + 1)
    seller_before, winner_before = env.bal(env.seller), env.bal(env.alice)
    r = env.send(env.bob, f.reclaim(a.id, commitment, 3 * E18))
    args = env.events(SE, r, "DepositReclaimed")[0]["args"]
    assert (args["refund"], args["penalty"]) == (3 * E18 * 9 // 10, 3 * E18 // 10)
    # the forfeit goes to the winner, never to the seller (docs/design.md §6.12: shills must cost the seller)
    assert env.bal(env.seller) == seller_before
    assert env.bal(env.alice) == winner_before + 3 * E18 // 10


def test_sealed_windows_and_commit_reverts(env: Env) -> None:
    a = env.sealed()
    f = env.c[SE].functions
    salt = b"\x05" * 32
    c = f.commitmentOf(env.alice.address, a.id, E18, salt).call()
    env.reverts("AuctionUnauthorized", env.seller, f.commit(a.id, c, E18), E18)
    env.reverts("AuctionWrongValue", env.alice, f.commit(a.id, c, E18), E18 - 1)
    env.reverts("AuctionInvalidAmount", env.alice, f.commit(a.id, c, 0), 0)
    env.send(env.alice, f.commit(a.id, c, E18), E18)
    env.reverts("AuctionAlreadyCommitted", env.alice, f.commit(a.id, c, E18), E18)
    c2 = f.commitmentOf(env.bob.address, a.id, E18, salt).call()
    env.at(a.end_time - 1)
    env.reverts("AuctionRevealWindow", env.alice, f.reveal(a.id, E18, salt, E18))
    env.at(a.end_time)
    env.reverts("AuctionRevealWindow", env.alice, f.reveal(a.id, E18, salt, E18))  # t == commitEnd: not yet
    env.send(env.bob, f.commit(a.id, c2, E18), E18)  # t == commitEnd: still open
    env.at(a.end_time + 1)
    env.reverts("AuctionBiddingClosed", env.carol, f.commit(a.id, c2, E18), E18)
    env.at(a.reveal_end + 1)
    env.reverts("AuctionRevealWindow", env.alice, f.reveal(a.id, E18, salt, E18))
    env.at(a.reveal_end)
    env.reverts("AuctionNotEnded", env.other, f.settle(a.id, a.terms.as_tuple()))
    env.reverts("AuctionNotEnded", env.alice, f.reclaim(a.id, c, E18))  # unrevealed, window still open
    env.send(env.alice, f.reveal(a.id, E18, salt, E18))  # t == revealEnd: still open
    env.at(a.reveal_end + 1)
    env.send(env.other, f.settle(a.id, a.terms.as_tuple()))
    env.reverts("AuctionInvalidState", env.other, f.settle(a.id, a.terms.as_tuple()))
    now = env.client.now()
    env.reverts(
        "AuctionInvalidTimes", env.seller, f.create((1, now + 10, now + 10, 0, True), a.terms.as_tuple())
    )
    env.reverts(
        "AuctionInvalidBps", env.seller, f.create((1, now + 10, now + 20, 10_001, True), a.terms.as_tuple())
    )


def test_sealed_over_deposit_and_bid_above_deposit(env: Env) -> None:
    a = env.sealed()
    f = env.c[SE].functions
    salt = b"\x03" * 32
    for who, amount, deposit in ((env.alice, 3 * E18, 2 * E18), (env.bob, E18, 10 * E18)):
        env.send(
            who, f.commit(a.id, f.commitmentOf(who.address, a.id, amount, salt).call(), deposit), deposit
        )
    env.chain.travel_to(a.end_time + 1)
    r = env.send(env.alice, f.reveal(a.id, 3 * E18, salt, 2 * E18))
    assert env.events(SE, r, "BidRevealed")[0]["args"]["eligible"] is False  # bid above its deposit
    env.send(env.bob, f.reveal(a.id, E18, salt, 10 * E18))
    env.chain.travel_to(a.reveal_end + 1)
    a = env.client.settle(a)
    assert (a.winner, a.price) == (env.bob.address, E18 // 2)  # alone: pays the reserve
    assert env.c[SE].functions.bidOf(a.id, env.bob.address).call() == [True, True, E18, 10 * E18]
    r = env.send(env.bob, f.reclaim(a.id, b"\x00" * 32, 0))
    assert env.events(SE, r, "DepositReclaimed")[0]["args"]["refund"] == 10 * E18 - E18 // 2


def test_salt_file_survives_client_restart(env: Env, tmp_path: Any) -> None:
    path = tmp_path / "salts.json"
    a = env.sealed()
    alice = env.as_(env.alice, salts=path)
    secret = alice.commit(a, 2 * E18, deposit=3 * E18)
    stored = json.loads(path.read_text())
    assert next(iter(stored.values()))["salt"] == secret.salt.hex()
    assert secret.salt.hex() not in repr(alice.salts)
    restarted = env.as_(env.alice, salts=SaltStore(path))  # a new process reading the same file
    nonce = env.w3.eth.get_transaction_count(env.alice.address)
    with pytest.raises(errors.InvalidState):
        restarted.reveal(a)  # pre-flight: the reveal window has not opened
    with pytest.raises(errors.InvalidState):
        restarted.commit(a, E18)  # pre-flight: one commitment per bidder
    assert env.w3.eth.get_transaction_count(env.alice.address) == nonce
    env.chain.travel_to(a.end_time + 1)
    a = restarted.reveal(a)
    assert a.leader == env.alice.address and a.leading_amount == 2 * E18
    with pytest.raises(errors.InvalidState):
        env.as_(env.bob).reveal(a)  # no stored secret


def test_sealed_reverting_bidder_refund_is_credited(env: Env) -> None:
    hostile = env.mocks["reverting"]
    a = env.sealed()
    f = env.c[SE].functions
    salt = b"\x02" * 32
    c = f.commitmentOf(hostile.address, a.id, E18, salt).call()
    via = hostile.functions.execute
    env.send(
        env.alice, via(env.c[SE].address, f.commit(a.id, c, 2 * E18)._encode_transaction_data()), 2 * E18
    )
    env.chain.travel_to(a.end_time + 1)
    env.send(env.alice, via(env.c[SE].address, f.reveal(a.id, E18, salt, 2 * E18)._encode_transaction_data()))
    env.chain.travel_to(a.reveal_end + 1)
    env.client.settle(a)
    env.send(env.alice, via(env.c[SE].address, f.reclaim(a.id, c, 0)._encode_transaction_data()))
    assert f.creditOf(hostile.address, ETH).call() == 2 * E18 - E18 // 2


# =================================================================================================
# Procurement
# =================================================================================================


def test_procurement_open_lowest_score_wins_and_deal_carries_bond_and_delivery(env: Env) -> None:
    a = env.procurement()
    p1, p2, p3 = env.as_(env.alice), env.as_(env.bob), env.as_(env.carol)
    p1.offer(a, 4 * E18, 7200)
    a = p2.offer(a, 3 * E18, 3600)  # 3e18 + 3.6e17 < 4e18 + 7.2e17
    assert p1.credit(PR) == E18 // 10  # displaced bond credited
    with pytest.raises(errors.InvalidInput):
        p3.offer(a, 3 * E18, 3600)  # equal score does not beat (pre-flight)
    env.reverts(
        "AuctionScoreNotBetter", env.carol, env.c[PR].functions.bid(a.id, 3 * E18, 3600, E18 // 10), E18 // 10
    )
    env.chain.travel_to(a.end_time + 1)
    buyer_before = env.bal(env.seller)
    a = env.as_(env.other).settle(a)
    assert (a.winner, a.price) == (env.bob.address, 3 * E18)
    assert env.bal(env.seller) == buyer_before + 2 * E18  # unspent budget back
    deal = env.escrow.deal(a.deal_id)
    settled_at = env.chain.now()
    t = deal.terms
    assert (t.buyer, t.seller, t.amount, t.bond) == (env.seller.address, env.bob.address, 3 * E18, E18 // 10)
    assert (t.promised_by, t.deliver_by) == (settled_at + 3600, settled_at + 3600 + HOUR)
    assert deal.state == DealState.FUNDED


def test_procurement_offer_rules_and_modes(env: Env) -> None:
    a = env.procurement()
    f = env.c[PR].functions
    bond = E18 // 10
    env.reverts("AuctionInvalidOffer", env.alice, f.bid(a.id, 6 * E18, 10, bond), bond)  # above budget
    env.reverts("AuctionInvalidOffer", env.alice, f.bid(a.id, 0, 10, bond), bond)
    env.reverts("AuctionInvalidOffer", env.alice, f.bid(a.id, E18, 86_401, bond), bond)  # too slow
    env.reverts("AuctionInvalidOffer", env.alice, f.bid(a.id, E18, 10, bond - 1), bond - 1)  # bond too low
    env.reverts("AuctionUnauthorized", env.seller, f.bid(a.id, E18, 10, bond), bond)
    env.reverts("AuctionWrongMode", env.alice, f.commit(a.id, b"\x01" * 32, bond), bond)
    env.reverts("AuctionWrongMode", env.alice, f.reveal(a.id, E18, 10, b"\x01" * 32, bond))
    env.at(a.end_time)
    env.send(env.alice, f.bid(a.id, E18, 10, bond), bond)  # t == bidEnd: open
    env.at(a.end_time + 1)
    env.reverts("AuctionBiddingClosed", env.bob, f.bid(a.id, E18 // 2, 10, bond), bond)
    now = env.client.now()
    t = env.terms(bond=bond).as_tuple()
    env.reverts("AuctionWrongValue", env.seller, f.create((E18, now + 60, 0, 0, False, 1, 0, 10), t), E18 - 1)
    env.reverts("AuctionInvalidAmount", env.seller, f.create((E18, now + 60, 0, 0, False, 0, 0, 10), t), E18)
    env.reverts(
        "AuctionInvalidTimes", env.seller, f.create((E18, now + 60, now + 60, 0, True, 1, 0, 10), t), E18
    )


def test_procurement_no_offer_returns_budget(env: Env) -> None:
    a = env.procurement()
    env.chain.travel_to(a.end_time + 1)
    before = env.bal(env.seller)
    r = env.send(env.other, env.c[PR].functions.settle(a.id, a.terms.as_tuple()))
    assert env.bal(env.seller) == before + 5 * E18 and r
    assert env.client.refresh(a).status == AuctionStatus.NO_SALE


def test_procurement_sealed_commit_reveal_tie_and_non_revealer_penalty(env: Env) -> None:
    a = env.procurement(sealed=True)
    p = {acc.address: env.as_(acc) for acc in (env.alice, env.bob, env.carol)}
    p[env.bob.address].commit_offer(a, 2 * E18, 3600)  # score 2.36e18
    p[env.alice.address].commit_offer(a, 2 * E18, 3600)  # same score
    p[env.carol.address].commit_offer(a, E18, 60)  # best score, but never revealed
    env.chain.travel_to(a.end_time + 1)
    p[env.bob.address].reveal(a)
    a = p[env.alice.address].reveal(a)
    assert a.leader == env.bob.address  # tie: first revealed wins
    env.chain.travel_to(a.reveal_end + 1)
    a = env.client.settle(a)
    assert (a.winner, a.price) == (env.bob.address, 2 * E18)
    assert env.escrow.deal(a.deal_id).terms.bond == E18 // 10
    assert p[env.alice.address].reclaim(a) == E18 // 10
    buyer_before = env.bal(env.seller)
    assert p[env.carol.address].reclaim(a) == E18 // 10 - E18 // 50  # 20% penalty
    assert env.bal(env.seller) == buyer_before + E18 // 50
    assert p[env.bob.address].reclaim(a) == 0  # the winner's bond backs the escrow deal
    env.reverts("AuctionNoCommitment", env.bob, env.c[PR].functions.reclaim(a.id, b"\x00" * 32, 0))
