"""Deterministic replays of what the escrow machine found (DESIGN §6.10: the client's rebuild from events
equals the on-chain views), kept as plain tests so they run on every backend in a fraction of a second."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import DealState


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
