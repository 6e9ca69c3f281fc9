"""Concession tactics: monotone, bounded, Boulware slower than Conceder, tit-for-tat mirrors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmarket.strategies import (
    ImitationMode,
    TacticContext,
    TimeDependent,
    TitForTat,
    boulware,
    conceder,
    linear,
)

exponents = st.floats(0.02, 50)
reservations = st.floats(0, 0.95)


def ctx(r: int, T: int = 21, res: float = 0.2, **kw: object) -> TacticContext:
    return TacticContext(round=r, max_rounds=T, reservation=res, **kw)  # type: ignore[arg-type]


@given(exponents, reservations, st.integers(2, 60))
def test_time_dependent_is_monotone_from_one_to_reservation(e: float, res: float, T: int) -> None:
    tactic = TimeDependent(e)
    targets = [tactic.target(ctx(r, T, res)) for r in range(T)]
    assert targets[0] == pytest.approx(1.0)
    assert targets[-1] == pytest.approx(res)
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(targets))
    assert all(res - 1e-12 <= t <= 1.0 + 1e-12 for t in targets)


@given(st.floats(0.02, 0.99), st.floats(1.01, 50), reservations, st.integers(1, 19))
def test_boulware_concedes_less_than_linear_less_than_conceder(
    e_b: float, e_c: float, res: float, r: int
) -> None:
    c = ctx(r, 21, res)
    assert TimeDependent(e_b).target(c) >= linear().target(c) - 1e-12
    assert linear().target(c) >= TimeDependent(e_c).target(c) - 1e-12


def test_named_tactics_check_their_exponent() -> None:
    assert boulware().e < 1 < conceder().e and linear().e == 1
    with pytest.raises(ValueError):
        boulware(2.0)
    with pytest.raises(ValueError):
        conceder(0.5)
    with pytest.raises(ValueError):
        TimeDependent(0)


def test_absolute_tit_for_tat_gives_back_the_same_utility() -> None:
    tft = TitForTat(ImitationMode.ABSOLUTE)
    assert tft.target(ctx(0)) == 1.0
    assert tft.target(ctx(2, last_target=1.0, opponent_utilities=(0.1,))) == pytest.approx(0.98)
    # the opponent's offers went from 0.1 to 0.25 for us: concede 0.15
    assert tft.target(ctx(4, last_target=0.9, opponent_utilities=(0.1, 0.25))) == pytest.approx(0.75)
    # the opponent retracted: we do not move
    assert tft.target(ctx(4, last_target=0.9, opponent_utilities=(0.3, 0.2))) == pytest.approx(0.9)


def test_relative_tit_for_tat_gives_back_the_same_fraction() -> None:
    tft = TitForTat(ImitationMode.RELATIVE)
    # opponent closed half of our gap (0.2 -> 0.6 of a 0.8 gap): concede half of (0.9 - 0.2)
    got = tft.target(ctx(4, res=0.2, last_target=0.9, opponent_utilities=(0.2, 0.6)))
    assert got == pytest.approx(0.55)


@given(
    st.sampled_from(list(ImitationMode)),
    reservations,
    st.lists(st.floats(0, 1), min_size=0, max_size=12),
    st.floats(0, 1),
)
def test_tit_for_tat_stays_within_bounds(
    mode: ImitationMode, res: float, opp: list[float], last: float
) -> None:
    tft = TitForTat(mode, deadline=TimeDependent(0.5))
    t = tft.target(ctx(len(opp), 21, res, last_target=max(last, res), opponent_utilities=tuple(opp)))
    assert res - 1e-12 <= t <= max(last, res) + 1e-12
