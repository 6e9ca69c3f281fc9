"""Odd tokens against the escrow (issue 12, point 6; docs/design.md §6.11): no token behaviour moves one user's loss
onto another. The rows of docs/tokens.md that are not covered in tests/contracts/test_escrow.py or
tests/security/test_hostile_counterparties.py are here. Embedded chain."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from helpers import deploy, mint, send

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient, ChannelStatus
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
    with pytest.raises(E("AssetDeficit")) as info:
        send(chain, market, fn)
    args = info.value.arguments
    assert (args["asset"], args["balance"], args["owed"]) == (token.address, 90 * UNIT, 100 * UNIT)


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


def test_a_rebase_down_deficit_refuses_a_direct_create(chain: Chain, suite: Suite) -> None:
    """v1: after a -10% rebase a new buyer's `create` was taken, and its coins paid the old holders' loss
    (the last to withdraw could not). The pull now reads the escrow's balance against its books (locked,
    credits and fees in one word) and refuses the asset while it is short."""
    escrow, (_, buyer, _, _, other) = suite["AgentEscrow"], chain.accounts[:5]
    token = deploy(chain, "RebasingToken")
    mint(chain, token, [buyer, other], 1000 * UNIT)
    first = EscrowClient.from_suite(suite, buyer)
    first.create(_terms(chain, token, 100 * UNIT), approve=True)
    send(chain, chain.accounts[0], token.functions.rebase(9000))  # the escrow holds 90 against books of 100
    t = _terms(chain, token, 50 * UNIT)
    t = replace(t, buyer=other.address)
    send(chain, other, token.functions.approve(escrow.address, t.amount))
    with pytest.raises(E("AssetDeficit")) as info:
        send(chain, other, escrow.functions.create(t.as_tuple()))
    args = info.value.arguments
    assert (args["asset"], args["balance"], args["owed"]) == (token.address, 90 * UNIT, 100 * UNIT)
    assert token.functions.balanceOf(other.address).call() == 1000 * UNIT * 9 // 10  # nothing was taken


def _sender_tax_token(chain: Chain, holders: list[Any]) -> Any:
    token = deploy(chain, "SenderTaxToken")
    mint(chain, token, holders, 1000 * UNIT)
    return token


def test_a_sender_tax_payout_is_isolated_and_its_payee_pays_its_own_tax(chain: Chain, suite: Suite) -> None:
    """v1: a token that charges the sender on top of a transfer took the tax of every payout out of the
    other positions' coins (outgoing payouts were not measured): the escrow went insolvent. Every ERC-20
    push is now measured; one the token over-charges is undone and credited, and the withdrawal charges the
    tax to the credit it pays out. Nobody else's coins pay it, and the escrow stays solvent throughout."""
    a = chain.accounts
    buyer, seller, other_buyer = a[1], a[2], a[4]
    token = _sender_tax_token(chain, [buyer, other_buyer])
    client = EscrowClient.from_suite(suite, buyer)
    deal = client.create(_terms(chain, token, 100 * UNIT), approve=True)
    other = client.as_(other_buyer)
    t_other = replace(
        _terms(chain, token, 100 * UNIT), buyer=other_buyer.address, deliver_by=chain.now() + 2 * HOUR
    )
    other_deal = other.create(t_other, approve=True)
    send(chain, a[0], token.functions.setTax(1000))  # 10% on top of every transfer, from now on
    deal = client.as_(seller).submit(deal, b"\x01" * 32)
    paid = 100 * UNIT - protocol_fee(100 * UNIT, client.fee_bps)
    # (fixed gas: an ERC-20 payout that falls back to a credit costs more than the ETH accept's gas key)
    send(chain, buyer, suite["AgentEscrow"].functions.accept(deal.id, deal.terms.as_tuple()))
    assert token.functions.balanceOf(seller.address).call() == 0  # the over-charged push was undone ...
    assert client.credit(seller.address, token.address) == paid  # ... and credited in full
    balance, totals = client.solvency(token.address)
    assert balance == totals.accounted

    # The seller withdraws: it receives less than its credit, and the escrow parts with at most the credit.
    before = token.functions.balanceOf(suite["AgentEscrow"].address).call()
    sent = client.as_(seller).withdraw(token.address)
    received = token.functions.balanceOf(seller.address).call()
    left = before - token.functions.balanceOf(suite["AgentEscrow"].address).call()
    assert 0 < received < paid and left <= paid and sent == left  # the client reports what left
    assert client.credit(seller.address, token.address) == paid - left  # the rest stays its credit
    balance, totals = client.solvency(token.address)
    assert balance == totals.accounted

    # The other buyer's deal lapses undelivered: its refund is whole (nobody's tax came out of it).
    chain.advance_time(3 * HOUR)
    send(
        chain, other_buyer, suite["AgentEscrow"].functions.refund(other_deal.id, other_deal.terms.as_tuple())
    )
    assert other.credit(other_buyer.address, token.address) == 100 * UNIT
    balance, totals = client.solvency(token.address)
    assert balance == totals.accounted
    # The escrow now holds no spare coins to attempt the taxed transfer of all 100 (it would need 110):
    # `withdrawPart` names an amount whose tax fits in the credit.
    escrow = suite["AgentEscrow"]
    with pytest.raises(E("CreditsTransferFailed")):
        send(chain, other_buyer, escrow.functions.withdraw(token.address))
    assert other.withdraw(token.address, amount=90 * UNIT) == 99 * UNIT  # 90 sent + its 9 of tax
    assert token.functions.balanceOf(other_buyer.address).call() == 900 * UNIT + 90 * UNIT
    assert other.credit(other_buyer.address, token.address) == UNIT  # 100 - 90 - its own 9 of tax
    # Asking for the whole remaining credit: its tax does not fit, so the amount is cut by the excess.
    send(chain, other_buyer, escrow.functions.withdrawPart(token.address, other_buyer.address, UNIT))
    assert token.functions.balanceOf(other_buyer.address).call() == 990 * UNIT + UNIT * 9 // 10
    assert other.credit(other_buyer.address, token.address) == UNIT // 100
    balance, totals = client.solvency(token.address)
    assert balance == totals.accounted


def test_a_sender_tax_channel_payout_is_isolated(chain: Chain, suite: Suite) -> None:
    """The same payout module pays channels: a claim the token over-charges becomes the payee's credit,
    and the other channel's deposit stays whole (balance == open deposits - claimed + credits)."""
    a = chain.accounts
    payer, payee, other_payer = a[1], a[2], a[4]
    token = _sender_tax_token(chain, [payer, other_payer])
    pc = suite["PaymentChannels"]
    client = ChannelClient.from_suite(suite, payer)
    ch = client.open(payee.address, 10 * UNIT, ttl=HOUR, salt=1, asset=token.address, approve=True)
    other = client.as_(other_payer)
    other_ch = other.open(payee.address, 10 * UNIT, ttl=HOUR, salt=2, asset=token.address, approve=True)
    send(chain, a[0], token.functions.setTax(1000))
    client.as_(payee).claim(client.sign_voucher(ch, 4 * UNIT))
    assert token.functions.balanceOf(payee.address).call() == 0
    assert client.credit(payee.address, token.address) == 4 * UNIT

    def solvent() -> None:
        locked = 0
        for c in (ch, other_ch):
            status, deposit, claimed, _ = client.onchain(c.id)
            locked += deposit - claimed if status == ChannelStatus.OPEN else 0
        held = token.functions.balanceOf(pc.address).call()
        assert held == locked + pc.functions.creditTotal(token.address).call()

    solvent()
    left = client.as_(payee).withdraw(token.address)  # 3.6 sent, 0.36 of tax: the payee's own
    assert 0 < token.functions.balanceOf(payee.address).call() < left <= 4 * UNIT
    solvent()
    chain.advance_time(2 * HOUR)
    other.reclaim(other_ch)
    assert other.credit(other_payer.address, token.address) == 10 * UNIT
    solvent()
