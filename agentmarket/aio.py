"""Async agentmarket: :class:`AsyncMarket`, :class:`AsyncAgent` and async clients on web3's ``AsyncWeb3``.

A thin layer over the synchronous pipeline, not a second copy of it. What is shared, unchanged:
building a transaction and its gas limit (``Transactor.build``: gas keys from the snapshot, estimation
otherwise, the fee cache), the nonce manager and local signing (``Transactor._reserve_nonces`` /
``_sign``), revert decoding (``errors.translate``, ``Transactor.explain_failure``), every client's
pre-flight checks and event folding, and the sender's signing policy (the agent's mandate). What is
async: broadcasting the signed bytes and waiting for the receipt, over ``AsyncWeb3``
(``AsyncHTTPProvider`` for anvil and RPC URLs; ``AsyncEthereumTesterProvider`` bound to the same
in-process tester for the embedded chain), so an event loop is never blocked while a transaction is
mined. A client method runs its synchronous checks in a worker thread and hands the send back to the
loop (:class:`_Bridge`).

    async with await AsyncMarket.connect("anvil") as market:
        buyer = await market.agent("buyer", mandate=mandate)
        seller = await market.agent("seller")
        deal = await buyer.buy(seller, 20 * FINNEY, resource="gpu-hour", units=2)
        deal = await seller.escrow.submit(deal, content_hash(b"results"))
        deal = await buyer.escrow.accept(deal)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3

from .agent import CLIENTS, Agent
from .chain import Chain
from .errors import TransactionTimeout, translate
from .mandate import Mandate
from .market import ETHER, Market
from .tx import Transactor

__all__ = ["AsyncAgent", "AsyncMarket", "AsyncTransactor", "async_web3", "bridged", "is_bridged"]

T = TypeVar("T")


def async_web3(chain: Chain) -> AsyncWeb3[Any]:
    """An ``AsyncWeb3`` on the same node (or, embedded, the same in-process tester) as ``chain``."""
    if chain.kind == "embedded":
        from web3.providers.eth_tester import AsyncEthereumTesterProvider

        provider = AsyncEthereumTesterProvider()
        provider.ethereum_tester = chain._tester  # share the chain's state, not a fresh tester
        return AsyncWeb3(provider)
    if not chain.url or not chain.url.startswith(("http://", "https://")):
        raise TransactionTimeout(f"no async HTTP endpoint for {chain!r}")
    from web3 import AsyncHTTPProvider

    return AsyncWeb3(AsyncHTTPProvider(chain.url, request_kwargs={"timeout": 30}))


class AsyncTransactor:
    """Sends through ``AsyncWeb3``; builds, signs and decodes with the chain's synchronous
    :class:`~agentmarket.tx.Transactor` (one nonce manager for both)."""

    POLL = 0.01

    def __init__(self, sync: Transactor, aw3: AsyncWeb3[Any]):
        self.sync = sync
        self.aw3 = aw3
        self.sent = 0  # transactions broadcast through AsyncWeb3

    def __repr__(self) -> str:
        return f"AsyncTransactor(chain={self.sync.chain.kind})"

    async def transact(
        self,
        account: LocalAccount,
        call: Any = None,
        *,
        to: str | None = None,
        value: int = 0,
        data: bytes | str = b"",
        gas: int | None = None,
        gas_key: str | None = None,
        timeout: float = 120.0,
    ) -> Any:
        """Build (gas key / estimate), sign, broadcast, await the receipt; a revert raises its typed error."""
        tx = self.sync.build(account, call, to=to, value=value, gas=gas, data=data, gas_key=gas_key)
        (undo,) = self.sync._authorise([(account, tx, None)])  # the sender's signing policy (mandate)
        return await self.send_built(account, tx, undo, timeout)

    async def send_built(
        self,
        account: LocalAccount,
        tx: dict[str, Any],
        undo: Callable[[], None] | None,
        timeout: float = 120.0,
    ) -> Any:
        """Send a transaction already built and authorised (``undo`` gives the authorisation back on failure)."""
        try:
            receipt = await self._send(account, tx, timeout)
        except BaseException:
            if undo is not None:
                undo()
            raise
        policy = self.sync.signing_policy(account.address)
        if policy is not None:
            policy.settled(receipt)
        return receipt

    async def _send(self, account: LocalAccount, tx: dict[str, Any], timeout: float) -> Any:
        nonce = self.sync._reserve_nonces(account.address, 1)
        tx = {k: v for k, v in tx.items() if not k.startswith("_")} | {"nonce": nonce}
        raw, tx_hash = self.sync._sign(account, tx)
        try:
            await self.aw3.eth.send_raw_transaction(raw)
        except Exception as exc:
            self.sync._release_nonce(account.address, nonce)
            raise translate(exc, tx_hash=tx_hash) from None
        self.sent += 1
        try:
            receipt = await self.aw3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=timeout,
                poll_latency=self.POLL,
            )
        except Exception as exc:
            if type(exc).__name__ == "TimeExhausted":
                raise TransactionTimeout(f"{tx_hash} not mined within {timeout:.0f}s") from None
            raise translate(exc, tx_hash=tx_hash) from None
        if receipt["status"] != 1:
            raise await anyio.to_thread.run_sync(self.sync.explain_failure, tx_hash, receipt)
        return receipt


class _Bridge:
    """The transactor a synchronous client sees inside a worker thread: ``transact`` (wait=True) hops back
    to the event loop and sends through :class:`AsyncTransactor`; everything else is the sync one's."""

    def __init__(self, atx: AsyncTransactor):
        self._atx = atx
        self._inner = atx.sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transact(self, account: LocalAccount, call: Any = None, *, wait: bool = True, **kwargs: Any) -> Any:
        if not wait or kwargs.get("key") is not None or kwargs.get("replace_after") is not None:
            return self._inner.transact(account, call, wait=wait, **kwargs)  # the sync pipeline's features
        # everything build() takes, pre-flight reads and their check included: dropping one would skip it
        keys = ("to", "value", "data", "gas", "gas_key", "gas_count", "simulate", "reads", "check")
        build = {k: kwargs[k] for k in keys if k in kwargs}
        # built and authorised here, in the caller's thread: the mandate's cover of an Agent.spending block
        # is thread-local; only the broadcast and the wait hop to the event loop
        tx = self._inner.build(account, call, **build)
        (undo,) = self._inner._authorise([(account, tx, None)])
        send = functools.partial(self._atx.send_built, account, tx, undo, kwargs.get("timeout", 120.0))
        return anyio.from_thread.run(send)


class _BridgedChain(Chain):
    """A view of a chain whose transactor is the :class:`_Bridge` (same node, same state)."""

    def __init__(self, chain: Chain, bridge: _Bridge):
        self.__dict__.update(chain.__dict__)
        self._process = None
        self._base = chain
        self._transactor = bridge

    def revert(self, snapshot_id: Any) -> None:
        self._base.revert(snapshot_id)

    def close(self) -> None:
        """A view never stops the node."""


class _Async:
    """Runs the methods of a synchronous object in a worker thread (whose sends go through the loop)."""

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
            return await anyio.to_thread.run_sync(functools.partial(attr, *args, **kwargs))

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
    def guard(self) -> Any:
        return self.agent.guard

    def __repr__(self) -> str:
        return f"AsyncAgent({self.agent!r})"


class AsyncMarket:
    """:class:`~agentmarket.market.Market` with awaitable agents; sends go through ``AsyncWeb3``."""

    def __init__(self, market: Market, aw3: AsyncWeb3[Any]):
        self.market = market
        self.aw3 = aw3
        self.transactor = AsyncTransactor(market.chain.transactor, aw3)
        self.chain = _BridgedChain(market.chain, _Bridge(self.transactor))

    @classmethod
    async def connect(cls, where: str | Chain | None = None, **kwargs: Any) -> AsyncMarket:
        """:meth:`Market.connect` (deploying in a worker thread), then an ``AsyncWeb3`` on the same chain."""
        market = await anyio.to_thread.run_sync(functools.partial(Market.connect, where, **kwargs))
        return cls(market, async_web3(market.chain))

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
        """Run a synchronous agentmarket call in a worker thread (its sends go through the loop)."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.market.close)

    async def __aenter__(self) -> AsyncMarket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncMarket({self.market!r})"


# -- bridging a synchronous client onto the loop (used by agentmarket.gateway) ---------------------------


def bridged(chain: Chain, aw3: AsyncWeb3[Any] | None = None) -> tuple[Chain, AsyncTransactor]:
    """A view of ``chain`` (same node, same nonce manager) for synchronous clients called from a worker
    thread of an event loop (``anyio.to_thread``): their sends go through ``AsyncWeb3`` on that loop, as
    :class:`AsyncMarket`'s agents' do. Returns the view and its :class:`AsyncTransactor` (``sent`` counts
    what went through ``AsyncWeb3``). A client on the view must not be called from a plain thread."""
    atx = AsyncTransactor(chain.transactor, aw3 if aw3 is not None else async_web3(chain))
    return _BridgedChain(chain, _Bridge(atx)), atx


def is_bridged(chain: Chain | None) -> bool:
    """True for a view made by :func:`bridged` or :class:`AsyncMarket` (its clients need a worker thread
    of the event loop)."""
    return isinstance(chain, _BridgedChain)
