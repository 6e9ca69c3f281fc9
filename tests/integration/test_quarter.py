"""The quarterly procurement assistant: a short quarter settles every deal, and its accounting is the chain's."""

from __future__ import annotations

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.clients.reputation import ReputationClient
from agentmarket.deploy import Suite
from agentmarket.sim.quarter import POLICIES, QuarterConfig, event_totals, run_quarter
from agentmarket.sim.quarter_report import summarise, write_markdown, write_plot
from agentmarket.types import DealState


def _gas_paid(chain: Chain, address: str, first: int, last: int) -> int:
    """Wei ``address`` paid for gas in blocks first..last, from the receipts."""
    w3 = chain.w3
    paid = 0
    for n in range(first, last + 1):
        block = w3.eth.get_block(n, full_transactions=True)
        for tx in block["transactions"]:
            if tx["from"] == address:  # type: ignore[index]
                receipt = w3.eth.get_transaction_receipt(tx["hash"])  # type: ignore[index]
                paid += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    return paid


def test_short_quarter_accounting_matches_the_chain(chain: Chain, suite: Suite, tmp_path) -> None:
    # a prior of deep auction discounts makes the assistant hold auctions among four providers
    # (seed 7: late and short deliveries both weeks, with a provider left to re-buy from)
    cfg = QuarterConfig(seed=7, weeks=2, providers=4, demand=120, prior_deals=1, auction_discount=0.6)
    before = chain.w3.eth.block_number
    result = run_quarter(suite, cfg)
    escrow = EscrowClient.from_suite(suite)
    first, last = result.from_block, result.to_block
    assert first > before and last > first
    totals = event_totals(escrow, list(result.buyers.values()), first)
    for name in POLICIES:
        address = result.buyers[name]
        p = result.policies[name]
        t = totals[address]
        # every deal settled; spend and recoveries are the escrow's payouts read from events
        assert t.open == 0 and t.deals == p.deals > 0
        assert p.spend_wei == t.spend and p.recovered_wei == t.refunds + t.penalties + t.dispute_returns
        assert t.locked == p.spend_wei + p.recovered_wei
        # ... and equal what left the buyer's wallet, minus gas (balances at the blocks around the run)
        start_balance = chain.w3.eth.get_balance(address, block_identifier=first - 1)
        end_balance = chain.w3.eth.get_balance(address, block_identifier=last)
        gas_after_first = _gas_paid(chain, address, first, last)
        assert start_balance - end_balance - gas_after_first == p.spend_wei
        mine = [x for x in result.placed if x.policy == name]
        for x in mine:
            state, *_ = escrow.status(x.deal.id)
            assert state.name == x.state, (name, x)
            assert state in (DealState.ACCEPTED, DealState.RESOLVED, DealState.REFUNDED)
            if x.outcome.kind == "fail":
                assert state == DealState.REFUNDED and x.delivered_hours == 0
        assert p.delivered_hours == sum(x.delivered_hours for x in mine)
        assert 0 <= p.missed_hours <= p.demand_hours
    # the assistant bought lots through the procurement auction contract; those deals are escrow deals too
    agent = result.policies["agent"]
    auctioned = [x for x in result.placed if x.auction]
    assert agent.auctions >= agent.auction_sales == len(auctioned) > 0
    assert agent.auction_hours == sum(x.hours for x in auctioned)
    assert all(x.policy == "agent" and x.unit_price <= x.posted_price for x in auctioned)
    # replacements: bought when the first deliveries were due, only from providers that had delivered
    # in full that week, never more than the week's shortfall, and settled in escrow like any other deal
    rematched = [x for x in result.placed if x.source == "rematch"]
    assert agent.rematch_hours == sum(x.hours for x in rematched) > 0
    for w, demand in enumerate(result.demand):
        first = [x for x in result.placed if x.policy == "agent" and x.week == w and x.source != "rematch"]
        again = [x for x in rematched if x.week == w]
        shortfall = demand - sum(
            x.hours * x.outcome.fraction for x in first if x.outcome.kind in ("ontime", "short")
        )
        assert sum(x.hours for x in again) <= max(0, shortfall)
        behind = {x.provider for x in first if x.outcome.kind != "ontime"}
        assert not behind & {x.provider for x in again}
        promised = {y.deal.terms.promised_by for y in first if y.source == "negotiated"}
        assert all(x.policy == "agent" and {x.deal.terms.promised_by} == promised for x in again)
    # only the assistant disputes short deliveries and rates; its ratings are on chain
    assert all(x.state != "RESOLVED" for x in result.placed if x.policy != "agent")
    rep = ReputationClient.from_suite(suite)
    agent_ratings = rep.ratings(rater=result.buyers["agent"])
    rated = [x for x in result.placed if x.policy == "agent" and x.rated is not None]
    assert len(agent_ratings) == len(rated) > 0
    assert {r.deal_id: r.score for r in agent_ratings} == {x.deal.id: x.rated for x in rated}
    # escrow holds nothing for these deals any more
    balance, escrow_totals = escrow.solvency()
    assert escrow_totals.locked == 0 and balance == escrow_totals.accounted
    report = summarise([result.summary()], chain="embedded", wall_seconds=1.0, command="test")
    assert write_plot(report, tmp_path / "q.png").stat().st_size > 1000
    text = write_markdown(report, tmp_path / "q.md").read_text()
    assert "cost per delivered GPU-hour" in text and "Target:" in text


def test_same_seed_same_world_for_every_policy(chain: Chain, suite: Suite) -> None:
    """Pairing: the world (demand, outcomes per provider and week) does not depend on the agent's draws."""
    cfg = QuarterConfig(seed=9, weeks=1, providers=4, demand=60, prior_ratings=False)
    snap = chain.snapshot()
    a = run_quarter(suite, cfg)
    chain.revert(snap)
    b = run_quarter(
        suite, QuarterConfig(seed=9, weeks=1, providers=4, demand=60, prior_ratings=False, risk_premium=3.0)
    )
    assert a.demand == b.demand
    outcomes_a = {(x.week, x.provider): x.outcome for x in a.placed}
    outcomes_b = {(x.week, x.provider): x.outcome for x in b.placed}
    for key in outcomes_a.keys() & outcomes_b.keys():
        assert outcomes_a[key] == outcomes_b[key]
    for name in ("single", "cheapest"):
        assert a.policies[name].spend_wei == b.policies[name].spend_wei


def test_script_end_to_end_on_anvil(tmp_path) -> None:
    """`scripts/quarter.py --chain anvil` runs, settles and writes the JSON, plot and markdown report."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "quarter.py"
    spec = importlib.util.spec_from_file_location("quarter_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--seeds", "2", "--weeks", "1", "--providers", "4", "--demand", "60", "--chain", "anvil"]
    args += ["--out", str(tmp_path)]
    assert module.main(args) == 0
    report = json.loads((tmp_path / "quarter.json").read_text())
    assert report["seeds"] == 2 and report["chain"] == "anvil"
    for run in report["runs"]:
        for name in POLICIES:
            assert run["policies"][name]["spend_wei"] > 0
    assert (tmp_path / "quarter.png").stat().st_size > 1000
    assert "Paired differences" in (tmp_path / "quarter.md").read_text()
