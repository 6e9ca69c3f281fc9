"""Reports of simulation runs: a rich table, a JSON file and a PNG figure (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import SimResult

ETH = 10**18


def label(result: SimResult) -> str:
    cfg = result.config
    name = str(cfg["mechanism"])
    if cfg["shock"]:
        name += " +shock" + (" +guardrails" if cfg["guardrails"] else "")
    return name


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:+.1f}%"


def table(results: Sequence[SimResult]) -> Any:
    """A :class:`rich.table.Table` with one row per run."""
    from rich.table import Table

    t = Table(title="agentmarket compute market (prices in milli-ETH per GPU-hour)")
    for col in (
        "run",
        "trades",
        "effic.",
        "CE",
        "mean",
        "max dev",
        "adapt. gain buyers",
        "adapt. gain providers",
        "gas/trade",
        "trades/s",
        "refused/paused",
        "settled+solvent",
    ):
        t.add_column(col, justify="right" if col not in ("run",) else "left")
    for r in results:
        prices = [t.price for t in r.trades]
        mean = sum(prices) / len(prices) if prices else 0
        t.add_row(
            label(r),
            str(len(r.trades)),
            f"{r.efficiency * 100:.1f}%",
            f"{r.reference_equilibrium / 1e15:.2f}",
            f"{mean / 1e15:.2f}",
            f"{r.max_price_deviation * 100:.0f}%",
            _pct(r.adaptive_gain.get("buyer")),
            _pct(r.adaptive_gain.get("provider")),
            f"{r.gas_per_trade:,.0f}",
            f"{r.trades_per_second:.1f}",
            f"{r.refused_by_mandate}/{r.paused_rounds}",
            "yes" if r.solvent and r.all_settled else "NO",
        )
    return t


def write_json(results: Sequence[SimResult], path: Path, extra: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = [
        {
            "run": label(r),
            "mechanism": r.config["mechanism"],
            "shock": r.config["shock"],
            "guardrails": r.config["guardrails"],
            "chain": r.chain,
            "trades": len(r.trades),
            "efficiency": r.efficiency,
            "reference_equilibrium_wei": r.reference_equilibrium,
            "max_price_deviation": r.max_price_deviation,
            "adaptive_gain": r.adaptive_gain,
            "mean_utility_wei_per_agent_round": r.utility,
            "gas_per_trade": r.gas_per_trade,
            "txs_per_trade": r.txs_per_trade,
            "trades_per_second": r.trades_per_second,
            "settle_seconds": r.settle_seconds,
            "wall_seconds": r.wall_seconds,
            "solvent": r.solvent,
            "all_settled": r.all_settled,
            "refused_by_mandate": r.refused_by_mandate,
            "paused_rounds": r.paused_rounds,
            "max_round_deviation": r.max_round_deviation,
            "auction_residual_wei": r.auction_residual,
        }
        for r in results
    ]
    doc = {"summary": summary, "runs": [r.as_dict() for r in results], **(extra or {})}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path


def write_png(results: Sequence[SimResult], path: Path) -> Path:
    """Per run: trade prices per round against the competitive-equilibrium band; surplus by strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(
        n, 2, figsize=(12, 3.2 * n), squeeze=False, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    for row, r in enumerate(results):
        ax, bx = axes[row]
        rounds = [s.round + 1 for s in r.rounds]
        ax.fill_between(
            rounds,
            [s.equilibrium_low / 1e15 for s in r.rounds],
            [s.equilibrium_high / 1e15 for s in r.rounds],
            step="mid",
            alpha=0.25,
            color="tab:green",
            label="competitive equilibrium band",
        )
        ax.axhline(
            r.reference_equilibrium / 1e15, color="tab:green", lw=0.8, ls="--", label="pre-shock equilibrium"
        )
        xs = [t.round + 1 for t in r.trades]
        ax.scatter(
            xs, [t.price / 1e15 for t in r.trades], s=10, alpha=0.5, color="tab:blue", label="trade prices"
        )
        means = [(s.round + 1, s.mean_price / 1e15) for s in r.rounds if s.mean_price is not None]
        if means:
            ax.plot(*zip(*means), color="tab:blue", marker="o", lw=1.5, label="mean price")
        for s in r.rounds:
            if s.shocked:
                ax.axvspan(s.round + 0.5, s.round + 1.5, color="tab:red", alpha=0.08)
        ax.set_title(
            f"{label(r)}: efficiency {r.efficiency * 100:.1f}%, max deviation "
            f"{r.max_price_deviation * 100:.0f}%",
            fontsize=9,
        )
        ax.set_xlabel("round")
        ax.set_ylabel("price (mETH / GPU-hour)")
        if row == 0:
            ax.legend(fontsize=7, loc="upper left")
        groups = [
            (role, strat)
            for role in ("buyer", "provider")
            for strat in ("adaptive", "fixed")
            if strat in r.utility.get(role, {})
        ]
        vals = [r.utility[role][strat] / 1e15 for role, strat in groups]
        colors = ["tab:orange" if s == "adaptive" else "tab:gray" for _, s in groups]
        bx.bar([f"{role}\n{strat}" for role, strat in groups], vals, color=colors)
        bx.set_title("surplus per agent-round by strategy (mETH)", fontsize=9)
        bx.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
