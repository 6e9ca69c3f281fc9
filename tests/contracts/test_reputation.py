"""ReputationRegistry: only counterparties of settled, paid deals rate, once each; value-weighted
figures per agent, asset and tag; forged terms cannot inflate the weight."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from helpers import load_artifact

from agentmarket import errors
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.reputation import Figures, ReputationClient, comment_hash, encode_tag
from agentmarket.types import DealState, protocol_fee

E = errors.revert_class
DAY = timedelta(days=1)


def net(p, amount=10**17):
    """What the seller is paid for an accepted deal of ``amount``: the rating weight."""
    return amount - protocol_fee(amount, p["buyer"].fee_bps)


@pytest.fixture
def parties(chain, suite):
    a = chain.accounts
    buyer = EscrowClient.from_suite(suite, a[1])
    rep = ReputationClient.from_suite(suite, a[1])
    return {
        "chain": chain,
        "buyer": buyer,
        "seller": buyer.as_(a[2]),
        "arbiter": buyer.as_(a[3]),
        "rep_buyer": rep,
        "rep_seller": rep.as_(a[2]),
        "rep_stranger": rep.as_(a[4]),
        "rep_arbiter": rep.as_(a[3]),
        "reg": suite["ReputationRegistry"],
    }


def accepted(p, amount=10**17, **terms):
    deal = p["buyer"].create(p["seller"].account.address, amount, deliver_by=DAY, **terms)
    deal = p["seller"].submit(deal, b"\x01" * 32)
    return p["buyer"].accept(deal)


def send_rate(p, who, deal, score=50, tag="compute", terms=None):
    fn = p["reg"].functions.rate(
        deal.id, (terms or deal.terms).as_tuple(), score, encode_tag(tag), comment_hash("x")
    )
    p["chain"].transactor.call(fn, sender=who.account.address)
    return p["chain"].transactor.transact(who.account, fn, gas=300_000)


def test_both_parties_rate_once(parties):
    p = parties
    deal = accepted(p)
    r = p["rep_buyer"].rate(deal, 90, tag="compute", comment="fast")
    assert (r.rater, r.ratee, r.score, r.tag, r.weight) == (
        p["buyer"].account.address,
        p["seller"].account.address,
        90,
        "compute",
        net(p),
    )
    p["rep_seller"].rate(deal, 70, tag="payer")
    with pytest.raises(E("ReputationAlreadyRated")):
        send_rate(p, p["rep_buyer"], deal)
    with pytest.raises(errors.InvalidState):  # client pre-flight says the same before sending
        p["rep_buyer"].rate(deal, 10)
    seller_rep = p["rep_stranger"].reputation(p["seller"].account.address)
    assert seller_rep.count == 1 and seller_rep.score == 90 and seller_rep.total_value == net(p)
    assert seller_rep.by_tag == {"compute": Figures(1, net(p), 90 * net(p))}
    assert p["reg"].functions.weightedScore(p["buyer"].account.address, deal.asset).call() == 7000
    assert (
        p["reg"].functions.hasRated(deal.id, True).call()
        and p["reg"].functions.hasRated(deal.id, False).call()
    )


def test_value_weighting_and_tags(parties):
    p = parties
    small, big = accepted(p, amount=10**17), accepted(p, amount=3 * 10**17)
    p["rep_buyer"].rate(small, 0, tag="api")
    p["rep_buyer"].rate(big, 100, tag="compute")
    rep = p["rep_buyer"].reputation(p["seller"].account.address)
    assert rep.count == 2 and rep.score == 75.0
    assert rep.by_tag["api"].score == 0 and rep.by_tag["compute"].score == 100
    untagged = accepted(p)
    p["rep_buyer"].rate(untagged, 50)
    rep = p["rep_buyer"].reputation(p["seller"].account.address)
    assert rep.count == 3 and set(rep.by_tag) == {"api", "compute"}


def test_strangers_and_arbiters_cannot_rate(parties):
    p = parties
    deal = accepted(p)
    with pytest.raises(E("ReputationNotParty")):
        send_rate(p, p["rep_stranger"], deal)
    with pytest.raises(errors.NotAuthorized):
        p["rep_stranger"].rate(deal, 100)


def test_only_settled_paid_deals(parties):
    p = parties
    funded = p["buyer"].create(p["seller"].account.address, 10**17, deliver_by=timedelta(seconds=100))
    with pytest.raises(E("ReputationDealNotSettled")):
        send_rate(p, p["rep_buyer"], funded)
    submitted = p["seller"].submit(
        p["buyer"].create(p["seller"].account.address, 10**17, deliver_by=DAY), b"\x02" * 32
    )
    with pytest.raises(errors.InvalidState):
        p["rep_buyer"].rate(submitted, 100)
    p["chain"].advance_time(200)
    refunded = p["buyer"].refund(funded)
    assert refunded.state == DealState.REFUNDED
    with pytest.raises(E("ReputationDealNotSettled")):
        send_rate(p, p["rep_seller"], refunded)


def test_finalized_and_resolved_deals_can_be_rated(parties):
    p = parties
    seller = p["seller"].account.address
    disputed = p["buyer"].create(seller, 10**17, deliver_by=DAY, arbiter=p["arbiter"].account.address)
    disputed = p["buyer"].dispute(p["seller"].submit(disputed, b"\x03" * 32))
    resolved = p["arbiter"].resolve(disputed, 5000)
    assert resolved.state == DealState.RESOLVED
    p["rep_seller"].rate(resolved, 20)
    with pytest.raises(errors.NotAuthorized):  # the arbiter is not a counterparty
        p["rep_arbiter"].rate(resolved, 20)
    lapsed = p["seller"].submit(p["buyer"].create(seller, 10**17, deliver_by=DAY), b"\x04" * 32)
    p["chain"].advance_time(3601)
    finalized = p["seller"].finalize(lapsed)
    assert finalized.state == DealState.FINALIZED
    p["rep_buyer"].rate(finalized, 100)


def test_forged_terms_cannot_inflate_weight(parties):
    p = parties
    deal = accepted(p)
    forged = replace(deal.terms, amount=10**30)
    with pytest.raises(E("ReputationTermsMismatch")):
        send_rate(p, p["rep_buyer"], deal, terms=forged)
    with pytest.raises(E("ReputationInvalidScore")):
        send_rate(p, p["rep_buyer"], deal, score=101)
    with pytest.raises(errors.InvalidInput):
        p["rep_buyer"].rate(deal, 101)


def test_figures_are_per_asset(parties):
    p = parties
    chain = p["chain"]
    artifact = load_artifact("MockERC20")
    ctor = [i for i in artifact["abi"] if i["type"] == "constructor"]
    args = () if not ctor or not ctor[0]["inputs"] else ("Token", "TKN", 18)[: len(ctor[0]["inputs"])]
    receipt = chain.transactor.deploy(chain.accounts[0], artifact, *args)
    token = chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    chain.transactor.transact(chain.accounts[0], token.functions.mint(p["buyer"].account.address, 10**30))
    deal = accepted(p, amount=10**29, asset=token.address, approve=True)
    p["rep_buyer"].rate(deal, 0)
    seller = p["seller"].account.address
    assert p["rep_buyer"].reputation(seller).count == 0  # ETH figures untouched by a token deal
    tok = p["rep_buyer"].reputation(seller, token.address)
    assert tok.count == 1 and tok.total_value == 2**96 - 1  # weights are capped at WEIGHT_CAP
