"""Fixtures for network-service tests (helpers in service_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from service_helpers import ETHER, GatewayProcess, make_agent

from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.deploy import Suite


@pytest.fixture
def gateway_proc(anvil: Chain, anvil_suite: Suite, tmp_path: Path) -> Iterator[GatewayProcess]:
    payee = Account.create()
    anvil.transactor.send_value(anvil.accounts[0], payee.address, 10 * ETHER)
    proc = GatewayProcess(
        anvil, anvil_suite, payee, tmp_path / "gateway.sqlite", log=tmp_path / "gateway.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def buyer(anvil: Chain, anvil_suite: Suite) -> Agent:
    """A funded agent with no mandate limits."""
    return make_agent(anvil, anvil_suite)
