"""OfferBook: signed and posted offers opening escrow deals — full flows, every rejection, batches, the
offer-book view, deposits, and the client's pre-flight checks.

Contract-level rejections are sent raw (``_raw_fill``: no client pre-flight, a fixed gas limit, so the
revert comes from the mined transaction); client-level ones go through OffersClient and must raise before
anything is sent. After each test the OfferBook holds exactly the ETH deposits (it keeps no other money)
and the escrow is solvent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from helpers import GAS, assert_escrow_solvent, deploy, mint

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.offers import FillLink, Offer, OffersClient, Side, SignedOffer, resource_id
from agentmarket.deploy import Suite
from agentmarket.eip712 import SECP256K1_N, Domain, sign_digest
from agentmarket.types import ETH, ZERO_ADDRESS, DealState

E = errors.revert_class
UNIT = 10**15
GPU = "gpu-hour/h100"
HOUR = 3600


@pytest.fixture(scope="module")
def mocks(_embedded: tuple[Chain, Suite]) -> dict[str, Any]:
    """Token and ERC-1271 wallets, deployed once for the module (before the per-test snapshots)."""
    chain, _ = _embedded
    owner = chain.accounts[6]
    out = {
        "token": deploy(chain, "MockERC20", "Mock USD", "mUSD", 18),
        "wallet": deploy(chain, "MockERC1271Wallet", owner.address, True),
        "refusing": deploy(chain, "MockERC1271Wallet", owner.address, False),
    }
    mint(chain, out["token"], chain.accounts[1:6], 10**24)
    return out


class Env:
    def __init__(self, chain: Chain, suite: Suite, mocks: dict[str, Any]):
        self.chain, self.suite, self.mocks = chain, suite, mocks
        a = chain.accounts
        self.book = suite["OfferBook"]
        self.escrow = suite["AgentEscrow"]
        self.maker = OffersClient.from_suite(suite, a[2])
        self.buyer = self.maker.as_(a[1])
        self.buyer2 = self.maker.as_(a[3])
        self.token = mocks["token"]

    def raw_fill(
        self, account: Any, offer: Offer, signature: bytes, quantity: int, value: int = 0, book: Any = None
    ) -> Any:
        """Fill with no client checks (the contract must reject bad fills itself)."""
        book = book or self.book
        return self.chain.transactor.transact(
            account, book.functions.fill(offer.as_tuple(), signature, quantity), value=value, gas=GAS
        )

    def raw_fill_after(
        self, account: Any, offer: Offer, signature: bytes, quantity: int, link: Any, value: int = 0
    ) -> Any:
        """``fillAfter`` with no client checks, from the end of the fill ``link`` (a FillLink)."""
        return self.chain.transactor.transact(
            account,
            self.book.functions.fillAfter(offer.as_tuple(), signature, quantity, link.as_tuple()),
            value=value,
            gas=GAS,
        )

    def eth(self, who: str) -> int:
        return int(self.chain.w3.eth.get_balance(who))

    def tokens(self, who: str) -> int:
        return int(self.token.functions.balanceOf(who).call())


@pytest.fixture
def env(chain: Chain, suite: Suite, mocks: dict[str, Any]) -> Iterator[Env]:
    e = Env(chain, suite, mocks)
    yield e
    # The OfferBook holds exactly the deposits of the accounts that used it; the escrow is solvent.
    deposits = sum(e.maker.deposit_of(a.address) for a in chain.accounts)
    deposits += sum(e.maker.deposit_of(m.address) for m in (mocks["wallet"], mocks["refusing"]))
    assert e.eth(e.book.address) == deposits
    assert_escrow_solvent(EscrowClient.from_suite(suite), (ETH, e.token.address))


# -- full flows --------------------------------------------------------------------------------------------


def test_sell_offer_eth_partial_fills_to_exhaustion(env: Env) -> None:
    signed = env.maker.offer(
        "sell",
        GPU,
        UNIT,
        10,
        min_fill=2,
        delivery=HOUR,
        grace=2 * HOUR,
        terms_hash=b"\x07" * 32,
        review_window=600,
    )
    before = env.eth(env.escrow.address)
    f1 = env.buyer.fill(signed, 3)
    assert (f1.quantity, f1.filled) == (3, 3)
    d = f1.deal
    assert (d.buyer, d.seller, d.amount, d.bond, d.state) == (
        env.buyer.account.address,
        env.maker.account.address,
        3 * UNIT,
        0,
        DealState.FUNDED,
    )
    block = env.chain.w3.eth.get_block(env.chain.w3.eth.get_transaction_receipt(f1.tx_hash)["blockNumber"])
    assert d.terms.promised_by == block["timestamp"] + HOUR
    assert d.terms.deliver_by == d.terms.promised_by + 2 * HOUR
    # the deal's termsHash commits to the offer's spec and the units it bought: [0, 3)
    assert d.terms.terms_hash == signed.offer.fill_terms_hash(0, 3) and d.terms.review_window == 600
    assert d.id == env.maker.fill_deal_id(signed, 0)
    assert d.opened_by == env.book.address
    assert env.maker.remaining(signed) == 7
    f2 = env.buyer2.fill(signed)  # the rest
    assert (f2.quantity, f2.filled, f2.deal.buyer) == (7, 10, env.buyer2.account.address)
    assert f2.deal.terms.terms_hash == signed.offer.fill_terms_hash(3, 7)  # the chain's second link
    assert env.eth(env.escrow.address) - before == 10 * UNIT
    assert env.maker.remaining(signed) == 0
    assert env.maker.status(signed).filled == 10
    with pytest.raises(errors.InvalidInput):
        env.buyer.fill(signed, 1)
    tip = env.maker.last_fill(signed)
    assert tip is not None and (tip.start, tip.quantity) == (3, 7)
    with pytest.raises(E("OfferOverfill")) as info:
        env.raw_fill_after(env.buyer.account, signed.offer, signed.signature, 1, tip, value=UNIT)
    assert info.value.remaining == 0
    # each start opens one fill, ever: a second head fill, or a second fill after the head, is refused
    with pytest.raises(E("EscrowDealExists")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 2, value=2 * UNIT)
    head = EscrowClient.from_suite(env.suite).deal(d.id)
    with pytest.raises(E("EscrowDealExists")):
        env.raw_fill_after(
            env.buyer.account, signed.offer, signed.signature, 2, FillLink(0, 3, head), value=2 * UNIT
        )
    # a link that does not prove a fill (wrong quantity: the deal's termsHash does not commit to it)
    with pytest.raises(E("OfferBadLink")):
        env.raw_fill_after(
            env.buyer.account, signed.offer, signed.signature, 2, FillLink(0, 2, head), value=2 * UNIT
        )


def test_sell_offer_eth_with_bond_from_deposit_then_settles(env: Env) -> None:
    bond = UNIT // 2
    env.maker.deposit(10 * bond)
    signed = env.maker.offer("sell", GPU, UNIT, 10, bond_per_unit=bond)
    fill = env.buyer.fill(signed, 4)
    assert (fill.deal.bond, fill.deal.state) == (4 * bond, DealState.FUNDED)
    assert env.maker.deposit_of() == 6 * bond
    seller = EscrowClient.from_suite(env.suite, env.maker.account)
    deal = seller.submit(fill.deal, b"\x01" * 32)
    balance = env.eth(env.maker.account.address)
    EscrowClient.from_suite(env.suite, env.buyer.account).accept(deal)
    gained = env.eth(env.maker.account.address) - balance
    assert gained > 4 * UNIT  # price (minus protocol fee) plus the bond back, gas paid by the buyer
    # deposit insufficient for the rest: client refuses; the contract too
    env.maker.withdraw(5 * bond)
    with pytest.raises(errors.InsufficientFunds):
        env.buyer.fill(signed, 6)
    with pytest.raises(E("OfferInsufficientDeposit")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 6, value=6 * UNIT)


def test_buy_request_eth_maker_pays_from_deposit_taker_posts_bond(env: Env) -> None:
    requester, provider = env.maker, env.buyer  # the maker buys; the taker sells
    requester.deposit(5 * UNIT)
    request = requester.offer("buy", GPU, UNIT, 5, bond_per_unit=UNIT // 10)
    fill = provider.fill(request, 2)
    d = fill.deal
    assert (d.buyer, d.seller) == (requester.account.address, provider.account.address)
    assert (d.amount, d.bond, d.state) == (2 * UNIT, 2 * UNIT // 10, DealState.FUNDED)
    assert requester.deposit_of() == 3 * UNIT
    with pytest.raises(E("OfferWrongValue")):  # the taker's bond must come with the fill
        env.raw_fill(provider.account, request.offer, request.signature, 1, value=0)


def test_sell_offer_erc20_with_bond_by_allowance(env: Env) -> None:
    token = env.token.address
    env.maker.approve(token, 10**20)
    signed = env.maker.offer("sell", GPU, 10**18, 5, asset=token, bond_per_unit=10**17)
    with pytest.raises(errors.InsufficientAllowance):
        env.buyer.fill(signed, 2)
    escrow_before, buyer_before = env.tokens(env.escrow.address), env.tokens(env.buyer.account.address)
    fill = env.buyer.fill(signed, 2, approve=True)
    assert (fill.deal.asset, fill.deal.amount, fill.deal.bond) == (token, 2 * 10**18, 2 * 10**17)
    assert env.tokens(env.escrow.address) - escrow_before == 2 * 10**18 + 2 * 10**17
    assert buyer_before - env.tokens(env.buyer.account.address) == 2 * 10**18
    with pytest.raises(E("OfferWrongValue")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=1)


def test_buy_request_erc20_posted_on_chain_filled_without_signature(env: Env) -> None:
    token = env.token.address
    requester, provider = env.maker, env.buyer
    requester.approve(token, 3 * 10**18)
    request = requester.build(
        "buy", "dataset/weather-2024", 10**18, 3, asset=token, taker=provider.account.address
    )
    posted = requester.post(request)
    assert posted.offer == request and posted.offer_hash == requester.hash(request)
    assert requester.status(request).posted
    with pytest.raises(errors.InvalidState):
        requester.post(request)
    with pytest.raises(E("OfferAlreadyPosted")):
        env.chain.transactor.transact(requester.account, env.book.functions.post(request.as_tuple()), gas=GAS)
    fill = provider.fill(request)  # a posted Offer, no signature
    assert (fill.deal.buyer, fill.deal.seller, fill.deal.amount) == (
        requester.account.address,
        provider.account.address,
        3 * 10**18,
    )
    with pytest.raises(errors.InvalidInput):  # exhausted
        provider.fill(request, 1)


def test_late_delivery_penalty_flows_from_offer_terms(env: Env) -> None:
    signed = env.maker.offer(
        "sell", GPU, UNIT, 1, delivery=HOUR, grace=4 * HOUR, penalty_bps_per_hour=1000, penalty_cap_bps=2500
    )
    deal = env.buyer.fill(signed).deal
    assert (deal.terms.penalty_bps_per_hour, deal.terms.penalty_cap_bps) == (1000, 2500)
    env.chain.set_next_timestamp(deal.terms.promised_by + 2 * HOUR)
    deal = EscrowClient.from_suite(env.suite, env.maker.account).submit(deal, b"\x01" * 32)
    settled = EscrowClient.from_suite(env.suite, env.buyer.account).accept(deal)
    assert settled.settlement is not None and settled.settlement.to_buyer == UNIT * 2000 // 10_000


# -- rejections --------------------------------------------------------------------------------------------


def test_expired(env: Env) -> None:
    signed = env.maker.offer("sell", GPU, UNIT, 2, expiry=timedelta(minutes=10))
    env.chain.set_next_timestamp(signed.offer.expiry)  # the last second is still fillable
    env.buyer.fill(signed, 1)
    env.chain.mine()
    with pytest.raises(errors.InvalidState):
        env.buyer.fill(signed, 1)
    with pytest.raises(E("OfferExpired")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=UNIT)
    assert env.maker.remaining(signed) == 0


def test_cancelled(env: Env) -> None:
    signed = env.maker.offer("sell", GPU, UNIT, 5)
    env.buyer.fill(signed, 2)
    with pytest.raises(errors.NotAuthorized):
        env.buyer.cancel(signed)
    with pytest.raises(E("OfferNotMaker")):
        env.chain.transactor.transact(
            env.buyer.account, env.book.functions.cancel(signed.offer.as_tuple()), gas=GAS
        )
    env.maker.cancel(signed)
    assert env.maker.status(signed).cancelled and env.maker.remaining(signed) == 0
    with pytest.raises(errors.InvalidState):
        env.buyer.fill(signed, 1)
    with pytest.raises(E("OfferIsCancelled")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=UNIT)
    # a cancelled offer cannot be posted either
    with pytest.raises(E("OfferIsCancelled")):
        env.chain.transactor.transact(
            env.maker.account, env.book.functions.post(signed.offer.as_tuple()), gas=GAS
        )


def test_counter_bumped_voids_every_older_offer(env: Env) -> None:
    offers = [env.maker.offer("sell", GPU, UNIT + i, 3) for i in range(3)]
    result = env.maker.cancel_all()
    assert result.counter == 1 == env.maker.counter()
    for signed in offers:
        with pytest.raises(errors.InvalidState):
            env.buyer.fill(signed, 1)
        with pytest.raises(E("OfferStaleCounter")) as info:
            env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=signed.offer.unit_price)
        assert (info.value.counter, info.value.current) == (0, 1)
    fresh = env.maker.offer("sell", GPU, UNIT, 3)
    assert fresh.offer.counter == 1
    assert env.buyer.fill(fresh, 1).filled == 1


def test_overfill_zero_fill_and_min_fill(env: Env) -> None:
    signed = env.maker.offer("sell", GPU, UNIT, 5, min_fill=2)
    for q in (0, 6):
        with pytest.raises(errors.InvalidInput):
            env.buyer.fill(signed, q)
        with pytest.raises(E("OfferOverfill")):
            env.raw_fill(env.buyer.account, signed.offer, signed.signature, q, value=q * UNIT)
    with pytest.raises(E("OfferBelowMinFill")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=UNIT)
    env.buyer.fill(signed, 4)
    assert env.buyer.fill(signed, 1).filled == 5  # the last unit is below min_fill but is the whole rest


def test_wrong_taker_and_self_fill(env: Env) -> None:
    private = env.maker.offer("sell", GPU, UNIT, 2, taker=env.buyer2.account.address)
    with pytest.raises(errors.NotAuthorized):
        env.buyer.fill(private, 1)
    with pytest.raises(E("OfferWrongTaker")) as info:
        env.raw_fill(env.buyer.account, private.offer, private.signature, 1, value=UNIT)
    assert info.value.taker == env.buyer2.account.address
    assert env.buyer2.fill(private, 2).deal.buyer == env.buyer2.account.address
    own = env.maker.offer("sell", GPU, UNIT, 2)
    with pytest.raises(errors.NotAuthorized):
        env.maker.fill(own, 1)
    with pytest.raises(E("OfferSelfFill")):
        env.raw_fill(env.maker.account, own.offer, own.signature, 1, value=UNIT)


def test_replay_on_another_contract_address(env: Env) -> None:
    other = deploy(env.chain, "OfferBook", env.escrow.address)
    env.chain.transactor.transact(env.chain.accounts[0], env.escrow.functions.setMarket(other.address, True))
    signed = env.maker.offer("sell", GPU, UNIT, 2)
    other_client = OffersClient(env.chain, other.address, env.buyer.account)
    with pytest.raises(errors.SignatureError):
        other_client.fill(signed, 1)
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, signed.offer, signed.signature, 1, value=UNIT, book=other)
    env.buyer.fill(signed, 1)  # still good where it was signed for


def test_replay_on_another_chain_id_same_contract_address(env: Env) -> None:
    # the same OfferBook address under another chain id (the domain binds both)
    signed = env.maker.offer("sell", GPU, UNIT, 2)
    foreign = Domain(signed.domain.name, signed.domain.version, 1, env.book.address)
    replayed = SignedOffer(
        signed.offer, sign_digest(env.maker.account, signed.offer.digest(foreign)), foreign
    )
    with pytest.raises(errors.SignatureError):
        env.buyer.fill(replayed, 1)
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, replayed.offer, replayed.signature, 1, value=UNIT)


def test_malleable_high_s_and_garbage_signatures(env: Env) -> None:
    signed = env.maker.offer("sell", GPU, UNIT, 2)
    sig = signed.signature
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])  # 27 <-> 28
    for bad in (high, b"\x11" * 65, sig[:64], b"", sig + b"\x00", sig[:64] + b"\x05"):
        with pytest.raises(errors.SignatureError):
            env.buyer.fill(SignedOffer(signed.offer, bad, signed.domain), 1)
        with pytest.raises(E("OfferInvalidSignature")):
            env.raw_fill(env.buyer.account, signed.offer, bad, 1, value=UNIT)
    # a signature by someone else
    forged = sign_digest(env.buyer2.account, signed.hash)
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, signed.offer, forged, 1, value=UNIT)
    # a tampered offer (price lowered) under the original signature
    cheaper = replace(signed.offer, unit_price=UNIT - 1)
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, cheaper, sig, 1, value=UNIT - 1)
    assert env.buyer.fill(signed, 2).filled == 2


def test_erc1271_wallet_that_approves_and_one_that_refuses(env: Env) -> None:
    owner = env.chain.accounts[6]
    wallet, refusing = env.mocks["wallet"], env.mocks["refusing"]
    for maker, ok in ((wallet, True), (refusing, False)):
        offer = env.maker.build("sell", GPU, UNIT, 3, maker=maker.address)
        signed = env.maker.sign(offer, key=owner)  # the wallet's owner key signs for the wallet
        if ok:
            env.buyer.verify_signature(signed)
            fill = env.buyer.fill(signed, 1)
            assert fill.deal.seller == wallet.address
            # every fill checks the signature (nothing records that an earlier one did): a later fill
            # without it is refused, with it goes through
            link = env.buyer.last_fill(signed)
            assert link is not None
            with pytest.raises(E("OfferInvalidSignature")):
                env.raw_fill_after(env.buyer.account, offer, b"", 1, link, value=UNIT)
            assert (
                env.raw_fill_after(env.buyer.account, offer, signed.signature, 1, link, value=UNIT)["status"]
                == 1
            )
        else:
            with pytest.raises(errors.SignatureError):
                env.buyer.fill(signed, 1)
            with pytest.raises(E("OfferInvalidSignature")):
                env.raw_fill(env.buyer.account, offer, signed.signature, 1, value=UNIT)
    # a wallet key that is not the owner's is refused by the approving wallet too
    offer = env.maker.build("sell", GPU, UNIT, 3, maker=wallet.address, salt=7)
    bad = env.maker.sign(offer, key=env.chain.accounts[7])
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, offer, bad.signature, 1, value=UNIT)


def test_erc1271_wallet_posts_and_cancels_through_its_execute(env: Env) -> None:
    wallet = env.mocks["wallet"]
    offer = env.maker.build("sell", GPU, UNIT, 2, maker=wallet.address)
    tx = env.chain.transactor
    data = env.book.functions.post(offer.as_tuple())._encode_transaction_data()
    tx.transact(env.chain.accounts[6], wallet.functions.execute(env.book.address, data), gas=GAS)
    assert env.buyer.fill(offer, 1).deal.seller == wallet.address
    data = env.book.functions.cancel(offer.as_tuple())._encode_transaction_data()
    tx.transact(env.chain.accounts[6], wallet.functions.execute(env.book.address, data), gas=GAS)
    with pytest.raises(E("OfferIsCancelled")):
        env.raw_fill(env.buyer.account, offer, b"", 1, value=UNIT)


def test_unsigned_unposted_offer_is_rejected(env: Env) -> None:
    offer = env.maker.build("sell", GPU, UNIT, 2)
    with pytest.raises(errors.SignatureError):
        env.buyer.fill(offer, 1)
    with pytest.raises(E("OfferInvalidSignature")):
        env.raw_fill(env.buyer.account, offer, b"", 1, value=UNIT)


def test_post_checks(env: Env) -> None:
    offer = env.maker.build("sell", GPU, UNIT, 2)
    with pytest.raises(errors.NotAuthorized):
        env.buyer.post(offer)
    with pytest.raises(E("OfferNotMaker")):
        env.chain.transactor.transact(env.buyer.account, env.book.functions.post(offer.as_tuple()), gas=GAS)
    bad = replace(offer, min_fill=3)
    with pytest.raises(errors.InvalidInput):
        env.maker.post(bad)
    with pytest.raises(E("OfferInvalidTerms")) as info:
        env.chain.transactor.transact(env.maker.account, env.book.functions.post(bad.as_tuple()), gas=GAS)
    assert info.value.field == 1


# -- batches -----------------------------------------------------------------------------------------------


def test_fill_many_skips_and_reports_failing_items_and_refunds_their_eth(env: Env) -> None:
    good1 = env.maker.offer("sell", GPU, UNIT, 3)
    expired = env.maker.offer("sell", GPU, 2 * UNIT, 3, expiry=timedelta(seconds=5))
    good2 = env.maker.offer("sell", "cpu-hour", 3 * UNIT, 3)
    garbage = SignedOffer(good2.offer, b"\x01" * 65, good2.domain)
    env.chain.advance_time(60)
    balance = env.eth(env.buyer.account.address)
    result = env.buyer.fill_many([(good1, 2), (expired, 1), (good2, 3), (garbage, 1)])
    assert [f.offer_hash for f in result.fills] == [good1.hash, good2.hash]
    # item 3 is a head fill of good2 with a bad signature: refused for the signature (with a valid one
    # it would hit the head that item 2 opened in the same batch: EscrowDealExists)
    assert [(i, type(r).__name__) for i, _, r in result.skipped] == [
        (1, "OfferExpired"),
        (3, "OfferInvalidSignature"),
    ]
    assert result.skipped[0][1] == expired.hash
    assert {f.deal.amount for f in result.fills} == {2 * UNIT, 9 * UNIT}
    receipt = env.chain.w3.eth.get_transaction_receipt(result.tx_hash)
    gas_cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert balance - env.eth(env.buyer.account.address) == 11 * UNIT + gas_cost  # skipped ETH came back
    with pytest.raises(errors.InvalidState):
        env.buyer.fill_many([(expired, 1)], preflight=True)


def test_fill_item_is_internal(env: Env) -> None:
    signed = env.maker.offer("sell", GPU, UNIT, 3)
    no_link = (0, 0, (ZERO_ADDRESS,) * 4 + (0, 0, b"\x00" * 32) + (0,) * 8)
    fn = env.book.functions.fillItem(
        signed.offer.as_tuple(), signed.signature, 1, no_link, env.buyer.account.address
    )
    with pytest.raises(E("OfferOnlySelf")):
        env.chain.transactor.transact(env.buyer2.account, fn, value=UNIT, gas=GAS)


# -- deposits ------------------------------------------------------------------------------------------------


def test_deposits_withdraw_any_time(env: Env) -> None:
    env.maker.deposit(5 * UNIT)
    env.buyer.deposit(UNIT, for_=env.maker.account.address)
    assert env.maker.deposit_of() == 6 * UNIT
    before = env.eth(env.buyer2.account.address)
    env.maker.withdraw(2 * UNIT, to=env.buyer2.account.address)
    assert env.eth(env.buyer2.account.address) - before == 2 * UNIT
    with pytest.raises(errors.InsufficientFunds):
        env.maker.withdraw(5 * UNIT)
    with pytest.raises(E("OfferInsufficientDeposit")):
        env.chain.transactor.transact(env.maker.account, env.book.functions.withdraw(5 * UNIT), gas=GAS)
    env.maker.withdraw()
    assert env.maker.deposit_of() == 0


# -- client: pre-flight, JSON, offer book view --------------------------------------------------------------


def test_preflight_raises_before_sending(env: Env) -> None:
    poor = env.chain.new_account(fund=10**16)
    client = env.maker.as_(poor)
    signed = env.maker.offer("sell", GPU, 10**18, 2)
    nonce = env.chain.w3.eth.get_transaction_count(poor.address)
    with pytest.raises(errors.InsufficientFunds):
        client.fill(signed, 1)
    assert env.chain.w3.eth.get_transaction_count(poor.address) == nonce


def test_offer_json_round_trip(env: Env) -> None:
    signed = env.maker.offer(
        "sell",
        GPU,
        2**127,
        1,
        bond_per_unit=3,
        arbiter=env.chain.accounts[5].address,
        taker=env.buyer.account.address,
        terms_hash="0x" + "ab" * 32,
    )
    text = signed.to_json()
    again = SignedOffer.from_json(text)
    assert again == signed and again.hash == signed.hash
    assert again.verify() == env.maker.account.address
    assert Offer.from_json(signed.offer.to_json()) == signed.offer
    tampered = text.replace(str(2**127), str(2**127 - 1))
    with pytest.raises(errors.InvalidInput):
        SignedOffer.from_json(tampered)  # its hash no longer matches
    with pytest.raises(errors.InvalidInput):
        Offer.from_dict({**signed.offer.to_dict(), "quantity": str(2**64)})


def test_offer_book_view_follows_events_sorted_by_price(env: Env) -> None:
    token = env.token.address
    makers = [env.maker, env.buyer2]
    posted = []
    for i, (price, side, asset) in enumerate(
        [
            (3 * UNIT, "sell", ETH),
            (UNIT, "sell", ETH),
            (2 * UNIT, "sell", ETH),
            (UNIT, "buy", ETH),
            (4 * UNIT, "buy", ETH),
            (UNIT, "sell", token),
        ]
    ):
        m = makers[i % 2]
        if side == "buy" and asset == ETH:
            m.deposit(10 * price)
        bond = price // 10 if side == "buy" else 0  # an open buy request carries a seller bond
        posted.append(m.post(m.build(side, GPU, price, 5, asset=asset, bond_per_unit=bond)).offer)
    other = env.maker.post(env.maker.build("sell", "cpu-hour", UNIT // 2, 5)).offer
    view = env.buyer.book()
    assert len(view) == 7
    sells = view.offers(resource=GPU, side="sell", asset=ETH)
    assert [e.offer.unit_price for e in sells] == [UNIT, 2 * UNIT, 3 * UNIT]
    buys = view.offers(resource=GPU, side=Side.BUY)
    assert [e.offer.unit_price for e in buys] == [4 * UNIT, UNIT]
    assert view.best("sell", GPU).offer.unit_price == UNIT  # type: ignore[union-attr]
    assert [e.offer for e in view.offers(asset=token)] == [posted[5]]
    assert [e.offer for e in view.offers(resource="cpu-hour")] == [other]
    # fills, cancellations and counter bumps show up after sync, equal to the chain's views
    cheapest = sells[0].offer
    env.buyer.fill(cheapest, 5)
    env.buyer.fill(posted[2], 2)
    makers[0].cancel(posted[0])
    env.buyer2.cancel_all()  # voids posted[3] (buyer2's buy request) and other buyer2 offers
    assert view.sync() == 4
    for entry in view.offers(live=False):
        st = env.buyer.status(entry.offer)
        assert (entry.filled, entry.cancelled) == (st.filled, st.cancelled)
        live = entry.is_live(env.buyer.now(), view.counter(entry.offer.maker))
        assert live == (env.buyer.remaining(entry.offer) > 0)
    assert [e.offer.unit_price for e in view.offers(resource=GPU, side="sell", asset=ETH)] == [2 * UNIT]
    # a signed offer learnt off chain joins the book
    signed = env.maker.offer("sell", GPU, UNIT // 4, 2)
    view.add(signed)
    assert view.best("sell", GPU) is not None and view.best("sell", GPU).offer == signed.offer  # type: ignore
    assert view.signed(signed.hash) == signed
    assert resource_id(GPU) == signed.offer.resource_id


@pytest.mark.anvil
def test_replay_on_a_second_chain_with_another_chain_id() -> None:
    """The same suite deployed at the same addresses on two anvil nodes that differ only in chain id:
    an offer signed on one is worthless on the other."""
    from agentmarket.deploy import deploy_suite

    first, second = Chain.anvil(accounts=4), Chain.anvil(accounts=4, args=["--chain-id", "4242"])
    try:
        books = []
        for chain in (first, second):
            suite = deploy_suite(chain, write=False, reuse=False)
            books.append(OffersClient.from_suite(suite, chain.accounts[2]))
        assert books[0].address == books[1].address and first.chain_id != second.chain_id
        signed = books[0].offer("sell", GPU, UNIT, 2)
        taker = books[1].as_(second.accounts[1])
        with pytest.raises(errors.SignatureError):
            taker.fill(signed, 1)
        with pytest.raises(E("OfferInvalidSignature")):
            second.transactor.transact(
                second.accounts[1],
                taker.contract.functions.fill(signed.offer.as_tuple(), signed.signature, 1),
                value=UNIT,
                gas=GAS,
            )
        assert books[0].as_(first.accounts[1]).fill(signed, 1).filled == 1  # valid where it was signed
    finally:
        first.close()
        second.close()
