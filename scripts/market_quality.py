#!/usr/bin/env python3
"""Market-quality scenarios that the surveillance must catch, run on chain, screened from events only.

    python scripts/market_quality.py --scenario collusion --seeds 20      # Q-learning vs myopic pricing
    python scripts/market_quality.py --scenario rotation --seeds 10       # procurement ring vs competitive
    python scripts/market_quality.py --scenario exclusion --seeds 10      # fast vs slow takers

Each scenario runs the suspicious variant and its competitive control on the same seeds and reports the
flag rate of each (with a 95% Wilson interval), per-run figures, and writes JSON + PNG to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.deploy import deploy_suite
from agentmarket.surveillance.metrics import mean_ci95


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (good at 0 and n, unlike the normal interval)."""
    if n == 0:
        return (0.0, 1.0)
    z = 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rates(rows: Sequence[Any], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in (True, False):
        runs = [r for r in rows if getattr(r, key) is variant]
        k = sum(1 for r in runs if r.flagged)
        out["suspect" if variant else "control"] = {
            "runs": len(runs),
            "flagged": k,
            "rate": k / len(runs) if runs else 0.0,
            "rate_ci95": wilson(k, len(runs)),
        }
    return out


def collusion(suite: Any, seeds: list[int], periods: int) -> dict[str, Any]:
    from agentmarket.sim.collusion import run_collusion

    a = suite.chain.accounts
    firms, buyers = (a[1], a[2]), list(a[3:9])
    rows = run_collusion(suite, firms, buyers, seeds, collusive=True, periods=periods)
    rows += run_collusion(suite, firms, buyers, seeds, collusive=False, periods=periods)
    myopic = run_collusion(suite, firms, buyers, seeds, collusive=False, control="myopic_q", periods=periods)
    summary = _rates(rows, "collusive")
    summary["myopic_q"] = _rates(myopic, "collusive")["control"]
    for name, group in (
        ("suspect", [r for r in rows if r.collusive]),
        ("control", [r for r in rows if not r.collusive]),
        ("myopic_q", myopic),
    ):
        summary[name]["profit_gain"] = mean_ci95([r.profit_gain for r in group])
        summary[name]["onchain_profit_gain"] = mean_ci95([r.onchain_profit_gain for r in group])
    return {"rows": [asdict(r) for r in rows + myopic], "summary": summary}


def rotation(suite: Any, seeds: list[int], auctions: int) -> dict[str, Any]:
    from agentmarket.sim.rotation import run_rotation

    a = suite.chain.accounts

    def run(seed: int, ring: bool) -> Any:
        return run_rotation(
            suite, a[1], list(a[2:6]), seed, ring=ring, auctions=auctions, arbiter=a[9].address
        )

    rows = [run(s, True) for s in seeds] + [run(s, False) for s in seeds]
    summary = _rates(rows, "ring")
    for name, variant in (("suspect", True), ("control", False)):
        summary[name]["price_over_cost"] = mean_ci95(
            [r.mean_price_over_cost for r in rows if r.ring is variant]
        )
    return {"rows": [asdict(r) for r in rows], "summary": summary}


def exclusion(suite: Any, seeds: list[int], rounds: int) -> dict[str, Any]:
    from agentmarket.sim.exclusion import run_exclusion

    rows = [run_exclusion(suite, s, rounds=rounds, mechanism=m) for s in seeds for m in ("offers", "call")]
    summary: dict[str, Any] = {}
    for mech in ("offers", "call"):
        runs = [r for r in rows if r.mechanism == mech]
        if not runs:
            continue
        summary[mech] = {
            "runs": len(runs),
            "flagged": sum(r.flagged for r in runs),
            "small_fill_rate": mean_ci95([r.small_fill_rate for r in runs]),
            "large_fill_rate": mean_ci95([r.large_fill_rate for r in runs]),
            "buyer_hhi": mean_ci95([r.buyer_hhi for r in runs]),
            "efficiency": mean_ci95([r.efficiency for r in runs]),
        }
    return {"rows": [asdict(r) for r in rows], "summary": summary}


def plot(scenario: str, result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    summary = result["summary"]
    names = list(summary)
    if scenario == "exclusion":
        for i, key in enumerate(("small_fill_rate", "large_fill_rate")):
            means = [summary[n][key][0] for n in names]
            err = [[m - summary[n][key][1] for n, m in zip(names, means, strict=True)],
                   [summary[n][key][2] - m for n, m in zip(names, means, strict=True)]]  # fmt: skip
            ax.bar(
                [x + 0.4 * i for x in range(len(names))], means, 0.4, yerr=err, label=key.replace("_", " ")
            )
        ax.set_xticks([x + 0.2 for x in range(len(names))], names)
        ax.set_ylabel("fill rate (mean, 95% CI)")
        ax.legend()
    else:
        rates = [summary[n]["rate"] for n in names]
        lo = [r - summary[n]["rate_ci95"][0] for n, r in zip(names, rates, strict=True)]
        hi = [summary[n]["rate_ci95"][1] - r for n, r in zip(names, rates, strict=True)]
        ax.bar(names, rates, yerr=[lo, hi], color=["tab:red", "tab:blue", "tab:gray"][: len(names)])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("share of runs flagged (95% Wilson CI)")
    ax.set_title(f"surveillance: {scenario}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=("collusion", "rotation", "exclusion"), required=True)
    parser.add_argument("--seeds", type=int, default=20, help="runs of each variant (seeds 1..N)")
    parser.add_argument("--periods", type=int, default=6, help="collusion: measured periods on chain")
    parser.add_argument("--auctions", type=int, default=10, help="rotation: procurement auctions per run")
    parser.add_argument("--rounds", type=int, default=4, help="exclusion: rounds per run")
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    args = parser.parse_args(argv)
    console = Console()
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=chain.kind == "rpc")
        if args.scenario == "collusion":
            result = collusion(suite, seeds, args.periods)
        elif args.scenario == "rotation":
            result = rotation(suite, seeds, args.auctions)
        else:
            result = exclusion(suite, seeds, args.rounds)
    result["seconds"] = time.perf_counter() - started
    result["chain"] = args.chain
    out_json = args.out / f"market_quality_{args.scenario}.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2, default=str))
    plot(args.scenario, result, args.out / f"market_quality_{args.scenario}.png")
    t = Table(
        title=f"{args.scenario}: {args.seeds} seeds per variant, {result['seconds']:.0f} s on {args.chain}"
    )
    t.add_column("variant")
    t.add_column("figures")
    for name, s in result["summary"].items():
        t.add_row(name, json.dumps(s, default=lambda x: round(x, 3) if isinstance(x, float) else str(x)))
    console.print(t)
    console.print(f"wrote {out_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
