#!/usr/bin/env python3
"""Simulated GPU-hour market: N providers with private costs, M buyers with private values, R rounds.

Every trade is locked and settled on chain (buyer funds the escrow under its spend mandate, provider
submits, buyer accepts). Prints a table and writes JSON + PNG (default: out/compute_market.{json,png}).

    python scripts/compute_market.py --agents 20 --rounds 10                   # offers (CDA), embedded
    python scripts/compute_market.py --mechanism all --chain anvil            # every mechanism
    python scripts/compute_market.py --mechanism offers --shock --chain anvil # spike, without and with guardrails
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentmarket.market import Market
from agentmarket.sim import MECHANISMS, SimConfig
from agentmarket.sim.report import label, table, write_json, write_png
from agentmarket.sim.runner import ComputeMarketSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=20, help="providers + buyers (split half/half)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--mechanism",
        default="offers",
        help=f"one of {', '.join(MECHANISMS)}, a comma-separated list, or 'all'",
    )
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--shock", action="store_true", help="demand spike mid-run; runs without and with guardrails"
    )
    parser.add_argument("--shock-factor", type=float, default=2.0)
    parser.add_argument(
        "--band-bps", type=int, default=2_000, help="guardrail: mandate price band over equilibrium"
    )
    parser.add_argument(
        "--pause-move",
        type=float,
        default=0.25,
        help="guardrail: halt the next round when a round's median price moves this much (fraction)",
    )
    parser.add_argument("--workers", type=int, default=None, help="trades settled concurrently (node chains)")
    parser.add_argument(
        "--out", type=Path, default=Path("out/compute_market"), help="output path without suffix"
    )
    args = parser.parse_args(argv)

    mechanisms = (
        list(MECHANISMS) if args.mechanism == "all" else [m.strip() for m in args.mechanism.split(",")]
    )
    for m in mechanisms:
        if m not in MECHANISMS:
            parser.error(f"unknown mechanism {m!r} (choose from {', '.join(MECHANISMS)})")
    if args.agents < 2 or args.rounds < 1:
        parser.error("need at least 2 agents and 1 round")
    scenarios = [(False, False)] if not args.shock else [(True, False), (True, True)]
    configs = [
        SimConfig(
            agents=args.agents,
            rounds=args.rounds,
            mechanism=m,
            seed=args.seed,
            shock=shock,
            guardrails=guard,
            shock_factor=args.shock_factor,
            band_bps=args.band_bps,
            pause_move=args.pause_move,
            workers=args.workers,
        )
        for m in mechanisms
        for shock, guard in scenarios
    ]

    console = Console(width=None if sys.stdout.isatty() else 160)
    started = time.perf_counter()
    with console.status(f"connecting to {args.chain} and deploying the suite..."):
        market = Market.connect(args.chain)
    console.print(
        f"[bold]{market.chain.kind}[/] chain {market.chain.chain_id}: "
        f"{', '.join(f'{n} {a}' for n, a in market.suite.addresses.items())}"
    )
    results = []
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            for cfg in configs:
                task = progress.add_task(f"{cfg.mechanism:<12}", total=cfg.rounds, info="setting up agents")

                def tick(done: int, total: int, stats: object, task: int = task) -> None:
                    s = stats  # RoundStats
                    price = f"{s.mean_price / 1e15:.2f}" if s.mean_price else "-"  # type: ignore[attr-defined]
                    progress.update(
                        task,
                        completed=done,
                        info=f"{s.trades} trades, mean {price} mETH"  # type: ignore[attr-defined]
                        f"{' (shock)' if s.shocked else ''}",
                    )  # type: ignore[attr-defined]

                sim = ComputeMarketSim(market, cfg, tick)
                result = sim.run()
                progress.update(task, description=f"{label(result):<12}")
                results.append(result)
    finally:
        market.close()
    console.print(table(results))
    if args.shock:
        for m in mechanisms:
            pair = [r for r in results if r.config["mechanism"] == m]
            off, on = pair[0], pair[1]
            console.print(
                f"shock ({m}): largest deviation from the pre-shock equilibrium, trade / round median: "
                f"{off.max_price_deviation * 100:.0f}% / {off.max_round_deviation * 100:.0f}% without "
                f"guardrails, {on.max_price_deviation * 100:.0f}% / {on.max_round_deviation * 100:.0f}% "
                f"with (band +{args.band_bps / 100:.0f}%: {on.refused_by_mandate} bids/trades refused or "
                f"capped; breaker at {args.pause_move * 100:.0f}% round-median moves: "
                f"{on.paused_rounds} round(s) halted)"
            )
    extra = {
        "chain": args.chain,
        "agents": args.agents,
        "rounds": args.rounds,
        "total_seconds": time.perf_counter() - started,
    }
    json_path = write_json(results, args.out.with_suffix(".json"), extra)
    png_path = write_png(results, args.out.with_suffix(".png"))
    console.print(f"wrote {json_path} and {png_path} in {time.perf_counter() - started:.1f}s")
    bad = [label(r) for r in results if not (r.solvent and r.all_settled)]
    if bad:
        console.print(f"[red]not solvent or not settled: {', '.join(bad)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
