#!/usr/bin/env python3
"""Demo: one call-market batch for GPU hours on a fresh suite. Six buyers and five sellers with private
values and costs submit bids and asks, the batch clears at one uniform price computed off chain and
verified on chain, and settles in chunks into escrow deals. Everything printed is read back from the chain.
"""

from __future__ import annotations

import argparse
import random

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.clients.callmarket import CallMarketClient
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import deploy_suite

TICK_EXP = 12  # prices in 10^12 wei (micro-ETH) ticks
TICK = 10**TICK_EXP


def fmt(wei: int) -> str:
    return f"{wei / 10**18:.6f} ETH"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default) or anvil")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=4, help="settlement steps per transaction")
    args = parser.parse_args()
    console = Console(width=140)
    rng = random.Random(args.seed)
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=False)
        opener, *agents = chain.accounts[:10]
        market = CallMarketClient.from_suite(suite, opener)
        escrow = EscrowClient.from_suite(suite, opener)
        names = {a.address: f"agent-{i}" for i, a in enumerate(agents)}
        batch = market.open_batch(
            "gpu-hour/h100",
            closes_in=120,
            settle_window=3600,
            tick_exp=TICK_EXP,
            delivery_delay=2 * 3600,
            bond=20 * TICK,
        )
        console.print(
            f"batch {batch.id} for gpu-hour/h100 on chain {chain.chain_id} ({chain.kind}): orders until "
            f"{batch.close_time}, seller bond {fmt(batch.bond_per_unit)} per unit, tick {fmt(batch.tick)}"
        )
        book = Table(title="orders (price per unit, units)")
        for column in ("maker", "side", "price", "units", "locked", "order tx gas"):
            book.add_column(column)
        for a in agents[:5]:  # buyers: values 300..700 micro-ETH, bid shaded 5-15% below value
            value = rng.randint(300, 700)
            order = market.as_(a).submit_bid(batch, int(value * rng.uniform(0.85, 0.95)), rng.randint(1, 3))
            gas = chain.w3.eth.get_transaction_receipt(order.tx_hash)["gasUsed"]
            locked = order.price_ticks * TICK * order.quantity
            book.add_row(
                names[a.address],
                "bid",
                fmt(order.price_ticks * TICK),
                str(order.quantity),
                fmt(locked),
                f"{gas:,}",
            )
        for a in agents[5:]:  # sellers: costs 200..600, asks shaded 5-15% above cost
            cost = rng.randint(200, 600)
            order = market.as_(a).submit_ask(batch, int(cost * rng.uniform(1.05, 1.15)), rng.randint(1, 3))
            gas = chain.w3.eth.get_transaction_receipt(order.tx_hash)["gasUsed"]
            locked = batch.bond_per_unit * order.quantity
            book.add_row(
                names[a.address],
                "ask",
                fmt(order.price_ticks * TICK),
                str(order.quantity),
                fmt(locked),
                f"{gas:,}",
            )
        console.print(book)

        chain.travel_to(batch.close_time + 1)
        predicted = market.compute_clearing(batch.id)
        batch = market.clear(batch)
        clear_tx = market.chain.w3.eth.get_block("latest")["transactions"][-1]
        clear_gas = chain.w3.eth.get_transaction_receipt(clear_tx)["gasUsed"]
        console.print(
            f"cleared on chain at {fmt(batch.price)} per unit, {batch.volume} units "
            f"(off-chain equilibrium: {predicted.price_ticks} ticks, {predicted.volume} units; clear tx gas {clear_gas:,})"
        )
        txs = 0
        done = False
        while not done:
            _, done = market.settle_chunk(batch, args.chunk)
            txs += 1
        batch = market.batch(batch.id)
        deals = Table(title=f"settled in {txs} transactions of at most {args.chunk} steps: escrow deals")
        for column in (
            "deal",
            "buyer",
            "seller",
            "units",
            "amount",
            "bond",
            "state",
            "deliver by (s from now)",
        ):
            deals.add_column(column)
        for t in batch.trades:
            if not t.deal_id:
                deals.add_row(
                    "-", names[t.buyer], names[t.seller], str(t.quantity), "self-pair: no deal", "", "", ""
                )
                continue
            d = escrow.deal(t.deal_id)
            deals.add_row(
                f"#{d.id}",
                names[d.buyer],
                names[d.seller],
                str(t.quantity),
                fmt(d.amount),
                fmt(d.bond),
                d.state.name,
                str(d.terms.deliver_by - chain.now()),
            )
        console.print(deals)
        credits = Table(title="market credits after settlement (overpay, untraded units, unused bonds)")
        for column in ("maker", "credit"):
            credits.add_column(column)
        for a in agents:
            credit = market.credit_of(a.address)
            if credit:
                credits.add_row(names[a.address], fmt(credit))
        console.print(credits)
        held = chain.w3.eth.get_balance(market.address)
        total = sum(market.credit_of(a.address) for a in agents)
        console.print(
            f"status {batch.status.name}; market holds {fmt(held)} = credits {fmt(total)} "
            f"({'solvent' if held == total else 'MISMATCH'})"
        )


if __name__ == "__main__":
    main()
