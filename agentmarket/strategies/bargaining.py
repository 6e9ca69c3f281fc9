"""Multi-issue bilateral bargaining: alternating offers over price, delivery time and bond.

Protocol (Rubinstein alternating offers with a deadline): the opener proposes at round 0, the other side
at round 1, and so on up to ``max_rounds - 1``. On its turn a side either accepts the offer on the table or
answers with its own. No agreement by the last round means no deal (both get their reservation utility).

A :class:`Negotiator` combines private :class:`~agentmarket.strategies.utility.Preferences`, a concession
:class:`~agentmarket.strategies.concession.Tactic` and two rules:

* **Offer generation (trade-off).** The tactic gives a target utility ``tau``; the negotiator proposes the
  point of its iso-utility surface ``U(x) = tau`` closest to the opponent's last offer (Faratin, Sierra &
  Jennings 2002, similarity-based trade-offs): it keeps the issues it weights most and gives ground on the
  others, e.g. accepts a later delivery for a better price.
* **Acceptance (AC_next).** Accept the opponent's offer when it is worth at least as much as the offer the
  negotiator would make next; at the last round accept anything at or above the reservation.

An :class:`Agreement` carries plain integers, so it can be turned into a signed offer directly.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentmarket.strategies.concession import Tactic, TacticContext
from agentmarket.strategies.utility import Preferences, Terms

__all__ = [
    "Agreement",
    "Move",
    "NegotiationResult",
    "Negotiator",
    "Responder",
    "Role",
    "TraceStep",
    "negotiate",
    "offer_for_target",
]


class Role(str, enum.Enum):
    """Side of a bilateral deal."""

    BUYER = "buyer"
    SELLER = "seller"

    @property
    def other(self) -> Role:
        """The opposite side."""
        return Role.SELLER if self is Role.BUYER else Role.BUYER


@dataclass(frozen=True)
class Agreement:
    """Agreed terms, in the asset's smallest unit and seconds; ``round`` is when it was accepted."""

    price: int
    delivery_seconds: int
    bond: int
    round: int
    proposer: Role

    @property
    def terms(self) -> Terms:
        """The agreed :class:`Terms`."""
        return Terms(self.price, self.delivery_seconds, self.bond)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping (``proposer`` as a string), e.g. to build an offer to sign."""
        return {
            "price": self.price,
            "delivery_seconds": self.delivery_seconds,
            "bond": self.bond,
            "round": self.round,
            "proposer": self.proposer.value,
        }


@dataclass(frozen=True)
class TraceStep:
    """One move: ``action`` is ``"offer"`` or ``"accept"`` (of the opponent's standing offer)."""

    round: int
    actor: Role
    action: str
    terms: Terms
    buyer_utility: float
    seller_utility: float


@dataclass(frozen=True)
class NegotiationResult:
    """Outcome of :func:`negotiate`: the agreement (or ``None``) and every move."""

    agreement: Agreement | None
    trace: tuple[TraceStep, ...]

    def utility_for(self, preferences: Preferences) -> float:
        """Utility of the outcome under ``preferences``: the agreement's, or the reservation if none."""
        if self.agreement is None:
            return preferences.reservation
        return preferences.utility(self.agreement.terms)


@dataclass(frozen=True)
class Move:
    """A :class:`Responder`'s move: ``"offer"`` (with ``terms``), ``"accept"`` the standing offer, or ``"walk"``."""

    action: str
    terms: Terms | None = None

    def __post_init__(self) -> None:
        if self.action not in ("offer", "accept", "walk"):
            raise ValueError(f"unknown move {self.action!r}")
        if self.action == "offer" and self.terms is None:
            raise ValueError("an offer needs terms")


@runtime_checkable
class Responder(Protocol):
    """A side that decides its own moves (offer, accept or walk away) instead of following a tactic.

    :func:`negotiate` calls :meth:`respond` on each of its turns with the standing offer (the opponent's
    last offer, ``None`` on the opening move). Used by learners that model the opponent inside the
    negotiation (:mod:`agentmarket.strategies.opponent`).
    """

    role: Role
    preferences: Preferences

    def respond(self, round: int, max_rounds: int, standing: Terms | None, rng: random.Random) -> Move:
        """This side's move at ``round`` (0-based) of at most ``max_rounds``."""
        ...


@dataclass(frozen=True)
class Negotiator:
    """A negotiating side: preferences, a concession tactic, and offer noise for exploration.

    ``noise`` (in normalised score units, default 0) jitters the anchor of the trade-off so that offers
    explore the iso-utility surface; it draws from the ``rng`` given to :func:`negotiate`.
    """

    role: Role
    preferences: Preferences
    tactic: Tactic
    name: str = ""
    noise: float = 0.0
    deadline: float = (
        1.0  # private deadline (fraction of the horizon) at which the tactic reaches reservation
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.deadline <= 1.0:
            raise ValueError("deadline must lie in (0, 1]")

    def next_target(self, ctx: TacticContext) -> float:
        """Tactic target clamped to ``[reservation, min(1, last_target)]`` (concessions never reverse)."""
        value = self.tactic.target(ctx)
        if ctx.last_target is not None:
            value = min(value, ctx.last_target)
        return max(self.preferences.reservation, min(1.0, value))

    def propose(self, target: float, opponent_offer: Terms | None, rng: random.Random) -> Terms:
        """Offer worth at least ``target`` to this side, as close as possible to ``opponent_offer``."""
        jitter: tuple[float, float, float] | None = None
        if self.noise > 0:
            jitter = (
                rng.uniform(-self.noise, self.noise),
                rng.uniform(-self.noise, self.noise),
                rng.uniform(-self.noise, self.noise),
            )
        return offer_for_target(self.preferences, target, opponent_offer, jitter)


def _project(anchor: Sequence[float], weights: Sequence[float], target: float) -> tuple[float, ...]:
    """Euclidean projection of ``anchor`` onto ``{v in [0,1]^n : w.v = target}``.

    The projection is ``v(lam) = clip(anchor + lam * w, 0, 1)`` for the ``lam`` with ``w.v(lam) = target``;
    ``w.v(lam)`` is piecewise linear and non-decreasing in ``lam``, so ``lam`` is found exactly between
    two consecutive breakpoints (where a coordinate hits 0 or 1).
    """

    def point(lam: float) -> tuple[float, ...]:
        return tuple(min(1.0, max(0.0, a + lam * w)) for a, w in zip(anchor, weights, strict=False))

    def value(lam: float) -> float:
        return sum(w * v for w, v in zip(weights, point(lam), strict=False))

    breaks = sorted(
        {0.0}
        | {-a / w for a, w in zip(anchor, weights, strict=False) if w > 0}
        | {(1.0 - a) / w for a, w in zip(anchor, weights, strict=False) if w > 0}
    )
    b0, v0 = breaks[0], value(breaks[0])
    if target <= v0:
        return point(b0)
    for b1 in breaks[1:]:
        v1 = value(b1)
        if target <= v1:
            lam = b1 if v1 == v0 else b0 + (target - v0) * (b1 - b0) / (v1 - v0)
            return point(lam)
        b0, v0 = b1, v1
    return point(breaks[-1])


def offer_for_target(
    preferences: Preferences,
    target: float,
    opponent_offer: Terms | None = None,
    jitter: tuple[float, float, float] | None = None,
) -> Terms:
    """Integer terms on ``preferences``' iso-utility surface at ``target`` nearest the opponent's offer.

    Works in this side's normalised score space: the opponent's offer (or this side's worst point when
    there is none yet) is projected onto the plane ``w . v = target`` inside the unit cube, so issues
    with a large weight move towards this side's ideal first. Rounding to integers favours this side,
    so the utility of the result is at least ``target`` (up to float rounding).
    """
    target = min(1.0, max(0.0, target))
    if opponent_offer is None:
        anchor: tuple[float, ...] = (0.0, 0.0, 0.0)
    else:
        anchor = preferences.scores(opponent_offer)
    if jitter is not None:
        anchor = tuple(min(1.0, max(0.0, a + j)) for a, j in zip(anchor, jitter, strict=False))
    scores = _project(anchor, preferences.weights.as_tuple(), target)
    return preferences.terms_from_scores((scores[0], scores[1], scores[2]))


@dataclass
class _SideState:
    negotiator: Negotiator | Responder
    last_target: float | None = None
    opponent_utilities: list[float] = field(default_factory=list)


def negotiate(
    buyer: Negotiator | Responder,
    seller: Negotiator | Responder,
    max_rounds: int = 20,
    rng: random.Random | None = None,
    opener: Role = Role.BUYER,
) -> NegotiationResult:
    """Run alternating offers between ``buyer`` and ``seller`` for at most ``max_rounds`` moves.

    Returns the :class:`Agreement` (or ``None``) and the full trace. Deterministic for a given ``rng``
    seed. Every agreement is acceptable to both sides (within each issue reservation and at or above
    each reservation utility). A :class:`Responder` side moves by itself and may walk away (no deal);
    its acceptance of an offer unacceptable to it is refused with ``ValueError``.
    """
    if buyer.role is not Role.BUYER or seller.role is not Role.SELLER:
        raise ValueError("negotiate(buyer, seller): roles do not match")
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    rng = rng if rng is not None else random.Random(0)
    sides: dict[Role, _SideState] = {Role.BUYER: _SideState(buyer), Role.SELLER: _SideState(seller)}
    trace: list[TraceStep] = []
    standing: Terms | None = None

    def step(r: int, actor: Role, action: str, terms: Terms) -> TraceStep:
        return TraceStep(
            r, actor, action, terms, buyer.preferences.utility(terms), seller.preferences.utility(terms)
        )

    for r in range(max_rounds):
        actor = opener if r % 2 == 0 else opener.other
        state = sides[actor]
        me = state.negotiator
        if not isinstance(me, Negotiator):
            move = me.respond(r, max_rounds, standing, rng)
            if move.action == "walk":
                trace.append(
                    step(r, actor, "walk", standing if standing is not None else me.preferences.ideal())
                )
                return NegotiationResult(None, tuple(trace))
            if move.action == "accept":
                if standing is None or not me.preferences.acceptable(standing):
                    raise ValueError(f"{actor.value} accepted an offer it cannot accept")
                trace.append(step(r, actor, "accept", standing))
                agreement = Agreement(
                    standing.price, standing.delivery_seconds, standing.bond, r, actor.other
                )
                return NegotiationResult(agreement, tuple(trace))
            assert move.terms is not None
            trace.append(step(r, actor, "offer", move.terms))
            standing = move.terms
            continue
        if standing is not None:
            state.opponent_utilities.append(me.preferences.utility(standing))
        ctx = TacticContext(
            round=r,
            max_rounds=max_rounds,
            reservation=me.preferences.reservation,
            last_target=state.last_target,
            opponent_utilities=tuple(state.opponent_utilities),
            deadline=me.deadline,
        )
        target = me.next_target(ctx)
        offer = me.propose(target, standing, rng)
        if standing is not None and me.preferences.acceptable(standing):
            incoming = me.preferences.utility(standing)
            last_round = r == max_rounds - 1
            if last_round or incoming >= me.preferences.utility(offer):
                trace.append(step(r, actor, "accept", standing))
                agreement = Agreement(
                    standing.price, standing.delivery_seconds, standing.bond, r, actor.other
                )
                return NegotiationResult(agreement, tuple(trace))
        state.last_target = target
        trace.append(step(r, actor, "offer", offer))
        standing = offer
    return NegotiationResult(None, tuple(trace))
