"""Seeded generators of bargaining preferences, for tests, benchmarks and the market simulator.

A compute deal around a ``reference_price`` (smallest asset unit): the buyer wants a low price, fast
delivery and a large seller bond; the seller wants the opposite. Reservations are drawn so that a zone
of agreement usually (not always) exists.
"""

from __future__ import annotations

import random

from agentmarket.strategies.bargaining import Role
from agentmarket.strategies.utility import IssueRange, Preferences, Weights

__all__ = ["random_preferences"]

HOUR = 3600


def _weights(rng: random.Random) -> Weights:
    raw = [rng.expovariate(1.0) for _ in range(3)]
    raw[0] += 1.0  # price usually matters most
    return Weights(raw[0], raw[1], raw[2])


def random_preferences(
    role: Role,
    rng: random.Random,
    reference_price: int = 10**18,
    max_reservation: float = 0.2,
) -> Preferences:
    """Random private preferences for ``role`` around ``reference_price``."""
    ref = reference_price
    if role is Role.BUYER:
        price = IssueRange(worst=ref * rng.randint(95, 130) // 100, best=ref * rng.randint(50, 80) // 100)
        delivery = IssueRange(worst=HOUR * rng.randint(6, 24), best=HOUR * rng.randint(0, 1) + 600)
        bond = IssueRange(worst=0, best=ref * rng.randint(30, 60) // 100)
    else:
        price = IssueRange(worst=ref * rng.randint(70, 105) // 100, best=ref * rng.randint(120, 150) // 100)
        delivery = IssueRange(worst=HOUR * rng.randint(0, 2) + 300, best=HOUR * rng.randint(12, 36))
        bond = IssueRange(worst=ref * rng.randint(20, 50) // 100, best=0)
    return Preferences(price, delivery, bond, _weights(rng), rng.uniform(0.0, max_reservation))
