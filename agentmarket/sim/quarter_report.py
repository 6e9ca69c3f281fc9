"""Summaries, plot and markdown report of quarterly procurement runs (:mod:`agentmarket.sim.quarter`).

Comparisons are paired per seed (same providers, demand and delivery outcomes): the mean of the per-seed
difference between the assistant and each baseline, with its 95% t-interval.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..surveillance.metrics import mean_ci95
from .quarter import POLICIES

__all__ = ["summarise", "write_markdown", "write_plot"]

METRICS = (
    ("cost_per_hour", "cost per delivered GPU-hour (x reference price)"),
    ("cost_per_useful_hour", "cost per useful GPU-hour: on time and within the week's demand (x ref)"),
    ("delivered_hours", "GPU-hours delivered"),
    ("missed_hours", "SLA-missed GPU-hours (demand not delivered by the promised time)"),
    ("sla_miss_weeks", "weeks under 95% of demand on time"),
    ("sla_missed_deals", "deals late, short or failed"),
    ("spend_eth", "spend (ETH)"),
    ("recovered_eth", "recovered: refunds + late penalties + dispute returns (ETH)"),
    ("auctions", "procurement auctions held"),
    ("auction_sales", "procurement auctions that sold"),
    ("auction_hours", "GPU-hours bought through procurement auctions"),
    ("negotiated_hours", "GPU-hours bought at negotiated prices"),
    ("rematch_hours", "GPU-hours re-bought within the week after a delivery failed to arrive"),
)


def _value(policy: dict[str, Any], key: str) -> float:
    if key == "spend_eth":
        return float(policy["spend_wei"]) / 1e18
    if key == "recovered_eth":
        return float(policy["recovered_wei"]) / 1e18
    if key == "cost_per_useful_hour" and "cost_per_useful_hour" not in policy:
        return float("nan")  # runs made before the figure existed
    return float(policy.get(key, 0))  # the auction counts are absent from runs made before auctions


def summarise(runs: list[dict[str, Any]], *, chain: str, wall_seconds: float, command: str) -> dict[str, Any]:
    """Per-policy means with CIs, and paired differences agent - baseline (relative for cost)."""
    table: dict[str, dict[str, list[float]]] = {}
    for key, _ in METRICS:
        table[key] = {}
        for name in POLICIES:
            vals = [_value(r["policies"][name], key) for r in runs]
            table[key][name] = list(mean_ci95(vals))
    paired: dict[str, dict[str, list[float]]] = {}
    for base in POLICIES[1:]:

        def pct(key: str, base: str = base) -> list[float]:
            return [
                100.0 * (_value(r["policies"]["agent"], key) / _value(r["policies"][base], key) - 1)
                for r in runs
            ]

        def diff(key: str, base: str = base) -> list[float]:
            return [_value(r["policies"]["agent"], key) - _value(r["policies"][base], key) for r in runs]

        paired[base] = {
            "cost_per_hour_pct": list(mean_ci95(pct("cost_per_hour"))),
            "cost_per_useful_hour_pct": list(mean_ci95(pct("cost_per_useful_hour"))),
            "missed_hours": list(mean_ci95(diff("missed_hours"))),
            "delivered_hours": list(mean_ci95(diff("delivered_hours"))),
            "spend_pct": list(mean_ci95(pct("spend_eth"))),
            "sla_miss_weeks": list(mean_ci95(diff("sla_miss_weeks"))),
        }
    met = all(
        paired[b]["cost_per_hour_pct"][2] < 0 and paired[b]["missed_hours"][2] < 0 for b in POLICIES[1:]
    )
    return {
        "command": command,
        "chain": chain,
        "seeds": len(runs),
        "weeks": runs[0]["weeks"] if runs else 0,
        "providers": runs[0]["providers"] if runs else 0,
        "wall_seconds": wall_seconds,
        "seconds_per_seed": [r["seconds"] for r in runs],
        "metrics": table,
        "paired": paired,
        "target_met": met,
        "runs": runs,
    }


def _fmt(m: list[float], digits: int = 3) -> str:
    mean, lo, hi = m
    return f"{mean:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """The report a user of the assistant reads: figures with CIs, the paired differences, the verdict."""
    lines = [
        "# Quarterly procurement assistant",
        "",
        f"`{report['command']}` — {report['seeds']} seeds x {report['weeks']} weeks, "
        f"{report['providers']} providers, chain `{report['chain']}`, wall time {report['wall_seconds']:.0f} s "
        f"({min(report['seconds_per_seed'], default=0):.0f}-{max(report['seconds_per_seed'], default=0):.0f} s per seed).",
        "",
        "Mean over seeds (95% CI). Every figure of money comes from the escrow's events.",
        "",
        "| metric | " + " | ".join(POLICIES) + " |",
        "|---|" + "---|" * len(POLICIES),
    ]
    for key, label in METRICS:
        digits = 3 if key in ("cost_per_hour", "cost_per_useful_hour", "spend_eth", "recovered_eth") else 1
        cells = [_fmt(report["metrics"][key][n], digits) for n in POLICIES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired differences, assistant minus baseline (mean, 95% CI); negative is better for the assistant:",
        "",
        "| baseline | cost per delivered GPU-hour (%) | SLA-missed GPU-hours | GPU-hours delivered | "
        "cost per useful GPU-hour (%) | spend (%) | weeks under 95% on time |",
        "|---|---|---|---|---|---|---|",
    ]
    for base, d in report["paired"].items():
        cells = [
            _fmt(d["cost_per_hour_pct"], 1),
            _fmt(d["missed_hours"], 1),
            _fmt(d.get("delivered_hours", [math.nan] * 3), 1),
            _fmt(d.get("cost_per_useful_hour_pct", [math.nan] * 3), 1),
            _fmt(d.get("spend_pct", [math.nan] * 3), 1),
            _fmt(d["sla_miss_weeks"], 2),
        ]
        lines.append(f"| {base} | " + " | ".join(cells) + " |")
    verdict = (
        "met: the assistant's cost per delivered GPU-hour and its SLA-missed hours are both below each "
        "baseline's, with the 95% CI of the paired difference below zero"
        if report["target_met"]
        else "NOT met for every baseline and metric: see the rows whose interval reaches zero or above"
    )
    lines += ["", f"Target: {verdict}.", "", "![quarter](quarter.png)", ""]
    path.write_text("\n".join(lines))
    return path


def write_plot(report: dict[str, Any], path: Path) -> Path:
    """Cost per delivered GPU-hour by week (mean over seeds) and the per-seed paired differences."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for name in POLICIES:
        weeks = len(runs[0]["policies"][name]["weekly_cost_per_hour"]) if runs else 0
        means = []
        for w in range(weeks):
            vals = [r["policies"][name]["weekly_cost_per_hour"][w] for r in runs]
            vals = [v for v in vals if not math.isnan(v)]
            means.append(sum(vals) / len(vals) if vals else float("nan"))
        ax.plot(range(1, weeks + 1), means, marker="o", label=name)
    ax.set_xlabel("week")
    ax.set_ylabel("cost per delivered GPU-hour (x ref)")
    ax.set_title("weekly cost, mean over seeds")
    ax.legend()
    for ax, key, label in (
        (axes[1], "cost_per_hour", "cost per delivered GPU-hour"),
        (axes[2], "missed_hours", "SLA-missed GPU-hours"),
    ):
        for i, name in enumerate(POLICIES):
            vals = [float(r["policies"][name][key]) for r in runs]
            ax.scatter([i + 0.08 * (k % 5 - 2) for k in range(len(vals))], vals, s=12, alpha=0.6)
            m, lo, hi = report["metrics"][key][name]
            ax.errorbar([i], [m], yerr=[[m - lo], [hi - m]], fmt="k_", capsize=8, markersize=20)
        ax.set_xticks(range(len(POLICIES)), POLICIES)
        ax.set_title(f"{label}: seeds and mean (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
