"""A small simulated market settles every trade on chain and reports sane metrics."""

from __future__ import annotations

import json

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.market import Market
from agentmarket.sim import SimConfig, run
from agentmarket.sim.report import write_json, write_png
from agentmarket.types import DealState


@pytest.mark.parametrize("mechanism", ["offers", "vickrey"])
def test_small_market_settles_everything(chain: Chain, suite: Suite, mechanism: str, tmp_path) -> None:
    market = Market(chain, suite)
    result = run(SimConfig(agents=4, rounds=2, mechanism=mechanism, seed=3, fund=10**18), market=market)
    assert result.trades, "no trade in 2 rounds"
    assert 0 < result.efficiency <= 1
    assert result.solvent and result.all_settled
    escrow = market.escrow
    for t in result.trades:
        assert escrow.status(t.deal_id)[0] == DealState.ACCEPTED
        assert t.cost <= t.price <= t.value  # individually rational
        assert t.gas > 0 and t.txs >= 3
    balance, totals = escrow.solvency()
    assert totals.locked == 0 and balance == totals.accounted
    assert result.gas_per_trade > 0 and result.trades_per_second > 0
    write_json([result], tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["summary"][0]["trades"] == len(result.trades)
    assert write_png([result], tmp_path / "r.png").stat().st_size > 1000


def test_guardrails_refuse_spiked_prices(chain: Chain, suite: Suite) -> None:
    market = Market(chain, suite)
    cfg = SimConfig(agents=4, rounds=3, mechanism="vickrey", seed=3, fund=10**18, shock=True, shock_factor=3.0,
                    shock_rounds=1, guardrails=True, band_bps=1_000, pause_move=0.2)
    result = run(cfg, market=market)
    ceiling = result.reference_equilibrium * 1.1
    assert all(t.price <= ceiling for t in result.trades)
    assert result.refused_by_mandate + result.blocked_by_breaker > 0  # the spike was met by a guardrail
    assert result.solvent and result.all_settled
