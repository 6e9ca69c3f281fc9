"""Async agentmarket: :class:`AsyncMarket`, :class:`AsyncAgent` and async clients on web3's ``AsyncWeb3``.

One pipeline, not two. Every client method, the :class:`~agentmarket.tx.Transactor` (pre-flight reads
batched with the simulation, gas keys, the sender's signing policy -- the agent's mandate --, local
signing, nonces, receipts, typed errors) and every validation, calldata builder and event decoder are the
synchronous ones, unchanged. What is async is the I/O underneath them: an awaited call runs the
synchronous method in a greenlet on the event loop's own thread, and each JSON-RPC request it makes is
handed to web3's ``AsyncHTTPProvider`` and awaited by the loop (the technique of SQLAlchemy's asyncio
extension). While one call waits for the node, the loop runs other calls and tasks: no worker thread, no
thread pool, no second copy of the client logic.

    async with await AsyncMarket.connect("anvil") as market:
        buyer = await market.agent("buyer", mandate=mandate)
        seller = await market.agent("seller")
        deal = await buyer.buy(seller.agent, 20 * FINNEY, resource="gpu-hour", units=2)
        deal = await seller.escrow.submit(deal, content_hash(b"results"))
        deal = await buyer.escrow.accept(deal)

Chains: anvil and JSON-RPC URLs (http/https) get the awaiting transport. The embedded eth-tester chain
runs in process: py-evm executes synchronously (web3's ``AsyncEthereumTesterProvider`` only wraps the same
synchronous calls in coroutines), so on it an awaited call runs to completion on the loop's thread, with
the same API and pipeline, but calls do not overlap. Awaited calls must stay on the loop they started on;
a synchronous object returned by one (an ``OfferBookView``, say) that reads the chain again is used
inside :meth:`AsyncAgent.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import sys
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
import greenlet
import httpx
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from .agent import CLIENTS, Agent
from .chain import Chain
from .errors import ConfigError
from .mandate import Mandate
from .market import ETHER, Market
from .rpc import RETRY_RPC_CODES, RetryPolicy, RPCError, Transport, _Retryable, custom_middleware
from .tx import Transactor

__all__ = [
    "AsyncAgent",
    "AsyncMarket",
    "AsyncTransactor",
    "AwaitingHTTP",
    "LoopAuth",
    "async_agent",
    "async_web3",
    "await_",
    "disconnect",
    "loop_chain",
    "run_sync",
]

T = TypeVar("T")


# -- synchronous code on the event loop ---------------------------------------------------------------------


class _LoopGreenlet(greenlet.greenlet):  # type: ignore[misc]
    """Runs one synchronous call for an awaiting task; what it awaits goes back to ``driver`` (the task)."""

    def __init__(self, fn: Callable[..., Any], driver: greenlet.greenlet):
        super().__init__(fn, driver)
        self.driver = driver
        # a copy of the task's context: a context variable set inside (an Agent.spending block) stays inside
        self.gr_context = contextvars.copy_context()


def await_(awaitable: Awaitable[T]) -> T:
    """Inside :func:`run_sync`: have the event loop await ``awaitable`` and return its result (the calling
    greenlet is suspended meanwhile; the loop runs other tasks)."""
    current = greenlet.getcurrent()
    if not isinstance(current, _LoopGreenlet):
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise ConfigError(
            "this object reads the chain through an event loop: call it with await (AsyncAgent / AsyncMarket) "
            "or inside AsyncAgent.run, not directly"
        )
    return cast("T", current.driver.switch(awaitable))


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the synchronous ``fn`` on this thread; each awaitable it passes to :func:`await_` is awaited here,
    so the loop serves other tasks while ``fn`` waits for I/O. Exceptions (cancellation included) travel
    both ways."""
    child = _LoopGreenlet(fn, greenlet.getcurrent())
    result = child.switch(*args, **kwargs)
    while not child.dead:
        try:
            value = await result
        except BaseException:
            result = child.throw(*sys.exc_info())
        else:
            result = child.switch(value)
    return cast("T", result)


# -- the awaiting provider and transport --------------------------------------------------------------------


def _async_provider(chain: Chain) -> Any:
    """web3's ``AsyncHTTPProvider`` on the node of ``chain`` (its HTTP headers go along)."""
    from web3 import AsyncHTTPProvider

    provider = chain.w3.provider
    url = getattr(provider, "endpoint_uri", None) or chain.url
    if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ConfigError(f"no HTTP endpoint for async calls on {chain!r}")
    if custom_middleware(chain.w3):
        raise ConfigError(
            "the chain's Web3 carries middleware of its own, which async calls would bypass: "
            "use AsyncMarket on a Chain built from a URL"
        )
    given = provider.get_request_kwargs() if hasattr(provider, "get_request_kwargs") else {}
    headers = dict(cast("dict[str, Any]", given).get("headers") or {})
    from aiohttp import ClientTimeout

    kwargs: dict[str, Any] = {"timeout": ClientTimeout(total=30), **({"headers": headers} if headers else {})}
    aprovider = AsyncHTTPProvider(url, request_kwargs=kwargs)
    # the chain id of a connection does not change: web3 asks it before most calls (see Chain.__init__)
    aprovider.cacheable_requests = {RPCEndpoint("eth_chainId")}
    aprovider.cache_allowed_requests = True
    return aprovider


async def _session(aprovider: Any) -> None:
    """Give ``aprovider`` a keep-alive aiohttp session on the running loop (web3's own default closes the
    connection after every request; the sync transport keeps it open, and so does this one)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    known: weakref.WeakSet[asyncio.AbstractEventLoop] = aprovider.__dict__.setdefault(
        "_loops", weakref.WeakSet()
    )
    if loop not in known:
        known.add(loop)
        timeout = aiohttp.ClientTimeout(total=30)
        await aprovider.cache_async_session(aiohttp.ClientSession(raise_for_status=True, timeout=timeout))


async def _request(aprovider: Any, method: RPCEndpoint, params: Any) -> Any:
    await _session(aprovider)
    return await aprovider.make_request(method, params)


async def _batch(aprovider: Any, requests: list[tuple[RPCEndpoint, Any]]) -> Any:
    await _session(aprovider)
    return await aprovider.make_batch_request(requests)


async def disconnect(chain: Chain) -> None:
    """Close the HTTP sessions of ``chain``'s loop view (call before its event loop ends)."""
    view = chain.__dict__.get("_loop_view") if not isinstance(chain, _LoopChain) else chain
    if isinstance(view, _LoopChain):
        aprovider = view.aprovider
        await aprovider.disconnect()
        aprovider.__dict__.pop("_loops", None)


class _AwaitingProvider(JSONBaseProvider):
    """A synchronous web3 provider whose requests are awaited on the loop through ``AsyncHTTPProvider``
    (inside :func:`run_sync`): web3.py's synchronous ``Web3`` (contracts, ``.call()``, ``get_logs``) on top."""

    def __init__(self, inner: Any, same_node_as: Any):
        super().__init__()
        self.inner = inner
        self.endpoint_uri = inner.endpoint_uri
        self.same_node_as = same_node_as  # logscan: what was learned about that provider's node holds here

    def __repr__(self) -> str:
        return f"AwaitingProvider({self.endpoint_uri})"

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return cast("RPCResponse", await_(_request(self.inner, method, params)))

    def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse] | RPCResponse:
        return cast("list[RPCResponse] | RPCResponse", await_(_batch(self.inner, requests)))

    def is_connected(self, show_traceback: bool = False) -> bool:
        return bool(await_(self.inner.is_connected(show_traceback)))


class _AwaitingTransport(Transport):
    """The fast path's JSON-RPC batches over ``AsyncHTTPProvider``, awaited on the loop (same answers and
    retry rules as :class:`~agentmarket.rpc.HTTPTransport`)."""

    def __init__(self, inner: Any, policy: RetryPolicy):
        self.inner = inner
        self.policy = policy
        self.sent = 0  # signed transactions broadcast through it

    def __repr__(self) -> str:
        return f"AwaitingTransport({self.inner.endpoint_uri})"

    def _sleep(self, seconds: float) -> None:
        await_(anyio.sleep(seconds))

    def _batch_once(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        return await_(self._post(calls))

    async def _post(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        import aiohttp

        requests = [(RPCEndpoint(m), list(p)) for m, p in calls]
        try:
            if len(requests) == 1:
                answers: Any = [await _request(self.inner, *requests[0])]
            else:
                answers = await _batch(self.inner, requests)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _Retryable(type(exc).__name__) from None
        if not isinstance(answers, list) or len(answers) != len(calls):
            raise _Retryable("batch answer is missing a response")
        self.sent += sum(1 for m, _ in calls if m.startswith("eth_sendRawTransaction"))
        results: list[Any] = []
        for item in answers:
            error = item.get("error") if isinstance(item, dict) else None
            if error is not None:
                error = error if isinstance(error, dict) else {"message": str(error)}
                if int(error.get("code", 0) or 0) in RETRY_RPC_CODES:
                    raise _Retryable(str(error.get("message", "busy")))
                results.append(RPCError(error))
            else:
                results.append(item.get("result") if isinstance(item, dict) else item)
        return results


def _loop_sleep(seconds: float) -> None:
    await_(anyio.sleep(seconds))


class _LoopChain(Chain):
    """A view of a chain whose I/O is awaited on the event loop (same node and accounts; its transactor
    shares the chain's nonces, signing policies and gas table)."""

    def __init__(self, chain: Chain):
        self.__dict__.update({k: v for k, v in chain.__dict__.items() if k != "_loop_view"})
        self._base = chain
        self._process = None
        aprovider = self.aprovider = _async_provider(chain)
        self.w3 = Web3(_AwaitingProvider(aprovider, same_node_as=chain.w3.provider))
        base = chain.transactor
        tx = copy.copy(base)  # shallow: the nonce table, its lock, the policies and the journal are shared
        tx.chain, tx.w3 = self, self.w3
        tx._transport = _AwaitingTransport(aprovider, base.policy)
        tx.sleep = _loop_sleep
        tx.PIPELINE_CHUNK = 1 << 62  # the pipelined path signs while a worker thread sends: not here
        self._transactor = tx

    @property
    def base(self) -> Chain:
        """The synchronous chain this view awaits on."""
        return self._base

    def revert(self, snapshot_id: Any) -> None:
        self._base.revert(snapshot_id)

    def close(self) -> None:
        """A view never stops the node."""


def loop_chain(chain: Chain) -> Chain:
    """The view of ``chain`` whose I/O is awaited on the event loop (one per chain; the embedded chain is
    its own view: it runs in process, with nothing to await)."""
    if chain.kind == "embedded" or isinstance(chain, _LoopChain):
        return chain
    view = chain.__dict__.get("_loop_view")
    if view is None:
        view = _LoopChain(chain)
        chain.__dict__["_loop_view"] = view
    return cast("Chain", view)


def async_web3(chain: Chain) -> AsyncWeb3[Any]:
    """An ``AsyncWeb3`` on the same node (or, embedded, the same in-process tester) as ``chain``, for
    callers' own reads."""
    if chain.kind == "embedded":
        from web3.providers.eth_tester import AsyncEthereumTesterProvider

        provider = AsyncEthereumTesterProvider()
        provider.ethereum_tester = chain._tester  # share the chain's state, not a fresh tester
        return AsyncWeb3(provider)
    return AsyncWeb3(_async_provider(chain))


# -- the async surface ----------------------------------------------------------------------------------------


class AsyncTransactor:
    """The chain's :class:`~agentmarket.tx.Transactor` with awaitable sends (same build, gas keys, signing
    policy, nonces and typed errors; the I/O awaited on the loop)."""

    def __init__(self, sync: Transactor, aw3: AsyncWeb3[Any] | None = None):
        self.sync = loop_chain(sync.chain).transactor
        self.aw3 = aw3 if aw3 is not None else async_web3(sync.chain)

    def __repr__(self) -> str:
        return f"AsyncTransactor(chain={self.sync.chain.kind})"

    @property
    def sent(self) -> int:
        """Transactions broadcast through ``AsyncHTTPProvider`` (0 on the embedded chain, which has no I/O)."""
        transport = self.sync._transport
        return transport.sent if isinstance(transport, _AwaitingTransport) else 0

    async def transact(self, account: LocalAccount, call: Any = None, **kwargs: Any) -> Any:
        """:meth:`Transactor.transact <agentmarket.tx.Transactor.transact>`, awaited: build (gas key or
        estimate), the sender's signing policy, sign, send, the receipt; a revert raises its typed error."""
        return await run_sync(functools.partial(self.sync.transact, account, call, **kwargs))

    async def send_built(
        self,
        account: LocalAccount,
        tx: dict[str, Any],
        undo: Callable[[], None] | None = None,
        timeout: float = 120.0,
    ) -> Any:
        """Send a transaction already built (``Transactor.build``) and authorised by the sender's signing
        policy (``undo`` gives that authorisation back if it is not sent or fails); the receipt."""

        def send() -> Any:
            sync = self.sync
            instant = sync._instant_receipts()
            lock = getattr(sync.chain, "backend_lock", None)
            with lock if lock is not None else contextlib.nullcontext():
                (sent,) = sync._reserve_sign_send([(account, dict(tx), None)], [undo], instant)
            if sent.error is not None:
                raise sent.error
            return sync.wait(sent, timeout=timeout)

        return await run_sync(send)

    async def read(self, reads: Sequence[Any]) -> list[Any]:
        """:meth:`Transactor.read <agentmarket.tx.Transactor.read>` (one JSON-RPC batch), awaited."""
        return await run_sync(self.sync.read, reads)


class _Async:
    """Awaitable methods of a synchronous object: each call runs through :func:`run_sync`."""

    def __init__(self, target: Any):
        self._target = target

    def __repr__(self) -> str:
        return f"Async({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await run_sync(functools.partial(attr, *args, **kwargs))

        return call


class AsyncAgent(_Async):
    """An :class:`~agentmarket.agent.Agent` with awaitable methods and clients (``await agent.buy(...)``,
    ``await agent.escrow.accept(deal)``); the mandate is the agent's own, applied before signing."""

    def __init__(self, agent: Agent):
        super().__init__(agent)
        self.agent = agent

    def __getattr__(self, name: str) -> Any:
        if name in CLIENTS:
            return _Async(self.agent.client(name))
        return super().__getattr__(name)

    @property
    def address(self) -> str:
        return self.agent.address

    @property
    def mandate(self) -> Mandate:
        return self.agent.mandate

    @property
    def guard(self) -> Any:
        return self.agent.guard

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run synchronous agentmarket code (several calls, a returned object's methods) on the loop."""
        return await run_sync(fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"AsyncAgent({self.agent!r})"


def async_agent(agent: Agent) -> AsyncAgent:
    """``agent`` (same key, mandate and suite) on the loop view of its chain, with awaitable methods."""
    if agent.chain is None:
        raise ConfigError(f"{agent.name} is not connected to a chain")
    view = loop_chain(agent.chain)
    if view is agent.chain:
        return AsyncAgent(agent)
    moved = Agent(agent.account, view, agent.suite, mandate=agent.mandate, name=agent.name)
    moved.guard = agent.guard  # one running total: the mandate is the agent's, whichever way it sends
    return AsyncAgent(moved)


class AsyncMarket:
    """:class:`~agentmarket.market.Market` with awaitable agents; sends go through ``AsyncWeb3``'s provider."""

    def __init__(self, market: Market, aw3: AsyncWeb3[Any] | None = None):
        self.market = market
        self.chain = loop_chain(market.chain)
        self.transactor = AsyncTransactor(market.chain.transactor, aw3)
        self.aw3 = self.transactor.aw3

    @classmethod
    async def connect(cls, where: str | Chain | None = None, **kwargs: Any) -> AsyncMarket:
        """:meth:`Market.connect` (starting a node and deploying: setup, in a worker thread), then the
        loop view of its chain."""
        market = await anyio.to_thread.run_sync(functools.partial(Market.connect, where, **kwargs))
        return cls(market)

    async def agent(
        self, name: str | None = None, *, fund: int = ETHER, mandate: Mandate | None = None
    ) -> AsyncAgent:
        """A new agent (fresh key), funded with ``fund`` wei through the async transactor."""
        from eth_account import Account

        agent = Agent(Account.create(), self.chain, self.market.suite, mandate=mandate, name=name)
        if fund:
            funder = self.market.funder
            assert funder is not None
            await self.transactor.transact(funder, to=agent.address, value=fund, gas=21_000)
        return AsyncAgent(agent)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run synchronous agentmarket code on the loop (its chain I/O awaited)."""
        return await run_sync(fn, *args)

    async def close(self) -> None:
        """Close the loop's HTTP sessions, then the market (and the node it started)."""
        await disconnect(self.market.chain)
        await anyio.to_thread.run_sync(self.market.close)

    async def __aenter__(self) -> AsyncMarket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncMarket({self.market!r})"


# -- synchronous httpx code on the loop ---------------------------------------------------------------------


class LoopAuth(httpx.Auth):
    """Drives a synchronous ``httpx.Auth`` flow (e.g. :class:`~agentmarket.gateway.ChannelPayment`) from an
    ``httpx.AsyncClient``: each step between two HTTP requests (opening a channel, signing a voucher) runs
    through :func:`run_sync`, its chain I/O awaited on the loop, with the agent on :func:`loop_chain`."""

    requires_request_body = False
    requires_response_body = True  # the flow reads a 402's JSON body

    def __init__(self, inner: Any):
        self.inner = inner

    def __repr__(self) -> str:
        return f"LoopAuth({self.inner!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise ConfigError("LoopAuth drives an httpx.AsyncClient; give the inner auth to a sync client")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.inner.sync_auth_flow(request)
        try:
            step = await run_sync(_advance, flow, None)
            while step is not None:
                response = yield step
                step = await run_sync(_advance, flow, response)
        finally:
            await run_sync(flow.close)


def _advance(flow: Any, value: Any) -> Any:
    """The flow's next request, or None when it is done (StopIteration must not cross a coroutine)."""
    try:
        return flow.send(value)
    except StopIteration:
        return None


class AwaitingHTTP:
    """The ``send`` of an ``httpx.Client`` for synchronous code inside :func:`run_sync` (e.g.
    ``ChannelPayment.close``): the request goes out on the loop's ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        return await_(self.client.send(request, **kwargs))
