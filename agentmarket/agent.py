"""The Agent facade: a wallet, a spend mandate enforced before anything is signed, and every client.

An :class:`Agent` owns one key (never shown in reprs, logs or errors), a :class:`~agentmarket.mandate.Mandate`
and, when built with a deployed :class:`~agentmarket.deploy.Suite`, lazily built clients of every contract
family in that suite: ``agent.escrow``, ``agent.offers``, ``agent.auctions``, ``agent.channels``,
``agent.reputation``.

How the mandate is enforced: the agent registers it as the signing policy of its address on the chain's
:class:`~agentmarket.tx.Transactor`, the one pipeline every client sends through. Every transaction *from
the agent's address* that moves value -- ETH ``value``, or an ERC-20 ``approve``/``transfer`` -- is
authorised against the mandate before it is signed, whichever client or script built it; a breach raises
:class:`~agentmarket.errors.MandateViolation` and nothing is signed or sent (no nonce is taken). A
transaction that then fails gives its budget back. High-level helpers (:meth:`Agent.buy`,
:meth:`Agent.spending`) authorise up front with the resource and unit price, so price bands apply too.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from . import validate
from .chain import Chain, load_keystore, save_keystore
from .clients.auctions import AuctionClient
from .clients.base import ContractClient
from .clients.callmarket import CallMarketClient
from .clients.channels import ChannelClient
from .clients.escrow import EscrowClient
from .clients.offers import OffersClient
from .clients.reputation import ReputationClient
from .errors import ConfigError, InvalidInput, MandateViolation
from .mandate import Mandate, MandateGuard
from .types import ETH, resource_id

__all__ = ["CLIENTS", "Agent", "resource_id"]

_APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)
_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)

# family -> (client class, contract name in the suite; "" when the client binds several contracts)
CLIENTS: dict[str, tuple[type[ContractClient], str]] = {
    "escrow": (EscrowClient, "AgentEscrow"),
    "offers": (OffersClient, "OfferBook"),
    "auctions": (AuctionClient, ""),
    "call": (CallMarketClient, "CallMarket"),
    "channels": (ChannelClient, "PaymentChannels"),
    "reputation": (ReputationClient, "ReputationRegistry"),
}

C = TypeVar("C", bound=ContractClient)


def _resource(resource: str | bytes | None) -> bytes | None:
    """The resource id of a name or id given to the mandate helpers (None stays None)."""
    if resource is None:
        return None
    if not isinstance(resource, (str, bytes)) or not resource:
        raise InvalidInput(
            f"resource must be a non-empty name or 32-byte id, got {resource!r}", param="resource"
        )
    return resource_id(resource)


def _spend_of(value: int, to: str | None, data: Any) -> tuple[str, int] | None:
    """(asset, amount) a transaction commits: its ETH value, or an ERC-20 approve/transfer amount."""
    if value:
        return ETH, int(value)
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data or b"")
    if to and len(raw) >= 68 and raw[:4] in (_APPROVE, _TRANSFER):
        amount = int.from_bytes(raw[36:68], "big")
        return (to_checksum_address(to), amount) if amount else None
    return None


@dataclass
class _Cover:
    """Budget already authorised by a :meth:`Agent.spending` block, consumed by its transactions."""

    remaining: dict[str, int] = field(default_factory=dict)


# The open spending block of each agent address (-> cover) in the current context: a context variable, not a
# thread-local, so that concurrent calls on one event loop thread (agentmarket.aio runs each in its own
# greenlet with its own context) do not draw on each other's block; each thread has its own context too.
# Keyed by address: an agent's view on another chain object (agentmarket.aio) signs under the same policy.
_COVERS: contextvars.ContextVar[dict[str, _Cover]] = contextvars.ContextVar("agentmarket_covers")


class _MandatePolicy:
    """The agent's mandate as the signing policy of its address on the chain's :class:`~agentmarket.tx.Transactor`.

    Every transaction *from the agent's address* that moves value -- ETH ``value``, or an ERC-20
    ``approve``/``transfer`` -- is authorised before it is signed (whichever client or script built it);
    a refusal raises :class:`MandateViolation` before a nonce is taken. The returned give-back runs when
    the transaction is not sent or fails on chain. Mined receipts count towards the agent's gas figures.
    """

    def __init__(self, agent: Agent):
        self._agent = agent

    def authorise(self, tx: dict[str, Any]) -> Callable[[], None] | None:
        agent = self._agent
        spend = _spend_of(int(tx.get("value", 0)), tx.get("to"), tx.get("data", b""))
        if spend is None:
            return None
        asset, amount = spend
        cover = _COVERS.get({}).get(agent.address)
        covered = min(amount, cover.remaining.get(asset, 0)) if cover else 0
        excess = amount - covered
        if excess:
            agent.guard.authorise(excess, asset)  # raises MandateViolation: nothing signed, nothing sent
        if cover and covered:
            cover.remaining[asset] -= covered

        def give_back() -> None:
            if excess:
                agent.guard.refund(excess, asset)
            if cover and covered:
                cover.remaining[asset] += covered

        return give_back

    def settled(self, receipt: Any) -> None:
        self._agent._record(receipt)

    def __repr__(self) -> str:
        return f"MandatePolicy(agent={self._agent.address})"


class Agent:
    """An autonomous trading agent: wallet + spend mandate + contract clients.

    Build one with :meth:`create` (fresh key), :meth:`from_key`, :meth:`from_keystore`, or
    :meth:`agentmarket.market.Market.agent` (fresh key, funded). ``suite`` gives the clients; without it
    the agent is a wallet with a mandate.
    """

    def __init__(
        self,
        account: LocalAccount,
        chain: Chain | None = None,
        suite: Any = None,
        *,
        mandate: Mandate | None = None,
        name: str | None = None,
    ):
        if not isinstance(account, LocalAccount) and not (
            isinstance(getattr(account, "address", None), str)
            and callable(getattr(account, "sign_transaction", None))
        ):
            raise InvalidInput(
                "Agent needs an eth-account LocalAccount or a compatible signer (address, sign_transaction)",
                param="account",
            )
        self._account = account
        self.name = name or f"agent-{account.address[2:8].lower()}"
        self.suite = suite
        self.chain: Chain | None = (
            chain if chain is not None else (suite.chain if suite is not None else None)
        )
        self.mandate = mandate or Mandate()
        self.guard = MandateGuard(self.mandate)
        self._clients: dict[str, ContractClient] = {}
        self._stats_lock = threading.Lock()
        self.gas_used = 0  # total gasUsed of the mined transactions this agent sent through its clients
        self.tx_count = 0
        self.last_receipt: Any = None  # the latest mined receipt of this agent's own transactions
        if self.chain is not None:
            # the mandate is checked where transactions are signed, for this address, whoever builds them
            self.chain.transactor.set_policy(account.address, _MandatePolicy(self))

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        chain: Chain | None = None,
        suite: Any = None,
        *,
        mandate: Mandate | None = None,
        name: str | None = None,
    ) -> Agent:
        """A new agent with a freshly generated key (unfunded)."""
        return cls(Account.create(), chain, suite, mandate=mandate, name=name)

    @classmethod
    def from_key(
        cls,
        key: str | bytes,
        chain: Chain | None = None,
        suite: Any = None,
        *,
        mandate: Mandate | None = None,
        name: str | None = None,
    ) -> Agent:
        """An agent from a raw private key (keep keys out of source code and command lines)."""
        try:
            account = Account.from_key(key)
        except Exception:
            raise ConfigError("private key is malformed (expected 32 bytes of hex)") from None
        return cls(account, chain, suite, mandate=mandate, name=name)

    @classmethod
    def from_keystore(
        cls,
        path: str | Path,
        password: str,
        chain: Chain | None = None,
        suite: Any = None,
        *,
        mandate: Mandate | None = None,
        name: str | None = None,
    ) -> Agent:
        """Decrypt an Ethereum V3 keystore file."""
        return cls(load_keystore(path, password), chain, suite, mandate=mandate, name=name)

    def save_keystore(self, path: str | Path, password: str) -> Path:
        """Write this agent's key as an encrypted V3 keystore (mode 0600)."""
        return save_keystore(self._account, path, password)

    def with_mandate(self, mandate: Mandate) -> Agent:
        """Replace the mandate (running totals start afresh)."""
        self.mandate = mandate
        self.guard = MandateGuard(mandate)
        return self

    # -- identity --------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def account(self) -> LocalAccount:
        """The signing account (for clients and web3.py users; its repr shows no key)."""
        return self._account

    def __repr__(self) -> str:
        chain = f", chain={self.chain.kind}" if self.chain is not None else ""
        return f"Agent(name={self.name!r}, address={self.address}{chain})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would write the key in clear
        raise TypeError("Agent holds a private key and cannot be pickled (use save_keystore)")

    # -- chain reads -----------------------------------------------------------------------------------

    def _require_chain(self) -> Chain:
        if self.chain is None:
            raise ConfigError(f"{self.name} is not connected to a chain (pass chain= or suite=)")
        return self.chain

    def balance(self, asset: str = ETH) -> int:
        """ETH (default) or ERC-20 balance of this agent."""
        chain = self._require_chain()
        asset = validate.asset(chain.w3, asset)
        if asset == ETH:
            return int(chain.w3.eth.get_balance(self._account.address))
        token = chain.w3.eth.contract(
            address=to_checksum_address(asset),
            abi=[
                {
                    "type": "function",
                    "name": "balanceOf",
                    "stateMutability": "view",
                    "inputs": [{"name": "a", "type": "address"}],
                    "outputs": [{"name": "", "type": "uint256"}],
                }
            ],
        )
        return int(token.functions.balanceOf(self.address).call())

    @property
    def nonce(self) -> int:
        """Transactions this agent has sent (its account nonce on chain)."""
        return int(self._require_chain().w3.eth.get_transaction_count(self._account.address))

    # -- clients ---------------------------------------------------------------------------------------

    def client(self, family: str) -> ContractClient:
        """The client of contract family ``family`` (``"escrow"``, ``"offers"``, ...), acting as this agent
        (built on first use). The typed properties (:attr:`escrow`, :attr:`offers`, ...) are the same."""
        if family in self._clients:
            return self._clients[family]
        if family not in CLIENTS:
            raise AttributeError(f"no contract family {family!r} (known: {', '.join(CLIENTS)})")
        if self.suite is None:
            raise ConfigError(f"{self.name} has no deployed suite; build it with Market or pass suite=")
        cls, contract = CLIENTS[family]
        if contract and contract not in self.suite:
            raise ConfigError(f"the deployed suite has no {contract}; redeploy with the {family} contracts")
        suite = self.suite
        if self.chain is not None and suite.chain is not self.chain:
            # the agent was given its own view of the chain (e.g. the async bridge): its clients send there
            from .deploy import Suite

            suite = Suite(self.chain, dict(suite.contracts), suite.manifest, list(suite.deployed))
        client = cls.from_suite(suite, self._account)
        self._clients[family] = client
        return client

    def _typed(self, family: str, cls: type[C]) -> C:
        client = self.client(family)
        assert isinstance(client, cls)
        return client

    @property
    def escrow(self) -> EscrowClient:
        """The :class:`~agentmarket.clients.escrow.EscrowClient` acting as this agent."""
        return self._typed("escrow", EscrowClient)

    @property
    def offers(self) -> OffersClient:
        """The :class:`~agentmarket.clients.offers.OffersClient` acting as this agent."""
        return self._typed("offers", OffersClient)

    @property
    def auctions(self) -> AuctionClient:
        """The :class:`~agentmarket.clients.auctions.AuctionClient` (all four kinds) acting as this agent."""
        return self._typed("auctions", AuctionClient)

    @property
    def call(self) -> CallMarketClient:
        """The :class:`~agentmarket.clients.callmarket.CallMarketClient` acting as this agent."""
        return self._typed("call", CallMarketClient)

    @property
    def channels(self) -> ChannelClient:
        """The :class:`~agentmarket.clients.channels.ChannelClient` acting as this agent."""
        return self._typed("channels", ChannelClient)

    @property
    def reputation(self) -> ReputationClient:
        """The :class:`~agentmarket.clients.reputation.ReputationClient` acting as this agent."""
        return self._typed("reputation", ReputationClient)

    # -- mandate ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def spending(
        self,
        amount: int,
        asset: str = ETH,
        *,
        resource: str | bytes | None = None,
        unit_price: int | None = None,
    ) -> Iterator[None]:
        """Authorise ``amount`` of ``asset`` up front (price bands apply when ``resource`` and
        ``unit_price`` are given); transactions inside the block draw on it. If the block raises, the
        part of the budget no transaction of the block still holds is given back: a transaction that was
        not sent or failed gives its share back to the block, one that went out keeps it (it may land even
        when the block was cancelled or lost the node while waiting for its receipt)."""
        amount = validate.amount(amount, "amount")
        asset = validate.address(asset, "asset")
        rid = _resource(resource)
        unit_price = validate.optional(validate.amount, unit_price, "unit_price")
        self.guard.authorise(amount, asset, resource=rid, unit_price=unit_price)
        cover = _Cover({asset: amount})
        token = _COVERS.set(_COVERS.get({}) | {self.address: cover})
        try:
            yield
        except BaseException:
            unused = cover.remaining.get(asset, 0)
            if unused:
                self.guard.refund(unused, asset)
            raise
        finally:
            _COVERS.reset(token)

    def check(
        self,
        amount: int,
        asset: str = ETH,
        *,
        resource: str | bytes | None = None,
        unit_price: int | None = None,
    ) -> None:
        """Raise :class:`MandateViolation` if the mandate would refuse this spend (records nothing)."""
        unit_price = validate.optional(validate.amount, unit_price, "unit_price")
        self.guard.check(validate.amount(amount), asset, resource=_resource(resource), unit_price=unit_price)

    def _record(self, receipt: Any) -> None:
        """Count the gas of a mined receipt of this agent's (called by its signing policy)."""
        gas = receipt.get("gasUsed") if hasattr(receipt, "get") else None
        if gas is not None:
            with self._stats_lock:
                self.gas_used += int(gas)
                self.tx_count += 1
                self.last_receipt = receipt

    # -- conveniences --------------------------------------------------------------------------------------

    def buy(
        self,
        seller: Agent | str,
        price: int,
        *,
        deliver_by: int | datetime | timedelta = timedelta(hours=1),
        resource: str | bytes | None = None,
        units: int = 1,
        asset: str = ETH,
        **terms: Any,
    ) -> Any:
        """Open and fund an escrow deal paying ``price`` to ``seller`` (mandate checked first, with
        ``price // units`` as the unit price for ``resource``'s band). Returns the :class:`~agentmarket.types.Deal`."""
        seller_addr = validate.address(seller, "seller", nonzero=True)
        price = validate.amount(price, "price", positive=True)
        units = validate.integer(units, "units", minimum=1)
        asset = validate.asset(self._require_chain().w3, asset)
        if seller_addr == self.address:
            raise InvalidInput("seller is this agent itself", param="seller")
        with self.spending(price, asset, resource=resource, unit_price=price // units):
            return self.escrow.create(seller_addr, price, deliver_by=deliver_by, asset=asset, **terms)

    def fill(self, offer: Any, quantity: int | None = None, **kwargs: Any) -> Any:
        """Fill a signed or posted offer through the OfferBook. Filling a sell offer buys: the price is
        authorised up front with the offer's resource and unit price, so price bands apply."""
        offers = self.offers
        o = getattr(offer, "offer", offer)
        q = offers.check(offer, quantity)  # pre-flight reads only
        if int(o.side) == 0:  # Side.SELL: this agent is the buyer
            with self.spending(o.unit_price * q, o.asset, resource=o.resource_id, unit_price=o.unit_price):
                return offers.fill(offer, q, **kwargs)
        return offers.fill(offer, q, **kwargs)


__all__ += ["MandateViolation"]
