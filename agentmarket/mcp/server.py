"""An MCP server exposing one agent's wallet and market actions as tools (official MCP Python SDK, FastMCP).

Tools: ``balance``, ``mandate_status``, ``search_offers`` (the chain's OfferBook, plus a relay when one is
given), ``quote``, ``post_offer``, ``fill_offer`` (buy/sell into an offer), ``deliver``, ``accept``,
``dispute``, ``rate``, ``open_channel``, ``pay_channel``, ``pay_http`` (an HTTP 402 service through the
gateway client) and ``list_deals``. Every spending tool goes through the agent's
:class:`~agentmarket.mandate.Mandate` (a refusal is a ``MandateViolation`` tool error and nothing is sent).
Results are JSON objects; amounts are ``{"wei": "<integer string>", "ether": "<decimal string>"}``.
Errors are MCP tool errors whose text starts with the typed error's class name.

The tools are coroutines on the server's event loop, calling the agent through :mod:`agentmarket.aio`
(:class:`~agentmarket.aio.AsyncAgent`): the client's own pipeline, its JSON-RPC awaited, so several tool
calls are in flight at once without worker threads. ``pay_http`` calls run one at a time (each voucher
follows the previous response's charge).

Run: ``agentmarket mcp [--agent KEYSTORE] [--chain URL] [--relay URL] [--manifest PATH] [--mandate FILE]
[--http PORT]`` (stdio by default; ``--http`` serves streamable HTTP on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from eth_utils.address import to_checksum_address

from ..agent import Agent
from ..aio import AsyncAgent, AwaitingHTTP, LoopAuth, async_agent, disconnect
from ..errors import AgentMarketError, ConfigError, InvalidInput
from ..mandate import Mandate
from ..types import ETH

TOOLS = (
    "balance",
    "mandate_status",
    "search_offers",
    "quote",
    "post_offer",
    "fill_offer",
    "deliver",
    "accept",
    "dispute",
    "rate",
    "open_channel",
    "pay_channel",
    "pay_http",
    "list_deals",
)


def amount(wei: int, asset: str = ETH) -> dict[str, str]:
    """An amount as exact strings: wei (the asset's smallest unit) and, for ETH, ether."""
    out = {"wei": str(int(wei))}
    if to_checksum_address(asset) == ETH:
        out["ether"] = format(Decimal(int(wei)) / Decimal(10**18), "f")
    return out


def _hex(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


def _bytes32(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"{value!r} is not hex") from None
    if len(raw) != 32:
        raise InvalidInput(f"{value!r} is not 32 bytes")
    return raw


def load_mandate(path: str | Path) -> Mandate:
    """A mandate from JSON: ``{"budget": {"ETH": "wei"}, "max_per_deal": {...}, "allowed_assets": [...],
    "max_actions": n, "per_seconds": s}`` (``"ETH"`` stands for the zero address)."""
    data = json.loads(Path(path).read_text())

    def assets(mapping: dict[str, Any] | None) -> dict[str, int] | None:
        if mapping is None:
            return None
        return {(ETH if k.upper() == "ETH" else k): int(v) for k, v in mapping.items()}

    allowed = data.get("allowed_assets")
    return Mandate(
        budget=assets(data.get("budget")),
        max_per_deal=assets(data.get("max_per_deal")),
        allowed_assets=frozenset(ETH if a.upper() == "ETH" else a for a in allowed) if allowed else None,
        max_actions=data.get("max_actions"),
        per_seconds=float(data.get("per_seconds", 60.0)),
    )


class AgentTools:
    """The tool implementations: coroutines returning JSON-able dicts, calling the agent through
    :class:`~agentmarket.aio.AsyncAgent` (an :class:`~agentmarket.agent.Agent` given here is moved onto
    the loop view of its chain, keeping its key, mandate and running totals)."""

    def __init__(self, agent: Agent | AsyncAgent, *, relay: str | None = None):
        self.agent = agent if isinstance(agent, AsyncAgent) else async_agent(agent)
        self.relay = relay.rstrip("/") if relay else None
        self._book: Any = None
        self._vouchers: dict[bytes, int] = {}  # channel -> cumulative amount signed by this server
        self._payment: Any = None
        self._http: Any = None
        self._locks: dict[str, anyio.Lock] = {}

    def _lock(self, name: str) -> anyio.Lock:
        """An event-loop lock (made on first use, inside the loop)."""
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = anyio.Lock()
        return lock

    # -- reads --------------------------------------------------------------------------------------

    async def balance(self) -> dict[str, Any]:
        """The agent's address, its ETH balance and its credits in the escrow and payment channels."""
        a = self.agent
        chain = a.agent.chain
        return {
            "address": a.address,
            "chain_id": chain.chain_id if chain else None,
            "eth": amount(await a.balance()),
            "escrow_credit": amount(await a.escrow.credit(a.address)),
            "offerbook_deposit": amount(await a.offers.deposit_of(a.address)),
            "channel_credit": amount(await a.channels.credit(a.address)),
        }

    async def mandate_status(self) -> dict[str, Any]:
        """The agent's spend mandate: budget, spent and remaining per asset, caps, rate limit."""
        m, guard = self.agent.mandate, self.agent.guard
        assets = set((m.budget or {}).keys()) | set((m.max_per_deal or {}).keys()) | {ETH}
        per_asset = {}
        for asset in sorted(to_checksum_address(x) for x in assets):
            remaining = guard.remaining(asset)
            cap = (m.max_per_deal or {}).get(asset)
            per_asset[asset] = {
                "spent": amount(guard.spent(asset), asset),
                "remaining": None if remaining is None else amount(remaining, asset),
                "max_per_deal": None if cap is None else amount(cap, asset),
            }
        return {
            "address": self.agent.address,
            "unlimited": m.budget is None and m.max_per_deal is None and m.allowed_assets is None,
            "assets": per_asset,
            "allowed_assets": sorted(m.allowed_assets) if m.allowed_assets is not None else None,
            "rate_limit": None
            if m.max_actions is None
            else {"actions": m.max_actions, "per_seconds": m.per_seconds},
        }

    async def search_offers(
        self,
        resource: str | None = None,
        side: str | None = None,
        max_unit_price_wei: str | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """Live offers from the chain's OfferBook (and the relay, when the server has one), cheapest first.
        ``side``: "sell" or "buy"; ``resource``: the resource name, e.g. "gpu-hour/h100"."""
        book = await self._synced_book()
        relay_count = await self._pull_relay(book, resource, side) if self.relay else 0
        entries = await self.agent.run(book.offers, resource=resource, side=side)
        if max_unit_price_wei is not None:
            entries = [e for e in entries if e.offer.unit_price <= int(max_unit_price_wei)]
        return {
            "offers": [self._entry(e) for e in entries[: max(1, int(limit))]],
            "from_relay": relay_count,
            "source": "chain+relay" if self.relay else "chain",
        }

    async def quote(self, offer_hash: str, quantity: int | None = None) -> dict[str, Any]:
        """What filling ``quantity`` units of an offer costs this agent, and whether the mandate allows it."""
        book = await self._synced_book()
        ref = self._ref(book, offer_hash)
        o = getattr(ref, "offer", ref)
        q = await self.agent.offers.check(ref, quantity)
        pay = o.taker_leg(q)
        allowed, reason = True, ""
        if int(o.side) == 0:
            try:
                self.agent.agent.check(pay, o.asset, resource=o.resource_id, unit_price=o.unit_price)
            except AgentMarketError as exc:
                allowed, reason = False, f"{type(exc).__name__}: {exc}"
        return {
            "offer_hash": offer_hash,
            "side": "sell" if int(o.side) == 0 else "buy",
            "quantity": q,
            "unit_price": amount(o.unit_price, o.asset),
            "price": amount(o.price(q), o.asset),
            "you_pay_now": amount(pay, o.asset),
            "asset": o.asset,
            "mandate_allows": allowed,
            "mandate_reason": reason,
        }

    async def list_deals(self, role: str | None = None, state: str | None = None) -> dict[str, Any]:
        """The agent's escrow deals (``role``: buyer/seller/arbiter; ``state``: e.g. FUNDED, SUBMITTED)."""
        deals = await self.agent.escrow.deals(party=self.agent.address, role=role)
        if state:
            deals = [d for d in deals if d.state.name == state.upper()]
        return {"deals": [self._deal(d) for d in deals]}

    # -- trading --------------------------------------------------------------------------------------

    async def post_offer(
        self,
        side: str,
        resource: str,
        unit_price_wei: str,
        quantity: int,
        ttl_seconds: int = 3600,
        delivery_seconds: int = 3600,
        review_seconds: int = 3600,
    ) -> dict[str, Any]:
        """Post an offer on chain as its maker: sell (this agent delivers) or buy (this agent pays; its
        price must be deposited in the OfferBook first, which goes through the mandate)."""
        from datetime import timedelta

        offers = self.agent.offers
        price = int(unit_price_wei) * int(quantity)
        if side.lower() == "buy":
            self.agent.agent.check(price, ETH, resource=resource, unit_price=int(unit_price_wei))
            missing = price - await offers.deposit_of(self.agent.address)
            if missing > 0:
                await offers.deposit(missing)
        offer = await offers.build(
            side,
            resource,
            int(unit_price_wei),
            int(quantity),
            expiry=timedelta(seconds=int(ttl_seconds)),
            delivery=int(delivery_seconds),
            review_window=int(review_seconds),
        )
        posted = await offers.post(offer)
        return {
            "offer_hash": _hex(posted.offer_hash),
            "tx": posted.tx_hash,
            "gas_used": posted.gas_used,
            "side": side.lower(),
            "resource": resource,
            "unit_price": amount(offer.unit_price),
            "quantity": offer.quantity,
            "expiry": offer.expiry,
        }

    async def fill_offer(self, offer_hash: str, quantity: int | None = None) -> dict[str, Any]:
        """Fill an offer (buying from a sell offer pays its price into escrow, within the mandate; selling
        into a buy request opens a deal the buyer already paid for). Returns the escrow deal."""
        book = await self._synced_book()
        ref = self._ref(book, offer_hash)
        fill = await self.agent.fill(ref, quantity)
        return {
            "deal": self._deal(fill.deal),
            "quantity": fill.quantity,
            "tx": fill.tx_hash,
            "gas_used": fill.gas_used,
        }

    async def deliver(self, deal_id: int, deliverable: str) -> dict[str, Any]:
        """Seller: submit the deliverable (its sha256 goes on chain; the text itself travels off chain)."""
        digest = hashlib.sha256(deliverable.encode()).digest()
        deal = await self.agent.escrow.submit(int(deal_id), digest)
        return {"deal": self._deal(deal), "deliverable_sha256": _hex(digest)}

    async def accept(self, deal_id: int) -> dict[str, Any]:
        """Buyer: accept the delivery; the seller is paid."""
        return {"deal": self._deal(await self.agent.escrow.accept(int(deal_id)))}

    async def dispute(self, deal_id: int) -> dict[str, Any]:
        """Buyer or seller: dispute the deal (the arbiter rules, or the default split applies)."""
        return {"deal": self._deal(await self.agent.escrow.dispute(int(deal_id)))}

    async def rate(self, deal_id: int, score: int, comment: str | None = None) -> dict[str, Any]:
        """Rate the counterparty of a settled deal, 0..100."""
        rating = await self.agent.reputation.rate(int(deal_id), int(score), comment=comment)
        return {"deal_id": int(deal_id), "score": int(score), "rating": repr(rating)}

    # -- channels and paid HTTP ---------------------------------------------------------------------------

    async def open_channel(self, payee: str, deposit_wei: str, ttl_seconds: int = 3600) -> dict[str, Any]:
        """Open a payment channel to ``payee`` locking ``deposit_wei`` (through the mandate)."""
        channel = await self.agent.channels.open(payee, int(deposit_wei), ttl=int(ttl_seconds))
        self._vouchers[channel.id] = 0
        return {"channel": self._channel(channel)}

    async def pay_channel(self, channel_id: str, amount_wei: str) -> dict[str, Any]:
        """Pay ``amount_wei`` more over an open channel: returns the cumulative voucher to hand the payee."""
        cid = _bytes32(channel_id)
        add = int(amount_wei)
        if add <= 0:
            raise InvalidInput("amount_wei must be positive")
        channel = await self.agent.channels.channel(cid)
        if channel.payer != self.agent.address:
            raise InvalidInput(f"channel {channel_id} is not paid by this agent")
        async with self._lock("vouchers"):  # two payments at once: each voucher adds to the other's
            total = max(self._vouchers.get(cid, 0), channel.claimed) + add
            if total > channel.deposit:
                raise InvalidInput(f"cumulative {total} exceeds the deposit {channel.deposit}; top up first")
            voucher = await self.agent.channels.sign_voucher(cid, total)
            self._vouchers[cid] = total
        return {"voucher": voucher.to_json(), "cumulative": amount(total), "channel": self._channel(channel)}

    async def pay_http(self, url: str, method: str = "GET", json_body: str | None = None) -> dict[str, Any]:
        """Call an HTTP API that charges through the agentmarket-channel x402 scheme (a channel is opened
        on the first 402, within the mandate). Returns the status, the body and what was charged."""
        import httpx

        from ..gateway import ChannelPayment, SettlementResponse
        from ..gateway.x402 import HEADER_RESPONSE

        if self._payment is None:
            self._payment = ChannelPayment(self.agent.agent)
            # the payment flow's chain steps run on the loop (LoopAuth), with the agent's loop view
            self._http = httpx.AsyncClient(auth=LoopAuth(self._payment), timeout=60)
        body = json.loads(json_body) if json_body else None
        # one paid call at a time: each voucher follows the previous response's charge, and the flow's
        # per-server lock is a thread lock that a second call on this thread must never wait on
        async with self._lock("http"):
            response = await self._http.request(method.upper(), url, json=body)
        charged = None
        if HEADER_RESPONSE in response.headers:
            settled = SettlementResponse.from_header(response.headers[HEADER_RESPONSE])
            charged = amount(int(settled.extra.get("chargedAmount", 0)))
        return {"status": response.status_code, "body": response.text[:4000], "charged": charged}

    async def aclose(self) -> None:
        """Close paid-HTTP channels (at the charged totals), the HTTP client and the chain's sessions."""
        try:
            if self._http is not None:
                try:
                    async with self._lock("http"):
                        await self.agent.run(self._payment.close, AwaitingHTTP(self._http))
                finally:
                    await self._http.aclose()
                    self._http = None
        finally:
            if self.agent.agent.chain is not None:
                await disconnect(self.agent.agent.chain)

    # -- helpers --------------------------------------------------------------------------------------------

    async def _synced_book(self) -> Any:
        """The offer book, caught up with the chain (one sync at a time: concurrent calls share it)."""
        async with self._lock("book"):
            if self._book is None:
                self._book = await self.agent.offers.book()
            else:
                await self.agent.run(self._book.sync)
            return self._book

    async def _pull_relay(self, book: Any, resource: str | None, side: str | None) -> int:
        """Add the relay's signed offers to the book (verified like any signed offer when filled)."""
        import httpx

        from ..clients.offers import SignedOffer

        params = {k: v for k, v in (("resource", resource), ("side", side)) if v}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(f"{self.relay}/offers", params=params)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ConfigError(
                f"relay {self.relay} did not answer with offers: {type(exc).__name__}"
            ) from None
        items = data.get("offers", []) if isinstance(data, dict) else data
        added = 0
        for item in items:
            try:
                book.add(SignedOffer.from_dict(item))
                added += 1
            except (AgentMarketError, KeyError, TypeError, ValueError):
                continue  # a malformed or foreign offer is skipped, not trusted
        return added

    def _ref(self, book: Any, offer_hash: str) -> Any:
        h = _bytes32(offer_hash)
        if book.get(h) is None:
            raise InvalidInput(f"unknown offer {offer_hash} (search_offers first)")
        return book.signed(h)

    def _entry(self, e: Any) -> dict[str, Any]:
        o = e.offer
        return {
            "offer_hash": _hex(e.offer_hash),
            "side": "sell" if int(o.side) == 0 else "buy",
            "maker": o.maker,
            "resource_id": _hex(o.resource_id),
            "unit_price": amount(o.unit_price, o.asset),
            "remaining": e.remaining,
            "quantity": o.quantity,
            "asset": o.asset,
            "bond_per_unit": amount(o.bond_per_unit, o.asset),
            "expiry": o.expiry,
            "posted": e.posted,
        }

    def _deal(self, d: Any) -> dict[str, Any]:
        return {
            "id": d.id,
            "state": d.state.name,
            "buyer": d.buyer,
            "seller": d.seller,
            "amount": amount(d.amount, d.asset),
            "bond": amount(d.bond, d.asset),
            "asset": d.asset,
            "your_role": d.role_of(self.agent.address),
            "tx": d.tx_hash,
        }

    def _channel(self, c: Any) -> dict[str, Any]:
        return {
            "id": c.id_hex,
            "payer": c.payer,
            "payee": c.payee,
            "deposit": amount(c.deposit, c.asset),
            "claimed": amount(c.claimed, c.asset),
            "expiry": c.expiry,
            "status": c.status.name,
        }


def _tool(method: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Any]:
    """The MCP tool awaiting ``method`` on the server's loop; typed errors become tool errors."""
    from mcp.server.fastmcp.exceptions import ToolError

    @functools.wraps(method)
    async def run(**kwargs: Any) -> dict[str, Any]:
        try:
            return await method(**kwargs)
        except AgentMarketError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from None

    run.__signature__ = inspect.signature(method, eval_str=True)  # type: ignore[attr-defined]
    return run


def build_server(tools: AgentTools, *, host: str = "127.0.0.1", port: int = 8000) -> Any:
    """The FastMCP server with every tool of :data:`TOOLS` registered."""
    from mcp.server.fastmcp import FastMCP

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await tools.aclose()  # on the server's loop, before it stops

    server = FastMCP(
        "agentmarket",
        lifespan=lifespan,
        instructions=(
            f"Wallet and market tools of agent {tools.agent.address}. Amounts are strings of wei; "
            "spending tools are limited by the agent's mandate (see mandate_status)."
        ),
        host=host,
        port=port,
    )
    for name in TOOLS:
        method = getattr(tools, name)
        server.add_tool(_tool(method), name=name, description=inspect.getdoc(method), structured_output=True)
    return server


def connect_agent(
    *,
    chain: str | None,
    keystore: str | None,
    manifest: str | None,
    mandate: Mandate | None,
) -> tuple[Agent, Any]:
    """The agent (key from ``keystore`` + ``$AGENTMARKET_KEYSTORE_PASSWORD``, else the chain's first
    account) on ``chain`` (embedded / anvil: a suite is deployed; a URL: the suite from the manifest)."""
    import os

    from ..aio import loop_chain
    from ..chain import Chain, load_keystore
    from ..deploy import deploy_suite
    from ..market import _load_suite

    account = None
    if keystore:
        password = os.environ.get("AGENTMARKET_KEYSTORE_PASSWORD")
        if password is None:
            raise ConfigError("set $AGENTMARKET_KEYSTORE_PASSWORD to unlock --agent")
        account = load_keystore(keystore, password)
    if chain in (None, "", "embedded", "anvil"):
        ch = Chain.embedded() if chain in (None, "", "embedded") else Chain.anvil()
        suite = deploy_suite(ch, write=False, reuse=False)
        if account is not None:
            ch.transactor.send_value(ch.accounts[0], account.address, 100 * 10**18)
    else:
        keys = ["0x" + bytes(account.key).hex()] if account is not None else None
        ch = Chain.connect(str(chain), keys=keys, require_funded=False)
        suite = _load_suite(ch, manifest)
    account = account or ch.accounts[0]
    # on the loop view of the chain (agentmarket.aio): the tools await its JSON-RPC on the server's loop
    return Agent(account, loop_chain(ch), suite, mandate=mandate, name="mcp-agent"), ch


def serve(
    *,
    chain: str | None = None,
    keystore: str | None = None,
    relay: str | None = None,
    manifest: str | None = None,
    mandate_file: str | None = None,
    http_port: int | None = None,
) -> None:
    """Run the server on stdio (default) or streamable HTTP on 127.0.0.1:``http_port``."""
    mandate = load_mandate(mandate_file) if mandate_file else None
    agent, ch = connect_agent(chain=chain, keystore=keystore, manifest=manifest, mandate=mandate)
    tools = AgentTools(agent, relay=relay)
    try:
        if http_port is not None:
            build_server(tools, port=http_port).run(transport="streamable-http")
        else:
            build_server(tools).run(transport="stdio")
    finally:
        ch.close()
