#!/usr/bin/env python3
"""Plots of the paired market comparison (JSON written by ``scripts/strategy_eval.py --onchain``).

    python scripts/strategy_plot.py out/se_anvil_20x10.json --sweep out/se_off_*.json --out docs/strategies

Writes ``paired_onchain.png`` (per-seed differences learner - baseline and their mean with the 95% CI, on
multi-issue utility and on price only) and, with ``--sweep``, ``market_size.png`` (the relative gain over
the best fixed tactic and over the fixed tactics' average with 95% CIs, per market size).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

BASELINES = ("boulware", "linear", "conceder", "tit-for-tat", "average")


def _per_seed(doc: dict[str, Any], key: str, base: str) -> list[float]:
    sc = doc[key]
    if base == "average":
        fixed = [sc[b] for b in BASELINES[:-1]]
        ref = [statistics.fmean(v) for v in zip(*fixed, strict=True)]
    else:
        ref = sc[base]
    return [a - b for a, b in zip(sc["bayes"], ref, strict=True)]


def paired_png(doc: dict[str, Any], path: Path) -> Path:
    """Per-seed differences (dots) and mean with 95% CI (bars), utility and price-only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, (key, metric) in zip(axes, (("scores", "utility"), ("price_scores", "price-only")), strict=True):
        for i, base in enumerate(BASELINES):
            diffs = _per_seed(doc, key, base)
            ax.scatter([i + 0.15 * ((k % 7) - 3) / 3 for k in range(len(diffs))], diffs, s=10, alpha=0.5)
            c = doc[metric][base]
            ax.errorbar(
                [i],
                [c["diff"]],
                yerr=[[c["diff"] - c["diff_lo"]], [c["diff_hi"] - c["diff"]]],
                fmt="ko",
                capsize=8,
            )
            ax.annotate(
                f"{c['rel'] * 100:+.1f}%",
                (i, c["diff_hi"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(BASELINES)), BASELINES)
        ax.set_title(f"{metric}: learner - baseline per seed, mean (95% CI)")
    axes[0].set_ylabel("difference per adaptive trader-round")
    where = doc["chain"] or "off chain"
    fig.suptitle(
        f"paired negotiated market, {doc['agents']} agents x {doc['rounds']} rounds, "
        f"{len(doc['seeds'])} seeds ({where})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_png(docs: list[dict[str, Any]], path: Path) -> Path:
    """Relative gain (95% CI) over the best fixed tactic and over the average, per market size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = sorted(docs, key=lambda d: (d["agents"] * d["rounds"], d["agents"]))
    labels = [f"{d['agents']}x{d['rounds']}" for d in docs]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, which in zip(axes, ("best", "average"), strict=True):
        for off, metric in ((-0.1, "utility"), (0.1, "price-only")):
            cells = [next(v for k, v in d[metric].items() if k.startswith(which)) for d in docs]
            xs = [i + off for i in range(len(docs))]
            ys = [100 * c["rel"] for c in cells]
            err = [
                [100 * (c["rel"] - c["rel_lo"]) for c in cells],
                [100 * (c["rel_hi"] - c["rel"]) for c in cells],
            ]
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=5, label=metric)
        ax.axhline(0, color="grey", lw=0.8)
        if which == "average":
            ax.axhline(30, color="red", lw=0.8, ls="--", label="target +30%")
        ax.set_xticks(range(len(docs)), labels)
        ax.set_xlabel("agents x rounds per seed")
        ax.set_ylabel("relative gain of the learner (%)")
        ax.set_title(f"over the {'best fixed tactic' if which == 'best' else 'fixed tactics average'}")
        ax.legend(fontsize=8)
    fig.suptitle(f"market size, seeds {docs[0]['seeds'][0]}..{docs[0]['seeds'][-1]}, 95% CIs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paired", type=Path, help="JSON of one --onchain run")
    parser.add_argument("--sweep", type=Path, nargs="*", default=[], help="JSONs of runs of several sizes")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(paired_png(json.loads(args.paired.read_text()), args.out / "paired_onchain.png"))
    if args.sweep:
        print(sweep_png([json.loads(p.read_text()) for p in args.sweep], args.out / "market_size.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
