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
