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


def test_paired_negotiation_scores_on_chain_equal_off_chain(chain: Chain, suite: Suite) -> None:
    """Every agreement of the paired negotiated market settles on chain, so the on-chain scores are the
    off-chain ones: the on-chain comparison's spread is not a settlement effect."""
    from agentmarket.sim.paired_negotiation import paired_market_scores

    market = Market(chain, suite)
    on = paired_market_scores([3], 6, 2, market=market, strategies=("bayes",))
    off = paired_market_scores([3], 6, 2, strategies=("bayes",))
    assert on.settled["bayes"] == on.agreements["bayes"] > 0
    assert on.utility == off.utility and on.price == off.price


@pytest.mark.anvil
def test_anvil_settlement_phases_share_blocks(anvil: Chain, anvil_suite: Suite) -> None:
    """On anvil each settlement phase is mined in a few blocks (batch_mining), every trade still settles
    and the events agree; automine is back on afterwards."""
    market = Market(anvil, anvil_suite)
    first = int(anvil.w3.eth.block_number)
    result = run(SimConfig(agents=40, rounds=2, mechanism="offers", seed=3, fund=10**18), market=market)
    assert len(result.trades) >= 10
    assert result.solvent and result.all_settled and result.events_match
    blocks = int(anvil.w3.eth.block_number) - first
    txs = sum(t.txs for t in result.trades)
    assert blocks < txs / 5, f"{txs} transactions took {blocks} blocks"
    assert anvil.transactor.transport.request("anvil_getAutomine", []) is True


def test_batch_mining_is_a_no_op_off_anvil(chain: Chain) -> None:
    with chain.batch_mining():
        sent = chain.transactor.send_value(chain.accounts[0], chain.accounts[1].address, 1)
    assert sent["status"] == 1


def test_decode_static_matches_eth_abi() -> None:
    from eth_abi import decode, encode

    from agentmarket.calldata import decode_static
    from agentmarket.types import DEAL_ABI_TYPES

    rng = random.Random(5)
    types = DEAL_ABI_TYPES[1:-1].split(",")
    for _ in range(20):
        values = [
            "0x" + rng.randbytes(20).hex()
            if t == "address"
            else rng.randbytes(32)
            if t == "bytes32"
            else rng.randrange(2 ** int(t[4:]))
            for t in types
        ]
        data = encode([DEAL_ABI_TYPES, "uint8"], [tuple(values), 2])
        assert decode_static(types, data) == tuple(decode([DEAL_ABI_TYPES, "uint8"], data)[0])
    assert decode_static(["string"], encode(["string"], ["x"])) == ("x",)  # dynamic: eth-abi's path
    with pytest.raises(ValueError):
        decode_static(types, b"\x00" * 32)


def test_word_encoder_matches_eth_abi() -> None:
    """The calldata fast path (static words + top-level bytes) writes exactly eth-abi's bytes for the
    simulator's calls (OfferBook.fill, escrow submit/accept), and leaves anything else to eth-abi."""
    import eth_abi.exceptions
    from eth_abi import encode

    from agentmarket.calldata import FunctionEncoder
    from agentmarket.compiler import load_artifact
    from agentmarket.validate import checksum

    rng = random.Random(9)

    def value(t: str) -> object:
        if t == "address":
            raw = "0x" + rng.randbytes(20).hex()
            return rng.choice([raw, checksum(raw), bytes.fromhex(raw[2:])])
        if t == "bytes32":
            return rng.randbytes(32)
        if t == "bool":
            return rng.random() < 0.5
        return rng.choice([0, 2 ** int(t[4:]) - 1, rng.randrange(2 ** int(t[4:]))])

    def args(enc: FunctionEncoder) -> list[object]:
        out: list[object] = []
        for t in enc.types:
            if t.startswith("("):
                out.append(tuple(value(c) for c in t[1:-1].split(",")))
            elif t == "bytes":
                out.append(rng.randbytes(rng.choice([0, 1, 32, 65, 70])))
            else:
                out.append(value(t))
        return out

    book, escrow = load_artifact("OfferBook")["abi"], load_artifact("AgentEscrow")["abi"]
    fns = [e for e in book if e.get("name") == "fill"] + [
        e for e in escrow if e.get("name") in ("submit", "accept")
    ]
    assert len(fns) == 3
    for fn in fns:
        enc = FunctionEncoder(fn)
        assert enc.plan is not None, fn["name"]
        for _ in range(30):
            a = args(enc)
            assert enc(*a) == enc.selector + encode(enc.types, a)
    # values eth-abi refuses are refused the same way (the fast path steps aside)
    accept = FunctionEncoder(next(e for e in escrow if e.get("name") == "accept"))
    deal = list(args(accept)[1])  # type: ignore[arg-type]
    with pytest.raises(eth_abi.exceptions.EncodingError):
        accept(2**256, tuple(deal))
    bad = checksum("0x" + "ab" * 20)
    deal[0] = bad[:2] + bad[2:].swapcase()  # a wrong EIP-55 checksum: eth-abi encodes it, so do we
    assert accept(1, tuple(deal)) == accept.selector + encode(accept.types, [1, tuple(deal)])
    deal[0] = "0x" + "ab" * 19
    with pytest.raises(eth_abi.exceptions.EncodingError):
        accept(1, tuple(deal))
    with pytest.raises(eth_abi.exceptions.EncodingError):
        accept(1, tuple(deal[:-1]))


# -- multi-unit orders ------------------------------------------------------------------------------------


def test_double_auction_multi_unit_orders_trade_partial_quantities() -> None:
    """A 3-unit buyer against one-unit sellers trades one unit per crossing (the smaller order) and stays
    in the book until its units are gone; no trader ever trades more units than it holds."""
    from agentmarket.strategies import ContinuousDoubleAuction, Side, ZICTrader

    traders = [
        ZICTrader(Side.BUY, 200, 1, 300),
        *(ZICTrader(Side.SELL, c, 1, 300) for c in (50, 60, 70, 250)),
    ]
    cda = ContinuousDoubleAuction(traders, [3, 1, 1, 1, 2])
    assert cda.equilibrium.quantity == 3 and cda.max_surplus == 150 + 140 + 130
    trades = cda.run_day(0, random.Random(4), 5_000, book=True)
    held = [3, 1, 1, 1, 2]
    for t in trades:
        assert t.quantity == 1 and t.buyer == 0 and t.surplus == (t.value - t.cost) * t.quantity
        held[t.buyer] -= t.quantity
        held[t.seller] -= t.quantity
    assert min(held) >= 0 and held[0] == 0  # the buyer filled all 3 units from the three cheap sellers
    with pytest.raises(ValueError):
        ContinuousDoubleAuction(traders, [1, 1])


def test_call_matches_pair_multi_unit_orders_in_id_order() -> None:
    """Fills of multi-unit orders are paired in id order for the units both still have (the contract's
    walk): a 3-unit bid against asks of 2 and 2 units gives matches of 2 and 1."""
    b = Trader(10, Role.BUYER, 100, "fixed", units=3)
    a1, a2 = Trader(0, Role.SELLER, 10, "fixed", units=2), Trader(1, Role.SELLER, 20, "fixed", units=2)
    matches = call_matches([(b, 100)], [(a1, 10), (a2, 20)])
    assert [(m.seller, m.quantity) for m in matches] == [(0, 2), (1, 1)]
    assert len({m.price for m in matches}) == 1 and 20 <= matches[0].price <= 100


@pytest.mark.parametrize("mechanism", ["offers", "call"])
def test_multi_unit_orders_settle_as_multi_unit_deals(chain: Chain, suite: Suite, mechanism: str) -> None:
    """With ``max_units`` every trade is one escrow deal for its quantity (amount = price x units, from
    the chain's DealCreated), efficiency from the events agrees with the records, and no trader trades
    more units in a round than its order held."""
    market = Market(chain, suite)
    cfg = SimConfig(agents=8, rounds=2, mechanism=mechanism, seed=4, fund=10**18, max_units=3)
    result = run(cfg, market=market)
    assert any(t.quantity > 1 for t in result.trades), "no multi-unit trade"
    assert result.solvent and result.all_settled and result.events_match
    assert result.efficiency == pytest.approx(result.efficiency_records) and 0 < result.efficiency <= 1
    escrow = market.escrow
    for t in result.trades:
        assert escrow.deal(t.deal_id).terms.amount == t.price * t.quantity
    per_round: dict[tuple[int, str], int] = {}
    for t in result.trades:
        for who in (t.buyer, t.seller):
            per_round[(t.round, who)] = per_round.get((t.round, who), 0) + t.quantity
    assert max(per_round.values()) <= 3
    with pytest.raises(ValueError, match="multi-unit"):
        OffChainSim(replace(cfg, mechanism="english"))


@pytest.mark.anvil
def test_offers_through_the_relay(anvil: Chain, anvil_suite: Suite, tmp_path) -> None:
    """``relay``: every trade's signed offer is posted to a real relay process and the buyer fills the
    copy it found with a RelayClient query; the deals settle, and once the relay's indexer has seen the
    fills no posted offer is left live on the relay."""
    import time

    from agentmarket.relay.client import RelayClient
    from agentmarket.relay.process import RelayProcess

    market = Market(anvil, anvil_suite)
    with RelayProcess(
        f"sqlite:///{tmp_path}/relay.db",
        str(anvil.url),
        anvil_suite["OfferBook"].address,
        anvil_suite["ReputationRegistry"].address,
        extra=["--client-rate", "0", "--poll-interval", "0.1"],
        log=tmp_path / "relay.log",
    ) as relay:
        cfg = SimConfig(agents=8, rounds=2, mechanism="offers", seed=3, fund=10**18, relay=relay.url)
        result = run(cfg, market=market)
        assert result.trades and result.relay_posted == result.relay_discovered == len(result.trades)
        assert result.solvent and result.all_settled and result.events_match
        with RelayClient(relay.url) as client:
            deadline = time.monotonic() + 30
            while client.query(resource="gpu-hour", side="sell").offers and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.query(resource="gpu-hour", side="sell").offers == []
    with pytest.raises(ValueError, match="relay"):
        OffChainSim(replace(cfg, relay="http://127.0.0.1:1"))
