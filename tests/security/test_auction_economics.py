"""Strategic rule-followers against the auctions (issue 12, points 1, 3, 4 and 5; docs/design.md §6.12).

Each test plays one attack that worked on the v1 contracts and shows what now stops it:

- point 3, free options on a cleared sale: a griefer outbids everyone and takes the bid back by cancelling
  the AwaitingBond deal; a seller voids a low clearing price the same way. Now the seller's bond is posted
  at creation, the deal opens Funded, neither side cancels alone, and a seller that walks away loses its
  bond to the buyer;
- point 4, sealed bids: the default commit published the bid (deposit = bid), and a Vickrey seller's
  shill ladder raised the price while its forfeits went back to the seller. Now the default deposit is a
  bucket and forfeits go to the winner;
- point 5, procurement promises: a 0 s promise beat a cheaper honest offer and delivered 10 h late for free.
  Now each second late costs what it was worth in the score;
- point 1, procurement (and sales) without protection for the buyer: refused by the client before any
  transaction unless explicitly opted in; sell-side auctions refuse it in the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import assert_escrow_solvent, gas_cost, send

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.auctions import AuctionClient, AuctionKind, DealTemplate, deposit_bucket
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import ETH, ZERO_ADDRESS, DealState

E18 = 10**18
HOUR = 3600
BOND = E18 // 10
E = errors.revert_class
EN, DU, SE, PR = AuctionKind.ENGLISH, AuctionKind.DUTCH, AuctionKind.SEALED, AuctionKind.PROCUREMENT


class Arena:
    def __init__(self, chain: Chain, suite: Suite):
        self.chain, self.suite = chain, suite
        a = chain.accounts
        self.seller, self.alice, self.bob, self.arbiter, self.shills = a[1], a[2], a[3], a[4], a[5:9]
        start = chain.w3.eth.block_number + 1
        self.client = AuctionClient.from_suite(suite, self.seller, from_block=start)
        self.escrow = EscrowClient(chain, suite["AgentEscrow"], a[0], from_block=start)
        self.esc = suite["AgentEscrow"].functions

    def as_(self, account: Any) -> AuctionClient:
        return self.client.as_(account)

    def terms(self, creator: Any = None, **kw: Any) -> DealTemplate:
        base: dict[str, Any] = {
            "creator": (creator or self.seller).address,
            "arbiter": self.arbiter.address,
            "bond": BOND,
            "delivery_delay": 2 * HOUR,
            "promise_delay": HOUR,
            "review_window": HOUR,
            "ruling_window": HOUR,
        }
        base.update(kw)
        return DealTemplate(**base)

    def bal(self, who: Any) -> int:
        return self.escrow.asset_balance(who if isinstance(who, str) else who.address, ETH)

    def sale(self, kind: AuctionKind, winner: Any, price: int) -> Any:
        """Run a sell-side auction of ``kind`` that ``winner`` wins at ``price``; return the settled auction."""
        now = self.client.now()
        if kind == EN:
            a = self.client.create_english(
                self.terms(), reserve=price, start_time=now + 5, end_time=now + 5 + HOUR
            )
            self.chain.travel_to(a.start_time)
            self.as_(winner).bid(a, price)
            self.chain.travel_to(a.end_time + 1)
            return self.client.settle(a)
        if kind == DU:
            a = self.client.create_dutch(
                self.terms(), start_price=price, floor_price=price, start_time=now + 5, end_time=now + 505
            )
            self.chain.travel_to(a.start_time)
            return self.as_(winner).buy(a, max_price=price)
        a = self.client.create_sealed(
            self.terms(), reserve=price, commit_end=now + 600, reveal_end=now + 1200
        )
        self.as_(winner).commit(a, price)
        self.chain.travel_to(a.end_time + 1)
        self.as_(winner).reveal(a)
        self.chain.travel_to(a.reveal_end + 1)
        return self.client.settle(a)


@pytest.fixture
def arena(chain: Chain, suite: Suite) -> Iterator[Arena]:
    arena = Arena(chain, suite)
    yield arena
    assert_escrow_solvent(arena.escrow, (ETH,))


# -- point 3: a cleared sale binds both sides ------------------------------------------------------------


@pytest.mark.parametrize("kind", [EN, DU, SE])
def test_griefer_cannot_take_back_a_winning_bid(arena: Arena, kind: AuctionKind) -> None:
    """A griefer that outbid everyone cannot cancel its way out of the deal: the deal opens Funded with the
    seller's bond posted, and a one-sided cancel only records the request."""
    griefer = arena.bob
    a = arena.sale(kind, griefer, 50 * E18)
    deal = arena.escrow.deal(a.deal_id)
    assert deal.state == DealState.FUNDED and deal.bond == BOND and deal.arbiter == arena.arbiter.address
    before = arena.bal(griefer)
    receipt = send(arena.chain, griefer, arena.esc.cancel(a.deal_id, deal.terms.as_tuple()))
    state, _, buyer_cancelled, _ = arena.escrow.status(a.deal_id)
    assert (state, buyer_cancelled) == (DealState.FUNDED, True)
    assert arena.bal(griefer) == before - gas_cost(receipt)  # nothing came back
    # and no refund before the delivery deadline: the bid stays locked while the seller may still deliver
    with pytest.raises(E("EscrowDeadlineNotReached")):
        send(arena.chain, griefer, arena.esc.refund(a.deal_id, deal.terms.as_tuple()))


@pytest.mark.parametrize("kind", [EN, DU, SE])
def test_seller_cannot_void_a_low_clearing_price(arena: Arena, kind: AuctionKind) -> None:
    """A seller unhappy with the price can neither cancel alone nor walk away for free: not delivering
    hands its bond to the buyer (escrow refund)."""
    a = arena.sale(kind, arena.alice, E18)
    deal = arena.escrow.deal(a.deal_id)
    send(arena.chain, arena.seller, arena.esc.cancel(a.deal_id, deal.terms.as_tuple()))
    assert arena.escrow.status(a.deal_id)[0] == DealState.FUNDED
    arena.chain.travel_to(deal.terms.deliver_by + 1)
    before = arena.bal(arena.alice)
    send(arena.chain, arena.bob, arena.esc.refund(a.deal_id, deal.terms.as_tuple()))  # anyone refunds
    assert arena.bal(arena.alice) == before + E18 + BOND  # the seller's walk-away cost goes to the buyer


def test_sales_without_bond_or_arbiter_are_refused(arena: Arena) -> None:
    """Client: typed error before any transaction; contract: AuctionUnprotectedSale."""
    now = arena.client.now()
    nonce = arena.chain.w3.eth.get_transaction_count(arena.seller.address)
    for terms in (arena.terms(bond=0), arena.terms(arbiter=ZERO_ADDRESS)):
        with pytest.raises(errors.UnsafeTerms):
            arena.client.create_english(terms, reserve=E18, start_time=now + 5, end_time=now + 100)
        with pytest.raises(errors.UnsafeTerms):
            arena.client.create_sealed(terms, reserve=E18, commit_end=now + 100, reveal_end=now + 200)
        with pytest.raises(errors.UnsafeTerms):
            arena.client.create_dutch(
                terms, start_price=2 * E18, floor_price=E18, start_time=now + 5, end_time=now + 100
            )
    assert arena.chain.w3.eth.get_transaction_count(arena.seller.address) == nonce
    fn = arena.suite["EnglishAuction"].functions.create(
        (E18, now + 5, now + 100, 0, 0), arena.terms(bond=0).as_tuple()
    )
    with pytest.raises(E("AuctionUnprotectedSale")):
        send(arena.chain, arena.seller, fn)


# -- point 4: sealed bids stay sealed; shills pay the winner -------------------------------------------------


def test_default_commit_hides_the_bid(arena: Arena) -> None:
    """Two different bids in one bucket publish the same deposit, and neither deposit is the bid."""
    now = arena.client.now()
    a = arena.client.create_sealed(
        arena.terms(), reserve=E18 // 2, commit_end=now + 600, reveal_end=now + 1200
    )
    arena.as_(arena.alice).commit(a, 6 * E18 // 10)
    arena.as_(arena.bob).commit(a, 99 * E18 // 100)
    deposits = [b.bond for b in arena.client.refresh(a).bids]
    assert deposits == [E18, E18] == [deposit_bucket(6 * E18 // 10, E18 // 2)] * 2


def test_vickrey_shill_ladder_pays_its_forfeits_to_the_winner(arena: Arena) -> None:
    """Honest bids 1.0 and 0.6; the seller's shills commit 0.7/0.8/0.9/0.99, wait for the winner's reveal and
    reveal only 0.99. The price rises to 0.99, but the three unrevealed rungs forfeit 10% of their deposits
    to the winner, not to the seller: the ladder now costs the seller what it takes from the winner."""
    now = arena.client.now()
    a = arena.client.create_sealed(
        arena.terms(), reserve=E18 // 2, commit_end=now + 600, reveal_end=now + 1200, penalty_bps=1000
    )
    winner, honest = arena.alice, arena.bob
    rungs = [7 * E18 // 10, 8 * E18 // 10, 9 * E18 // 10, 99 * E18 // 100]
    arena.as_(winner).commit(a, E18)
    arena.as_(honest).commit(a, 6 * E18 // 10)
    for shill, amount in zip(arena.shills, rungs, strict=True):
        arena.as_(shill).commit(a, amount)
    arena.chain.travel_to(a.end_time + 1)
    arena.as_(winner).reveal(a)
    arena.as_(honest).reveal(a)
    arena.as_(arena.shills[-1]).reveal(a)  # the rung just under the winner
    arena.chain.travel_to(a.reveal_end + 1)
    a = arena.client.settle(a)
    assert (a.winner, a.price) == (winner.address, 99 * E18 // 100)
    seller_before, winner_before = arena.bal(arena.seller), arena.bal(winner)
    forfeits = 0
    contract = arena.suite["SealedBidAuction"]
    for shill in arena.shills[:-1]:
        receipt = arena.as_(shill).reclaim(a)
        assert receipt < E18  # refund below the deposit: the penalty was taken
        forfeits += E18 - receipt
    logs = contract.events.DepositReclaimed().get_logs(from_block=arena.client.from_block)
    assert sum(log["args"]["penalty"] for log in logs) == forfeits == 3 * E18 // 10
    assert arena.bal(arena.seller) == seller_before  # forfeits never reach the seller
    assert arena.bal(winner) == winner_before + forfeits
    # the winner's net price: 0.99 - 0.3 = 0.69 (0.6 without the ladder); the seller's gain from shilling
    # is 0.39 minus the 0.3 its own shills forfeited
    assert a.price - forfeits == 69 * E18 // 100


def test_vickrey_without_a_penalty_is_refused(arena: Arena) -> None:
    now = arena.client.now()
    with pytest.raises(errors.InvalidInput):
        arena.client.create_sealed(
            arena.terms(), reserve=E18, commit_end=now + 100, reveal_end=now + 200, penalty_bps=0
        )
    fn = arena.suite["SealedBidAuction"].functions.create(
        (E18, now + 100, now + 200, 0, True), arena.terms().as_tuple()
    )
    with pytest.raises(E("AuctionInvalidBps")):
        send(arena.chain, arena.seller, fn, BOND)


# -- points 5 and 1: procurement ---------------------------------------------------------------------------


def _procurement(arena: Arena, **terms: Any) -> Any:
    buyer = arena.seller
    now = arena.client.now()
    template = arena.terms(buyer, delivery_delay=12 * HOUR, promise_delay=0, **terms)
    return arena.client.create_procurement(
        template, budget=5 * E18, bid_end=now + 600, price_weight=1, time_weight=10**14, max_delivery=86_400
    )


def test_procurement_promise_binds(arena: Arena) -> None:
    """A 0 s promise at 1.2 beats an honest 1.0 in 1 h (score 1.2e18 < 1.36e18); delivered 10 h late it
    now pays the late penalty each second was worth in the score, 1e14 wei/s, up to the whole price."""
    a = _procurement(arena)
    liar, honest = arena.alice, arena.bob
    arena.as_(honest).offer(a, E18, HOUR)
    a = arena.as_(liar).offer(a, 12 * E18 // 10, 0)
    assert a.leader == liar.address
    arena.chain.travel_to(a.end_time + 1)
    a = arena.client.settle(a)
    deal = arena.escrow.deal(a.deal_id)
    # ceil(1e14 * 3600 * 10_000 / 1.2e18) = 3000 bps/h: 0.36 ETH per hour late, the score of an hour
    assert (deal.terms.penalty_bps_per_hour, deal.terms.penalty_cap_bps) == (3000, 10_000)
    assert deal.terms.late_penalty(deal.terms.promised_by + HOUR) == 36 * E18 // 100
    arena.chain.travel_to(deal.terms.promised_by + 10 * HOUR)
    send(arena.chain, liar, arena.esc.submit(a.deal_id, deal.terms.as_tuple(), b"\x01" * 32))
    buyer_before, liar_before = arena.bal(arena.seller), arena.bal(liar)
    send(arena.chain, arena.seller, arena.esc.accept(a.deal_id, deal.terms.as_tuple()))
    # 10 h late is worth 3.6 ETH of score: the whole 1.2 price goes back to the buyer; the liar keeps its bond
    assert arena.bal(arena.seller) > buyer_before + 12 * E18 // 10 - E18 // 100  # minus the accept's gas
    assert arena.bal(liar) == liar_before + BOND


def test_procurement_without_protection_needs_an_explicit_opt_in(arena: Arena) -> None:
    """No arbiter and no provider bond (so the escrow's buyer ``reject`` has nothing to forfeit): typed
    error, no transaction sent. A bond without an arbiter is protected by ``reject``."""
    nonce = arena.chain.w3.eth.get_transaction_count(arena.seller.address)
    with pytest.raises(errors.UnsafeTerms):
        _procurement(arena, arbiter=ZERO_ADDRESS, bond=0)
    assert arena.chain.w3.eth.get_transaction_count(arena.seller.address) == nonce
    assert _procurement(arena, arbiter=ZERO_ADDRESS).terms.bond > 0  # bond + escrow reject: allowed
    now = arena.client.now()
    a = arena.client.create_procurement(
        arena.terms(arena.seller, arbiter=ZERO_ADDRESS, bond=0, promise_delay=0),
        budget=E18,
        bid_end=now + 600,
        allow_unprotected=True,
    )
    assert a.terms.arbiter == ZERO_ADDRESS
    assert _procurement(arena).terms.arbiter == arena.arbiter.address  # the default path is protected
