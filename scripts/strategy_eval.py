#!/usr/bin/env python3
"""Adaptive vs fixed strategies over several seeds, off chain (pure-Python clearing, no gas), so many
rounds are cheap. Reports, per mechanism and strategic role, the mean and range over seeds of
(adaptive - fixed) / |fixed| mean utility, plus allocative efficiency.

    python scripts/strategy_eval.py --seeds 5 --rounds 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentmarket.sim import MECHANISMS, SimConfig
from agentmarket.sim.runner import OffChainSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N")
    parser.add_argument("--mechanism", default="all")
    parser.add_argument("--out", type=Path, default=Path("out/strategy_eval.json"))
    args = parser.parse_args(argv)
    mechanisms = list(MECHANISMS) if args.mechanism == "all" else args.mechanism.split(",")
    table = Table(
        title=f"adaptive vs fixed, {args.agents} agents x {args.rounds} rounds, seeds 1..{args.seeds}"
    )
    for col in ("mechanism", "role", "gain mean", "gain min", "gain max", "per seed", "efficiency mean"):
        table.add_column(col)
    doc: dict[str, object] = {
        "agents": args.agents,
        "rounds": args.rounds,
        "seeds": args.seeds,
        "results": {},
    }
    for mech in mechanisms:
        runs = [
            OffChainSim(SimConfig(agents=args.agents, rounds=args.rounds, mechanism=mech, seed=s)).run()
            for s in range(1, args.seeds + 1)
        ]
        eff = statistics.fmean(r.efficiency for r in runs)
        entry: dict[str, object] = {"efficiency": [r.efficiency for r in runs]}
        for role in ("buyer", "provider"):
            gains = [r.adaptive_gain.get(role) for r in runs]
            if any(g is None for g in gains):
                continue
            vals = [float(g) for g in gains if g is not None]
            entry[role] = vals
            table.add_row(
                mech,
                role,
                f"{statistics.fmean(vals) * 100:+.0f}%",
                f"{min(vals) * 100:+.0f}%",
                f"{max(vals) * 100:+.0f}%",
                " ".join(f"{v * 100:+.0f}" for v in vals),
                f"{eff * 100:.1f}%",
            )
        doc["results"][mech] = entry  # type: ignore[index]
    Console(width=160).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
