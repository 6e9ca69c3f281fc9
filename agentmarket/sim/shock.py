"""Demand shocks of the simulated market: when, what shape, and who drives them.

A shock is a span of rounds ``[start, start + rounds)``. Its shape sets the exogenous multiplier on
the ordinary buyers' values:

========  ====================================================================================
step      values x ``factor`` for the whole span
ramp      the multiplier climbs linearly from 1 to ``factor`` over the span
cascade   no exogenous multiplier on ordinary buyers: ``entrants`` new buyers arrive with values
          near ``factor`` x the reference price, a fraction ``withdraw`` of the providers leaves, and
          ``momentum`` x buyers are momentum/panic buyers whose values follow the prices they see:
          ``value = base x min(factor, (last price / pre-shock price) ** elasticity)``, updated after
          each of the round's ``substeps`` (time within a round), so the spike builds up in seconds
          of market time through feedback instead of being imposed
========  ====================================================================================

Every shape can add entrants, withdrawal and momentum buyers; only the cascade needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "SHAPES", "Shock"]

SHAPES = ("step", "ramp", "cascade")


@dataclass(frozen=True)
class Shock:
    """What the spike looks like (see the module docstring)."""

    shape: str = "step"
    factor: float = 2.0
    start: int | None = None  # default: rounds // 2
    rounds: int | None = None  # default: max(1, total rounds // 5)
    momentum: float = 0.0  # fraction of buyers whose values follow observed prices
    elasticity: float = 1.5  # momentum: value multiplier = (price / pre-shock price) ** elasticity
    entrants: int = 0  # buyers entering at the start of the span (leaving at its end)
    entrant_units: int = 1  # GPU-hours each entrant orders at once (a multi-unit order)
    withdraw: float = 0.0  # fraction of providers withdrawing supply during the span
    substeps: int = 1  # sub-round steps: momentum values update between them

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shock shape {self.shape!r} (choose from {', '.join(SHAPES)})")
        if self.factor <= 0 or not 0 <= self.momentum <= 1 or not 0 <= self.withdraw < 1:
            raise ValueError("shock needs factor > 0, 0 <= momentum <= 1, 0 <= withdraw < 1")
        if self.substeps < 1 or self.entrants < 0 or self.entrant_units < 1:
            raise ValueError("shock needs substeps >= 1, entrants >= 0 and entrant_units >= 1")

    def span(self, total_rounds: int) -> range:
        start = total_rounds // 2 if self.start is None else self.start
        length = self.rounds or max(1, total_rounds // 5)
        return range(start, min(total_rounds, start + length))

    def multiplier(self, round_: int, total_rounds: int) -> float:
        """Exogenous multiplier on ordinary buyers' values in ``round_``."""
        span = self.span(total_rounds)
        if round_ not in span or self.shape == "cascade":
            return 1.0
        if self.shape == "step":
            return self.factor
        k = round_ - span.start + 1
        return 1.0 + (self.factor - 1.0) * k / len(span)

    def momentum_multiplier(self, last_price: float, preshock_price: float) -> float:
        """A momentum buyer's value multiplier after seeing ``last_price``."""
        if last_price <= preshock_price:
            return 1.0
        return float(min(self.factor, (last_price / preshock_price) ** self.elasticity))


# named scenarios: --scenario NAME
SCENARIOS: dict[str, Shock] = {
    # values rise to x6 in a cascade within one or two rounds: half the buyers chase prices, a few panic
    # buyers enter, a fifth of the supply withdraws; 8 sub-round steps let the feedback run in-round
    # (entrants order one GPU-hour each here; --entrant-units N makes theirs multi-unit orders)
    "spike500": Shock(
        shape="cascade", factor=6.0, momentum=0.6, elasticity=3.0, entrants=3, withdraw=0.3, substeps=8
    ),
}
