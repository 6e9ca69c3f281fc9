"""Strategic counterparties against OfferBook and PaymentChannels (issue 12, points 1, 8, 9).

Each test is an attack by an agent that follows the contracts' rules; it states what the attacker tries
and asserts the property that stops it (docs/threat-model.md, "Offers and channels").
"""

from __future__ import annotations

from typing import Any

import pytest

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import Suite
from agentmarket.vouchers import VoucherStore

E = errors.revert_class
ETHER = 10**18


def _send(chain: Chain, account: Any, fn: Any, gas: int = 1_000_000) -> Any:
    chain.transactor.call(fn, sender=account.address, block="pending")
    return chain.transactor.transact(account, fn, gas=gas)


# -- point 9: cooperative-close replay ------------------------------------------------------------------


def test_payer_cannot_replay_an_old_close_below_the_latest_voucher(chain: Chain, suite: Suite, tmp_path):
    """The payee consented to close at 1 ETH; the payer did not submit it and kept buying up to a 3 ETH
    voucher, then submits the old consent to pay 1 ETH. Must hold: no close pays the payee less than the
    latest voucher it holds. The consent carries a deadline (contract), and the payee's store refuses a
    voucher above a live consent (client): either the old consent is dead, or the payee holds nothing above
    it."""
    payer = ChannelClient.from_suite(suite, chain.accounts[1])
    payee = payer.as_account(chain.accounts[2])
    store = VoucherStore(tmp_path / "payee.db", payee.domain, durable=False, clock=chain.now)
    ch = payer.open(payee.address, 5 * ETHER, ttl=86_400, salt=9)
    store.register(ch.terms())
    store.accept(payer.sign_voucher(ch, ETHER))
    old = payee.close_signature(ch, ETHER, store=store)  # 1 ETH: all it held then
    three = payer.sign_voucher(ch, 3 * ETHER)
    with pytest.raises(errors.ClosePending):  # not served against while the 1 ETH consent is live
        store.accept(three)
    assert store.latest(ch.id).voucher.amount == ETHER
    chain.travel_to(old.deadline + 1)
    store.accept(three)  # the old consent is dead: safe to serve
    replay = payer.contract.functions.cooperativeClose(ch.key, ETHER, old.deadline, b"", old.signature)
    with pytest.raises(E("ChannelCloseExpired")):
        _send(chain, payer.account, replay)
    closed = payee.close(ch, store.latest(ch.id).voucher)
    assert closed.claimed == 3 * ETHER
