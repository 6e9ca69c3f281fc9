"""Deal terms and additive multi-issue utility.

A compute deal is negotiated over three integer issues: ``price`` (smallest asset unit),
``delivery_seconds`` and ``bond`` (collateral the seller posts, smallest asset unit). Each side scores a
deal with an additive utility (Keeney & Raiffa; Faratin, Sierra & Jennings 1998)::

    U(x) = w_price * V_price(x.price) + w_delivery * V_delivery(x.delivery_seconds) + w_bond * V_bond(x.bond)

where every ``V`` maps the issue linearly from the side's *worst acceptable* value (0) to its *best*
value (1). The worst value of an issue is that side's reservation on the issue (a buyer's maximum price,
a seller's minimum price); a term worse than it is unacceptable whatever the other issues are. On top of
that each side has a reservation *utility*: the value of walking away.

Amounts stay integers; utilities and weights are floats in ``[0, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["IssueRange", "Preferences", "Terms", "Weights"]


@dataclass(frozen=True)
class Terms:
    """One point of the negotiation space: plain integers, ready to become an offer's fields."""

    price: int
    delivery_seconds: int
    bond: int


@dataclass(frozen=True)
class IssueRange:
    """A side's scale for one issue: ``worst`` scores 0 (its reservation), ``best`` scores 1.

    ``best`` may be above or below ``worst``; the direction says whether the side wants more or less.
    Values beyond ``best`` are clamped to 1; values beyond ``worst`` are out of range (unacceptable).
    """

    worst: int
    best: int

    def __post_init__(self) -> None:
        if self.worst == self.best:
            raise ValueError("IssueRange needs worst != best")

    @property
    def increasing(self) -> bool:
        """True when the side prefers larger values on this issue."""
        return self.best > self.worst

    def within(self, value: int) -> bool:
        """True when ``value`` is not worse than ``worst``."""
        return value >= self.worst if self.increasing else value <= self.worst

    def score(self, value: int) -> float:
        """Normalised value in ``[0, 1]`` (clamped at both ends)."""
        raw = (value - self.worst) / (self.best - self.worst)
        return min(1.0, max(0.0, raw))

    def value_at(self, score: float) -> int:
        """Integer issue value whose score is at least ``score`` (rounded in this side's favour)."""
        score = min(1.0, max(0.0, score))
        # Exact rational arithmetic: a float product loses the last digits of large amounts (wei), and
        # the rounding in this side's favour must hold exactly.
        exact = self.worst + Fraction(score) * (self.best - self.worst)
        value = math.ceil(exact) if self.increasing else math.floor(exact)
        lo, hi = sorted((self.worst, self.best))
        return min(hi, max(lo, value))


@dataclass(frozen=True)
class Weights:
    """Relative importance of price, delivery time and bond; normalised to sum to 1."""

    price: float = 0.6
    delivery: float = 0.25
    bond: float = 0.15

    def __post_init__(self) -> None:
        values = (self.price, self.delivery, self.bond)
        if any(w < 0 or not math.isfinite(w) for w in values) or sum(values) <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        total = sum(values)
        object.__setattr__(self, "price", self.price / total)
        object.__setattr__(self, "delivery", self.delivery / total)
        object.__setattr__(self, "bond", self.bond / total)

    def as_tuple(self) -> tuple[float, float, float]:
        """``(price, delivery, bond)``."""
        return (self.price, self.delivery, self.bond)


@dataclass(frozen=True)
class Preferences:
    """One side's private preferences: an issue range per issue, weights and a reservation utility."""

    price: IssueRange
    delivery: IssueRange
    bond: IssueRange
    weights: Weights = Weights()
    reservation: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.reservation < 1.0:
            raise ValueError("reservation utility must lie in [0, 1)")

    @property
    def ranges(self) -> tuple[IssueRange, IssueRange, IssueRange]:
        """``(price, delivery, bond)`` ranges."""
        return (self.price, self.delivery, self.bond)

    def scores(self, terms: Terms) -> tuple[float, float, float]:
        """Per-issue normalised scores of ``terms``."""
        return (
            self.price.score(terms.price),
            self.delivery.score(terms.delivery_seconds),
            self.bond.score(terms.bond),
        )

    def utility(self, terms: Terms) -> float:
        """Additive utility of ``terms`` in ``[0, 1]``."""
        return sum(w * s for w, s in zip(self.weights.as_tuple(), self.scores(terms), strict=True))

    def in_range(self, terms: Terms) -> bool:
        """True when no issue is worse than this side's reservation on it."""
        return (
            self.price.within(terms.price)
            and self.delivery.within(terms.delivery_seconds)
            and self.bond.within(terms.bond)
        )

    def acceptable(self, terms: Terms) -> bool:
        """True when ``terms`` respects every issue reservation and beats walking away."""
        return self.in_range(terms) and self.utility(terms) >= self.reservation

    def terms_from_scores(self, scores: tuple[float, float, float]) -> Terms:
        """Integer terms whose per-issue scores are at least ``scores``."""
        return Terms(
            price=self.price.value_at(scores[0]),
            delivery_seconds=self.delivery.value_at(scores[1]),
            bond=self.bond.value_at(scores[2]),
        )

    def ideal(self) -> Terms:
        """The side's best terms (utility 1)."""
        return self.terms_from_scores((1.0, 1.0, 1.0))
