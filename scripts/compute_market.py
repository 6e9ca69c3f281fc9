#!/usr/bin/env python3
"""Simulated GPU-hour market: N providers with private costs, M buyers with private values, R rounds.

Every trade is locked and settled on chain (buyer funds the escrow under its spend mandate, provider
submits, buyer accepts). Prints a table and writes JSON + PNG (default: out/compute_market.{json,png}).

    python scripts/compute_market.py --agents 20 --rounds 10                   # offers (CDA), embedded
    python scripts/compute_market.py --mechanism all --chain anvil            # every mechanism
    python scripts/compute_market.py --mechanism offers --shock --chain anvil # spike, without and with guardrails
    python scripts/compute_market.py --mechanism all --seeds 30 --rounds 5     # mean ± 95% CI per mechanism
    python scripts/compute_market.py --scenario spike500 --seeds 30           # cascade to x6, unguarded vs guarded
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentmarket.market import Market
from agentmarket.sim import MECHANISMS, SimConfig
from agentmarket.sim.report import label, seeds_table, summarise, table, write_json, write_png
from agentmarket.sim.runner import ComputeMarketSim, OffChainSim
from agentmarket.sim.shock import SCENARIOS, SHAPES, Shock


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
    parser.add_argument("--seed", type=int, default=7, help="first seed")
    parser.add_argument(
        "--seeds", type=int, default=1, help="run seeds seed..seed+N-1; report mean ± 95%% CI"
    )
    parser.add_argument(
        "--offchain",
        action="store_true",
        help="match in Python only, nothing settled on chain (fast strategy studies; not headline figures)",
    )
    parser.add_argument(
        "--order",
        choices=("efficient", "random"),
        default="efficient",
        help="sequential auctions: cheapest reserve first (default) or random order",
    )
    parser.add_argument(
        "--shock", action="store_true", help="demand spike mid-run; runs without and with guardrails"
    )
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), help="a named shock scenario (implies --shock)"
    )
    parser.add_argument("--shock-factor", type=float, default=2.0)
    parser.add_argument("--shock-shape", choices=SHAPES, default="step")
    parser.add_argument(
        "--shock-start", type=int, default=None, help="first shocked round (default rounds//2)"
    )
    parser.add_argument("--shock-rounds", type=int, default=None, help="shocked rounds (default rounds//5)")
    parser.add_argument("--momentum", type=float, default=0.0, help="fraction of momentum buyers")
    parser.add_argument("--entrants", type=int, default=0, help="buyers entering during the shock")
    parser.add_argument(
        "--withdraw", type=float, default=0.0, help="fraction of supply withdrawn in the shock"
    )
    parser.add_argument(
        "--entrant-units",
        type=int,
        default=1,
        help="GPU-hours each entrant orders at once (multi-unit order)",
    )
    parser.add_argument(
        "--max-units",
        type=int,
        default=1,
        help="multi-unit orders: each trader orders 1..N GPU-hours a round (offers and call)",
    )
    parser.add_argument(
        "--relay",
        action="store_true",
        help="offers: start an offer relay (SQLite) on the chain; providers post their signed offers to it "
        "and buyers discover them through RelayClient before filling on chain (anvil or a URL chain)",
    )
    parser.add_argument("--substeps", type=int, default=1, help="sub-round steps during the shock")
    parser.add_argument(
        "--band-bps", type=int, default=2_000, help="guardrail: mandate price band over equilibrium"
    )
    parser.add_argument(
        "--pause-move",
        type=float,
        default=0.20,
        help="circuit breaker: halt and re-open with a call auction when the rolling trade median moves "
        "this much from the reference (fraction)",
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
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.relay and (args.offchain or args.chain == "embedded" or mechanisms != ["offers"]):
        parser.error("--relay needs --mechanism offers on a node chain (--chain anvil or a URL)")
    if args.max_units < 1 or args.entrant_units < 1:
        parser.error("--max-units and --entrant-units must be at least 1")
    if args.max_units > 1 and any(m not in ("offers", "call") for m in mechanisms):
        parser.error("--max-units needs --mechanism offers or call (the auctions sell one unit at a time)")
    shock_model = None
    if args.scenario:
        args.shock = True
        shock_model = replace(SCENARIOS[args.scenario], entrant_units=args.entrant_units)
    elif args.shock:
        shock_model = Shock(
            args.shock_shape,
            args.shock_factor,
            start=args.shock_start,
            rounds=args.shock_rounds,
            momentum=args.momentum,
            entrants=args.entrants,
            entrant_units=args.entrant_units,
            withdraw=args.withdraw,
            substeps=args.substeps,
        )
    scenarios = [(False, False)] if not args.shock else [(True, False), (True, True)]
    configs = [
        SimConfig(
            agents=args.agents,
            rounds=args.rounds,
            mechanism=m,
            seed=seed,
            order=args.order,
            shock=shock,
            guardrails=guard,
            shock_factor=shock_model.factor if shock_model else args.shock_factor,
            shock_model=shock_model,
            band_bps=args.band_bps,
            pause_move=args.pause_move,
            workers=args.workers,
            max_units=args.max_units,
        )
        for m in mechanisms
        for shock, guard in scenarios
        for seed in range(args.seed, args.seed + args.seeds)
    ]

    console = Console(width=None if sys.stdout.isatty() else 160)
    started = time.perf_counter()
    market = None
    if not args.offchain:
        with console.status(f"connecting to {args.chain} and deploying the suite..."):
            market = Market.connect(args.chain, accounts=2)
        console.print(
            f"[bold]{market.chain.kind}[/] chain {market.chain.chain_id}: "
            f"{', '.join(f'{n} {a}' for n, a in market.suite.addresses.items())}"
        )
    relay = None
    if args.relay and market is not None:
        from agentmarket.relay.process import RelayProcess

        relay_dir = tempfile.TemporaryDirectory(prefix="agentmarket-sim-relay-")
        with console.status("starting the offer relay..."):
            relay = RelayProcess(
                f"sqlite:///{relay_dir.name}/relay.db",
                str(market.chain.url),
                market.suite["OfferBook"].address,
                market.suite["ReputationRegistry"].address,
                # one simulator process speaks for every agent from one address: no per-client limit
                extra=["--client-rate", "0"],
            ).start()
        console.print(f"relay {relay.url} (SQLite in {relay_dir.name})")
        configs = [replace(c, relay=relay.url) for c in configs]
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
            overall = progress.add_task("all runs", total=len(configs), info=f"{len(configs)} runs")
            for cfg in configs:
                task = progress.add_task(
                    f"{cfg.mechanism:<12} seed {cfg.seed}", total=cfg.rounds, info="setting up agents"
                )

                def tick(done: int, total: int, stats: object, task: int = task) -> None:
                    s = stats  # RoundStats
                    price = f"{s.mean_price / 1e15:.2f}" if s.mean_price else "-"  # type: ignore[attr-defined]
                    progress.update(
                        task,
                        completed=done,
                        info=f"{s.trades} trades, mean {price} mETH"  # type: ignore[attr-defined]
                        f"{' (shock)' if s.shocked else ''}",
                    )  # type: ignore[attr-defined]

                sim = OffChainSim(cfg) if market is None else ComputeMarketSim(market, cfg, tick)
                result = sim.run()
                progress.remove_task(task) if args.seeds > 1 else progress.update(
                    task, description=f"{label(result):<12}"
                )
                progress.advance(overall)
                results.append(result)
    finally:
        if relay is not None:
            relay.stop()
            relay_dir.cleanup()
        if market is not None:
            market.close()
    if args.seeds == 1:
        console.print(table(results))
    if relay is not None:
        posted = sum(r.relay_posted for r in results)
        found = sum(r.relay_discovered for r in results)
        console.print(
            f"relay: {posted} signed offers posted, {found} fills of offers discovered on the relay"
        )
    summary = summarise(results)
    console.print(seeds_table(summary))
    if args.shock and args.seeds == 1:
        for m in mechanisms:
            pair = [r for r in results if r.config["mechanism"] == m]
            off, on = pair[0], pair[1]
            console.print(
                f"shock ({m}): largest deviation from the pre-shock equilibrium, trade / round median: "
                f"{off.max_price_deviation * 100:.0f}% / {off.max_round_deviation * 100:.0f}% without "
                f"guardrails, {on.max_price_deviation * 100:.0f}% / {on.max_round_deviation * 100:.0f}% "
                f"with (band +{args.band_bps / 100:.0f}%: {on.refused_by_mandate} bids/trades refused or "
                f"capped; breaker at {args.pause_move * 100:.0f}% rolling-median moves fired "
                f"{on.breaker_fired} time(s))"
            )
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime
    load = os.getloadavg()[0]
    console.print(
        f"peak memory (max RSS of this process): {peak_mb:.0f} MB; wall {time.perf_counter() - started:.1f}s, "
        f"CPU {cpu:.1f}s in this process (load average {load:.1f} on {os.cpu_count()} cores)"
    )
    extra = {
        "command": " ".join(["scripts/compute_market.py", *(argv if argv is not None else sys.argv[1:])]),
        "offchain": args.offchain,
        "seeds": args.seeds,
        "peak_rss_mb": round(peak_mb, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average_1m": round(load, 2),
        "chain": args.chain if not args.offchain else "none",
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
