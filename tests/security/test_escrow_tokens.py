"""Odd tokens against the escrow (issue 12, point 6; docs/design.md §6.11): no token behaviour moves one user's loss
onto another. The rows of docs/tokens.md that are not covered in tests/contracts/test_escrow.py or
tests/security/test_hostile_counterparties.py are here. Embedded chain."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import deploy, mint, send

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import DealTerms, protocol_fee

E = errors.revert_class
UNIT = 10**18
HOUR = 3600


def _terms(chain: Chain, token: Any, amount: int) -> DealTerms:
    a = chain.accounts
    return DealTerms(
        buyer=a[1].address,
        seller=a[2].address,
        asset=token.address,
        amount=amount,
        deliver_by=chain.now() + 10 * HOUR,
        review_window=HOUR,
    )


def test_a_rebase_down_deficit_is_not_charged_to_the_next_market_deal(chain: Chain, suite: Suite) -> None:
    """v1: after a -10% rebase, a market deal was credited "balance minus books": the new deal paid the
    old holders' loss. Now the asset takes no new market deals while its books exceed its balance. (A market
    that pre-transfers can mask a deficit smaller than its transfer: docs/tokens.md, markets should approve.)"""
    escrow, (owner, buyer, _, _, _, market) = suite["AgentEscrow"], chain.accounts[:6]
    send(chain, owner, escrow.functions.setMarket(market.address, True))  # before any deal: at once
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [buyer, market], 1000 * UNIT)
    t = _terms(chain, token, 100 * UNIT)
    send(chain, buyer, token.functions.approve(escrow.address, t.amount))
    send(chain, buyer, escrow.functions.create(t.as_tuple()))
    send(chain, owner, token.functions.rebase(9000))  # the escrow now holds 90 against books of 100
    send(chain, market, token.functions.approve(escrow.address, 50 * UNIT))  # the escrow pulls (measured)
    sale = _terms(chain, token, 50 * UNIT)
    fn = escrow.functions.openFor(sale.as_tuple(), False)
    with pytest.raises(E("EscrowAssetDeficit")) as info:
        send(chain, market, fn)
    args = info.value.arguments
    assert (args["asset"], args["balance"], args["accounted"]) == (token.address, 90 * UNIT, 100 * UNIT)


def test_a_token_reverting_on_zero_transfers_settles(chain: Chain, suite: Suite) -> None:
    """Zero payouts (no late penalty, no bond) are skipped, never sent: such a token cannot block settlement."""
    buyer, seller = chain.accounts[1:3]
    token = deploy(chain, "RevertOnZeroToken")
    mint(chain, token, [buyer], 10 * UNIT)
    client = EscrowClient.from_suite(suite, buyer)
    deal = client.create(_terms(chain, token, UNIT), approve=True)
    deal = client.as_(seller).submit(deal, b"\x01" * 32)
    before = token.functions.balanceOf(seller.address).call()
    accepted = client.accept(deal)
    assert accepted.settlement is not None and accepted.settlement.to_buyer == 0
    paid = UNIT - protocol_fee(UNIT, client.fee_bps)
    assert token.functions.balanceOf(seller.address).call() - before == paid
    balance, totals = client.solvency(token.address)
    assert balance == totals.accounted
