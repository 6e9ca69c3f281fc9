"""Reports of simulation runs: a rich table, a JSON file and a PNG figure (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import SimResult
from .stats import mean_ci95


def label(result: SimResult) -> str:
    cfg = result.config
    name = str(cfg["mechanism"])
    if cfg.get("order") == "random" and name in AUCTIONS:
        name += " (random order)"
    if cfg["shock"]:
        model = cfg.get("shock_model") or {}
        shape = model.get("shape", "step") if isinstance(model, dict) else "step"
        name += f" +shock({shape})" + (" +guardrails" if cfg["guardrails"] else "")
    return name


AUCTIONS = ("english", "dutch", "sealed", "vickrey", "procurement")
SHOCK_FIELDS = (
    "efficiency_fundamental",
    "peak_round_dev_current",
    "peak_round_dev_preshock",
    "peak_trade_dev_current",
    "peak_trade_dev_preshock",
)


def groups(results: Sequence[SimResult]) -> dict[str, list[SimResult]]:
    """Runs grouped by label (one group = one mechanism and scenario over its seeds), in input order."""
    out: dict[str, list[SimResult]] = {}
    for r in results:
        out.setdefault(label(r), []).append(r)
    return out


def _per_seed(r: SimResult) -> dict[str, Any]:
    return {
        "seed": r.config["seed"],
        "efficiency": r.efficiency,
        "efficiency_records": r.efficiency_records,
        "events_match": r.events_match,
        "efficiency_fundamental": r.efficiency_fundamental,
        "trades": len(r.trades),
        "breaker_fired": r.breaker_fired,
        "relay_posted": r.relay_posted,
        "relay_discovered": r.relay_discovered,
        "peak_round_dev_current": r.peak_round_dev_current,
        "peak_round_dev_preshock": r.peak_round_dev_preshock,
        "peak_trade_dev_current": r.peak_trade_dev_current,
        "peak_trade_dev_preshock": r.peak_trade_dev_preshock,
        "peak_value_multiplier": r.peak_value_multiplier,
        "gas_per_trade": r.gas_per_trade,
        "trades_per_second": r.trades_per_second,
        "wall_seconds": r.wall_seconds,
        "solvent": r.solvent,
        "all_settled": r.all_settled,
    }


def summarise(results: Sequence[SimResult]) -> list[dict[str, Any]]:
    """One entry per group: mean and 95% t-interval over its seeds, and every seed's figures."""
    out = []
    for name, runs in groups(results).items():
        first = runs[0]
        eff, ci = mean_ci95([r.efficiency for r in runs])
        entry: dict[str, Any] = {
            "run": name,
            "mechanism": first.config["mechanism"],
            "order": first.config.get("order"),
            "shock": first.config["shock"],
            "guardrails": first.config["guardrails"],
            "chain": first.chain,
            "agents": first.config["agents"],
            "rounds": first.config["rounds"],
            "seeds": len(runs),
            "efficiency_mean": eff,
            "efficiency_ci95": list(ci),
            "efficiency": eff,
            "efficiency_source": "escrow events" if first.chain != "none" else "off-chain records",
            "events_match": all(r.events_match for r in runs),
            "trades": sum(len(r.trades) for r in runs),
            "reference_equilibrium_wei": first.reference_equilibrium,
            "max_price_deviation": max(r.max_price_deviation for r in runs),
            "max_round_deviation": max(r.max_round_deviation for r in runs),
            "adaptive_gain": first.adaptive_gain if len(runs) == 1 else None,
            "gas_per_trade": statistics.fmean(r.gas_per_trade for r in runs),
            "trades_per_second": statistics.fmean(r.trades_per_second for r in runs),
            "settle_seconds": sum(r.settle_seconds for r in runs),
            "wall_seconds": sum(r.wall_seconds for r in runs),
            "solvent": all(r.solvent for r in runs),
            "all_settled": all(r.all_settled for r in runs),
            "refused_by_mandate": sum(r.refused_by_mandate for r in runs),
            "paused_rounds": sum(r.paused_rounds for r in runs),
            "auction_residual_wei": sum(r.auction_residual for r in runs),
        }
        if first.config["shock"]:
            entry["breaker_fired"] = sum(1 for r in runs if r.breaker_fired)  # seeds in which it fired
            entry["breaker_fired_total"] = sum(r.breaker_fired for r in runs)
            entry["peak_value_multiplier"] = statistics.fmean(r.peak_value_multiplier for r in runs)
            for key in SHOCK_FIELDS:
                m, c = mean_ci95([float(getattr(r, key)) for r in runs])
                entry[key] = m
                entry[f"{key}_ci95"] = list(c)
        entry["per_seed"] = [_per_seed(r) for r in runs]
        out.append(entry)
    return out


def _ci(entry: dict[str, Any], key: str = "efficiency") -> str:
    lo, hi = entry[f"{key}_ci95"]
    m = entry[f"{key}_mean"] if f"{key}_mean" in entry else entry[key]
    return f"{m * 100:.1f}% ± {(hi - lo) / 2 * 100:.1f}"


def seeds_table(summary: Sequence[dict[str, Any]]) -> Any:
    """A :class:`rich.table.Table` with one row per group: mean ± half-width of the 95% t-interval."""
    from rich.table import Table

    t = Table(title="efficiency over seeds: mean ± 95% CI half-width (t-interval)")
    for col in (
        "run",
        "seeds",
        "efficiency",
        "fundamental",
        "round dev / CE now",
        "round dev / pre",
        "breaker",
    ):
        t.add_column(col, justify="left" if col == "run" else "right")
    for e in summary:
        shock = e["shock"]
        t.add_row(
            e["run"],
            str(e["seeds"]),
            _ci(e),
            _ci(e, "efficiency_fundamental") if shock else "",
            _ci(e, "peak_round_dev_current") if shock else "",
            _ci(e, "peak_round_dev_preshock") if shock else "",
            f"{e['breaker_fired']}/{e['seeds']} seeds" if shock else "",
        )
    return t


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
    """``summary``: one entry per mechanism/scenario (mean, 95% CI, every seed's figures); ``runs``: every
    run's rounds (and its trades, for up to 3 runs per group)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    runs = []
    for group in groups(results).values():
        for r in group:
            d = r.as_dict()
            if len(group) > 3:
                d.pop("trades")
            runs.append(d)
    doc = {"summary": summary, "runs": runs, **(extra or {})}
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path


def write_png(results: Sequence[SimResult], path: Path) -> Path:
    """Per run: trade prices per round against the competitive-equilibrium band; surplus by strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(results)
    shown = [g[0] for g in groups(results).values()]  # prices: the first seed of each group
    n = len(shown) + 1
    fig, axes = plt.subplots(
        n, 2, figsize=(12, 3.2 * n), squeeze=False, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    cx = axes[0][0]
    means = [e["efficiency_mean"] * 100 for e in summary]
    errs = [
        [(e["efficiency_mean"] - e["efficiency_ci95"][0]) * 100 for e in summary],
        [(e["efficiency_ci95"][1] - e["efficiency_mean"]) * 100 for e in summary],
    ]
    cx.bar(range(len(summary)), means, yerr=errs, capsize=4, color="tab:blue", alpha=0.7)
    cx.set_xticks(range(len(summary)), [f"{e['run']}\n(n={e['seeds']})" for e in summary], fontsize=7)
    cx.set_ylim(max(0.0, min(means, default=0) - 15), 101)
    cx.set_ylabel("efficiency % (mean, 95% CI)")
    cx.set_title("allocative efficiency over seeds (error bars: 95% t-interval)", fontsize=9)
    axes[0][1].axis("off")
    for row, r in enumerate(shown, start=1):
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
            ax.plot(*zip(*means, strict=True), color="tab:blue", marker="o", lw=1.5, label="mean price")
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
        if row == 1:
            ax.legend(fontsize=7, loc="upper left")
        bars = [
            (role, strat)
            for role in ("buyer", "provider")
            for strat in ("adaptive", "fixed")
            if strat in r.utility.get(role, {})
        ]
        vals = [r.utility[role][strat] / 1e15 for role, strat in bars]
        colors = ["tab:orange" if s == "adaptive" else "tab:gray" for _, s in bars]
        bx.bar([f"{role}\n{strat}" for role, strat in bars], vals, color=colors)
        bx.set_title("surplus per agent-round by strategy (mETH)", fontsize=9)
        bx.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
