"""The simulated compute market: providers and buyers trade GPU-hours over rounds, settled on chain.

Each round a :mod:`mechanism <agentmarket.sim.mechanisms>` finds the trades from the agents' private
costs and values and their strategies; every trade is then locked and settled in the escrow by the two
agents themselves (buyer funds with its mandate checked, seller posts the bond if any, submits the
deliverable hash, buyer accepts). Metrics come from what actually settled.

Mechanisms: ``offers`` and ``negotiated`` trades are EIP-712 signed sell offers filled by the buyer
through the OfferBook; ``english``, ``dutch``, ``sealed``, ``vickrey`` and ``procurement`` run on the
auction contracts (:mod:`agentmarket.sim.onchain`), whose settlement opens the escrow deal. Either way
the provider then submits and the buyer accepts in the escrow.

Guardrails (for the ``shock`` scenario): every buyer's mandate carries a price band around the
pre-shock equilibrium price (a guarded agent never pays above its ceiling), and a market-level circuit
breaker watches *round-level* prices: when a round's median price moves more than ``pause_move`` from the
median of the previous ``pause_window`` round medians, trading halts for the next round. Individual
trades are not compared: inside one round a sequential auction's prices legitimately spread by more than
25% (the first auction faces every buyer, the last one the weakest), which stopped all Vickrey trading
when the breaker looked at single trades.
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
from ..types import DealState, content_hash
from .mechanisms import MECHANISMS, Match, Mechanism, Trader, build
from .onchain import AUCTION_MECHANISMS, AuctionHouse

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
    pause_move: float = 0.25  # circuit breaker: halt the next round when a round's median price moves 25% ...
    pause_window: int = 3  # ... from the median of the last 3 round medians (seeded with the equilibrium)
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
    paused: bool
    median_price: float | None = None


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
    max_price_deviation: float  # largest |trade price - pre-shock equilibrium| / pre-shock equilibrium
    max_round_deviation: float  # largest |round median price - pre-shock equilibrium| / pre-shock equilibrium
    gas_per_trade: float
    txs_per_trade: float
    trades_per_second: float
    settle_seconds: float
    wall_seconds: float
    solvent: bool
    all_settled: bool
    refused_by_mandate: int
    paused_rounds: int  # rounds the circuit breaker halted
    auction_residual: int = 0  # ETH left in the auction contracts by this run after withdrawals (must be 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CircuitBreaker:
    """Market-level pause on round clearing prices.

    After each round, its median settled price is compared with the median of the last ``window`` round
    medians (seeded with the reference price). A move beyond ``move`` halts the next round; the tripping
    median joins the history, so a lasting move becomes the new reference after the pause.
    """

    def __init__(self, reference: int, move: float, window: int):
        self.move = move
        self.window = window
        self.history: list[float] = [float(reference)]
        self.paused_rounds: set[int] = set()

    def halted(self, round_: int) -> bool:
        return round_ in self.paused_rounds

    def observe(self, round_: int, median_price: float | None) -> bool:
        """Record a round's median price; returns True when it tripped the breaker."""
        if median_price is None:
            return False
        ref = statistics.median(self.history[-self.window :])
        self.history.append(median_price)
        if abs(median_price - ref) > self.move * ref:
            self.paused_rounds.add(round_ + 1)
            return True
        return False


class ComputeMarketSim:
    """Build agents on a :class:`~agentmarket.market.Market` and run the configured market."""

    def __init__(
        self,
        market: Market,
        config: SimConfig,
        progress: Callable[[int, int, RoundStats], None] | None = None,
    ):
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

        self.sellers = [
            Trader(i, Role.SELLER, c, st) for i, (c, st) in enumerate(zip(costs, strategies(len(costs))))
        ]
        self.buyers = [
            Trader(config.providers + i, Role.BUYER, v, st)
            for i, (v, st) in enumerate(zip(values, strategies(len(values))))
        ]
        self.base_values = {b.index: b.limit for b in self.buyers}
        self.equilibrium = competitive_equilibrium(values, costs)
        self.mechanism: Mechanism = build(config.mechanism, ref)
        self.agents: dict[int, Agent] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.house: AuctionHouse | None = None
        self._held0 = 0

    # -- setup -----------------------------------------------------------------------------------------

    def _mandate(self) -> Mandate:
        if not self.config.guardrails:
            return Mandate(
                budget={ETH: self.config.fund}, max_per_deal={ETH: self.config.reference_price * 10}
            )
        band = PriceBand(self.equilibrium.price, self.config.band_bps)
        return Mandate(
            budget={ETH: self.config.fund},
            max_per_deal={ETH: self.config.reference_price * 10},
            price_bands={resource_id(GPU_HOUR): band},
        )

    def setup(self) -> None:
        made = self.market.agents(len(self.sellers) + len(self.buyers), fund=self.config.fund, prefix="sim")
        for trader, agent in zip([*self.sellers, *self.buyers], made):
            role = "provider" if trader.role is Role.SELLER else "buyer"
            agent.name = f"{role}-{trader.index}-{trader.strategy}"
            if trader.role is Role.BUYER:
                agent.with_mandate(self._mandate())
            self.agents[trader.index] = agent
        if self.config.mechanism in AUCTION_MECHANISMS:
            self.house = AuctionHouse(
                self.market, self.agents, self.mechanism, self.rng, self.config.reference_price
            )
            self._held0 = self.house.held()

    # -- settlement ------------------------------------------------------------------------------------

    def settle(self, match: Match, round_: int) -> TradeRecord:
        """Lock and settle one trade in the escrow; raises MandateViolation before anything is sent."""
        buyer, seller = self.agents[match.buyer], self.agents[match.seller]
        gas0, txs0 = buyer.gas_used + seller.gas_used, buyer.tx_count + seller.tx_count
        terms_hash = content_hash(f"{GPU_HOUR} x1 round {round_} {match.reference}")
        if self.config.mechanism in ("offers", "negotiated") and "OfferBook" in self.market.suite:
            # the provider's quote is an EIP-712 signed sell offer reserved for the buyer, who fills it
            if match.bond:
                seller.offers.deposit(match.bond)
            signed = seller.offers.offer(
                "sell",
                GPU_HOUR,
                match.price,
                1,
                taker=buyer.address,
                bond_per_unit=match.bond,
                delivery=match.delivery_seconds,
                terms_hash=terms_hash,
                expiry=timedelta(hours=1),
            )
            deal = buyer.fill(signed).deal
        else:
            deal = buyer.buy(
                seller,
                match.price,
                resource=GPU_HOUR,
                units=1,
                deliver_by=timedelta(seconds=match.delivery_seconds + 3600),
                bond=match.bond,
                terms_hash=terms_hash,
            )
            if match.bond:
                deal = seller.escrow.post_bond(deal)
        deal = seller.escrow.submit(deal, content_hash(f"results of deal {deal.id}"))
        deal = buyer.escrow.accept(deal)
        trader_b = next(t for t in self.buyers if t.index == match.buyer)
        trader_s = next(t for t in self.sellers if t.index == match.seller)
        return TradeRecord(
            round_,
            buyer.address,
            seller.address,
            trader_b.strategy,
            trader_s.strategy,
            match.price,
            trader_b.limit,
            trader_s.limit,
            match.bond,
            match.delivery_seconds,
            deal.id,
            buyer.gas_used + seller.gas_used - gas0,
            buyer.tx_count + seller.tx_count - txs0,
            deal.state.name,
        )

    def _settle_all(self, matches: list[Match], round_: int) -> list[TradeRecord | BaseException]:
        """Settle a round's trades; on a node, concurrently (each agent is in at most one trade a round)."""
        workers = self.config.workers or (1 if self.market.chain.kind == "embedded" else 8)

        def one(m: Match) -> TradeRecord | BaseException:
            try:
                return self.settle(m, round_)
            except MandateViolation as exc:
                return exc
            except Exception as exc:
                return exc

        if workers <= 1 or len(matches) <= 1:
            return [one(m) for m in matches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="settle")
        return list(self._pool.map(one, matches))

    # -- the run -----------------------------------------------------------------------------------------

    def _trade_record(self, sale: Any, round_: int) -> TradeRecord:
        m, deal = sale.match, sale.deal
        tb = next(t for t in self.buyers if t.index == m.buyer)
        ts = next(t for t in self.sellers if t.index == m.seller)
        return TradeRecord(
            round_,
            self.agents[m.buyer].address,
            self.agents[m.seller].address,
            tb.strategy,
            ts.strategy,
            m.price,
            tb.limit,
            ts.limit,
            deal.terms.bond,
            m.delivery_seconds,
            deal.id,
            sale.gas,
            sale.txs,
            "ACCEPTED",
        )

    def _round_trades(self, r: int, breaker: CircuitBreaker | None) -> tuple[list[TradeRecord], int]:
        """Run round ``r`` on chain; returns its settled trades and how many the mandates refused."""
        if self.house is not None:
            before = self.house.refused
            sales = self.house.run_round(self.buyers, self.sellers, r)
            return [self._trade_record(s, r) for s in sales], self.house.refused - before
        matches = self.mechanism.clear(self.buyers, self.sellers, self.rng)
        trades: list[TradeRecord] = []
        refused = 0
        for outcome in self._settle_all(matches, r):
            if isinstance(outcome, MandateViolation):
                refused += 1
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                trades.append(outcome)
        return trades, refused

    def run(self) -> SimResult:
        cfg = self.config
        started = time.perf_counter()
        if not self.agents:
            self.setup()
        gas0 = sum(a.gas_used for a in self.agents.values())
        breaker = (
            CircuitBreaker(self.equilibrium.price, cfg.pause_move, cfg.pause_window)
            if cfg.guardrails
            else None
        )
        rounds: list[RoundStats] = []
        trades: list[TradeRecord] = []
        earned: dict[int, int] = {t.index: 0 for t in [*self.buyers, *self.sellers]}
        settle_seconds = 0.0
        refused_total = 0
        shocked_rounds = cfg.shock_span()
        for r in range(cfg.rounds):
            shocked = r in shocked_rounds
            for b in self.buyers:
                b.limit = int(self.base_values[b.index] * (cfg.shock_factor if shocked else 1.0))
            values = [b.limit for b in self.buyers]
            costs = [s.limit for s in self.sellers]
            eq = competitive_equilibrium(values, costs)
            paused = breaker is not None and breaker.halted(r)
            t0 = time.perf_counter()
            round_trades, refused = ([], 0) if paused else self._round_trades(r, breaker)
            settle_seconds += time.perf_counter() - t0
            surplus: dict[int, int] = {}
            for rec in round_trades:
                buyer = next(b for b in self.buyers if self.agents[b.index].address == rec.buyer)
                seller = next(s for s in self.sellers if self.agents[s.index].address == rec.seller)
                surplus[buyer.index] = rec.value - rec.price
                surplus[seller.index] = rec.price - rec.cost
            if not paused:
                for t in [*self.buyers, *self.sellers]:
                    gain = surplus.get(t.index, 0)
                    earned[t.index] += gain
                    self.mechanism.outcome(t, gain, t.index in surplus)
            prices = [t.price for t in round_trades]
            median = statistics.median(prices) if prices else None
            if breaker is not None:
                breaker.observe(r, median)
            stats = RoundStats(
                r,
                shocked,
                len(round_trades),
                statistics.fmean(prices) if prices else None,
                prices,
                eq.price_low,
                eq.price_high,
                eq.quantity,
                max_surplus(values, costs),
                sum(t.value - t.cost for t in round_trades),
                refused,
                paused,
                median,
            )
            rounds.append(stats)
            trades.extend(round_trades)
            refused_total += refused
            if self.progress is not None:
                self.progress(r + 1, cfg.rounds, stats)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        residual = 0
        if self.house is not None:
            self.house.withdraw_all()
            residual = self.house.held() - self._held0
        gas = sum(a.gas_used for a in self.agents.values()) - gas0
        return self._result(
            rounds,
            trades,
            earned,
            settle_seconds,
            time.perf_counter() - started,
            refused_total,
            len(breaker.paused_rounds & set(range(cfg.rounds))) if breaker else 0,
            gas,
            residual,
        )

    def _result(
        self,
        rounds: list[RoundStats],
        trades: list[TradeRecord],
        earned: dict[int, int],
        settle_seconds: float,
        wall: float,
        refused: int,
        paused: int,
        gas: int,
        residual: int,
    ) -> SimResult:
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
        round_dev = max(
            (abs(r.median_price - ref) / ref for r in rounds if r.median_price is not None), default=0.0
        )
        if self.market is not None:
            escrow = self.market.escrow
            balance, totals = escrow.solvency()
            fn = escrow.contract.functions
            calls = [
                (
                    "eth_call",
                    [
                        {"to": escrow.address, "data": fn.dealStatus(t.deal_id)._encode_transaction_data()},
                        "latest",
                    ],
                )
                for t in trades
            ]
            answers = self.market.chain.transactor.transport.batch(calls) if calls else []
            states = [DealState(int(a[:66], 16)) for a in answers]  # first word of dealStatus: the state
            all_settled = all(s.is_terminal for s in states) and all(
                t.state in ("ACCEPTED", "FINALIZED") for t in trades
            )
            solvent = balance == totals.accounted and totals.locked == 0 and residual == 0
        else:
            all_settled = solvent = True
        n = len(trades)
        return SimResult(
            config=asdict(cfg),
            chain=self.market.chain.kind if self.market is not None else "none",
            rounds=rounds,
            trades=trades,
            efficiency=realised / best if best else 1.0,
            utility=utility,
            adaptive_gain=gain,
            reference_equilibrium=ref,
            max_price_deviation=deviation,
            max_round_deviation=round_dev,
            gas_per_trade=gas / n if n else 0.0,
            txs_per_trade=sum(t.txs for t in trades) / n if n else 0.0,
            trades_per_second=n / settle_seconds if settle_seconds else 0.0,
            settle_seconds=settle_seconds,
            wall_seconds=wall,
            solvent=solvent,
            all_settled=all_settled,
            refused_by_mandate=refused,
            paused_rounds=paused,
            auction_residual=residual,
        )


class _Nobody:
    """Stand-in agent of an off-chain run."""

    def __init__(self, index: int):
        self.address = f"trader-{index}"
        self.gas_used = 0


class OffChainSim(ComputeMarketSim):
    """The same market with every mechanism's trades found by its pure-Python clearing (``Mechanism.clear``)
    and nothing sent to a chain: for evaluating strategies over many seeds and rounds. Metrics other than
    gas are comparable with on-chain runs (the auction mechanisms' Python clearing mirrors the contracts'
    rules; prices and winners can differ slightly: Dutch price steps, ties)."""

    def __init__(self, config: SimConfig):
        super().__init__(None, config)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.agents = {t.index: _Nobody(t.index) for t in [*self.sellers, *self.buyers]}  # type: ignore[misc]

    def _round_trades(self, r: int, breaker: CircuitBreaker | None) -> tuple[list[TradeRecord], int]:
        trades, refused = [], 0
        band = self._mandate().price_bands.get(resource_id(GPU_HOUR)) if self.config.guardrails else None
        for m in self.mechanism.clear(self.buyers, self.sellers, self.rng):
            if band is not None and m.price > band.ceiling:
                refused += 1
                continue
            tb = next(t for t in self.buyers if t.index == m.buyer)
            ts = next(t for t in self.sellers if t.index == m.seller)
            trades.append(
                TradeRecord(
                    r,
                    f"trader-{m.buyer}",
                    f"trader-{m.seller}",
                    tb.strategy,
                    ts.strategy,
                    m.price,
                    tb.limit,
                    ts.limit,
                    m.bond,
                    m.delivery_seconds,
                    0,
                    0,
                    0,
                    "ACCEPTED",
                )
            )
        return trades, refused


def run(
    config: SimConfig,
    *,
    market: Market | None = None,
    chain: str | None = None,
    progress: Callable[[int, int, RoundStats], None] | None = None,
) -> SimResult:
    """Run one simulation (on ``market``, or a fresh one on ``chain``: embedded/anvil/URL)."""
    if market is not None:
        return ComputeMarketSim(market, config, progress).run()
    with Market.connect(chain) as fresh:
        return ComputeMarketSim(fresh, config, progress).run()


__all__ = [
    "AgentMarketError",
    "CircuitBreaker",
    "ComputeMarketSim",
    "OffChainSim",
    "RoundStats",
    "SimConfig",
    "SimResult",
    "TradeRecord",
    "run",
]
