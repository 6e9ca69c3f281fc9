"""A quarter of cloud-compute procurement on chain: an assistant agent against two naive baselines.

Three buyers face the same providers in the same weeks (a paired design: one chain, the same provider
states and the same delivery outcomes per provider and week; each buyer is served from its own share of a
provider's capacity, so the three worlds do not crowd each other out):

``agent``
    The procurement assistant. It holds a quarterly budget :class:`~agentmarket.mandate.Mandate` (every deal
    is authorised by a :class:`~agentmarket.mandate.MandateGuard` before it is funded; refunds give budget
    back). Each week it asks every provider for a quote and negotiates the unit price
    (:func:`~agentmarket.strategies.bargaining.negotiate`, alternating offers, the provider's reserve
    private), then ranks the quotes by expected cost per delivered on-time GPU-hour: price over the
    expected delivered share, with a risk premium for missing the promised time. The estimates are Beta
    posteriors from what the assistant can know: its own delivery record (decaying, reliability drifts)
    plus the other buyers' ratings in the on-chain registry
    (:class:`~agentmarket.clients.reputation.ReputationClient`), read one by one and worth at most
    ``rating_cap`` observations; unrated providers with a thin record are sampled (Thompson sampling). It
    buys part of the week through price-only ``ProcurementAuction`` lots, inviting only the set whose
    predicted winner is cheapest per delivered on-time GPU-hour (:func:`invitation_size`), and fills the
    rest down the ranking (capacity-bound, at most ``max_share`` of demand each). A day in, when deliveries
    are due, it re-buys what has not arrived (an auction lot for a large shortfall, else down the
    ranking, skipping the providers that are behind). It funds each deal in escrow, disputes short
    deliveries to the arbiter, and rates every settled deal.
``single``
    Baseline (a): the provider with the lowest posted price among those able to serve the peak demand,
    chosen in week 1 and kept all quarter, at its posted price each week; accepts whatever is delivered.
``cheapest``
    Baseline (b): every week, the demand filled in order of posted price (capacity-bound), at the posted
    prices; accepts whatever is delivered.

Every deal is an :class:`~agentmarket.clients.escrow.EscrowClient` deal with the same terms for all three
buyers: the promised time (late penalty per hour after it, capped), the delivery deadline (after which the
buyer takes a refund of a deal never delivered), the review window and an arbiter. Providers are on-chain
agents: they submit their deliverable's hash on time, late, never, or short (a fraction of the hours) per
their drifting reliability. Money figures come from the escrow's events, never from Python's own totals.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from ..agent import resource_id
from ..clients.auctions import AuctionClient
from ..clients.escrow import EscrowClient
from ..clients.reputation import Rating, ReputationClient
from ..deploy import Suite
from ..errors import InvalidInput, MandateViolation
from ..mandate import Mandate, MandateGuard, PriceBand
from ..strategies.bargaining import Negotiator, Role, negotiate
from ..strategies.concession import boulware, conceder, linear
from ..strategies.utility import IssueRange, Preferences, Weights
from ..types import BPS, ETH, ZERO_ADDRESS, Auction, Deal, DealState, content_hash

__all__ = [
    "POLICIES",
    "Belief",
    "BuyerTotals",
    "Candidate",
    "Provider",
    "QuarterConfig",
    "QuarterResult",
    "RatingEvidence",
    "estimate_provider",
    "event_totals",
    "invitation_size",
    "run_quarter",
]

POLICIES = ("agent", "single", "cheapest")
GPU_HOUR = "gpu-hour"
REF = 10**15  # reference price of one GPU-hour: 0.001 ETH
DAY = 86_400
HOUR = 3_600
WEEK = 7 * DAY
PROMISE = 2 * DAY  # promised delivery, from the week's start
DEADLINE = 4 * DAY  # delivery deadline: after it a missing delivery is refunded
REVIEW = DAY
RULING = DAY
AUCTION_WINDOW = HOUR  # procurement auctions take bids for an hour at the start of the week
REMATCH_LEAD = DAY // 2  # a replacement bought when the first deliveries are due arrives half a day later


@dataclass(frozen=True)
class QuarterConfig:
    """Parameters of one simulated quarter (one seed)."""

    seed: int = 1
    weeks: int = 13
    providers: int = 24
    demand: int = 600  # mean GPU-hours per week
    penalty_bps_per_hour: int = 50  # 0.5% of the price per hour late ...
    penalty_cap_bps: int = 3_000  # ... up to 30%
    max_share: float = 0.7  # the agent puts at most this share of a week's demand on one provider
    risk_premium: float = 0.0  # the agent's price of a missed promise, as a share of the unit price (tuned on
    # seeds 1-10: with re-buying, a premium above 0 cut misses further but cost more per delivered hour)
    memory: float = 0.92  # the assistant's record decays by this factor a week: reliability drifts
    budget_factor: float = 1.3  # quarterly budget = factor x expected demand x reference price
    prior_ratings: bool = True  # each provider starts with rated deals from an earlier customer ...
    prior_deals: int = 3  # ... this many
    rating_cap: float = 4.0  # other buyers' ratings count as at most this many observations of a provider
    auction_lots: int = 2  # procurement auctions a week (0: negotiation only) ...
    lot_share: float = 0.3  # ... each for this share of the week's demand ...
    invite: int = 5  # ... among at most this many providers (the invitation that minimises the expected
    # cost per delivered on-time GPU-hour of the predicted winner; no auction when negotiation is cheaper)
    invite_rule: str = "predicted"  # "predicted" (above) or "top": the first ``invite`` of the ranking
    auction_discount: float = 0.9  # prior of (auction unit price / runner-up's negotiated quote) ...
    discount_memory: float = 0.7  # ... updated after each sale: new = m x old + (1 - m) x observed
    rematch_auction: bool = True  # a replacement of at least a third of a lot is auctioned first
    rematch: float = 1.0  # share of a week's undelivered demand re-bought when the first deliveries are due

    def __post_init__(self) -> None:
        if self.weeks < 1 or self.providers < 2 or self.demand < 10:
            raise InvalidInput("need weeks >= 1, providers >= 2 and demand >= 10 GPU-hours")
        if not 0 < self.max_share <= 1:
            raise InvalidInput("max_share must lie in (0, 1]")
        if self.auction_lots < 0 or not 0 < self.lot_share <= 1 or self.invite < 2:
            raise InvalidInput("need auction_lots >= 0, lot_share in (0, 1] and invite >= 2")
        if self.invite_rule not in ("predicted", "top") or not 0 < self.auction_discount <= 1:
            raise InvalidInput("invite_rule is 'predicted' or 'top'; auction_discount lies in (0, 1]")
        if not 0 <= self.discount_memory < 1:
            raise InvalidInput("discount_memory must lie in [0, 1)")
        if not 0 <= self.rematch <= 1:
            raise InvalidInput("rematch must lie in [0, 1]")


@dataclass
class Provider:
    """A simulated provider's private state (drifts every week)."""

    index: int
    account: LocalAccount
    cost: float  # unit cost in wei per GPU-hour
    markup: float  # posted price = cost * (1 + markup)
    capacity: int  # GPU-hours per week per buyer
    quality: float  # 0..1: drives the chances of late, failed and short delivery
    tactic: str  # its concession tactic when negotiating
    shock_week: int = -1  # the week its quality jumps by `shock` (-1: never)
    shock: float = 0.0

    @property
    def posted(self) -> int:
        return int(self.cost * (1 + self.markup))

    @property
    def reserve(self) -> int:
        """Lowest unit price it accepts: cost plus a small margin."""
        return int(self.cost * 1.04)

    def odds(self) -> tuple[float, float, float]:
        """(p_fail, p_short, p_late) this week."""
        bad = 1.0 - self.quality
        return (0.01 + 0.10 * bad, 0.01 + 0.08 * bad, 0.03 + 0.30 * bad)

    def drift(self, rng: random.Random, week: int) -> None:
        """Move to week ``week``'s state: a random walk in cost, markup and quality, and the shock."""
        self.cost *= math.exp(rng.gauss(0.0, 0.04))
        self.markup = min(0.6, max(0.05, self.markup + rng.gauss(0.0, 0.03)))
        jump = self.shock if week == self.shock_week else 0.0
        self.quality = min(0.98, max(0.02, self.quality + jump + rng.gauss(0.0, 0.05)))


@dataclass(frozen=True)
class Outcome:
    """What a provider does with every deal it holds in one week (the same for every buyer: paired)."""

    kind: str  # "ontime", "late", "short", "fail"
    late_hours: int = 0
    fraction: float = 1.0  # share of the hours delivered (short deliveries)


@dataclass
class Placed:
    """One deal a buyer opened, and what happened to it."""

    policy: str
    week: int
    provider: int
    hours: int
    unit_price: int
    posted_price: int
    deal: Deal
    outcome: Outcome
    source: str = "posted"  # how the price was set: "posted", "negotiated", "auction" or "rematch"
    delivered_hours: float = 0.0
    ontime_hours: float = 0.0
    state: str = ""
    rated: int | None = None
    auction: bool = False  # bought through a procurement auction


@dataclass
class BuyerTotals:
    """Per buyer, from the escrow's events: paid out of escrow, came back, and why."""

    locked: int = 0  # sum of deal amounts funded
    spend: int = 0  # amount - to_buyer over settled deals (seller + fee + arbiter)
    refunds: int = 0  # to_buyer of deals refunded after a missed deadline
    penalties: int = 0  # late penalties returned on acceptance
    dispute_returns: int = 0  # to_buyer of disputes the arbiter ruled
    deals: int = 0
    open: int = 0  # deals not in a final state


@dataclass
class PolicyResult:
    """One buyer's quarter."""

    policy: str
    demand_hours: int
    delivered_hours: float
    ontime_hours: float
    spend_wei: int
    recovered_wei: int
    refunds_wei: int
    penalties_wei: int
    dispute_returns_wei: int
    deals: int
    sla_missed_deals: int
    sla_miss_weeks: int  # weeks with under 95% of demand delivered on time
    missed_hours: float  # demand not delivered by the promised time
    mandate_refusals: int
    weekly_cost_per_hour: list[float]
    auctions: int = 0  # procurement auctions held (assistant only) ...
    auction_sales: int = 0  # ... that ended in a deal
    auction_hours: int = 0  # GPU-hours bought through them
    negotiated_hours: int = 0  # GPU-hours bought at negotiated prices
    rematch_hours: int = 0  # GPU-hours re-bought within a week after deliveries failed to arrive
    useful_hours: float = 0.0  # per week min(demand, on-time hours): what the demand could use

    @property
    def cost_per_hour(self) -> float:
        """Spend per delivered GPU-hour, in units of the reference price."""
        return self.spend_wei / REF / self.delivered_hours if self.delivered_hours else float("inf")

    @property
    def cost_per_useful_hour(self) -> float:
        """Spend per GPU-hour delivered on time and within the week's demand (late hours and hours beyond
        the demand count as nothing), in units of the reference price: the check that re-buying and
        over-buying do not flatter :attr:`cost_per_hour`."""
        return self.spend_wei / REF / self.useful_hours if self.useful_hours else float("inf")


@dataclass
class QuarterResult:
    """One seed: the three buyers' figures and the on-chain range they came from."""

    seed: int
    weeks: int
    providers: int
    chain: str
    seconds: float
    from_block: int
    to_block: int
    buyers: dict[str, str]
    policies: dict[str, PolicyResult]
    demand: list[int]
    placed: list[Placed] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """Plain figures for JSON."""
        return {
            "seed": self.seed,
            "weeks": self.weeks,
            "providers": self.providers,
            "seconds": self.seconds,
            "blocks": [self.from_block, self.to_block],
            "policies": {
                name: {
                    **asdict(p),
                    "cost_per_hour": p.cost_per_hour,
                    "cost_per_useful_hour": p.cost_per_useful_hour,
                }
                for name, p in self.policies.items()
            },
        }


# -- the providers and the weeks ---------------------------------------------------------------------------


def _make_providers(
    cfg: QuarterConfig, rng: random.Random, accounts: Sequence[LocalAccount]
) -> list[Provider]:
    providers = []
    for i, account in enumerate(accounts):
        quality = rng.uniform(0.05, 0.95)
        # cheaper providers tend to be less reliable (the trade-off the assistant has to price)
        cost = REF * (0.55 + 0.35 * quality) * math.exp(rng.gauss(0.0, 0.08))
        big = i % 6 == 0  # every sixth provider can serve a whole week on its own
        capacity = int(cfg.demand * (rng.uniform(1.3, 1.6) if big else rng.uniform(0.15, 0.45)))
        providers.append(
            Provider(
                index=i,
                account=account,
                cost=cost,
                markup=rng.uniform(0.15, 0.45),
                capacity=capacity,
                quality=quality,
                tactic=rng.choice(("boulware", "linear", "conceder")),
            )
        )
    # some providers decay (or recover) sharply in a week of the quarter: ratings have to keep up
    for p in rng.sample(providers, max(1, len(providers) // 5)):
        p.shock_week = rng.randrange(1, max(2, cfg.weeks))
        p.shock = -0.4 if p.quality > 0.5 else 0.3
    return providers


def _outcome(p: Provider, rng: random.Random) -> Outcome:
    fail, short, late = p.odds()
    u = rng.random()
    if u < fail:
        return Outcome("fail")
    if u < fail + short:
        return Outcome("short", fraction=round(rng.uniform(0.3, 0.8), 2))
    if u < fail + short + late:
        return Outcome("late", late_hours=rng.randint(2, 40))
    return Outcome("ontime")


# -- the agent's choice -------------------------------------------------------------------------------------


@dataclass
class Belief:
    """The assistant's record of one provider: Beta counts of kept promises and of delivered share."""

    kept: float = 1.0
    missed: float = 1.0
    delivered: float = 2.0
    undelivered: float = 0.5


ONTIME_SCORE = 90  # a rating at or above this reads as "delivered in full by the promise"


@dataclass(frozen=True)
class RatingEvidence:
    """Other buyers' on-chain ratings of one provider, as the assistant reads them (its own ratings are
    left out: its own record already holds those deals)."""

    count: int
    ontime_share: float  # value-weighted share of ratings >= ONTIME_SCORE
    score: float  # value-weighted mean score, 0..100

    @classmethod
    def of(cls, ratings: Sequence[Rating]) -> RatingEvidence | None:
        """The evidence in ``ratings`` (None without any weight)."""
        weight = sum(r.weight for r in ratings)
        if not ratings or weight <= 0:
            return None
        ontime = sum(r.weight for r in ratings if r.score >= ONTIME_SCORE) / weight
        return cls(len(ratings), ontime, sum(r.weight * r.score for r in ratings) / weight)


def estimate_provider(
    b: Belief, evidence: RatingEvidence | None, rng: random.Random, sample: bool, cap: float = 4.0
) -> tuple[float, float]:
    """(P(promise kept), expected delivered share): Beta posteriors of the assistant's own record plus the
    other buyers' ratings, each rating one observation (on time when scored >= ONTIME_SCORE) up to ``cap``
    observations in all (value-weighted shares: a Sybil's many cheap ratings weigh little and count at
    most ``cap``); sampled from the posterior when ``sample`` (exploration), else its mean."""
    kept, missed = b.kept, b.missed
    dlv, und = b.delivered, b.undelivered
    if evidence is not None:
        n, r, d = min(float(evidence.count), cap), evidence.ontime_share, evidence.score / 100.0
        kept, missed = kept + n * r, missed + n * (1 - r)
        dlv, und = dlv + n * d, und + n * (1 - d) * 0.5
    if sample:
        return rng.betavariate(kept, missed), rng.betavariate(dlv, und)
    return kept / (kept + missed), dlv / (dlv + und)


@dataclass(frozen=True)
class Candidate:
    """A provider as the assistant sees it when it designs an auction: its negotiated quote and posted
    price (wei per GPU-hour) and its risk factor (:meth:`_Quarter._risk`: quote x factor = expected cost
    per delivered on-time GPU-hour)."""

    quote: int
    posted: int
    risk: float


def invitation_size(candidates: Sequence[Candidate], invite: int, discount: float, ceiling: int) -> int:
    """How many of ``candidates`` (best first) to invite to a price-only auction: the k in 2..``invite``
    whose predicted outcome has the lowest expected cost per delivered on-time GPU-hour, or 0 when none
    beats buying from the first candidate at its quote. Predicted outcome of inviting the first k: the
    lowest quote wins at ``discount`` x the runner-up's quote (capped by the budget, the lowest posted
    price among them, and the mandate's ``ceiling``), at the winner's risk."""
    if not candidates:
        return 0
    best_cost, best_k = candidates[0].quote * candidates[0].risk, 0
    for k in range(2, min(invite, len(candidates)) + 1):
        by_quote = sorted(candidates[:k], key=lambda c: c.quote)
        budget = min(ceiling, *(c.posted for c in candidates[:k]))
        cost = min(budget, by_quote[1].quote * discount) * by_quote[0].risk
        if cost < best_cost:
            best_cost, best_k = cost, k
    return best_k


def _negotiated_price(p: Provider, buyer_limit: int, rng: random.Random) -> int | None:
    """Alternating offers on the unit price (delivery and bond are fixed by the escrow terms here)."""
    if buyer_limit <= int(REF * 0.4):
        return None
    buyer_prefs = Preferences(
        price=IssueRange(worst=buyer_limit, best=int(REF * 0.4)),
        delivery=IssueRange(worst=DEADLINE, best=PROMISE),
        bond=IssueRange(worst=0, best=1),
        weights=Weights(1.0, 0.0, 0.0),
    )
    seller_prefs = Preferences(
        price=IssueRange(worst=p.reserve, best=p.posted),
        delivery=IssueRange(worst=PROMISE, best=DEADLINE),
        bond=IssueRange(worst=1, best=0),
        weights=Weights(1.0, 0.0, 0.0),
    )
    tactics = {"boulware": boulware(), "linear": linear(), "conceder": conceder()}
    result = negotiate(
        Negotiator(Role.BUYER, buyer_prefs, boulware(0.3)),
        Negotiator(Role.SELLER, seller_prefs, tactics[p.tactic]),
        max_rounds=16,
        rng=rng,
    )
    return None if result.agreement is None else int(result.agreement.price)


# -- the run ------------------------------------------------------------------------------------------------


class _Quarter:
    def __init__(self, suite: Suite, cfg: QuarterConfig, funder: LocalAccount | None = None):
        self.suite = suite
        self.cfg = cfg
        self.chain = suite.chain
        funder = funder or self.chain.accounts[0]
        self.rng = random.Random(cfg.seed)  # the world: providers, demand, outcomes, drift
        self.agent_rng = random.Random(cfg.seed * 7_919 + 1)  # the assistant's own draws (keeps pairing)
        self.rematch_rng = random.Random(cfg.seed * 104_729 + 3)  # outcomes of its replacement deals
        demand_total = cfg.demand * cfg.weeks
        budget = int(cfg.budget_factor * demand_total * REF)
        fund = budget + 10**18
        self.buyers = {name: self.chain.new_account(fund, funder=funder) for name in POLICIES}
        self.arbiter = self.chain.new_account(10**17, funder=funder)
        self.customer = self.chain.new_account(10**18, funder=funder)
        accounts = [self.chain.new_account(10**17, funder=funder) for _ in range(cfg.providers)]
        self.providers = _make_providers(cfg, self.rng, accounts)
        self.escrow = EscrowClient.from_suite(suite)
        self.reputation = ReputationClient.from_suite(suite)
        self.escrows = {name: self.escrow.as_(a) for name, a in self.buyers.items()}
        self.seller_escrow = {p.index: self.escrow.as_(p.account) for p in self.providers}
        self.arbiter_escrow = self.escrow.as_(self.arbiter)
        self.rater = self.reputation.as_(self.buyers["agent"])
        self.auctions = AuctionClient.from_suite(suite, self.buyers["agent"])
        self.bidders = {p.index: self.auctions.as_(p.account) for p in self.providers}
        self.auction_count = self.auction_sales = 0
        self.discount = cfg.auction_discount  # the assistant's estimate of auction price / runner-up quote
        resource = resource_id(GPU_HOUR)
        self.resource = resource
        self.guard = MandateGuard(
            Mandate(
                budget={ETH: budget},
                max_per_deal={ETH: int(cfg.demand * cfg.max_share * 1.6 * REF)},
                price_bands={resource: PriceBand(REF, max_premium_bps=4_000)},
            )
        )
        self.beliefs = {p.index: Belief() for p in self.providers}
        self.refusals = {name: 0 for name in POLICIES}
        self.placed: list[Placed] = []
        self.demand: list[int] = []
        self.single: Provider | None = None
        self.week_ranking: list[tuple[Provider, int]] = []  # this week's ranked quotes ...
        self.week_used: dict[int, int] = {}  # ... the agent's hours per provider this week ...
        self.week_risk: dict[int, float] = {}  # ... and the risk factors behind the ranking

    # -- terms and deals ------------------------------------------------------------------------------

    def _open(
        self, policy: str, week: int, p: Provider, hours: int, unit: int, outcome: Outcome, source: str
    ) -> bool:
        amount = unit * hours
        start = self.week_start
        if policy == "agent":
            try:
                self.guard.authorise(amount, ETH, resource=self.resource, unit_price=unit)
            except MandateViolation:
                self.refusals[policy] += 1
                return False
        client = self.escrows[policy]
        deal = client.create(
            p.account.address,
            amount,
            deliver_by=start + DEADLINE,
            promised_by=start + PROMISE,
            review_window=REVIEW,
            ruling_window=RULING,
            arbiter=self.arbiter.address,
            penalty_bps_per_hour=self.cfg.penalty_bps_per_hour,
            penalty_cap_bps=self.cfg.penalty_cap_bps,
            terms_hash=content_hash(f"{GPU_HOUR} x{hours} week {week}".encode()),
        )
        self.placed.append(Placed(policy, week, p.index, hours, unit, p.posted, deal, outcome, source))
        return True

    # -- policies -----------------------------------------------------------------------------------

    def _ratings(self) -> dict[int, RatingEvidence | None]:
        """Every provider's ratings by other buyers, from the registry's events."""
        mine = self.buyers["agent"].address
        by: dict[str, list[Rating]] = {}
        for r in self.reputation.ratings():
            if r.rater != mine:
                by.setdefault(r.ratee, []).append(r)
        return {p.index: RatingEvidence.of(by.get(p.account.address, [])) for p in self.providers}

    def _risk(self, ratings: dict[int, RatingEvidence | None]) -> dict[int, float]:
        """Per provider, the factor that turns a unit price into the expected price of a useful GPU-hour:
        over the expected delivered share, with the risk premium on a missed promise on top. Estimates are
        posterior means of the assistant's own record plus the on-chain rating; unrated providers with a
        thin record are sampled from their posterior, so a newcomer gets a trial now and then."""
        out = {}
        for p in self.providers:
            b = self.beliefs[p.index]
            thin = b.kept + b.missed < 4 and ratings[p.index] is None
            kept, share = estimate_provider(
                b, ratings[p.index], self.agent_rng, sample=thin, cap=self.cfg.rating_cap
            )
            out[p.index] = (1 + self.cfg.risk_premium * (1 - kept)) / max(share, 0.05)
        return out

    def _agent_ranking(self, risk: dict[int, float]) -> list[tuple[Provider, int]]:
        """Request for quotes: negotiate the unit price with every provider (off chain, alternating
        offers; a provider that will not come down to the assistant's limit drops out), then rank by the
        risk-adjusted price (:meth:`_risk`)."""
        ceiling = self.guard.mandate.price_bands[self.resource].ceiling
        scored = []
        for p in self.providers:
            price = _negotiated_price(p, min(p.posted, ceiling), self.agent_rng)
            if price is not None:
                scored.append((price * risk[p.index], p.index, p, price))
        scored.sort(key=lambda x: (x[0], x[1]))
        return [(p, price) for _, _, p, price in scored]

    def _auction(
        self,
        w: int,
        hours: int,
        source: str,
        outcome_of: Callable[[Provider], Outcome],
        skip: Set[int] = frozenset(),
    ) -> bool:
        """One lot of ``hours`` through the ProcurementAuction contract (open reverse auction, price only):
        the assistant invites the providers :meth:`_invitees` picks from the week's ranking (minus
        ``skip``), locks a budget of the lowest posted price among them, and the lowest bid wins an
        escrow deal with the quarter's terms (the week's promise, deadline, late penalty, arbiter).
        Returns whether it sold."""
        cfg = self.cfg
        ranking = [(p, q) for p, q in self.week_ranking if p.index not in skip]
        used = self.week_used
        invited = self._invitees(ranking, used, hours, self.week_risk)
        if not invited:
            return False  # negotiation is expected to do better than any auction the agent could hold
        ceiling = self.guard.mandate.price_bands[self.resource].ceiling
        unit_budget = min(ceiling, *(p.posted for p in invited))
        budget = unit_budget * hours
        try:
            self.guard.authorise(budget, ETH, resource=self.resource, unit_price=unit_budget)
        except MandateViolation:
            self.refusals["agent"] += 1
            return False
        terms = self.auctions.template(
            DEADLINE - PROMISE,  # deliverBy = promisedBy + this
            arbiter=self.arbiter.address,
            review_window=REVIEW,
            ruling_window=RULING,
            penalty_bps_per_hour=cfg.penalty_bps_per_hour,
            penalty_cap_bps=cfg.penalty_cap_bps,
            terms_hash=content_hash(f"{GPU_HOUR} x{hours} week {w} auction".encode()),
        )
        bid_end = self.chain.now() + AUCTION_WINDOW
        a = self.auctions.create_procurement(
            terms, budget=budget, bid_end=bid_end, price_weight=1, time_weight=0, max_delivery=PROMISE
        )
        self.auction_count += 1
        # promised time = settlement + offered delivery: every provider offers the week's promise
        delivery = self.week_start + PROMISE - bid_end - 1
        a = self._bid(a, invited, hours, budget, delivery)
        self.chain.travel_to(max(self.chain.now() + 1, bid_end + 1))
        a = self.auctions.settle(a)
        sold = a.deal_id != 0
        self.guard.refund(budget - (a.price if sold else 0))
        if not sold:
            return False
        self.auction_sales += 1
        ids = {p.index for p in invited}
        quotes = sorted(q for p, q in ranking if p.index in ids)
        m = cfg.discount_memory
        self.discount = m * self.discount + (1 - m) * min(1.0, a.price / hours / quotes[1])
        winner = next(p for p in invited if p.account.address == a.winner)
        used[winner.index] = used.get(winner.index, 0) + hours
        deal = self.escrows["agent"].deal(a.deal_id)
        unit = a.price // hours
        outcome = outcome_of(winner)
        self.placed.append(
            Placed("agent", w, winner.index, hours, unit, winner.posted, deal, outcome, source, auction=True)
        )
        return True

    def _invitees(
        self,
        ranking: Sequence[tuple[Provider, int]],
        used: dict[int, int],
        hours: int,
        risk: dict[int, float],
    ) -> list[Provider]:
        """Whom to invite to a price-only auction, knowing the contract picks the lowest bid. A price-only
        auction among the best-ranked providers is won by the cheapest of them, which in this market
        tends to be the least reliable; so the assistant predicts each candidate invitation's outcome from
        what it knows (the quotes it just negotiated stand for each provider's floor: the lowest quote
        wins at about the second-lowest one, capped by the budget) and scores it by the predicted price
        times the winner's risk factor (:meth:`_risk`), i.e. by the expected cost per delivered on-time
        GPU-hour. Bids go below negotiated quotes: the predicted price is the runner-up's quote times
        the discount the assistant has seen in its own auctions (a prior until the first sale).
        Candidates are the first k of the ranking that can serve the lot, k = 2..``invite``; the best
        wins if it beats buying from the top of the ranking at its negotiated quote (else no auction: an
        empty list). ``invite_rule="top"`` invites the first ``invite`` (price-only, the old rule)."""
        able = [(p, q) for p, q in ranking if p.capacity - used.get(p.index, 0) >= hours]
        if len(able) < 2:
            return []  # no competition: negotiation does better than a one-bidder auction
        if self.cfg.invite_rule == "top":
            return [p for p, _ in able[: self.cfg.invite]]
        ceiling = self.guard.mandate.price_bands[self.resource].ceiling
        candidates = [Candidate(q, p.posted, risk[p.index]) for p, q in able]
        k = invitation_size(candidates, self.cfg.invite, self.discount, ceiling)
        return [p for p, _ in able[:k]]

    def _bid(
        self, a: Auction, invited: Sequence[Provider], hours: int, budget: int, delivery: int
    ) -> Auction:
        """The providers' side of an open reverse auction, with proxy bidding: each would undercut the
        standing bid down to its own floor (reserve x hours), so the lowest-floor provider wins at just
        under the second-lowest floor (the budget when it is alone). Bidding the floors in descending
        order, the winner last, reaches that outcome in one transaction per bidder."""
        floors = sorted(
            ((p.reserve * hours, p) for p in invited if p.reserve * hours <= budget),
            key=lambda x: (-x[0], x[1].index),
        )
        for i, (floor, p) in enumerate(floors):
            if i == len(floors) - 1:  # the winner: just under the runner-up, never under its own floor
                runner_up = floors[i - 1][0] if i else budget + 1
                price = max(floor, min(budget, runner_up - max(1, runner_up // 200)))
            else:
                price = floor
            if a.leader != ZERO_ADDRESS and price >= a.leading_amount:
                continue  # cannot beat the standing bid: this provider drops out
            a = self.bidders[p.index].offer(a, price, delivery)
        return a

    def _agent_buy(
        self, w: int, demand: int, ratings: dict[int, RatingEvidence | None], outcomes: dict[int, Outcome]
    ) -> None:
        """Auctions first (``auction_lots`` lots of ``lot_share`` of the demand), then negotiation fills
        the rest down the ranking (capacity-bound, at most ``max_share`` of the demand per provider)."""
        cfg = self.cfg
        self.week_risk = self._risk(ratings)
        self.week_ranking = self._agent_ranking(self.week_risk)
        self.week_used = {}
        remaining = demand
        for _ in range(cfg.auction_lots):
            hours = min(remaining, int(demand * cfg.lot_share))
            if hours > 0 and self._auction(w, hours, "auction", lambda p: outcomes[p.index]):
                remaining -= hours
        self._fill(w, remaining, demand, "negotiated", lambda p: outcomes[p.index])

    def _rematch(self, w: int, demand: int) -> None:
        """When the first deliveries are due (a day in), re-buy ``rematch`` x the week's undelivered demand
        down the week's ranking (capacity and share caps as before), skipping the providers whose deals
        this week have not arrived in full. A replacement is an escrow deal with the week's promise and
        deadline; what its provider does with it is drawn afresh from that provider's odds (a separate
        stream, so the baselines' world is unchanged), not copied from the provider's week."""
        mine = [x for x in self.placed if x.policy == "agent" and x.week == w]
        behind = {x.provider for x in mine if x.delivered_hours < x.hours}
        remaining = int(self.cfg.rematch * (demand - sum(x.delivered_hours for x in mine)))

        def fresh(p: Provider) -> Outcome:
            return _outcome(p, self.rematch_rng)

        big = remaining >= self.cfg.lot_share * demand / 3
        if self.cfg.rematch_auction and big and self._auction(w, remaining, "rematch", fresh, skip=behind):
            return
        self._fill(w, remaining, demand, "rematch", fresh, skip=behind)

    def _fill(
        self,
        w: int,
        remaining: int,
        demand: int,
        source: str,
        outcome_of: Callable[[Provider], Outcome],
        skip: Set[int] = frozenset(),
    ) -> None:
        """Buy ``remaining`` hours down the week's ranking at the negotiated quotes: capacity-bound, at most
        ``max_share`` of the week's demand per provider (counting what it already holds this week)."""
        used, cap_share = self.week_used, max(1, int(demand * self.cfg.max_share))
        for p, price in self.week_ranking:
            if remaining <= 0:
                break
            if p.index in skip:
                continue
            hours = min(remaining, p.capacity - used.get(p.index, 0), cap_share - used.get(p.index, 0))
            if hours <= 0:
                continue
            if self._open("agent", w, p, hours, price, outcome_of(p), source):
                used[p.index] = used.get(p.index, 0) + hours
                remaining -= hours

    def _cheapest_orders(self, demand: int) -> list[tuple[Provider, int]]:
        remaining = demand
        orders = []
        for p in sorted(self.providers, key=lambda q: (q.posted, q.index)):
            if remaining <= 0:
                break
            hours = min(remaining, p.capacity)
            orders.append((p, hours))
            remaining -= hours
        return orders

    # -- providers' side -----------------------------------------------------------------------------

    def _prior_history(self) -> None:
        """``prior_deals`` earlier deals per provider with another customer, each rated by how it went (a
        failed one is refunded and cannot be rated)."""
        client = self.escrow.as_(self.customer)
        rater = self.reputation.as_(self.customer)
        now = self.chain.now()
        deals = []
        for p in [p for p in self.providers for _ in range(self.cfg.prior_deals)]:
            outcome = _outcome(p, self.rng)
            if outcome.kind == "fail":
                continue
            deal = client.create(p.account.address, REF * 10, deliver_by=now + DEADLINE, review_window=REVIEW)
            self.seller_escrow[p.index].submit(deal, content_hash(b"prior"))
            deals.append((deal, outcome))
        for deal, outcome in deals:
            deal = client.accept(deal)
            score = {"ontime": 95, "late": 60, "short": 25}[outcome.kind]
            rater.rate(deal, score, tag=GPU_HOUR)

    # -- one week -----------------------------------------------------------------------------------

    def week(self, w: int) -> None:
        cfg, rng = self.cfg, self.rng
        self.week_start = self.chain.now()
        demand = int(cfg.demand * (1 + 0.2 * math.sin(2 * math.pi * w / 13)) * rng.uniform(0.9, 1.1))
        self.demand.append(demand)
        outcomes = {p.index: _outcome(p, rng) for p in self.providers}
        if self.single is None:
            able = [p for p in self.providers if p.capacity >= int(cfg.demand * 1.2)] or self.providers
            self.single = min(able, key=lambda q: (q.posted, q.index))

        # negotiation happens off chain; every price it reaches is funded in escrow
        self._agent_buy(w, demand, self._ratings(), outcomes)
        s = self.single
        self._open("single", w, s, min(demand, s.capacity), s.posted, outcomes[s.index], "posted")
        for p, hours in self._cheapest_orders(demand):
            self._open("cheapest", w, p, hours, p.posted, outcomes[p.index], "posted")

        # deliveries: on time after a day; late ones in order of lateness; reviews right after each wave.
        # When the first wave is in, the assistant re-buys what did not arrive (its replacements are due
        # half a day later, before the promise)
        self._deliveries([x for x in self.placed if x.week == w], until=DAY)
        if cfg.rematch > 0:
            self._rematch(w, demand)
        week_deals = [x for x in self.placed if x.week == w]
        self._deliveries(week_deals, after=DAY)
        last_deadline = max(x.deal.terms.deliver_by for x in week_deals)
        self.chain.travel_to(max(self.chain.now() + 1, last_deadline + 1))
        for x in week_deals:
            if x.outcome.kind == "fail":
                x.deal = self.escrows[x.policy].refund(x.deal)
                x.state = x.deal.state.name
                if x.policy == "agent":
                    self.guard.refund(x.deal.terms.amount)
        self._learn_and_rate(week_deals)
        for p in self.providers:
            p.drift(rng, w + 1)
        self.chain.travel_to(max(self.chain.now() + 1, self.week_start + WEEK))

    def _deliveries(self, deals: list[Placed], *, until: int = WEEK, after: int = -1) -> None:
        """Deliver and review the deals whose delivery falls at offsets in (after, until] of the week."""
        waves: dict[int, list[Placed]] = {}
        for x in deals:
            on_time = REMATCH_LEAD + DAY if x.source == "rematch" else DAY
            if x.outcome.kind in ("ontime", "short"):
                offset = on_time
            elif x.outcome.kind == "late":
                offset = PROMISE + x.outcome.late_hours * HOUR
            else:
                continue  # never delivered: refunded after the deadline
            if after < offset <= until:
                waves.setdefault(offset, []).append(x)
        for offset in sorted(waves):
            self.chain.travel_to(max(self.chain.now() + 1, self.week_start + offset))
            for x in waves[offset]:
                delivered = x.hours * x.outcome.fraction
                x.deal = self.seller_escrow[x.provider].submit(
                    x.deal, content_hash(f"{delivered:.2f} GPU-hours of deal {x.deal.id}".encode())
                )
                x.delivered_hours = delivered
                x.ontime_hours = delivered if x.outcome.kind != "late" else 0.0
            for x in waves[offset]:
                self._review(x)

    def _review(self, x: Placed) -> None:
        client = self.escrows[x.policy]
        if x.policy == "agent" and x.outcome.kind == "short":
            # the agent measured the hours it got: it disputes, the arbiter pays the delivered share
            x.deal = client.dispute(x.deal)
            x.deal = self.arbiter_escrow.resolve(x.deal, int(BPS * x.outcome.fraction))
        else:
            x.deal = client.accept(x.deal)
        x.state = x.deal.state.name
        if x.policy == "agent" and x.deal.settlement is not None:
            self.guard.refund(x.deal.settlement.to_buyer)

    def _learn_and_rate(self, week_deals: list[Placed]) -> None:
        m = self.cfg.memory
        for b in self.beliefs.values():  # forget towards the prior: last month counts more than last quarter
            b.kept, b.missed = 1 + m * (b.kept - 1), 1 + m * (b.missed - 1)
            b.delivered, b.undelivered = 2 + m * (b.delivered - 2), 0.5 + m * (b.undelivered - 0.5)
        for x in week_deals:
            if x.policy != "agent":
                continue
            b = self.beliefs[x.provider]
            kept = x.outcome.kind == "ontime"
            b.kept += kept
            b.missed += not kept
            b.delivered += x.outcome.fraction if x.outcome.kind != "fail" else 0.0
            b.undelivered += 1 - x.outcome.fraction if x.outcome.kind != "fail" else 1.0
            if x.deal.state in (DealState.ACCEPTED, DealState.RESOLVED):
                score = {"ontime": 95, "late": max(20, 80 - x.outcome.late_hours), "short": 20}[
                    x.outcome.kind
                ]
                self.rater.rate(x.deal, score, tag=GPU_HOUR)
                x.rated = score


def event_totals(
    escrow: EscrowClient, buyers: Sequence[str], from_block: int | None = None
) -> dict[str, BuyerTotals]:
    """Each buyer's figures folded from the escrow's events (``from_block`` on, default the client's)."""
    logs = escrow._logs(from_block=from_block)
    deals = escrow._fold(logs)
    out = {b: BuyerTotals() for b in buyers}
    for d in deals.values():
        t = out.get(d.terms.buyer)
        if t is None:
            continue
        t.deals += 1
        amount = d.terms.amount + d.released  # FundsReleased lowers the stored amount
        t.locked += amount
        s = d.settlement
        if s is None:
            t.open += 1
            continue
        t.spend += amount - s.to_buyer
        if d.state == DealState.REFUNDED:
            t.refunds += s.to_buyer
        elif d.state in (DealState.ACCEPTED, DealState.FINALIZED):
            t.penalties += s.to_buyer
        elif d.state == DealState.RESOLVED:
            t.dispute_returns += s.to_buyer
    return out


def run_quarter(suite: Suite, cfg: QuarterConfig, *, funder: LocalAccount | None = None) -> QuarterResult:
    """Run one quarter (one seed) on ``suite``'s chain: all three buyers, every deal settled on chain."""
    started = time.perf_counter()
    q = _Quarter(suite, cfg, funder)
    start = int(suite.chain.w3.eth.block_number) + 1
    if cfg.prior_ratings:
        q._prior_history()
    for w in range(cfg.weeks):
        q.week(w)
    end = int(suite.chain.w3.eth.block_number)
    policies = {}
    all_totals = event_totals(q.escrow, [a.address for a in q.buyers.values()], start)
    for name in POLICIES:
        mine = [x for x in q.placed if x.policy == name]
        totals = all_totals[q.buyers[name].address]
        if totals.open:
            raise InvalidInput(f"{totals.open} deals of {name} did not settle")  # a bug, never expected
        weekly = []
        miss_weeks = 0
        missed = useful = 0.0
        for w, demand in enumerate(q.demand):
            ws = [x for x in mine if x.week == w]
            ontime = sum(x.ontime_hours for x in ws)
            missed += max(0.0, demand - ontime)
            useful += min(float(demand), ontime)
            miss_weeks += ontime < 0.95 * demand
            delivered = sum(x.delivered_hours for x in ws)
            paid = sum(x.deal.terms.amount + x.deal.released - _to_buyer(x.deal) for x in ws)
            weekly.append(paid / REF / delivered if delivered else float("nan"))
        policies[name] = PolicyResult(
            policy=name,
            demand_hours=sum(q.demand),
            delivered_hours=sum(x.delivered_hours for x in mine),
            ontime_hours=sum(x.ontime_hours for x in mine),
            spend_wei=totals.spend,
            recovered_wei=totals.refunds + totals.penalties + totals.dispute_returns,
            refunds_wei=totals.refunds,
            penalties_wei=totals.penalties,
            dispute_returns_wei=totals.dispute_returns,
            deals=totals.deals,
            sla_missed_deals=sum(x.outcome.kind != "ontime" for x in mine),
            sla_miss_weeks=miss_weeks,
            missed_hours=missed,
            mandate_refusals=q.refusals[name],
            weekly_cost_per_hour=weekly,
            auctions=q.auction_count if name == "agent" else 0,
            auction_sales=q.auction_sales if name == "agent" else 0,
            auction_hours=sum(x.hours for x in mine if x.auction),
            negotiated_hours=sum(x.hours for x in mine if x.source == "negotiated"),
            rematch_hours=sum(x.hours for x in mine if x.source == "rematch"),
            useful_hours=useful,
        )
    return QuarterResult(
        seed=cfg.seed,
        weeks=cfg.weeks,
        providers=cfg.providers,
        chain=suite.chain.kind,
        seconds=time.perf_counter() - started,
        from_block=start,
        to_block=end,
        buyers={name: a.address for name, a in q.buyers.items()},
        policies=policies,
        demand=q.demand,
        placed=q.placed,
    )


def _to_buyer(deal: Deal) -> int:
    return 0 if deal.settlement is None else deal.settlement.to_buyer
