#!/usr/bin/env python3
"""Paired comparison of negotiation learners against fixed tactics (see agentmarket/strategies/evaluation.py).

Off chain (default): every strategy plays the same games (same own preferences, same counterparties with
the same tactics, preferences, private deadlines and rng streams); per seed the mean multi-issue utility;
the table gives, per opponent stratum, the mean and 95% t-interval of the per-seed difference
(learner - baseline) in utility points, and the relative gain as a ratio of means over seeds with a
delta-method 95% interval. Price-only utility beside it.

    python scripts/strategy_eval.py --seeds 30 --games 200
    python scripts/strategy_eval.py --onchain --chain anvil --seeds 30 --agents 20 --rounds 10
    python scripts/strategy_eval.py --onchain --sim-offchain --agents 40 --rounds 5   # same market, no chain

On chain: the ``negotiated`` market (agreements are signed offers filled on chain, then settled in the
escrow) with the ``adaptive``-labelled traders playing each strategy in turn on the same seed (same values,
same pairings, same fixed counterparties); scored from the trades that settled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from agentmarket.strategies.evaluation import (
    FIXED_TACTICS,
    Comparison,
    compare,
    default_strategies,
    evaluate,
    paired_summary,
)

LEARNERS = ("bayes", "bandit")


def _fmt(c: Comparison) -> str:
    return (
        f"{c.diff:+.3f} [{c.diff_lo:+.3f}, {c.diff_hi:+.3f}] | "
        f"{c.rel * 100:+.1f}% [{c.rel_lo * 100:+.1f}, {c.rel_hi * 100:+.1f}]"
    )


def _table(title: str, rows: dict[str, dict[str, Comparison]], means: dict[str, float]) -> list[str]:
    out = [f"### {title}", "", "| baseline | baseline mean | " + " | ".join(rows) + " |"]
    out.append("|---|---|" + "---|" * len(rows))
    keys = list(next(iter(rows.values())))
    for k in keys:
        base = next(iter(rows.values()))[k].mean_b
        out.append(f"| {k} | {base:.3f} | " + " | ".join(_fmt(rows[lr][k]) for lr in rows) + " |")
    out.append("")
    out.append("learner means: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    out.append("")
    return out


def offchain(args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    started = time.perf_counter()
    runs = evaluate(
        default_strategies(args.discount),
        seeds,
        n_games=args.games,
        max_rounds=args.max_rounds,
        counterparties=args.counterparties,
        discount=args.discount,
    )
    wall = time.perf_counter() - started
    lines = [
        f"Off chain, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), {args.games} games/seed, "
        f"{args.max_rounds} rounds, {args.counterparties} counterparties/game, rematch discount "
        f"{args.discount}; wall {wall:.1f} s",
        "",
        "Cells: difference in mean utility (learner - baseline) [95% CI] | relative gain [95% CI]",
        "",
    ]
    doc: dict[str, Any] = {"seeds": seeds, "wall_seconds": wall, "strata": {}}
    for price in (False, True):
        for opp in (None, *FIXED_TACTICS):
            rows = {lr: compare(runs, lr, opponent=opp, price=price) for lr in LEARNERS}
            means = {lr: statistics.fmean(runs.seed_means(lr, opp, price)) for lr in LEARNERS}
            label = f"{'price-only' if price else 'multi-issue utility'}, opponents: {opp or 'all'}"
            lines += _table(label, rows, means)
            doc["strata"][label] = {lr: {k: vars(c) for k, c in r.items()} for lr, r in rows.items()}
    doc["markdown"] = "\n".join(lines)
    return doc


def onchain(args: argparse.Namespace) -> dict[str, Any]:
    """The paired market comparison on one deployed suite (fresh agents per run), or off chain with
    ``--sim-offchain`` (the same mechanism and scores; nothing settled)."""
    from contextlib import nullcontext

    from agentmarket.market import Market
    from agentmarket.sim.paired_negotiation import paired_market_scores

    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    started = time.perf_counter()
    where = "off chain (same mechanism, nothing settled)" if args.sim_offchain else f"on chain ({args.chain})"
    with nullcontext(None) if args.sim_offchain else Market.connect(args.chain) as market:
        res = paired_market_scores(seeds, args.agents, args.rounds, market=market, progress=True)
    wall = time.perf_counter() - started
    lines = [
        f"{where}, seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), {args.agents} agents x {args.rounds} "
        f"rounds, negotiated market; wall {wall:.0f} s",
        "",
        "| strategy | adaptive-side negotiations | agreements | settled on chain |",
        "|---|---|---|---|",
    ]
    for st in res.utility:
        lines.append(f"| {st} | {res.negotiations[st]} | {res.agreements[st]} | {res.settled[st]} |")
    lines += [
        "",
        "| metric | baseline | baseline mean | bayes - baseline [95% CI] | relative gain [95% CI] |",
        "|---|---|---|---|---|",
    ]
    doc: dict[str, Any] = {
        "seeds": seeds,
        "agents": args.agents,
        "rounds": args.rounds,
        "chain": None if args.sim_offchain else args.chain,
        "wall_seconds": wall,
        "scores": res.utility,
        "price_scores": res.price,
        "negotiations": res.negotiations,
        "agreements": res.agreements,
        "settled": res.settled,
    }
    for metric, sc in (("utility", res.utility), ("price-only", res.price)):
        fixed = list(FIXED_TACTICS)
        avg = [statistics.fmean(v) for v in zip(*(sc[f] for f in fixed), strict=True)]
        best = max(fixed, key=lambda f: statistics.fmean(sc[f]))
        for name, base in [*((f, sc[f]) for f in fixed), ("average", avg), (f"best:{best}", sc[best])]:
            c = paired_summary(sc["bayes"], base)
            lines.append(f"| {metric} | {name} | {c.mean_b:.3f} | " + _fmt(c) + " |")
            doc.setdefault(metric, {})[name] = vars(c)
    doc["markdown"] = "\n".join(lines)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--seed-base", type=int, default=101, help="first seed (1..4 were used for tuning)")
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--max-rounds", type=int, default=20)
    parser.add_argument("--counterparties", type=int, default=2)
    parser.add_argument("--discount", type=float, default=0.9)
    parser.add_argument("--onchain", action="store_true")
    parser.add_argument("--chain", default="embedded")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--sim-offchain", action="store_true", help="with --onchain: the same market, nothing settled"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    doc = onchain(args) if args.onchain else offchain(args)
    print(doc["markdown"])
    out = args.out or Path("out/strategy_eval_onchain.json" if args.onchain else "out/strategy_eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
