"""The surveillance report: per resource and window, markups, concentration, bid rotation and exclusion
screens with flags, rendered as JSON, markdown, HTML and a plot.

Inputs are the chain's events (:func:`~agentmarket.surveillance.events.read_events`) plus, optionally,
what only a simulator or a regulator with cost data knows (:class:`Benchmarks`): marginal costs, the
competitive price, private values. Screens that need a benchmark say so in the report instead of
guessing one.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .events import ChainEvent, orders_from_events, trades_from_events
from .metrics import bid_independence, concentration, cover_bid_gaps, lerner, rotation_stats

__all__ = ["Benchmarks", "Flag", "SurveillanceReport", "Thresholds", "surveil_events"]


@dataclass(frozen=True)
class Benchmarks:
    """What the chain does not show. All optional; keys of the mappings are resource ids (hex strings)
    or addresses (checksummed) as they appear in the events."""

    competitive_price: Mapping[str, float] = field(default_factory=dict)  # per resource, per unit
    marginal_cost: Mapping[str, float] = field(default_factory=dict)  # per seller address, per unit
    procurement_costs: Sequence[Mapping[str, int]] | None = None  # per procurement auction, per provider
    intramarginal: Mapping[str, bool] = field(default_factory=dict)  # per agent: should trade at equilibrium
    demand: Mapping[str, int] = field(default_factory=dict)  # per agent: intramarginal units it wanted
    capacity: Mapping[str, int] = field(default_factory=dict)  # per agent: its size (units per round)
    mandate_refusals: Mapping[str, int] = field(default_factory=dict)  # per agent (off-chain count)


@dataclass(frozen=True)
class Thresholds:
    """When a screen raises a flag. Defaults and their reasons are in docs/surveillance.md."""

    band: float = 0.10  # a trade is "above the competitive band" at > competitive price * (1 + band)
    markup_share: float = 0.50  # flag supracompetitive pricing when this share of volume is above it
    min_trades: int = 5  # no pricing flag on fewer trades
    hhi: float = 2_500.0  # flag concentration above this HHI ...
    cr4: float = 0.90  # ... or this four-firm share
    rotation_regularity: float = 0.85  # flag rotation when winners rotate this regularly ...
    min_auctions: int = 8  # ... over at least this many procurement auctions
    cover_gap: float = 0.02  # a runner-up within 2% of the winner looks like a cover bid ...
    cover_share: float = 0.60  # ... and flag when this share of auctions has one
    independence_p: float = 0.01  # a pair's residual correlation significant below this p-value
    latency_share: float = 0.50  # flag speed dominance when the fastest quarter of takers wins this share
    small_fill_ratio: float = 0.50  # flag exclusion when small agents' fill rate < this x large agents'


@dataclass(frozen=True)
class Flag:
    """A screen that fired: what, where, the figure and the threshold it crossed."""

    screen: str
    scope: str
    value: float
    threshold: float
    detail: str


@dataclass
class SurveillanceReport:
    """Figures and flags for one window of blocks."""

    from_block: int
    to_block: int
    pricing: dict[str, dict[str, Any]] = field(default_factory=dict)  # per resource
    concentration: dict[str, dict[str, float]] = field(default_factory=dict)  # per resource (sellers)
    rotation: dict[str, Any] = field(default_factory=dict)  # procurement
    exclusion: dict[str, Any] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)

    def flagged(self, screen: str | None = None) -> bool:
        return any(screen is None or f.screen == screen for f in self.flags)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = [asdict(f) for f in self.flags]
        return d

    def to_markdown(self) -> str:
        lines = [f"# Market surveillance, blocks {self.from_block} to {self.to_block}", ""]
        lines += ["## Flags", ""]
        if not self.flags:
            lines.append("No screen fired.")
        for f in self.flags:
            lines.append(
                f"- **{f.screen}** ({f.scope}): {f.value:.4g} vs threshold {f.threshold:.4g}: {f.detail}"
            )
        lines += ["", "## Pricing per resource", ""]
        lines.append("| resource | trades | VWAP | Lerner | above band | benchmark |")
        lines.append("|---|---|---|---|---|---|")
        for res, p in self.pricing.items():
            lerner_s = "n/a" if p["lerner_mean"] is None else f"{p['lerner_mean']:.3f}"
            above = "n/a" if p["share_above_band"] is None else f"{100 * p['share_above_band']:.1f}%"
            bench = "none" if p["competitive_price"] is None else f"{p['competitive_price']:.4g}"
            lines.append(
                f"| {res[:12]}… | {p['trades']} | {p['vwap']:.4g} | {lerner_s} | {above} | {bench} |"
            )
        lines += ["", "## Concentration (sellers, by volume)", ""]
        lines.append("| resource | HHI | CR4 | sellers |")
        lines.append("|---|---|---|---|")
        for res, c in self.concentration.items():
            lines.append(
                f"| {res[:12]}… | {c['hhi']:.0f} | {100 * c['cr4']:.1f}% | {int(c['participants'])} |"
            )
        if self.rotation:
            r = self.rotation
            lines += ["", "## Procurement: rotation and cover bidding", ""]
            lines.append(
                f"{r['auctions']} auctions; longest winner run {r['longest_run']}; rotation regularity "
                f"{r['rotation_regularity']:.2f}; median runner-up gap {100 * r['median_cover_gap']:.2f}%; "
                f"pairs with dependent bids: {len(r['dependent_pairs'])}"
            )
        if self.exclusion:
            e = self.exclusion
            lines += ["", "## Exclusion", ""]
            for key in (
                "fastest_quarter_share",
                "small_fill_rate",
                "large_fill_rate",
                "extramarginal_trades",
            ):
                if e.get(key) is not None:
                    lines.append(f"- {key.replace('_', ' ')}: {e[key]:.4g}")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        # The markdown is the canonical rendering; HTML wraps it for a browser without a markdown parser.
        body = html.escape(self.to_markdown())
        return (
            "<!doctype html><meta charset='utf-8'><title>agentmarket surveillance</title>"
            f"<pre style='font: 14px/1.4 monospace'>{body}</pre>\n"
        )

    def write_png(self, path: Path) -> Path:
        """Bar charts: price relative to the competitive benchmark and seller HHI per resource."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        resources = list(self.pricing)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        rel = [
            (p["vwap"] / p["competitive_price"] - 1) * 100 if p["competitive_price"] else 0.0
            for p in self.pricing.values()
        ]
        axes[0].bar(range(len(resources)), rel, color="tab:red")
        axes[0].axhline(0, color="black", lw=0.8)
        axes[0].set_title("VWAP over competitive price (%)")
        axes[1].bar(range(len(resources)), [self.concentration[r]["hhi"] for r in resources])
        axes[1].set_title("seller HHI")
        for ax in axes:
            ax.set_xticks(range(len(resources)), [r[2:8] for r in resources], rotation=45)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def surveil_events(
    events: Sequence[ChainEvent],
    from_block: int,
    to_block: int,
    benchmarks: Benchmarks | None = None,
    thresholds: Thresholds | None = None,
) -> SurveillanceReport:
    """Run every screen over ``events`` (already restricted to the window) and collect flags."""
    b = benchmarks or Benchmarks()
    th = thresholds or Thresholds()
    report = SurveillanceReport(from_block, to_block)
    trades = trades_from_events(events)
    by_resource: dict[str, list[Any]] = defaultdict(list)
    for t in trades:
        by_resource[t.resource].append(t)

    for res, ts in by_resource.items():
        volume = sum(t.quantity for t in ts)
        vwap = sum(t.unit_price * t.quantity for t in ts) / volume
        comp = b.competitive_price.get(res)
        lerners = [lerner(t.unit_price, b.marginal_cost[t.seller]) for t in ts if t.seller in b.marginal_cost]
        above = None
        if comp is not None:
            above = sum(t.quantity for t in ts if t.unit_price > comp * (1 + th.band)) / volume
        report.pricing[res] = {
            "trades": len(ts),
            "volume": volume,
            "vwap": vwap,
            "median_price": statistics.median(t.unit_price for t in ts),
            "lerner_mean": statistics.fmean(lerners) if lerners else None,
            "competitive_price": comp,
            "share_above_band": above,
        }
        if above is not None and len(ts) >= th.min_trades and above >= th.markup_share:
            report.flags.append(
                Flag(
                    "supracompetitive_pricing",
                    res,
                    above,
                    th.markup_share,
                    f"{100 * above:.0f}% of volume priced more than {100 * th.band:.0f}% above the competitive "
                    f"price {comp:.4g} (VWAP {vwap:.4g})",
                )
            )
        seller_volume: Counter[str] = Counter()
        for t in ts:
            seller_volume[t.seller] += t.quantity
        conc = concentration(seller_volume)
        report.concentration[res] = conc
        # CR4 says nothing in a market of four or fewer sellers (it is 100% by construction).
        cr4_high = conc["participants"] > 4 and conc["cr4"] > th.cr4
        if len(ts) >= th.min_trades and (conc["hhi"] > th.hhi or cr4_high):
            report.flags.append(
                Flag(
                    "concentration",
                    res,
                    conc["hhi"],
                    th.hhi,
                    f"HHI {conc['hhi']:.0f}, CR4 {100 * conc['cr4']:.0f}% over {int(conc['participants'])} sellers",
                )
            )

    _rotation(events, b, th, report)
    _exclusion(events, trades, b, th, report)
    return report


def _procurement_auctions(events: Sequence[ChainEvent]) -> list[tuple[str, dict[str, int]]]:
    """(winner, {provider: price}) per settled procurement auction, in settlement order."""
    bids: dict[int, dict[str, int]] = defaultdict(dict)
    for e in events:
        if e.contract != "ProcurementAuction":
            continue
        if e.name in ("OfferPlaced", "OfferRevealed") and "price" in e.args:
            bids[int(e.args["auctionId"])][e.args["provider"]] = int(e.args["price"])
    out: list[tuple[str, dict[str, int]]] = []
    for e in events:
        if e.contract == "ProcurementAuction" and e.name == "AuctionSettled":
            aid = int(e.args["auctionId"])
            out.append((e.args["winner"], dict(bids.get(aid, {}))))
    return out


def _rotation(
    events: Sequence[ChainEvent], b: Benchmarks, th: Thresholds, report: SurveillanceReport
) -> None:
    auctions = _procurement_auctions(events)
    if not auctions:
        return
    winners = [w for w, _ in auctions]
    bids = [bids for _, bids in auctions]
    # The window is the number of providers that ever won: a k-member ring rotates through k winners.
    window = max(2, len(set(winners)))
    stats = rotation_stats(winners, [list(x) for x in bids], window)
    gaps = cover_bid_gaps(bids)
    costs = (
        b.procurement_costs
        if b.procurement_costs is not None and len(b.procurement_costs) == len(bids)
        else None
    )
    pairs = bid_independence(bids, costs)
    dependent = [p for p in pairs if p.p_value < th.independence_p and p.correlation > 0]
    covered = sum(1 for g in gaps if g <= th.cover_gap) / len(gaps) if gaps else 0.0
    report.rotation = {
        "auctions": stats.auctions,
        "winners": len(set(winners)),
        "longest_run": stats.longest_run,
        "rotation_regularity": stats.rotation_regularity,
        "distinct_in_window": stats.distinct_in_window,
        "win_rates": stats.win_rates,
        "participation": stats.participation,
        "median_cover_gap": statistics.median(gaps) if gaps else 0.0,
        "cover_share": covered,
        "dependent_pairs": [
            {"pair": list(p.pair), "correlation": p.correlation, "p_value": p.p_value, "auctions": p.auctions}
            for p in dependent
        ],
    }
    if stats.auctions < th.min_auctions:
        return
    # Rotation alone happens by chance when costs are redrawn every round; it takes rotation together
    # with cover bids (or dependent bids) to flag a ring.
    if stats.rotation_regularity >= th.rotation_regularity and (covered >= th.cover_share or dependent):
        report.flags.append(
            Flag(
                "bid_rotation",
                "procurement",
                stats.rotation_regularity,
                th.rotation_regularity,
                f"{len(set(winners))} winners take turns; {100 * covered:.0f}% of runner-up bids within "
                f"{100 * th.cover_gap:.0f}% of the winner; {len(dependent)} dependent pairs",
            )
        )
    elif covered >= th.cover_share and dependent:
        report.flags.append(
            Flag(
                "cover_bidding",
                "procurement",
                covered,
                th.cover_share,
                f"runner-up bids cluster just above the winner; {len(dependent)} dependent pairs",
            )
        )


def _exclusion(
    events: Sequence[ChainEvent],
    trades: Sequence[Any],
    b: Benchmarks,
    th: Thresholds,
    report: SurveillanceReport,
) -> None:
    orders = orders_from_events(events)
    # Order-to-trade and cancellation ratios per maker.
    posted: Counter[str] = Counter(o.maker for o in orders.values())
    cancelled: Counter[str] = Counter(o.maker for o in orders.values() if o.cancelled)
    traded: Counter[str] = Counter(o.maker for o in orders.values() if o.filled)
    per_maker = {
        m: {
            "orders": posted[m],
            "order_to_trade": posted[m] / traded[m] if traded[m] else float("inf"),
            "cancel_ratio": cancelled[m] / posted[m],
        }
        for m in posted
    }
    # Who wins the race for posted offers: takers' latency (blocks from posting to their fill).
    latency: dict[str, list[int]] = defaultdict(list)
    wins: Counter[str] = Counter()
    for t in trades:
        if t.taker and t.offer_posted_block is not None:
            latency[t.taker].append(t.block - t.offer_posted_block)
            wins[t.taker] += t.quantity
    result: dict[str, Any] = {"makers": per_maker}
    if latency:
        mean_latency = {k: statistics.fmean(v) for k, v in latency.items()}
        ranked = sorted(mean_latency, key=lambda k: mean_latency[k])
        fastest = ranked[: max(1, len(ranked) // 4)]
        total = sum(wins.values())
        share = sum(wins[k] for k in fastest) / total if total else 0.0
        result.update(
            {
                "takers": {k: {"latency_blocks": mean_latency[k], "units": wins[k]} for k in ranked},
                "fastest_quarter_share": share,
            }
        )
        if len(ranked) >= 4 and share >= th.latency_share:
            report.flags.append(
                Flag(
                    "speed_dominance",
                    "takers",
                    share,
                    th.latency_share,
                    f"the fastest {len(fastest)} of {len(ranked)} takers won {100 * share:.0f}% of filled units",
                )
            )
    if b.demand:
        got: Counter[str] = Counter()
        for t in trades:
            got[t.buyer] += t.quantity
            got[t.seller] += t.quantity
        intra = [a for a in b.demand if b.intramarginal.get(a, True) and b.demand[a] > 0]
        rates = {a: min(1.0, got[a] / b.demand[a]) for a in intra}
        # Small and large by size (capacity; the wanted units where no capacity is given): below the
        # median size is small.
        size = {a: b.capacity.get(a, b.demand[a]) for a in intra}
        sizes = sorted(size.values())
        if rates and sizes:
            cut = sizes[len(sizes) // 2]
            small = [rates[a] for a in intra if size[a] < cut] or [rates[a] for a in intra if size[a] <= cut]
            large = [rates[a] for a in intra if size[a] >= cut]
            result["fill_rates"] = rates
            result["small_fill_rate"] = statistics.fmean(small)
            result["large_fill_rate"] = statistics.fmean(large)
            if (
                result["large_fill_rate"] > 0
                and result["small_fill_rate"] < th.small_fill_ratio * result["large_fill_rate"]
            ):
                report.flags.append(
                    Flag(
                        "exclusion",
                        "small agents",
                        result["small_fill_rate"] / result["large_fill_rate"],
                        th.small_fill_ratio,
                        "small intramarginal agents fill far less of their demand than large ones",
                    )
                )
        extramarginal = [a for a, intra_ in b.intramarginal.items() if not intra_]
        result["extramarginal_trades"] = float(sum(got[a] for a in extramarginal))
    if b.mandate_refusals:
        result["mandate_refusals"] = dict(b.mandate_refusals)
    report.exclusion = result
