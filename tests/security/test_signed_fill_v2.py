"""Signed fill v2 (docs/fill-gas.md): the fills of an offer form one chain of keyed escrow deals. What a
selfish rule-follower can try against the chain, each a row under "Offers: signed fill v2" in
docs/threat-model.md:

* a searcher who sees a taker's fill in the mempool takes the same start first (the race);
* a taker who forges the link to the previous fill, to start elsewhere than the chain's end (re-selling
  units already sold, or skipping units);
* another admitted market that opens a deal under the OfferBook's key of an offer's head fill (to block it);
* a maker who signs raw offer words with dirty high bits (the fill copies offer words into the deal as
  they are).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from eth_utils import keccak
from helpers import GAS

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import FillLink, OffersClient, fill_deal_id
from agentmarket.deploy import Suite
from agentmarket.eip712 import sign_digest
from agentmarket.types import DealState

E = errors.revert_class
UNIT = 10**15
GPU = "gpu-hour/h100"


class Kit:
    def __init__(self, chain: Chain, suite: Suite):
        a = chain.accounts
        self.chain, self.suite = chain, suite
        self.book = suite["OfferBook"]
        self.escrow = suite["AgentEscrow"]
        self.maker = OffersClient.from_suite(suite, a[2])
        self.victim = self.maker.as_(a[1])
        self.searcher = self.maker.as_(a[3])
        self.escrow_client = EscrowClient.from_suite(suite)

    def eth(self, who: str) -> int:
        return int(self.chain.w3.eth.get_balance(who))

    def solvent(self) -> None:
        locked, credits, fees = self.escrow.functions.totals("0x" + "00" * 20).call()
        assert self.eth(self.escrow.address) == locked + credits + fees


@pytest.fixture
def kit(chain: Chain, suite: Suite) -> Kit:
    return Kit(chain, suite)


def test_searcher_front_running_a_fill_start_makes_the_victim_revert_cleanly_and_pays_in_full(kit: Kit):
    """The victim builds a fill of 4 units from the chain's end; a searcher lands a minFill fill from the
    same start first. Must hold: the victim's fill reverts (EscrowDealExists: one fill per start, so no
    unit is sold twice) and costs it only gas (its ETH stays); the searcher paid the full price for what it
    took (no free option); the victim's retry from the new end succeeds; units sold never exceed the offer."""
    k = kit
    signed = k.maker.offer("sell", GPU, UNIT, 10, min_fill=2)
    k.victim.fill(signed, 3)  # the head: units [0, 3)
    tip = k.victim.last_fill(signed)
    assert tip is not None
    # the victim's transaction, built against the chain's end (3) ...
    victim_fn = k.book.functions.fillAfter(signed.offer.as_tuple(), signed.signature, 4, tip.as_tuple())
    # ... is front-run by the searcher's minimum fill from the same start
    searcher_before = k.eth(k.searcher.account.address)
    taken = k.searcher.fill(signed, 2)
    assert taken.filled == 5 and taken.deal.amount == 2 * UNIT
    gas_cost = taken.gas_used * int(
        k.chain.w3.eth.get_transaction_receipt(taken.tx_hash)["effectiveGasPrice"]
    )
    assert searcher_before - k.eth(k.searcher.account.address) == 2 * UNIT + gas_cost  # paid in full
    victim_before = k.eth(k.victim.account.address)
    with pytest.raises(E("EscrowDealExists")) as info:
        k.chain.transactor.transact(k.victim.account, victim_fn, value=4 * UNIT, gas=GAS)
    assert info.value.dealId == k.maker.fill_deal_id(signed, 3)
    lost = victim_before - k.eth(k.victim.account.address)
    assert lost < UNIT  # gas at most (if mined), never the 4 units' price
    # the retry from the new end (5) goes through; the chain sold 3 + 2 + 4 = 9 of 10 units
    retry = k.victim.fill(signed, 4)
    assert (retry.filled, retry.deal.terms.terms_hash) == (9, signed.offer.fill_terms_hash(5, 4))
    assert k.victim.remaining(signed) == 1
    k.solvent()


@pytest.mark.parametrize("forgery", ["short_quantity", "long_quantity", "other_offer", "made_up_terms"])
def test_forged_link_cannot_start_a_fill_off_the_chains_end(kit: Kit, forgery: str):
    """A taker proves a start with a link that is not the previous fill: a shorter quantity (to re-sell
    units [2, 3) already sold), a longer one (to skip units), the head deal of another offer with the same
    spec, or terms that were never opened (a lower amount). Must hold: OfferBadLink, nothing moves."""
    k = kit
    signed = k.maker.offer("sell", GPU, UNIT, 10, terms_hash=b"\x07" * 32)
    other = k.maker.offer("sell", GPU, UNIT, 10, terms_hash=b"\x07" * 32)  # same spec, another salt
    head = k.victim.fill(signed, 3).deal
    other_head = k.victim.fill(other, 3).deal
    link = {
        "short_quantity": FillLink(0, 2, head),
        "long_quantity": FillLink(0, 4, head),
        "other_offer": FillLink(0, 3, other_head),
        "made_up_terms": FillLink(0, 3, replace(head, terms=replace(head.terms, amount=1))),
    }[forgery]
    before = k.eth(k.escrow.address)
    fn = k.book.functions.fillAfter(signed.offer.as_tuple(), signed.signature, 1, link.as_tuple())
    with pytest.raises(E("OfferBadLink")) as info:
        k.chain.transactor.transact(k.searcher.account, fn, value=UNIT, gas=GAS)
    assert (info.value.start, bytes(info.value.offerHash)) == (0, signed.hash)
    assert k.eth(k.escrow.address) == before
    for start in (2, 4):  # neither the re-sold nor the skipped start opened a deal
        state = k.escrow.functions.dealStatus(k.maker.fill_deal_id(signed, start)).call()[0]
        assert DealState(state) == DealState.NONE
    assert k.victim.status(signed).filled == 3


def test_another_market_cannot_take_the_offer_books_key(kit: Kit):
    """An admitted market (here an EOA the owner admitted) opens a deal under the same key the OfferBook
    uses for an offer's head fill, hoping to block it. Must hold: keyed ids are namespaced by the opening
    market, so its deal lands under another id and the offer's head fill still opens; a caller that is not
    an admitted market cannot open keyed deals at all (EscrowNotMarket)."""
    k = kit
    chain, a = k.chain, k.chain.accounts
    owner, rogue = a[0], a[5]
    signed = k.maker.offer("sell", GPU, UNIT, 10, expiry=timedelta(days=3))
    key = keccak(signed.hash + (0).to_bytes(32, "big"))  # the OfferBook's key of the head fill
    deal = k.escrow_client.terms(
        k.maker.account.address, UNIT, deliver_by=10**10, buyer=k.victim.account.address
    )
    fn = k.escrow.functions.openForKey(key, deal.as_tuple(), True)
    with pytest.raises(E("EscrowNotMarket")):
        chain.transactor.transact(rogue, fn, value=UNIT, gas=GAS)
    chain.transactor.transact(owner, k.escrow.functions.setMarket(rogue.address, True), gas=GAS)
    chain.advance_time(2 * 24 * 3600 + 1)  # MARKET_DELAY: the admission was announced
    receipt = chain.transactor.transact(
        rogue, k.escrow.functions.openForKey(key, deal.as_tuple(), True), value=UNIT, gas=GAS
    )
    rogue_id = int.from_bytes(bytes(receipt["logs"][0]["topics"][1]), "big")
    book_id = k.maker.fill_deal_id(signed, 0)
    assert rogue_id != book_id and rogue_id >> 255 == 1
    assert fill_deal_id(k.book.address, signed.hash, 0) == book_id
    fill = k.victim.fill(signed, 2)
    assert fill.deal.id == book_id
    k.solvent()


def _patched(data: str, patch: dict[int, int]) -> bytes:
    """Calldata ``data`` (hex) with the 32-byte argument words at the given indexes replaced."""
    raw = bytearray(bytes.fromhex(data.removeprefix("0x")))
    for index, value in patch.items():
        raw[4 + 32 * index : 4 + 32 * (index + 1)] = value.to_bytes(32, "big")
    return bytes(raw)


def test_dirty_offer_words_signed_by_the_maker_open_no_deal(kit: Kit):
    """The fill copies the offer's deal words (windows, penalty, split) into the escrow call as they are, and
    the escrow emits the deal from its calldata words. A maker signs raw words whose uint32 reviewWindow has
    dirty high bits (the signature covers raw words). Must hold: the escrow refuses the dirty word, so no
    deal is opened whose stored terms no client can decode or settle; the taker's ETH stays with it."""
    k = kit
    offer = k.maker.build("sell", GPU, UNIT, 10)
    review_word = 11  # Offer word 11: reviewWindow (uint32)
    dirty = (1 << 200) | offer.review_window
    # the digest of the dirty words, as the book computes it (it hashes raw calldata words)
    hash_data = _patched(k.book.encode_abi("hashOffer", args=[offer.as_tuple()]), {review_word: dirty})
    digest = bytes(k.chain.w3.eth.call({"to": k.book.address, "data": "0x" + hash_data.hex()}))
    assert digest != offer.digest(k.maker.domain)
    sig = sign_digest(bytes(k.maker.account.key), digest)
    data = _patched(k.book.encode_abi("fill", args=[offer.as_tuple(), sig, 2]), {review_word: dirty})
    before = (k.eth(k.escrow.address), k.eth(k.victim.account.address))
    w3 = k.chain.w3
    # the escrow refuses the dirty word: the call reverts (simulated, then sent with a fixed gas limit)
    with pytest.raises(Exception):  # noqa: B017 - an empty revert: backends raise different types
        w3.eth.call(
            {
                "from": k.victim.account.address,
                "to": k.book.address,
                "data": "0x" + data.hex(),
                "value": 2 * UNIT,
            }
        )
    tx = {
        "from": k.victim.account.address,
        "to": k.book.address,
        "data": "0x" + data.hex(),
        "value": 2 * UNIT,
        "gas": GAS,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(k.victim.account.address),
        "chainId": w3.eth.chain_id,
    }
    try:
        h = w3.eth.send_raw_transaction(k.victim.account.sign_transaction(tx).raw_transaction)
        assert int(w3.eth.wait_for_transaction_receipt(h)["status"]) == 0
    except AssertionError:
        raise
    except Exception:  # eth-tester raises on a mined revert instead of returning status 0
        pass
    assert k.eth(k.escrow.address) == before[0]
    assert before[1] - k.eth(k.victim.account.address) < 2 * UNIT  # at most gas, never the price
    state = k.escrow.functions.dealStatus(fill_deal_id(k.book.address, digest, 0)).call()[0]
    assert DealState(state) == DealState.NONE
