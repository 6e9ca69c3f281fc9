"""The simulated compute market: providers and buyers trade GPU-hours over rounds, settled on chain.

Each round a :mod:`mechanism <agentmarket.sim.mechanisms>` finds the trades from the agents' private
costs and values and their strategies; every trade is then locked and settled in the escrow by the two
agents themselves (buyer funds with its mandate checked, seller posts the bond if any, submits the
deliverable hash, buyer accepts). Metrics come from what actually settled.

Guardrails (for the ``shock`` scenario): every buyer's mandate carries a price band around the
pre-shock equilibrium price, and a market-level circuit breaker pauses trading for the rest of the round
(and the next one) when a trade's price moves more than ``pause_move`` from the recent median.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from ..agent import Agent, resource_id
from ..errors import AgentMarketError, MandateViolation
from ..mandate import ETH, Mandate, PriceBand
from ..market import Market
from ..strategies import Role, competitive_equilibrium, max_surplus
from ..types import content_hash
from .mechanisms import MECHANISMS, Match, Mechanism, Trader, build

GPU_HOUR = "gpu-hour"
REFERENCE_PRICE = 10**16  # 0.01 ETH per GPU-hour


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. ``agents`` is split into providers and buyers (half each, providers rounded down)."""

    agents: int = 20
    rounds: int = 10
    mechanism: str = "offers"
    seed: int = 7
    reference_price: int = REFERENCE_PRICE
    spread: float = 0.5  # costs and values uniform in ref * [1 - spread, 1 + spread]
    shock: bool = False
    shock_factor: float = 2.0  # buyers' values multiply by this during the spike
    shock_rounds: int | None = None  # default: max(1, rounds // 5), starting mid-run
    guardrails: bool = False
    band_bps: int = 2_000  # mandate price band: at most +20% over the pre-shock equilibrium price
    pause_move: float = 0.25  # circuit breaker: pause when a price moves more than 25% ...
    pause_window: int = 5  # ... from the median of the last 5 settled prices
    fund: int = 50 * 10**18
    workers: int | None = None  # trades settled concurrently per round (default: 1 embedded, 8 on a node)

    @property
    def providers(self) -> int:
        return max(1, self.agents // 2)

    @property
    def buyers(self) -> int:
        return max(1, self.agents - self.providers)

    def shock_span(self) -> range:
        if not self.shock:
            return range(0)
        start = self.rounds // 2
        return range(start, min(self.rounds, start + (self.shock_rounds or max(1, self.rounds // 5))))


@dataclass
class TradeRecord:
    round: int
    buyer: str
    seller: str
    buyer_strategy: str
    seller_strategy: str
    price: int
    value: int
    cost: int
    bond: int
    delivery_seconds: int
    deal_id: int
    gas: int
    txs: int
    state: str


@dataclass
class RoundStats:
    round: int
    shocked: bool
    trades: int
    mean_price: float | None
    prices: list[int]
    equilibrium_low: int
    equilibrium_high: int
    equilibrium_quantity: int
    max_surplus: int
    realised_surplus: int
    refused_by_mandate: int
    blocked_by_breaker: int
    paused: bool


@dataclass
class SimResult:
    config: dict[str, Any]
    chain: str
    rounds: list[RoundStats]
    trades: list[TradeRecord]
    efficiency: float
    utility: dict[str, dict[str, float]]  # role -> strategy -> mean surplus per agent-round (wei)
    adaptive_gain: dict[str, float | None]  # role -> (adaptive - fixed) / |fixed|
    reference_equilibrium: int
    max_price_deviation: float  # largest |price - pre-shock equilibrium| / pre-shock equilibrium
    gas_per_trade: float
    txs_per_trade: float
    trades_per_second: float
    settle_seconds: float
    wall_seconds: float
    solvent: bool
    all_settled: bool
    refused_by_mandate: int
    blocked_by_breaker: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CircuitBreaker:
    """Market-level pause: rejects a trade whose price is more than ``move`` away from the recent median."""

    def __init__(self, reference: int, move: float, window: int):
        self.move = move
        self.window = window
        self.recent: list[int] = [reference]
        self.paused_until = -1

    def allows(self, price: int, round_: int) -> bool:
        """Every matched price is observed (so a lasting move becomes the new reference after the pause);
        a trade is refused while paused, and a move beyond ``move`` pauses the rest of this round and the
        next one."""
        ref = statistics.median(self.recent[-self.window:])
        self.recent.append(price)
        if round_ <= self.paused_until:
            return False
        if abs(price - ref) > self.move * ref:
            self.paused_until = round_ + 1
            return False
        return True


class ComputeMarketSim:
    """Build agents on a :class:`~agentmarket.market.Market` and run the configured market."""

    def __init__(self, market: Market, config: SimConfig,
                 progress: Callable[[int, int, RoundStats], None] | None = None):
        if config.mechanism not in MECHANISMS:
            raise ValueError(f"unknown mechanism {config.mechanism!r} (choose from {', '.join(MECHANISMS)})")
        self.market = market
        self.config = config
        self.progress = progress
        self.rng = random.Random(config.seed)
        ref, spread = config.reference_price, config.spread
        draw = lambda: int(ref * self.rng.uniform(1 - spread, 1 + spread))
        costs = sorted(draw() for _ in range(config.providers))
        values = sorted((draw() for _ in range(config.buyers)), reverse=True)
        # pair neighbours down the sorted limits and flip a coin inside each pair for who is adaptive, so
        # both groups face the same value (cost) distribution without a systematic edge for either
        def strategies(n: int) -> list[str]:
            out: list[str] = []
            while len(out) < n:
                pair = ["adaptive", "fixed"]
                self.rng.shuffle(pair)
                out.extend(pair)
            return out[:n]

        self.sellers = [Trader(i, Role.SELLER, c, st) for i, (c, st) in enumerate(zip(costs, strategies(len(costs))))]
        self.buyers = [Trader(config.providers + i, Role.BUYER, v, st)
                       for i, (v, st) in enumerate(zip(values, strategies(len(values))))]
        self.base_values = {b.index: b.limit for b in self.buyers}
        self.equilibrium = competitive_equilibrium(values, costs)
        self.mechanism: Mechanism = build(config.mechanism, ref)
        self.agents: dict[int, Agent] = {}
        self._pool: ThreadPoolExecutor | None = None

    # -- setup -----------------------------------------------------------------------------------------

    def _mandate(self) -> Mandate:
        if not self.config.guardrails:
            return Mandate(budget={ETH: self.config.fund}, max_per_deal={ETH: self.config.reference_price * 10})
        band = PriceBand(self.equilibrium.price, self.config.band_bps)
        return Mandate(budget={ETH: self.config.fund}, max_per_deal={ETH: self.config.reference_price * 10},
                       price_bands={resource_id(GPU_HOUR): band})

    def setup(self) -> None:
        made = self.market.agents(len(self.sellers) + len(self.buyers), fund=self.config.fund, prefix="sim")
        for trader, agent in zip([*self.sellers, *self.buyers], made):
            role = "provider" if trader.role is Role.SELLER else "buyer"
            agent.name = f"{role}-{trader.index}-{trader.strategy}"
            if trader.role is Role.BUYER:
                agent.with_mandate(self._mandate())
            self.agents[trader.index] = agent

    # -- settlement ------------------------------------------------------------------------------------

    def settle(self, match: Match, round_: int) -> TradeRecord:
        """Lock and settle one trade in the escrow; raises MandateViolation before anything is sent."""
        buyer, seller = self.agents[match.buyer], self.agents[match.seller]
        gas0, txs0 = buyer.gas_used + seller.gas_used, buyer.tx_count + seller.tx_count
        terms_hash = content_hash(f"{GPU_HOUR} x1 round {round_} {match.reference}")
        if self.config.mechanism == "offers" and "OfferBook" in self.market.suite:
            # the provider's quote is an EIP-712 signed sell offer reserved for the buyer, who fills it
            if match.bond:
                seller.offers.deposit(match.bond)
            signed = seller.offers.offer("sell", GPU_HOUR, match.price, 1, taker=buyer.address,
                                         bond_per_unit=match.bond, delivery=match.delivery_seconds,
                                         terms_hash=terms_hash, expiry=timedelta(hours=1))
            deal = buyer.fill(signed).deal
        else:
            deal = buyer.buy(seller, match.price, resource=GPU_HOUR, units=1,
                             deliver_by=timedelta(seconds=match.delivery_seconds + 3600), bond=match.bond,
                             terms_hash=terms_hash)
            if match.bond:
                deal = seller.escrow.post_bond(deal)
        deal = seller.escrow.submit(deal, content_hash(f"results of deal {deal.id}"))
        deal = buyer.escrow.accept(deal)
        trader_b = next(t for t in self.buyers if t.index == match.buyer)
        trader_s = next(t for t in self.sellers if t.index == match.seller)
        return TradeRecord(round_, buyer.address, seller.address, trader_b.strategy, trader_s.strategy, match.price,
                           trader_b.limit, trader_s.limit, match.bond, match.delivery_seconds, deal.id,
                           buyer.gas_used + seller.gas_used - gas0, buyer.tx_count + seller.tx_count - txs0,
                           deal.state.name)

    def _settle_all(self, matches: list[Match], round_: int) -> list[TradeRecord | BaseException]:
        """Settle a round's trades; on a node, concurrently (each agent is in at most one trade a round)."""
        workers = self.config.workers or (1 if self.market.chain.kind == "embedded" else 8)

        def one(m: Match) -> TradeRecord | BaseException:
            try:
                return self.settle(m, round_)
            except MandateViolation as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - re-raised by the caller, in order
                return exc

        if workers <= 1 or len(matches) <= 1:
            return [one(m) for m in matches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="settle")
        return list(self._pool.map(one, matches))

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> SimResult:
        cfg = self.config
        started = time.perf_counter()
        if not self.agents:
            self.setup()
        breaker = CircuitBreaker(self.equilibrium.price, cfg.pause_move, cfg.pause_window) if cfg.guardrails else None
        rounds: list[RoundStats] = []
        trades: list[TradeRecord] = []
        earned: dict[int, int] = {t.index: 0 for t in [*self.buyers, *self.sellers]}
        settle_seconds = 0.0
        refused_total = blocked_total = 0
        shocked_rounds = cfg.shock_span()
        for r in range(cfg.rounds):
            shocked = r in shocked_rounds
            for b in self.buyers:
                b.limit = int(self.base_values[b.index] * (cfg.shock_factor if shocked else 1.0))
            values = [b.limit for b in self.buyers]
            costs = [s.limit for s in self.sellers]
            eq = competitive_equilibrium(values, costs)
            matches = self.mechanism.clear(self.buyers, self.sellers, self.rng)
            round_trades: list[TradeRecord] = []
            refused = blocked = 0
            surplus: dict[int, int] = {}
            t0 = time.perf_counter()
            admitted = []
            for m in matches:
                if breaker is not None and not breaker.allows(m.price, r):
                    blocked += 1
                else:
                    admitted.append(m)
            for m, outcome in zip(admitted, self._settle_all(admitted, r)):
                if isinstance(outcome, MandateViolation):
                    refused += 1
                    continue
                if isinstance(outcome, BaseException):
                    raise outcome
                record = outcome
                round_trades.append(record)
                surplus[m.buyer] = record.value - record.price
                surplus[m.seller] = record.price - record.cost
            settle_seconds += time.perf_counter() - t0
            for t in [*self.buyers, *self.sellers]:
                gain = surplus.get(t.index, 0)
                earned[t.index] += gain
                self.mechanism.outcome(t, gain, t.index in surplus)
            prices = [t.price for t in round_trades]
            stats = RoundStats(r, shocked, len(round_trades), statistics.fmean(prices) if prices else None, prices,
                               eq.price_low, eq.price_high, eq.quantity, max_surplus(values, costs),
                               sum(t.value - t.cost for t in round_trades), refused, blocked,
                               breaker is not None and breaker.paused_until >= r)
            rounds.append(stats)
            trades.extend(round_trades)
            refused_total += refused
            blocked_total += blocked
            if self.progress is not None:
                self.progress(r + 1, cfg.rounds, stats)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        return self._result(rounds, trades, earned, settle_seconds, time.perf_counter() - started,
                            refused_total, blocked_total)

    def _result(self, rounds: list[RoundStats], trades: list[TradeRecord], earned: dict[int, int],
                settle_seconds: float, wall: float, refused: int, blocked: int) -> SimResult:
        cfg = self.config
        best = sum(r.max_surplus for r in rounds)
        realised = sum(r.realised_surplus for r in rounds)
        utility: dict[str, dict[str, float]] = {}
        gain: dict[str, float | None] = {}
        for role, group in (("buyer", self.buyers), ("provider", self.sellers)):
            per: dict[str, list[int]] = {}
            for t in group:
                per.setdefault(t.strategy, []).append(earned[t.index])
            utility[role] = {k: statistics.fmean(v) / cfg.rounds for k, v in per.items()}
            a, f = utility[role].get("adaptive"), utility[role].get("fixed")
            strategic = role in self.mechanism.strategic_roles
            gain[role] = (a - f) / abs(f) if strategic and a is not None and f else None
        ref = self.equilibrium.price
        deviation = max((abs(t.price - ref) / ref for t in trades), default=0.0)
        escrow = self.market.escrow
        balance, totals = escrow.solvency()
        states = [escrow.status(t.deal_id)[0] for t in trades] if len(trades) <= 400 else []
        all_settled = all(s.is_terminal for s in states) and all(t.state in ("ACCEPTED", "FINALIZED") for t in trades)
        n = len(trades)
        return SimResult(
            config=asdict(cfg), chain=self.market.chain.kind, rounds=rounds, trades=trades,
            efficiency=realised / best if best else 1.0, utility=utility, adaptive_gain=gain,
            reference_equilibrium=ref, max_price_deviation=deviation,
            gas_per_trade=sum(t.gas for t in trades) / n if n else 0.0,
            txs_per_trade=sum(t.txs for t in trades) / n if n else 0.0,
            trades_per_second=n / settle_seconds if settle_seconds else 0.0,
            settle_seconds=settle_seconds, wall_seconds=wall,
            solvent=balance == totals.accounted and totals.locked == 0, all_settled=all_settled,
            refused_by_mandate=refused, blocked_by_breaker=blocked)


def run(config: SimConfig, *, market: Market | None = None, chain: str | None = None,
        progress: Callable[[int, int, RoundStats], None] | None = None) -> SimResult:
    """Run one simulation (on ``market``, or a fresh one on ``chain``: embedded/anvil/URL)."""
    if market is not None:
        return ComputeMarketSim(market, config, progress).run()
    with Market.connect(chain) as fresh:
        return ComputeMarketSim(fresh, config, progress).run()


__all__ = ["AgentMarketError", "CircuitBreaker", "ComputeMarketSim", "RoundStats", "SimConfig", "SimResult",
           "TradeRecord", "run"]
