"""Negotiation, bidding and trading strategies: pure Python, seeded, no chain needed.

* :mod:`~agentmarket.strategies.utility` -- :class:`Terms`, issue ranges, additive multi-issue utility.
* :mod:`~agentmarket.strategies.concession` -- Boulware / linear / Conceder and tit-for-tat tactics.
* :mod:`~agentmarket.strategies.bargaining` -- alternating offers: :func:`negotiate` -> :class:`Agreement`.
* :mod:`~agentmarket.strategies.adaptive` -- :class:`AdaptiveBargainer`, a bandit over concession exponents.
* :mod:`~agentmarket.strategies.bidding` -- English, Dutch, sealed first-price, Vickrey, procurement bidders.
* :mod:`~agentmarket.strategies.reputation` -- :class:`ReputationPolicy` adjusting price and bond.
* :mod:`~agentmarket.strategies.traders` -- ZI-C and ZIP continuous-double-auction traders.
* :mod:`~agentmarket.strategies.double_auction` -- a small CDA harness with efficiency and Smith's alpha.
* :mod:`~agentmarket.strategies.scenarios` -- seeded random bargaining preferences.
"""

from agentmarket.strategies.adaptive import (
    DEFAULT_EXPONENTS,
    UCB1,
    AdaptiveBargainer,
    ArmChoice,
    BanditPolicy,
    EpsilonGreedy,
)
from agentmarket.strategies.bargaining import (
    Agreement,
    NegotiationResult,
    Negotiator,
    Role,
    TraceStep,
    negotiate,
    offer_for_target,
)
from agentmarket.strategies.bidding import (
    AuctionKind,
    AuctionView,
    BidAction,
    Bidder,
    CostCurve,
    DutchBidder,
    EnglishBidder,
    FirstPriceBidder,
    ProcurementBidder,
    VickreyBidder,
    first_price_equilibrium_bid,
    min_next_bid,
)
from agentmarket.strategies.concession import (
    ImitationMode,
    Tactic,
    TacticContext,
    TimeDependent,
    TitForTat,
    boulware,
    conceder,
    linear,
)
from agentmarket.strategies.double_auction import (
    ContinuousDoubleAuction,
    Equilibrium,
    MarketResult,
    Trade,
    competitive_equilibrium,
    max_surplus,
    smith_alpha,
)
from agentmarket.strategies.reputation import ReputationPolicy, ReputationTerms, ReputationView
from agentmarket.strategies.scenarios import random_preferences
from agentmarket.strategies.traders import MarketEvent, Side, Trader, ZICTrader, ZIPTrader
from agentmarket.strategies.utility import IssueRange, Preferences, Terms, Weights

__all__ = [
    "DEFAULT_EXPONENTS",
    "UCB1",
    "AdaptiveBargainer",
    "Agreement",
    "ArmChoice",
    "AuctionKind",
    "AuctionView",
    "BanditPolicy",
    "BidAction",
    "Bidder",
    "ContinuousDoubleAuction",
    "CostCurve",
    "DutchBidder",
    "EnglishBidder",
    "EpsilonGreedy",
    "Equilibrium",
    "FirstPriceBidder",
    "ImitationMode",
    "IssueRange",
    "MarketEvent",
    "MarketResult",
    "NegotiationResult",
    "Negotiator",
    "Preferences",
    "ProcurementBidder",
    "ReputationPolicy",
    "ReputationTerms",
    "ReputationView",
    "Role",
    "Side",
    "Tactic",
    "TacticContext",
    "Terms",
    "TimeDependent",
    "TitForTat",
    "TraceStep",
    "Trade",
    "Trader",
    "VickreyBidder",
    "Weights",
    "ZICTrader",
    "ZIPTrader",
    "boulware",
    "competitive_equilibrium",
    "conceder",
    "first_price_equilibrium_bid",
    "linear",
    "max_surplus",
    "min_next_bid",
    "negotiate",
    "offer_for_target",
    "random_preferences",
    "smith_alpha",
]
