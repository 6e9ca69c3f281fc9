"""Gas scenarios of the auction singletons (English, Dutch, sealed-bid, procurement), all in ETH."""

from __future__ import annotations

from typing import Any

from agentmarket.types import ZERO_ADDRESS as ZERO
from agentmarket.units import WEI_PER_ETH

from . import GasEnv, scenario

SELLER_BOND = 10**17  # sales post a seller bond at creation and name an arbiter (docs/design.md §6.12)


def _terms(creator: str, **overrides: Any) -> tuple[Any, ...]:
    t = {
        "creator": creator,
        "arbiter": ZERO,
        "asset": ZERO,
        "bond": 0,
        "termsHash": b"\x11" * 32,
        "promiseDelay": 3600,
        "deliveryDelay": 7200,
        "reviewWindow": 3600,
        "rulingWindow": 3600,
        "penaltyBpsPerHour": 0,
        "penaltyCapBps": 0,
        "arbiterFeeBps": 0,
        "defaultSellerBps": 10_000,
    }
    t.update(overrides)
    return tuple(t.values())


def _sale_terms(env: GasEnv, seller: str) -> tuple[Any, ...]:
    return _terms(seller, arbiter=env.chain.accounts[6].address, bond=SELLER_BOND)


def _gas(receipt: Any) -> int:
    return int(receipt["gasUsed"])


def _warm_escrow(env: GasEnv) -> None:
    """An open ETH deal in the escrow, so measurements see its per-asset totals word non-zero (steady state),
    as the escrow's own scenarios do."""
    chain, escrow = env.chain, env.suite["AgentEscrow"]
    buyer, seller = chain.accounts[8], chain.accounts[9]
    deal = (
        buyer.address,
        seller.address,
        ZERO,
        ZERO,
        WEI_PER_ETH,
        0,
        b"\x22" * 32,
        0,
        chain.now() + 86_400,
        3600,
        3600,
        0,
        0,
        0,
        10_000,
    )
    chain.transactor.transact(buyer, escrow.functions.create(deal), value=WEI_PER_ETH)


def _english_with_bid(env: GasEnv) -> tuple[Any, int, tuple[Any, ...]]:
    chain, english = env.chain, env.suite["EnglishAuction"]
    _warm_escrow(env)
    seller, alice = chain.accounts[1], chain.accounts[2]
    tx = chain.transactor
    now = chain.now()
    terms = _sale_terms(env, seller.address)
    tx.transact(
        seller, english.functions.create((10**17, now + 5, now + 3600, 300, 500), terms), value=SELLER_BOND
    )
    auction_id = english.functions.nextAuctionId().call() - 1
    chain.travel_to(now + 10)
    tx.transact(alice, english.functions.bid(auction_id, WEI_PER_ETH), value=WEI_PER_ETH)
    return english, auction_id, terms


@scenario("auction.english_bid_outbid")
def english_bid_outbid(env: GasEnv) -> int:
    """A second bidder outbids the first (the first is credited its bid)."""
    english, auction_id, _ = _english_with_bid(env)
    bob = env.chain.accounts[3]
    amount = WEI_PER_ETH * 105 // 100
    return _gas(env.chain.transactor.transact(bob, english.functions.bid(auction_id, amount), value=amount))


@scenario("auction.settle")
def english_settle(env: GasEnv) -> int:
    """Settle an ended English auction (ETH) into a new escrow deal."""
    english, auction_id, terms = _english_with_bid(env)
    env.chain.advance_time(3600)
    anyone = env.chain.accounts[4]
    return _gas(env.chain.transactor.transact(anyone, english.functions.settle(auction_id, terms)))


@scenario("auction.dutch_buy")
def dutch_buy(env: GasEnv) -> int:
    """Buy a Dutch auction half way down its curve, paying the exact price; opens the escrow deal."""
    chain, dutch = env.chain, env.suite["DutchAuction"]
    _warm_escrow(env)
    seller, buyer = chain.accounts[1], chain.accounts[2]
    now = chain.now()
    terms = _sale_terms(env, seller.address)
    chain.transactor.transact(
        seller,
        dutch.functions.create((2 * WEI_PER_ETH, WEI_PER_ETH, now + 5, now + 1005), terms),
        value=SELLER_BOND,
    )
    auction_id = dutch.functions.nextAuctionId().call() - 1
    chain.travel_to(now + 400)
    chain.set_next_timestamp(now + 505)
    price = dutch.functions.priceAt(auction_id, now + 505).call()
    receipt = chain.transactor.transact(
        buyer, dutch.functions.buy(auction_id, price, terms), value=price, gas=300_000
    )
    return _gas(receipt)


def _sealed_committed(env: GasEnv) -> tuple[Any, int, list[tuple[Any, int, bytes]]]:
    chain, sealed = env.chain, env.suite["SealedBidAuction"]
    seller = chain.accounts[1]
    now = chain.now()
    chain.transactor.transact(
        seller,
        sealed.functions.create(
            (10**17, now + 600, now + 1200, 1000, True), _sale_terms(env, seller.address)
        ),
        value=SELLER_BOND,
    )
    auction_id = sealed.functions.nextAuctionId().call() - 1
    bids = []
    for i, amount in ((2, WEI_PER_ETH), (3, 2 * WEI_PER_ETH)):
        bidder = chain.accounts[i]
        salt = bytes([i]) * 32
        commitment = sealed.functions.commitmentOf(bidder.address, auction_id, amount, salt).call()
        chain.transactor.transact(
            bidder, sealed.functions.commit(auction_id, commitment, 3 * WEI_PER_ETH), value=3 * WEI_PER_ETH
        )
        bids.append((bidder, amount, salt))
    return sealed, auction_id, bids


@scenario("auction.sealed_commit")
def sealed_commit(env: GasEnv) -> int:
    """A bidder commits a sealed bid with a deposit."""
    sealed, auction_id, _ = _sealed_committed(env)
    bidder = env.chain.accounts[4]
    commitment = sealed.functions.commitmentOf(bidder.address, auction_id, WEI_PER_ETH, b"\x07" * 32).call()
    return _gas(
        env.chain.transactor.transact(
            bidder, sealed.functions.commit(auction_id, commitment, 3 * WEI_PER_ETH), value=3 * WEI_PER_ETH
        )
    )


@scenario("auction.sealed_reveal")
def sealed_reveal(env: GasEnv) -> int:
    """The second reveal, taking the lead (the first leader's bid becomes the Vickrey second price)."""
    sealed, auction_id, bids = _sealed_committed(env)
    env.chain.advance_time(700)
    (b1, a1, s1), (b2, a2, s2) = bids
    env.chain.transactor.transact(b1, sealed.functions.reveal(auction_id, a1, s1, 3 * WEI_PER_ETH))
    return _gas(
        env.chain.transactor.transact(b2, sealed.functions.reveal(auction_id, a2, s2, 3 * WEI_PER_ETH))
    )


@scenario("auction.procurement_bid")
def procurement_bid(env: GasEnv) -> int:
    """An open procurement offer that beats the best so far (the displaced bond is credited)."""
    chain, proc = env.chain, env.suite["ProcurementAuction"]
    buyer, p1, p2 = chain.accounts[1], chain.accounts[2], chain.accounts[3]
    now = chain.now()
    params = (5 * WEI_PER_ETH, now + 600, 0, 0, False, 1, 10**14, 86_400)
    chain.transactor.transact(
        buyer, proc.functions.create(params, _terms(buyer.address, bond=10**17)), value=5 * WEI_PER_ETH
    )
    auction_id = proc.functions.nextAuctionId().call() - 1
    bond = 10**17
    chain.transactor.transact(p1, proc.functions.bid(auction_id, 4 * WEI_PER_ETH, 7200, bond), value=bond)
    return _gas(
        chain.transactor.transact(p2, proc.functions.bid(auction_id, 3 * WEI_PER_ETH, 3600, bond), value=bond)
    )
