"""Reputation-aware pricing: better terms for counterparties with a strong settled record.

A :class:`ReputationView` is what the reputation contract exposes about a counterparty: how many settled
deals were rated, the value-weighted mean score (0..100) and the total value of those deals. Few ratings
say little, so the score is shrunk towards a neutral prior (a Bayesian average with ``prior_weight``
pseudo-ratings)::

    shrunk = (prior_weight * prior_score + count * weighted_score) / (prior_weight + count)

A :class:`ReputationPolicy` maps the shrunk score to terms:

* below ``refuse_below``: no deal;
* above ``neutral_score``: up to ``max_discount_bps`` better price and up to ``max_bond_relief_bps``
  less collateral required from the counterparty, linearly up to a perfect 100;
* between ``refuse_below`` and ``neutral_score``: up to ``max_premium_bps`` worse price and up to
  ``max_bond_surcharge_bps`` more collateral, linearly down to the refusal threshold.

"Better price" depends on the side: a seller quoting a reputable buyer asks less; a buyer paying a
reputable seller offers more (reliability is worth paying for). Money stays in integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentmarket.strategies.bargaining import Role

__all__ = ["ReputationPolicy", "ReputationTerms", "ReputationView"]

BPS = 10_000
MAX_SCORE = 100


@dataclass(frozen=True)
class ReputationView:
    """A counterparty's record: rated settled deals, value-weighted score 0..100, total rated value."""

    count: int = 0
    weighted_score: int = 0
    total_value: int = 0

    def __post_init__(self) -> None:
        if self.count < 0 or self.total_value < 0:
            raise ValueError("count and total_value must be non-negative")
        if not 0 <= self.weighted_score <= MAX_SCORE:
            raise ValueError("weighted_score must lie in 0..100")

    @classmethod
    def newcomer(cls) -> ReputationView:
        """No ratings yet."""
        return cls()


@dataclass(frozen=True)
class ReputationTerms:
    """Outcome of a reputation check: whether to deal, and the adjusted price and bond."""

    accept: bool
    price: int
    bond: int
    score: float
    price_adjustment_bps: int
    bond_adjustment_bps: int


@dataclass(frozen=True)
class ReputationPolicy:
    """How much a counterparty's record moves price and bond; see the module docstring."""

    prior_score: float = 60.0
    prior_weight: float = 5.0
    neutral_score: float = 60.0
    refuse_below: float = 35.0
    max_discount_bps: int = 500
    max_premium_bps: int = 1_000
    max_bond_relief_bps: int = 5_000
    max_bond_surcharge_bps: int = 5_000
    min_total_value: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.refuse_below <= self.neutral_score < MAX_SCORE:
            raise ValueError("need 0 <= refuse_below <= neutral_score < 100")
        if self.prior_weight < 0 or not 0 <= self.prior_score <= MAX_SCORE:
            raise ValueError("prior_weight must be >= 0 and prior_score in 0..100")
        if not 0 <= self.max_discount_bps < BPS or not 0 <= self.max_bond_relief_bps <= BPS:
            raise ValueError("discount must be below 100% and bond relief at most 100%")
        if self.max_premium_bps < 0 or self.max_bond_surcharge_bps < 0:
            raise ValueError("premium and surcharge must be non-negative")

    def score(self, view: ReputationView) -> float:
        """Shrunk (Bayesian-average) score in ``[0, 100]``; the prior when there are no ratings.

        Ratings count only when their total value reaches ``min_total_value`` (wash ratings on dust
        deals do not build a record).
        """
        count = view.count if view.total_value >= self.min_total_value else 0
        if count + self.prior_weight == 0:
            return self.prior_score
        return (self.prior_weight * self.prior_score + count * view.weighted_score) / (
            self.prior_weight + count
        )

    def strength(self, view: ReputationView) -> float:
        """Position of the shrunk score in ``[-1, 1]``: -1 at the refusal threshold, 0 neutral, 1 perfect."""
        s = self.score(view)
        if s >= self.neutral_score:
            return (s - self.neutral_score) / (MAX_SCORE - self.neutral_score)
        span = self.neutral_score - self.refuse_below
        return -1.0 if span == 0 else max(-1.0, (s - self.neutral_score) / span)

    def terms(self, view: ReputationView, price: int, bond: int, me: Role) -> ReputationTerms:
        """Adjust ``price`` and the ``bond`` asked from the counterparty; ``me`` is this side's role."""
        if price < 0 or bond < 0:
            raise ValueError("price and bond must be non-negative")
        s = self.score(view)
        if s < self.refuse_below:
            return ReputationTerms(False, price, bond, s, 0, 0)
        k = self.strength(view)
        if k >= 0:
            better_bps = round(k * self.max_discount_bps)
            bond_bps = -round(k * self.max_bond_relief_bps)
        else:
            better_bps = -round(-k * self.max_premium_bps)
            bond_bps = round(-k * self.max_bond_surcharge_bps)
        # better terms for the counterparty: a seller asks less, a buyer offers more
        price_bps = -better_bps if me is Role.SELLER else better_bps
        new_price = price * (BPS + price_bps) // BPS
        new_bond = bond * (BPS + bond_bps) // BPS
        return ReputationTerms(True, new_price, new_bond, s, price_bps, bond_bps)
