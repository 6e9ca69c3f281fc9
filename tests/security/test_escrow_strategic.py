"""Strategic rule-followers against the escrow and the reputation registry (issue 12; docs/design.md §6.12).

Each test is an attack that worked on v1 and the property that now defends it (docs/threat-model.md,
"Escrow and reputation"): a stranger collecting from a buyer who acts in time (point 1), reputation
bought for gas (point 2), fees rounded or split away and fees that cannot leave (point 7), one huge deal
locking a token (point 10), market changes without notice (point 11). Embedded chain; the solvency
invariant (docs/design.md §6.1) is checked after every test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from helpers import assert_escrow_solvent, deploy, gas_cost, mint, send
from web3.logs import DISCARD

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import MIN_REVIEW_WINDOW, EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import ETH, ZERO_ADDRESS, Deal, DealState, DealTerms, protocol_fee

PRICE = 10**18
BOND = 2 * 10**17
HOUR = 3600
E = errors.revert_class


class Env:
    def __init__(self, chain: Chain, suite: Suite):
        self.chain = chain
        self.owner, self.buyer, self.seller, self.arbiter, self.other, self.market = chain.accounts[:6]
        self.escrow = suite["AgentEscrow"]
        self.registry = suite["ReputationRegistry"]
        self.client = EscrowClient.from_suite(suite, self.buyer)
        self.fee_bps = self.client.fee_bps
        self.assets: list[str] = [ETH]

    def send(self, account: Any, fn: Any, value: int = 0) -> Any:
        return send(self.chain, account, fn, value)

    def terms(self, **kw: Any) -> DealTerms:
        base: dict[str, Any] = dict(
            buyer=self.buyer.address,
            seller=self.seller.address,
            amount=PRICE,
            deliver_by=self.chain.now() + 10 * HOUR,
            review_window=HOUR,
            ruling_window=2 * HOUR,
        )
        base.update(kw)
        return DealTerms(**base)

    def open(self, **kw: Any) -> Deal:
        t = self.terms(**kw)
        receipt = self.send(self.buyer, self.escrow.functions.create(t.as_tuple()), value=t.amount)
        return self.client._created_from_receipt(receipt)

    def do(self, account: Any, name: str, deal: Deal, *args: Any, value: int = 0) -> Any:
        fn = getattr(self.escrow.functions, name)(deal.id, deal.terms.as_tuple(), *args)
        return self.send(account, fn, value=value)

    def step(self, account: Any, name: str, deal: Deal, *args: Any, value: int = 0) -> Deal:
        return self.client._from_receipt(deal, self.do(account, name, deal, *args, value=value))

    def events(self, contract: Any, receipt: Any, name: str) -> list[Any]:
        return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))

    def fees(self, asset: str = ETH) -> int:
        return int(self.escrow.functions.totals(asset).call()[2])

    def rate(self, account: Any, deal: Deal, score: int = 100) -> int:
        fn = self.registry.functions.rate(deal.id, deal.terms.as_tuple(), score, b"\x00" * 32, b"\x00" * 32)
        (ev,) = self.events(self.registry, self.send(account, fn), "Rated")
        return int(ev.args.weight)


@pytest.fixture
def env(chain: Chain, suite: Suite) -> Iterator[Env]:
    e = Env(chain, suite)
    yield e
    assert_escrow_solvent(e.client, e.assets)


# -- point 1: a stranger cannot collect from a buyer who acts within its review window -------------------


@pytest.mark.parametrize("bond", [0, BOND])
def test_stranger_cannot_collect_from_a_buyer_who_rejects_in_time(env: Env, bond: int) -> None:
    """v1: no arbiter, any taker: the stranger submits junk, waits out the review window, finalizes."""
    deal = env.open(bond=bond)
    if bond:
        deal = env.step(env.seller, "postBond", deal, value=bond)
    deal = env.step(env.seller, "submit", deal, b"\x00" * 32)
    before = env.chain.w3.eth.get_balance(env.buyer.address)
    rejected = env.client.reject(deal)
    assert rejected.state == DealState.REJECTED and rejected.settlement is not None
    assert rejected.settlement.to_buyer == PRICE + bond  # refund plus the forfeited bond
    receipt = env.chain.w3.eth.get_transaction_receipt(rejected.tx_hash)
    assert env.chain.w3.eth.get_balance(env.buyer.address) - before == PRICE + bond - gas_cost(receipt)
    env.chain.travel_to(deal.review_ends_at + 1)
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.other, "finalize", rejected)


def test_reject_is_the_buyers_within_the_window_and_only_without_an_arbiter(env: Env) -> None:
    deal = env.step(env.seller, "submit", env.open(), b"\x00" * 32)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.seller, "reject", deal)
    with pytest.raises(errors.NotAuthorized):
        env.client.as_(env.seller).reject(deal)
    arbitrated = env.step(env.seller, "submit", env.open(arbiter=env.arbiter.address), b"\x00" * 32)
    with pytest.raises(E("EscrowHasArbiter")):
        env.do(env.buyer, "reject", arbitrated)
    with pytest.raises(errors.InvalidState):
        env.client.reject(arbitrated)
    env.chain.travel_to(deal.review_ends_at + 1)
    with pytest.raises(errors.InvalidState):
        env.client.reject(deal)
    with pytest.raises(E("EscrowDeadlinePassed")):
        env.do(env.buyer, "reject", deal)
    assert env.client.finalize(deal).state == DealState.FINALIZED  # a silent buyer still pays


def test_client_refuses_a_review_window_too_short_to_act_in(env: Env) -> None:
    with pytest.raises(errors.InvalidInput):
        env.client.terms(env.seller.address, PRICE, deliver_by=timedelta(hours=1), review_window=5)
    t = env.client.terms(
        env.seller.address, PRICE, deliver_by=timedelta(hours=1), review_window=5, allow_short_review=True
    )
    assert t.review_window == 5
    assert env.client.terms(env.seller.address, PRICE, deliver_by=timedelta(hours=1)).review_window >= (
        MIN_REVIEW_WINDOW
    )


# -- point 2: every unit of rating weight pays the protocol fee, on every settlement path ---------------


def _settle(env: Env, path: str) -> tuple[Deal, int]:
    """Drive one deal down ``path``; returns it and the protocol fees it paid."""
    arbiter = env.arbiter.address if path.startswith(("resolve", "default")) else ZERO_ADDRESS
    fee_bps = 10_000 if path == "resolve_arbiter_takes_all" else 0
    deal = env.open(arbiter=arbiter, arbiter_fee_bps=fee_bps, bond=0, default_seller_bps=6000)
    fees0 = env.fees()
    if path == "release_then_accept":
        deal = env.step(env.buyer, "release", deal, PRICE // 3)
    deal = env.step(env.seller, "submit", deal, b"\x01" * 32)
    if path in ("accept", "release_then_accept"):
        deal = env.step(env.buyer, "accept", deal)
    elif path == "finalize":
        env.chain.travel_to(deal.review_ends_at + 1)
        deal = env.step(env.other, "finalize", deal)
    else:
        deal = env.step(env.buyer, "dispute", deal)
        if path == "default":
            env.chain.travel_to(deal.ruling_ends_at + 1)
            deal = env.step(env.other, "settleDefault", deal)
        else:
            deal = env.step(env.arbiter, "resolve", deal, 0 if "zero" in path or "all" in path else 7000, 0)
    return deal, env.fees() - fees0


@pytest.mark.parametrize(
    "path",
    [
        "accept",
        "finalize",
        "release_then_accept",
        "resolve",
        "resolve_zero",
        "resolve_arbiter_takes_all",
        "default",
    ],
)
def test_every_unit_of_rating_weight_paid_the_protocol_fee(env: Env, path: str) -> None:
    """v1: a self-dealer's arbiter ruled 0% (or took 100% as its fee): full weight, no fee."""
    deal, fees = _settle(env, path)
    weight = env.rate(env.buyer, deal)
    state, paid = env.escrow.functions.settlement(deal.id, deal.terms.as_tuple()).call()
    assert (DealState(state), paid) == (deal.state, weight)
    assert fees * 10_000 >= weight * env.fee_bps  # every unit of weight cost at least the fee on it
    s = deal.settlement
    assert s is not None
    assert weight == s.to_seller + (deal.released - protocol_fee(deal.released, env.fee_bps))  # net pay
    if path in ("resolve_zero", "resolve_arbiter_takes_all"):
        assert weight == 0
    if path == "resolve_arbiter_takes_all":
        assert fees == protocol_fee(PRICE, env.fee_bps)  # the arbiter's 100% fee paid the protocol fee
    assert env.rate(env.seller, deal) == weight  # the seller's rating of the buyer weighs the same


def test_a_sybil_cannot_make_an_agent_unratable(chain: Chain) -> None:
    """v1: ~257 zero-fee self-deals at the weight cap filled the 104-bit totals; every later rating of the
    agent (honest ones included) reverted. Now the totals halve and the honest rating still moves the score.
    A stand-in escrow reports every deal settled at the cap, so one transaction does the Sybil's 300 deals."""
    stub = deploy(chain, "SettledEscrowStub")
    registry = deploy(chain, "ReputationRegistry", stub.address)
    loop = deploy(chain, "RatingLoop")
    owner, honest, victim = chain.accounts[0], chain.accounts[1], chain.accounts[2]
    send(chain, owner, stub.functions.setWeight(2**96 - 1))
    sybil_deal = DealTerms(buyer=loop.address, seller=victim.address, amount=1, deliver_by=2**39)
    send(
        chain,
        owner,
        loop.functions.rateMany(registry.address, sybil_deal.as_tuple(), 1, 300, 100),
        gas=29_000_000,
    )
    count, total, weighted = registry.functions.summary(victim.address, ETH).call()
    assert count == 300 and total < 2**104 and weighted == 100 * total
    honest_deal = DealTerms(buyer=honest.address, seller=victim.address, amount=1, deliver_by=2**39)
    fn = registry.functions.rate(10_000, honest_deal.as_tuple(), 0, b"\x00" * 32, b"\x00" * 32)
    send(chain, honest, fn)
    count2, total2, weighted2 = registry.functions.summary(victim.address, ETH).call()
    assert count2 == 301 and weighted2 * 10_000 < 100 * total2 * 10_000 and weighted2 < 100 * total2


# -- point 7: fees cannot be rounded or split away, and can always leave --------------------------------


def test_fees_cannot_be_split_away_into_small_releases(env: Env) -> None:
    """v1: the fee rounded down to 0 on every payout under 10,000 / feeBps wei (200 wei at 0.5%)."""
    assert env.fee_bps > 0
    deal = env.open()
    fees0 = env.fees()
    for _ in range(5):
        receipt = env.do(env.buyer, "release", deal, 199)
        (ev,) = env.events(env.escrow, receipt, "FundsReleased")
        assert ev.args.fee >= 1 and ev.args.fee * 10_000 >= 199 * env.fee_bps
        deal = env.client._from_receipt(deal, receipt)
    assert env.fees() - fees0 >= protocol_fee(5 * 199, env.fee_bps)


def test_a_blocklisted_fee_recipient_still_gets_its_fees_out(env: Env) -> None:
    token = deploy(env.chain, "MockERC20", "Mock USD", "mUSD", 18)
    mint(env.chain, token, [env.buyer], 10 * PRICE)
    env.assets.append(token.address)
    recipient = env.client.fee_recipient
    t = env.terms(asset=token.address)
    env.send(env.buyer, token.functions.approve(env.escrow.address, PRICE))
    deal = env.client._created_from_receipt(env.send(env.buyer, env.escrow.functions.create(t.as_tuple())))
    deal = env.step(env.seller, "submit", deal, b"\x01" * 32)
    env.step(env.buyer, "accept", deal)
    send(env.chain, env.owner, token.functions.setBlocked(recipient, True))
    with pytest.raises(E("CreditsTransferFailed")):
        env.send(env.other, env.escrow.functions.collectFees(token.address))
    with pytest.raises(E("EscrowUnauthorized")):
        env.send(env.other, env.escrow.functions.collectFeesTo(token.address, env.other.address))
    owner_client = env.client.as_(next(a for a in env.chain.accounts if a.address == recipient))
    owed = owner_client.collect_fees_to(env.other.address, token.address)
    assert owed == protocol_fee(PRICE, env.fee_bps) > 0
    assert token.functions.balanceOf(env.other.address).call() == owed


# -- point 10: one huge deal does not lock a token ----------------------------------------------------------


def test_one_huge_deal_does_not_lock_out_other_deals_in_its_token(env: Env) -> None:
    """v1: a deal of 2^128 - 2 filled the 128-bit locked total; every other create in the token reverted."""
    token = deploy(env.chain, "MockERC20", "Huge", "HUGE", 18)
    mint(env.chain, token, [env.buyer], 2**200)
    env.assets.append(token.address)
    env.send(env.buyer, token.functions.approve(env.escrow.address, 2**256 - 1))
    huge = env.client._created_from_receipt(
        env.send(
            env.buyer,
            env.escrow.functions.create(env.terms(asset=token.address, amount=2**128 - 2).as_tuple()),
        )
    )
    small = env.client._created_from_receipt(
        env.send(
            env.buyer, env.escrow.functions.create(env.terms(asset=token.address, amount=PRICE).as_tuple())
        )
    )
    assert small.state == DealState.FUNDED
    # settling it owes a fee wider than the 96-bit fee counter: credited to the recipient, never a revert
    huge = env.step(env.seller, "submit", huge, b"\x01" * 32)
    env.step(env.buyer, "accept", huge)
    recipient = env.client.fee_recipient
    fee = protocol_fee(2**128 - 2, env.fee_bps)
    assert env.client.credit(recipient, token.address) + env.fees(token.address) == fee


# -- point 11: market changes are announced; delisting does not void pending sales ------------------------


def test_market_changes_are_announced_and_delisting_keeps_pending_sales(env: Env) -> None:
    env.open()  # a deal exists: from now on the set of markets changes only with notice
    now = env.chain.now()
    receipt = env.send(env.owner, env.escrow.functions.setMarket(env.market.address, True))
    (ev,) = env.events(env.escrow, receipt, "MarketSet")
    delay = int(env.escrow.functions.MARKET_DELAY().call())
    assert ev.args.allowed and ev.args.effectiveAt >= now + delay
    t = env.terms()
    assert not env.escrow.functions.isMarket(env.market.address).call()
    with pytest.raises(E("EscrowNotMarket")):
        env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), False), value=PRICE)
    env.chain.travel_to(ev.args.effectiveAt)
    assert env.escrow.functions.isMarket(env.market.address).call()
    assert env.escrow.functions.isListed(env.market.address).call()
    env.send(env.market, env.escrow.functions.openFor(env.terms().as_tuple(), False), value=PRICE)
    receipt = env.send(env.owner, env.escrow.functions.setMarket(env.market.address, False))
    (ev,) = env.events(env.escrow, receipt, "MarketSet")
    assert env.escrow.functions.isListed(env.market.address).call()  # announced, not yet in effect
    env.chain.travel_to(ev.args.effectiveAt)
    assert not env.escrow.functions.isListed(env.market.address).call()
    # a sale the market started before the delisting still settles into a deal
    assert env.escrow.functions.isMarket(env.market.address).call()
    env.send(env.market, env.escrow.functions.openFor(env.terms().as_tuple(), False), value=PRICE)
