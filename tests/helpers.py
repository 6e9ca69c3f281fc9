"""Helpers shared by the contract tests (plain functions; fixtures live in conftest.py).

Imported as ``from helpers import ...``: pytest puts this folder on ``sys.path`` for the root conftest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentmarket import compiler, errors
from agentmarket.chain import Chain
from agentmarket.clients.escrow import EscrowClient

#: The test build (mocks and attackers of contracts/test/, compiled by `agentmarket compile`, not shipped).
TEST_ARTIFACTS = compiler.test_artifacts_dir(Path(__file__).resolve().parents[1])


def load_artifact(name: str) -> dict[str, Any]:
    """An artifact of the test build, else of the package build."""
    if (TEST_ARTIFACTS / f"{name}.json").is_file():
        return compiler.load_artifact(name, TEST_ARTIFACTS)
    return compiler.load_artifact(name)


def register_test_errors() -> None:
    """Make the test build's custom errors decodable (the production revert table has only the package's)."""
    for path in sorted(TEST_ARTIFACTS.glob("*.json")):
        errors.register_abi(json.loads(path.read_text()).get("abi", []))


GAS = 3_000_000


def deploy(chain: Chain, name: str, *args: Any) -> Any:
    """Deploy the artifact ``name`` (test build first) from the first account; the web3 contract."""
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
