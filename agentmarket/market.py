"""The entry point: connect to a chain, deploy (or load) the suite, and hand out funded agents.

    from agentmarket import Market

    with Market.connect() as market:            # embedded chain; "anvil" or a JSON-RPC URL also work
        alice, bob = market.agents(2, fund=10**18)
        deal = alice.buy(bob, 10**16)

``Market`` keeps web3.py in reach (``market.w3``, ``market.chain``, ``market.suite``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from . import validate
from .agent import Agent
from .chain import Chain
from .deploy import DEFAULT_FEE_BPS, Suite, deploy_suite
from .errors import ConfigError, InsufficientFunds, InvalidInput
from .mandate import Mandate
from .units import WEI_PER_ETH

if TYPE_CHECKING:
    from .testtoken import TestToken

__all__ = ["Market"]

ETHER = WEI_PER_ETH  # kept for callers of the v1 name


class Market:
    """A connected chain with the agentmarket suite deployed, and a faucet for new agents."""

    def __init__(
        self, chain: Chain, suite: Suite, *, funder: LocalAccount | None = None, owns_chain: bool = False
    ):
        self.chain = chain
        self.suite = suite
        self.funder = funder or (chain.accounts[0] if chain.accounts else None)
        self._owns_chain = owns_chain
        self._agents: list[Agent] = []

    @classmethod
    def connect(
        cls,
        where: str | Chain | Web3 | None = None,
        *,
        deploy: bool = True,
        fee_bps: int = DEFAULT_FEE_BPS,
        manifest: str | Path | None = None,
        write_manifest: bool | None = None,
        accounts: int = 10,
    ) -> Market:
        """Connect (``None``/``"embedded"``: in-process chain; ``"anvil"``: a local node started for you;
        a URL, or your own ``Web3``: any JSON-RPC endpoint, keys from the environment) and deploy or reuse
        the suite. A ``Web3`` is used as built: its headers, authentication and middleware apply to every
        request, the fast path's included.

        Contracts recorded in the manifest (``deployments/<chainId>.json``) whose code still matches are
        reused; with ``deploy=False`` a missing contract is an error instead. The manifest is written for
        remote chains by default (``write_manifest``).
        """
        owns = not isinstance(where, Chain)
        if isinstance(where, Chain):
            chain = where
        elif isinstance(where, Web3):
            chain = Chain.from_web3(where)
        elif where in (None, "", "embedded"):
            chain = Chain.embedded(accounts=accounts)
        elif where == "anvil":
            chain = Chain.anvil(accounts=accounts)
        else:
            chain = Chain.connect(str(where))
        try:
            if not chain.accounts:
                raise ConfigError(
                    "no funded account to deploy from or fund agents with "
                    "(fix: set AGENTMARKET_PRIVATE_KEYS or AGENTMARKET_KEYSTORE)"
                )
            write = (chain.kind == "rpc") if write_manifest is None else write_manifest
            if deploy:
                suite = deploy_suite(
                    chain,
                    fee_bps=fee_bps,
                    manifest=manifest,
                    write=write,
                    reuse=chain.kind == "rpc" or manifest is not None,
                )
            else:
                suite = _load_suite(chain, manifest)
        except BaseException:
            if owns:
                chain.close()
            raise
        return cls(chain, suite, owns_chain=owns)

    # -- agents ------------------------------------------------------------------------------------------

    def agent(
        self,
        name: str | None = None,
        *,
        fund: int = ETHER,
        mandate: Mandate | None = None,
        key: str | bytes | None = None,
    ) -> Agent:
        """A new agent (fresh key unless ``key``), funded with ``fund`` wei from the market's funder."""
        fund = validate.amount(fund, "fund")
        account = Account.from_key(key) if key is not None else Account.create()
        agent = Agent(
            account, self.chain, self.suite, mandate=mandate, name=name or f"agent-{len(self._agents) + 1}"
        )
        if fund:
            self.fund(agent, fund)
        self._agents.append(agent)
        return agent

    def agents(
        self, n: int, *, fund: int = ETHER, mandate: Mandate | None = None, prefix: str = "agent"
    ) -> list[Agent]:
        """``n`` funded agents (transfers sent together, then awaited)."""
        n = validate.integer(n, "n", minimum=1, maximum=100_000)
        fund = validate.amount(fund, "fund")
        made = [
            Agent(
                Account.create(),
                self.chain,
                self.suite,
                mandate=mandate,
                name=f"{prefix}-{len(self._agents) + i + 1}",
            )
            for i in range(n)
        ]
        if fund:
            self.fund_many(made, fund)
        self._agents.extend(made)
        return made

    def fund(self, agent: Agent | str, amount: int) -> None:
        """Send ``amount`` wei from the funder to ``agent``."""
        self.fund_many([agent], amount)

    def fund_many(self, agents: Sequence[Agent | str], amount: int) -> None:
        """Give each of ``agents`` ``amount`` wei: transfers from the funder (sent together, then awaited),
        or on anvil the balances are raised directly (``anvil_setBalance``: no transactions)."""
        if self.funder is None:
            raise ConfigError("this market has no funder account")
        amount = validate.amount(amount, "amount")
        if isinstance(agents, (str, Agent)):
            raise InvalidInput("agents must be a list of agents or addresses", param="agents")
        targets = [validate.address(a, "agent") for a in agents]
        need = amount * len(targets)
        if self.chain.kind == "anvil" and amount:
            # a dev node: mint the balances (anvil_setBalance) instead of draining the funder, so 200
            # agents need neither 200 transfers nor a funder holding 200x the amount
            tx = self.chain.transactor
            unique = list(dict.fromkeys(targets))
            balances = tx.transport.batch([("eth_getBalance", [t, "latest"]) for t in unique])
            answers = tx.transport.batch(
                [
                    ("anvil_setBalance", [t, hex(int(b, 16) + amount * targets.count(t))])
                    for t, b in zip(unique, balances, strict=True)
                ]
            )
            failed = [a for a in answers if isinstance(a, Exception)]
            if failed:
                raise ConfigError(f"anvil_setBalance failed: {failed[0]}")
            return
        have = int(self.chain.w3.eth.get_balance(self.funder.address))
        if have < need:
            raise InsufficientFunds(f"funder {self.funder.address} holds {have} wei, needs {need} plus gas")
        tx = self.chain.transactor
        handles = [
            tx.transact(self.funder, to=target, value=amount, gas=21_000, wait=False) for target in targets
        ]
        for handle in handles:
            tx.wait(handle)

    def token(self, symbol: str = "USDC", *, decimals: int = 6, name: str | None = None) -> TestToken:
        """Deploy a mintable test ERC-20 (local chains only: anyone can mint it). See :mod:`agentmarket.testtoken`."""
        from .compiler import load_artifact
        from .testtoken import TestToken

        if not self.chain.is_local:
            raise ConfigError(
                "market.token() deploys a freely mintable token: local chains only (embedded, anvil)"
            )
        if not isinstance(symbol, str) or not symbol:
            raise InvalidInput("symbol must be a non-empty string", param="symbol")
        decimals = validate.integer(decimals, "decimals", maximum=36)
        if self.funder is None:
            raise ConfigError("this market has no funder account to deploy from")
        artifact = load_artifact("MockERC20")
        receipt = self.chain.transactor.deploy(
            self.funder, artifact, name or f"Test {symbol}", symbol, decimals
        )
        contract = self.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
        return TestToken(self.chain, contract, symbol, decimals, self.funder)

    @property
    def w3(self) -> Any:
        return self.chain.w3

    @property
    def escrow(self) -> Any:
        """A read-only escrow client (solvency, deals)."""
        from .clients.escrow import EscrowClient

        return EscrowClient.from_suite(self.suite)

    @property
    def call_market(self) -> Any:
        """A read-only call-market client (batches, trades, clearing computed off chain)."""
        from .clients.callmarket import CallMarketClient

        return CallMarketClient.from_suite(self.suite)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop a node this market started (anvil)."""
        if self._owns_chain:
            self.chain.close()

    def __enter__(self) -> Market:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Market(chain={self.chain.kind}, chain_id={self.chain.chain_id}, contracts={list(self.suite.contracts)})"


def _load_suite(chain: Chain, manifest: str | Path | None) -> Suite:
    from .deploy import SUITE, attach, load_manifest, manifest_path

    path = Path(manifest) if manifest else manifest_path(chain.chain_id)
    book = load_manifest(path, chain.chain_id)
    contracts = {}
    for spec in SUITE:
        entry = book.get("contracts", {}).get(spec.name)
        if not entry or not bytes(chain.w3.eth.get_code(entry["address"])):
            raise ConfigError(
                f"{spec.name} is not deployed on chain {chain.chain_id} per {path} "
                "(fix: Market.connect(..., deploy=True))"
            )
        contracts[spec.name] = attach(chain, spec.name, entry["address"])
    return Suite(chain, contracts, book, [])
