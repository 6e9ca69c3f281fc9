"""Cancel slots (issue 12, docs/fill-gas.md "Cancel slots"): ``cancel`` marks the offer's slot
(``salt % 128``) of its maker's current counter in the maker's account word; ``cancel_all`` bumps the
counter and clears the slots. What a selfish rule-follower can try, each a row under "Offers: cancel slots"
in docs/threat-model.md:

* a maker who wants a cancelled offer back (to fill it after a taker relied on the cancel);
* a taker who fills an offer whose slot was cancelled through another offer of the slot;
* a stranger who cancels a maker's slot (to kill its live offers);
* a maker whose counter bump frees its slots, hoping old offers come back with them;
* a relay that keeps showing offers the cancel killed (its store hides the whole slot, and restores it on
  a reorg that drops the cancel).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import keccak
from helpers import GAS

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.offers import OffersClient, SignedOffer
from agentmarket.deploy import Suite
from agentmarket.relay.db import open_db
from agentmarket.relay.store import ChainEvent, Store, offer_row

E = errors.revert_class
UNIT = 10**15
GPU = "gpu-hour/h100"


class Kit:
    def __init__(self, chain: Chain, suite: Suite):
        a = chain.accounts
        self.chain = chain
        self.book = suite["OfferBook"]
        self.maker = OffersClient.from_suite(suite, a[2])
        self.taker = self.maker.as_(a[1])
        self.stranger = self.maker.as_(a[3])

    def raw(self, client: OffersClient, fn: object, value: int = 0) -> object:
        assert client.account is not None
        return self.chain.transactor.transact(client.account, fn, value=value, gas=GAS)

    def fill_raw(self, signed: SignedOffer, q: int = 1) -> object:
        fn = self.book.functions.fill(signed.offer.as_tuple(), signed.signature, q)
        return self.raw(self.taker, fn, value=q * UNIT)

    def cancel_raw(self, who: OffersClient, signed: SignedOffer) -> object:
        return self.raw(who, self.book.functions.cancel(signed.offer.as_tuple()))

    def resign(self, signed: SignedOffer, **change: int) -> SignedOffer:
        """The same maker signs changed fields (bypassing build's slot picker on purpose)."""
        return self.maker.sign(replace(signed.offer, **change))


@pytest.fixture
def kit(chain: Chain, suite: Suite) -> Kit:
    return Kit(chain, suite)


def test_a_maker_cannot_uncancel(kit: Kit) -> None:
    """The maker cancels an offer a taker partly filled, then tries every way back: cancel again, post it,
    re-sign the same fields, bump the counter. Must hold: the offer stays dead (fills revert with a typed
    error) and ``offerStatus.cancelled`` never returns to False; the bump that frees the slot voids the
    offer by its counter."""
    k = kit
    signed = k.maker.offer("sell", GPU, UNIT, 5)
    k.taker.fill(signed, 2)
    k.maker.cancel(signed)
    slot = signed.offer.cancel_slot
    assert k.maker.cancelled_slots() == (0, 1 << slot)
    k.cancel_raw(k.maker, signed)  # again: idempotent, the bit stays set
    assert k.maker.cancelled_slots() == (0, 1 << slot)
    with pytest.raises(E("OfferIsCancelled")):
        k.raw(k.maker, k.book.functions.post(signed.offer.as_tuple()))
    again = k.resign(signed)  # the same fields signed again: the same digest, the same slot
    assert again.hash == signed.hash
    with pytest.raises(E("OfferIsCancelled")) as info:
        k.fill_raw(again)
    assert bytes(info.value.offerHash) == signed.hash
    with pytest.raises(errors.InvalidState):  # the client refuses before sending
        k.taker.fill(again, 1)
    k.maker.cancel_all()
    assert k.maker.cancelled_slots() == (1, 0)  # the slots are free, for counter 1 only
    with pytest.raises(E("OfferStaleCounter")):
        k.fill_raw(signed)
    assert k.maker.status(signed).cancelled and k.maker.remaining(signed) == 0


def test_a_taker_cannot_fill_an_offer_whose_slot_was_cancelled(kit: Kit) -> None:
    """Two offers in one slot (the maker chose the salts itself): the maker cancels one. Must hold: the
    other is dead too (OfferIsCancelled on chain, InvalidState in the client, status cancelled); an offer in
    another slot is untouched; offers from ``build`` get distinct slots (one cancel kills one offer)."""
    k = kit
    a = k.maker.offer("sell", GPU, UNIT, 5, salt=7)
    b = k.maker.offer("sell", GPU, 2 * UNIT, 3, salt=7 + 128 * 99)  # other terms, same slot 7
    c = k.maker.offer("sell", GPU, UNIT, 5, salt=8)
    k.maker.cancel(a)
    for dead in (a, b):
        assert k.maker.status(dead).cancelled
        with pytest.raises(E("OfferIsCancelled")):
            k.fill_raw(dead)
        with pytest.raises(errors.InvalidState):
            k.taker.fill(dead, 1)
    assert not k.maker.status(c).cancelled and k.taker.fill(c, 1).filled == 1
    with pytest.raises(errors.InvalidState):  # build refuses a salt in a cancelled slot: dead on arrival
        k.maker.build("sell", GPU, UNIT, 1, salt=7 + 128)
    slots = {k.maker.offer("sell", GPU, UNIT, 1).offer.cancel_slot for _ in range(20)}
    assert len(slots) == 20 and 7 not in slots and 8 not in slots  # c's slot is kept free while it lives


def test_a_stranger_cannot_cancel_another_makers_slot(kit: Kit) -> None:
    """A stranger calls cancel with the maker's offer, and cancels its own offer with the same salt. Must
    hold: OfferNotMaker (and NotAuthorized in the client); the stranger's own cancel marks only its own
    account word; the maker's offer still fills."""
    k = kit
    signed = k.maker.offer("sell", GPU, UNIT, 5, salt=11)
    with pytest.raises(E("OfferNotMaker")):
        k.cancel_raw(k.stranger, signed)
    with pytest.raises(errors.NotAuthorized):
        k.stranger.cancel(signed)
    own = k.stranger.offer("sell", GPU, UNIT, 5, salt=11)
    k.stranger.cancel(own)
    assert k.stranger.cancelled_slots() == (0, 1 << 11)
    assert k.maker.cancelled_slots() == (0, 0)
    assert k.taker.fill(signed, 2).filled == 2


def test_cancel_all_clears_the_slots_and_old_offers_stay_dead(kit: Kit) -> None:
    """The maker cancels slot s, bumps its counter, and signs a new offer in slot s. Must hold: every old
    offer (cancelled or not) stays dead by its counter; the new offer in the freed slot fills; the old
    offers cannot be revived by the slot's reuse (their digest carries the old counter)."""
    k = kit
    old = k.maker.offer("sell", GPU, UNIT, 5, salt=5)
    untouched = k.maker.offer("sell", GPU, UNIT, 5, salt=6)
    k.maker.cancel(old)
    k.maker.cancel_all()
    assert k.maker.cancelled_slots() == (1, 0)
    for dead in (old, untouched):
        with pytest.raises(E("OfferStaleCounter")):
            k.fill_raw(dead)
        assert k.maker.status(dead).cancelled
    reused = k.maker.offer("sell", GPU, UNIT, 5, salt=5)  # counter 1, slot 5 again
    assert reused.hash != old.hash and k.taker.fill(reused, 1).filled == 1
    with pytest.raises(E("OfferStaleCounter")):
        k.fill_raw(old)  # the reuse did not revive it


def test_cancel_of_another_counters_offer_reverts(kit: Kit) -> None:
    """A cancel names an offer of an older counter (void already) or of a later one (signed ahead). Must
    hold: OfferStaleCounter, no slot of the current counter is marked (so no live offer dies by mistake),
    and the client says so before sending."""
    k = kit
    live = k.maker.offer("sell", GPU, UNIT, 5, salt=9)
    ahead = k.maker.sign(replace(live.offer, counter=1))  # slot 9 of counter 1
    with pytest.raises(E("OfferStaleCounter")):
        k.cancel_raw(k.maker, ahead)
    with pytest.raises(errors.InvalidState):
        k.maker.cancel(ahead)
    assert k.maker.cancelled_slots() == (0, 0) and k.taker.fill(live, 1).filled == 1


@pytest.mark.anvil
def test_counter_cannot_wrap_back_to_revive_old_offers(anvil: Chain, anvil_suite: Suite) -> None:
    """The counter is 32 bits in the account word. Must hold: a bump at 2^32 - 1 reverts (checked
    arithmetic) instead of wrapping to 0, where every offer of counter 0 would live again."""
    k = Kit(anvil, anvil_suite)
    maker = k.maker.account.address
    k.maker.deposit(1)  # the account word exists: find the mapping's storage slot by its content

    def key(i: int) -> bytes:
        return keccak(bytes(12) + bytes.fromhex(maker[2:]) + i.to_bytes(32, "big"))

    slot = next(
        i for i in range(8) if int.from_bytes(anvil.w3.eth.get_storage_at(k.book.address, key(i)), "big") == 1
    )
    word = (2**32 - 1) << 96 | 1  # counter 2^32 - 1, balance 1 wei, no slot cancelled
    anvil.w3.provider.make_request(  # type: ignore[attr-defined]
        "anvil_setStorageAt", [k.book.address, "0x" + key(slot).hex(), "0x" + word.to_bytes(32, "big").hex()]
    )
    assert k.maker.counter() == 2**32 - 1 and k.maker.deposit_of() == 1
    with pytest.raises(errors.ContractRevert):
        k.raw(k.maker, k.book.functions.incrementCounter())
    assert k.maker.counter() == 2**32 - 1


def test_relay_store_hides_every_offer_in_a_cancelled_slot_and_restores_on_reorg(
    kit: Kit, tmp_path: object
) -> None:
    """The relay's store (real SQLite, migrated by alembic) holds three offers of one maker: two in slot 3,
    one in slot 4. An indexed OfferCancelled names only one digest. Must hold: both offers of slot 3 turn
    cancelled (not live), slot 4 stays live; a post of another offer in the slot is refused at the door;
    a reorg that drops the cancel restores both."""
    k = kit
    engine = open_db(f"sqlite:///{tmp_path}/relay.db")
    store = Store(engine)
    store.indexer_cursor(k.chain.chain_id, k.book.address, 1)
    a = k.maker.offer("sell", GPU, UNIT, 5, salt=3)
    b = k.resign(a, salt=3 + 128, unit_price=2 * UNIT)
    c = k.maker.offer("sell", GPU, UNIT, 5, salt=4)
    store.insert_offers([offer_row(s, filled=0, cancelled=False, posted_by="t") for s in (a, b, c)])
    maker = a.offer.maker
    cancel = ChainEvent(10, 0, "cancelled", offer_hash="0x" + a.hash.hex(), account=maker, value=0, slot=3)
    assert store.apply([cancel], [(10, "0x" + "11" * 32)], 11) == 2
    status = {s.hash: store.get("0x" + s.hash.hex())["status"] for s in (a, b, c)}  # type: ignore[index]
    assert status == {a.hash: "cancelled", b.hash: "cancelled", c.hash: "live"}
    late = k.resign(a, salt=3 + 256)
    row = offer_row(late, filled=0, cancelled=False, posted_by="t")
    assert store.door_states([row])[row["hash"]].cancelled
    changed, _ = store.rollback(9)
    assert changed == 2
    assert all(store.get("0x" + s.hash.hex())["status"] == "live" for s in (a, b, c))  # type: ignore[index]
    engine.dispose()
