#!/usr/bin/env python3
"""Demo: a GPU provider signs a multi-issue offer off chain, two buyers fill parts of it (each fill opens an
escrow deal), a data buyer posts an on-chain buy request that a provider fills; then the client's signing
and verification throughput is measured."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.clients.offers import Offer, OffersClient, Side
from agentmarket.deploy import deploy_suite
from agentmarket.eip712 import recover, sign_digest

ETHER = 10**18


def eth(wei: int) -> str:
    return f"{wei / ETHER:,.6f} ETH"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    parser.add_argument("--bench-seconds", type=float, default=2.0, help="time budget of each throughput run")
    args = parser.parse_args()
    console = Console()
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=chain.kind == "rpc")
        a = chain.accounts
        provider, alice, bob, researcher = (OffersClient.from_suite(suite, a[i]) for i in (1, 2, 3, 4))
        escrow = suite["AgentEscrow"].address
        console.rule(f"[bold]agentmarket offers on chain {chain.chain_id} ({chain.kind})")
        console.print(f"OfferBook {provider.address}   escrow {escrow}")

        steps = Table(title="transactions")
        for column in ("step", "who", "tx", "gas", "result"):
            steps.add_column(column)

        def row(step: str, who: str, tx: str, gas: int, result: str) -> None:
            steps.add_row(step, who, tx[:14] + "…", f"{gas:,}", result)

        # 1. the provider deposits ETH for its bonds and signs an offer for 10 GPU-hours (no gas)
        dep = provider.deposit(ETHER // 10)
        row("deposit for bonds", "provider", dep.tx_hash, dep.gas_used, eth(dep.balance or 0))
        offer = provider.offer(
            "sell",
            "gpu-hour/h100",
            unit_price=2 * 10**15,
            quantity=10,
            min_fill=2,
            bond_per_unit=5 * 10**14,
            delivery=1800,
            grace=3600,
            penalty_bps_per_hour=500,
            penalty_cap_bps=2000,
            review_window=900,
        )
        wire = offer.to_json()  # what travels over any channel (HTTP, gossip, a message queue)
        console.print(
            f"signed offer {offer.hash.hex()[:16]}… ({len(wire)} bytes of JSON): 10 x gpu-hour/h100 "
            f"at {eth(offer.offer.unit_price)}, bond {eth(offer.offer.bond_per_unit)}/unit, "
            "delivery 30 min (+1 h grace), 5%/h late penalty capped at 20%"
        )

        # 2. two buyers receive it, verify it locally and fill parts of it
        before = {
            n: chain.w3.eth.get_balance(c.account.address)
            for n, c in (("alice", alice), ("bob", bob))  # type: ignore[union-attr]
        }
        for name, buyer, qty in (("alice", alice, 4), ("bob", bob, 6)):
            received = type(offer).from_json(wire)
            buyer.check(received, qty)
            fill = buyer.fill(received, qty)
            row(
                f"fill {qty} units",
                name,
                fill.tx_hash,
                fill.gas_used,
                f"deal #{fill.deal.id}: {eth(fill.deal.amount)} + bond {eth(fill.deal.bond)} locked "
                f"({fill.filled}/10 filled)",
            )

        # 3. a researcher posts an on-chain buy request for a dataset (ERC-20-free: paid from its ETH deposit)
        dep = researcher.deposit(3 * 10**16)
        row("deposit for price", "researcher", dep.tx_hash, dep.gas_used, eth(dep.balance or 0))
        # open to any provider, so the provider posts a 10% bond it forfeits for junk (client's safe default)
        request = researcher.build(
            "buy",
            "dataset/weather-2024",
            unit_price=10**16,
            quantity=3,
            delivery=3600,
            bond_per_unit=10**15,
        )
        posted = researcher.post(request)
        row(
            "post buy request",
            "researcher",
            posted.tx_hash,
            posted.gas_used,
            f"offer {posted.offer_hash.hex()[:12]}… on chain",
        )
        book = provider.book()
        best = book.best("buy", "dataset/weather-2024")
        assert best is not None
        fill = provider.fill(best.offer, 3)  # posted: no signature needed
        row(
            "fill buy request",
            "provider",
            fill.tx_hash,
            fill.gas_used,
            f"deal #{fill.deal.id}: researcher pays {eth(fill.deal.amount)}",
        )
        console.print(steps)

        balances = Table(title="balances")
        for column in ("account", "wallet", "OfferBook deposit"):
            balances.add_column(column)
        for name, c in (("provider", provider), ("alice", alice), ("bob", bob), ("researcher", researcher)):
            who = c.account.address  # type: ignore[union-attr]
            balances.add_row(name, eth(chain.w3.eth.get_balance(who)), eth(c.deposit_of()))
        balances.add_row("escrow (locked)", eth(chain.w3.eth.get_balance(escrow)), "")
        console.print(balances)
        spent = {
            n: before[n] - chain.w3.eth.get_balance(c.account.address)  # type: ignore[union-attr]
            for n, c in (("alice", alice), ("bob", bob))
        }
        console.print(f"alice paid {eth(spent['alice'])}, bob {eth(spent['bob'])} (price + gas)")

        # 4. throughput of the client: build + sign, and verify (local, no chain calls)
        console.rule("[bold]client throughput")
        template = offer.offer
        key = provider.account
        domain = provider.domain
        n, start = 0, time.perf_counter()
        signed: list[tuple[Offer, bytes]] = []
        while time.perf_counter() - start < args.bench_seconds:
            o = Offer(
                maker=template.maker,
                side=Side.SELL,
                resource_id=template.resource_id,
                unit_price=2 * 10**15 + n,
                quantity=10,
                expiry=template.expiry,
                min_fill=2,
                bond_per_unit=5 * 10**14,
                salt=n,
            )
            signed.append((o, sign_digest(key, o.digest(domain))))
            n += 1
        sign_rate = n / (time.perf_counter() - start)
        start, v = time.perf_counter(), 0
        while time.perf_counter() - start < args.bench_seconds:
            o, sig = signed[v % len(signed)]
            received = replace(o)  # a fresh object, as a receiver decodes it: digest recomputed from scratch
            assert recover(received.digest(domain), sig) == received.maker
            v += 1
        verify_rate = v / (time.perf_counter() - start)
        results: dict[str, Any] = {
            "built+signed offers/s": sign_rate,
            "verified offers/s (digest + ecrecover)": verify_rate,
        }
        for label, rate in results.items():
            console.print(f"{label:>24}: [bold]{rate:,.0f}[/bold]")


if __name__ == "__main__":
    main()
