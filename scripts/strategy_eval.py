#!/usr/bin/env python3
"""Paired comparison of negotiation learners against fixed tactics (see agentmarket/strategies/evaluation.py).

Off chain (default): every strategy plays the same games (same own preferences, same counterparties with
the same tactics, preferences, private deadlines and rng streams); per seed the mean multi-issue utility;
the table gives, per opponent stratum, the mean and 95% t-interval of the per-seed difference
(learner - baseline) in utility points, and the relative gain as a ratio of means over seeds with a
delta-method 95% interval. Price-only utility beside it.

    python scripts/strategy_eval.py --seeds 30 --games 200
    python scripts/strategy_eval.py --onchain --seeds 30 --agents 8 --rounds 3   # embedded chain

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

from agentmarket.strategies import Terms
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
    from agentmarket.market import Market
    from agentmarket.sim.paired_negotiation import STRATEGIES, PairedNegotiated
    from agentmarket.sim.runner import ComputeMarketSim, SimConfig

    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    scores: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    price_scores: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    trades = 0
    started = time.perf_counter()
    for seed in seeds:
        for strategy in STRATEGIES:
            with Market.connect(args.chain) as market:
                cfg = SimConfig(agents=args.agents, rounds=args.rounds, mechanism="negotiated", seed=seed)
                sim = ComputeMarketSim(market, cfg)
                mech = PairedNegotiated(cfg.reference_price, seed, strategy)
                sim.mechanism = mech
                result = sim.run()
            traders = {sim.agents[t.index].address: t for t in [*sim.buyers, *sim.sellers]}
            adaptive = [t for t in traders.values() if t.strategy == "adaptive"]
            total = price_total = 0.0
            for rec in result.trades:  # only trades that settled on chain
                if rec.state != "ACCEPTED":
                    continue
                trades += 1
                for addr in (rec.buyer, rec.seller):
                    t = traders[addr]
                    if t.strategy != "adaptive":
                        continue
                    prefs = mech.preferences(t)
                    terms = Terms(rec.price, rec.delivery_seconds, rec.bond)
                    total += prefs.utility(terms)
                    price_total += prefs.price.score(rec.price)
            slots = len(adaptive) * args.rounds  # no trade in a round: reservation utility 0
            scores[strategy].append(total / slots)
            price_scores[strategy].append(price_total / slots)
        print(f"seed {seed}: " + " ".join(f"{s} {scores[s][-1]:.3f}" for s in STRATEGIES), file=sys.stderr)
    wall = time.perf_counter() - started
    lines = [
        f"On chain ({args.chain}), seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), {args.agents} agents x "
        f"{args.rounds} rounds, negotiated market, {trades} settled trades; wall {wall:.0f} s",
        "",
        "| metric | baseline | baseline mean | bayes - baseline [95% CI] | relative gain [95% CI] |",
        "|---|---|---|---|---|",
    ]
    doc: dict[str, Any] = {"seeds": seeds, "wall_seconds": wall, "trades": trades, "scores": scores}
    for metric, sc in (("utility", scores), ("price-only", price_scores)):
        fixed = list(FIXED_TACTICS)
        avg = [statistics.fmean(v) for v in zip(*(sc[f] for f in fixed), strict=True)]
        best = max(fixed, key=lambda f: statistics.fmean(sc[f]))
        for name, base in [*((f, sc[f]) for f in fixed), ("average", avg), (f"best:{best}", sc[best])]:
            c = paired_summary(sc["bayes"], base)
            lines.append(f"| {metric} | {name} | {c.mean_b:.3f} | " + _fmt(c).replace(" | ", " | ") + " |")
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
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
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
