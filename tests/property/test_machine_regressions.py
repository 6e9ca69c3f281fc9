"""Deterministic replays of what the escrow machine found (docs/design.md §6.10: the client's rebuild from events
equals the on-chain views), kept as plain tests so they run on every backend in a fraction of a second."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import Side
from agentmarket.deploy import Suite
from agentmarket.types import DealState

HOUR = 3600


def _same(client: EscrowClient, deal_id: int) -> None:
    rebuilt = client.deal(deal_id)
    assert (
        rebuilt.state,
        rebuilt.submitted_at,
        rebuilt.buyer_cancelled,
        rebuilt.seller_cancelled,
    ) == client.status(deal_id)


@pytest.mark.parametrize("who", ["buyer", "seller"])
def test_unilateral_cancel_while_awaiting_bond_leaves_views_and_rebuild_equal(
    any_chain: Chain, _embedded: tuple[Chain, Suite], _anvil: tuple[Chain, Suite], who: str
):
    """The cancelling call used to set its caller's flag in the stored word; DealCancelled does not say who
    called, so a rebuilt deal could not match `dealStatus`. The final cancel now records no flag."""
    suite = _anvil[1] if any_chain.kind == "anvil" else _embedded[1]
    buyer = EscrowClient.from_suite(suite, any_chain.accounts[1])
    seller = buyer.as_(any_chain.accounts[2])
    deal = buyer.create(any_chain.accounts[2].address, 10**15, deliver_by=timedelta(hours=1), bond=10**14)
    (buyer if who == "buyer" else seller).cancel(deal)
    assert buyer.status(deal.id)[0] == DealState.CANCELLED
    _same(buyer, deal.id)


def test_cancel_request_lapses_on_delivery_in_views_and_rebuild(
    any_chain: Chain, _embedded: tuple[Chain, Suite], _anvil: tuple[Chain, Suite]
):
    """Submitting rewrites the stored word without the cancel flags; the client now clears them too."""
    suite = _anvil[1] if any_chain.kind == "anvil" else _embedded[1]
    buyer = EscrowClient.from_suite(suite, any_chain.accounts[1])
    seller = buyer.as_(any_chain.accounts[2])
    deal = buyer.create(any_chain.accounts[2].address, 10**15, deliver_by=timedelta(hours=1))
    buyer.cancel(deal)
    assert buyer.status(deal.id) == (DealState.FUNDED, 0, True, False)
    seller.submit(deal, b"\x01" * 32)
    assert buyer.status(deal.id)[2:] == (False, False)
    _same(buyer, deal.id)


def test_offers_machine_same_offer_signed_twice_then_one_copy_cancelled(
    request: pytest.FixtureRequest, anvil: Chain, anvil_suite: Suite
):
    """`make fuzz` seed 156444343224070998739110818900478253662: a maker signs the same fields and salt
    twice and cancels one copy; the chain reports the other cancelled too. The contract is right (equal
    fields and salt are one offer, the salt is what makes offers distinct; with cancel slots, the cancel
    kills the whole slot of the counter, so a fortiori both copies); the model kept a status per copy.
    Replayed step by step through the machine; then a third offer, other terms but the same slot, dies
    with them, and one in another slot lives on."""
    from test_offers_machine import Env, OffersMachine  # tests/property is on the path under pytest

    env = OffersMachine.env = Env(anvil, anvil_suite)
    OffersMachine.fast = env.fast
    OffersMachine.stats = {"examples": 0, "checks": 0}
    m = OffersMachine()
    try:
        same = dict(
            maker="m1",
            side=Side.SELL,
            asset=0,
            price=1,
            quantity=2,
            min_fill=1,
            bond=0,
            ttl=HOUR,
            designated=None,
            stale_counter=False,
            kind="valid",
            arbiter=False,
            delivery=0,
            salt=0,
        )
        m.make_offer(**same)
        m.make_offer(**same)
        assert m.offers[0].hash == m.offers[1].hash
        m.books_agree()
        m.fill(
            i=1, taker="t1", qty="one", wrong_value=False, stale=False
        )  # filling one copy fills the digest
        m.books_agree()
        m.cancel(i=1, by_maker=True)
        m.books_agree()
        m.fill(i=0, taker="t2", qty="one", wrong_value=False, stale=False)  # the other copy is cancelled too
        m.books_agree()
        assert m.cancelled(m.offers[0]) and m.offers[0].filled == 1
        m.make_offer(**{**same, "price": 2, "salt": 128})  # other terms, same slot 0: dead on arrival
        m.make_offer(**{**same, "price": 2, "salt": 129})  # slot 1: live
        m.books_agree()
        assert m.cancelled(m.offers[2]) and not m.cancelled(m.offers[3])
        m.fill(i=2, taker="t2", qty="one", wrong_value=False, stale=False)  # OfferIsCancelled, predicted
        m.fill(i=3, taker="t2", qty="one", wrong_value=False, stale=False)
        m.books_agree()
        assert m.offers[2].filled == 0 and m.offers[3].filled == 1
    finally:
        m.teardown()


@pytest.mark.parametrize("wait", [0, 2 * HOUR])
def test_channels_machine_payer_replays_the_payees_old_close_consent(
    anvil: Chain, anvil_suite: Suite, wait: int
):
    """Issue 12 point 9 as a machine example (the search found it as `payer_strategy`): the payee consents
    to close at what it holds, the payer pays more, then replays the consent. Without waiting, the payee
    refused the higher voucher (its store), so the close pays what it holds; after the consent expired the
    payee took the voucher and the chain refuses the replay (`ChannelCloseExpired`)."""
    from test_channels_machine import ChannelsMachine
    from test_channels_machine import Env as ChannelsEnv

    env = ChannelsMachine.env = ChannelsEnv(anvil, anvil_suite)
    ChannelsMachine.fast = env.fast
    ChannelsMachine.stats = {"examples": 0, "checks": 0}
    m = ChannelsMachine()
    try:
        m.open(payer="p1", payee="s1", asset=0, amount=10**15, ttl=4 * HOUR, salt=0, corrupt=None)
        m.solvent_and_views_agree()
        m.payer_strategy(i=1, first=1, ttl=60, wait=wait, second=7, relayed=True)
        m.solvent_and_views_agree()
        (ch,) = m.channels.values()
        assert ch.held == (8 if wait else 1)
        assert ch.status == (1 if wait else 2)  # still open after the refused replay; closed at 1 otherwise
    finally:
        m.teardown()


def _escrow_machine(anvil: Chain, anvil_suite: Suite) -> Any:
    from test_escrow_machine import Env as EscrowEnv
    from test_escrow_machine import EscrowMachine

    env = EscrowMachine.env = EscrowEnv(anvil, anvil_suite)
    EscrowMachine.fast = env.fast
    EscrowMachine.stats = {"examples": 0, "checks": 0}
    return EscrowMachine()


_TERMS = dict(
    buyer="b1",
    seller="s1",
    asset=1,  # the plain ERC-20
    amount=1072,
    bond=0,
    arbiter=False,
    deliver_in=HOUR,
    promised_before=None,
    penalty=0,
    cap=0,
    review=HOUR,
    ruling=HOUR,
    arbiter_fee=0,
    default_split=0,
)


def test_escrow_machine_release_shares_a_donation_pro_rata(anvil: Chain, anvil_suite: Suite):
    """`make fuzz` seed 187916327162437853317562466860670952539: a market deal of 1072, a donation of 2789,
    then the buyer releases 536. The contract pays the seller held / owed of its 533 (Credits._share: the
    donation is shared by the open positions), 533 * 3861 // 1072; the model kept the donation aside as
    nobody's. Then the rest settles the same way and the escrow keeps only rounding dust."""
    m = _escrow_machine(anvil, anvil_suite)
    try:
        token, seller, esc = m.e.token.address, m.e.s1.address, m.e.escrow.address
        m.open_for(p=_TERMS, bond_posted=False, by_stranger=False)
        m.books_balance_and_views_agree()
        m.donate(asset=1, amount=2789, i=0)
        m.books_balance_and_views_agree()
        before = m.balances[(seller, token)]
        m.release(i=0, role="buyer", stale=False, share=2)
        m.books_balance_and_views_agree()
        assert m.balances[(seller, token)] - before == 533 * 3861 // 1072 == 1919
        assert m.balances[(esc, token)] == 1942 and m.owed(token) == 536 + 3
        m.release(i=0, role="buyer", stale=False, share=3)  # the other 536: 533 of it, its share
        m.books_balance_and_views_agree()
        m.collect_fees(asset=1, who="stranger", i=0)  # 6 of fees, their share
        m.books_balance_and_views_agree()
        assert m.owed(token) == 0 and m.balances[(esc, token)] < 3
    finally:
        m.teardown()


def test_escrow_machine_one_settlement_shares_a_surplus_in_any_order_and_credits_a_refusal(
    anvil: Chain, anvil_suite: Suite
):
    """A settlement's payouts come off the books in one write (`_notePending`) and each gets the share held
    before the settlement; a payee the token refuses is credited its whole claim, which then takes its
    share when withdrawn (withdrawPart: part of it; withdrawTo: the rest)."""
    m = _escrow_machine(anvil, anvil_suite)
    try:
        token, buyer, esc = m.e.token.address, m.e.b1.address, m.e.escrow.address
        terms = {**_TERMS, "amount": 10_000, "bond": 1, "arbiter": True, "arbiter_fee": 250}
        m.open_for(p=terms, bond_posted=True, by_stranger=False)
        m.submit(i=0, role="seller", stale=False)
        m.dispute(i=0, role="buyer", stale=False)
        m.donate(asset=1, amount=5_003, i=0)
        m.block_payee(who="b1", blocked=True, i=0)
        m.books_balance_and_views_agree()
        m.resolve(i=0, role="arbiter", stale=False, seller_bps=3333, bond_bps=5000)
        m.books_balance_and_views_agree()
        d = m.deals[m.first_id]
        assert d.settlement is not None and m.credits[(buyer, token)] == d.settlement.to_buyer > 0
        m.block_payee(who="b1", blocked=False, i=0)
        m.withdraw(who="b1", asset=1, to_self=True, part=1, i=0)  # half of the credit
        m.books_balance_and_views_agree()
        assert 0 < m.credits[(buyer, token)] < d.settlement.to_buyer
        m.withdraw(who="b1", asset=1, to_self=False, part=None, i=0)
        m.books_balance_and_views_agree()
        m.collect_fees(asset=1, who="b1", i=0)
        m.books_balance_and_views_agree()
        assert m.owed(token) == 0 and m.balances[(esc, token)] < 4
    finally:
        m.teardown()
