"""Helpers for network-service tests: a real uvicorn gateway process on 127.0.0.1, on anvil.

The server runs ``python -m agentmarket.gateway.demo`` as its own process (the payee key reaches it
through ``$AGENTMARKET_PRIVATE_KEYS``), so a test can SIGKILL it mid-stream and start it again on the
same SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from agentmarket.agent import Agent
from agentmarket.chain import Chain, free_port
from agentmarket.deploy import Suite
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
        env = dict(os.environ, AGENTMARKET_PRIVATE_KEYS="0x" + bytes(self.payee.key).hex())
        cmd = [
            sys.executable,
            "-m",
            "agentmarket.gateway.demo",
            "--chain",
            str(self.chain.url),
            "--contract",
            self.suite["PaymentChannels"].address,
            "--db",
            str(self.db),
            "--port",
            str(self.port),
            "--claim-interval",
            str(self.claim_interval),
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gateway exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("gateway did not answer within 30s")
            time.sleep(0.1)

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
