"""A small simulated market settles every trade on chain and reports sane metrics."""

from __future__ import annotations

import json

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.market import Market
from agentmarket.sim import CircuitBreaker, OffChainSim, SimConfig, run
from agentmarket.sim.report import write_json, write_png
from agentmarket.types import DealState


@pytest.mark.parametrize("mechanism", ["offers", "vickrey", "english"])
def test_small_market_settles_everything(chain: Chain, suite: Suite, mechanism: str, tmp_path) -> None:
    market = Market(chain, suite)
    result = run(SimConfig(agents=4, rounds=2, mechanism=mechanism, seed=3, fund=10**18), market=market)
    assert result.trades, "no trade in 2 rounds"
    assert 0 < result.efficiency <= 1
    assert result.solvent and result.all_settled and result.auction_residual == 0
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


def test_auction_trades_come_from_the_auction_contracts(chain: Chain, suite: Suite) -> None:
    """Every vickrey trade is an AuctionSettled on the SealedBidAuction whose deal the escrow holds."""
    from agentmarket.clients.auctions import AuctionClient, AuctionKind

    market = Market(chain, suite)
    result = run(SimConfig(agents=4, rounds=1, mechanism="vickrey", seed=5, fund=10**18), market=market)
    sealed = AuctionClient.from_suite(suite).contracts[AuctionKind.SEALED]
    settled = sealed.events.AuctionSettled().get_logs(from_block=0)
    by_deal = {int(e["args"]["dealId"]): e["args"] for e in settled if int(e["args"]["dealId"])}
    assert result.trades
    for t in result.trades:
        assert t.deal_id in by_deal
        assert int(by_deal[t.deal_id]["price"]) == t.price
        assert by_deal[t.deal_id]["winner"] == t.buyer


def test_guardrails_refuse_spiked_prices(chain: Chain, suite: Suite) -> None:
    market = Market(chain, suite)
    cfg = SimConfig(
        agents=4,
        rounds=3,
        mechanism="vickrey",
        seed=3,
        fund=10**18,
        shock=True,
        shock_factor=3.0,
        shock_rounds=1,
        guardrails=True,
        band_bps=1_000,
        pause_move=0.2,
    )
    result = run(cfg, market=market)
    ceiling = result.reference_equilibrium * 1.1
    assert all(t.price <= ceiling for t in result.trades)
    assert result.refused_by_mandate > 0  # the spike met the mandates' band
    assert result.solvent and result.all_settled


def test_circuit_breaker_watches_round_medians_not_single_trades() -> None:
    breaker = CircuitBreaker(100, 0.25, 3)
    assert not breaker.observe(0, 110)  # a round's median within 25%: trading goes on
    assert not breaker.halted(1)
    assert breaker.observe(1, 160)  # a 50% jump in the round median halts the next round
    assert breaker.halted(2) and not breaker.halted(3)


def test_breaker_does_not_stop_normal_vickrey_trading() -> None:
    """Regression: comparing single trades with a 25% band stopped all Vickrey trading."""
    result = OffChainSim(SimConfig(agents=20, rounds=10, mechanism="vickrey", seed=7, guardrails=True)).run()
    assert result.paused_rounds == 0 and len(result.trades) > 30


def test_offchain_strategy_evaluation_is_deterministic() -> None:
    cfg = SimConfig(agents=10, rounds=5, mechanism="sealed", seed=2)
    a, b = OffChainSim(cfg).run(), OffChainSim(cfg).run()
    assert [t.price for t in a.trades] == [t.price for t in b.trades]
    assert a.adaptive_gain["buyer"] is not None and a.adaptive_gain["provider"] is None
