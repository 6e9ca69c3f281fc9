"""The simulated compute market: providers and buyers trade GPU-hours over rounds, settled on chain.

Each round a :mod:`mechanism <agentmarket.sim.mechanisms>` finds the trades from the agents' private
costs and values and their strategies; every trade is then locked and settled in the escrow by the two
agents themselves (buyer funds with its mandate checked, seller posts the bond if any, submits the
deliverable hash, buyer accepts). Metrics come from what actually settled.

Mechanisms: ``offers`` and ``negotiated`` trades are EIP-712 signed sell offers filled by the buyer
through the OfferBook; ``english``, ``dutch``, ``sealed``, ``vickrey`` and ``procurement`` run on the
auction contracts (:mod:`agentmarket.sim.onchain`), whose settlement opens the escrow deal; ``call`` runs
one CallMarket batch per round (:mod:`agentmarket.sim.callhouse`: every agent's order from its own account,
the contract verifies the uniform price and settles the fills into escrow deals). Either way the provider
then submits and the buyer accepts in the escrow.

Guardrails work like an exchange's (for shock runs): a buyer's quotes are capped inside its strategy
at the band's ceiling *before* matching (and its mandate carries the same band, so nothing is refused
after a match); the band follows a moving reference, the median of the last ``band_window`` round
median prices (seeded with the pre-shock equilibrium). Independently, a circuit breaker (a volatility
interruption, as in US limit-up/limit-down) watches the rolling median of the last ``breaker_trades``
trade prices and the book: a move beyond ``pause_move`` from the reference, or a limit state (three
different buyers bidding the band's ceiling against asks above it), halts continuous trading, and the
rest of the round re-opens as one uniform-price call auction.

Shocks (:mod:`agentmarket.sim.shock`): step, ramp or cascade; momentum buyers, entrants, supply
withdrawal and sub-round steps let a cascade emerge. Efficiency is reported with the round's current
values and with pre-shock ("fundamental") values; deviations against the pre-shock and the current
round's competitive equilibrium.

Headline efficiency of an on-chain run is recomputed from the escrow's events (``DealCreated`` buyer
and seller, ``DealAccepted``) with the agents' private values: :attr:`SimResult.efficiency` is what
settled on chain, and :attr:`SimResult.events_match` says the records agree with the events.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from eth_utils import keccak

from ..agent import Agent, resource_id
from ..calldata import calldata, decode_static
from ..errors import AgentMarketError, MandateViolation
from ..mandate import Mandate, PriceBand
from ..market import Market
from ..strategies import Role, competitive_equilibrium, max_surplus
from ..tx import TxRequest
from ..types import DEAL_ABI_TYPES, DEAL_STRUCT, ETH, DealState, DealTerms, content_hash
from .callhouse import CallHouse
from .mechanisms import MECHANISMS, Call, Match, Mechanism, Offers, Trader, build
from .onchain import AUCTION_MECHANISMS, AuctionHouse
from .shock import SCENARIOS, Shock

GPU_HOUR = "gpu-hour"
_DEAL_CREATED = keccak(text=f"DealCreated(uint256,address,address,{DEAL_ABI_TYPES},uint8,address)")
_BOND = DEAL_STRUCT.names.index("bond")
_DEAL_TYPES = DEAL_ABI_TYPES[1:-1].split(",")
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
    order: str = "efficient"  # sequential auctions: "efficient" (cheapest reserve first) or "random"
    shock: bool = False
    shock_factor: float = 2.0  # buyers' values multiply by this during the spike (step shape)
    shock_rounds: int | None = None  # default: max(1, rounds // 5), starting mid-run
    shock_model: Shock | None = None  # full shock model (shape, momentum, entrants...); default: a step
    guardrails: bool = False
    band_bps: int = 2_000  # quotes capped at +20% over the moving reference price
    band_window: int = 3  # moving reference: median of the last 3 round medians
    pause_move: float = 0.20  # breaker: rolling trade median moving 20% from the reference halts ...
    breaker_trades: int = 5  # ... over the last 5 trades (or a limit state); re-opens with a call auction
    fund: int = 50 * 10**18
    workers: int | None = None  # trades settled concurrently per round (default: 1 embedded, 8 on a node)
    batch: bool = True  # settle through the client's fast pipeline (JSON-RPC batches, snapshot gas)
    max_units: int = 1  # multi-unit orders: each trader's order is for 1..max_units GPU-hours (offers, call)
    relay: str | None = None  # offers: URL of an offer relay the providers post to and buyers discover from

    @property
    def providers(self) -> int:
        return max(1, self.agents // 2)

    @property
    def buyers(self) -> int:
        return max(1, self.agents - self.providers)

    @property
    def shock_spec(self) -> Shock | None:
        if not self.shock:
            return None
        return self.shock_model or Shock("step", self.shock_factor, rounds=self.shock_rounds)

    def shock_span(self) -> range:
        spec = self.shock_spec
        return spec.span(self.rounds) if spec is not None else range(0)

    @classmethod
    def scenario(cls, name: str, **kw: Any) -> SimConfig:
        """A named scenario (:data:`agentmarket.sim.shock.SCENARIOS`), e.g. ``spike500``."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})")
        spec = SCENARIOS[name]
        return cls(shock=True, shock_factor=spec.factor, shock_model=spec, **kw)


@dataclass
class TradeRecord:
    round: int
    buyer: str
    seller: str
    buyer_strategy: str
    seller_strategy: str
    price: int
    value: int  # the buyer's value at the end of the round (current)
    cost: int
    bond: int
    delivery_seconds: int
    deal_id: int
    gas: int
    txs: int
    state: str
    fundamental_value: int = 0  # the buyer's pre-shock value
    quantity: int = 1  # GPU-hours in this deal, each at ``price`` (multi-unit orders)


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
    paused: bool  # the circuit breaker halted continuous trading this round
    median_price: float | None = None
    max_surplus_fundamental: int = 0
    realised_surplus_fundamental: int = 0
    band_reference: int | None = None  # guardrails: the moving reference the band was around

    @property
    def equilibrium_price(self) -> int:
        return (self.equilibrium_low + self.equilibrium_high) // 2


@dataclass
class SimResult:
    config: dict[str, Any]
    chain: str
    rounds: list[RoundStats]
    trades: list[TradeRecord]
    efficiency: float  # on chain: recomputed from the escrow's events
    utility: dict[str, dict[str, float]]  # role -> strategy -> mean surplus per agent-round (wei)
    adaptive_gain: dict[str, float | None]  # role -> (adaptive - fixed) / |fixed|
    reference_equilibrium: int
    max_price_deviation: float  # largest |trade price - pre-shock equilibrium| / pre-shock equilibrium
    max_round_deviation: float  # largest |round median price - pre-shock equilibrium| / pre-shock equilibrium
    gas_per_trade: float
    txs_per_trade: float
    trades_per_second: float  # settled trades per second of settlement (the batches on chain)
    settle_seconds: float  # time spent settling on chain (open + fund, submit, accept)
    wall_seconds: float
    solvent: bool
    all_settled: bool
    refused_by_mandate: int
    paused_rounds: int  # rounds the circuit breaker halted
    auction_residual: int = 0  # ETH left in the auction contracts by this run after withdrawals (must be 0)
    efficiency_fundamental: float = 1.0  # with pre-shock values
    efficiency_records: float = 1.0  # from the simulator's own records (equals efficiency when events match)
    events_match: bool = True  # every record is an accepted escrow deal between the same agents
    peak_trade_dev_current: float = 0.0  # max (trade price - top of current CE interval) / that, >= 0
    peak_round_dev_current: float = 0.0  # max (round median - top of current CE interval) / that, >= 0
    peak_round_dev_preshock: float = 0.0  # max (round median - pre-shock CE) / pre-shock CE
    peak_trade_dev_preshock: float = 0.0  # max (trade price - pre-shock CE) / pre-shock CE
    breaker_fired: int = 0  # times the circuit breaker halted continuous trading
    peak_value_multiplier: float = 1.0  # largest mean buyer value / its pre-shock mean (the spike's size)
    match_seconds: float = 0.0  # time the mechanism spent finding the trades (Python)
    relay_posted: int = 0  # offers the providers posted to the relay (``SimConfig.relay``)
    relay_discovered: int = 0  # fills whose signed offer the buyer took from a relay query

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CircuitBreaker:
    """Volatility interruption on trade prices (limit-up/limit-down style), a mechanism separate from the
    band (the band caps quotes; the breaker stops continuous trading).

    The reference is the median of the last ``history`` round medians (seeded with the pre-shock
    equilibrium). Within a round, continuous trading halts once the median of the last ``window`` trade
    prices moves more than ``move`` from the reference, or (LULD's limit state) once ``limit_trades``
    trades hit the band's ceiling ``limit_up``; the caller re-opens with a call auction.
    """

    def __init__(self, reference: int, move: float, window: int = 5, history: int = 3):
        self.move = move
        self.window = window
        self.history_len = history
        self.history: list[float] = [float(reference)]
        self.recent: list[int] = []
        self.fired = 0
        self.halted_rounds: set[int] = set()
        self.round = 0
        self.limit_up: int | None = None  # the band's ceiling, when guardrails cap quotes
        self.limit_hits = 0
        self.limit_bidders: set[int] = set()
        self.limit_trades = 3  # a limit state: this many unfilled bids at the band's ceiling (a pile-up) halt

    @property
    def reference(self) -> float:
        return float(statistics.median(self.history[-self.history_len :]))

    def observe_trade(self, price: int) -> bool:
        """Record one trade price; True when continuous trading must halt now."""
        self.recent.append(price)
        if self.limit_up is not None and price >= self.limit_up:
            self.limit_hits += 1
        limit_state = self.limit_hits >= self.limit_trades  # buyers pinned at the band's limit
        if len(self.recent) < self.window and not limit_state:
            return False
        rolling = statistics.median(self.recent[-self.window :])
        if limit_state or abs(rolling - self.reference) > self.move * self.reference:
            self.limit_hits = 0
            self.fired += 1
            self.halted_rounds.add(self.round)
            self.recent.clear()
            return True
        return False

    def observe_quote(self, is_bid: bool, price: int, who: int | None = None) -> bool:
        """A shout that did not trade: bids at the band's ceiling from ``limit_trades`` different traders
        are a limit state (buyers pinned at the band) and halt continuous trading. Counting traders, not
        shouts, keeps one agent from halting the market by repeating its own bid."""
        if not is_bid or self.limit_up is None or price < self.limit_up:
            return False
        self.limit_bidders.add(who if who is not None else len(self.limit_bidders))
        if len(self.limit_bidders) < self.limit_trades:
            return False
        self.limit_bidders.clear()
        self.fired += 1
        self.halted_rounds.add(self.round)
        self.recent.clear()
        return True

    def end_round(self, median_price: float | None) -> None:
        """Close the round: its median joins the reference history."""
        if median_price is not None:
            self.history.append(median_price)
        self.recent.clear()
        self.limit_hits = 0
        self.limit_bidders.clear()
        self.round += 1


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
        if config.order not in ("efficient", "random"):
            raise ValueError("order must be 'efficient' or 'random'")
        if config.relay is not None and (config.mechanism != "offers" or market is None or not config.batch):
            raise ValueError("relay: the offers mechanism on a chain, batched settlement (not off chain)")
        self.market = market
        self.config = config
        self.progress = progress
        self.rng = random.Random(config.seed)
        ref, spread = config.reference_price, config.spread

        def draw() -> int:
            return int(ref * self.rng.uniform(1 - spread, 1 + spread))

        costs = sorted(draw() for _ in range(config.providers))
        values = sorted((draw() for _ in range(config.buyers)), reverse=True)
        self.spec = config.shock_spec
        entrants = self.spec.entrants if self.spec is not None else 0
        entrant_values = [draw() for _ in range(entrants)]

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
            Trader(i, Role.SELLER, c, st)
            for i, (c, st) in enumerate(zip(costs, strategies(len(costs)), strict=True))
        ]
        self.buyers = [
            Trader(config.providers + i, Role.BUYER, v, st)
            for i, (v, st) in enumerate(zip(values, strategies(len(values)), strict=True))
        ]
        # entrants: extra buyers that only trade during the shock span
        first = config.providers + len(values)
        self.entrants = [
            Trader(first + i, Role.BUYER, v, st)
            for i, (v, st) in enumerate(zip(entrant_values, strategies(entrants), strict=True))
        ]
        # multi-unit orders: drawn only when asked for, so one-unit runs keep their random stream
        if config.max_units > 1:
            for t in [*self.sellers, *self.buyers]:
                t.units = self.rng.randint(1, config.max_units)
        if self.spec is not None:
            for e in self.entrants:
                e.units = self.spec.entrant_units
        self.base_units = {t.index: t.units for t in [*self.sellers, *self.buyers, *self.entrants]}
        if max(self.base_units.values()) > 1 and config.mechanism not in ("offers", "call"):
            raise ValueError(
                f"multi-unit orders (max_units, entrant_units) need the offers or call mechanism, "
                f"not {config.mechanism!r}"
            )
        self.base_values = {b.index: b.limit for b in [*self.buyers, *self.entrants]}
        self.costs = {s.index: s.limit for s in self.sellers}
        self.momentum: set[int] = set()
        self.withdrawing: set[int] = set()
        if self.spec is not None:
            k = round(self.spec.momentum * len(self.buyers))
            self.momentum = {b.index for b in self.rng.sample(self.buyers, k)}
            w = round(self.spec.withdraw * len(self.sellers))
            self.withdrawing = {s.index for s in self.rng.sample(self.sellers, w)}
        self.equilibrium = competitive_equilibrium(
            [b.limit for b in self.buyers for _ in range(b.units)],
            [s.limit for s in self.sellers for _ in range(s.units)],
        )
        self.mechanism: Mechanism = build(config.mechanism, ref, order=config.order)
        self.agents: dict[int, Agent] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.house: AuctionHouse | None = None
        self.calls: CallHouse | None = None  # the call mechanism on the CallMarket contract
        self._held0 = 0
        self.breaker: CircuitBreaker | None = None
        self._band_history: list[float] = [float(self.equilibrium.price)]
        self._last_price: float = float(self.equilibrium.price)
        self._value_log: dict[int, dict[int, int]] = {}  # round -> trader -> value at round end
        self._start_block = 0
        self._offers: Any = None  # OffersClient for the batched settlement
        self._escrow: Any = None
        self._escrow_address = str(market.suite.contracts["AgentEscrow"].address).lower() if market else ""
        self._chain_seconds = 0.0  # time spent in settlement batches
        self._relay: Any = None  # RelayClient when config.relay is set
        self._relay_posted = self._relay_discovered = 0

    # -- setup -----------------------------------------------------------------------------------------

    def _mandate(self, reference: int | None = None) -> Mandate:
        if not self.config.guardrails:
            return Mandate(
                budget={ETH: self.config.fund}, max_per_deal={ETH: self.config.reference_price * 100}
            )
        band = PriceBand(reference or self.equilibrium.price, self.config.band_bps)
        return Mandate(
            budget={ETH: self.config.fund},
            max_per_deal={ETH: self.config.reference_price * 100},
            price_bands={resource_id(GPU_HOUR): band},
        )

    def _all_buyers(self) -> list[Trader]:
        return [*self.buyers, *self.entrants]

    def setup(self) -> None:
        everyone = [*self.sellers, *self._all_buyers()]
        made = self._make_agents(len(everyone))
        for trader, agent in zip(everyone, made, strict=True):
            role = "provider" if trader.role is Role.SELLER else "buyer"
            agent.name = f"{role}-{trader.index}-{trader.strategy}"
            if trader.role is Role.BUYER:
                agent.with_mandate(self._mandate())
            self.agents[trader.index] = agent
        if self.config.mechanism in AUCTION_MECHANISMS:
            self.house = AuctionHouse(
                self.market,
                self.agents,
                self.mechanism,
                self.rng,
                self.config.reference_price,
                order=self.config.order,
            )
            self._held0 = self.house.held()
        if isinstance(self.mechanism, Call):
            self.calls = CallHouse(self.market, self.agents, self.mechanism)
            self._held0 = self.calls.held()

    def _make_agents(self, n: int) -> list[Agent]:
        """Funded agents; on anvil with ``anvil_setBalance`` (one batch), so any number can be funded."""
        if self.market.chain.kind != "anvil":
            return self.market.agents(n, fund=self.config.fund, prefix="sim")
        made = self.market.agents(n, fund=0, prefix="sim")
        transport = self.market.chain.transactor.transport
        answers = transport.batch([("anvil_setBalance", [a.address, hex(self.config.fund)]) for a in made])
        bad = [a for a in answers if isinstance(a, BaseException)]
        if bad:
            raise bad[0]
        return made

    # -- settlement ------------------------------------------------------------------------------------

    def settle(self, match: Match, round_: int) -> TradeRecord:
        """Lock and settle one trade in the escrow; raises MandateViolation before anything is sent."""
        buyer, seller = self.agents[match.buyer], self.agents[match.seller]
        gas0, txs0 = buyer.gas_used + seller.gas_used, buyer.tx_count + seller.tx_count
        terms_hash = content_hash(f"{GPU_HOUR} x{match.quantity} round {round_} {match.reference}")
        if self.config.mechanism in ("offers", "negotiated") and "OfferBook" in self.market.suite:
            # the provider's quote is an EIP-712 signed sell offer reserved for the buyer, who fills it
            if match.bond:
                seller.offers.deposit(match.bond)
            signed = seller.offers.offer(
                "sell",
                GPU_HOUR,
                match.price,
                match.quantity,
                taker=buyer.address,
                bond_per_unit=match.bond,
                delivery=match.delivery_seconds,
                terms_hash=terms_hash,
                expiry=timedelta(hours=1),
            )
            deal = buyer.fill(signed, match.quantity).deal
        else:
            deal = buyer.buy(
                seller,
                match.price,
                resource=GPU_HOUR,
                units=match.quantity,
                deliver_by=timedelta(seconds=match.delivery_seconds + 3600),
                bond=match.bond,
                terms_hash=terms_hash,
            )
            if match.bond:
                deal = seller.escrow.post_bond(deal)
        deal = seller.escrow.submit(deal, content_hash(f"results of deal {deal.id}"))
        deal = buyer.escrow.accept(deal)
        return self._record(
            match,
            round_,
            deal.id,
            buyer.gas_used + seller.gas_used - gas0,
            buyer.tx_count + seller.tx_count - txs0,
        )

    def _settle_batched(self, matches: list[Match], r: int) -> tuple[list[TradeRecord], int]:
        """The client's fast pipeline: every trade of the round goes through the same three phases, each
        one JSON-RPC batch of locally signed transactions with snapshot gas limits (no estimation):
        open + fund (the buyer fills the provider's signed offer, or funds an escrow deal), submit,
        accept. Mandates are checked for every buyer before anything is sent."""
        if not matches:
            return [], 0
        chain = self.market.chain
        escrow = self._escrow_client.contract
        book = self.market.suite.contracts.get("OfferBook")
        via_offers = self.config.mechanism in ("offers", "negotiated") and book is not None
        if via_offers and self._offers is None:
            from ..clients.offers import OffersClient

            self._offers = OffersClient.from_suite(self.market.suite)  # one client signs for every maker
        now = chain.now()
        refused = 0
        live: list[Match] = []
        for m in matches:
            try:
                self.agents[m.buyer].check(m.price * m.quantity, ETH, resource=GPU_HOUR, unit_price=m.price)
            except MandateViolation:
                refused += 1
                continue
            live.append(m)
        if not live:
            return [], refused
        bonds = [m for m in live if m.bond]
        if bonds and via_offers and book is not None:  # providers pre-fund their bonds in the OfferBook
            self._send_phase(
                [
                    TxRequest(
                        self.agents[m.seller].account,
                        to=book.address,
                        data=calldata(book, "deposit"),
                        value=m.bond,
                        gas=80_000,
                    )
                    for m in bonds
                ],
                [self.agents[m.seller] for m in bonds],
            )
        opens: list[TxRequest] = []
        relayed: list[tuple[Match, Any]] = []  # (match, the maker's signed offer) for the relay
        for m in live:
            buyer, seller = self.agents[m.buyer], self.agents[m.seller]
            terms_hash = content_hash(f"{GPU_HOUR} x{m.quantity} round {r} {m.reference}")
            if via_offers and book is not None:
                offer = self._offers.build(
                    "sell",
                    GPU_HOUR,
                    m.price,
                    m.quantity,
                    taker=buyer.address,
                    bond_per_unit=m.bond,
                    delivery=m.delivery_seconds,
                    terms_hash=terms_hash,
                    expiry=now + 3600,
                    counter=0,  # fresh agents never cancel-all: no chain read per offer
                    maker=seller.address,
                )
                signed = self._offers.sign(offer, key=seller.account)
                if self.config.relay is not None:
                    relayed.append((m, signed))
                    continue  # the buyer fills what it discovers on the relay (below)
                data = calldata(book, "fill", offer.as_tuple(), signed.signature, m.quantity)
                opens.append(
                    TxRequest(
                        buyer.account,
                        to=book.address,
                        data=data,
                        value=m.price * m.quantity,
                        gas_key="offers.fill_signed_eth",
                    )
                )
            else:
                terms = DealTerms(
                    buyer.address,
                    seller.address,
                    m.price * m.quantity,
                    now + m.delivery_seconds + 7200,
                    terms_hash=terms_hash,
                )
                data = calldata(escrow, "create", terms.as_tuple())
                opens.append(
                    TxRequest(
                        buyer.account,
                        to=escrow.address,
                        data=data,
                        value=m.price * m.quantity,
                        gas_key="escrow.fund_eth",
                    )
                )
        if relayed:
            opens = self._via_relay(relayed, book)
        with contextlib.ExitStack() as stack:
            for m in live:
                stack.enter_context(
                    self.agents[m.buyer].spending(
                        m.price * m.quantity, ETH, resource=GPU_HOUR, unit_price=m.price
                    )
                )
            opened = self._send_phase(opens, [self.agents[m.buyer] for m in live])
        deals = [self._opened(receipt) for receipt in opened]
        submits = [
            TxRequest(
                self.agents[m.seller].account,
                to=escrow.address,
                data=calldata(escrow, "submit", d[0], d[1], content_hash(f"results of deal {d[0]}")),
                gas_key="escrow.submit",
            )
            for m, d in zip(live, deals, strict=True)
        ]
        submitted = self._send_phase(submits, [self.agents[m.seller] for m in live])
        accepts = [
            TxRequest(
                self.agents[m.buyer].account,
                to=escrow.address,
                data=calldata(escrow, "accept", d[0], d[1]),
                gas_key="escrow.accept",
            )
            for m, d in zip(live, deals, strict=True)
        ]
        accepted = self._send_phase(accepts, [self.agents[m.buyer] for m in live])
        out = []
        for m, d, *receipts in zip(live, deals, opened, submitted, accepted, strict=True):
            gas = sum(int(x["gasUsed"]) for x in receipts)
            out.append(self._record(m, r, d[0], gas, len(receipts), d[1][_BOND]))
        return out, refused

    def _via_relay(self, relayed: list[tuple[Match, Any]], book: Any) -> list[TxRequest]:
        """Providers post their signed offers to the relay (batches of 100); each buyer then finds the
        offer reserved for it by querying the relay (this provider, the GPU-hour, sell side, at most the
        agreed price, enough units left) and fills the signed offer the relay returned, checked against
        the chain's OfferBook rules by the relay on the way in. Nothing is filled that the relay did not
        hand back."""
        from ..relay.client import RelayClient

        if self._relay is None:
            self._relay = RelayClient(str(self.config.relay))
        relay = self._relay
        signed_offers = [signed for _, signed in relayed]
        for k in range(0, len(signed_offers), 100):
            for answer in relay.post_many(signed_offers[k : k + 100]):
                if isinstance(answer, BaseException):
                    raise answer  # the relay refused a simulator offer: a bug, not a market outcome
        self._relay_posted += len(signed_offers)
        opens: list[TxRequest] = []
        for m, mine in relayed:
            buyer, seller = self.agents[m.buyer], self.agents[m.seller]
            page = relay.query(
                resource=GPU_HOUR,
                side="sell",
                maker=seller.address,
                max_price=m.price,
                min_remaining=m.quantity,
                limit=100,
            )
            found = next(
                (
                    o.signed
                    for o in page.offers
                    if str(o.offer.taker).lower() == buyer.address.lower() and o.offer.unit_price == m.price
                ),
                None,
            )
            if found is None:
                raise RuntimeError(f"the relay lists no offer of {seller.address} for {buyer.address}")
            if found.hash != mine.hash:
                raise RuntimeError("the relay returned an offer other than the one its maker posted")
            self._relay_discovered += 1
            opens.append(
                TxRequest(
                    buyer.account,
                    to=book.address,
                    data=calldata(book, "fill", found.offer.as_tuple(), found.signature, m.quantity),
                    value=m.price * m.quantity,
                    gas_key="offers.fill_signed_eth",
                )
            )
        return opens

    @property
    def _escrow_client(self) -> Any:
        """One read-only escrow client for the run (``Market.escrow`` builds a new one per access)."""
        if self._escrow is None:
            self._escrow = self.market.escrow
        return self._escrow

    def _opened(self, receipt: Any) -> tuple[int, tuple[Any, ...]]:
        """(deal id, deal struct) of the receipt's ``DealCreated``, decoded with eth-abi directly (web3's
        event machinery costs ~20 ms a log; the deal id is the first indexed topic)."""
        escrow = self._escrow_address
        for log in receipt["logs"]:
            topics = log["topics"]
            if str(log["address"]).lower() == escrow and bytes(topics[0]) == _DEAL_CREATED:
                deal = decode_static(_DEAL_TYPES, bytes(log["data"]))  # the struct's 15 static words lead
                return int.from_bytes(bytes(topics[1]), "big"), deal
        raise RuntimeError("no DealCreated in the receipt")

    def _send_phase(self, requests: list[TxRequest], senders: list[Agent]) -> list[Any]:
        """One batch; every receipt must be a success (a revert would be a simulator bug). Each agent's
        gas is counted by its signing policy when the Transactor reports the mined receipt."""
        chain = self.market.chain
        with chain.batch_mining():  # anvil: the whole phase in a few blocks, not one block per transaction
            handles = chain.transactor.transact_many(requests, wait=False)
        receipts: list[Any] = chain.transactor.wait_all(handles)
        if len(receipts) != len(senders):
            raise RuntimeError(f"{len(requests)} requests gave {len(receipts)} receipts")
        return receipts

    def _trader(self, index: int) -> Trader:
        return self._by_index[index]

    @property
    def _by_index(self) -> dict[int, Trader]:
        # the population is fixed after __init__: build the map once (it was rebuilt per trade record)
        cached: dict[int, Trader] | None = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {t.index: t for t in [*self.sellers, *self._all_buyers()]}
            self.__dict__["_index_cache"] = cached
        return cached

    def _record(
        self, m: Match, round_: int, deal_id: int, gas: int, txs: int, bond: int | None = None
    ) -> TradeRecord:
        tb, ts = self._trader(m.buyer), self._trader(m.seller)
        return TradeRecord(
            round_,
            self.agents[m.buyer].address,
            self.agents[m.seller].address,
            tb.strategy,
            ts.strategy,
            m.price,
            tb.limit,
            ts.limit,
            m.bond if bond is None else bond,
            m.delivery_seconds,
            deal_id,
            gas,
            txs,
            "ACCEPTED",
            self.base_values[m.buyer],
            m.quantity,
        )

    def _settle_all(self, matches: list[Match], round_: int) -> list[TradeRecord | BaseException]:
        """Settle a round's trades; on a node, concurrently (each agent is in at most one trade a round)."""
        workers = self.config.workers or (1 if self.market.chain.kind == "embedded" else 8)

        def one(m: Match) -> TradeRecord | BaseException:
            try:
                return self.settle(m, round_)
            except Exception as exc:
                return exc

        if workers <= 1 or len(matches) <= 1:
            return [one(m) for m in matches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="settle")
        return list(self._pool.map(one, matches))

    # -- the run -----------------------------------------------------------------------------------------

    def _trade_record(self, sale: Any, round_: int) -> TradeRecord:
        return self._record(sale.match, round_, sale.deal.id, sale.gas, sale.txs, sale.deal.terms.bond)

    def _settle_matches(self, matches: list[Match], r: int) -> tuple[list[TradeRecord], int]:
        t0 = time.perf_counter()
        try:
            return self._settle_matches_timed(matches, r)
        finally:
            self._chain_seconds += time.perf_counter() - t0

    def _settle_matches_timed(self, matches: list[Match], r: int) -> tuple[list[TradeRecord], int]:
        if self.config.batch:
            return self._settle_batched(matches, r)
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

    def _round_trades(
        self, r: int, buyers: list[Trader], sellers: list[Trader]
    ) -> tuple[list[TradeRecord], int]:
        """Run round ``r`` on chain; returns its settled trades and how many the mandates refused."""
        if self.house is not None:
            before = self.house.refused
            t0 = time.perf_counter()
            sales = self.house.run_round(buyers, sellers, r)  # bidding and settlement are one on chain
            self._chain_seconds += time.perf_counter() - t0
            for sale in sales:
                self._after_trade(sale.match.price)
            return [self._trade_record(s, r) for s in sales], self.house.refused - before
        refused0 = self.calls.refused if self.calls is not None else 0
        steps = self.spec.substeps if self.spec is not None and r in self.config.shock_span() else 1
        trades: list[TradeRecord] = []
        refused = 0
        b_left, s_left = list(buyers), list(sellers)
        for t in [*buyers, *sellers]:
            t.units = self.base_units[t.index]  # a fresh order each round

        def without(traded: list[Match]) -> None:
            # units traded leave the round's orders; a trader stays while it holds units
            nonlocal b_left, s_left
            for m in traded:
                self._trader(m.buyer).units -= m.quantity
                self._trader(m.seller).units -= m.quantity
            b_left = [b for b in b_left if b.units > 0]
            s_left = [s for s in s_left if s.units > 0]

        for _ in range(steps):
            if not b_left or not s_left:
                break
            if self.calls is not None:
                # quotes, clearing and settlement on the CallMarket contract, then delivery (one batch)
                t0 = time.perf_counter()
                units = self.calls.run_round(b_left, s_left, r, self.rng)
                self._chain_seconds += time.perf_counter() - t0
                matches = [u.match for u in units]
                for m in matches:
                    self._after_trade(m.price)
                trades += [
                    self._record(u.match, r, u.deal_id, u.gas, u.txs, int(u.deal[_BOND])) for u in units
                ]
                without(matches)
                self._update_momentum(r)
                continue
            matches = self.mechanism.clear(b_left, s_left, self.rng)
            for m in matches:
                self._after_trade(m.price)
            reopen = getattr(self.mechanism, "reopen_price", None)
            if reopen is not None:
                # re-centre the band (and the mandates' band) on the re-opening auction's price before
                # anything settles, so no matched trade is refused after the match
                self._band_history.append(float(reopen))
                if self.breaker is not None:
                    self.breaker.history.append(float(reopen))
                self._apply_guardrails(latest=True)
            got, no = self._settle_matches(matches, r)
            trades += got
            refused += no
            without(matches)
            self._update_momentum(r)
            if getattr(self.mechanism, "halted", False):
                break  # the breaker re-opened this round with its call auction: the round is over
        if self.calls is not None:
            refused += self.calls.refused - refused0
        return trades, refused

    def _after_trade(self, price: int) -> None:
        self._last_price = float(price)

    def _update_momentum(self, r: int) -> None:
        """Momentum buyers' values follow the last observed price (cascade shocks)."""
        if self.spec is None or not self.momentum:
            return
        in_span = r in self.config.shock_span()
        mult = self.spec.momentum_multiplier(self._last_price, self.equilibrium.price) if in_span else 1.0
        for b in self.buyers:
            if b.index in self.momentum:
                b.limit = max(b.limit, int(self.base_values[b.index] * mult)) if in_span else b.limit

    def _set_values(self, r: int) -> None:
        """Values at the start of round ``r``: exogenous shape, momentum from the last price."""
        spec = self.spec
        exo = spec.multiplier(r, self.config.rounds) if spec is not None else 1.0
        in_span = r in self.config.shock_span()
        for b in self.buyers:
            b.limit = int(self.base_values[b.index] * exo)
        for e in self.entrants:
            assert spec is not None
            e.limit = int(self.base_values[e.index] * spec.factor)
        if in_span:
            self._update_momentum(r)

    def _band_reference(self) -> int:
        return int(statistics.median(self._band_history[-self.config.band_window :]))

    def _apply_guardrails(self, *, latest: bool = False) -> int | None:
        """Cap quotes and re-centre the mandates' band on the moving reference (``latest``: on the last
        clearing price, after a re-opening auction)."""
        if not self.config.guardrails:
            return None
        ref = int(self._band_history[-1]) if latest else self._band_reference()
        mandate = self._mandate(ref)
        ceiling = mandate.price_bands[resource_id(GPU_HOUR)].ceiling
        if self.breaker is not None:
            self.breaker.limit_up = ceiling
        for b in self._all_buyers():
            b.cap = ceiling  # quotes are capped inside the strategies, before matching
            agent = self.agents[b.index]
            agent.mandate = replace(agent.mandate, price_bands=mandate.price_bands)
            agent.guard.mandate = agent.mandate  # same band on chain side; spending totals carry on
        return ref

    def _wire_breaker(self) -> None:
        if not self.config.guardrails:
            return
        self.breaker = CircuitBreaker(
            self.equilibrium.price,
            self.config.pause_move,
            self.config.breaker_trades,
            self.config.band_window,
        )
        if isinstance(self.mechanism, Offers):
            breaker = self.breaker
            self.mechanism.halt = breaker.observe_trade
            self.mechanism.halt_quote = breaker.observe_quote
            self.mechanism.reopen = build("call", self.config.reference_price)

    def run(self) -> SimResult:
        cfg = self.config
        started = time.perf_counter()
        if not self.agents:
            self.setup()
        if self.market is not None:
            self._start_block = int(self.market.chain.w3.eth.block_number) + 1
        self._wire_breaker()
        gas0 = sum(a.gas_used for a in self.agents.values())
        rounds: list[RoundStats] = []
        trades: list[TradeRecord] = []
        everyone = [*self._all_buyers(), *self.sellers]
        earned: dict[int, int] = {t.index: 0 for t in everyone}
        match_seconds = 0.0
        refused_total = 0
        span = cfg.shock_span()
        base_mean = statistics.fmean(self.base_values[b.index] for b in self.buyers)
        peak_mult = 1.0
        for r in range(cfg.rounds):
            shocked = r in span
            self._set_values(r)
            buyers = [*self.buyers, *(self.entrants if shocked else [])]
            sellers = [s for s in self.sellers if not (shocked and s.index in self.withdrawing)]
            band_ref = self._apply_guardrails()
            t0, chain0 = time.perf_counter(), self._chain_seconds
            round_trades, refused = self._round_trades(r, buyers, sellers)
            match_seconds += time.perf_counter() - t0 - (self._chain_seconds - chain0)
            # current values: at the end of the round (momentum may have raised them within it)
            # every unit at its trader's limit: the demand and supply step curves of multi-unit orders
            values = [b.limit for b in buyers for _ in range(self.base_units[b.index])]
            costs = [s.limit for s in sellers for _ in range(self.base_units[s.index])]
            self._value_log[r] = {b.index: b.limit for b in buyers} | {s.index: s.limit for s in sellers}
            peak_mult = max(peak_mult, statistics.fmean(b.limit for b in self.buyers) / base_mean)
            eq = competitive_equilibrium(values, costs)
            by_addr = {self.agents[t.index].address: t for t in everyone}
            surplus: dict[int, int] = {}
            for rec in round_trades:
                rec.value = by_addr[rec.buyer].limit
                b_i, s_i = by_addr[rec.buyer].index, by_addr[rec.seller].index
                surplus[b_i] = surplus.get(b_i, 0) + (rec.value - rec.price) * rec.quantity
                surplus[s_i] = surplus.get(s_i, 0) + (rec.price - rec.cost) * rec.quantity
            for t in [*buyers, *sellers]:
                gain = surplus.get(t.index, 0)
                earned[t.index] += gain
                self.mechanism.outcome(t, gain, t.index in surplus)
            prices = [t.price for t in round_trades]
            median = statistics.median(prices) if prices else None
            if median is not None:
                self._band_history.append(float(median))
            paused = self.breaker is not None and r in self.breaker.halted_rounds
            if self.breaker is not None:
                self.breaker.end_round(median)
            fundamental = [self.base_values[b.index] for b in buyers for _ in range(self.base_units[b.index])]
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
                sum((t.value - t.cost) * t.quantity for t in round_trades),
                refused,
                paused,
                median,
                max_surplus(fundamental, costs),
                sum((t.fundamental_value - t.cost) * t.quantity for t in round_trades),
                band_ref,
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
        if self.calls is not None:
            residual = self.calls.held() - self._held0  # every bid's lock was paid out or withdrawn
        gas = sum(a.gas_used for a in self.agents.values()) - gas0
        result = self._result(
            rounds,
            trades,
            earned,
            self._chain_seconds,
            time.perf_counter() - started,
            refused_total,
            len(self.breaker.halted_rounds) if self.breaker else 0,
            gas,
            residual,
        )
        result.breaker_fired = self.breaker.fired if self.breaker else 0
        result.match_seconds = match_seconds
        result.peak_value_multiplier = peak_mult
        result.relay_posted, result.relay_discovered = self._relay_posted, self._relay_discovered
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        return result

    # -- what settled on chain -------------------------------------------------------------------------

    def _chain_efficiency(self, rounds: list[RoundStats], trades: list[TradeRecord]) -> tuple[float, bool]:
        """Efficiency from the escrow's events: every ``DealCreated`` of this run (buyer, seller from its
        topics) that has a ``DealAccepted``, valued with the agents' private values of the deal's round."""
        escrow = self._escrow_client
        address = escrow.address
        abi = escrow.contract.abi
        from eth_utils import event_abi_to_log_topic

        def topic(name: str) -> str:
            entry = next(e for e in abi if e.get("type") == "event" and e["name"] == name)
            return "0x" + bytes(event_abi_to_log_topic(entry)).hex()

        created, accepted = topic("DealCreated"), topic("DealAccepted")
        query = {"address": address, "fromBlock": hex(self._start_block), "toBlock": "latest"}
        logs = self.market.chain.transactor.transport.batch(
            [
                ("eth_getLogs", [{**query, "topics": [created]}]),
                ("eth_getLogs", [{**query, "topics": [accepted]}]),
            ]
        )
        for answer in logs:
            if isinstance(answer, BaseException):
                raise answer

        def word(x: Any) -> int:
            return int(x if isinstance(x, str) else "0x" + bytes(x).hex(), 16)

        parties = {
            word(log["topics"][1]): (word(log["topics"][2]), word(log["topics"][3])) for log in logs[0]
        }
        amount_at = DEAL_STRUCT.names.index("amount")
        amounts = {
            word(log["topics"][1]): decode_static(_DEAL_TYPES, _bytes(log["data"]))[amount_at]
            for log in logs[0]
        }
        done = {word(log["topics"][1]) for log in logs[1]}
        ours = {t.deal_id for t in trades}
        index = {int(self.agents[i].address, 16): i for i in self.agents}
        by_deal = {t.deal_id: t for t in trades}
        realised = 0
        match = True
        for deal_id in done & ours:
            buyer, seller = parties[deal_id]
            rec = by_deal[deal_id]
            values = self._value_log[rec.round]
            # the deal's amount says how many units it holds (each at the record's price)
            units, rest = divmod(int(amounts[deal_id]), rec.price) if rec.price else (rec.quantity, 0)
            realised += (values[index[buyer]] - values[index[seller]]) * units
            match &= int(rec.buyer, 16) == buyer and int(rec.seller, 16) == seller
            match &= units == rec.quantity and rest == 0
        match &= ours <= done
        best = sum(r.max_surplus for r in rounds)
        return (realised / best if best else 1.0), match

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
        best_f = sum(r.max_surplus_fundamental for r in rounds)
        realised_f = sum(r.realised_surplus_fundamental for r in rounds)
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
        # over the current equilibrium: how far above the round's competitive-equilibrium price interval
        # (any price inside it clears the market; 0 when inside or below)
        ce = {r.round: max(1, r.equilibrium_high) for r in rounds}
        trade_cur = max((max(0, t.price - ce[t.round]) / ce[t.round] for t in trades), default=0.0)
        round_cur = max(
            (
                max(0.0, r.median_price - ce[r.round]) / ce[r.round]
                for r in rounds
                if r.median_price is not None
            ),
            default=0.0,
        )
        round_pre = max(
            ((r.median_price - ref) / ref for r in rounds if r.median_price is not None), default=0.0
        )
        trade_pre = max(((t.price - ref) / ref for t in trades), default=0.0)
        efficiency_records = realised / best if best else 1.0
        efficiency, events_match = efficiency_records, True
        if self.market is not None:
            escrow = self._escrow_client
            balance, totals = escrow.solvency()
            calls = [
                (
                    "eth_call",
                    [
                        {
                            "to": escrow.address,
                            "data": "0x" + calldata(escrow.contract, "dealStatus", t.deal_id).hex(),
                        },
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
            efficiency, events_match = self._chain_efficiency(rounds, trades)
        else:
            all_settled = solvent = True
        n = len(trades)
        return SimResult(
            config=asdict(cfg),
            chain=self.market.chain.kind if self.market is not None else "none",
            rounds=rounds,
            trades=trades,
            efficiency=efficiency,
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
            efficiency_fundamental=realised_f / best_f if best_f else 1.0,
            efficiency_records=efficiency_records,
            events_match=events_match,
            peak_trade_dev_current=trade_cur,
            peak_round_dev_current=round_cur,
            peak_round_dev_preshock=round_pre,
            peak_trade_dev_preshock=trade_pre,
        )


def _bytes(data: Any) -> bytes:
    """Log data as bytes (a JSON-RPC answer's hex string or web3's bytes)."""
    return bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)


class _Nobody:
    """Stand-in agent of an off-chain run."""

    def __init__(self, index: int):
        self.address = f"0x{index:040x}"
        self.gas_used = 0
        self.mandate = Mandate()
        self.guard = type("Guard", (), {"mandate": None})()


class OffChainSim(ComputeMarketSim):
    """The same market with every mechanism's trades found by its pure-Python clearing (``Mechanism.clear``)
    and nothing sent to a chain: for evaluating strategies over many seeds and rounds. Metrics other than
    gas are comparable with on-chain runs (the auction mechanisms' Python clearing mirrors the contracts'
    rules; prices and winners can differ slightly: Dutch price steps, ties)."""

    def __init__(self, config: SimConfig):
        super().__init__(None, config)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.agents = {t.index: _Nobody(t.index) for t in [*self.sellers, *self._all_buyers()]}  # type: ignore[misc]

    def _settle_matches(self, matches: list[Match], r: int) -> tuple[list[TradeRecord], int]:
        return [self._record(m, r, 0, 0, 0) for m in matches], 0

    def _round_trades(
        self, r: int, buyers: list[Trader], sellers: list[Trader]
    ) -> tuple[list[TradeRecord], int]:
        house, self.house = self.house, None
        try:
            return super()._round_trades(r, buyers, sellers)
        finally:
            self.house = house


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


def run_seeds(
    config: SimConfig,
    seeds: int | list[int],
    *,
    market: Market | None = None,
    offchain: bool = False,
    progress: Callable[[int, int, RoundStats], None] | None = None,
) -> list[SimResult]:
    """The same market over many seeds (``config.seed``, ``config.seed + 1``, ... when ``seeds`` is a
    count), on one deployed suite (fresh agents per seed) or off chain."""
    chosen = list(range(config.seed, config.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    out = []
    for seed in chosen:
        cfg = replace(config, seed=seed)
        if offchain:
            out.append(OffChainSim(cfg).run())
        else:
            assert market is not None, "an on-chain run needs a market"
            out.append(ComputeMarketSim(market, cfg, progress).run())
    return out


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
    "run_seeds",
]
