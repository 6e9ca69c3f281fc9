"""Adaptive negotiation: a multi-armed bandit over concession exponents that learns from its own deals.

Each negotiation is one pull: the :class:`AdaptiveBargainer` picks a time-dependent exponent ``e`` (an
arm), negotiates with it, and feeds the utility it obtained (reservation when no deal) back as the
reward. Two policies are provided:

* :class:`UCB1` (Auer, Cesa-Bianchi & Fischer 2002): mean + ``c * sqrt(2 ln n / n_arm)``;
* :class:`EpsilonGreedy`: explore uniformly with probability ``epsilon`` (optionally decaying).

With ``per_opponent=True`` it keeps one bandit per counterparty (agents meet the same providers again
and again), so it can hold out against a soft opponent and concede to a tough one; that needs many
deals per counterparty, so the default shares one bandit across all of them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agentmarket.strategies.bargaining import Negotiator, Role
from agentmarket.strategies.concession import TimeDependent
from agentmarket.strategies.utility import Preferences

__all__ = [
    "DEFAULT_EXPONENTS",
    "UCB1",
    "AdaptiveBargainer",
    "ArmChoice",
    "BanditPolicy",
    "EpsilonGreedy",
]

DEFAULT_EXPONENTS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0)


class BanditPolicy(Protocol):
    """A stochastic multi-armed bandit with rewards in ``[0, 1]``."""

    def select(self, rng: random.Random) -> int:
        """Index of the arm to pull next."""
        ...

    def update(self, arm: int, reward: float) -> None:
        """Record ``reward`` for ``arm``."""
        ...


class _Stats:
    def __init__(self, n_arms: int) -> None:
        if n_arms < 1:
            raise ValueError("a bandit needs at least one arm")
        self.counts = [0] * n_arms
        self.sums = [0.0] * n_arms

    @property
    def means(self) -> list[float]:
        """Mean reward per arm (0 for arms never pulled)."""
        return [s / c if c else 0.0 for s, c in zip(self.sums, self.counts, strict=True)]

    def update(self, arm: int, reward: float) -> None:
        """Record ``reward`` for ``arm``."""
        self.counts[arm] += 1
        self.sums[arm] += reward

    def best(self, rng: random.Random, scores: Sequence[float]) -> int:
        top = max(scores)
        return rng.choice([i for i, s in enumerate(scores) if s == top])


class UCB1(_Stats):
    """UCB1: pull every arm once, then the arm maximising ``mean + c * sqrt(2 ln n / n_arm)``."""

    def __init__(self, n_arms: int, c: float = 0.2) -> None:
        super().__init__(n_arms)
        self.c = c

    def select(self, rng: random.Random) -> int:
        """Untried arm first, else the highest upper confidence bound (ties broken by ``rng``)."""
        untried = [i for i, n in enumerate(self.counts) if n == 0]
        if untried:
            return rng.choice(untried)
        total = sum(self.counts)
        scores = [
            m + self.c * math.sqrt(2.0 * math.log(total) / n)
            for m, n in zip(self.means, self.counts, strict=True)
        ]
        return self.best(rng, scores)


class EpsilonGreedy(_Stats):
    """Best mean arm, except a uniformly random arm with probability ``epsilon / (1 + decay * n)``."""

    def __init__(self, n_arms: int, epsilon: float = 0.1, decay: float = 0.0) -> None:
        super().__init__(n_arms)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must lie in [0, 1]")
        self.epsilon = epsilon
        self.decay = decay

    def select(self, rng: random.Random) -> int:
        """Explore or exploit; untried arms count as best."""
        eps = self.epsilon / (1.0 + self.decay * sum(self.counts))
        if rng.random() < eps:
            return rng.randrange(len(self.counts))
        scores = [math.inf if n == 0 else m for m, n in zip(self.means, self.counts, strict=True)]
        return self.best(rng, scores)


@dataclass(frozen=True)
class ArmChoice:
    """The arm picked for one negotiation, with the tactic built from it."""

    arm: int
    exponent: float
    opponent: str | None
    tactic: TimeDependent


class AdaptiveBargainer:
    """Learns which concession exponent pays, overall or per counterparty.

    Usage per negotiation::

        choice = bargainer.choose(rng, opponent="provider-7")
        result = negotiate(bargainer.negotiator(prefs, choice), seller, rng=rng)
        bargainer.learn(choice, result.utility_for(prefs))
    """

    def __init__(
        self,
        role: Role,
        exponents: Sequence[float] = DEFAULT_EXPONENTS,
        policy: Callable[[int], BanditPolicy] = UCB1,
        per_opponent: bool = False,
    ) -> None:
        if not exponents or any(e <= 0 for e in exponents):
            raise ValueError("exponents must be positive")
        self.role = role
        self.exponents = tuple(exponents)
        self._policy = policy
        self.per_opponent = per_opponent
        self._bandits: dict[str | None, BanditPolicy] = {}

    def bandit(self, opponent: str | None = None) -> BanditPolicy:
        """The bandit used against ``opponent`` (a shared one when ``per_opponent`` is off)."""
        key = opponent if self.per_opponent else None
        if key not in self._bandits:
            self._bandits[key] = self._policy(len(self.exponents))
        return self._bandits[key]

    def choose(self, rng: random.Random, opponent: str | None = None) -> ArmChoice:
        """Pick the exponent for the next negotiation."""
        arm = self.bandit(opponent).select(rng)
        e = self.exponents[arm]
        return ArmChoice(arm, e, opponent, TimeDependent(e))

    def negotiator(self, preferences: Preferences, choice: ArmChoice, name: str = "adaptive") -> Negotiator:
        """A :class:`Negotiator` playing ``choice``."""
        return Negotiator(self.role, preferences, choice.tactic, name=name)

    def learn(self, choice: ArmChoice, reward: float) -> None:
        """Feed back the utility obtained with ``choice`` (reward clipped to ``[0, 1]``)."""
        self.bandit(choice.opponent).update(choice.arm, min(1.0, max(0.0, reward)))
