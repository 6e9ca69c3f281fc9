"""Concession tactics: how much utility a negotiator still demands at each round.

A tactic maps a :class:`TacticContext` (time, own reservation, own previous target, the opponent's offers
as scored by this side) to a *target utility* in ``[reservation, 1]``. The negotiator then proposes a
point on its iso-utility curve at that level (see :mod:`agentmarket.strategies.bargaining`).

Time-dependent tactics (Faratin, Sierra & Jennings 1998)::

    target(t) = 1 - (1 - reservation) * (kappa + (1 - kappa) * (t / T) ** (1 / e))

* ``e < 1`` -- **Boulware**: holds out and concedes near the deadline (``e = 0.2`` is typical);
* ``e = 1`` -- **Linear**;
* ``e > 1`` -- **Conceder**: gives ground early (``e = 2`` .. ``5``).

This is the convention of the original paper and of the Genius negotiation platform: the curve
``(t/T)^(1/e)`` is convex (slow start) for ``e < 1`` and concave (fast start) for ``e > 1``.

Imitative tactics (tit-for-tat) mirror the opponent's last concession, measured in this side's own
utility: *absolute* gives back the same utility difference, *relative* the same fraction of the
remaining gap.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "ImitationMode",
    "Tactic",
    "TacticContext",
    "TimeDependent",
    "TitForTat",
    "boulware",
    "conceder",
    "linear",
]


@dataclass(frozen=True)
class TacticContext:
    """What a tactic may look at when choosing the next target utility."""

    round: int
    max_rounds: int
    reservation: float
    last_target: float | None = None
    opponent_utilities: tuple[float, ...] = ()
    deadline: float = 1.0  # private deadline as a fraction of the protocol's horizon (1 = the last round)

    @property
    def time(self) -> float:
        """Normalised time ``t / (deadline * T)`` in ``[0, 1]``; reaches 1 at the side's own deadline."""
        if self.max_rounds <= 1:
            return 1.0
        return min(1.0, max(0.0, self.round / (self.max_rounds - 1) / self.deadline))


@runtime_checkable
class Tactic(Protocol):
    """Anything that turns a context into a target utility."""

    def target(self, ctx: TacticContext) -> float:
        """Target utility for the offer about to be made (may be clamped by the negotiator)."""
        ...


@dataclass(frozen=True)
class TimeDependent:
    """Faratin-style time-dependent concession with exponent ``e`` (see module docstring)."""

    e: float
    kappa: float = 0.0

    def __post_init__(self) -> None:
        if self.e <= 0:
            raise ValueError("concession exponent e must be positive")
        if not 0.0 <= self.kappa <= 1.0:
            raise ValueError("kappa must lie in [0, 1]")

    def concession(self, t: float) -> float:
        """Fraction of the ``1 - reservation`` span given up at normalised time ``t``."""
        t = min(1.0, max(0.0, t))
        return self.kappa + (1.0 - self.kappa) * math.pow(t, 1.0 / self.e)

    def target(self, ctx: TacticContext) -> float:
        """``1 - (1 - reservation) * concession(t)``."""
        return 1.0 - (1.0 - ctx.reservation) * self.concession(ctx.time)


def boulware(e: float = 0.2) -> TimeDependent:
    """A tough time-dependent tactic (``e < 1``): concedes mostly near the deadline."""
    if e >= 1:
        raise ValueError("Boulware needs e < 1")
    return TimeDependent(e)


def conceder(e: float = 3.0) -> TimeDependent:
    """A soft time-dependent tactic (``e > 1``): concedes early."""
    if e <= 1:
        raise ValueError("Conceder needs e > 1")
    return TimeDependent(e)


def linear() -> TimeDependent:
    """Concedes the same amount each round (``e = 1``)."""
    return TimeDependent(1.0)


class ImitationMode(str, enum.Enum):
    """How tit-for-tat measures the opponent's concession."""

    ABSOLUTE = "absolute"
    RELATIVE = "relative"


@dataclass(frozen=True)
class TitForTat:
    """Imitate the opponent's last concession (Faratin et al. 1998, imitative tactics).

    ``opening_concession`` is conceded on this side's second offer when the opponent has not yet made
    two offers (so two imitators do not stall). ``deadline`` optionally bounds the target from above by a
    time-dependent tactic, guaranteeing the side reaches its reservation by the last round.
    """

    mode: ImitationMode = ImitationMode.ABSOLUTE
    opening_concession: float = 0.02
    deadline: TimeDependent | None = None

    def target(self, ctx: TacticContext) -> float:
        """Previous target minus the mirrored concession (never above 1, never rising)."""
        if ctx.last_target is None:
            value = 1.0
        else:
            last = ctx.last_target
            opp = ctx.opponent_utilities
            if len(opp) < 2:
                step = self.opening_concession
            else:
                gained = max(0.0, opp[-1] - opp[-2])
                if self.mode is ImitationMode.ABSOLUTE:
                    step = gained
                else:
                    gap = 1.0 - opp[-2]
                    fraction = gained / gap if gap > 0 else 0.0
                    step = fraction * (last - ctx.reservation)
            value = last - step
        if self.deadline is not None:
            value = min(value, self.deadline.target(ctx))
        return max(ctx.reservation, min(1.0, value))
