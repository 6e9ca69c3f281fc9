#!/usr/bin/env python3
"""Micropayment demo: an agent buys 10,000 tokens of model output from another, paying per token.

The buyer opens one payment channel and signs a cumulative EIP-712 voucher for every token; the seller
verifies each voucher and commits it to its SQLite voucher store before serving the token; it claims on
chain a few times along the way and closes at the end. Prints the transactions used, the amortised gas
per payment next to paying every token on chain, and voucher throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelClient
from agentmarket.deploy import deploy_suite
from agentmarket.meter import PayeeMeter, PayerMeter
from agentmarket.vouchers import VoucherStore, eoa_verifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    parser.add_argument("--tokens", type=int, default=10_000, help="payments (one per token)")
    parser.add_argument("--price", type=int, default=10**12, help="wei per token")
    parser.add_argument("--claims", type=int, default=3, help="intermediate on-chain claims before the close")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="stream with SQLite synchronous=FULL (power-loss safe, one fsync per voucher) instead "
        "of NORMAL (WAL: survives any process crash)",
    )
    args = parser.parse_args()
    console = Console()

    with Chain.from_name(args.chain) as chain, tempfile.TemporaryDirectory() as tmp:
        suite = deploy_suite(chain, write=False, reuse=False)
        buyer = ChannelClient.from_suite(suite, chain.accounts[1])
        seller = buyer.as_(chain.accounts[2])
        txs: list[tuple[str, int]] = []

        def gas_of_last(label: str, who: str) -> None:
            block = chain.w3.eth.get_block("latest", full_transactions=True)
            for tx in block["transactions"]:
                if tx["from"] == who:
                    txs.append((label, int(chain.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])))

        deposit = args.tokens * args.price
        channel = buyer.open(seller.account_address, deposit, ttl=3600)
        gas_of_last("open (buyer)", buyer.account_address)

        store = VoucherStore(Path(tmp) / "seller-vouchers.db", seller.domain, durable=args.durable)
        store.register(channel.terms())
        payer_meter = PayerMeter(buyer.signer, channel.id, deposit, price_per_unit=args.price)
        payee_meter = PayeeMeter(store, price_per_unit=args.price)

        claim_every = max(1, args.tokens // (args.claims + 1))
        sign_time = accept_time = 0.0
        for token in range(1, args.tokens + 1):
            t0 = time.perf_counter()
            voucher = payer_meter.pay_units(1)
            t1 = time.perf_counter()
            payee_meter.receive(voucher, units=1)  # verified + committed: now the token may be served
            t2 = time.perf_counter()
            sign_time += t1 - t0
            accept_time += t2 - t1
            if token % claim_every == 0 and token < args.tokens:
                latest = store.latest(channel.id)
                assert latest is not None
                channel = seller.claim(latest.voucher)
                store.mark_claimed(channel.id, channel.claimed)
                gas_of_last(f"claim at token {token:,} (seller)", seller.account_address)
        latest = store.latest(channel.id)
        assert latest is not None
        channel = seller.close(channel, latest.voucher)
        store.mark_claimed(channel.id, channel.claimed)
        gas_of_last("close (seller)", seller.account_address)

        # raw throughput without the database: sign, then recover+check
        n = min(args.tokens, 5_000)
        t0 = time.perf_counter()
        vouchers = [buyer.signer.sign(channel.id, i) for i in range(1, n + 1)]
        t1 = time.perf_counter()
        ok = all(
            eoa_verifier(
                buyer.account_address, seller.domain.voucher_digest(v.channel_id, v.amount), v.signature
            )
            for v in vouchers
        )
        t2 = time.perf_counter()
        assert ok

        # the store in synchronous=FULL mode (an fsync per voucher) on a sample
        full = VoucherStore(Path(tmp) / "full.db", seller.domain, durable=True)
        full.register(channel.terms())
        sample = vouchers[: min(300, n)]
        t3 = time.perf_counter()
        for v in sample:
            full.accept(v)
        t4 = time.perf_counter()

        # what paying each token on chain would cost: a plain ETH transfer, the cheapest payment there is
        receipt = chain.transactor.send_value(chain.accounts[1], seller.account_address, args.price)
        per_call = int(receipt["gasUsed"])

    settled = sum(g for _, g in txs)
    table = Table(title=f"{args.tokens:,} per-token payments over one channel ({chain.kind} chain)")
    table.add_column("transaction")
    table.add_column("gasUsed", justify="right")
    for label, gas in txs:
        table.add_row(label, f"{gas:,}")
    table.add_row("[bold]total[/bold]", f"[bold]{settled:,}[/bold]")
    console.print(table)
    assert channel.claimed == args.tokens * args.price, "the seller was paid for every token"

    cmp = Table(title="gas per payment")
    cmp.add_column("settlement")
    cmp.add_column("transactions", justify="right")
    cmp.add_column("total gas", justify="right")
    cmp.add_column("gas per payment", justify="right")
    cmp.add_row("payment channel + vouchers", f"{len(txs)}", f"{settled:,}", f"{settled / args.tokens:,.1f}")
    cmp.add_row(
        "one ETH transfer per token", f"{args.tokens:,}", f"{per_call * args.tokens:,}", f"{per_call:,}"
    )
    cmp.add_row("[bold]saving[/bold]", "", "", f"[bold]{per_call * args.tokens / settled:,.0f}x[/bold]")
    console.print(cmp)

    speed = Table(title="voucher throughput (this machine, one core)")
    speed.add_column("step")
    speed.add_column("vouchers/s", justify="right")
    speed.add_row("sign (payer, coincurve)", f"{n / (t1 - t0):,.0f}")
    speed.add_row("verify (payee, ecrecover in Python)", f"{n / (t2 - t1):,.0f}")
    speed.add_row("sign + verify", f"{n / ((t1 - t0) + (t2 - t1)):,.0f}")
    mode = "synchronous=FULL" if args.durable else "synchronous=NORMAL, WAL"
    speed.add_row(
        f"sign + verify + SQLite commit ({mode}), the {args.tokens:,}-token stream",
        f"{args.tokens / (sign_time + accept_time):,.0f}",
    )
    speed.add_row(
        "verify + SQLite commit (synchronous=FULL, fsync each), sample", f"{len(sample) / (t4 - t3):,.0f}"
    )
    console.print(speed)


if __name__ == "__main__":
    main()
