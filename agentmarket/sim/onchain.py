"""The auction mechanisms of the simulated market, run on the auction contracts.

Each round the :class:`AuctionHouse` runs one on-chain auction per unit, cheapest reserve first
(or highest procurement budget first; ``order="random"`` shuffles them) (sequential
single-unit auctions; a buyer that won leaves the round, as does a provider that sold):

==============  ===================================================================================
english         the provider creates an EnglishAuction (reserve = its cost); buyers bid in turns,
                each per its strategy (minimum increment up to its limit) against the on-chain high
                bid; time jumps past the end; the provider settles into an escrow deal
dutch           the provider creates a DutchAuction falling from 3x the reference price to its
                cost; every buyer watches the clock; time jumps to the first moment one buyer's take
                price is reached and that buyer buys (the purchase opens the escrow deal)
sealed/vickrey  the provider creates a SealedBidAuction; buyers commit (equal deposits hide the
                bids), time jumps, buyers reveal, time jumps, the provider settles, everyone reclaims
                its deposit (the winner gets back deposit - price)
procurement     the buyer creates a ProcurementAuction with its value as budget; providers ask in
                turns (undercutting the best ask while it covers cost + margin); time jumps; the
                buyer settles into an escrow deal (the unused budget comes back)
==============  ===================================================================================

Then the provider submits and the buyer accepts every deal of the round (batched). Winners and prices
come from the contracts' ``AuctionSettled`` events, nothing is decided in Python.

Every value-moving transaction is authorised by the sending agent's mandate first (price bands apply:
the bid is the unit price of the GPU-hour); a guarded agent never bids above its band's ceiling.

Speed: the hot path sends the contract calls directly through the chain's :class:`~agentmarket.tx.Transactor`
with fixed gas limits (no estimation; the :class:`~agentmarket.clients.auctions.AuctionClient` rebuilds an
auction from events on every call, which is right for one agent and too slow for thousands of bids on
the embedded chain); on a node, independent transactions (commits, reveals, reclaims, submits, accepts,
withdrawals) go out as one JSON-RPC batch with :meth:`~agentmarket.tx.Transactor.transact_many`.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from ..agent import Agent, resource_id
from ..clients.auctions import AuctionClient, sealed_commitment
from ..errors import MandateViolation
from ..market import Market
from ..strategies import AuctionKind as StrategyKind
from ..strategies import AuctionView, EnglishBidder
from ..tx import TxRequest
from ..types import ETH, ZERO_ADDRESS, AuctionKind, Deal, DealTemplate, content_hash
from .mechanisms import HOUR, ForwardAuction, Match, Mechanism, Procurement, Trader, auction_order

GPU_HOUR = "gpu-hour"
AUCTION_MECHANISMS = ("english", "dutch", "sealed", "vickrey", "procurement")
# fixed gas limits: only gasUsed is charged, a limit just has to be affordable; no estimation round trips
GAS = {
    "create": 400_000,
    "bid": 200_000,
    "buy": 450_000,
    "commit": 150_000,
    "reveal": 150_000,
    "settle": 450_000,
    "reclaim": 150_000,
    "withdraw": 120_000,
    "cancel": 120_000,
    "submit": 150_000,
    "accept": 200_000,
}
WINDOW = 900  # English / procurement bidding window (time jumps over it)
DUTCH_DURATION = 900
COMMIT, REVEAL = 600, 600


@dataclass
class Sale:
    """One auction that settled into an escrow deal."""

    match: Match
    deal: Deal
    gas: int  # every transaction of the auction (creation, all bids, settlement, reclaims)
    txs: int


class AuctionHouse:
    """Runs the round's auctions for a :class:`~agentmarket.sim.runner.ComputeMarketSim`."""

    def __init__(
        self,
        market: Market,
        agents: dict[int, Agent],
        mechanism: Mechanism,
        rng: random.Random,
        reference_price: int,
        *,
        batch: bool | None = None,
        order: str = "efficient",
    ):
        self.order = order
        self.market = market
        self.chain = market.chain
        self.agents = agents
        self.mechanism = mechanism
        self.rng = rng
        self.ref = reference_price
        self.contracts = AuctionClient.from_suite(market.suite).contracts
        self.escrow = market.escrow
        self.tx = market.chain.transactor
        self.batch = self.chain.kind != "embedded" if batch is None else batch
        self.refused = 0  # bids a mandate refused or capped (price band)
        self.resource = resource_id(GPU_HOUR)
        self.deposit = 3 * reference_price  # sealed deposit: the same for everyone, so it hides the bid
        # sales bind both sides (docs/design.md §6.12): the seller posts a bond when it creates the auction, and an
        # arbiter outside the market (the funder) is named in the template
        self.seller_bond = max(reference_price // 20, 1)
        funder = market.funder
        self.arbiter = funder.address if funder is not None else "0x" + "ab" * 20
        self._gas = 0
        self._txs = 0

    # -- sending ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _spend(self, agent: Agent, value: int, unit_price: int | None) -> Iterator[None]:
        if not value:
            yield
            return
        with agent.spending(
            value, ETH, resource=GPU_HOUR if unit_price is not None else None, unit_price=unit_price
        ):
            yield

    def _count(self, agent: Agent, receipt: Any) -> None:
        # the agent's own gas figures are kept by its signing policy on the transactor
        self._gas += int(receipt["gasUsed"])
        self._txs += 1

    def send(self, agent: Agent, fn: Any, gas: str, value: int = 0, unit_price: int | None = None) -> Any:
        with self._spend(agent, value, unit_price):
            receipt = self.tx.transact(agent.account, fn, value=value, gas=GAS[gas])
        self._count(agent, receipt)
        return receipt

    def send_many(self, items: Sequence[tuple[Agent, Any, str, int, int | None]]) -> list[Any]:
        """(agent, call, gas name, value, unit price) each; one JSON-RPC batch on a node."""
        if not items:
            return []
        if not self.batch:
            return [self.send(*item) for item in items]
        with contextlib.ExitStack() as stack:
            for agent, _, _, value, unit_price in items:
                stack.enter_context(self._spend(agent, value, unit_price))
            receipts: list[Any] = self.tx.transact_many(
                [
                    TxRequest(agent.account, fn, value=value, gas=GAS[gas])
                    for agent, fn, gas, value, _ in items
                ]
            )
        for (agent, *_), receipt in zip(items, receipts, strict=False):
            self._count(agent, receipt)
        return receipts

    def allowed(self, agent: Agent, price: int) -> bool:
        """Would the agent's mandate pay ``price`` for one GPU-hour? (reads only)"""
        try:
            agent.check(price, ETH, resource=GPU_HOUR, unit_price=price)
        except MandateViolation:
            return False
        return True

    def cap(self, agent: Agent, amount: int) -> int:
        """The most the agent's mandate lets it bid, up to ``amount`` (a capped bid counts as refused)."""
        if self.allowed(agent, amount):
            return amount
        self.refused += 1
        band = agent.mandate.price_bands.get(self.resource)
        ceiling = band.ceiling if band is not None else 0
        return ceiling if ceiling < amount and self.allowed(agent, ceiling) else 0

    # -- time ------------------------------------------------------------------------------------------

    def _start(self) -> int:
        """Pin the next block's timestamp and return it (auction windows start there)."""
        t0 = self.chain.now() + 1
        self.chain.set_next_timestamp(t0)
        return t0

    def _after(self, timestamp: int) -> None:
        if self.chain.now() <= timestamp:
            self.chain.travel_to(timestamp + 1)

    # -- helpers ---------------------------------------------------------------------------------------

    def _terms(self, creator: Agent, round_: int, *, sale: bool = True, min_price: int = 0) -> DealTemplate:
        return DealTemplate(
            creator=creator.address,
            delivery_delay=48 * HOUR,  # a round of auctions spans hours of chain time
            terms_hash=content_hash(f"{GPU_HOUR} x1 round {round_} {self.mechanism.name}"),
            arbiter=self.arbiter if sale else ZERO_ADDRESS,
            bond=max(1, min(self.seller_bond, min_price))
            if sale
            else 0,  # the contracts cap it at the reserve
        )

    def _id(self, kind: AuctionKind, receipt: Any) -> int:
        address = self.contracts[kind].address
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) == address and log["topics"]:
                return int.from_bytes(bytes(log["topics"][1]), "big")
        raise RuntimeError("no auction event in the creation receipt")

    def _settled(self, kind: AuctionKind, receipt: Any) -> tuple[str, int, Deal | None]:
        """(winner, price, escrow deal) from a settling receipt."""
        event = self.contracts[kind].events.AuctionSettled()
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) != self.contracts[kind].address:
                continue
            try:
                args = event.process_log(log)["args"]
            except Exception:
                continue
            winner, price, deal_id = (
                to_checksum_address(args["winner"]),
                int(args["price"]),
                int(args["dealId"]),
            )
            if deal_id == 0:
                return winner, 0, None
            escrow_logs = [
                x for x in receipt["logs"] if to_checksum_address(x["address"]) == self.escrow.address
            ]
            return winner, price, self.escrow._fold(escrow_logs)[deal_id]
        raise RuntimeError("no AuctionSettled event in the receipt")

    def _by_address(self, traders: Sequence[Trader], address: str) -> Trader:
        return next(t for t in traders if self.agents[t.index].address == address)

    # -- the round -------------------------------------------------------------------------------------

    def run_round(
        self, buyers: Sequence[Trader], sellers: Sequence[Trader], round_: int, halted: Any = None
    ) -> list[Sale]:
        """Run the round's auctions; ``halted()`` (optional) is asked before each one (circuit breaker)."""
        sales: list[Sale] = []
        procurement = isinstance(self.mechanism, Procurement)
        remaining, owners = (list(sellers), list(buyers)) if procurement else (list(buyers), list(sellers))
        for owner in auction_order(owners, self.order, self.rng, ascending=not procurement):
            if not remaining or (halted is not None and halted()):
                break
            gas0, txs0 = self._gas, self._txs
            sale = getattr(self, f"_{self.mechanism.name}")(owner, remaining, round_)
            if sale is not None:
                sale.gas, sale.txs = self._gas - gas0, self._txs - txs0
                sales.append(sale)
                other = sale.match.seller if isinstance(self.mechanism, Procurement) else sale.match.buyer
                remaining = [t for t in remaining if t.index != other]
        self.deliver(sales)
        return sales

    def deliver(self, sales: list[Sale]) -> None:
        """Every provider submits, then every buyer accepts (one batch each on a node)."""
        fns = self.escrow.contract.functions
        submits = [
            (
                self.agents[s.match.seller],
                fns.submit(s.deal.id, s.deal.terms.as_tuple(), content_hash(f"results of deal {s.deal.id}")),
                "submit",
                0,
                None,
            )
            for s in sales
        ]
        accepts = [
            (self.agents[s.match.buyer], fns.accept(s.deal.id, s.deal.terms.as_tuple()), "accept", 0, None)
            for s in sales
        ]
        for sale, r1, r2 in zip(sales, self.send_many(submits), self.send_many(accepts), strict=False):
            sale.gas += int(r1["gasUsed"]) + int(r2["gasUsed"])
            sale.txs += 2

    def withdraw_all(self) -> None:
        """Pull every credit (outbid English bids, refused payouts) back to its agent."""
        kind = {
            "english": AuctionKind.ENGLISH,
            "dutch": AuctionKind.DUTCH,
            "procurement": AuctionKind.PROCUREMENT,
        }.get(self.mechanism.name, AuctionKind.SEALED)
        contract = self.contracts[kind]
        agents = list(self.agents.values())
        calls = [
            (
                "eth_call",
                [
                    {
                        "to": contract.address,
                        "data": contract.functions.creditOf(a.address, ETH)._encode_transaction_data(),
                    },
                    "latest",
                ],
            )
            for a in agents
        ]
        answers = self.tx.transport.batch(calls)
        owed = [a for a, x in zip(agents, answers, strict=False) if int(x, 16)]
        self.send_many([(a, contract.functions.withdraw(ETH), "withdraw", 0, None) for a in owed])

    def held(self) -> int:
        """ETH the four auction contracts hold (bids, deposits, budgets, credits)."""
        return sum(int(self.chain.w3.eth.get_balance(c.address)) for c in self.contracts.values())

    # -- English ---------------------------------------------------------------------------------------

    def _english(self, seller: Trader, buyers: list[Trader], round_: int) -> Sale | None:
        mech = self.mechanism
        assert isinstance(mech, ForwardAuction)
        s = self.agents[seller.index]
        contract = self.contracts[AuctionKind.ENGLISH]
        terms = self._terms(s, round_, min_price=seller.limit)
        t0 = self._start()
        params = (seller.limit, t0, t0 + WINDOW, 60, mech.increment_bps)
        aid = self._id(
            AuctionKind.ENGLISH,
            self.send(s, contract.functions.create(params, terms.as_tuple()), "create", terms.bond),
        )
        limits = {b.index: mech.bid_limit(b, self.rng) for b in buyers}
        leader: Trader | None = None
        high = 0
        while True:
            moved = False
            for b in self.rng.sample(buyers, len(buyers)):
                view = AuctionView(
                    StrategyKind.ENGLISH,
                    seller.limit,
                    high,
                    mech.increment_bps,
                    len(buyers),
                    leading=leader is b,
                )
                action = EnglishBidder(limits[b.index]).bid(view, self.rng)
                if action is None:
                    continue
                agent = self.agents[b.index]
                if not self.allowed(agent, action.amount):  # the mandate's band stops this bidder here
                    self.refused += 1
                    limits[b.index] = 0
                    continue
                self.send(
                    agent, contract.functions.bid(aid, action.amount), "bid", action.amount, action.amount
                )
                leader, high, moved = b, action.amount, True
            if not moved:
                break
        if leader is None:
            self.send(s, contract.functions.cancel(aid), "cancel")
            return None
        self._after(t0 + WINDOW)
        winner, price, deal = self._settled(
            AuctionKind.ENGLISH, self.send(s, contract.functions.settle(aid, terms.as_tuple()), "settle")
        )
        assert deal is not None and winner == self.agents[leader.index].address
        return Sale(Match(leader.index, seller.index, price, reference=f"english #{aid}"), deal, 0, 0)

    # -- Dutch -----------------------------------------------------------------------------------------

    def _dutch(self, seller: Trader, buyers: list[Trader], round_: int) -> Sale | None:
        mech = self.mechanism
        assert isinstance(mech, ForwardAuction)
        s = self.agents[seller.index]
        contract = self.contracts[AuctionKind.DUTCH]
        terms = self._terms(s, round_, min_price=seller.limit)
        start, floor = 3 * self.ref, seller.limit
        if floor >= start:
            return None
        t0 = self._start()
        end = t0 + DUTCH_DURATION
        aid = self._id(
            AuctionKind.DUTCH,
            self.send(
                s, contract.functions.create((start, floor, t0, end), terms.as_tuple()), "create", terms.bond
            ),
        )

        def price_at(ts: int) -> int:
            return start - (start - floor) * (ts - t0) // (end - t0) if ts < end else floor

        best: tuple[int, float, Trader, int] | None = None
        for b in buyers:
            take = mech.take_price(b, floor, len(buyers), self.rng)
            take = self.cap(self.agents[b.index], take) if take >= floor else 0
            if take < floor:
                continue
            # earliest second at which the falling price is at most the take price
            ts = t0 + 1 + max(0, ((start - take) * (end - t0)) // (start - floor) - 1)
            while price_at(ts) > take:
                ts += 1
            key = (ts, self.rng.random(), b, take)
            if best is None or key[:2] < best[:2]:
                best = key
        if best is None:
            self.send(s, contract.functions.cancel(aid), "cancel")
            return None
        ts, _, b, _ = best
        price = price_at(ts)
        self.chain.set_next_timestamp(ts)
        buyer = self.agents[b.index]
        _, paid, deal = self._settled(
            AuctionKind.DUTCH,
            self.send(buyer, contract.functions.buy(aid, price, terms.as_tuple()), "buy", price, price),
        )
        assert deal is not None and paid == price
        return Sale(Match(b.index, seller.index, paid, reference=f"dutch #{aid}"), deal, 0, 0)

    # -- sealed first-price and Vickrey ----------------------------------------------------------------

    def _sealed(self, seller: Trader, buyers: list[Trader], round_: int) -> Sale | None:
        mech = self.mechanism
        assert isinstance(mech, ForwardAuction)
        vickrey = mech.name == "vickrey"
        s = self.agents[seller.index]
        kind = AuctionKind.SEALED
        contract = self.contracts[kind]
        terms = self._terms(s, round_, min_price=seller.limit)
        t0 = self._start()
        commit_end, reveal_end = t0 + COMMIT, t0 + COMMIT + REVEAL
        aid = self._id(
            kind,
            self.send(
                s,
                contract.functions.create(
                    (seller.limit, commit_end, reveal_end, 1_000, vickrey), terms.as_tuple()
                ),
                "create",
                terms.bond,
            ),
        )
        bids: list[tuple[Trader, int, bytes]] = []
        for b in buyers:
            amount = mech.sealed_bid(b, seller.limit, len(buyers), self.rng)
            if amount is None:
                continue
            amount = self.cap(self.agents[b.index], amount)
            if amount >= seller.limit:
                bids.append((b, amount, secrets.token_bytes(32)))
        if not bids:
            self._after(reveal_end)
            self.send(s, contract.functions.settle(aid, terms.as_tuple()), "settle")  # no sale
            return None
        chain_id = self.chain.chain_id
        commits = []
        for b, amount, salt in bids:
            agent = self.agents[b.index]
            commitment = sealed_commitment(agent.address, aid, chain_id, contract.address, amount, salt)
            deposit = max(amount, self.deposit)
            commits.append(
                (agent, contract.functions.commit(aid, commitment, deposit), "commit", deposit, amount)
            )
        self.send_many(commits)
        self._after(commit_end)
        self.send_many(
            [
                (
                    self.agents[b.index],
                    contract.functions.reveal(aid, amount, salt, max(amount, self.deposit)),
                    "reveal",
                    0,
                    None,
                )
                for b, amount, salt in bids
            ]
        )
        self._after(reveal_end)
        winner, price, deal = self._settled(
            kind, self.send(s, contract.functions.settle(aid, terms.as_tuple()), "settle")
        )
        self.send_many(
            [
                (self.agents[b.index], contract.functions.reclaim(aid, b"\x00" * 32, 0), "reclaim", 0, None)
                for b, _, _ in bids
            ]
        )
        if deal is None:
            return None
        w = self._by_address(buyers, winner)
        return Sale(Match(w.index, seller.index, price, reference=f"{mech.name} #{aid}"), deal, 0, 0)

    _vickrey = _sealed

    # -- procurement -----------------------------------------------------------------------------------

    def _procurement(self, buyer: Trader, sellers: list[Trader], round_: int) -> Sale | None:
        mech = self.mechanism
        assert isinstance(mech, Procurement)
        b = self.agents[buyer.index]
        kind = AuctionKind.PROCUREMENT
        contract = self.contracts[kind]
        budget = self.cap(b, buyer.quote_limit)  # the buyer's value, within its band
        if budget <= 0:
            return None
        terms = self._terms(b, round_, sale=False)
        t0 = self._start()
        params = (budget, t0 + WINDOW, 0, 1_000, False, 1, 0, 86_400)
        aid = self._id(
            kind, self.send(b, contract.functions.create(params, terms.as_tuple()), "create", budget, budget)
        )
        bidders = {s.index: mech.bidder(s, self.rng) for s in sellers}
        leader: Trader | None = None
        best = 0
        while True:
            moved = False
            for s in self.rng.sample(sellers, len(sellers)):
                view = AuctionView(
                    StrategyKind.PROCUREMENT,
                    budget,
                    best,
                    mech.increment_bps,
                    len(sellers),
                    leading=leader is s,
                    max_delivery_seconds=86_400,
                )
                action = bidders[s.index].bid(view, self.rng)
                if action is None or (best and action.amount >= best) or action.amount > budget:
                    continue
                delivery = action.delivery_seconds or HOUR
                self.send(
                    self.agents[s.index], contract.functions.bid(aid, action.amount, delivery, 0), "bid"
                )
                leader, best, moved = s, action.amount, True
            if not moved:
                break
        self._after(t0 + WINDOW)
        winner, price, deal = self._settled(
            kind, self.send(b, contract.functions.settle(aid, terms.as_tuple()), "settle")
        )
        if deal is None:
            return None
        w = self._by_address(sellers, winner)
        return Sale(Match(buyer.index, w.index, price, reference=f"procurement #{aid}"), deal, 0, 0)


__all__ = ["AUCTION_MECHANISMS", "AuctionHouse", "Sale"]
