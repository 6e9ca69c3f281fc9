"""A small simulated market settles every trade on chain and reports sane metrics."""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import replace

import pytest

from agentmarket.chain import Chain
from agentmarket.deploy import Suite
from agentmarket.market import Market
from agentmarket.sim import CircuitBreaker, ComputeMarketSim, OffChainSim, SimConfig, Trader, run, run_seeds
from agentmarket.sim.mechanisms import auction_order, call_matches
from agentmarket.sim.report import write_json, write_png
from agentmarket.sim.stats import mean_ci95, t975
from agentmarket.strategies import Role
from agentmarket.types import DealState


@pytest.mark.parametrize("mechanism", ["offers", "vickrey", "english", "call"])
def test_small_market_settles_everything(chain: Chain, suite: Suite, mechanism: str, tmp_path) -> None:
    market = Market(chain, suite)
    result = run(SimConfig(agents=4, rounds=2, mechanism=mechanism, seed=3, fund=10**18), market=market)
    assert result.trades, "no trade in 2 rounds"
    assert 0 < result.efficiency <= 1
    assert result.solvent and result.all_settled and result.auction_residual == 0
    # headline efficiency is recomputed from the escrow's events and agrees with the records
    assert result.events_match and result.efficiency == pytest.approx(result.efficiency_records)
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


def test_call_rounds_clear_on_the_call_market_contract(chain: Chain, suite: Suite) -> None:
    """2 seeds of ``call`` on chain: every trade is a TradeSettled of the CallMarket whose escrow deal was
    accepted, the headline efficiency recomputed from the escrow's events agrees with the records, every
    bid's lock came back, and the allocation (who trades with whom, at what price) is exactly the
    off-chain clearing's on the same seed."""
    from agentmarket.clients.callmarket import CallMarketClient

    market = Market(chain, suite)
    cm = CallMarketClient.from_suite(suite)
    for seed in (3, 4):
        cfg = SimConfig(agents=6, rounds=2, mechanism="call", seed=seed, fund=10**18)
        sim = ComputeMarketSim(market, cfg)
        result = sim.run()
        assert result.trades and result.events_match
        assert result.efficiency == pytest.approx(result.efficiency_records) and 0 < result.efficiency <= 1
        assert result.solvent and result.all_settled and result.auction_residual == 0
        assert sim.calls is not None and len(sim.calls.batches) == cfg.rounds
        settled = {t.deal_id: t for b in sim.calls.batches for t in cm.trades(b) if t.deal_id}
        assert {t.deal_id for t in result.trades} == set(settled)
        for t in result.trades:
            assert (settled[t.deal_id].buyer, settled[t.deal_id].seller) == (t.buyer, t.seller)
            assert settled[t.deal_id].amount == t.price and t.cost <= t.price <= t.value
        index = {a.address: i for i, a in sim.agents.items()}
        onchain = sorted((t.round, index[t.buyer], index[t.seller], t.price) for t in result.trades)
        offchain = OffChainSim(cfg).run()
        assert onchain == sorted(
            (t.round, int(t.buyer, 16), int(t.seller, 16), t.price) for t in offchain.trades
        )
        assert offchain.efficiency == pytest.approx(result.efficiency)


def test_call_clearing_fills_ties_in_order_id_order() -> None:
    """Two bids at the clearing price for one ask: the earlier order (lower id) trades, at the k=1/2
    midpoint of the equilibrium interval."""
    a, b, c, d = (Trader(i, Role.BUYER if i < 2 else Role.SELLER, 0, "fixed") for i in range(4))
    (m,) = call_matches([(a, 100), (b, 100)], [(c, 90)])
    assert (m.buyer, m.seller, m.price) == (a.index, c.index, 100)
    (m,) = call_matches([(b, 100), (a, 100)], [(c, 90)])
    assert (m.buyer, m.seller, m.price) == (b.index, c.index, 100)
    (m,) = call_matches([(a, 120), (b, 80)], [(c, 90), (d, 130)])
    assert (m.buyer, m.seller, m.price) == (a.index, c.index, 105)  # midpoint of [90, 120]
    assert call_matches([(a, 80)], [(c, 90)]) == []


def test_guardrails_cap_quotes_before_matching(chain: Chain, suite: Suite) -> None:
    """The band caps bids inside the strategies: nothing is matched and then refused, every trade is at
    or under the band around its round's moving reference, and everything settles."""
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
    )
    result = run(cfg, market=market)
    assert result.trades and result.refused_by_mandate == 0
    ref = {r.round: r.band_reference for r in result.rounds}
    for t in result.trades:
        assert ref[t.round] is not None and t.price <= ref[t.round] * 1.1
    assert result.solvent and result.all_settled and result.events_match


def test_circuit_breaker_halts_on_rolling_median_and_on_a_limit_state() -> None:
    breaker = CircuitBreaker(100, 0.15, window=3)
    assert not any(breaker.observe_trade(p) for p in (104, 96, 110))  # within 15%: trading goes on
    assert breaker.observe_trade(130) is False  # median of (96, 110, 130) = 110: still inside
    assert breaker.observe_trade(135)  # median of (110, 130, 135) = 130: a 30% move halts
    assert breaker.fired == 1 and 0 in breaker.halted_rounds
    breaker.end_round(130)
    assert breaker.reference == 115  # the round median joins the moving reference
    breaker.limit_up = 138
    assert not breaker.observe_quote(True, 137) and not breaker.observe_quote(False, 200)
    assert [breaker.observe_quote(True, 138, who) for who in (1, 2, 3)] == [False, False, True]  # pile-up


def test_spike_cascade_guarded_vs_unguarded() -> None:
    """spike500 on 3 seeds off chain: unguarded prices overshoot far above the pre-shock level; guarded,
    the breaker fires, round medians stay near the current equilibrium, and efficiency stays high."""
    open_, guarded = [], []
    for seed in range(3):
        base = SimConfig.scenario("spike500", agents=20, rounds=10, seed=seed)
        open_.append(OffChainSim(base).run())
        guarded.append(OffChainSim(replace(base, guardrails=True)).run())
    assert max(r.peak_trade_dev_preshock for r in open_) > 2.0  # a trade at over 3x the pre-shock price
    assert all(r.breaker_fired for r in guarded)
    assert statistics.fmean(r.peak_round_dev_current for r in guarded) <= 0.2
    assert statistics.fmean(r.efficiency for r in guarded) >= 0.9
    assert all(r.breaker_fired == 0 for r in open_)


def test_efficient_order_sells_cheapest_reserve_first() -> None:
    sellers = [Trader(i, Role.SELLER, c, "fixed") for i, c in enumerate((30, 10, 20))]
    rng = random.Random(1)
    assert [t.limit for t in auction_order(sellers, "efficient", rng, ascending=True)] == [10, 20, 30]
    assert [t.limit for t in auction_order(sellers, "efficient", rng, ascending=False)] == [30, 20, 10]
    with pytest.raises(ValueError):
        auction_order(sellers, "alphabetical", rng, ascending=True)
    cfg = SimConfig(agents=20, rounds=5, mechanism="english", seed=4)
    efficient, shuffled = OffChainSim(cfg).run(), OffChainSim(replace(cfg, order="random")).run()
    assert efficient.efficiency >= shuffled.efficiency


def test_seeds_summary_has_intervals_and_every_seed(tmp_path) -> None:
    results = run_seeds(SimConfig(agents=10, rounds=3, mechanism="call"), 3, offchain=True)
    results += run_seeds(
        SimConfig.scenario("spike500", agents=10, rounds=4, guardrails=True), 2, offchain=True
    )
    doc = json.loads(write_json(results, tmp_path / "s.json").read_text())
    call, spike = doc["summary"]
    assert call["seeds"] == 3 and len(call["per_seed"]) == 3
    lo, hi = call["efficiency_ci95"]
    assert lo <= call["efficiency_mean"] <= hi
    assert [p["seed"] for p in call["per_seed"]] == [7, 8, 9]
    for key in (
        "breaker_fired",
        "peak_round_dev_current",
        "peak_round_dev_preshock",
        "efficiency_fundamental",
    ):
        assert key in spike and key not in call
    assert write_png(results, tmp_path / "s.png").stat().st_size > 1000


def test_t_interval() -> None:
    assert t975(1) == pytest.approx(12.706) and t975(30) == pytest.approx(2.042)
    assert t975(60) == pytest.approx(2.000, abs=2e-3) and t975(120) == pytest.approx(1.980, abs=2e-3)
    m, (_, hi) = mean_ci95([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.303 / math.sqrt(3))


def test_cda_scales_with_the_market() -> None:
    """The CDA runs until quotes stop crossing: a 60-agent market is not cut short by a fixed step count."""
    result = OffChainSim(SimConfig(agents=60, rounds=2, mechanism="offers", seed=1)).run()
    assert result.efficiency > 0.9


def test_offchain_strategy_evaluation_is_deterministic() -> None:
    cfg = SimConfig(agents=10, rounds=5, mechanism="sealed", seed=2)
    a, b = OffChainSim(cfg).run(), OffChainSim(cfg).run()
    assert [t.price for t in a.trades] == [t.price for t in b.trades]
    assert a.adaptive_gain["buyer"] is not None and a.adaptive_gain["provider"] is None
