"""Surveillance on chain: each scenario's suspicious variant is flagged and its control is not, from the
contracts' events alone; the ``agentmarket surveil`` command reads a real node."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentmarket.cli import main
from agentmarket.sim.collusion import run_collusion
from agentmarket.sim.exclusion import run_exclusion
from agentmarket.sim.rotation import run_rotation
from agentmarket.strategies.qlearning import QLearningConfig
from agentmarket.surveillance import Thresholds

# Fast-converging learners for the suite (the scenario script uses the slower, paper-like schedule).
FAST = QLearningConfig(beta=5e-5, stable_checks=30)


def test_rotation_ring_is_flagged_and_competitive_bidding_is_not(chain: Any, suite: Any) -> None:
    a = chain.accounts
    few = Thresholds(min_auctions=6)  # the default asks for 8 auctions; 6 keep the suite quick
    ring = run_rotation(
        suite, a[1], list(a[2:6]), seed=5, ring=True, auctions=6, thresholds=few, arbiter=a[9].address
    )
    honest = run_rotation(
        suite, a[1], list(a[2:6]), seed=5, ring=False, auctions=6, thresholds=few, arbiter=a[9].address
    )
    assert ring.flagged and "bid_rotation" in ring.flags, ring
    assert ring.rotation_regularity == 1.0 and ring.cover_share == 1.0
    assert not honest.flagged, honest
    assert ring.mean_price_over_cost > honest.mean_price_over_cost


def test_collusive_learners_are_flagged_and_best_responders_are_not(chain: Any, suite: Any) -> None:
    a = chain.accounts
    firms, buyers = (a[1], a[2]), list(a[3:8])
    collusive = run_collusion(suite, firms, buyers, [3], collusive=True, periods=3, cfg=FAST)[0]
    competitive = run_collusion(suite, firms, buyers, [3], collusive=False, periods=3)[0]
    assert collusive.profit_gain > 0.5 and collusive.flagged, collusive
    assert competitive.profit_gain < 0.2 and not competitive.flagged, competitive
    assert collusive.trades > 0 and competitive.trades > 0


def test_fast_takers_crowd_out_small_buyers_in_the_continuous_market(suite: Any) -> None:
    run = run_exclusion(suite, seed=2, rounds=3)
    assert run.large_fill_rate == 1.0
    assert run.small_fill_rate < 0.5 * run.large_fill_rate and run.flagged, run


@pytest.mark.anvil
def test_surveil_command_reads_events_from_a_node(
    anvil: Any, anvil_suite: Any, capsys: Any, tmp_path: Any
) -> None:
    from agentmarket.deploy import write_manifest

    a = anvil.accounts
    start = anvil.w3.eth.block_number + 1
    run_rotation(anvil_suite, a[1], list(a[2:6]), seed=1, ring=True, auctions=8, arbiter=a[9].address)
    manifest = tmp_path / "m.json"
    write_manifest(
        manifest,
        {
            "chainId": anvil.chain_id,
            "contracts": {n: {"address": c.address} for n, c in anvil_suite.contracts.items()},
        },
    )
    code = main(
        ["surveil", "--chain", anvil.url, "--manifest", str(manifest), "--from-block", str(start), "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rotation"]["auctions"] == 8
    assert [f["screen"] for f in report["flags"]] == ["bid_rotation"]


def test_the_call_market_removes_the_speed_advantage(suite: Any) -> None:
    run = run_exclusion(suite, seed=2, rounds=2, mechanism="call")
    assert run.small_fill_rate == 1.0 and run.large_fill_rate == 1.0, run
    assert run.efficiency == 1.0 and not run.flagged
