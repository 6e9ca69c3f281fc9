"""Helpers for network-service tests: a real uvicorn gateway process on 127.0.0.1, on anvil.

The server runs ``python -m agentmarket.gateway.demo`` as its own process (the payee key reaches it
through ``$AGENTMARKET_PRIVATE_KEYS``), so a test can SIGKILL it mid-stream and start it again on the
same SQLite file.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from agentmarket.agent import Agent
from agentmarket.chain import Chain, free_port
from agentmarket.deploy import Suite
from agentmarket.gateway.demo import spawn
from agentmarket.mandate import Mandate

ETHER = 10**18


@dataclass
class GatewayProcess:
    """A running demo gateway; ``restart`` keeps the database, ``kill`` is SIGKILL (no cleanup)."""

    chain: Chain
    suite: Suite
    payee: Any
    db: Path
    claim_interval: float = 3600.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path("/dev/null"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.process = spawn(
            str(self.chain.url),
            self.suite["PaymentChannels"].address,
            bytes(self.payee.key),
            self.db,
            self.port,
            claim_interval=self.claim_interval,
            log=self.log,
        )

    def stop(self) -> int:
        """SIGTERM: uvicorn shuts down gracefully (the middleware runs a final claim)."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def make_agent(
    chain: Chain, suite: Suite, *, fund: int = 10 * ETHER, mandate: Mandate | None = None
) -> Agent:
    """A fresh agent funded with ``fund`` wei from the chain's first account."""
    account = Account.create()
    chain.transactor.send_value(chain.accounts[0], account.address, fund)
    return Agent(account, chain, suite, mandate=mandate)
