"""AgentEscrow: every transition and revert, timing boundaries, hostile receivers and odd tokens.

Contract paths send with a fixed gas limit (no estimation: fast, and the revert comes from the mined
transaction); client paths go through EscrowClient's pre-flight checks. After every test the solvency
invariant (docs/design.md §6.1) is checked for ETH and each token: balance == locked + credits + fees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from eth_utils import to_checksum_address
from helpers import GAS, assert_escrow_solvent, deploy, gas_cost, load_artifact, mint, send
from web3.logs import DISCARD

from agentmarket import errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import Suite
from agentmarket.types import ETH, ZERO_ADDRESS, Deal, DealState, DealTerms, protocol_fee

PRICE = 10**18
BOND = 2 * 10**17
HOUR = 3600
E = errors.revert_class


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mocks(_embedded: tuple[Chain, Suite]) -> dict[str, Any]:
    """Tokens and hostile receivers, deployed once for the module (before the per-test snapshots)."""
    chain, _ = _embedded
    out = {
        "token": deploy(chain, "MockERC20", "Mock USD", "mUSD", 18),
        "fot": deploy(chain, "FeeOnTransferToken", 100),  # 1% burnt per transfer
        "nrt": deploy(chain, "NoReturnToken"),
        "reverting": deploy(chain, "RevertingReceiver"),
        "burner": deploy(chain, "GasBurningReceiver"),
        "reenter": deploy(chain, "ReenteringReceiver"),
    }
    for key in ("token", "fot", "nrt"):
        mint(chain, out[key], chain.accounts[1:6], 1000 * PRICE)
    return out


class Env:
    """Per-test handles: accounts by role, the escrow contract, clients, and fast send helpers."""

    def __init__(self, chain: Chain, suite: Suite, mocks: dict[str, Any]):
        self.chain, self.w3, self.mocks = chain, chain.w3, mocks
        self.owner, self.buyer, self.seller, self.arbiter, self.other, self.market = chain.accounts[:6]
        self.escrow = suite["AgentEscrow"]
        self.client = EscrowClient.from_suite(suite, self.buyer)
        self.fee_bps = self.client.fee_bps
        self.fee_recipient = self.client.fee_recipient

    def as_(self, account: Any) -> EscrowClient:
        return self.client.as_(account)

    def send(self, account: Any, fn: Any, value: int = 0) -> Any:
        """Simulate on the pending block (exact timestamp, typed revert), then send with a fixed gas limit."""
        return send(self.chain, account, fn, value)

    def terms(self, **kw: Any) -> DealTerms:
        now = self.chain.now()
        base: dict[str, Any] = dict(
            buyer=self.buyer.address,
            seller=self.seller.address,
            amount=PRICE,
            deliver_by=now + 10 * HOUR,
            review_window=HOUR,
            ruling_window=2 * HOUR,
        )
        base.update(kw)
        return DealTerms(**base)

    def open(self, sender: Any = None, value: int | None = None, **kw: Any) -> Deal:
        t = self.terms(**kw)
        sender = sender or self.buyer
        if value is None:
            value = t.amount if t.asset == ETH else 0
        if t.asset != ETH:
            token = self.token_at(t.asset)
            self.send(sender, token.functions.approve(self.escrow.address, t.amount))
        receipt = self.send(sender, self.escrow.functions.create(t.as_tuple()), value=value)
        return self.client._created_from_receipt(receipt)

    def token_at(self, address: str) -> Any:
        for key in ("token", "fot", "nrt"):
            if self.mocks[key].address == to_checksum_address(address):
                return self.mocks[key]
        raise KeyError(address)

    def do(self, account: Any, name: str, deal: Deal, *args: Any, value: int = 0) -> Any:
        return self.send(
            account, getattr(self.escrow.functions, name)(deal.id, deal.terms.as_tuple(), *args), value=value
        )

    def at(self, timestamp: int) -> None:
        """The next transaction is mined at exactly ``timestamp``."""
        self.chain.set_next_timestamp(timestamp)

    def submit(self, deal: Deal, at: int | None = None) -> Deal:
        if at is not None:
            self.at(at)
        receipt = self.do(self.seller, "submit", deal, b"\xaa" * 32)
        return self.client._from_receipt(deal, receipt)

    def state(self, deal: Deal) -> DealState:
        return self.client.status(deal.id)[0]

    def bal(self, who: Any, asset: str = ETH) -> int:
        address = who if isinstance(who, str) else who.address
        return self.client.asset_balance(address, asset)

    def events(self, receipt: Any, name: str) -> list[Any]:
        return list(getattr(self.escrow.events, name)().process_receipt(receipt, errors=DISCARD))

    def gas_cost(self, receipt: Any) -> int:
        return gas_cost(receipt)


@pytest.fixture
def env(chain: Chain, suite: Suite, mocks: dict[str, Any]) -> Iterator[Env]:
    e = Env(chain, suite, mocks)
    yield e
    # docs/design.md §6.1 after every test, for every asset the escrow may hold
    assert_escrow_solvent(e.client, (ETH, mocks["token"].address, mocks["fot"].address, mocks["nrt"].address))


def fee_of(env: Env, gross: int) -> int:
    return protocol_fee(gross, env.fee_bps)


# -- creation --------------------------------------------------------------------------------------------


def test_create_eth_locks_funds_and_emits_the_terms(env: Env):
    before = env.bal(env.escrow.address)
    deal = env.open()
    assert deal.id == 1 and deal.state == DealState.FUNDED and deal.opened_by == env.buyer.address
    assert env.bal(env.escrow.address) - before == PRICE
    assert env.client.totals().locked == PRICE
    assert env.escrow.functions.verifyTerms(deal.id, deal.terms.as_tuple()).call()
    assert env.escrow.functions.hashDeal(deal.terms.as_tuple()).call() == deal.terms.hash()
    assert env.open().id == 2


def test_create_with_bond_awaits_the_bond(env: Env):
    deal = env.open(bond=BOND)
    assert deal.state == DealState.AWAITING_BOND and env.client.totals().locked == PRICE


@pytest.mark.parametrize(
    "case, kw, error",
    [
        ("zero amount", dict(amount=0), "EscrowZeroAmount"),
        ("seller is buyer", dict(seller="BUYER"), "EscrowInvalidParties"),
        ("zero seller", dict(seller=ZERO_ADDRESS), "EscrowInvalidParties"),
        ("arbiter is seller", dict(arbiter="SELLER"), "EscrowInvalidParties"),
        ("promised after deadline", dict(promised_by="DEADLINE+1"), "EscrowInvalidDeadlines"),
        ("penalty without promise", dict(penalty_bps_per_hour=10), "EscrowInvalidDeadlines"),
        ("cap bps", dict(penalty_cap_bps=10_001), "EscrowInvalidBps"),
        ("arbiter fee bps", dict(arbiter_fee_bps=10_001), "EscrowInvalidBps"),
        ("default split bps", dict(default_seller_bps=10_001), "EscrowInvalidBps"),
    ],
)
def test_create_rejects_bad_terms(env: Env, case: str, kw: dict[str, Any], error: str):
    subs = {"BUYER": env.buyer.address, "SELLER": env.seller.address}
    kw = {k: subs.get(v, v) if isinstance(v, str) else v for k, v in kw.items()}
    if kw.get("promised_by") == "DEADLINE+1":
        kw["promised_by"] = env.chain.now() + 10 * HOUR + 1
    with pytest.raises(E(error)):
        env.open(**kw)


def test_create_deadline_boundary(env: Env):
    t = env.chain.now() + 100
    env.at(t)
    with pytest.raises(E("EscrowInvalidDeadlines")):
        env.open(deliver_by=t)  # deliverBy == now: nothing could ever be delivered
    env.at(t + 1)
    assert env.open(deliver_by=t + 2).state == DealState.FUNDED


def test_create_checks_value_and_sender(env: Env):
    with pytest.raises(E("EscrowWrongValue")):
        env.open(value=PRICE - 1)
    with pytest.raises(E("EscrowUnauthorized")):
        env.open(sender=env.other)  # terms name env.buyer as buyer
    with pytest.raises(E("EscrowWrongValue")):
        env.open(asset=env.mocks["token"].address, value=1)


def test_create_erc20_pulls_and_locks(env: Env):
    token = env.mocks["token"].address
    before = env.bal(env.buyer, token)
    deal = env.open(asset=token)
    assert env.bal(env.buyer, token) == before - PRICE
    assert env.client.totals(token).locked == PRICE and deal.amount == PRICE


def test_create_erc20_without_allowance_reverts(env: Env):
    t = env.terms(asset=env.mocks["token"].address)
    with pytest.raises(E("ERC20InsufficientAllowance")):
        env.send(env.buyer, env.escrow.functions.create(t.as_tuple()))


def test_fee_on_transfer_token_credits_what_arrived(env: Env):
    fot = env.mocks["fot"].address
    deal = env.open(asset=fot)
    assert deal.amount == PRICE * 99 // 100  # the struct records what arrived
    assert env.bal(env.escrow.address, fot) == deal.amount == env.client.totals(fot).locked
    deal = env.submit(deal)
    receipt = env.do(env.buyer, "accept", deal)
    (event,) = env.events(receipt, "DealAccepted")
    assert event.args.toSeller == deal.amount - fee_of(env, deal.amount)
    assert env.state(deal) == DealState.ACCEPTED


def test_fee_on_transfer_bond_records_what_arrived(env: Env):
    fot = env.mocks["fot"]
    deal = env.open(asset=fot.address, bond=BOND)
    env.send(env.seller, fot.functions.approve(env.escrow.address, BOND))
    receipt = env.do(env.seller, "postBond", deal)
    deal = env.client._from_receipt(deal, receipt)
    assert deal.bond == BOND * 99 // 100 and deal.state == DealState.FUNDED
    assert env.client.deal(deal.id) == deal
    env.chain.advance_time(11 * HOUR)
    receipt = env.do(env.other, "refund", deal)
    assert env.events(receipt, "DealRefunded")[0].args.toBuyer == deal.amount + deal.bond


def test_no_return_token_full_cycle(env: Env):
    nrt = env.mocks["nrt"].address
    seller_before = env.bal(env.seller, nrt)
    deal = env.submit(env.open(asset=nrt))
    env.do(env.buyer, "accept", deal)
    assert env.bal(env.seller, nrt) - seller_before == PRICE - fee_of(env, PRICE)
    deal2 = env.open(asset=nrt)
    env.chain.advance_time(11 * HOUR)
    before = env.bal(env.buyer, nrt)
    env.do(env.other, "refund", deal2)
    assert env.bal(env.buyer, nrt) - before == PRICE


# -- bond ------------------------------------------------------------------------------------------------


def test_post_bond_eth_and_its_reverts(env: Env):
    deal = env.open(bond=BOND)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.other, "postBond", deal, value=BOND)
    with pytest.raises(E("EscrowWrongValue")):
        env.do(env.seller, "postBond", deal, value=BOND - 1)
    receipt = env.do(env.seller, "postBond", deal, value=BOND)
    assert env.events(receipt, "BondPosted")[0].args.bond == BOND
    assert env.state(deal) == DealState.FUNDED and env.client.totals().locked == PRICE + BOND
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.seller, "postBond", deal, value=BOND)


def test_post_bond_deadline_boundary(env: Env):
    deal = env.open(bond=BOND)
    snap = env.chain.snapshot()
    env.at(deal.terms.deliver_by)
    env.do(env.seller, "postBond", deal, value=BOND)  # at the deadline: still fine
    env.chain.revert(snap)
    env.at(deal.terms.deliver_by + 1)
    with pytest.raises(E("EscrowDeadlinePassed")):
        env.do(env.seller, "postBond", deal, value=BOND)


# -- submit ----------------------------------------------------------------------------------------------


def test_submit_and_its_reverts(env: Env):
    deal = env.open()
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.buyer, "submit", deal, b"\x01" * 32)
    with pytest.raises(E("EscrowDealNotFound")):
        env.send(env.seller, env.escrow.functions.submit(99, deal.terms.as_tuple(), b"\x01" * 32))
    forged = replace(deal.terms, amount=PRICE * 2)
    with pytest.raises(E("EscrowTermsMismatch")):
        env.send(env.seller, env.escrow.functions.submit(deal.id, forged.as_tuple(), b"\x01" * 32))
    receipt = env.do(env.seller, "submit", deal, b"\x01" * 32)
    (event,) = env.events(receipt, "DeliverableSubmitted")
    assert event.args.deliverableHash == b"\x01" * 32
    assert env.client.status(deal.id)[:2] == (DealState.SUBMITTED, event.args.submittedAt)
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.seller, "submit", deal, b"\x01" * 32)


def test_submit_needs_the_bond_first(env: Env):
    deal = env.open(bond=BOND)
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.seller, "submit", deal, b"\x01" * 32)


@pytest.mark.parametrize("offset, ok", [(-1, True), (0, True), (1, False)])
def test_submit_deadline_boundary(env: Env, offset: int, ok: bool):
    deal = env.open()
    env.at(deal.terms.deliver_by + offset)
    if ok:
        assert env.submit(deal).state == DealState.SUBMITTED
    else:
        with pytest.raises(E("EscrowDeadlinePassed")):
            env.submit(deal)


# -- accept / finalize -------------------------------------------------------------------------------------


def test_accept_pays_seller_minus_fee_and_returns_bond(env: Env):
    deal = env.open(bond=BOND)
    env.do(env.seller, "postBond", deal, value=BOND)
    deal = env.submit(env.client.deal(deal.id))
    seller_before = env.bal(env.seller)
    receipt = env.do(env.buyer, "accept", deal)
    fee = fee_of(env, PRICE)
    (event,) = env.events(receipt, "DealAccepted")
    assert (event.args.toSeller, event.args.toBuyer) == (PRICE - fee + BOND, 0)
    assert env.client._from_receipt(deal, receipt).settlement.fee == fee
    assert env.bal(env.seller) - seller_before == PRICE - fee + BOND
    assert env.client.totals().locked == 0 and env.client.totals().fees == fee
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.buyer, "accept", deal)  # settles at most once


def test_accept_reverts(env: Env):
    deal = env.open()
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.buyer, "accept", deal)
    deal = env.submit(deal)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.seller, "accept", deal)
    with pytest.raises(E("EscrowTermsMismatch")):
        env.send(env.buyer, env.escrow.functions.accept(deal.id, replace(deal.terms, bond=1).as_tuple()))


@pytest.mark.parametrize("offset, ok", [(-1, False), (0, False), (1, True)])
def test_finalize_review_window_boundary(env: Env, offset: int, ok: bool):
    deal = env.submit(env.open())
    end = deal.submitted_at + deal.terms.review_window
    env.at(end + offset)
    if ok:
        receipt = env.do(env.other, "finalize", deal)
        (event,) = env.events(receipt, "DealFinalized")
        assert event.args.by == env.other.address and env.state(deal) == DealState.FINALIZED
    else:
        with pytest.raises(E("EscrowDeadlineNotReached")):
            env.do(env.other, "finalize", deal)


# -- late penalty ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("late", [-1, 0, 1, 1800, 3600, 5 * 3600, 20 * 3600])
def test_late_penalty_boundaries(env: Env, late: int):
    rate, cap = 100, 1000  # 1% per hour, at most 10%
    now = env.chain.now()
    promised = now + 2 * HOUR
    deal = env.open(
        promised_by=promised, deliver_by=promised + 30 * HOUR, penalty_bps_per_hour=rate, penalty_cap_bps=cap
    )
    deal = env.submit(deal, at=promised + late)
    expected = 0 if late <= 0 else min(PRICE * rate * late // (3600 * 10_000), PRICE * cap // 10_000)
    assert deal.terms.late_penalty(deal.submitted_at) == expected
    assert env.escrow.functions.latePenalty(deal.terms.as_tuple(), deal.submitted_at).call() == expected
    if late == 1:
        assert expected == PRICE * rate // 36_000_000 > 0
    if late == 3600:
        assert expected == PRICE * rate // 10_000
    buyer_before = env.bal(env.buyer)
    receipt = env.do(env.buyer, "accept", deal)
    (event,) = env.events(receipt, "DealAccepted")
    gross = PRICE - expected
    assert (event.args.toBuyer, event.args.toSeller) == (expected, gross - fee_of(env, gross))
    assert env.bal(env.buyer) - buyer_before == expected - env.gas_cost(receipt)


def test_penalty_applies_on_finalize_too(env: Env):
    now = env.chain.now()
    deal = env.open(
        promised_by=now + 10, deliver_by=now + 10 * HOUR, penalty_bps_per_hour=500, penalty_cap_bps=5000
    )
    deal = env.submit(deal, at=now + 10 + 2 * HOUR)
    env.at(deal.review_ends_at + 1)
    (event,) = env.events(env.do(env.other, "finalize", deal), "DealFinalized")
    assert event.args.toBuyer == PRICE * 1000 // 10_000


# -- release ----------------------------------------------------------------------------------------------


def test_release_then_accept_pays_the_rest(env: Env):
    deal = env.open()
    part = PRICE // 4
    with pytest.raises(E("EscrowInvalidRelease")):
        env.do(env.buyer, "release", deal, PRICE + 1)
    with pytest.raises(E("EscrowInvalidRelease")):
        env.do(env.buyer, "release", deal, 0)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.seller, "release", deal, part)
    seller_before = env.bal(env.seller)
    receipt = env.do(env.buyer, "release", deal, part)
    deal = env.client._from_receipt(deal, receipt)
    assert deal.amount == PRICE - part and deal.released == part
    assert env.bal(env.seller) - seller_before == part - fee_of(env, part)
    with pytest.raises(E("EscrowTermsMismatch")):  # the old terms are no longer valid
        env.do(env.buyer, "release", replace(deal, terms=replace(deal.terms, amount=PRICE)), 1)
    deal = env.submit(deal)
    (event,) = env.events(env.do(env.buyer, "accept", deal), "DealAccepted")
    assert event.args.toSeller == (PRICE - part) - fee_of(env, PRICE - part)
    assert env.client.deal(deal.id).state == DealState.ACCEPTED


# -- disputes ----------------------------------------------------------------------------------------------


def _disputed(env: Env, **kw: Any) -> Deal:
    deal = env.open(arbiter=env.arbiter.address, arbiter_fee_bps=200, **kw)
    if deal.bond:
        env.do(env.seller, "postBond", deal, value=deal.bond)
        deal = env.client.deal(deal.id)
    deal = env.submit(deal)
    return env.client._from_receipt(deal, env.do(env.buyer, "dispute", deal))


def test_dispute_reverts(env: Env):
    plain = env.submit(env.open())
    with pytest.raises(E("EscrowNoArbiter")):
        env.do(env.buyer, "dispute", plain)
    deal = env.submit(env.open(arbiter=env.arbiter.address))
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.seller, "dispute", deal)
    env.at(deal.review_ends_at + 1)
    with pytest.raises(E("EscrowDeadlinePassed")):
        env.do(env.buyer, "dispute", deal)


def test_dispute_at_the_last_second(env: Env):
    deal = env.submit(env.open(arbiter=env.arbiter.address))
    env.at(deal.review_ends_at)
    env.do(env.buyer, "dispute", deal)
    assert env.state(deal) == DealState.DISPUTED
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.buyer, "accept", deal)


def test_resolve_splits_amount_and_bond(env: Env):
    deal = _disputed(env, bond=BOND)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.buyer, "resolve", deal, 5000, 0)
    with pytest.raises(E("EscrowInvalidBps")):
        env.do(env.arbiter, "resolve", deal, 10_001, 0)
    before = {r: env.bal(getattr(env, r)) for r in ("seller", "buyer", "arbiter")}
    receipt = env.do(env.arbiter, "resolve", deal, 7000, 2500)
    (ev,) = env.events(receipt, "DisputeResolved")
    arbiter_gross = PRICE * 200 // 10_000
    seller_gross = (PRICE - arbiter_gross) * 7000 // 10_000
    fee = fee_of(env, seller_gross) + fee_of(
        env, arbiter_gross
    )  # the arbiter's fee pays the protocol fee too
    to_arbiter = arbiter_gross - fee_of(env, arbiter_gross)
    assert ev.args.toArbiter == to_arbiter and ev.args.fee == fee
    assert ev.args.toSeller == seller_gross - fee_of(env, seller_gross) + BOND // 4
    assert ev.args.toBuyer == PRICE - arbiter_gross - seller_gross + BOND - BOND // 4
    assert env.bal(env.seller) - before["seller"] == ev.args.toSeller
    assert env.bal(env.buyer) - before["buyer"] == ev.args.toBuyer
    assert env.bal(env.arbiter) - before["arbiter"] == to_arbiter - env.gas_cost(receipt)
    assert env.state(deal) == DealState.RESOLVED


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_ruling_deadline_boundary(env: Env, offset: int):
    deal = _disputed(env)
    end = deal.ruling_ends_at
    env.at(end + offset)
    if offset <= 0:
        with pytest.raises(E("EscrowDeadlineNotReached")):
            env.do(env.other, "settleDefault", deal)
        env.at(end + offset)
        env.do(env.arbiter, "resolve", deal, 10_000, 10_000)
    else:
        with pytest.raises(E("EscrowDeadlinePassed")):
            env.do(env.arbiter, "resolve", deal, 10_000, 10_000)
        env.at(end + offset)
        receipt = env.do(env.other, "settleDefault", deal)
        (ev,) = env.events(receipt, "DisputeDefaulted")
        assert ev.args.toSeller == PRICE - fee_of(env, PRICE) and ev.args.toBuyer == 0  # delivery stands
    assert env.state(deal) == DealState.RESOLVED


@pytest.mark.parametrize("split", [0, 5000])
def test_default_split_written_in_the_terms(env: Env, split: int):
    deal = _disputed(env, bond=BOND, default_seller_bps=split)
    env.at(deal.ruling_ends_at + 1)
    (ev,) = env.events(env.do(env.other, "settleDefault", deal), "DisputeDefaulted")
    seller_gross = PRICE * split // 10_000
    assert ev.args.toSeller == seller_gross - fee_of(env, seller_gross) + BOND * split // 10_000
    assert ev.args.toBuyer == PRICE - seller_gross + BOND - BOND * split // 10_000


# -- refund and cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset, ok", [(-1, False), (0, False), (1, True)])
def test_refund_deadline_boundary(env: Env, offset: int, ok: bool):
    deal = env.open(bond=BOND)
    env.do(env.seller, "postBond", deal, value=BOND)
    deal = env.client.deal(deal.id)
    env.at(deal.terms.deliver_by + offset)
    if ok:
        before = env.bal(env.buyer)
        receipt = env.do(env.other, "refund", deal)  # anyone may trigger it
        assert env.bal(env.buyer) - before == PRICE + BOND  # the bond compensates the buyer
        assert env.events(receipt, "DealRefunded")[0].args.by == env.other.address
    else:
        with pytest.raises(E("EscrowDeadlineNotReached")):
            env.do(env.other, "refund", deal)


def test_refund_without_bond_posted_and_after_submission(env: Env):
    deal = env.open(bond=BOND)
    env.at(deal.terms.deliver_by + 1)
    (ev,) = env.events(env.do(env.other, "refund", deal), "DealRefunded")
    assert ev.args.toBuyer == PRICE
    delivered = env.submit(env.open(deliver_by=env.chain.now() + 100))
    env.chain.advance_time(200)
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.other, "refund", delivered)


def test_cancel_while_awaiting_bond_is_unilateral(env: Env):
    for who in ("buyer", "seller"):
        deal = env.open(bond=BOND)
        receipt = env.do(getattr(env, who), "cancel", deal)
        assert env.events(receipt, "DealCancelled")[0].args.toBuyer == PRICE
        assert env.state(deal) == DealState.CANCELLED


def test_cancel_when_funded_needs_both(env: Env):
    deal = env.open(bond=BOND)
    env.do(env.seller, "postBond", deal, value=BOND)
    deal = env.client.deal(deal.id)
    with pytest.raises(E("EscrowUnauthorized")):
        env.do(env.other, "cancel", deal)
    env.do(env.buyer, "cancel", deal)
    assert env.client.status(deal.id) == (DealState.FUNDED, 0, True, False)
    receipt = env.do(env.seller, "cancel", deal)
    (ev,) = env.events(receipt, "DealCancelled")
    assert (ev.args.toBuyer, ev.args.toSeller) == (PRICE, BOND)
    rebuilt = env.client.deal(deal.id)
    assert rebuilt.state == DealState.CANCELLED and rebuilt.buyer_cancelled
    late = env.submit(env.open())
    with pytest.raises(E("EscrowInvalidState")):
        env.do(env.buyer, "cancel", late)


# -- batches ----------------------------------------------------------------------------------------------


def test_accept_many_skips_and_reports(env: Env):
    good = [env.submit(env.open()) for _ in range(3)]
    not_submitted = env.open()
    forged = replace(good[0], id=good[1].id)  # good[0]'s terms under good[1]'s id: mismatch... unless equal
    forged = replace(forged, terms=replace(forged.terms, amount=PRICE + 1))
    missing = replace(good[0], id=999)
    buyer = env.client
    result = buyer.accept_many([good[0], not_submitted, forged, good[2], missing, good[1]])
    assert sorted(d.id for d in result.settled) == sorted(d.id for d in good)
    reasons = {deal_id: type(exc).__name__ for deal_id, exc in result.skipped}
    assert reasons == {
        not_submitted.id: "EscrowInvalidState",
        good[1].id: "EscrowTermsMismatch",
        999: "EscrowDealNotFound",
    }
    assert all(env.state(d) == DealState.ACCEPTED for d in good)
    # already settled: now every item is skipped, nothing reverts
    again = buyer.accept_many(good)
    assert not again.settled and len(again.skipped) == 3


def test_accept_many_by_someone_else_skips_everything(env: Env):
    deals = [env.submit(env.open()) for _ in range(2)]
    result = env.as_(env.other).accept_many(deals)
    assert not result.settled and {type(e).__name__ for _, e in result.skipped} == {"EscrowUnauthorized"}


def test_finalize_many_respects_each_review_window(env: Env):
    early = env.submit(env.open(review_window=10 * HOUR))
    late = env.submit(env.open(review_window=60))
    env.chain.advance_time(120)
    result = env.as_(env.other).finalize_many([early, late])
    assert [d.id for d in result.settled] == [late.id]
    assert [(i, type(e).__name__) for i, e in result.skipped] == [(early.id, "EscrowDeadlineNotReached")]


def test_batch_length_mismatch(env: Env):
    deal = env.submit(env.open())
    with pytest.raises(E("EscrowLengthMismatch")):
        env.send(env.buyer, env.escrow.functions.acceptMany([deal.id, deal.id], [deal.terms.as_tuple()]))


# -- hostile receivers and failing payouts ----------------------------------------------------------------


def _contract_seller_deal(env: Env, receiver: Any) -> Deal:
    deal = env.open(seller=receiver.address)
    data = env.escrow.encode_abi("submit", args=[deal.id, deal.terms.as_tuple(), b"\x01" * 32])
    receipt = env.send(env.other, receiver.functions.execute(env.escrow.address, data))
    return env.client._from_receipt(deal, receipt)


@pytest.mark.parametrize("kind", ["reverting", "burner"])
def test_refusing_seller_is_credited_and_cannot_block_the_buyer(env: Env, kind: str):
    receiver = env.mocks[kind]
    deal = _contract_seller_deal(env, receiver)
    receipt = env.do(env.buyer, "accept", deal)
    payout = PRICE - fee_of(env, PRICE)
    (credited,) = env.events(receipt, "PayoutCredited")
    assert (credited.args.account, credited.args.amount) == (receiver.address, payout)
    # bounded: accept (~50k) + the 30k payout allowance + two credit slots written from zero (~44k)
    assert receipt["gasUsed"] < 50_000 + 30_000 + 50_000
    assert env.client.credit(receiver.address) == payout and env.client.totals().credits == payout
    # the refusing contract pulls its credit to another address
    before = env.bal(env.other)
    data = env.escrow.encode_abi("withdrawTo", args=[ETH, env.other.address])
    env.send(env.owner, receiver.functions.execute(env.escrow.address, data))
    assert env.bal(env.other) - before == payout and env.client.totals().credits == 0


def test_refusing_buyer_refund_is_credited(env: Env):
    receiver = env.mocks["reverting"]
    t = env.terms(buyer=receiver.address)
    data = env.escrow.encode_abi("create", args=[t.as_tuple()])
    receipt = env.send(env.buyer, receiver.functions.execute(env.escrow.address, data), value=PRICE)
    deal = env.client._created_from_receipt(receipt)
    env.at(t.deliver_by + 1)
    env.do(env.other, "refund", deal)
    assert env.client.credit(receiver.address) == PRICE
    with pytest.raises(E("CreditsTransferFailed")):  # withdrawing to itself still fails, credit kept
        env.send(
            env.owner,
            receiver.functions.execute(env.escrow.address, env.escrow.encode_abi("withdraw", args=[ETH])),
        )
    assert env.client.credit(receiver.address) == PRICE


def test_reentering_seller_is_stopped_by_the_guard(env: Env):
    receiver = env.mocks["reenter"]
    deal = _contract_seller_deal(env, receiver)
    # on payment, try to call back into the escrow from inside the payout (a short payload: the receiver
    # reads it from storage within the 30k payout allowance)
    env.send(
        env.owner,
        receiver.functions.arm(env.escrow.address, env.escrow.encode_abi("collectFees", args=[ETH])),
    )
    before = env.bal(receiver.address)
    receipt = env.do(env.buyer, "accept", deal)
    reentered = list(receiver.events.Reentered().process_receipt(receipt, errors=DISCARD))
    assert len(reentered) == 1 and not reentered[0].args.ok
    assert errors.decode_revert(reentered[0].args.result).error_name == "ReentrancyGuardReentrantCall"
    assert env.bal(receiver.address) - before == PRICE - fee_of(env, PRICE)  # paid exactly once


def test_erc20_payout_failure_becomes_credit(env: Env):
    token = env.mocks["token"]
    deal = env.submit(env.open(asset=token.address))
    env.send(env.owner, token.functions.setBlocked(env.seller.address, True))
    receipt = env.do(env.buyer, "accept", deal)
    payout = PRICE - fee_of(env, PRICE)
    assert env.events(receipt, "PayoutCredited")[0].args.amount == payout
    assert env.client.totals(token.address).credits == payout
    with pytest.raises(E("CreditsTransferFailed")):
        env.send(env.seller, env.escrow.functions.withdraw(token.address))
    env.send(env.owner, token.functions.setBlocked(env.seller.address, False))
    before = env.bal(env.seller, token.address)
    env.as_(env.seller).withdraw(token.address)
    assert env.bal(env.seller, token.address) - before == payout


def test_withdraw_and_collect_fees(env: Env):
    with pytest.raises(E("CreditsNothingToWithdraw")):
        env.send(env.seller, env.escrow.functions.withdraw(ETH))
    with pytest.raises(E("CreditsNothingToWithdraw")):
        env.send(env.other, env.escrow.functions.collectFees(ETH))
    deal = env.submit(env.open())
    env.do(env.buyer, "accept", deal)
    fee = fee_of(env, PRICE)
    before = env.bal(env.fee_recipient)
    assert env.as_(env.other).collect_fees() == fee
    assert env.bal(env.fee_recipient) - before == fee and env.client.totals().fees == 0


# -- market entry and admin --------------------------------------------------------------------------------


def test_only_the_owner_sets_markets_and_only_markets_open_for(env: Env):
    t = env.terms()
    with pytest.raises(E("EscrowNotMarket")):
        env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), False), value=PRICE)
    with pytest.raises(E("OwnableUnauthorizedAccount")):
        env.send(env.other, env.escrow.functions.setMarket(env.market.address, True))
    env.send(env.owner, env.escrow.functions.setMarket(env.market.address, True))
    assert env.escrow.functions.isMarket(env.market.address).call()


def _as_market(env: Env) -> None:
    env.send(env.owner, env.escrow.functions.setMarket(env.market.address, True))


def test_open_for_eth_with_bond_posted(env: Env):
    _as_market(env)
    t = env.terms(bond=BOND)
    with pytest.raises(E("EscrowWrongValue")):
        env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), True), value=PRICE)
    receipt = env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), True), value=PRICE + BOND)
    deal = env.client._created_from_receipt(receipt)
    assert deal.state == DealState.FUNDED and deal.opened_by == env.market.address
    assert env.client.totals().locked == PRICE + BOND
    deal = env.submit(deal)
    (ev,) = env.events(
        env.do(env.buyer, "accept", deal), "DealAccepted"
    )  # the buyer, not the market, accepts
    assert ev.args.toSeller == PRICE - fee_of(env, PRICE) + BOND


def test_open_for_erc20_pre_transferred_or_pulled(env: Env):
    _as_market(env)
    token = env.mocks["token"]
    t = env.terms(asset=token.address, bond=BOND)
    env.send(env.market, token.functions.transfer(env.escrow.address, PRICE))  # pre-transfer the price
    env.send(env.market, token.functions.approve(env.escrow.address, BOND))  # the bond is pulled
    receipt = env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), True))
    deal = env.client._created_from_receipt(receipt)
    assert (deal.amount, deal.bond, deal.state) == (PRICE, BOND, DealState.FUNDED)
    assert env.client.totals(token.address).locked == PRICE + BOND
    assert token.functions.allowance(env.market.address, env.escrow.address).call() == 0


def test_open_for_fee_on_transfer_splits_pro_rata(env: Env):
    _as_market(env)
    fot = env.mocks["fot"]
    t = env.terms(asset=fot.address, bond=BOND)
    env.send(env.market, fot.functions.approve(env.escrow.address, PRICE + BOND))
    deal = env.client._created_from_receipt(
        env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), True))
    )
    received = (PRICE + BOND) * 99 // 100
    assert deal.amount + deal.bond == received == env.client.totals(fot.address).locked
    assert deal.amount == received * PRICE // (PRICE + BOND)


def test_market_opening_awaiting_bond(env: Env):
    _as_market(env)
    t = env.terms(bond=BOND)
    deal = env.client._created_from_receipt(
        env.send(env.market, env.escrow.functions.openFor(t.as_tuple(), False), value=PRICE)
    )
    assert deal.state == DealState.AWAITING_BOND


def test_owner_has_no_power_over_funds():
    abi = load_artifact("AgentEscrow")["abi"]
    mutating = {
        f["name"]
        for f in abi
        if f["type"] == "function" and f["stateMutability"] in ("nonpayable", "payable")
    }
    assert mutating == {
        "create",
        "openFor",
        "postBond",
        "submit",
        "accept",
        "release",
        "finalize",
        "dispute",
        "resolve",
        "settleDefault",
        "refund",
        "cancel",
        "acceptMany",
        "finalizeMany",
        "withdraw",
        "withdrawTo",
        "collectFees",
        "collectFeesTo",
        "reject",
        "setMarket",
        "transferOwnership",
        "acceptOwnership",
        "renounceOwnership",
    }


@pytest.mark.parametrize(
    "fee_bps, recipient, error", [(501, "x", "EscrowFeeTooHigh"), (10, None, "EscrowZeroFeeRecipient")]
)
def test_constructor_limits(chain: Chain, fee_bps: int, recipient: Any, error: str):
    recipient = chain.accounts[1].address if recipient else ZERO_ADDRESS
    with pytest.raises(E(error)):
        chain.transactor.deploy(
            chain.accounts[0], load_artifact("AgentEscrow"), chain.accounts[0].address, recipient, fee_bps
        )


# -- client --------------------------------------------------------------------------------------------------


def test_client_full_trade_and_rebuild(env: Env):
    buyer, seller = env.client, env.as_(env.seller)
    deal = buyer.create(
        env.seller.address, PRICE, deliver_by=timedelta(hours=2), bond=BOND, terms_hash=b"gpu-hours:8xH100:4h"
    )
    assert deal.state == DealState.AWAITING_BOND
    deal = seller.post_bond(deal)
    deal = seller.submit(deal, b"\x05" * 32)
    deal = buyer.accept(deal)
    assert deal.state == DealState.ACCEPTED and deal.settlement.to_seller == PRICE - fee_of(env, PRICE) + BOND
    assert buyer.deal(deal.id) == deal  # rebuilt from events == returned from the receipt
    assert [d.id for d in buyer.deals(party=env.seller.address, state=DealState.ACCEPTED)] == [deal.id]
    assert buyer.deals(party=env.other.address) == []


def test_client_preflight_errors_spend_no_gas(env: Env):
    buyer, seller, other = env.client, env.as_(env.seller), env.as_(env.other)
    deal = buyer.create(
        env.seller.address, PRICE, deliver_by=datetime.fromtimestamp(env.chain.now() + HOUR, tz=timezone.utc)
    )
    nonce = env.w3.eth.get_transaction_count(env.seller.address)
    with pytest.raises(errors.InvalidState):
        buyer.accept(deal)  # not submitted
    with pytest.raises(errors.NotAuthorized):
        seller.accept(deal)
    with pytest.raises(errors.InvalidState):
        other.refund(deal)  # deadline not passed
    with pytest.raises(errors.InvalidState):
        buyer.dispute(seller.submit(deal, b"\x01" * 32))  # no arbiter
    with pytest.raises(errors.InvalidInput):
        buyer.create(env.seller.address, 0, deliver_by=timedelta(hours=1))
    with pytest.raises(errors.InvalidInput):
        buyer.create(env.buyer.address, PRICE, deliver_by=timedelta(hours=1))
    token = env.mocks["token"].address
    with pytest.raises(errors.InsufficientAllowance):
        buyer.create(env.seller.address, PRICE, asset=token, deliver_by=timedelta(hours=1))
    with pytest.raises(errors.InsufficientFunds):
        buyer.create(env.seller.address, 10**30, asset=token, deliver_by=timedelta(hours=1), approve=True)
    assert env.w3.eth.get_transaction_count(env.seller.address) == nonce + 1  # only the submit was sent
    deal2 = buyer.create(env.seller.address, PRICE, asset=token, deliver_by=timedelta(hours=1), approve=True)
    assert env.mocks["token"].functions.allowance(env.buyer.address, env.escrow.address).call() == 0
    env.at(deal2.terms.deliver_by + 1)
    env.chain.mine()
    with pytest.raises(errors.InvalidState):
        seller.submit(deal2, b"\x01" * 32)  # too late
    assert other.refund(deal2).state == DealState.REFUNDED


def test_client_dispute_resolve_and_default(env: Env):
    buyer, seller, arbiter = env.client, env.as_(env.seller), env.as_(env.arbiter)
    deal = buyer.create(
        env.seller.address,
        PRICE,
        deliver_by=timedelta(hours=2),
        arbiter=env.arbiter.address,
        arbiter_fee_bps=100,
        review_window=timedelta(minutes=30),
        ruling_window=HOUR,
    )
    deal = buyer.dispute(seller.submit(deal, b"\x01" * 32))
    with pytest.raises(errors.NotAuthorized):
        seller.resolve(deal, 10_000)
    with pytest.raises(errors.InvalidState):
        buyer.settle_default(deal)
    resolved = arbiter.resolve(deal, 4000)
    assert resolved.state == DealState.RESOLVED and resolved.settlement.to_arbiter == PRICE // 100 - fee_of(
        env, PRICE // 100
    )
    deal = buyer.create(env.seller.address, PRICE, deliver_by=timedelta(hours=2), arbiter=env.arbiter.address)
    deal = buyer.dispute(seller.submit(deal, b"\x01" * 32))
    env.chain.travel_to(deal.ruling_ends_at + 1)
    with pytest.raises(errors.InvalidState):
        arbiter.resolve(deal, 0)
    assert env.as_(env.other).settle_default(deal).settlement.to_seller == PRICE - fee_of(env, PRICE)


def test_client_release_cancel_and_batch(env: Env):
    buyer, seller = env.client, env.as_(env.seller)
    deal = buyer.release(buyer.create(env.seller.address, PRICE, deliver_by=timedelta(hours=1)), PRICE // 2)
    assert deal.amount == PRICE // 2
    deal = buyer.cancel(deal)
    assert deal.buyer_cancelled and deal.state == DealState.FUNDED
    with pytest.raises(errors.InvalidState):
        buyer.cancel(deal)
    assert seller.cancel(deal).state == DealState.CANCELLED
    deals = [
        seller.submit(buyer.create(env.seller.address, PRICE, deliver_by=timedelta(hours=1)), b"\x01" * 32)
        for _ in range(3)
    ]
    result = buyer.accept_many([d.id for d in deals])
    assert len(result.settled) == 3 and not result.skipped
    assert all(d == buyer.deal(d.id) for d in result.settled)


def test_rebuilt_deals_equal_on_chain_views(env: Env):
    """docs/design.md §6.10: what the client rebuilds from events equals the contract's views."""
    env.submit(env.open())
    env.open(bond=BOND)
    d = env.open()
    env.do(env.buyer, "release", d, 10)
    for deal in env.client.deals():
        state, submitted, buyer_c, seller_c = env.client.status(deal.id)
        assert (deal.state, deal.submitted_at, deal.buyer_cancelled, deal.seller_cancelled) == (
            state,
            submitted,
            buyer_c,
            seller_c,
        )
        assert env.escrow.functions.verifyTerms(deal.id, deal.terms.as_tuple()).call()
    assert sum(d.locked for d in env.client.deals()) == env.client.totals().locked


# -- anvil --------------------------------------------------------------------------------------------------


@pytest.mark.anvil
def test_anvil_trade_refund_and_typed_revert(anvil: Chain, anvil_suite: Suite):
    buyer = EscrowClient.from_suite(anvil_suite, anvil.accounts[1])
    seller = buyer.as_(anvil.accounts[2])
    deal = buyer.create(anvil.accounts[2].address, PRICE, deliver_by=timedelta(hours=1))
    deal = buyer.accept(seller.submit(deal, b"\x09" * 32))
    assert deal.state == DealState.ACCEPTED and buyer.deal(deal.id) == deal
    late = buyer.create(anvil.accounts[2].address, PRICE, deliver_by=timedelta(hours=1))
    anvil.advance_time(2 * HOUR)
    with pytest.raises(E("EscrowDeadlinePassed")):  # decoded from the node's error data
        anvil.transactor.transact(
            anvil.accounts[2],
            buyer.contract.functions.submit(late.id, late.terms.as_tuple(), b"\x01" * 32),
            gas=GAS,
        )
    assert buyer.as_(anvil.accounts[3]).refund(late).state == DealState.REFUNDED
    balance, totals = buyer.solvency()
    assert balance == totals.accounted


@pytest.mark.anvil
def test_anvil_batch_with_skips(anvil: Chain, anvil_suite: Suite):
    buyer = EscrowClient.from_suite(anvil_suite, anvil.accounts[1])
    seller = buyer.as_(anvil.accounts[2])
    deals = [
        seller.submit(
            buyer.create(anvil.accounts[2].address, PRICE, deliver_by=timedelta(hours=1)), b"\x01" * 32
        )
        for _ in range(3)
    ]
    pending = buyer.create(anvil.accounts[2].address, PRICE, deliver_by=timedelta(hours=1))
    result = buyer.accept_many([*deals, pending])
    assert len(result.settled) == 3 and [type(e).__name__ for _, e in result.skipped] == [
        "EscrowInvalidState"
    ]
