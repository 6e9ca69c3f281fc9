"""The Calvano et al. stage game and the vectorised Q-learning trainer."""

from __future__ import annotations

import numpy as np
import pytest

from agentmarket.strategies.qlearning import LogitBertrand, QLearningConfig, train_sessions


def test_stage_game_matches_the_paper() -> None:
    g = LogitBertrand()
    # Calvano et al. (2020), baseline: p_N ~ 1.473, p_M ~ 1.925
    assert g.nash_price() == pytest.approx(1.4729, abs=1e-3)
    assert g.monopoly_price() == pytest.approx(1.9250, abs=1e-3)
    # at the Nash price no firm gains by a unilateral deviation on a fine grid
    p = g.nash_price()
    base = g.profits(np.array([p, p]))[0]
    for dev in np.linspace(p - 0.2, p + 0.2, 41):
        assert g.profits(np.array([dev, p]))[0] <= base + 1e-9


def test_trainer_returns_greedy_policies_with_a_limit_cycle() -> None:
    cfg = QLearningConfig(beta=2e-4, stable_checks=10, max_periods=60_000)
    sessions = train_sessions([1, 2], cfg=cfg)
    assert [s.seed for s in sessions] == [1, 2]
    for s in sessions:
        assert s.policy.shape == (2, cfg.m**2)
        assert 1 <= len(s.cycle) <= cfg.m**2
        # the cycle is closed under the greedy policies
        assert s.act(s.cycle[-1]) == s.cycle[0]
        assert -1.5 < s.profit_gain < 1.5


def test_trainer_is_deterministic_per_seed() -> None:
    cfg = QLearningConfig(beta=5e-4, stable_checks=5, max_periods=20_000)
    a = train_sessions([4], cfg=cfg)[0]
    b = train_sessions([4], cfg=cfg)[0]
    assert (a.policy == b.policy).all() and a.cycle == b.cycle
