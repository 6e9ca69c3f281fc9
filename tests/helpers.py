"""Helpers shared by the contract tests (plain functions; fixtures live in conftest.py).

Imported as ``from helpers import ...``: pytest puts this folder on ``sys.path`` for the root conftest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient
from agentmarket.compiler import load_artifact

GAS = 3_000_000


def deploy(chain: Chain, name: str, *args: Any) -> Any:
    """Deploy the shipped artifact ``name`` from the first account; the web3 contract."""
    artifact = load_artifact(name)
    receipt = chain.transactor.deploy(chain.accounts[0], artifact, *args)
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def mint(chain: Chain, token: Any, accounts: Iterable[Any], amount: int) -> None:
    """Mint ``amount`` of the mock ``token`` to each of ``accounts`` (sent by the first account)."""
    for account in accounts:
        chain.transactor.transact(
            chain.accounts[0], token.functions.mint(account.address, amount), gas=200_000
        )


def send(chain: Chain, account: Any, fn: Any, value: int = 0, gas: int = GAS) -> Any:
    """Simulate on the pending block (exact timestamp, typed revert), then send with a fixed gas limit."""
    chain.transactor.call(fn, sender=account.address, value=value, block="pending")
    return chain.transactor.transact(account, fn, value=value, gas=gas)


def gas_cost(receipt: Any) -> int:
    """Wei paid for the gas of ``receipt``."""
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def assert_escrow_solvent(escrow: EscrowClient, assets: Iterable[str]) -> None:
    """docs/design.md §6.1 for each asset: the escrow's balance == locked + credits + fees."""
    for asset in assets:
        balance, totals = escrow.solvency(asset)
        assert balance == totals.accounted, f"insolvent in {asset}: {balance} != {totals}"
