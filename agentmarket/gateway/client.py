"""Buyer side: an httpx ``Auth`` that pays ``agentmarket-channel`` 402s from an :class:`~agentmarket.agent.Agent`.

On the first 402 of a server it opens a payment channel to the server's payee (the deposit goes through
the agent's mandate: a refused deposit raises :class:`~agentmarket.errors.MandateViolation` and nothing is
sent), then signs one cumulative voucher per request: ``charged so far + this request's maximum``. Each
paid response's ``PAYMENT-RESPONSE`` is checked (the charge is within the maximum and adds up) before the
next voucher is signed; a server that overcharges raises :class:`PaymentDisputed` and gets no more
vouchers. The channel is topped up when the next request would not fit, and extended before the server's
minimum time left runs out. :meth:`ChannelPayment.close` (or leaving :class:`PaidClient`) asks the server
to close the channel at the charged total; the rest of the deposit comes back on chain.

Works with ``httpx.Client`` and ``httpx.AsyncClient``. :class:`AsyncPaidClient` puts the agent on the
loop view of its chain (:func:`agentmarket.aio.async_agent`; an :class:`~agentmarket.aio.AsyncAgent` is
there already): the channel's open, top-ups and reads run on the event loop with their JSON-RPC awaited
(:func:`agentmarket.aio.run_sync`), no worker thread; signing a voucher is local::

    with PaidClient(agent, base_url="http://127.0.0.1:8000") as http:
        http.post("/generate", json={"prompt": "..."})

    async with AsyncPaidClient(async_agent, base_url="http://127.0.0.1:8000") as http:
        await http.post("/generate", json={"prompt": "..."})
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_utils.address import to_checksum_address

from ..errors import AgentMarketError, InvalidInput
from ..types import Channel, Voucher
from . import x402
from .x402 import ChannelRef, PaymentPayload, PaymentRequired, PaymentRequirements, SettlementResponse


class PaymentDisputed(AgentMarketError):
    """The server's payment response does not add up (charged more than the voucher allowed, or a
    cumulative total that does not follow); no further voucher is signed for that channel."""


class PaymentRefused(AgentMarketError, PermissionError):
    """The client's own limits refuse a payment request (e.g. above ``max_per_request``)."""


@dataclass
class _Session:
    """One server (network, contract, payee, asset): its channel and what it has charged."""

    key: tuple[str, str, str, str]
    channel: Channel | None = None
    charged: int = 0
    signed: int = 0  # the highest cumulative amount signed so far
    disputed: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_url: str = ""
    last_method: str = "GET"
    last_requirements: PaymentRequirements | None = None
    opened: int = 0
    topped_up: int = 0
    signer: Any = None  # the agent's VoucherSigner, kept for the session (not rebuilt per request)
    ref: ChannelRef | None = None  # the channel key sent with each voucher (its JSON is encoded once)


Step = Callable[[], Any]  # chain work the driver runs (inline when sync, in a thread when async)


class ChannelPayment(httpx.Auth):
    """Pays 402s of the ``agentmarket-channel`` scheme with ``agent``'s channels.

    ``agent``: an :class:`~agentmarket.agent.Agent`, or an :class:`~agentmarket.aio.AsyncAgent` (async
    clients only: its chain I/O is awaited on the loop). ``deposit``: each channel's deposit and each
    top-up (default ``requests_per_deposit`` x the first request's maximum, at least the server's
    ``minDeposit``). ``ttl``: channel lifetime in seconds (at least twice the server's
    ``minExpirySeconds``). ``max_per_request``: refuse routes whose maximum is higher.
    """

    def __init__(
        self,
        agent: Any,
        *,
        deposit: int | None = None,
        requests_per_deposit: int = 100,
        ttl: int = 3600,
        max_per_request: int | None = None,
    ):
        self.agent = getattr(agent, "agent", agent)  # an AsyncAgent wraps an Agent on the loop view
        self.deposit = deposit
        self.requests_per_deposit = int(requests_per_deposit)
        self.ttl = int(ttl)
        self.max_per_request = max_per_request
        self._sessions: dict[tuple[str, str, str, str], _Session] = {}
        self._routes: dict[tuple[str, str], PaymentRequirements] = {}  # (method, url) -> requirements
        self._keys: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}  # raw -> checksummed
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ChannelPayment(agent={self.agent.address}, sessions={len(self._sessions)})"

    @property
    def sessions(self) -> list[_Session]:
        return list(self._sessions.values())

    # -- drivers ------------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        value: Any = None
        try:
            while True:
                try:
                    step = flow.send(value)
                except StopIteration:
                    return
                value = (yield step) if isinstance(step, httpx.Request) else step()
        finally:
            flow.close()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Chain steps run on the loop with their I/O awaited when the agent is on the loop view of its
        chain (:func:`agentmarket.aio.loop_chain`), else in a worker thread."""
        flow = self._flow(request)
        value: Any = None
        try:
            while True:
                try:
                    step = flow.send(value)
                except StopIteration:
                    return
                if isinstance(step, httpx.Request):
                    value = yield step
                else:
                    value = await self._step(step)
        finally:
            flow.close()

    async def _step(self, step: Step) -> Any:
        import anyio.to_thread

        from ..aio import loop_chain, run_sync

        chain = getattr(self.agent, "chain", None)
        if chain is not None and loop_chain(chain) is chain:
            return await run_sync(step)
        return await anyio.to_thread.run_sync(step)

    # -- the flow (no I/O of its own: it yields requests and chain steps) ------------------------------------

    def _flow(self, request: httpx.Request) -> Generator[Any, Any, None]:
        url = request.url
        route = (request.method, str(url.copy_with(query=None)) if url.query else str(url))
        requirements = self._routes.get(route)
        session: _Session | None = None
        try:
            if requirements is None:
                response = yield request
            else:
                session = yield from self._acquire(requirements)
                yield from self._attach(request, session, requirements, route[1])
                response = yield request
            for _ in range(3):
                if response.status_code != 402:
                    if session is not None:
                        self._after(session, response)
                    return
                required = _payment_required(response)
                ours = required.ours() if required is not None else None
                if ours is None:
                    return  # not our scheme: hand the 402 to the caller
                self._routes[route] = ours
                if session is None:
                    session = yield from self._acquire(ours)
                if required is not None and required.error == x402.E_MISMATCH:
                    self._resync(session, ours)
                elif required is not None and required.error not in (x402.E_REQUIRED, x402.E_BUSY):
                    if required.error in (x402.E_CHANNEL_NOT_FOUND, x402.E_CHANNEL_EXPIRING):
                        session.channel = yield (lambda s=session: self._reread(s))
                    elif requirements is not None:
                        return  # a refusal we cannot repair: the caller sees the 402
                requirements = ours
                yield from self._attach(request, session, ours, route[1])
                response = yield request
            if session is not None and response.status_code != 402:
                self._after(session, response)
        finally:
            if session is not None:
                session.lock.release()  # _acquire returns only once the lock is held

    def _acquire(self, requirements: PaymentRequirements) -> Generator[Any, Any, _Session]:
        session = self._session(requirements)
        if not session.lock.acquire(blocking=False):
            yield lambda: _wait_for(session.lock)  # never blocks the event loop
        return session

    def _attach(
        self, request: httpx.Request, session: _Session, requirements: PaymentRequirements, resource: str
    ) -> Generator[Any, Any, None]:
        """Sign the next voucher (opening, topping up or extending the channel first when needed)."""
        if session.disputed:
            raise PaymentDisputed(session.disputed)
        amount = requirements.amount
        if self.max_per_request is not None and amount > self.max_per_request:
            raise PaymentRefused(f"the route asks up to {amount} per request, above {self.max_per_request}")
        need = session.charged + amount
        min_left = int(requirements.extra.get("minExpirySeconds", 0))
        if session.channel is None or not session.channel.is_open:
            session.channel = yield (lambda: self._open(session, requirements))
        channel = session.channel
        assert channel is not None
        now = int(time.time())  # wall clock, as the server judges expiry (no RPC per request)
        extend = channel.expiry - now < min_left + 60
        if need > channel.deposit or extend:
            top = self._deposit_size(requirements) if need > channel.deposit else 0
            top = max(top, need - channel.deposit)
            new_expiry = now + max(self.ttl, 2 * min_left) if extend else None
            session.channel = yield (lambda: self._top_up(session, top, new_expiry))
        if session.signer is None:
            session.signer = self.agent.channels.signer
        voucher = session.signer.sign(channel.id, need)  # need <= deposit: a valid uint256 amount
        session.signed = max(session.signed, need)
        session.last_url, session.last_method = str(request.url), request.method
        session.last_requirements = requirements
        if session.ref is None or session.ref.channel_id != channel.id:
            session.ref = _ref(channel)
        payload = PaymentPayload(requirements, session.ref, voucher, resource={"url": resource})
        request.headers[x402.HEADER_SIGNATURE] = payload.header()

    def _after(self, session: _Session, response: httpx.Response) -> None:
        """Check the server's ``PAYMENT-RESPONSE`` and move the charged total."""
        header = response.headers.get(x402.HEADER_RESPONSE)
        if header is None:
            return  # nothing was charged (the server says so by omission only for free routes)
        requirements = session.last_requirements
        try:
            # the two numbers checked, read straight from the decoded JSON (no SettlementResponse per call)
            extra = x402.decode_header(header)["extra"]
            charge = int(extra.get("chargedAmount", 0))
            cumulative = int(extra["channelState"]["chargedCumulativeAmount"])
        except (KeyError, TypeError, ValueError, AttributeError, InvalidInput):
            session.disputed = "payment response without a charge and cumulative total"
            raise PaymentDisputed(session.disputed) from None
        ceiling = requirements.amount if requirements is not None else 0
        if charge < 0 or charge > ceiling or cumulative != session.charged + charge:
            session.disputed = (
                f"server charged {charge} (allowed {ceiling}) and reports {cumulative}, "
                f"expected {session.charged} + {charge}"
            )
            raise PaymentDisputed(session.disputed)
        session.charged = cumulative

    def _resync(self, session: _Session, requirements: PaymentRequirements) -> None:
        """A corrective 402: adopt the server's charged total only when it is backed by a voucher we
        signed and does not exceed it (at most one request's maximum above what we knew)."""
        state = requirements.extra.get("channelState") or {}
        proof = requirements.extra.get("voucherState") or {}
        channel = session.channel
        try:
            charged = int(state["chargedCumulativeAmount"])
        except (KeyError, TypeError, ValueError):
            return
        if charged <= session.charged:
            session.charged = max(charged, int(state.get("totalClaimed", 0)))
            return
        if channel is None or not proof:
            raise PaymentDisputed(f"server claims {charged} charged without a voucher of ours to show")
        signed = int(proof["signedMaxClaimable"])
        voucher = Voucher(channel.id, signed, bytes.fromhex(str(proof["signature"]).removeprefix("0x")))
        if (
            charged > signed
            or signed > session.signed
            or self.agent.channels.signer.sign(channel.id, signed).signature != voucher.signature
        ):
            session.disputed = f"server claims {charged} charged; our vouchers allow at most {session.signed}"
            raise PaymentDisputed(session.disputed)
        session.charged = charged

    # -- chain steps (run inline or in a worker thread) ---------------------------------------------------------

    def _open(self, session: _Session, requirements: PaymentRequirements) -> Channel:
        channels = self.agent.channels
        if requirements.chain_id != channels.domain.chain_id:
            raise InvalidInput(
                f"server wants chain {requirements.chain_id}; this agent is on {channels.domain.chain_id}"
            )
        if to_checksum_address(requirements.contract) != channels.domain.contract:
            raise InvalidInput(
                f"server's channel contract {requirements.contract} is not this agent's {channels.domain.contract}"
            )
        min_left = int(requirements.extra.get("minExpirySeconds", 0))
        ttl = max(self.ttl, 2 * min_left + 120)
        channel: Channel = channels.open(
            requirements.pay_to,
            self._deposit_size(requirements),
            ttl=ttl,
            asset=requirements.asset,
            approve=True,
        )
        session.opened += 1
        session.charged = session.signed = 0
        return channel

    def _top_up(self, session: _Session, amount: int, new_expiry: int | None) -> Channel:
        assert session.channel is not None
        channel: Channel = self.agent.channels.top_up(
            session.channel, amount, new_expiry=new_expiry, approve=True
        )
        session.topped_up += 1
        return channel

    def _reread(self, session: _Session) -> Channel | None:
        if session.channel is None:
            return None
        channel: Channel = self.agent.channels.channel(session.channel.id)
        return channel

    def _deposit_size(self, requirements: PaymentRequirements) -> int:
        minimum = int(requirements.extra.get("minDeposit", requirements.amount))
        size = self.deposit if self.deposit is not None else requirements.amount * self.requests_per_deposit
        return max(size, minimum, requirements.amount)

    def _session(self, requirements: PaymentRequirements) -> _Session:
        raw = (requirements.network, requirements.contract, requirements.pay_to, requirements.asset)
        key = self._keys.get(raw)
        if key is None:  # checksumming is the costly part of a lookup: once per server
            key = (
                raw[0],
                to_checksum_address(raw[1]),
                to_checksum_address(raw[2]),
                to_checksum_address(raw[3]),
            )
            if len(self._keys) < 1024:
                self._keys[raw] = key
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = _Session(key)
            return session

    # -- closing ---------------------------------------------------------------------------------------------

    def close_request(self, session: _Session) -> httpx.Request | None:
        """The request asking the server to close ``session``'s channel at the charged total."""
        channel, requirements = session.channel, session.last_requirements
        if channel is None or requirements is None or not channel.is_open or session.disputed:
            return None
        voucher = self.agent.channels.sign_voucher(channel.id, session.charged)
        payload = PaymentPayload(requirements, _ref(channel), voucher, type="close")
        return httpx.Request(
            session.last_method, session.last_url, headers={x402.HEADER_SIGNATURE: payload.header()}
        )

    def _closed(self, session: _Session, response: httpx.Response) -> SettlementResponse | None:
        if response.status_code != 200 or x402.HEADER_RESPONSE not in response.headers:
            return None
        settled = SettlementResponse.from_header(response.headers[x402.HEADER_RESPONSE])
        if session.channel is not None:
            session.channel = self.agent.channels.channel(session.channel.id)
        return settled

    def close(self, client: httpx.Client) -> list[SettlementResponse | None]:
        """Ask each server to close its channel; returns each close's settlement (None: not closed; the
        deposit then comes back with ``reclaim`` after the channel's expiry)."""
        out: list[SettlementResponse | None] = []
        for session in self.sessions:
            request = self.close_request(session)
            if request is None:
                continue
            try:
                response = client.send(request, auth=None)
            except httpx.HTTPError:
                out.append(None)
                continue
            out.append(self._closed(session, response))
        return out

    async def aclose(self, client: httpx.AsyncClient) -> list[SettlementResponse | None]:
        """:meth:`close` for an ``httpx.AsyncClient``."""

        out: list[SettlementResponse | None] = []
        for session in self.sessions:
            request = self.close_request(session)
            if request is None:
                continue
            try:
                response = await client.send(request, auth=None)
            except httpx.HTTPError:
                out.append(None)
                continue
            out.append(await self._step(functools.partial(self._closed, session, response)))
        return out


class PaidClient(httpx.Client):
    """``httpx.Client`` paying with ``agent`` (see :class:`ChannelPayment`); closes channels on exit."""

    def __init__(self, agent: Any, *, payment: ChannelPayment | None = None, **kwargs: Any):
        self.payment = payment or ChannelPayment(agent)
        super().__init__(auth=self.payment, **kwargs)
        self.closed_channels: list[SettlementResponse | None] = []

    def __exit__(self, *exc: Any) -> None:
        try:
            self.closed_channels = self.payment.close(self)
        finally:
            super().__exit__(*exc)


class AsyncPaidClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` paying with ``agent`` (moved to the loop view of its chain: same key,
    mandate and running total, see :func:`agentmarket.aio.async_agent`); closes channels on exit."""

    def __init__(self, agent: Any, *, payment: ChannelPayment | None = None, **kwargs: Any):
        if payment is None:
            from ..aio import AsyncAgent, async_agent

            payment = ChannelPayment(agent if isinstance(agent, AsyncAgent) else async_agent(agent))
        self.payment = payment
        super().__init__(auth=self.payment, **kwargs)
        self.closed_channels: list[SettlementResponse | None] = []

    async def __aexit__(self, *exc: Any) -> None:
        try:
            self.closed_channels = await self.payment.aclose(self)
        finally:
            await super().__aexit__(*exc)


def _wait_for(lock: threading.Lock) -> None:
    """Take ``lock``: on the event loop (inside :func:`agentmarket.aio.run_sync`) a worker thread waits for
    it while the loop serves the request holding it; anywhere else, block."""
    import anyio.to_thread

    from ..aio import await_
    from ..errors import ConfigError

    try:
        await_(anyio.to_thread.run_sync(lock.acquire))
    except ConfigError:  # not on the loop: a plain thread (sync client) or a worker thread
        lock.acquire()


def _ref(channel: Channel) -> ChannelRef:
    return ChannelRef(channel.id, channel.payer, channel.payee, channel.asset, channel.salt)


def _payment_required(response: httpx.Response) -> PaymentRequired | None:
    header = response.headers.get(x402.HEADER_REQUIRED)
    try:
        if header is not None:
            return PaymentRequired.from_json(x402.decode_header(header))
        return PaymentRequired.from_json(response.json())
    except (InvalidInput, ValueError, httpx.ResponseNotRead):
        return None
