"""Attacker review of signed fill v2 (branch fillgas) and the odd-token payout module (branch tokens),
issue 12. Each test states a property issue 12 / DESIGN §6 requires and FAILS on the reviewed code: it is a
finding, not a regression test. The fix each needs is in the docstring."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from helpers import GAS, deploy, mint, send, token_sale_template

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.auctions import AuctionClient, AuctionStatus, DealTemplate
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import OffersClient
from agentmarket.deploy import Suite
from agentmarket.types import DealTerms

E = errors.revert_class
UNIT = 10**15
TOKEN = 10**18
HOUR = 3600
GPU = "gpu-hour/h100"


def _eth(chain: Chain, who: str) -> int:
    return int(chain.w3.eth.get_balance(who))


def _gas_paid(chain: Chain, tx_hash: str, gas_used: int) -> int:
    return gas_used * int(chain.w3.eth.get_transaction_receipt(tx_hash)["effectiveGasPrice"])


def test_a_delisted_offer_book_stops_opening_fills(chain: Chain, suite: Suite) -> None:
    """Point 11 / docs/threat-model.md: "a delisted market keeps isMarket (it can open the deals of sales it
    started), isListed tells markets to stop starting new ones ... the owner's lever is the listing, which
    markets consult before they start a new sale". No contract consults `isListed` (grep: only its
    definition), and a signed fill has no pending sale to protect: every fill is a new sale. So once the
    owner delists the OfferBook (announced, MARKET_DELAY passed) strangers still open new keyed deals through
    it forever; the owner's only lever does nothing.
    Fix: `openForKey` (a keyed deal is always a new sale) refuses a market whose `delistedAt` has passed:
    the admission word is already read there, so it costs a comparison; markets with pending sales (auctions,
    call market) check `isListed` where a sale starts."""
    a = chain.accounts
    owner = a[0]
    book, escrow = suite["OfferBook"], suite["AgentEscrow"]
    maker = OffersClient.from_suite(suite, a[2])
    taker = maker.as_(a[1])
    signed = maker.offer("sell", GPU, UNIT, 10, expiry=timedelta(days=5))
    taker.fill(signed, 1)
    receipt = send(chain, owner, escrow.functions.setMarket(book.address, False))
    effective = int(escrow.events.MarketSet().process_receipt(receipt)[0]["args"]["effectiveAt"])
    chain.travel_to(effective + 1)
    assert not escrow.functions.isListed(book.address).call()
    with pytest.raises(errors.AgentMarketError):
        taker.fill(signed, 2)  # today: opens a new deal through the delisted market


def test_a_searcher_blocks_a_buy_offer_seller_for_gas_only(chain: Chain, suite: Suite) -> None:
    """docs/threat-model.md ("Offers: signed fill v2") says a searcher who front-runs a taker's fill start
    "paid the maker's full price for what it took (no free option, §6.12)". That holds for Sell offers only.
    On a Buy offer the taker is the seller and pays only the bond; with the client's safe default for an
    open buy request (an arbiter, bondPerUnit 0 is accepted) the searcher takes the honest seller's start with
    a 1-unit fill for gas alone: the seller's fill reverts (EscrowDealExists), and the maker's price for the
    junk unit stays locked until it disputes. Repeated per block, an offer's sellers are blocked for gas.
    Must hold (§6.12): making another taker's fill fail costs the searcher something of comparable value.
    Fix: a fill from a start already taken falls forward to the chain's end (the taker signs a start range /
    max quantity; needs the filled count back in the book: +20k gas) or, cheaper, the client refuses a Buy
    offer without a per-unit seller bond (bondPerUnit > 0 by default) so each blocking fill forfeits a bond."""
    a = chain.accounts
    arbiter = a[6].address
    maker = OffersClient.from_suite(suite, a[2])
    send(chain, a[2], suite["OfferBook"].functions.deposit(), value=10 * UNIT)  # the buyer's price leg
    searcher = maker.as_(a[3])
    signed = maker.offer("buy", GPU, UNIT, 10, arbiter=arbiter)  # accepted as safe by the client
    book = suite["OfferBook"]
    honest_fn = book.functions.fill(signed.offer.as_tuple(), signed.signature, 4)
    before = _eth(chain, a[3].address)
    taken = searcher.fill(signed, 1)
    spent = before - _eth(chain, a[3].address) - _gas_paid(chain, taken.tx_hash, taken.gas_used)
    with pytest.raises(E("EscrowDealExists")):
        chain.transactor.transact(a[1], honest_fn, value=4 * signed.offer.bond_per_unit, gas=GAS)
    assert signed.offer.bond_per_unit > 0  # the client's default on an open buy request (fix)
    assert spent > 0, "the searcher made the honest seller's fill fail and risked nothing but gas"


def _terms(chain: Chain, token: Any, amount: int, buyer: Any, seller: Any) -> DealTerms:
    return DealTerms(
        buyer=buyer.address,
        seller=seller.address,
        asset=token.address,
        amount=amount,
        deliver_by=chain.now() + 10 * HOUR,
        review_window=HOUR,
    )


def test_a_rebase_down_loss_falls_on_the_last_seller_alone(chain: Chain, suite: Suite) -> None:
    """Point 6 / §6.11: "no token behaviour moves one user's loss onto another". After a -10% rebase with two
    equal deals open, the first seller paid is paid in full and the second cannot withdraw its credit (the
    escrow holds 80 against its 100): the whole loss moved onto whoever settles last. The tokens branch
    refuses new money during a deficit but documents this as a known gap ("unsupported, wrap such tokens");
    nothing refuses the token at `create`, so a user cannot tell. Also: the deficit never clears by itself
    (the last creditor's shortfall stays on the books), so the asset is refused for every new deal forever.
    Fix: pay ERC-20 payouts pro rata while in deficit (value x balance / books, at the measured push that
    already reads the balance), or refuse at `create` any asset whose balance moved outside a transfer."""
    a = chain.accounts
    owner, b1, s1, b2, s2 = a[0], a[1], a[2], a[4], a[5]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [b1, b2], 1000 * TOKEN)
    c1 = EscrowClient.from_suite(suite, b1)
    d1 = c1.create(_terms(chain, token, 100 * TOKEN, b1, s1), approve=True)
    c2 = c1.as_(b2)
    d2 = c2.create(_terms(chain, token, 100 * TOKEN, b2, s2), approve=True)
    send(chain, owner, token.functions.rebase(9000))  # 180 held against books of 200
    escrow = suite["AgentEscrow"]
    for buyer, seller, deal in ((b1, s1, d1), (b2, s2, d2)):
        deal = c1.as_(seller).submit(deal, b"\x01" * 32)
        send(chain, buyer, escrow.functions.accept(deal.id, deal.terms.as_tuple()))
    # both payouts: pushed, or credited (this token's round-up over-charges a push by 1 wei) and withdrawn,
    # the first seller first
    got = []
    for seller in (s1, s2):
        if escrow.functions.creditOf(seller.address, token.address).call():
            # CreditsTransferFailed: the escrow holds less than this credit
            with contextlib.suppress(errors.AgentMarketError):
                send(chain, seller, escrow.functions.withdraw(token.address))
        got.append(int(token.functions.balanceOf(seller.address).call()))
    got1, got2 = got
    # equal positions, equal loss (within rounding); before the fix got1 was ~99.5 and got2 0 (its withdraw
    # reverted; withdrawPart got the ~80.5 left and the rest of its credit stayed on the books for good).
    # Fixed: every payout and withdrawal in deficit pays held / owed of its claim (~90% each here)
    assert got2 * 100 >= got1 * 99, (got1, got2)
    assert got1 * 100 >= 995 * TOKEN * 9 - TOKEN, (got1, got2)  # 90% of 99.5 (fee 0.5%), not less
    assert int(escrow.functions.creditOf(s2.address, token.address).call()) <= 10  # dust at most


def test_an_english_auction_in_a_token_that_rebased_down_has_no_exit(chain: Chain, suite: Suite) -> None:
    """ "Every locked coin has a way out" (DESIGN §3) and point 6 ("unsupported token classes are refused or
    isolated with a clear error"). An English sale in a token that later rebases down by 10%: the auction
    keeps no books, so it holds 90% of the winner's bid plus the seller's bond, and `settle` tries to send
    all of it to the escrow: it reverts (CreditsTransferFailed), every time. `cancel` is refused once anyone
    has bid, and nothing else ends an Active auction: the bid and the bond are locked forever, although the
    auction could give back 90% of each. (The same settle against an escrow in deficit reverts with
    AssetDeficit, or, when the deficit is smaller than the sale, opens a deal that pays the old holders' loss.)
    Fix: settle opens the deal through try/catch and voids the sale when the escrow refuses it (credit the
    winner its bid, pay the seller its bond: what `_dealPossible` already does for a market the escrow
    refuses), and pays what it holds pro rata when it holds less than it owes."""
    a = chain.accounts
    owner, seller, bidder, arbiter = a[0], a[1], a[2], a[5]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [seller, bidder], 1000 * TOKEN)
    client = AuctionClient.from_suite(suite, seller)
    terms = token_sale_template(seller, token, arbiter)
    now = client.now()
    sale = client.create_english(
        terms, reserve=TOKEN, start_time=now + 10, end_time=now + 10 + HOUR, approve=True
    )
    chain.travel_to(sale.start_time)
    client.as_(bidder).bid(sale, 2 * TOKEN, approve=True)
    send(chain, owner, token.functions.rebase(9000))
    chain.travel_to(sale.end_time + 1)
    english = suite["EnglishAuction"]
    held = int(token.functions.balanceOf(english.address).call())
    assert held > 0  # ~1.89 tokens of the bidder and the seller sit in the auction
    # fixed twice: first settle voided the sale instead of reverting (the winner's bid credited back, the
    # bond paid back), but the credits were then paid first come, first served. Since the books
    # (test_books_everywhere.py) the auction funds the deal with its share of price + bond (held / owed, here
    # 90%), the escrow splits what arrived pro rata between amount and bond, and nothing is left behind
    send(chain, seller, english.functions.settle(sale.id, terms.as_tuple()))
    after = client.as_(seller)._current(sale)
    assert after.status == AuctionStatus.SETTLED and after.deal_id, (
        "settle and cancel both revert: no way out"
    )
    deal = EscrowClient.from_suite(suite, seller).deal(after.deal_id)
    assert 2 * TOKEN * 9 // 10 - 10 <= deal.amount <= 2 * TOKEN * 9 // 10
    assert int(token.functions.balanceOf(english.address).call()) <= 10  # rounding dust at most


def test_the_tip_buyer_voids_every_pending_fill_after_for_one_wei(chain: Chain, suite: Suite) -> None:
    """A `fillAfter` proves the chain's end with the previous fill's whole `Deal`, checked against the
    escrow's stored hash. The buyer of that previous fill can rewrite the stored hash at will: `release` of
    1 wei stores the terms with `amount - 1`. So the tip's buyer (on a Sell offer: a competing buyer) voids
    every `fillAfter` in the mempool for 1 wei plus gas (OfferBadLink), block after block, without buying
    anything more; the design's front-running row assumes the griefer must buy units at the maker's price.
    Must hold (§6.12): invalidating another taker's fill costs comparable value.
    Fix: the link should prove what the fill opened, not the deal's current terms: e.g. `release` of a keyed
    deal keeps its stored hash and books the released amount in `_released` (already kept per deal), or
    `verifyTerms` of a keyed deal checks the opened hash kept with the release."""
    a = chain.accounts
    maker = OffersClient.from_suite(suite, a[2])
    griefer, victim = maker.as_(a[3]), maker.as_(a[1])
    signed = maker.offer("sell", GPU, UNIT, 10)
    head = griefer.fill(signed, 1)
    tip = victim.last_fill(signed)
    assert tip is not None
    victim_fn = suite["OfferBook"].functions.fillAfter(
        signed.offer.as_tuple(), signed.signature, 4, tip.as_tuple()
    )
    receipt = send(
        chain, a[3], suite["AgentEscrow"].functions.release(head.deal.id, head.deal.terms.as_tuple(), 1)
    )
    assert receipt["status"] == 1
    # fixed: the link proves the terms the tip fill opened with (kept by its first release), so the
    # victim's pending fillAfter, built before the release, still opens its deal from unit 1
    chain.transactor.transact(a[1], victim_fn, value=4 * UNIT, gas=GAS)
    book, escrow = suite["OfferBook"], suite["AgentEscrow"]
    digest = book.functions.hashOffer(signed.offer.as_tuple()).call()
    opened = book.functions.fillDealId(digest, 1).call()
    assert escrow.functions.dealStatus(opened).call()[0] != 0
    # and a link with other terms is still refused
    forged = suite["OfferBook"].functions.fillAfter(
        signed.offer.as_tuple(), signed.signature, 1, (0, 2, tip.deal.terms.as_tuple())
    )
    with pytest.raises(E("OfferBadLink")):
        chain.transactor.transact(a[1], forged, value=UNIT, gas=GAS)


def test_delisted_auction_house_and_call_market_start_no_sales(chain: Chain, suite: Suite) -> None:
    """Point 11, the rest of finding 1: auctions and the call market consult the listing where a sale
    starts (`create*`, `openBatch`), so the owner's delisting stops new sales there too (pending ones
    still settle: tests/contracts/test_auctions.py)."""
    from agentmarket.clients.callmarket import CallMarketClient

    a = chain.accounts
    owner, seller, arbiter = a[0], a[1], a[5]
    escrow = suite["AgentEscrow"]
    client = AuctionClient.from_suite(suite, seller)
    calls = CallMarketClient.from_suite(suite, seller)
    terms = DealTemplate(
        creator=seller.address,
        asset="0x" + "00" * 20,
        delivery_delay=2 * HOUR,
        promise_delay=HOUR,
        terms_hash=b"\x42" * 32,
        review_window=HOUR,
        ruling_window=HOUR,
        arbiter=arbiter.address,
        bond=TOKEN // 10,
    )
    for name in ("EnglishAuction", "CallMarket"):
        receipt = send(chain, owner, escrow.functions.setMarket(suite[name].address, False))
        effective = int(escrow.events.MarketSet().process_receipt(receipt)[0]["args"]["effectiveAt"])
    chain.travel_to(effective + 1)
    now = client.now()
    with pytest.raises(E("AuctionNotListed")):
        client.create_english(terms, reserve=TOKEN, start_time=now + 10, end_time=now + 10 + HOUR)
    with pytest.raises(E("CallMarketNotListed")):
        calls.open_batch(GPU, closes_in=HOUR, arbiter=arbiter.address)
