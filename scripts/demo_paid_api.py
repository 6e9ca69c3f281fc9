#!/usr/bin/env python3
"""Demo: a "sentiment model" agent pays a "language model" agent per output token over HTTP 402.

The language model is a Starlette app behind agentmarket's payment middleware, run by uvicorn as its own
process (``agentmarket.gateway.demo``; the "model" is a deterministic toy generator, the metering and the
money are real). The sentiment agent calls it through ``PaidClient``: the first 402 makes it open a
payment channel within its mandate, then every request carries a cumulative EIP-712 voucher (charged so
far + this request's maximum) and the server charges the tokens actually produced. On exit the channel is
closed at the charged total; the unspent deposit goes back. Everything printed is read from the chain.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentmarket.agent import Agent  # noqa: E402
from agentmarket.chain import Chain, free_port  # noqa: E402
from agentmarket.deploy import deploy_suite  # noqa: E402
from agentmarket.gateway import PaidClient, SettlementResponse  # noqa: E402
from agentmarket.gateway.demo import DEFAULT_ROUTES, spawn  # noqa: E402
from agentmarket.gateway.x402 import HEADER_RESPONSE  # noqa: E402
from agentmarket.mandate import Mandate  # noqa: E402
from agentmarket.types import ETH  # noqa: E402

DOCS = [
    "The quarterly results beat every estimate and the outlook is strong",
    "Shipping delays and a product recall hurt the brand this month",
    "The merger was approved; analysts expect modest synergies",
    "Customers praise the new model but complain about the price",
    "Regulators opened an investigation into the accounting practices",
    "Record demand for the service pushed capacity to its limits",
]
POSITIVE = {"positive", "value", "demand", "supply", "trade", "market", "settle"}
NEGATIVE = {"negative", "claim", "escrow", "dispute"}


def gwei(wei: int) -> str:
    return f"{wei / 10**9:,.0f} gwei"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chain", default="anvil", help="anvil (default) or a JSON-RPC URL")
    args = parser.parse_args()
    console = Console()
    chain = Chain.anvil(accounts=2) if args.chain == "anvil" else Chain.connect(args.chain)
    tmp = Path(tempfile.mkdtemp(prefix="agentmarket-demo-"))
    process = None
    try:
        suite = deploy_suite(chain, write=False, reuse=chain.kind == "rpc")
        lm_account, sentiment_account = Account.create(), Account.create()
        for account in (lm_account, sentiment_account):
            chain.transactor.send_value(chain.accounts[0], account.address, 10**18)
        price = DEFAULT_ROUTES["POST /generate"]
        mandate = Mandate(budget={ETH: 200 * price.ceiling})  # the owner's cap on what the agent may lock
        sentiment = Agent(sentiment_account, chain, suite, mandate=mandate, name="sentiment-model")
        port = free_port()
        process = spawn(
            str(chain.url),
            suite["PaymentChannels"].address,
            bytes(lm_account.key),
            tmp / "lm-vouchers.sqlite",
            port,
            claim_interval=2.0,
            log=tmp / "lm.log",
        )
        url = f"http://127.0.0.1:{port}"
        console.rule(f"[bold]paid API on chain {chain.chain_id} ({chain.kind})")
        console.print(
            f"language model {lm_account.address} serves {url}/generate at {gwei(price.unit_price)} per output "
            f"token (at most {price.max_units} per request)\nsentiment model {sentiment.address}, mandate budget "
            f"{gwei(200 * price.ceiling)}"
        )
        lm_before = chain.w3.eth.get_balance(lm_account.address)
        calls = Table(title="requests (each paid with a cumulative voucher; charged = tokens x price)")
        for column in ("document", "tokens", "charged", "cumulative", "sentiment"):
            calls.add_column(column)
        started = time.perf_counter()
        with PaidClient(sentiment, base_url=url, timeout=30) as http:
            first = http.post("/generate", json={"prompt": "warm-up", "max_tokens": 8})
            assert first.status_code == 200
            for doc in DOCS:
                response = http.post("/generate", json={"prompt": f"summarise: {doc}", "max_tokens": 64})
                response.raise_for_status()
                body = response.json()
                settled = SettlementResponse.from_header(response.headers[HEADER_RESPONSE])
                words = body["text"].split()
                score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
                label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
                calls.add_row(
                    doc[:48] + "…",
                    str(body["tokens"]),
                    gwei(int(settled.extra["chargedAmount"])),
                    gwei(int(settled.extra["channelState"]["chargedCumulativeAmount"])),
                    label,
                )
            session = http.payment.sessions[0]
        elapsed = time.perf_counter() - started
        console.print(calls)
        closed = http.closed_channels[0]
        channel = sentiment.channels.channel(session.channel.id)  # type: ignore[union-attr]
        time.sleep(0.2)
        lm_after = chain.w3.eth.get_balance(lm_account.address)
        chain_table = Table(title="on chain")
        for column in ("what", "value"):
            chain_table.add_column(column)
        chain_table.add_row("channel", channel.id_hex)
        chain_table.add_row("deposit (opened on the first 402)", gwei(channel.deposit))
        chain_table.add_row("charged by the server (sum of the rows)", gwei(session.charged))
        chain_table.add_row("paid to the language model (claimed)", gwei(channel.claimed))
        chain_table.add_row(
            "refunded to the sentiment model at close", gwei(int(closed.amount) if closed else 0)
        )
        chain_table.add_row("close transaction", closed.transaction if closed else "(not closed)")
        chain_table.add_row("channel status", channel.status.name)
        chain_table.add_row(
            "language model balance change (payment minus the gas of its close)",
            f"{(lm_after - lm_before):,} wei",
        )
        chain_table.add_row("sentiment model transactions (open)", str(sentiment.tx_count))
        chain_table.add_row(
            "mandate spent / remaining",
            f"{gwei(sentiment.guard.spent())} / {gwei(sentiment.guard.remaining() or 0)}",
        )
        console.print(chain_table)
        console.print(
            f"{len(DOCS) + 1} paid requests in {elapsed:.2f}s (including the channel open and close)"
        )
        if channel.claimed != session.charged:
            console.print("[red]claimed total differs from the charges[/]")
            return 1
        return 0
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
        chain.close()


if __name__ == "__main__":
    sys.exit(main())
