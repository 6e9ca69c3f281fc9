"""Opponent modelling inside one negotiation: a Bayesian estimate of where the other side will end up.

The other side is assumed to concede like a time-dependent tactic (Faratin et al. 1998) with a private
exponent ``e`` and a private deadline ``d`` (fraction of the horizon at which it reaches its reservation).
Seen through *this* side's (unclamped, linear) utility, its offer at round ``r`` is then::

    y_r = a + c * f_r(e, d) + noise,    f_r(e, d) = min(1, (r / (T - 1)) / d) ** (1 / e)

where ``a`` is the value to us of its opening demand and ``b = a + c`` the value to us of its final
(reservation) offer -- its reservation as seen from our side. :class:`ConcessionPosterior` keeps a grid over
``(e, d)`` and, inside each cell, the exact Gaussian posterior of ``(a, c)`` (conjugate Bayesian linear
regression), so every update is a few 2x2 operations per cell and the marginal likelihood of each cell
weighs the grid. It answers: the posterior of ``b``, the predicted value of the opponent's offer at a
future round, and the probability that the opponent can accept an offer worth ``u`` to us.

:class:`BayesianNegotiator` (one negotiation) and :class:`BayesianBargainer` (a learner across
negotiations) use it to decide:

* **acceptance** -- accept the standing offer when it beats the expected value of continuing: the best
  predicted future offer of the opponent (discounted by its uncertainty) or, when the opponent moves
  last, the expected value of our final take-it-or-leave-it offer;
* **the final offer** -- the value ``u`` maximising ``u * P(b >= u) + reservation * (1 - P(b >= u))``;
* **earlier offers** -- hold near our ideal (offers above the opponent's predicted reservation cost us
  nothing: it only accepts them when they beat its own next demand);
* **trade-offs** -- an offer's issue mix gives ground first on the issues the opponent holds on to most
  (its estimated weights, from how far it keeps each issue from our offers) and we weight least;
* **walking away** -- leave a counterparty whose predicted final offer is worth less than the expected
  value of rematching (learned from the previous negotiations), when the market offers another one.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentmarket.strategies.bargaining import Move, NegotiationResult, Role, offer_for_target
from agentmarket.strategies.utility import Preferences, Terms

__all__ = [
    "DEADLINES",
    "EXPONENTS",
    "BayesianBargainer",
    "BayesianNegotiator",
    "ConcessionPosterior",
    "raw_utility",
]

EXPONENTS: tuple[float, ...] = (0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
DEADLINES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_SQRT2 = math.sqrt(2.0)


def raw_utility(preferences: Preferences, terms: Terms) -> float:
    """Additive utility with *unclamped* linear scores: linear in the terms, so concessions stay visible
    even while the opponent's demands lie outside our acceptable range (where the clamped utility is 0)."""
    values = (terms.price, terms.delivery_seconds, terms.bond)
    return sum(
        w * (v - r.worst) / (r.best - r.worst)
        for w, v, r in zip(preferences.weights.as_tuple(), values, preferences.ranges, strict=False)
    )


@functools.lru_cache(maxsize=64)
def _f_tables(
    max_rounds: int, exponents: tuple[float, ...], deadlines: tuple[float, ...]
) -> tuple[tuple[float, ...], ...]:
    """``f_r(e, d)`` for every cell (exponent-major, as :attr:`ConcessionPosterior.cells`) and round."""
    return tuple(
        tuple(min(1.0, r / (max_rounds - 1) / d) ** (1.0 / e) for r in range(max_rounds))
        for e in exponents
        for d in deadlines
    )


def _upper_tail(x: float) -> float:
    """P(Z >= x) for a standard normal Z."""
    return 0.5 * math.erfc(x / _SQRT2)


@dataclass
class _Cell:
    e: float
    d: float
    # sufficient statistics of the regression y = a + c f
    n: float = 0.0
    sf: float = 0.0
    sff: float = 0.0
    sy: float = 0.0
    sfy: float = 0.0
    syy: float = 0.0
    # posterior of (a, c): mean and covariance, and the log marginal likelihood
    mean: tuple[float, float] = (0.0, 0.0)
    cov: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (var a, cov ac, var c)
    log_ml: float = 0.0


class ConcessionPosterior:
    """Grid-over-``(e, d)`` x conjugate-Gaussian-``(a, c)`` posterior of a time-dependent opponent.

    ``prior_a``/``prior_c`` are (mean, sd) of the opening value and of the total concession, in our raw
    utility; ``noise`` is the sd of an offer around the model curve (trade-offs move offers off it).
    """

    def __init__(
        self,
        max_rounds: int,
        exponents: Sequence[float] = EXPONENTS,
        deadlines: Sequence[float] = DEADLINES,
        noise: float = 0.03,
        prior_a: tuple[float, float] = (-0.2, 0.6),
        prior_c: tuple[float, float] = (0.8, 0.6),
    ) -> None:
        if max_rounds < 2:
            raise ValueError("max_rounds must be at least 2")
        if noise <= 0 or prior_a[1] <= 0 or prior_c[1] <= 0:
            raise ValueError("noise and prior sds must be positive")
        self.max_rounds = max_rounds
        self.noise = noise
        self.prior_a = prior_a
        self.prior_c = prior_c
        self.cells = [_Cell(e, d) for e in exponents for d in deadlines]
        self._f = _f_tables(max_rounds, tuple(exponents), tuple(deadlines))
        self.observations: list[tuple[int, float]] = []
        self._weights: list[float] = []
        self._final: list[
            tuple[float, float, float]
        ] = []  # (weight, mean, sd incl. noise) of b per live cell
        self._refresh()

    def _f_exact(self, e: float, d: float, round_: int) -> float:
        t = min(1.0, max(0.0, round_ / (self.max_rounds - 1)) / d)
        return float(t ** (1.0 / e))

    def f(self, e: float, d: float, round_: int) -> float:
        """Fraction of its concession an ``(e, d)`` opponent has made by ``round_``."""
        return self._f_exact(e, d, round_)

    def observe(self, round_: int, value: float) -> None:
        """Record the opponent's offer made at ``round_``, worth ``value`` to us (raw utility)."""
        self.observations.append((round_, value))
        r = min(self.max_rounds - 1, max(0, round_))
        for cell, table in zip(self.cells, self._f, strict=False):
            fv = table[r]
            cell.n += 1.0
            cell.sf += fv
            cell.sff += fv * fv
            cell.sy += value
            cell.sfy += fv * value
            cell.syy += value * value
        self._refresh()

    def _refresh(self) -> None:
        s2 = self.noise**2
        (ma, sa), (mc, sc) = self.prior_a, self.prior_c
        p0a, p0c = 1.0 / sa**2, 1.0 / sc**2
        quad0 = ma * ma * p0a + mc * mc * p0c
        logs = []
        for cell in self.cells:
            # posterior precision PN = P0 + X'X / s2 and h = P0 m0 + X'y / s2
            paa = p0a + cell.n / s2
            pac = cell.sf / s2
            pcc = p0c + cell.sff / s2
            ha = ma * p0a + cell.sy / s2
            hc = mc * p0c + cell.sfy / s2
            det = paa * pcc - pac * pac
            va, vac, vc = pcc / det, -pac / det, paa / det
            a = va * ha + vac * hc
            c = vac * ha + vc * hc
            cell.mean = (a, c)
            cell.cov = (va, vac, vc)
            quad_n = a * ha + c * hc  # mN' PN mN = mN' h
            cell.log_ml = -0.5 * (cell.syy / s2 + quad0 - quad_n) + 0.5 * math.log(p0a * p0c / det)
            logs.append(cell.log_ml)
        top = max(logs)
        raw = [math.exp(v - top) for v in logs]
        total = sum(raw)
        self._weights = [w / total for w in raw]
        self._final = []
        for w, cell in zip(self._weights, self.cells, strict=False):
            if w > 1e-6:
                mu, var = self._value_at(cell, 1.0)
                self._final.append((w, mu, math.sqrt(var + s2)))
        live = sum(w for w, _, _ in self._final)
        self._final = [(w / live, mu, sd) for w, mu, sd in self._final]

    @property
    def weights(self) -> list[float]:
        """Posterior probability of each ``(e, d)`` cell (same order as :attr:`cells`)."""
        return list(self._weights)

    def map_cell(self) -> tuple[float, float]:
        """Most probable ``(e, d)``."""
        i = max(range(len(self.cells)), key=self._weights.__getitem__)
        return (self.cells[i].e, self.cells[i].d)

    def _value_at(self, cell: _Cell, fv: float) -> tuple[float, float]:
        a, c = cell.mean
        va, vac, vc = cell.cov
        return a + c * fv, max(0.0, va + 2 * fv * vac + fv * fv * vc)

    def predict(self, round_: int) -> tuple[float, float]:
        """Mean and sd of the value to us of the opponent's offer at ``round_`` (mixture moments)."""
        m1 = m2 = 0.0
        r = min(self.max_rounds - 1, max(0, round_))
        for w, cell, table in zip(self._weights, self.cells, self._f, strict=False):
            if w < 1e-6:
                continue
            mu, var = self._value_at(cell, table[r])
            m1 += w * mu
            m2 += w * (var + mu * mu)
        return m1, math.sqrt(max(0.0, m2 - m1 * m1))

    def final(self) -> tuple[float, float]:
        """Mean and sd of ``b``: the value to us of the opponent's final (reservation) offer."""
        m1 = sum(w * mu for w, mu, _ in self._final)
        m2 = sum(w * (sd * sd - self.noise**2 + mu * mu) for w, mu, sd in self._final)
        return m1, math.sqrt(max(0.0, m2 - m1 * m1))

    def prob_final_at_least(self, value: float) -> float:
        """``P(b >= value)``: probability that an offer worth ``value`` to us is acceptable to the opponent."""
        return sum(w * _upper_tail((value - mu) / sd) for w, mu, sd in self._final)


@dataclass
class BayesianNegotiator:
    """One negotiation's side driven by a :class:`ConcessionPosterior` of its opponent (a ``Responder``).

    ``outside`` is the value of walking away to rematch (``None``: no other counterparty, walking away
    earns the reservation only). ``caution`` discounts predicted future offers by that many sds; the
    default ``-1`` *raises* them (wait unless the offer beats an optimistic forecast): on the tuning seeds
    (1..4, disjoint from the reported ones) ``+1`` accepted too early and lost 0.05 utility to ``-1``.
    """

    role: Role
    preferences: Preferences
    max_rounds: int
    outside: float | None = None
    caution: float = -1.0
    hold: float = 0.1
    walk_sds: float = 1.0  # Boulware exponent of the early offers (down to the predicted reservation)
    min_observations: int = 3
    posterior: ConcessionPosterior = field(init=False)
    opponent_offers: list[tuple[int, Terms]] = field(default_factory=list)
    own_offers: list[Terms] = field(default_factory=list)
    _ultimatum_cache: tuple[int, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        self.posterior = ConcessionPosterior(self.max_rounds)

    # -- the opponent's weights ---------------------------------------------------------------------------

    def opponent_weights(self) -> tuple[float, float, float]:
        """Estimated importance of each issue to the opponent (sums to 1).

        An issue the opponent values keeps its offers far from ours and close to its opening demand
        (a similarity trade-off projects our offer along its weights): per issue, the mean of
        ``|its offer - our previous offer| / |its opening - our previous offer|`` in our score space.
        """
        if not self.opponent_offers or not self.own_offers:
            return (1 / 3, 1 / 3, 1 / 3)
        opening = self.preferences.scores(self.opponent_offers[0][1])
        kept = [0.0, 0.0, 0.0]
        counted = [0, 0, 0]
        for (_, theirs), ours in zip(self.opponent_offers[1:], self.own_offers, strict=False):
            s_t, s_o = self.preferences.scores(theirs), self.preferences.scores(ours)
            for i in range(3):
                span = abs(opening[i] - s_o[i])
                if span > 1e-6:
                    kept[i] += min(1.0, abs(s_t[i] - s_o[i]) / span)
                    counted[i] += 1
        est = [0.05 + (k / n if n else 0.5) for k, n in zip(kept, counted, strict=False)]
        total = sum(est)
        return (est[0] / total, est[1] / total, est[2] / total)

    def tradeoff_offer(self, target: float, standing: Terms | None) -> Terms:
        """An offer worth ``target`` to us: the similarity trade-off (nearest the opponent's last offer),
        moved towards the concession mix that costs us least per unit the opponent gains."""
        near = offer_for_target(self.preferences, target, standing)
        if len(self.opponent_offers) < 3:
            return near
        w_us = self.preferences.weights.as_tuple()
        w_op = self.opponent_weights()
        # fractional knapsack on our plane w_us . v = target: start at our ideal, give ground first on the
        # issues with the highest opponent-weight / our-weight ratio
        order = sorted(range(3), key=lambda i: w_op[i] / max(w_us[i], 1e-9), reverse=True)
        scores = [1.0, 1.0, 1.0]
        excess = 1.0 - target
        for i in order:
            give = min(1.0, excess / w_us[i]) if w_us[i] > 0 else 1.0
            scores[i] = 1.0 - give
            excess -= give * w_us[i]
            if excess <= 1e-12:
                break
        near_s = self.preferences.scores(near)
        mixed = tuple(0.5 * (a + b) for a, b in zip(scores, near_s, strict=False))
        # the average of two points on the plane is on the plane; round in our favour
        return self.preferences.terms_from_scores((mixed[0], mixed[1], mixed[2]))

    # -- decisions --------------------------------------------------------------------------------------------

    def final_offer_value(self) -> float:
        """Best expected value of a take-it-or-leave-it offer: ``max_u u P(b >= u) + fallback (1 - P)``."""
        return self._ultimatum()[1]

    def _fallback(self) -> float:
        res = self.preferences.reservation
        return res if self.outside is None else max(res, self.outside)

    def _ultimatum(self) -> tuple[float, float]:
        """(value to ask, its expected value), cached per posterior update; a 0.02 grid refined to 0.005."""
        key = len(self.posterior.observations)
        if self._ultimatum_cache is not None and self._ultimatum_cache[0] == key:
            return self._ultimatum_cache[1]
        fallback = self._fallback()
        res = self.preferences.reservation

        def value(u: float) -> float:
            p = self.posterior.prob_final_at_least(u)
            return u * p + fallback * (1 - p)

        coarse = [max(res, k / 50) for k in range(51)]
        best_u = max(coarse, key=value)
        fine = [max(res, min(1.0, best_u + k / 200)) for k in range(-4, 5)]
        best_u = max(fine, key=value)
        answer = (best_u, max(fallback, value(best_u)))
        self._ultimatum_cache = (key, answer)
        return answer

    def _final_offer_target(self) -> float:
        return self._ultimatum()[0]

    def continuation_value(self, round_: int) -> float:
        """Expected value of not accepting at ``round_``: the best cautious forecast of the opponent's later
        offers we can still accept, or our final offer's value when the opponent moves last."""
        last = self.max_rounds - 1
        value = self._fallback()
        for t in range(round_ + 1, last, 2):  # opponent offers we could accept one round later
            mu, sd = self.posterior.predict(t)
            value = max(value, min(1.0, mu - self.caution * sd))
        if (last - round_) % 2 == 1 and round_ + 1 <= last:
            # the opponent has the last move: our offer at last - 1 is an ultimatum
            value = max(value, self.final_offer_value())
        return value

    def respond(self, round: int, max_rounds: int, standing: Terms | None, rng: random.Random) -> Move:
        """Update the posterior with the standing offer, then accept, walk away or counter-offer."""
        if max_rounds != self.max_rounds:
            raise ValueError("max_rounds differs from the one this negotiator was built for")
        prefs = self.preferences
        last = max_rounds - 1
        if standing is not None:
            self.opponent_offers.append((round - 1, standing))
            self.posterior.observe(round - 1, raw_utility(prefs, standing))
        n_obs = len(self.opponent_offers)
        if standing is not None and prefs.acceptable(standing):
            incoming = prefs.utility(standing)
            if round == last:
                if incoming >= self._fallback():
                    return Move("accept")
                return Move("walk")  # rematching is worth more than this last offer
            if n_obs >= 2 and incoming >= self.continuation_value(round):
                return Move("accept")
        if self.outside is not None and n_obs >= self.min_observations:
            mu, sd = self.posterior.final()
            if min(1.0, mu + self.walk_sds * sd) < self.outside:
                return Move("walk")
        if round == last:
            return Move("walk")  # nothing acceptable on the table and no move left
        if round == last - 1 and n_obs >= 1:
            target = self._final_offer_target()
        else:
            mu, sd = self.posterior.final()
            floor = max(prefs.reservation, min(1.0, mu + sd)) if n_obs >= self.min_observations else 1.0
            t = round / last
            target = 1.0 - (1.0 - floor) * t ** (1.0 / self.hold)
        target = max(prefs.reservation, min(1.0, target))
        offer = self.tradeoff_offer(target, standing)
        if round == last - 1 and n_obs >= 1:
            inside = self.within_offered(offer)
            # never propose what we could not accept ourselves (the opponent's most generous value on an
            # issue may still lie beyond our own limit) or what is worth less than walking away
            if prefs.acceptable(inside) and prefs.utility(inside) >= self._fallback():
                offer = inside
        self.own_offers.append(offer)
        return Move("offer", offer)

    def within_offered(self, offer: Terms) -> Terms:
        """``offer`` with every issue pulled back to the best value (for us) the opponent has itself offered.

        The opponent's own offers lie inside its acceptable range on every issue, so an ultimatum inside
        their per-issue hull cannot fail on an issue reservation (a utility-only ultimatum asked prices
        beyond the opponent's limit and lost deals the fixed tactics closed); it can still fail on the
        opponent's reservation utility, which is what ``P(b >= u)`` prices.
        """
        prefs = self.preferences
        caps = [0.0, 0.0, 0.0]
        for _, theirs in self.opponent_offers:
            for i, v in enumerate(prefs.scores(theirs)):
                caps[i] = max(caps[i], v)
        values = (offer.price, offer.delivery_seconds, offer.bond)
        offered = [(t.price, t.delivery_seconds, t.bond) for _, t in self.opponent_offers]
        fields = []
        for i, (rng_, v) in enumerate(zip(prefs.ranges, values, strict=True)):
            if rng_.score(v) <= caps[i]:
                fields.append(v)
            else:  # the opponent's own most generous value on this issue
                seen = [o[i] for o in offered]
                fields.append(max(seen) if rng_.increasing else min(seen))
        return Terms(fields[0], fields[1], fields[2])


class BayesianBargainer:
    """A learner across negotiations: builds a :class:`BayesianNegotiator` per negotiation and learns the
    value of rematching (the mean utility of its past negotiations) to decide when to walk away."""

    def __init__(self, role: Role, caution: float = -1.0, hold: float = 0.1) -> None:
        self.role = role
        self.caution = caution
        self.hold = hold
        self._utilities: list[float] = []

    def rematch_value(self) -> float | None:
        """Mean utility obtained so far (``None`` before any negotiation)."""
        if len(self._utilities) < 5:
            return None
        return sum(self._utilities) / len(self._utilities)

    def negotiator(
        self, preferences: Preferences, max_rounds: int, rematch_discount: float | None = None
    ) -> BayesianNegotiator:
        """A negotiator for one negotiation; ``rematch_discount`` (e.g. 0.9) when another counterparty
        is available at that discount on the surplus, ``None`` when this is the last chance."""
        outside = None
        learned = self.rematch_value()
        if rematch_discount is not None and learned is not None:
            res = preferences.reservation
            outside = res + rematch_discount * max(0.0, learned - res)
        return BayesianNegotiator(
            self.role, preferences, max_rounds, outside=outside, caution=self.caution, hold=self.hold
        )

    def learn(self, preferences: Preferences, result: NegotiationResult) -> None:
        """Record the outcome of a completed negotiation."""
        self._utilities.append(result.utility_for(preferences))
