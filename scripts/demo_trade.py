#!/usr/bin/env python3
"""Demo: a GPU-provider agent sells training compute to a model-training agent through AgentEscrow.

Deal 1 (happy path): the trainer locks the price, the GPU provider posts a bond, submits the hash of the
training run's output, the trainer accepts and the provider is paid. Deal 2 (refund path): the provider
misses its delivery deadline and anyone refunds the trainer, bond included. Every figure is read from the
chain: transaction hashes, gasUsed and balances before/after.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.deploy import deploy_suite
from agentmarket.types import Deal, content_hash

ETHER = 10**18


def fmt(wei: int) -> str:
    return f"{wei / ETHER:,.6f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="embedded", help="embedded (default), anvil, or a JSON-RPC URL")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))
    with Chain.from_name(args.chain) as chain:
        suite = deploy_suite(chain, write=False, reuse=False)
        # two fresh agent wallets funded with 10 ETH each, so balances read like an agent's budget
        gpu_account = chain.new_account(fund=10 * ETHER)
        trainer_account = chain.new_account(fund=10 * ETHER)
        trainer = EscrowClient.from_suite(suite, trainer_account)
        gpu = trainer.as_(gpu_account)
        keeper = trainer.as_(chain.accounts[3])  # any agent can trigger a refund
        console.print(f"[bold]AgentEscrow[/] at {trainer.address} on chain {chain.chain_id} ({chain.kind}), "
                      f"protocol fee {trainer.fee_bps} bps")
        console.print(f"GPU provider agent   {gpu_account.address}")
        console.print(f"model-trainer agent  {trainer_account.address}\n")

        def balances() -> tuple[int, int, int]:
            return (trainer.asset_balance(trainer_account.address), trainer.asset_balance(gpu_account.address),
                    trainer.asset_balance(trainer.address))

        def run(table: Table, step: str, actor: str, action: Callable[[], Deal]) -> Deal:
            before = balances()
            deal = action()
            after = balances()
            receipt = chain.w3.eth.get_transaction_receipt(deal.tx_hash)
            table.add_row(step, actor, deal.tx_hash[:18] + "…", f"{receipt['gasUsed']:,}", deal.state.name,
                          f"{fmt(before[0])} → {fmt(after[0])}", f"{fmt(before[1])} → {fmt(after[1])}",
                          f"{fmt(after[2])}")
            return deal

        def new_table(title: str) -> Table:
            table = Table(title=title, show_lines=False)
            for col in ("step", "agent", "tx", "gas", "state", "trainer ETH (before → after)",
                        "GPU provider ETH (before → after)", "escrow ETH"):
                table.add_column(col, justify="right" if col == "gas" else "left")
            return table

        # -- deal 1: 8x H100 for 4 hours, delivered and accepted ---------------------------------------
        spec = content_hash("gpu-hours: 8x H100, 4h, fine-tune llama-3-8b on dataset sha256:…; >= 90% util")
        price, bond = 2 * ETHER, ETHER // 4
        table = new_table("Deal 1: training compute, delivered and accepted")
        deal: Any = run(table, "1 lock funds", "trainer", lambda: trainer.create(
            gpu_account.address, price, deliver_by=timedelta(hours=6), promised_by=timedelta(hours=5),
            penalty_bps_per_hour=200, penalty_cap_bps=2000, bond=bond, terms_hash=spec,
            review_window=timedelta(hours=1)))
        deal = run(table, "2 post bond", "gpu", lambda: gpu.post_bond(deal))
        chain.advance_time(4 * 3600)  # the training run takes four hours
        checkpoint = content_hash("checkpoint step 12000, loss 1.83, weights sha256:…")
        deal = run(table, "3 submit deliverable", "gpu", lambda: gpu.submit(deal, checkpoint))
        deal = run(table, "4 accept", "trainer", lambda: trainer.accept(deal))
        console.print(table)
        s = deal.settlement
        console.print(f"  settled: provider got {fmt(s.to_seller)} ETH (price - {fmt(s.fee)} fee + bond), "
                      f"late penalty back to trainer {fmt(s.to_buyer)} ETH\n")

        # -- deal 2: the provider misses its deadline; refunded ------------------------------------------
        table = new_table("Deal 2: provider misses its delivery deadline, trainer refunded")
        deal2: Any = run(table, "1 lock funds", "trainer", lambda: trainer.create(
            gpu_account.address, ETHER, deliver_by=timedelta(hours=2), bond=ETHER // 10,
            terms_hash=content_hash("gpu-hours: 2x A100, 2h, eval sweep")))
        deal2 = run(table, "2 post bond", "gpu", lambda: gpu.post_bond(deal2))
        chain.advance_time(2 * 3600 + 1)  # the deadline passes without a submission
        deal2 = run(table, "3 refund (after deadline)", "keeper", lambda: keeper.refund(deal2))
        console.print(table)
        console.print(f"  refunded: trainer got {fmt(deal2.settlement.to_buyer)} ETH (price + the provider's bond)")
        balance, totals = trainer.solvency()
        console.print(f"\nescrow solvency: balance {balance} wei == locked {totals.locked} + credits "
                      f"{totals.credits} + fees {totals.fees}: {balance == totals.accounted}")


if __name__ == "__main__":
    main()
