"""The MCP server as real processes (``agentmarket mcp`` over stdio), driven by the MCP SDK's client.

A scripted policy stands in for the LLM: a seller agent's server posts an offer; a buyer agent's server
(with a spend mandate) searches, quotes, is refused a fill above its budget (nothing is sent), fills within
it; the seller delivers, the buyer accepts, both rate. Amounts come back as strings of wei.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from service_helpers import ETHER

from agentmarket.chain import Chain, save_keystore
from agentmarket.deploy import Suite, write_manifest
from agentmarket.mcp.server import amount

pytestmark = pytest.mark.anvil

PRICE = 10**15  # wei per unit
PASSWORD = "correct horse battery staple"


def _params(
    chain: Chain, keystore: Path, manifest: Path, mandate: Path | None = None
) -> StdioServerParameters:
    args = [
        "-m",
        "agentmarket",
        "mcp",
        "--agent",
        str(keystore),
        "--chain",
        str(chain.url),
        "--manifest",
        str(manifest),
    ]
    if mandate is not None:
        args += ["--mandate", str(mandate)]
    env = dict(os.environ, AGENTMARKET_KEYSTORE_PASSWORD=PASSWORD)
    env.pop("AGENTMARKET_PRIVATE_KEYS", None)
    return StdioServerParameters(command=sys.executable, args=args, env=env)


async def _call(session: ClientSession, name: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(name, arguments)
    assert not result.isError, result.content
    assert result.structuredContent is not None
    return result.structuredContent


def test_complete_trade_through_two_mcp_server_processes(
    anvil: Chain, anvil_suite: Suite, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, anvil_suite.manifest)
    keys = {}
    for name in ("seller", "buyer"):
        account = Account.create()
        anvil.transactor.send_value(anvil.accounts[0], account.address, 5 * ETHER)
        keys[name] = (account.address, save_keystore(account, tmp_path / f"{name}.json", PASSWORD))
    mandate = tmp_path / "mandate.json"
    mandate.write_text(json.dumps({"budget": {"ETH": str(3 * PRICE)}}))
    buyer_address = keys["buyer"][0]

    async def run() -> None:
        async with (
            stdio_client(_params(anvil, keys["seller"][1], manifest)) as (sr, sw),
            ClientSession(sr, sw) as seller,
            stdio_client(_params(anvil, keys["buyer"][1], manifest, mandate)) as (br, bw),
            ClientSession(br, bw) as buyer,
        ):
            await seller.initialize()
            await buyer.initialize()
            names = {t.name for t in (await buyer.list_tools()).tools}
            assert {"balance", "search_offers", "quote", "fill_offer", "deliver", "accept", "rate"} <= names

            posted = await _call(
                seller,
                "post_offer",
                side="sell",
                resource="sentiment/1k-docs",
                unit_price_wei=str(PRICE),
                quantity=5,
            )
            found = await _call(buyer, "search_offers", resource="sentiment/1k-docs", side="sell")
            (offer,) = found["offers"]
            assert offer["offer_hash"] == posted["offer_hash"]
            assert offer["unit_price"] == {"wei": str(PRICE), "ether": "0.001"}

            quote = await _call(buyer, "quote", offer_hash=offer["offer_hash"], quantity=5)
            assert quote["price"]["wei"] == str(5 * PRICE) and quote["mandate_allows"] is False

            nonce = anvil.w3.eth.get_transaction_count(buyer_address)
            refused = await buyer.call_tool("fill_offer", {"offer_hash": offer["offer_hash"], "quantity": 5})
            assert refused.isError
            text = refused.content[0].text  # type: ignore[union-attr]
            assert "MandateViolation" in text and "budget" in text
            assert anvil.w3.eth.get_transaction_count(buyer_address) == nonce  # nothing was sent

            filled = await _call(buyer, "fill_offer", offer_hash=offer["offer_hash"], quantity=2)
            deal = filled["deal"]
            assert deal["state"] == "FUNDED" and deal["amount"]["wei"] == str(2 * PRICE)
            assert deal["your_role"] == "buyer"

            seller_deals = await _call(seller, "list_deals", role="seller")
            assert [d["id"] for d in seller_deals["deals"]] == [deal["id"]]
            delivered = await _call(
                seller, "deliver", deal_id=deal["id"], deliverable="positive: 812, negative: 188"
            )
            assert delivered["deal"]["state"] == "SUBMITTED"
            accepted = await _call(buyer, "accept", deal_id=deal["id"])
            assert accepted["deal"]["state"] == "ACCEPTED"
            await _call(buyer, "rate", deal_id=deal["id"], score=90)
            await _call(seller, "rate", deal_id=deal["id"], score=80)

            status = await _call(buyer, "mandate_status")
            eth = status["assets"]["0x0000000000000000000000000000000000000000"]
            assert eth["spent"]["wei"] == str(2 * PRICE) and eth["remaining"]["wei"] == str(PRICE)
            balance = await _call(seller, "balance")
            assert int(balance["eth"]["wei"]) > 5 * ETHER  # paid (less fee), minus gas

    anyio.run(run)


def test_streamable_http_transport_serves_the_same_tools(
    anvil: Chain, anvil_suite: Suite, tmp_path: Path
) -> None:
    import subprocess
    import time

    import httpx
    from mcp.client.streamable_http import streamable_http_client

    from agentmarket.chain import free_port

    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, anvil_suite.manifest)
    account = Account.create()
    anvil.transactor.send_value(anvil.accounts[0], account.address, ETHER)
    keystore = save_keystore(account, tmp_path / "agent.json", PASSWORD)
    port = free_port()
    params = _params(anvil, keystore, manifest)
    process = subprocess.Popen(
        [params.command, *params.args, "--http", str(port)],
        env=params.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)

        async def run() -> None:
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                balance = await _call(session, "balance")
                assert balance["address"] == account.address and balance["eth"]["wei"] == str(ETHER)

        anyio.run(run)
    finally:
        process.kill()
        process.wait(timeout=30)


class _HeldServer:
    """A real HTTP server on 127.0.0.1 that answers each request only once the test releases it."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.arrived = threading.Event()
        self.release = threading.Event()
        held = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                held.arrived.set()
                held.release.wait(120)
                body = b"held answer"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_tool_calls_run_concurrently_in_one_server_process(
    anvil: Chain, anvil_suite: Suite, tmp_path: Path
) -> None:
    """A tool call waiting on I/O does not hold the others up: while ``pay_http`` waits for an HTTP server
    that has not answered yet, the same server process answers ``balance`` and completes two ``fill_offer``
    calls that were sent together (one account, two transactions in flight: distinct nonces, both deals
    opened, the mandate charged for both). A server that ran tools one at a time would never answer the
    later calls before the held one returns; the test would then fail at its time limit."""
    from agentmarket.agent import Agent

    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, anvil_suite.manifest)
    seller = Agent(Account.create(), anvil, anvil_suite)
    anvil.transactor.send_value(anvil.accounts[0], seller.address, 5 * ETHER)
    hashes = []
    for resource in ("translate/fr", "translate/de"):
        posted = seller.offers.post(seller.offers.build("sell", resource, PRICE, 3))
        hashes.append("0x" + posted.offer_hash.hex())
    buyer = Account.create()
    anvil.transactor.send_value(anvil.accounts[0], buyer.address, 5 * ETHER)
    keystore = save_keystore(buyer, tmp_path / "buyer.json", PASSWORD)
    mandate = tmp_path / "mandate.json"
    mandate.write_text(json.dumps({"budget": {"ETH": str(10 * PRICE)}}))
    held = _HeldServer()

    async def run() -> None:
        async with (
            stdio_client(_params(anvil, keystore, manifest, mandate)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await _call(session, "search_offers")  # the book is built once before the calls race
            outcome: dict[str, Any] = {}

            async def pay() -> None:
                outcome["pay"] = await _call(session, "pay_http", url=held.url)

            async def fill(offer_hash: str) -> None:
                outcome[offer_hash] = await _call(session, "fill_offer", offer_hash=offer_hash, quantity=2)

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pay)
                    while not held.arrived.is_set():  # the server has received the paid call
                        await anyio.sleep(0.05)
                    balance = await _call(session, "balance")  # answered while pay_http is held
                    assert balance["address"] == buyer.address
                    async with anyio.create_task_group() as fills:
                        for h in hashes:
                            fills.start_soon(fill, h)
                    assert "pay" not in outcome  # both fills completed while the paid call was held
                    held.release.set()
            assert outcome["pay"]["status"] == 200 and outcome["pay"]["body"] == "held answer"
            deals = [outcome[h]["deal"] for h in hashes]
            assert len({d["id"] for d in deals}) == 2
            assert all(d["state"] == "FUNDED" and d["amount"]["wei"] == str(2 * PRICE) for d in deals)
            status = await _call(session, "mandate_status")
            eth = status["assets"]["0x0000000000000000000000000000000000000000"]
            assert eth["spent"]["wei"] == str(4 * PRICE)

    try:
        anyio.run(run)
    finally:
        held.close()
    assert anvil.w3.eth.get_transaction_count(buyer.address) == 2  # exactly the two fills, nothing else


def test_pay_http_tool_pays_a_gateway_over_a_channel_and_closes_it_on_exit(
    anvil: Chain, anvil_suite: Suite, gateway_proc: Any, tmp_path: Path
) -> None:
    """``pay_http`` through the server process: the first 402 opens a channel (the payment flow's chain
    steps run on the server's loop), each call is charged what the route costs, and when the client goes
    away the server closes the channel at the charged total."""
    from agentmarket.clients.channels import ChannelClient
    from agentmarket.gateway.demo import DEFAULT_ROUTES
    from agentmarket.types import ChannelStatus

    echo = DEFAULT_ROUTES["/echo"].ceiling  # the demo gateway's per-call price
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, anvil_suite.manifest)
    account = Account.create()
    anvil.transactor.send_value(anvil.accounts[0], account.address, ETHER)
    keystore = save_keystore(account, tmp_path / "payer.json", PASSWORD)

    async def run() -> None:
        async with (
            stdio_client(_params(anvil, keystore, manifest)) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            for i in range(3):
                paid = await _call(session, "pay_http", url=f"{gateway_proc.url}/echo?q={i}")
                assert paid["status"] == 200, paid
                assert paid["charged"] == amount(echo)

    anyio.run(run)
    channels = anvil_suite["PaymentChannels"]
    opened = [
        e
        for e in channels.events.ChannelOpened().get_logs(from_block=0)
        if e["args"]["payer"] == account.address
    ]
    assert len(opened) == 1  # one channel for the three calls
    channel = ChannelClient.from_suite(anvil_suite).channel(bytes(opened[0]["args"]["channelId"]))
    assert channel.payee == gateway_proc.payee.address
    assert channel.status == ChannelStatus.CLOSED and channel.claimed == 3 * echo
