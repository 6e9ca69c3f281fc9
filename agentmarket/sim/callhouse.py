"""The ``call`` mechanism of the simulated market, run on the CallMarket contract.

Each round (or sub-round step) the :class:`CallHouse` opens one batch for the GPU-hour
(:class:`~agentmarket.clients.callmarket.CallMarketClient`), every agent submits its strategic quote
(:meth:`agentmarket.sim.mechanisms.Call.quotes`, an order for the trader's ``units``) from its own account, time jumps past the
window, the market operator clears (the contract verifies the uniform price) and settles the fills into
escrow deals; the provider of each deal submits its deliverable and the buyer accepts (one batch each),
and every buyer withdraws what its bid locked beyond the price (or all of it, unfilled). Winners, prices
and deals come from the contract's ``TradeSettled`` events, nothing is decided in Python; off chain the
same quotes clear with :func:`~agentmarket.sim.mechanisms.call_matches`, the same rule.

A bid's value passes the agent's mandate (its signing policy on the transactor), with the bid as the unit
price of the GPU-hour so the price band applies; a bid the mandate refuses is not placed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from ..agent import Agent
from ..calldata import calldata
from ..clients.callmarket import CallBatch, CallMarketClient, CallTrade
from ..errors import MandateViolation
from ..market import Market
from ..tx import TxRequest
from ..types import DEAL_ABI_TYPES, ETH, content_hash
from .mechanisms import Call, Match, Quote, Trader

__all__ = ["CallHouse", "CallSale"]

GPU_HOUR = "gpu-hour"
WINDOW = 60  # seconds a batch takes orders (time jumps over it)
DELIVERY = 3600
_DEAL_CREATED = keccak(text=f"DealCreated(uint256,address,address,{DEAL_ABI_TYPES},uint8,address)")


@dataclass
class CallSale:
    """One unit that settled into an escrow deal: the match (clearing price), the deal and its gas share."""

    match: Match
    deal_id: int
    deal: tuple[Any, ...]
    gas: int
    txs: int


class CallHouse:
    """Runs the call market's batches for a :class:`~agentmarket.sim.runner.ComputeMarketSim`."""

    def __init__(self, market: Market, agents: dict[int, Agent], mechanism: Call):
        if market.funder is None:
            raise ValueError(
                "the call market needs an operator account (the market's funder) to open batches"
            )
        self.market = market
        self.chain = market.chain
        self.agents = agents
        self.mechanism = mechanism
        self.tx = market.chain.transactor
        self.cm = CallMarketClient.from_suite(market.suite, market.funder)  # the operator opens and clears
        self.escrow = market.suite.contracts["AgentEscrow"]
        self.refused = 0
        self.batches: list[int] = []
        # ticks of 1 wei keep prices exact (and equal to the off-chain clearing); a bid must fit 64 bits
        self.tick_exp = 0

    def held(self) -> int:
        """ETH the CallMarket contract holds (locked orders and credits)."""
        return int(self.chain.w3.eth.get_balance(self.cm.address))

    def run_round(
        self, buyers: Sequence[Trader], sellers: Sequence[Trader], round_: int, rng: random.Random
    ) -> list[CallSale]:
        """One batch: quotes (drawn from ``rng`` exactly as off chain), clearing and settlement on chain,
        then delivery and acceptance."""
        bids, asks = self.mechanism.quotes(buyers, sellers, rng)
        first_block = int(self.chain.w3.eth.block_number) + 1
        batch = self.cm.open_batch(
            f"{GPU_HOUR} call batch round {round_}",
            closes_in=WINDOW,
            tick_exp=self.tick_exp,
            delivery_delay=DELIVERY,
            bond=0,
        )
        self.batches.append(batch.id)
        placed = self._place(batch, bids, asks)
        self.chain.travel_to(batch.close_time + 1)
        trades: list[CallTrade] = []
        if placed:
            done = self.cm.clear_and_settle(batch.id)
            trades = [t for t in done.trades if t.deal_id]
        deals = self._deals(first_block)
        by_address = {self.agents[t.index].address: t for t in [*buyers, *sellers]}
        sales = []
        for t in trades:
            b, s = by_address[t.buyer], by_address[t.seller]
            price = t.amount // t.quantity
            sales.append(
                CallSale(
                    Match(b.index, s.index, price, reference=f"call #{batch.id}", quantity=t.quantity),
                    t.deal_id,
                    deals[t.deal_id],
                    0,
                    0,
                )
            )
        self._deliver(sales)
        self._refund([b for b, _ in bids])
        gas, txs = self._gas(first_block)
        for (
            sale
        ) in sales:  # the round's gas (orders, clearing, settlement, delivery, refunds) per unit traded
            sale.gas, sale.txs = gas // len(sales), max(1, txs // len(sales))
        return sales

    # -- steps -------------------------------------------------------------------------------------------

    def _place(self, batch: CallBatch, bids: Sequence[Quote], asks: Sequence[Quote]) -> int:
        """Every agent submits its own order, in the quotes' order (which is the order id)."""
        placed = 0
        for trader, price in bids:
            agent = self.agents[trader.index]
            lock = price // batch.tick * batch.tick * trader.units
            try:
                agent.check(lock, ETH, resource=GPU_HOUR, unit_price=price)
                with agent.spending(lock, ETH, resource=GPU_HOUR, unit_price=price):
                    self.cm.as_(agent.account).submit_bid(batch, price // batch.tick, trader.units)
            except MandateViolation:
                self.refused += 1
                continue
            placed += 1
        for trader, price in asks:
            self.cm.as_(self.agents[trader.index].account).submit_ask(
                batch, price // batch.tick, trader.units
            )
            placed += 1
        return placed

    def _deals(self, first_block: int) -> dict[int, tuple[Any, ...]]:
        """deal id -> deal struct of every ``DealCreated`` since ``first_block`` (decoded with eth-abi)."""
        logs = self.chain.w3.eth.get_logs(
            {
                "address": self.escrow.address,
                "fromBlock": first_block,
                "toBlock": "latest",
                "topics": ["0x" + bytes(_DEAL_CREATED).hex()],
            }
        )
        out = {}
        for log in logs:
            deal, _state, _by = abi_decode([DEAL_ABI_TYPES, "uint8", "address"], bytes(log["data"]))
            out[int.from_bytes(bytes(log["topics"][1]), "big")] = tuple(deal)
        return out

    def _deliver(self, sales: list[CallSale]) -> None:
        """Every provider submits its deliverable, then every buyer accepts (one batch each)."""
        if not sales:
            return
        submits = [
            TxRequest(
                self.agents[s.match.seller].account,
                to=self.escrow.address,
                data=calldata(
                    self.escrow, "submit", s.deal_id, s.deal, content_hash(f"results of deal {s.deal_id}")
                ),
                gas_key="escrow.submit",
            )
            for s in sales
        ]
        self.tx.transact_many(submits)
        accepts = [
            TxRequest(
                self.agents[s.match.buyer].account,
                to=self.escrow.address,
                data=calldata(self.escrow, "accept", s.deal_id, s.deal),
                gas_key="escrow.accept",
            )
            for s in sales
        ]
        self.tx.transact_many(accepts)

    def _refund(self, bidders: Sequence[Trader]) -> None:
        """Each bidder withdraws its credit (the lock above the price, or an unfilled bid) in one batch."""
        owed = []
        for t in bidders:
            agent = self.agents[t.index]
            credit = self.cm.credit_of(agent.address)
            if credit:
                owed.append(TxRequest(agent.account, self.cm.contract.functions.withdraw(ETH), gas=120_000))
        if owed:
            self.tx.transact_many(owed)

    def _gas(self, first_block: int) -> tuple[int, int]:
        """(gas, transactions) of the blocks since ``first_block``: the round's whole cost on chain (the
        simulator is the chain's only sender while it runs)."""
        last = int(self.chain.w3.eth.block_number)
        gas = txs = 0
        for n in range(first_block, last + 1):
            block = self.chain.w3.eth.get_block(n)
            gas += int(block["gasUsed"])
            txs += len(block["transactions"])
        return gas, txs
