""" "Optimise my cloud compute spending for the next quarter": a procurement assistant against two baselines.

Every seed runs 13 simulated weeks on chain (embedded chain by default, ``--chain anvil`` for speed, or a
JSON-RPC URL): the assistant (quarterly budget mandate, ratings, negotiation, disputes) and the two naive
baselines (one provider at its posted price all quarter; the cheapest posted prices each week) buy the
same weekly GPU-hour demand from the same drifting providers, with the same delivery outcomes per provider
and week (paired). Writes out/quarter.json, out/quarter.png and out/quarter.md: cost per delivered GPU-hour,
GPU-hours delivered, SLA misses, refunds and penalties recovered, the cost per useful (on-time, within
demand) GPU-hour and the spend, and the paired differences with 95% CIs. The tuning flags (--risk-premium,
--invite-rule, --auction-discount, --rematch, ...) default to the values set on seeds 1-10
(docs/quarter/tuning.md).

    .venv/bin/python scripts/quarter.py --seeds 30 --first-seed 101 --chain anvil --jobs 2   # the README figures
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentmarket.chain import Chain
from agentmarket.deploy import deploy_suite
from agentmarket.sim.quarter import QuarterConfig, run_quarter
from agentmarket.sim.quarter_report import summarise, write_markdown, write_plot


def one_seed(chain_name: str, cfg: QuarterConfig) -> dict[str, Any]:
    """Run one seed on its own chain (a fresh embedded chain or anvil per seed: runs stay independent)."""
    with Chain.from_name(chain_name) as chain:
        suite = deploy_suite(chain, write=False, reuse=chain.kind == "rpc")
        result = run_quarter(suite, cfg)
    print(
        f"seed {cfg.seed}: {result.seconds:.1f}s "
        + "  ".join(
            f"{n} {p.cost_per_hour:.3f}/h miss {p.missed_hours:.0f}h" for n, p in result.policies.items()
        )
        + f"  auctions {result.policies['agent'].auction_sales}/{result.policies['agent'].auctions}"
        + f"  rematched {result.policies['agent'].rematch_hours}h",
        flush=True,
    )
    return result.summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (paired runs)")
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first..first+N-1")
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--providers", type=int, default=24)
    parser.add_argument("--demand", type=int, default=600, help="mean GPU-hours per week")
    parser.add_argument("--auction-lots", type=int, default=2, help="procurement auctions a week (0: none)")
    parser.add_argument("--lot-share", type=float, default=0.3, help="each lot's share of the week's demand")
    parser.add_argument("--invite", type=int, default=5, help="at most this many invited to each auction")
    parser.add_argument(
        "--invite-rule",
        choices=("predicted", "top"),
        default="predicted",
        help="predicted: the invitation with the lowest predicted cost per on-time GPU-hour; top: first N",
    )
    parser.add_argument("--auction-discount", type=float, default=QuarterConfig.auction_discount)
    parser.add_argument("--risk-premium", type=float, default=QuarterConfig.risk_premium)
    parser.add_argument("--max-share", type=float, default=QuarterConfig.max_share)
    parser.add_argument(
        "--no-rematch-auction", action="store_true", help="re-buy by negotiation only, never by auction"
    )
    parser.add_argument(
        "--rematch",
        type=float,
        default=QuarterConfig.rematch,
        help="share of a shortfall re-bought (0: none)",
    )
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel, each on its own chain")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    configs = [
        QuarterConfig(
            seed=s,
            weeks=args.weeks,
            providers=args.providers,
            demand=args.demand,
            auction_lots=args.auction_lots,
            lot_share=args.lot_share,
            invite=args.invite,
            invite_rule=args.invite_rule,
            auction_discount=args.auction_discount,
            risk_premium=args.risk_premium,
            max_share=args.max_share,
            rematch=args.rematch,
            rematch_auction=not args.no_rematch_auction,
        )
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(one_seed, [args.chain] * len(configs), configs))
    else:
        runs = [one_seed(args.chain, c) for c in configs]
    wall = time.perf_counter() - started
    command = "scripts/quarter.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = summarise(runs, chain=args.chain, wall_seconds=wall, command=command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quarter.json").write_text(json.dumps(report, indent=2))
    write_plot(report, args.out / "quarter.png")
    write_markdown(report, args.out / "quarter.md")
    print((args.out / "quarter.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
