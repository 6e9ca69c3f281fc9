"""Strategic counterparties against OfferBook and PaymentChannels (issue 12, points 1, 8, 9).

Each test is an attack by an agent that follows the contracts' rules; it states what the attacker tries
and asserts the property that stops it (docs/threat-model.md, "Offers and channels").
"""

from __future__ import annotations

from typing import Any

import pytest
from web3.logs import DISCARD

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.clients.offers import NO_LINK
from agentmarket.deploy import Suite
from agentmarket.vouchers import VoucherStore

E = errors.revert_class
ETHER = 10**18


def _send(chain: Chain, account: Any, fn: Any, value: int = 0, gas: int = 1_000_000) -> Any:
    chain.transactor.call(fn, sender=account.address, value=value, block="pending")
    return chain.transactor.transact(account, fn, value=value, gas=gas)


# -- point 9: cooperative-close replay ------------------------------------------------------------------


def test_payer_cannot_replay_an_old_close_below_the_latest_voucher(chain: Chain, suite: Suite, tmp_path):
    """The payee consented to close at 1 ETH; the payer did not submit it and kept buying up to a 3 ETH
    voucher, then submits the old consent to pay 1 ETH. Must hold: no close pays the payee less than the
    latest voucher it holds. The consent carries a deadline (contract), and the payee's store refuses a
    voucher above a live consent (client): either the old consent is dead, or the payee holds nothing above
    it."""
    payer = ChannelClient.from_suite(suite, chain.accounts[1])
    payee = payer.as_(chain.accounts[2])
    store = VoucherStore(tmp_path / "payee.db", payee.domain, durable=False, clock=chain.now)
    ch = payer.open(payee.account_address, 5 * ETHER, ttl=86_400, salt=9)
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


# -- point 8: one hostile item cannot sink a batch ---------------------------------------------------------

BATCH = 4
BATCH_GAS_LIMIT = 3_000_000  # what a client gives a batch of 4; the hostile item used to eat ~all of it


def _gas_of(chain: Chain, account: Any, fn: Any, value: int = 0) -> Any:
    """Mine ``fn`` with a fixed gas limit (no simulation: the hostile item is what is measured)."""
    receipt = chain.transactor.transact(account, fn, value=value, gas=BATCH_GAS_LIMIT)
    assert receipt["status"] == 1
    return receipt


def _measured(chain: Chain, run: Any, arm: Any) -> tuple[Any, Any]:
    """``run()`` on the honest state, then (from the same snapshot) with the hostile item armed."""
    snap = chain.snapshot()
    honest = run()
    chain.revert(snap)
    arm()
    hostile = run()
    return honest, hostile


@pytest.mark.parametrize("attack", ["erc1271_burns_gas", "erc1271_return_bomb", "token_burns_gas"])
def test_fill_many_skips_a_hostile_item_at_under_twice_the_honest_gas(
    chain: Chain, suite: Suite, attack: str
):
    """A maker whose ERC-1271 check burns all its gas (or reverts with a huge payload), or whose token burns
    gas on transfer, is one item of a taker's fillMany. Must hold: that item is skipped and reported, the
    other items fill, and the batch costs at most twice the same batch with the item honest (each item
    runs under FILL_ITEM_GAS; the skip reason is read bounded)."""
    from helpers import deploy, mint

    from agentmarket.clients.offers import OffersClient

    a = chain.accounts
    maker, owner, taker = a[1], a[2], a[3]
    book = OffersClient.from_suite(suite, maker)
    wallet = deploy(chain, "GriefingSigner", owner.address)
    token = deploy(chain, "GasBurningToken")
    mint(chain, token, [taker], 10**24)
    _send(chain, taker, token.functions.approve(book.address, 2**256 - 1))
    items = []
    for i in range(BATCH - 1):
        signed = book.offer("sell", "gpu-hour", 10**15, 1, salt=i)
        items.append((signed.offer.as_tuple(), signed.signature, 1, NO_LINK))
    hostile_asset = token.address if attack == "token_burns_gas" else "0x" + "00" * 20
    hostile = book.sign(
        book.build("sell", "gpu-hour", 10**15, 1, salt=99, maker=wallet.address, asset=hostile_asset),
        key=owner,
    )
    items.insert(1, (hostile.offer.as_tuple(), hostile.signature, 1, NO_LINK))
    value = (BATCH - 1 + (attack != "token_burns_gas")) * 10**15

    def arm() -> None:
        if attack == "token_burns_gas":
            _send(chain, a[0], token.functions.setBurning(True))
        else:
            _send(chain, owner, wallet.functions.setMode(1 if attack == "erc1271_burns_gas" else 2, 100_000))

    fn = book.contract.functions.fillMany(items)
    honest, bad = _measured(chain, lambda: _gas_of(chain, taker, fn, value), arm)
    filled = [book._decode(lg) for lg in bad["logs"] if lg["address"] == book.address]
    names = [d[0] for d in filled if d]
    assert names.count("OfferFilled") == BATCH - 1 and names.count("FillSkipped") == 1
    skipped = next(d[1]["args"] for d in filled if d and d[0] == "FillSkipped")
    assert int(skipped["index"]) == 1 and len(skipped["reason"]) <= 4 + 7 * 32
    ratio = bad["gasUsed"] / honest["gasUsed"]
    assert ratio <= 2, f"hostile batch {bad['gasUsed']} vs honest {honest['gasUsed']}: {ratio:.2f}x"


@pytest.mark.parametrize("attack", ["erc1271_burns_gas", "erc1271_return_bomb", "token_burns_gas"])
def test_claim_many_skips_a_hostile_item_at_under_twice_the_honest_gas(
    chain: Chain, suite: Suite, attack: str
):
    """A payee redeems vouchers of four channels in one claimMany; one payer is an ERC-1271 wallet whose
    check burns all its gas (or return-bombs), or one channel's token burns gas on the payout. Must hold:
    the wallet's item is skipped and reported (the burning token's payout becomes a withdrawable credit),
    the rest is paid, and the batch costs at most twice the same batch with that item honest."""
    from helpers import deploy, mint

    a = chain.accounts
    payers, owner, payee_acct = [a[1], a[4], a[5]], a[2], a[3]
    pc = suite["PaymentChannels"]
    wallet = deploy(chain, "GriefingSigner", owner.address)
    token = deploy(chain, "GasBurningToken")
    clients = [ChannelClient.from_suite(suite, p) for p in payers]
    payee = clients[0].as_(payee_acct)
    items = []
    for c in clients:
        ch = c.open(payee.account_address, ETHER, ttl=86_400, salt=1)
        items.append((ch.key, ETHER // 2, c.sign_voucher(ch, ETHER // 2).signature))
    if attack == "token_burns_gas":
        mint(chain, token, [payers[0]], 10**24)
        ch = clients[0].open(
            payee.account_address, ETHER, ttl=86_400, salt=2, asset=token.address, approve=True
        )
        signature = clients[0].sign_voucher(ch, ETHER // 2).signature
    else:
        key = (wallet.address, payee.account_address, "0x" + "00" * 20, 1)
        expiry = chain.now() + 86_400
        opening = wallet.functions.execute(pc.address, pc.encode_abi("open", [key, ETHER, expiry]))
        _send(chain, owner, opening, value=ETHER)
        ch = payee.channel(payee.channel_id(*key))
        signature = ChannelClient.from_suite(suite, owner).sign_voucher(ch, ETHER // 2).signature
    items.insert(1, (ch.key, ETHER // 2, signature))

    def arm() -> None:
        if attack == "token_burns_gas":
            _send(chain, a[0], token.functions.setBurning(True))
        else:
            _send(chain, owner, wallet.functions.setMode(1 if attack == "erc1271_burns_gas" else 2, 100_000))

    fn = pc.functions.claimMany(items)
    honest, bad = _measured(chain, lambda: _gas_of(chain, payee_acct, fn), arm)
    claimed = pc.events.ChannelClaimed().process_receipt(bad, errors=DISCARD)
    skipped = pc.events.ChannelClaimSkipped().process_receipt(bad, errors=DISCARD)
    if attack == "token_burns_gas":  # the claim stands; its payout is credited, not pushed
        assert len(claimed) == BATCH and not skipped
        assert pc.functions.creditOf(payee.account_address, token.address).call() == ETHER // 2
    else:
        assert len(claimed) == BATCH - 1 and len(skipped) == 1
        assert bytes(skipped[0]["args"]["channelId"]) == ch.id
    ratio = bad["gasUsed"] / honest["gasUsed"]
    assert ratio <= 2, f"hostile batch {bad['gasUsed']} vs honest {honest['gasUsed']}: {ratio:.2f}x"


# -- point 1 (offers side): the client's defaults are the safe ones --------------------------------------


def test_open_buy_request_needs_protection_or_an_explicit_opt_in(chain: Chain, suite: Suite):
    """With the client's defaults (no arbiter, no bond, any taker) a stranger could fill a buy request,
    submit junk and collect. Must hold: build, sign and post refuse such terms with a typed error before
    any transaction; an arbiter, a designated taker or a seller bond of 10% of the price makes them safe;
    only allow_unsafe=True produces the old offer."""
    from agentmarket.clients.offers import OffersClient, unsafe_terms

    buyer = OffersClient.from_suite(suite, chain.accounts[1])
    stranger = buyer.as_(chain.accounts[6])
    nonce = chain.w3.eth.get_transaction_count(buyer.account.address)
    with pytest.raises(errors.UnsafeTerms):
        buyer.build("buy", "dataset/x", 10**16, 1, bond_per_unit=0)
    with pytest.raises(errors.UnsafeTerms):
        buyer.offer("buy", "dataset/x", 10**16, 1, bond_per_unit=10**15 - 1)  # bond under 10%
    risky = buyer.build("buy", "dataset/x", 10**16, 1, bond_per_unit=0, allow_unsafe=True)
    assert unsafe_terms(risky) is not None
    with pytest.raises(errors.UnsafeTerms):
        buyer.sign(risky)
    with pytest.raises(errors.UnsafeTerms):
        buyer.post(risky)
    assert chain.w3.eth.get_transaction_count(buyer.account.address) == nonce  # nothing was sent
    for safe in (
        {"arbiter": chain.accounts[5].address, "bond_per_unit": 1},
        {"arbiter": chain.accounts[5].address},  # the client's default bond (10% of the price)
        {},  # the default bond alone meets the 10% floor
        {"taker": chain.accounts[3].address},
        {"bond_per_unit": 10**15},
    ):
        assert unsafe_terms(buyer.build("buy", "dataset/x", 10**16, 1, **safe)) is None
    assert unsafe_terms(buyer.build("sell", "dataset/x", 10**16, 1)) is None  # the buyer picks the seller
    # an arbiter alone is not enough: with no seller bond a searcher blocks the sellers' fills for gas only
    with pytest.raises(errors.UnsafeTerms):
        buyer.build("buy", "dataset/x", 10**16, 1, arbiter=chain.accounts[5].address, bond_per_unit=0)
    # the explicit opt-in still works, and then the stranger can take the request as before
    buyer.deposit(10**16)
    signed = buyer.offer("buy", "dataset/x", 10**16, 1, bond_per_unit=0, allow_unsafe=True)
    assert stranger.fill(signed).deal.seller == chain.accounts[6].address


# -- the simulator's offers through a relay (--relay) -------------------------------------------------------


@pytest.mark.parametrize("field", ["unit_price", "quantity", "taker"])
def test_a_relay_cannot_alter_a_signed_offer_a_buyer_fills(chain: Chain, suite: Suite, field: str):
    """A relay (or its operator, colluding with a provider) hands the buyer a copy of the provider's
    offer with a higher price, more units, or another taker. Must hold: the taker's pre-flight check
    refuses it with a typed error before any transaction (the maker's EIP-712 signature covers every
    field), and the chain would refuse it too."""
    from dataclasses import replace

    from agentmarket.clients.offers import OffersClient, SignedOffer

    a = chain.accounts
    maker, buyer, other = a[1], a[2], a[3]
    signed = OffersClient.from_suite(suite, maker).offer("sell", "gpu-hour", 10**15, 2, taker=buyer.address)
    altered = {"unit_price": 2 * 10**15, "quantity": 5, "taker": other.address}[field]
    forged = SignedOffer(replace(signed.offer, **{field: altered}), signed.signature, signed.domain)
    taker = OffersClient.from_suite(suite, buyer)
    nonce = chain.w3.eth.get_transaction_count(buyer.address)
    # re-addressed to another taker it is refused as not ours; any other change breaks the signature
    with pytest.raises(errors.NotAuthorized if field == "taker" else errors.SignatureError):
        taker.check(forged, 1)
    with pytest.raises(errors.AgentMarketError):
        taker.fill(forged, 1)
    assert chain.w3.eth.get_transaction_count(buyer.address) == nonce  # nothing was sent
    assert taker.check(signed, 1) == 1  # the honest copy fills
