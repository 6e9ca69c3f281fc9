"""Selfish providers against the quarterly procurement assistant's choice rule (no chain needed: the rule is
pure; the on-chain consequences of late, short and missing deliveries are in tests/integration/test_quarter.py)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from agentmarket.sim.quarter import Belief, RatingEvidence, estimate_provider


def test_wash_traded_perfect_ratings_do_not_outweigh_the_agents_own_failures() -> None:
    """A provider that paid itself through Sybil buyers for fifty 100-ratings, then failed the assistant
    three times, ranks below an unrated provider that delivered three times on time: other buyers' ratings
    count as at most ``cap`` observations however many there are."""
    rng = random.Random(0)
    washed = Belief(kept=1.0, missed=4.0, delivered=2.0, undelivered=3.5)  # three failures seen
    honest = Belief(kept=4.0, missed=1.0, delivered=5.0, undelivered=0.5)  # three on time seen
    sybil = RatingEvidence(count=50, ontime_share=1.0, score=100.0)
    kept_w, share_w = estimate_provider(washed, sybil, rng, sample=False, cap=4.0)
    kept_h, share_h = estimate_provider(honest, None, rng, sample=False, cap=4.0)
    assert kept_w < kept_h and share_w < share_h


def test_a_good_rating_helps_only_until_the_record_speaks() -> None:
    """With no record of its own the ratings decide; one failure observed moves the estimate down."""
    rng = random.Random(0)
    good = RatingEvidence(count=3, ontime_share=1.0, score=95.0)
    fresh = estimate_provider(Belief(), good, rng, sample=False)[0]
    after_failure = estimate_provider(Belief(kept=1.0, missed=2.0), good, rng, sample=False)[0]
    unrated = estimate_provider(Belief(), None, rng, sample=False)[0]
    assert fresh > unrated and after_failure < fresh


def test_late_deliveries_rated_fairly_well_still_read_as_missed_promises() -> None:
    """A provider late half the time collects scores of 95 and 60 (mean 77.5). Read as a mean score that
    would look like a 77% on-time record; read rating by rating it is 50%, which is what it is."""
    from agentmarket.clients.reputation import Rating

    def rating(score: int) -> Rating:
        return Rating(1, "0xrater", "0xratee", "0x0", score, "gpu-hour", b"", 10**16)

    evidence = RatingEvidence.of([rating(95), rating(60), rating(95), rating(60)])
    assert evidence is not None and evidence.ontime_share == 0.5 and evidence.score == 77.5
    kept, _ = estimate_provider(Belief(kept=0.5, missed=0.5), evidence, random.Random(0), sample=False)
    assert kept == 0.5
    assert RatingEvidence.of([]) is None


def test_an_uninvited_stranger_can_win_a_quarter_auction_but_a_no_show_costs_the_assistant_nothing(
    chain, suite
) -> None:
    """The assistant invites providers off chain, but the ProcurementAuction is open: a stranger with no
    record can undercut the invitees and win the lot. Its gain ends there: with the quarter's terms (an
    arbiter, a delivery deadline) a no-show is refunded in full after the deadline, and the unspent
    budget came back at settlement, so the assistant loses the week's hours (an SLA miss), not money."""
    from agentmarket.clients.auctions import AuctionClient
    from agentmarket.clients.escrow import EscrowClient
    from agentmarket.sim.quarter import AUCTION_WINDOW, DEADLINE, PROMISE, REVIEW, RULING
    from agentmarket.types import DealState

    buyer, arbiter = chain.new_account(10**18), chain.new_account(10**16)
    invited, stranger = chain.new_account(10**17), chain.new_account(10**17)
    auctions = AuctionClient.from_suite(suite, buyer)
    terms = auctions.template(
        DEADLINE - PROMISE,
        arbiter=arbiter.address,
        review_window=REVIEW,
        ruling_window=RULING,
        penalty_bps_per_hour=50,
        penalty_cap_bps=3_000,
    )
    budget = 10**17
    bid_end = chain.now() + AUCTION_WINDOW
    a = auctions.create_procurement(terms, budget=budget, bid_end=bid_end, max_delivery=PROMISE)
    delivery = PROMISE - AUCTION_WINDOW - 1
    a = auctions.as_(invited).offer(a, 9 * 10**16, delivery)
    a = auctions.as_(stranger).offer(a, 5 * 10**16, delivery)  # undercuts: nothing stops it on chain
    chain.travel_to(bid_end + 1)
    before = chain.w3.eth.get_balance(buyer.address)
    a = auctions.settle(a)
    assert a.winner == stranger.address and a.price == 5 * 10**16
    escrow = EscrowClient.from_suite(suite, buyer)
    deal = escrow.deal(a.deal_id)
    assert deal.terms.buyer == buyer.address and deal.terms.arbiter == arbiter.address
    chain.travel_to(deal.terms.deliver_by + 1)  # the stranger never delivers
    deal = escrow.refund(deal)
    assert deal.state == DealState.REFUNDED
    gas = 10**16  # generous bound on the two transactions' gas
    assert chain.w3.eth.get_balance(buyer.address) > before + budget - gas  # whole budget back


def test_a_cheap_unreliable_provider_is_not_handed_a_price_only_auction() -> None:
    """The auction contract picks the lowest bid, so a cheap provider with a poor record would win any lot
    it is invited to. The assistant invites it only when its predicted price, times its risk factor, beats
    buying from the best-ranked provider at its quote; a better record flips the decision."""
    from agentmarket.sim.quarter import Candidate, invitation_size

    reliable = Candidate(quote=100, posted=130, risk=1.0)  # 100 per delivered on-time hour
    cheap_bad = Candidate(quote=70, posted=120, risk=2.0)  # 140 at its quote
    # inviting both: the cheap one wins at about 0.9 x 100, i.e. 180 per on-time hour; no auction
    assert invitation_size([reliable, cheap_bad], invite=5, discount=0.9, ceiling=200) == 0
    decent = Candidate(quote=95, posted=120, risk=1.1)  # 104.5 at its quote; wins at 0.9 x 100 x 1.1 = 99
    assert invitation_size([reliable, decent], invite=5, discount=0.9, ceiling=200) == 2
    # the cheap, unreliable third is left out: invited, it would take the lot at 0.9 x 95 x 2.0 = 171
    assert invitation_size([reliable, decent, cheap_bad], invite=5, discount=0.9, ceiling=200) == 2


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.integers(0, 10**6), st.floats(1.0, 20.0)), min_size=1, max_size=8
    ),
    st.integers(2, 8),
)
def test_bids_that_never_go_below_the_quotes_stop_the_auctions(rows, invite) -> None:
    """Providers who keep auction prices at their negotiated quotes (a ring that never undercuts) drive the
    assistant's learned discount to 1; from then on no invitation beats negotiating with the best-ranked
    provider, so it holds no auctions: the ring gains nothing over plain negotiation."""
    from agentmarket.sim.quarter import Candidate, invitation_size

    cands = sorted(
        (Candidate(quote=q, posted=q + extra, risk=r) for q, extra, r in rows), key=lambda c: c.quote * c.risk
    )
    assert invitation_size(cands, invite=invite, discount=1.0, ceiling=10**7) == 0
